"""Harness training: the plain supervised fit a check needs around the answer (a teacher to
compress, a from-scratch baseline, a network to pre-train), with its progress shown.

Answers write their own training; this is for what a check trains to measure them.
"""

from __future__ import annotations

from typing import Any

from aiprep.kit import events


def fit_classifier(
    model: Any,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int,
    phase: str,
    learning_rate: float = 1e-3,
) -> None:
    """Train a Keras ``model`` mapping ``x`` (N, ...) to logits (N, K) on int labels ``y``
    (N,) in place: Adam, sparse cross-entropy on the logits, shuffled mini-batches, the
    progress shown as ``phase``."""
    import tf_keras as keras  # only when called: the kit loads without TensorFlow

    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[events.keras_callback(phase)],
    )
