"""Transfer learning with a small ResNet: pre-train on a source task, fine-tune on a few shots.

A ResNet-style network (a stem, three residual blocks, global average pooling, a dense
head) is built locally with random weights: nothing is downloaded. It is pre-trained on a
source task with plenty of labels (10 texture classes, 1000 images), then its backbone is
reused for a target task with 10 *new* classes and only 5 labelled images per class:
first frozen under a new head, then unfrozen and fine-tuned with a small learning rate.
The fine-tuned model beats the same architecture trained from scratch on the same 50
images by a wide margin of held-out target accuracy; that margin is what transfer buys
(and it holds when the scratch baseline gets 16x the epochs: see ``--scratch-epochs``).
A check proves the backbone is really fine-tuned (its conv kernels move in phase 2), and
one proves the block has a skip connection (zeroed convs give the identity for x >= 0).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.fit import fit_classifier
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
IMAGE_SIZE = 16
SOURCE_SEED, TARGET_SEED = 0, 100  # different seeds: different class textures
NUM_SOURCE_CLASSES = NUM_TARGET_CLASSES = 10
N_SOURCE = 1000
SHOTS = 5  # labelled target images per class
PRETRAIN_EPOCHS, PRETRAIN_BATCH = 4, 50  # 20 steps per epoch, 80 in all
HEAD_EPOCHS, FINE_TUNE_EPOCHS = 20, 10
FEW_SHOT_BATCH = 25  # 2 steps per epoch on the 50 target images
SCRATCH_EPOCHS = HEAD_EPOCHS + FINE_TUNE_EPOCHS
BN_MOMENTUM = 0.9  # Keras' 0.99 averages over ~100 steps: too slow for runs this short


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("residual_block", "build_resnet", "fine_tune")

# -----------------------------------------------------------------------------
# The answer: a residual block, a small ResNet, and fine-tuning its backbone


def residual_block(x: tf.Tensor, filters: int, stride: int = 1) -> tf.Tensor:
    """ResNet basic block on a functional-API tensor ``x`` (B, H, W, C).

    Returns (B, H/stride, W/stride, filters): ``relu(F(x) + shortcut(x))`` with
    F = conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN. The shortcut is the identity when
    shapes match, else a strided 1x1 conv + BN (a projection) so the sum is defined.
    This is the original (post-activation) block: the ReLU after the add gates the skip
    path too, so with F = 0 the block is relu(x), the identity only where x >= 0. The
    pre-activation block of ResNet V2 (He et al. 2016, "Identity Mappings in Deep Residual
    Networks") moves BN and ReLU into F and returns ``x + F(x)``: a clean identity path.
    """
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, stride, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(y)  # (B, H/s, W/s, filters)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, stride, use_bias=False)(x)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(shortcut)
    # The addition is the point: a block only has to learn a correction F(x) to its input,
    # and the gradient reaches earlier layers through the shortcut without passing F's
    # weights. Here it still passes the ReLU below (d relu / d z = 0 where F(x) + x < 0);
    # only pre-activation blocks (no ReLU after the add) carry it through untouched.
    y = keras.layers.Add()([y, shortcut])  # (B, H/s, W/s, filters)
    return keras.layers.ReLU()(y)


def build_resnet(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """A ResNet mapping images (B, H, W, 3) float32 in [0, 1] to logits (B, num_classes).

    Everything up to the global average pooling is the backbone (images -> (B, 32)
    features); the last layer is the classification head. ~20k parameters, randomly
    initialised: the analogue of ``keras.applications.ResNet50(weights=None)`` (25.6M
    parameters, far too slow to pre-train on a CPU) at 1/1000 of its size.
    """
    inputs = keras.layers.Input(input_shape)  # (B, 16, 16, 3)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)  # stem
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = keras.layers.ReLU()(x)  # (B, 16, 16, 8)
    x = residual_block(x, 8)  # (B, 16, 16, 8)
    x = residual_block(x, 16, stride=2)  # (B, 8, 8, 16): halve resolution, double channels
    x = residual_block(x, 32, stride=2)  # (B, 4, 4, 32)
    features = keras.layers.GlobalAveragePooling2D()(x)  # (B, 32)
    logits = keras.layers.Dense(num_classes, name="head")(features)  # (B, num_classes)
    return keras.Model(inputs, logits)


def fine_tune(
    pretrained: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> keras.Model:
    """A classifier for a new task on top of ``pretrained``'s backbone.

    ``pretrained``: a trained ``build_resnet`` model (its last layer is the old head);
    ``x`` (N, H, W, 3) float32, ``y`` (N,) int labels in [0, num_classes). Returns a new
    model (B, H, W, 3) -> logits (B, num_classes) that shares (and, in phase 2, updates)
    the pretrained backbone's weights.
    """
    # The backbone: the pretrained graph up to the layer before the old head. Its layers
    # ARE the pretrained layers, weights included (keras.models.clone_model would copy the
    # architecture with fresh random weights: that is training from scratch).
    backbone = keras.Model(pretrained.input, pretrained.layers[-2].output)  # (B, 32)
    inputs = keras.layers.Input(pretrained.input_shape[1:])
    # training=False: BatchNorm keeps using its moving statistics from pre-training, even
    # after unfreezing; batch statistics of a 25-image few-shot batch would wreck them.
    features = backbone(inputs, training=False)
    outputs = keras.layers.Dense(num_classes)(features)  # the new head, random init
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # Phase 1: backbone frozen, only the head learns. A random head sends large, noisy
    # gradients; flowing into the backbone they would destroy the pretrained features.
    # legacy.Adam: the same Adam update as keras.optimizers.Adam, one fused op per variable;
    # each compile + fit traces its training step, and with the newer optimizer's per-variable
    # graph a trace of this network costs ~2 s more here (see fit_harness).
    backbone.trainable = False
    model.compile(keras.optimizers.legacy.Adam(1e-2), loss, metrics=["accuracy"])
    model.fit(x, y, batch_size=FEW_SHOT_BATCH, epochs=HEAD_EPOCHS, verbose=0, callbacks=callbacks)

    # Phase 2: unfreeze and fine-tune everything with a 100x smaller learning rate, so the
    # features adapt a little to the new classes without being overwritten. Changing
    # `trainable` requires compiling again.
    backbone.trainable = True
    model.compile(keras.optimizers.legacy.Adam(1e-4), loss, metrics=["accuracy"])
    model.fit(
        x, y, batch_size=FEW_SHOT_BATCH, epochs=FINE_TUNE_EPOCHS, verbose=0, callbacks=callbacks
    )
    return model


# -----------------------------------------------------------------------------
# Data, pre-training, the from-scratch baseline and measurement


@dataclass(frozen=True)
class TransferData:
    """A large labelled source task and a few-shot target task with other classes."""

    source: synthetic.Split
    target: synthetic.Split


def make_data(seed: int = SEED) -> TransferData:
    """Images (N, 16, 16, 3) float32 in [0, 1], int labels in [0, 10).

    Source: 1000 train / 500 test images of 10 texture classes. Target: 10 other textures
    (another template seed), ``SHOTS`` = 5 train images per class (50 in all), 500 test.
    """
    textures = functools.partial(synthetic.class_images, size=IMAGE_SIZE, noise=0.25, max_shift=2)
    source = textures(N_SOURCE, 500, NUM_SOURCE_CLASSES, seed=SOURCE_SEED + seed)
    pool = textures(
        NUM_TARGET_CLASSES * SHOTS * 4, 500, NUM_TARGET_CLASSES, seed=TARGET_SEED + seed
    )
    # SHOTS images of each class from the pool: (50,) indices, class-balanced.
    few = np.concatenate(
        [np.flatnonzero(pool.y_train == c)[:SHOTS] for c in range(NUM_TARGET_CLASSES)]
    )
    target = synthetic.Split(pool.x_train[few], pool.y_train[few], pool.x_test, pool.y_test)
    return TransferData(source, target)


IDENTITY_CHECK = "block with zeroed convs is the identity (skip connection)"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def residual_block(self, x: tf.Tensor, filters: int, *, stride: int) -> tf.Tensor: ...

    def build_resnet(self, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model: ...

    def fine_tune(
        self,
        pretrained: keras.Model,
        x: np.ndarray,
        y: np.ndarray,
        num_classes: int,
        *,
        callbacks: list[keras.callbacks.Callback],
    ) -> keras.Model: ...


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl.residual_block`` with every conv kernel zeroed against the identity. Cheap.

    With the kernels at 0 the residual branch is BN(0) = beta = 0 (fresh BN, inference
    mode), so a block with an identity shortcut returns relu(0 + x) = x for x >= 0; a plain
    block (no skip), or one whose shortcut is always a (here zeroed) 1x1 projection,
    returns 0. The probe is non-negative because the ReLU after the add maps x < 0 to 0 in
    this post-activation block; a pre-activation block (x + F(x)) passes as well.
    """
    keras.utils.set_random_seed(SEED)
    same = keras.layers.Input((8, 8, 16))
    block = keras.Model(same, impl.residual_block(same, 16, stride=1))
    for layer in block.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    probe = np.random.default_rng(SEED).uniform(0, 1, (4, 8, 8, 16)).astype(np.float32)
    out = block(probe, training=False).numpy()  # (4, 8, 8, 16)
    # One add of an exact 0 and a ReLU: float32 gives x back to the bit. atol 1e-6 +
    # rtol 1e-5 still allows a BN epsilon or fused-kernel rounding on another CPU.
    return {IDENTITY_CHECK: compare(out, probe, atol=1e-6, rtol=1e-5)}


def fit_harness(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    phase: str,
    learning_rate: float,
) -> None:
    """Train ``model`` (images (N, H, W, 3) -> logits (N, K)) in place on int labels ``y``
    (N,): ``kit.fit.fit_classifier`` with ``keras.optimizers.legacy.Adam``, the same update
    rule in one fused op per variable. The newer optimizer's update graph, ~20 ops per
    variable for this network's 29, costs ~2 s more to trace here."""
    fit_classifier(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        phase=phase,
        optimizer=keras.optimizers.legacy.Adam(learning_rate),
    )


def conv_kernels(model: keras.Model) -> list[np.ndarray]:
    """Copies of every 4-D weight (conv kernels, nested models included), in model order."""
    return [w.numpy().copy() for w in model.weights if len(w.shape) == 4]


def relative_change(before: list[np.ndarray], after: list[np.ndarray]) -> float:
    """||after - before|| / ||before||, all kernels flattened into one vector (inf if the
    kernel shapes differ)."""
    if [b.shape for b in before] != [a.shape for a in after]:
        return float("inf")
    b = np.concatenate([k.ravel() for k in before]).astype(np.float64)  # (n_weights,)
    a = np.concatenate([k.ravel() for k in after]).astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def scratch_accuracy(
    build: Callable[..., keras.Model], target: synthetic.Split, epochs: int
) -> float:
    """Target test accuracy of ``build``'s network trained from random weights on the few
    target images for ``epochs`` epochs (Adam 1e-3, batch 25 as in fine-tuning): the baseline
    transfer must beat."""
    keras.utils.set_random_seed(SEED)
    scratch = build(target.x_train.shape[1:], NUM_TARGET_CLASSES)
    fit_harness(
        scratch,
        target.x_train,
        target.y_train,
        epochs=epochs,
        batch_size=FEW_SHOT_BATCH,
        phase=f"train from scratch ({epochs})",
        learning_rate=1e-3,
    )
    scratch_acc: float = accuracy(scratch, target.x_test, target.y_test)
    return scratch_acc


def check(impl: Answer) -> SolutionReport:
    """Check the block, pre-train ``impl.build_resnet``, fine-tune; compare with from-scratch."""
    report = SolutionReport(solution="training.resnet_transfer")
    _residual_block(report, impl)
    data = make_data()
    pretrained = _pretrain(report, impl, data)
    tuned_acc = _fine_tune(report, impl, pretrained, data.target)
    _versus_scratch(report, impl, data.target, tuned_acc)
    return report


def _residual_block(report: SolutionReport, impl: Answer) -> None:
    """1. The block: shapes, and a real skip connection (see reference_comparisons)."""
    keras.utils.set_random_seed(SEED)
    down = keras.layers.Input((16, 16, 8))
    down_shape = tuple(impl.residual_block(down, 16, stride=2).shape[1:])
    report.check(
        "strided block output shape is (H/2, W/2, filters)",
        float(down_shape == (8, 8, 16)),
        "==",
        1.0,
        f"got {down_shape} for input (16, 16, 8), filters 16, stride 2",
    )
    identity = reference_comparisons(impl)[IDENTITY_CHECK]
    report.metric("zeroed block: max |block(x) - x|", identity.max_abs_diff)
    report.check_close(
        IDENTITY_CHECK,
        identity,
        "x >= 0 (the ReLU after the add zeroes x < 0 in this post-activation block); exact "
        "in float32, atol 1e-6 + rtol 1e-5 for any CPU; a block without a skip (or with an "
        "always-on, here zeroed, projection) returns 0 and lands at ~9e4; " + identity.detail,
    )


def _pretrain(report: SolutionReport, impl: Answer, data: TransferData) -> keras.Model:
    """2. Pre-train impl's ResNet on the source task; returns it."""
    source, target = data.source, data.target
    keras.utils.set_random_seed(SEED)
    pretrained = impl.build_resnet(source.x_train.shape[1:], NUM_SOURCE_CLASSES)
    fit_harness(
        pretrained,
        source.x_train,
        source.y_train,
        epochs=PRETRAIN_EPOCHS,
        batch_size=PRETRAIN_BATCH,
        phase="pre-train on source",
        learning_rate=5e-3,
    )
    source_acc = accuracy(pretrained, source.x_test, source.y_test)
    report.metric("parameters", int(pretrained.count_params()))
    report.metric("source images (pre-training)", len(source.x_train))
    report.metric("target images (fine-tuning)", len(target.x_train))
    report.metric("source test accuracy after pre-training", source_acc)
    report.check(
        "source test accuracy after pre-training",
        source_acc,
        ">=",
        0.9,
        "the backbone learned features worth transferring",
    )
    return pretrained


def _fine_tune(
    report: SolutionReport, impl: Answer, pretrained: keras.Model, target: synthetic.Split
) -> float:
    """3. Transfer: fine-tune on the 50 target images; returns the target test accuracy.
    The pretrained conv kernels are copied first: the fine-tuned model shares (and in
    phase 2 updates) those variables."""
    pretrained_kernels = conv_kernels(pretrained)
    keras.utils.set_random_seed(SEED)
    tuned = impl.fine_tune(
        pretrained,
        target.x_train,
        target.y_train,
        NUM_TARGET_CLASSES,
        callbacks=[events.keras_callback("fine-tune on target")],
    )
    tuned_acc: float = accuracy(tuned, target.x_test, target.y_test)
    backbone_change = relative_change(pretrained_kernels, conv_kernels(tuned))
    report.metric("target test accuracy, fine-tuned", tuned_acc)
    report.metric("backbone conv kernels: relative change in fine-tuning", backbone_change)
    report.check(
        "fine-tuning changed the pretrained backbone",
        backbone_change,
        ">=",
        1e-4,
        "||W_tuned - W_pretrained|| / ||W_pretrained|| over the conv kernels: phase 2 must "
        "update the backbone (the reference moves them ~1e-2 at lr 1e-4; a backbone never "
        "unfrozen gives exactly 0)",
    )
    return tuned_acc


def _versus_scratch(
    report: SolutionReport, impl: Answer, target: synthetic.Split, tuned_acc: float
) -> None:
    """4. Baseline: the same architecture from random weights, same 50 images, as many
    epochs as fine-tuning had in all. It fits its 50 images by then and gains slowly after:
    `python -m solutions.training.resnet_transfer --scratch-epochs 60 120 240 480` prints
    the longer budgets the answer quotes (0.43, 0.46, 0.48, 0.50: far below fine-tuning)."""
    scratch_acc = scratch_accuracy(impl.build_resnet, target, SCRATCH_EPOCHS)
    report.metric("target test accuracy, from scratch", scratch_acc)
    report.metric("target chance accuracy", 1.0 / NUM_TARGET_CLASSES)
    report.check(
        "target accuracy: fine-tuned - from scratch",
        tuned_acc - scratch_acc,
        ">=",
        0.2,
        "pre-trained features beat random init on the same 50 images",
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--scratch-epochs"]:  # the from-scratch baseline, longer budgets
        transfer_target = make_data().target
        for n_epochs in map(int, sys.argv[2:]):
            acc = scratch_accuracy(build_resnet, transfer_target, n_epochs)
            print(f"from scratch, {n_epochs} epochs: target test accuracy {acc:.3f}")
    else:
        print_check_of(__name__)
