"""Reference solutions for training questions."""
