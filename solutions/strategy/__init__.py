"""Reference solutions for startup strategy questions: plain-Python estimates, no TensorFlow."""
