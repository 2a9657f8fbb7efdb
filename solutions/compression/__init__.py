"""Reference solutions for compression questions."""
