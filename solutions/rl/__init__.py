"""Reference solutions for reinforcement-learning questions."""
