"""CNN image classifier on CIFAR-shaped images.

A small convolutional network (two conv/pool blocks, then a dense head) learns to
classify 32x32x3 images in 10 classes to >= 90% test accuracy in a few seconds on a CPU.
Two controls, each for a different failure. The same architecture trained on shuffled
labels stays at chance on the test set: that supports (does not prove) that the accuracy
comes from the image -> label relation the model learned, not from the pipeline, the
metric or the class balance. It cannot see test images that also sit in the training set
(in the control such a copy carries a random label, so it stays at chance either way), so
a separate dedup check hashes every image and finds no test image among the training
images, and finds all 50 that are planted in a deliberately leaky split. What the control
does catch is a pipeline that lets the test labels in: a ``train`` that also fits the test
split keeps those labels true while the training labels are permuted, and the control
scores far above chance.
The seed used CIFAR-10 itself (a download) and plain SGD; here the images are synthetic
(class textures, shifted, contrast-scaled and noisy) and the optimiser is Adam.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import numpy as np
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EPOCHS = 4
BATCH_SIZE = 16  # 800 / 16 = 50 updates per epoch, 200 in all
N_TRAIN, NOISE = 800, 0.3  # training images; pixel noise std of the synthetic textures
N_LEAKED = 50  # test images copied into the leaky training set of the dedup check: 10%


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_model", "train", "leaked_test_images")

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
    *,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Train ``model`` in place on images ``x`` (N, H, W, C) float32 and int labels ``y`` (N,).

    Returns the Keras ``History``. ``callbacks`` are passed to ``fit`` (progress display).
    """
    # Adam instead of the seed's plain SGD: with lr=0.01 and no momentum, SGD needs many
    # more epochs to get anywhere on CIFAR; Adam adapts per-parameter step sizes and
    # converges in a handful of epochs. SGD(momentum=0.9) would also do. legacy.Adam is the
    # same update in one fused op per variable: fit traces its step ~1 s faster here.
    model.compile(
        optimizer=keras.optimizers.legacy.Adam(learning_rate=1e-3),
        # Integer labels + sparse loss: no one-hot copy of y (the seed used to_categorical).
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model.fit(
        x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=True, verbose=0, callbacks=callbacks
    )


def leaked_test_images(x_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Indices (K,) int64 of the test images (N_test, H, W, C) that also occur, byte for
    byte, among the training images (N_train, H, W, C): a train/test leak.

    One SHA-256 per image over its raw bytes: a set of N_train digests, then N_test look-ups,
    O(N) instead of comparing every pair of images. It finds exact copies only; a resized,
    re-encoded or slightly shifted copy (a near-duplicate) needs a perceptual hash or a
    nearest-neighbour search in a feature space.
    """

    def digest(image: np.ndarray) -> str:
        # dtype and shape go into the digest: the same bytes as another array type are no copy.
        image = np.ascontiguousarray(image)
        header = f"{image.dtype.str}{image.shape}".encode()
        return hashlib.sha256(header + image.tobytes()).hexdigest()

    train_digests = {digest(image) for image in x_train}
    return np.array(
        [i for i, image in enumerate(x_test) if digest(image) in train_digests], dtype=np.int64
    )


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """800 train / 500 test images, (N, 32, 32, 3) float32 in [0, 1], labels int in [0, 10)."""
    return synthetic.class_images(
        n_train=N_TRAIN, n_test=500, num_classes=10, noise=NOISE, seed=seed
    )


def leaky_split(data: synthetic.Split, n_leaked: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``data.x_train`` in which ``n_leaked`` random training images are replaced by
    test images (a split made after duplicating data, or from overlapping scrapes), and the
    sorted indices (n_leaked,) of the test images that now leak."""
    g = np.random.default_rng(seed)
    leaked = np.sort(g.choice(len(data.x_test), n_leaked, replace=False))  # test indices
    slots = g.choice(len(data.x_train), n_leaked, replace=False)  # where they land in train
    x_train = data.x_train.copy()
    x_train[slots] = data.x_test[leaked]
    return x_train, leaked


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def build_model(self, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model: ...

    def train(
        self, model: keras.Model, x: np.ndarray, y: np.ndarray, *, callbacks: list[Any]
    ) -> keras.callbacks.History: ...

    def leaked_test_images(self, x_train: np.ndarray, x_test: np.ndarray) -> np.ndarray: ...


def check(impl: Answer) -> SolutionReport:
    """Dedup the split with ``impl.leaked_test_images``; train ``impl.build_model`` with
    ``impl.train`` on real and on shuffled labels."""
    report = SolutionReport(solution="training.cnn_image_classifier")
    data = make_data()
    _dedup(report, impl, data)
    _real_labels(report, impl, data)
    _shuffled_label_control(report, impl, data)
    return report


def _dedup(report: SolutionReport, impl: Answer, data: synthetic.Split) -> None:
    """0. Dedup: no test image may also be a training image. The shuffled-label control
    cannot see this leak, so it gets its own check, and the dedup itself must find the
    copies planted in a leaky split (a dedup that finds nothing would pass the first part)."""
    found = np.asarray(impl.leaked_test_images(data.x_train, data.x_test))
    x_leaky, planted = leaky_split(data, N_LEAKED, seed=SEED + 2)
    found_leaky = np.asarray(impl.leaked_test_images(x_leaky, data.x_test))
    report.metric("test images found in the training set", len(found))
    report.metric(f"leaky split: planted copies found (of {N_LEAKED})", len(found_leaky))
    report.check(
        "no test image is a copy of a training image",
        len(found),
        "==",
        0,
        "SHA-256 of every image's bytes; a copy would be scored on memory, not generalisation "
        "(a dedup returning a boolean mask instead of indices counts 500 here)",
    )
    report.check(
        "dedup finds the test images planted in a leaky split",
        float(np.array_equal(np.sort(found_leaky), planted)),
        "==",
        1,
        f"{N_LEAKED} test images copied into the training set: exactly those indices are "
        f"flagged (found {len(found_leaky)}); a dedup that flags nothing finds 0",
    )


def _real_labels(report: SolutionReport, impl: Answer, data: synthetic.Split) -> None:
    """1. Real labels: the model must learn the task."""
    keras.utils.set_random_seed(SEED)
    model = impl.build_model(data.x_train.shape[1:], data.num_classes)
    with report.timed("train wall time"):
        impl.train(
            model, data.x_train, data.y_train, callbacks=[events.keras_callback("train CNN")]
        )
    report.metric("parameters", int(model.count_params()))

    test_acc = accuracy(model, data.x_test, data.y_test)
    report.check(
        "test accuracy",
        test_acc,
        ">=",
        0.9,
        "CNN learns the 10-class task; the seed's plain SGD(0.01) gets 0.11 in the same 4 "
        "epochs (wrong-answer fixture)",
    )


def _shuffled_label_control(report: SolutionReport, impl: Answer, data: synthetic.Split) -> None:
    """2. Control: identical architecture and training, labels permuted. Whatever this
    reaches on the test set is what the pipeline gets without the image -> label signal
    (class balance, a metric or evaluation bug). It says nothing about duplicates: a test
    image copied into the training set gets a random label here, so it cannot help."""
    keras.utils.set_random_seed(SEED)
    control = impl.build_model(data.x_train.shape[1:], data.num_classes)
    impl.train(
        control,
        data.x_train,
        synthetic.shuffled_labels(data.y_train, seed=SEED + 1),
        callbacks=[events.keras_callback("train CNN on shuffled labels")],
    )
    shuffled_acc = accuracy(control, data.x_test, data.y_test)
    report.metric("shuffled-label test accuracy", shuffled_acc)
    report.metric("chance accuracy", 1.0 / data.num_classes)
    report.check(
        "shuffled-label test accuracy",
        shuffled_acc,
        "<=",
        0.2,
        "same model on permuted labels stays near chance (0.1): supports that the accuracy "
        "comes from the learned image -> label relation, not the pipeline, metric or class "
        "balance (blind to train/test duplicates: see the dedup checks); a train that also "
        "fits the test split with its true labels reaches 0.70 here (wrong-answer variant)",
    )


if __name__ == "__main__":
    print_check_of(__name__)
