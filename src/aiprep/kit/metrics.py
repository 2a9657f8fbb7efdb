"""Measurements shared by the solutions (NumPy only: the model is any Keras-like callable)."""

from __future__ import annotations

from typing import Any

import numpy as np


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> float:
    """Fraction of ``x`` (N, ...) whose arg-max output equals the int labels ``y`` (N,).

    Runs ``model(batch, training=False)`` (inference mode: no dropout, BatchNorm moving
    statistics) in batches; works for logits or probabilities alike.
    """
    predictions = [
        np.asarray(model(x[i : i + batch_size], training=False)).argmax(axis=-1)  # (B,)
        for i in range(0, len(x), batch_size)
    ]
    return float((np.concatenate(predictions) == y).mean())
