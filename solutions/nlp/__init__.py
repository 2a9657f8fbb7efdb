"""Reference solutions for natural-language-processing questions."""
