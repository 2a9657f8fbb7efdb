"""Reference solutions for distributed questions."""
