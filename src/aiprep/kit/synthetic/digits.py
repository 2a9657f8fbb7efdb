"""Handwritten-like digits 0-9: MNIST-shaped 28x28 grayscale images drawn from stroke glyphs.

Each digit is a fixed polyline glyph (one or more strokes in a unit box). Every sample
moves the glyph's control points a little (handwriting wobble), applies a random affine
map (rotation, anisotropic scale, shear, shift), draws the strokes with a random pen
thickness and anti-aliased edges, scales the ink intensity and adds pixel noise. The
digit is drawn in the central ~20x20 pixels like MNIST.
"""

from __future__ import annotations

import numpy as np

from aiprep.kit.synthetic import Split, rng

SIZE = 28


Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int) -> Stroke:
    """Points on an ellipse arc from angle ``start`` to ``stop`` (degrees, y axis down)."""
    t = np.deg2rad(np.linspace(start, stop, n))
    return [(float(cx + rx * np.cos(a)), float(cy + ry * np.sin(a))) for a in t]


# Strokes in a unit box: x to the right, y DOWN (image convention). A glyph is a list of
# strokes, a stroke a list of (x, y) points joined by straight segments.
GLYPHS: dict[int, list[Stroke]] = {
    0: [_arc(0.5, 0.5, 0.3, 0.46, -90, 270, 15)],
    1: [[(0.32, 0.22), (0.56, 0.04), (0.56, 0.96)]],
    2: [_arc(0.5, 0.3, 0.3, 0.24, 190, 370, 8) + [(0.72, 0.5), (0.2, 0.95), (0.85, 0.95)]],
    3: [_arc(0.48, 0.27, 0.28, 0.22, 200, 450, 9) + _arc(0.48, 0.71, 0.32, 0.25, -90, 160, 9)],
    4: [[(0.62, 0.96), (0.62, 0.04), (0.14, 0.66), (0.88, 0.66)]],
    5: [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(0.5, 0.68, 0.3, 0.27, -120, 150, 9)],
    6: [[(0.72, 0.04), (0.4, 0.3)] + _arc(0.5, 0.7, 0.28, 0.26, 190, 550, 14)],
    7: [[(0.14, 0.06), (0.86, 0.06), (0.42, 0.96)]],
    8: [_arc(0.5, 0.27, 0.23, 0.22, 90, 450, 13), _arc(0.5, 0.72, 0.28, 0.24, -90, 270, 13)],
    9: [_arc(0.48, 0.3, 0.27, 0.25, -10, 350, 13) + [(0.75, 0.3), (0.66, 0.96)]],
}


def _points(digit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The glyph's points (P, 2) and, per segment, the indices of its two endpoints (S,)."""
    points: Stroke = []
    starts: list[int] = []
    ends: list[int] = []
    for stroke in GLYPHS[digit]:
        first = len(points)
        points += stroke
        starts += range(first, len(points) - 1)
        ends += range(first + 1, len(points))
    return np.array(points, np.float32), np.array(starts), np.array(ends)


def render_digits(
    labels: np.ndarray,
    seed: int = 0,
    noise: float = 0.1,
    wobble: float = 0.03,
    max_rotation_deg: float = 15.0,
    max_shift: float = 2.5,
) -> np.ndarray:
    """Draw one image per label: (n, 28, 28) float32 in [0, 1], background 0, ink near 1.

    ``labels``: (n,) ints in [0, 10). ``wobble`` is the std of the per-point jitter in
    glyph units (the glyph box is ~20 px), ``max_shift`` is in pixels, ``noise`` is the std
    of Gaussian pixel noise added before clipping.
    """
    g = rng(seed)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    images = np.zeros((n, SIZE * SIZE), np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5  # pixel centres
    px, py = xx.reshape(1, -1, 1), yy.reshape(1, -1, 1)  # (1, 784, 1)

    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        if idx.size == 0:
            continue
        base, starts, ends = _points(digit)  # (P, 2), (S,), (S,)
        m = idx.size
        # Handwriting wobble: every control point of every sample moves a little; strokes
        # stay connected because segments share their endpoints.
        pts = base[None] + g.normal(0.0, wobble, size=(m, *base.shape)).astype(np.float32)
        pts = (pts - 0.5) * 20.0  # glyph units -> pixels, centred at 0: (m, P, 2)

        # Random affine per sample: A = R(theta) @ Shear @ diag(sx, sy), then a shift.
        theta = np.deg2rad(g.uniform(-max_rotation_deg, max_rotation_deg, m))
        sx, sy = g.uniform(0.8, 1.1, m), g.uniform(0.85, 1.1, m)
        shear = g.uniform(-0.25, 0.25, m)
        cos, sin = np.cos(theta), np.sin(theta)
        rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (m, 2, 2)
        shr = np.zeros((m, 2, 2))
        shr[:, 0, 0] = shr[:, 1, 1] = 1.0
        shr[:, 0, 1] = shear
        scale = np.zeros((m, 2, 2))
        scale[:, 0, 0], scale[:, 1, 1] = sx, sy
        affine = (rot @ shr @ scale).astype(np.float32)  # (m, 2, 2)
        shift = g.uniform(-max_shift, max_shift, (m, 2)).astype(np.float32) + SIZE / 2
        pts = np.einsum("mij,mpj->mpi", affine, pts) + shift[:, None, :]  # (m, P, 2)

        thickness = g.uniform(0.9, 2.0, (m, 1)).astype(np.float32)  # pen radius, pixels
        ink = g.uniform(0.75, 1.0, (m, 1)).astype(np.float32)
        for lo in range(0, m, 128):  # chunks keep (chunk, 784, S) small
            p = pts[lo : lo + 128]
            ax, ay = p[:, None, starts, 0], p[:, None, starts, 1]  # (c, 1, S)
            bx, by = p[:, None, ends, 0] - ax, p[:, None, ends, 1] - ay  # segment vectors
            dx, dy = px - ax, py - ay  # (c, 784, S): pixel relative to segment start
            # Projection of the pixel on the segment, clamped to its ends.
            t = np.clip((dx * bx + dy * by) / np.maximum(bx * bx + by * by, 1e-6), 0.0, 1.0)
            dx -= t * bx
            dy -= t * by
            dist = np.sqrt((dx * dx + dy * dy).min(-1))  # (c, 784): distance to the glyph
            # Anti-aliased pen: full ink inside the radius, a 1-pixel linear edge.
            stroke = np.clip(thickness[lo : lo + 128] + 0.5 - dist, 0.0, 1.0)
            images[idx[lo : lo + 128]] = stroke * ink[lo : lo + 128]

    images += g.normal(0.0, noise, size=images.shape).astype(np.float32)
    return np.clip(images, 0.0, 1.0).reshape(n, SIZE, SIZE)


def digit_images(n_train: int, n_test: int, seed: int = 0, **render_kwargs: float) -> Split:
    """Labelled digits: x (n, 28, 28) float32 in [0, 1], y (n,) int64 in [0, 10), balanced-ish.

    Labels are uniform at random; ``render_kwargs`` go to :func:`render_digits`
    (``noise``, ``wobble``, ``max_rotation_deg``, ``max_shift``).
    """
    g = rng(seed)
    y = g.integers(0, 10, size=n_train + n_test)
    x = render_digits(y, seed=seed + 1, **render_kwargs)
    return Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:])
