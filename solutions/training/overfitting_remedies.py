"""Overfitting and its four classic remedies, each measured against an unregularized baseline.

A deliberately over-sized MLP is trained on a few hundred noisy images whose training
labels are 30% wrong. Unregularized, it memorises everything, wrong labels included:
100% training accuracy, much lower accuracy on a clean held-out test set. Then the same
model is trained four more times, each with one remedy: L2 weight decay, dropout, data
augmentation (fresh pixel noise every epoch), early stopping on a validation split. Each
one shrinks the train/test gap by a clear margin and raises clean test accuracy by at least
3 points (a remedy that does nothing gains 0), which the checks measure remedy by remedy
(the seed attached none of them: its L2 regularizer was created and never used, its
dropout layer appended after the output layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.synthetic.images import noisy_labels

SEED = 0
NUM_CLASSES = 5
IMAGE_SIZE = 12
PIXEL_NOISE = 0.8  # std of the images' own pixel noise: most of each image is noise
LABEL_NOISE = 0.3  # fraction of train / validation labels that are wrong
N_TRAIN, N_VAL, N_TEST = 500, 300, 1000
EPOCHS = 40  # train's default budget (training.fix_seed_training_loop's fixed model needs 34)
# The budget of every run here: the baseline has memorised its training set (train accuracy
# 1.0) by epoch 20, and every remedy already gains >= 5 points of test accuracy by then.
REMEDY_EPOCHS = 20
BATCH_SIZE = 50
L2 = 0.05
DROPOUT, INPUT_DROPOUT = 0.5, 0.2  # the rates of the dropout paper (Srivastava et al.)
AUG_NOISE = 0.8
PATIENCE = 5
VAL_EVERY = 2  # the progress events' validation metrics: every 2 epochs, 10 per run
# A remedy must raise clean test accuracy by at least this much over the baseline: about
# halfway between doing nothing (gain 0.000, measured by the wrong-answer fixtures) and the
# smallest gain of a working remedy here (early stopping, +0.051).
MIN_TEST_GAIN = 0.03


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_model", "augment", "train")

# -----------------------------------------------------------------------------
# The answer: a model with optional L2 and dropout, an augmentation, a trainer


def build_model(
    input_shape: tuple[int, ...],
    num_classes: int,
    l2: float = 0.0,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
) -> keras.Model:
    """An MLP mapping images (B, H, W, C) float32 to logits (B, num_classes).

    ``l2`` > 0 adds ``l2 * sum(w**2)`` of every kernel to the loss (weight decay);
    ``dropout`` > 0 puts a Dropout layer of that rate after each hidden layer, and
    ``input_dropout`` > 0 one on the flattened input. With none of them it is the
    baseline: ~72k weights for 500 examples, plenty to memorise them.
    """
    # Attached to the layers: a regularizer object that no layer receives does nothing.
    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    layers: list[keras.layers.Layer] = [
        keras.layers.Input(input_shape),  # (B, 12, 12, 3)
        keras.layers.Flatten(),  # (B, 432)
    ]
    if input_dropout > 0:
        layers.append(keras.layers.Dropout(input_dropout))  # the usual 0.2 on inputs
    for _ in range(2):
        layers.append(keras.layers.Dense(128, activation="relu", kernel_regularizer=reg))
        if dropout > 0:
            # Between hidden layers, not after the output: dropping logits is not dropout.
            # Active in fit() only; Keras scales kept units by 1/(1-rate) while training,
            # so inference needs no rescaling.
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(num_classes, kernel_regularizer=reg))  # (B, K) logits
    return keras.Sequential(layers)


def augment(images: tf.Tensor) -> tf.Tensor:
    """A random label-preserving variant of a batch ``images`` (B, H, W, C) float32.

    Adds fresh Gaussian pixel noise (std ``AUG_NOISE``) each time it is called, so the
    model never sees the same training image twice. Noise is the nuisance these images
    really have; for photos it would be random crops, flips, colour jitter. A transform the
    label does not survive (or that never occurs in real data) hurts instead of helping.
    """
    return images + tf.random.normal(tf.shape(images), stddev=AUG_NOISE)


def train(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    augment_fn: Callable[[tf.Tensor], tf.Tensor] | None = None,
    early_stopping: bool = False,
    epochs: int = EPOCHS,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Train ``model`` in place on ``x`` (N, H, W, C) float32, int labels ``y`` (N,).

    ``augment_fn`` (batch -> batch) is applied to every training batch, anew each epoch.
    ``early_stopping`` watches the loss on (``x_val``, ``y_val``), stops after ``PATIENCE``
    epochs without improvement and restores the best weights. Returns the ``History``.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=SEED)
    dataset = dataset.batch(BATCH_SIZE)
    if augment_fn is not None:
        # Inside the input pipeline, after batching: a new random draw every epoch.
        dataset = dataset.map(lambda xb, yb: (augment_fn(xb), yb))
    callbacks = list(callbacks or [])
    if early_stopping:
        # val_loss, not training loss: training loss keeps falling while the model memorises.
        # restore_best_weights: without it you keep the last (already overfit) weights.
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=PATIENCE, restore_best_weights=True
            )
        )
    return model.fit(
        dataset,
        epochs=epochs,
        validation_data=(x_val, y_val) if early_stopping else None,
        verbose=0,
        callbacks=callbacks,
    )


# -----------------------------------------------------------------------------
# Data and measurement


@dataclass(frozen=True)
class NoisyData:
    """Train and validation splits with noisy labels, a test split with clean labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def train_and_val(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What train takes after the model: x, y, x_val, y_val."""
        return self.x_train, self.y_train, self.x_val, self.y_val


def make_data(seed: int = SEED) -> NoisyData:
    """500 train / 300 val / 1000 test images (N, 12, 12, 3) float32 in [0, 1], 5 classes.

    Images are class textures under heavy pixel noise (std 0.8, clipped); 30% of the train
    and validation labels are replaced by a wrong class, as careless annotation would do.
    Test labels are clean, so test accuracy measures what the model really learned.
    """
    split = synthetic.class_images(
        n_train=N_TRAIN + N_VAL,
        n_test=N_TEST,
        num_classes=NUM_CLASSES,
        size=IMAGE_SIZE,
        noise=PIXEL_NOISE,
        max_shift=0,
        seed=seed,
    )
    y = noisy_labels(split.y_train, NUM_CLASSES, LABEL_NOISE, seed=seed + 1)  # (800,)
    return NoisyData(
        split.x_train[:N_TRAIN],
        y[:N_TRAIN],
        split.x_train[N_TRAIN:],
        y[N_TRAIN:],
        split.x_test,
        split.y_test,
    )


class Trainer(Protocol):
    """build_model and train as the checks call them (training.fix_seed_training_loop's
    answer too); the reference may take more parameters, with defaults."""

    def build_model(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        l2: float = ...,
        dropout: float = ...,
        input_dropout: float = ...,
    ) -> keras.Model: ...

    def train(
        self,
        model: keras.Model,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        *,
        callbacks: list[Any],
        augment_fn: Callable[[tf.Tensor], tf.Tensor] | None = ...,
        early_stopping: bool = ...,
        epochs: int = ...,
    ) -> keras.callbacks.History: ...


class Answer(Trainer, Protocol):
    """What check(impl) calls: the ANSWER functions."""

    def augment(self, images: tf.Tensor) -> tf.Tensor: ...


def check(impl: Answer) -> SolutionReport:
    """Train the baseline and one run per remedy with ``impl``; compare gaps and test accuracy."""
    report = SolutionReport(solution="training.overfitting_remedies")
    data = make_data()
    # name -> (build_model kwargs, train kwargs); everything else identical to the baseline.
    runs: dict[str, tuple[dict[str, float], dict[str, Any]]] = {
        "baseline": ({}, {}),
        "L2 weight decay": ({"l2": L2}, {}),
        "dropout": ({"dropout": DROPOUT, "input_dropout": INPUT_DROPOUT}, {}),
        "data augmentation": ({}, {"augment_fn": impl.augment}),
        "early stopping": ({}, {"early_stopping": True}),
    }
    results: dict[str, tuple[float, float, float]] = {}  # name -> train acc, test acc, gap
    # Each run's checks right after it: a remedy is judged against the baseline (run first)
    # as soon as it has trained.
    for name, (model_kwargs, train_kwargs) in runs.items():
        results[name] = _train_run(report, impl, data, name, model_kwargs, train_kwargs)
        _judge(report, name, results[name], results["baseline"])
    return report


def _train_run(
    report: SolutionReport,
    impl: Answer,
    data: NoisyData,
    name: str,
    model_kwargs: dict[str, float],
    train_kwargs: dict[str, Any],
) -> tuple[float, float, float]:
    """One run: impl's model and trainer with one remedy's kwargs (none for the baseline),
    from the same initial weights and batch order. Returns (train accuracy on the noisy
    labels, test accuracy on the clean ones, train - test)."""
    keras.utils.set_random_seed(SEED)  # same initial weights and batch order for every run
    model = impl.build_model(data.x_train.shape[1:], NUM_CLASSES, **model_kwargs)
    history = impl.train(
        model,
        *data.train_and_val,
        epochs=REMEDY_EPOCHS,
        callbacks=[_progress(f"train: {name}", data.x_val, data.y_val)],
        **train_kwargs,
    )
    # Train accuracy on the labels it was trained on (30% wrong): 1.0 means memorised.
    train_acc = accuracy(model, data.x_train, data.y_train)
    test_acc = accuracy(model, data.x_test, data.y_test)
    report.metric(f"{name}: train accuracy (noisy labels)", train_acc)
    report.metric(f"{name}: test accuracy (clean labels)", test_acc)
    report.metric(f"{name}: gap train - test", train_acc - test_acc)
    logged = getattr(history, "history", None)  # the History's record, if train returned one
    report.metric(
        f"{name}: epochs trained",
        len(logged.get("loss", [])) if isinstance(logged, dict) else 0,
    )
    return train_acc, test_acc, train_acc - test_acc


def _progress(phase: str, x_val: np.ndarray, y_val: np.ndarray) -> keras.callbacks.Callback:
    """``events.keras_callback(phase)`` whose epoch-end events also carry ``val_loss`` and
    ``val_accuracy`` on (``x_val``, ``y_val``), so every run's chart shows the validation
    curve that only the early-stopping run's ``fit`` computes.

    Measured every ``VAL_EVERY`` epochs by one traced forward pass (~0.1 s per run in all,
    10 points per curve), not by passing validation data to ``fit``: the runs train exactly
    as the candidate's ``train`` says, and the logs that ``fit``'s other callbacks see (early
    stopping's) are untouched.
    The loss is the cross-entropy alone, without any L2 penalty, so runs compare.
    """
    callback = events.keras_callback(phase)
    send = callback.on_epoch_end
    x = tf.constant(x_val)  # (300, H, W, C)
    forward = tf.function(lambda images: callback.model(images, training=False))  # dropout off

    def on_epoch_end(epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = dict(logs or {})  # a copy: fit's own logs dict is shared by its callbacks
        if "val_loss" not in logs and (epoch + 1) % VAL_EVERY == 0:
            logits = forward(x)  # (300, K)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_val, logits=logits)
            logs["val_loss"] = float(tf.reduce_mean(ce))
            logs["val_accuracy"] = float(np.mean(np.argmax(logits, axis=-1) == y_val))
        send(epoch, logs)

    callback.on_epoch_end = on_epoch_end
    return callback


def _judge(
    report: SolutionReport,
    name: str,
    result: tuple[float, float, float],
    baseline: tuple[float, float, float],
) -> None:
    """The checks of one run: the baseline must overfit; a remedy must beat it."""
    _, base_test, base_gap = baseline
    if name == "baseline":
        # A model that fits only the true pattern scores ~0.7 on the noisy training
        # labels and higher on the clean test labels: its gap is small or negative.
        report.check(
            "baseline overfits: gap train - test",
            base_gap,
            ">=",
            0.15,
            "unregularized, the MLP memorises the wrong labels",
        )
        return
    _, test_acc, gap = result  # this remedy's test accuracy and train - test
    report.check(
        f"{name}: gap shrinks vs baseline",
        base_gap - gap,
        ">=",
        0.05,
        "baseline gap minus this remedy's gap",
    )
    report.check(
        f"{name}: test accuracy vs baseline",
        test_acc - base_test,
        ">=",
        MIN_TEST_GAIN,
        f"clean test accuracy must rise by >= {MIN_TEST_GAIN}: about halfway between a remedy "
        "that does nothing (+0.000: L2 created but never attached, the wrong-answer "
        "fixture; early stopping on the training loss; -0.001: noise of std 0.01) and the "
        "smallest gain of a real one here (early stopping +0.051; L2 +0.094, augmentation "
        "+0.083, dropout +0.080); 0.03 is 30 of the 1000 test images above doing nothing, "
        "21 below early stopping",
    )


if __name__ == "__main__":
    print_check_of(__name__)
