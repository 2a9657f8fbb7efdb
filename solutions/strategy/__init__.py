"""Reference solutions for startup strategy questions: estimates that run (plain Python, no TensorFlow)."""
