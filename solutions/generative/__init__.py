"""Generative models: GANs and the measurements that show what they learned."""
