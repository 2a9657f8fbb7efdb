"""Labelled images: class textures, shifted and noisy (CIFAR-shaped tasks)."""

from __future__ import annotations

import numpy as np

from aiprep.kit.synthetic import Split, rng


def class_templates(
    num_classes: int, size: int, channels: int, seed: int, waves: int = 3
) -> np.ndarray:
    """One smooth pattern per class, shape (num_classes, size, size, channels), values in [0, 1].

    A pattern is a sum of ``waves`` random 2-D sinusoidal gratings, each with its own colour,
    so classes differ by texture and colour rather than by a single pixel.
    """
    g = rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    templates = np.zeros((num_classes, size, size, channels), np.float32)
    for c in range(num_classes):
        for _ in range(waves):
            fy, fx = g.uniform(1.0, 4.0, size=2) * g.choice([-1.0, 1.0], size=2)
            phase = g.uniform(0, 2 * np.pi)
            colour = g.uniform(-1.0, 1.0, size=channels).astype(np.float32)
            wave = np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)  # (size, size)
            templates[c] += wave[..., None] * colour  # (size, size, channels)
    templates -= templates.min(axis=(1, 2, 3), keepdims=True)
    templates /= templates.max(axis=(1, 2, 3), keepdims=True)
    return templates


def class_images(
    n_train: int,
    n_test: int,
    num_classes: int = 10,
    size: int = 32,
    channels: int = 3,
    noise: float = 0.35,
    max_shift: int = 4,
    seed: int = 0,
) -> Split:
    """Labelled images of ``num_classes`` classes: float32 in [0, 1], (n, size, size, channels).

    Each image is its class template, circularly shifted by up to ``max_shift`` pixels,
    scaled in contrast, plus Gaussian pixel noise of std ``noise``: a CIFAR-shaped task
    that a small CNN learns in seconds, and that is learnable only through the pattern.
    """
    templates = class_templates(num_classes, size, channels, seed)
    g = rng(seed + 1)
    n = n_train + n_test
    y = g.integers(0, num_classes, size=n)
    x = templates[y]  # (n, size, size, channels)
    shifts = g.integers(-max_shift, max_shift + 1, size=(n, 2))
    for i, (dy, dx) in enumerate(shifts):
        x[i] = np.roll(x[i], (dy, dx), axis=(0, 1))
    contrast = g.uniform(0.7, 1.3, size=(n, 1, 1, 1)).astype(np.float32)
    x = 0.5 + (x - 0.5) * contrast + g.normal(0.0, noise, size=x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def noisy_labels(y: np.ndarray, num_classes: int, fraction: float, seed: int) -> np.ndarray:
    """A copy of int labels ``y`` (N,) in which exactly ``round(fraction * N)`` are wrong.

    The chosen labels are replaced by a uniformly random *other* class, so ``fraction`` is
    the true error rate of the labels (annotation noise that a model can only memorise).
    """
    g = rng(seed)
    y = np.array(y, copy=True)
    flip = g.choice(len(y), size=round(fraction * len(y)), replace=False)  # (n_wrong,)
    y[flip] = (y[flip] + g.integers(1, num_classes, size=len(flip))) % num_classes
    return y
