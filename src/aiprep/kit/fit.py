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
    optimizer: Any = None,
) -> None:
    """Train a Keras ``model`` mapping ``x`` (N, ...) to logits (N, K) on int labels ``y``
    (N,) in place: Adam (or ``optimizer``), sparse cross-entropy on the logits, shuffled
    mini-batches, the progress shown as ``phase``.

    ``keras.optimizers.legacy.Adam`` is the same update in one fused op per variable: a
    deep network's training step traces faster with it (~2 s less for a small ResNet)."""
    import tf_keras as keras  # only when called: the kit loads without TensorFlow

    model.compile(
        optimizer if optimizer is not None else keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    prebuild_train_state(model, x[:1], y[:1])
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[events.keras_callback(phase)],
    )


def prebuild_train_state(model: Any, x: Any, y: Any) -> None:
    """Create a compiled ``model``'s training variables now, before ``fit``: the optimizer's
    slots (Adam's moments) and the loss and metric trackers, built on a sample batch ``x``,
    ``y`` (one example will do).

    A ``tf.function`` whose first call creates variables is traced twice (once to create
    them, once more to run without creating): Keras' train function does exactly that when
    its first step makes them, and a trace costs as much as hundreds of small steps here.
    The slots and trackers start at zero either way: the training is the same, traced once.
    A model not built yet (a ``Sequential`` without an input shape) is left to ``fit``."""
    import tensorflow as tf  # only when called: the kit loads without TensorFlow
    import tf_keras as keras

    if not model.built or model.optimizer is None:
        return
    if isinstance(model.optimizer, keras.optimizers.legacy.Optimizer):
        model.optimizer._create_all_weights(model.trainable_variables)  # its build()
    else:
        model.optimizer.build(model.trainable_variables)
    y_pred = model(x, training=False)
    model.compiled_loss.build(y_pred)
    model.compiled_metrics.build(y_pred, tf.convert_to_tensor(y))
