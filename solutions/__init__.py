"""Reference solutions: one runnable module per coding question (questions/<topic>/<slug>.yaml)."""
