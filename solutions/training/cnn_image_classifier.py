"""CNN image classifier on CIFAR-shaped images.

A small convolutional network (two conv/pool blocks, then a dense head) learns to
classify 32x32x3 images in 10 classes to >= 90% test accuracy in a few seconds on a CPU.
The same architecture trained on shuffled labels stays at chance on the test set, which
proves the accuracy comes from the image content and not from a leak or from memorising.
The seed used CIFAR-10 itself (a download) and plain SGD; here the images are synthetic
(class textures, shifted, contrast-scaled and noisy) and the optimiser is Adam.
"""

from __future__ import annotations

import time

import numpy as np
import tf_keras as keras

from aiprep import progress, synthetic
from aiprep.metrics import accuracy
from aiprep.report import SolutionReport, print_check_of

SEED = 0
EPOCHS = 5
BATCH_SIZE = 64


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_model", "train")

# -----------------------------------------------------------------------------
# The answer: model and training


def build_model(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """A CNN mapping images (B, H, W, C) float32 in [0, 1] to logits (B, num_classes).

    The layout is the seed's: conv(32) -> pool -> conv(64) -> pool -> dense(64) -> dense.
    The last layer has no softmax: the loss takes logits (``from_logits=True``), which is
    numerically safer than softmax followed by log.
    """
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),  # (B, 32, 32, 3)
            keras.layers.Conv2D(32, 3, activation="relu"),  # (B, 30, 30, 32): local edges, colours
            keras.layers.MaxPooling2D(),  # (B, 15, 15, 32): halve resolution, some shift tolerance
            keras.layers.Conv2D(64, 3, activation="relu"),  # (B, 13, 13, 64): textures
            keras.layers.MaxPooling2D(),  # (B, 6, 6, 64)
            keras.layers.Flatten(),  # (B, 2304)
            keras.layers.Dense(64, activation="relu"),  # (B, 64); this layer holds most weights
            keras.layers.Dense(num_classes),  # (B, num_classes) logits
        ]
    )


def train(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Train ``model`` in place on images ``x`` (N, H, W, C) float32 and int labels ``y`` (N,).

    Returns the Keras ``History``. ``callbacks`` are passed to ``fit`` (progress display).
    """
    # Adam instead of the seed's plain SGD: with lr=0.01 and no momentum, SGD needs many
    # more epochs to get anywhere on CIFAR; Adam adapts per-parameter step sizes and
    # converges in a handful of epochs. SGD(momentum=0.9) would also do.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        # Integer labels + sparse loss: no one-hot copy of y (the seed used to_categorical).
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model.fit(
        x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks
    )


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """2000 train / 500 test images, (N, 32, 32, 3) float32 in [0, 1], labels int in [0, 10)."""
    return synthetic.class_images(n_train=2000, n_test=500, num_classes=10, seed=seed)


def check(impl: object) -> SolutionReport:
    """Train ``impl.build_model`` with ``impl.train`` on real and on shuffled labels."""
    report = SolutionReport(solution="training.cnn_image_classifier")
    data = make_data()
    input_shape = data.x_train.shape[1:]

    # 1. Real labels: the model must learn the task.
    keras.utils.set_random_seed(SEED)
    model = impl.build_model(input_shape, data.num_classes)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    impl.train(  # type: ignore[attr-defined]
        model, data.x_train, data.y_train, callbacks=[progress.keras_callback("train CNN")]
    )
    train_s = time.perf_counter() - t0
    test_acc = accuracy(model, data.x_test, data.y_test)

    # 2. Control: identical architecture and training, labels permuted. Whatever this
    # reaches on the test set is what the pipeline gets without the image -> label signal.
    keras.utils.set_random_seed(SEED)
    control = impl.build_model(input_shape, data.num_classes)  # type: ignore[attr-defined]
    impl.train(  # type: ignore[attr-defined]
        control,
        data.x_train,
        synthetic.shuffled_labels(data.y_train, seed=SEED + 1),
        callbacks=[progress.keras_callback("train CNN on shuffled labels")],
    )
    shuffled_acc = accuracy(control, data.x_test, data.y_test)

    report.metric("test accuracy", test_acc)
    report.metric("shuffled-label test accuracy", shuffled_acc)
    report.metric("chance accuracy", 1.0 / data.num_classes)
    report.metric("parameters", int(model.count_params()))
    report.metric("train wall time", train_s, "s")
    report.check("test accuracy", test_acc, ">=", 0.9, "CNN learns the 10-class task")
    report.check(
        "shuffled-label test accuracy",
        shuffled_acc,
        "<=",
        0.2,
        "same model on permuted labels stays near chance (0.1): accuracy comes from the signal",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
