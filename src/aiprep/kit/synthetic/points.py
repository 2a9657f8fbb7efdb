"""2-D point distributions with known structure, for measuring generative models.

The ring of Gaussians is the classic GAN test bed: its modes are known, so one can count how
many modes a generator covers (mode collapse shows up as missing modes) and how many of its
samples land near a mode at all (sample quality), which images never allow exactly.
"""

from __future__ import annotations

import numpy as np

from aiprep.kit.synthetic import rng


def ring_centers(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """Centres of ``modes`` Gaussians evenly spaced on a circle, (modes, 2) float32."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points from an equal mixture of isotropic Gaussians on a ring.

    Returns ``(points, mode)``: points (n, 2) float32, and the index (n,) int64 in [0, modes)
    of the Gaussian each point was drawn from. Centres are :func:`ring_centers`.
    """
    g = rng(seed)
    mode = g.integers(0, modes, size=n)
    points = ring_centers(modes, radius)[mode] + g.normal(0.0, std, size=(n, 2))
    return points.astype(np.float32), mode


def nearest_mode(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For points (n, 2): index (n,) of the nearest centre of (modes, 2), and the distance (n,)."""
    dist = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=-1)  # (n, modes)
    nearest = dist.argmin(axis=1)
    return nearest, dist[np.arange(len(points)), nearest]
