"""Mixed precision: float16 gradients underflow without loss scaling; bfloat16 does not.

Mixed precision computes the layers in a 16-bit type and keeps what needs range or
precision in float32. Keras says which with a dtype policy: under ``mixed_float16`` or
``mixed_bfloat16`` a layer's variables (the master weights) are float32, its matmuls run
in the 16-bit type, and the optimizer updates the float32 variables. The softmax and the
loss stay float32 too: the model's last layer is given ``dtype="float32"``.

float16 has 5 exponent bits: nothing below 2^-24 ≈ 6e-8 survives (normal numbers end at
2^-14 ≈ 6.1e-5). Backpropagated activation gradients are often that small; here the
loss is multiplied by 1e-5 (as a small auxiliary loss, or late training, makes it), so
the gradients reaching the float16 layers round to zero: without loss scaling ~93% of the
weight-gradient entries are exactly zero and training stalls. Loss scaling multiplies the
loss by S (``LossScaleOptimizer``, dynamic: S starts at 2^15, halves when a gradient
overflows to inf/NaN and that step is skipped, grows after 2000 finite steps), so the
backward pass runs on S-times larger values, then divides the float32 gradients by S
before the update. bfloat16 has float32's 8 exponent bits (smallest normal ~1.2e-38): it
needs no loss scaling, at the price of 8 mantissa bits (eps 2^-7, float16's is 2^-10).

The check builds the candidate's model under each policy and trains it with the
candidate's step; it compares the gradients with float32's, counts the exactly-zero ones,
and compares the training loss after 30 Adam steps with float32's. Wrong answers caught:
no loss scaling (zero-gradient share), the loss scaled but the gradients not unscaled
(gradients 2^15 times too large; with plain SGD the update would be too), the softmax
left in float16 (output dtype).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
NUM_FEATURES = 16
NUM_CLASSES = 4
BATCH_SIZE = 256  # one full batch per step
LOSS_WEIGHT = 1e-5  # makes the backpropagated gradients small enough to underflow float16
STEPS = 30
LEARNING_RATE = 1e-2
MIXED = ("mixed_float16", "mixed_bfloat16")
# Relative L2 error of the gradients against float32's: a few units of the 16-bit type's
# eps (float16 2^-10 ~ 1e-3, bfloat16 2^-7 ~ 7.8e-3), with margin.
GRAD_TOLERANCE = {"mixed_float16": 0.01, "mixed_bfloat16": 0.05}
VARIABLES_CHECK = "variables float32 under both mixed policies (share)"
COMPUTE_CHECK = "hidden layers compute in the policy's 16-bit type (share)"
OUTPUT_CHECK = "model output float32 under both mixed policies (share)"
ZERO_CHECK = {p: f"exactly-zero gradient entries, {p} (share)" for p in MIXED}
GRAD_CHECK = {p: f"gradients vs float32, {p} (relative L2 error)" for p in MIXED}
TRAIN_CHECK = "final loss vs float32's after training, worst mixed policy (ratio)"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_model", "wrap_optimizer", "train_step")

# -----------------------------------------------------------------------------
# The answer: a model under a dtype policy, the optimizer that goes with it, one step


def build_model(policy: str, num_features: int, num_classes: int) -> keras.Model:
    """An MLP (B, num_features) -> (B, num_classes) class probabilities, under ``policy``
    ("float32", "mixed_float16" or "mixed_bfloat16").

    The hidden and logit layers compute in the policy's type with float32 variables; the
    softmax is its own layer in float32, so the probabilities and the loss are float32.
    """
    return keras.Sequential(
        [
            keras.layers.Input((num_features,)),  # (B, 16) float32
            keras.layers.Dense(32, activation="tanh", dtype=policy),  # (B, 32) 16-bit
            keras.layers.Dense(32, activation="tanh", dtype=policy),  # (B, 32) 16-bit
            keras.layers.Dense(num_classes, dtype=policy),  # (B, classes) logits, 16-bit
            # exp and the normalising sum need float32: in float16 a probability near 1
            # rounds to 1 (spacing 4.9e-4 below 1) and the loss of a confident example to 0.
            keras.layers.Activation("softmax", dtype="float32"),  # (B, classes) float32
        ]
    )


def wrap_optimizer(
    policy: str, optimizer: keras.optimizers.Optimizer
) -> keras.optimizers.Optimizer:
    """The optimizer to train under ``policy`` with: ``optimizer`` wrapped in a dynamic
    ``LossScaleOptimizer`` for mixed_float16; unchanged for float32 and mixed_bfloat16
    (bfloat16 has float32's exponent range, so its gradients do not underflow)."""
    if keras.mixed_precision.Policy(policy).compute_dtype == "float16":
        # Dynamic: starts at 2^15, halves and skips the step on inf/NaN, doubles after
        # 2000 finite steps; finds the largest scale that does not overflow.
        return keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer


def train_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    x: tf.Tensor,
    y: tf.Tensor,
    loss_weight: float,
) -> list[tf.Tensor]:
    """One update of ``model`` on (x, y): x (B, features) float32, y (B,) int labels; the
    loss is ``loss_weight`` times the mean sparse cross-entropy of the model's probabilities.

    Returns the gradients it applied, float32 and at the loss's true scale (unscaled), one
    per trainable variable. Works under tf.function.
    """
    scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
    with tf.GradientTape() as tape:
        probs = model(x, training=True)  # (B, classes) float32
        loss = loss_weight * tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
        # x S (2^15): the backward pass through the float16 layers runs on values S times
        # larger, above float16's smallest subnormal 2^-24.
        target = optimizer.get_scaled_loss(loss) if scaled else loss
    grads = tape.gradient(target, model.trainable_variables)  # float32: the variables' type
    if scaled:
        grads = optimizer.get_unscaled_gradients(grads)  # / S, in float32: the true gradient
    # A LossScaleOptimizer skips the step (and halves S) if any gradient is inf or NaN.
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return list(grads)


# -----------------------------------------------------------------------------
# Data, runs under each policy, and measurement


def make_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """x (256, 16) float32 standard normal; y (256,) the index of the largest of x's first
    4 features: a task an MLP learns in a few dozen Adam steps."""
    x = synthetic.rng(seed).normal(size=(BATCH_SIZE, NUM_FEATURES)).astype(np.float32)
    return x, np.argmax(x[:, :NUM_CLASSES], axis=1).astype(np.int32)


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_model(self, policy: str, num_features: int, num_classes: int) -> keras.Model: ...

    def wrap_optimizer(
        self, policy: str, optimizer: keras.optimizers.Optimizer
    ) -> keras.optimizers.Optimizer: ...

    def train_step(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        x: tf.Tensor,
        y: tf.Tensor,
        loss_weight: float,
    ) -> list[tf.Tensor]: ...


@dataclass(frozen=True)
class PolicyRun:
    """One model trained under one policy from the shared initial weights."""

    model: keras.Model
    grads: np.ndarray  # (P,) float64, the first step's gradients, flattened
    losses: list[float]  # the unweighted loss before each step, then after the last
    skipped: int  # steps the optimizer skipped (loss-scale overflow)
    loss_scale: float  # the final loss scale (1 without a LossScaleOptimizer)


def unweighted_loss(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of the model's probabilities, in float32, without LOSS_WEIGHT."""
    probs = tf.cast(model(x, training=False), tf.float32)
    return float(tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs)))


def train_under(
    impl: Answer,
    policy: str,
    initial: list[np.ndarray],
    optimizer: keras.optimizers.Optimizer,
    phase: str,
) -> PolicyRun:
    """Build ``impl``'s model under ``policy``, set ``initial``, take STEPS steps with
    ``optimizer`` (already wrapped as the run wants) through ``impl.train_step``.

    Progress goes out as ``phase`` (one per run: three of the five runs are mixed_float16):
    after every step the unweighted loss and the loss scale, the same names in every run so
    a chart overlays them."""
    x, y = make_data()
    model = impl.build_model(policy, NUM_FEATURES, NUM_CLASSES)
    model.set_weights(initial)
    step = tf.function(lambda: impl.train_step(model, optimizer, x, y, LOSS_WEIGHT))
    events.start(phase, STEPS)

    def current_scale() -> float:
        """A LossScaleOptimizer's S now (the property is a fresh tensor each read), else 1."""
        scale = getattr(optimizer, "loss_scale", None)
        return float(scale.numpy()) if scale is not None else 1.0

    first: list[tf.Tensor] = []
    losses, skipped = [], 0
    for i in range(STEPS):
        losses.append(unweighted_loss(model, x, y))
        before = current_scale()
        # The loss after i steps (measured before step i + 1), with the scale it used.
        events.advance(phase, i, loss=losses[-1], loss_scale=before)
        grads = step()
        skipped += current_scale() < before  # S halves exactly when the step is skipped
        first = first or list(grads)
    losses.append(unweighted_loss(model, x, y))
    events.advance(phase, STEPS, loss=losses[-1], loss_scale=current_scale())
    events.finish(phase)
    flat = np.concatenate([np.ravel(np.asarray(g, dtype=np.float64)) for g in first])
    return PolicyRun(model, flat, losses, skipped, current_scale())


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """|got - expected|_2 / |expected|_2 (inf when the shapes differ)."""
    if got.shape != expected.shape:
        return float("inf")
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def check(impl: Answer) -> SolutionReport:
    """Train ``impl``'s model under float32 and both mixed policies; compare with float32."""
    report = SolutionReport(solution="distributed.mixed_precision_loss_scaling")
    keras.utils.set_random_seed(SEED)
    initial = build_model("float32", NUM_FEATURES, NUM_CLASSES).get_weights()
    small = tf.constant([1e-4, 1e-6, 2e-8, 1e-30], tf.float32)  # gradient-sized values
    for dtype in (tf.float16, tf.bfloat16):
        kept = tf.cast(tf.cast(small, dtype), tf.float32).numpy()
        report.metric(
            f"1e-4, 1e-6, 2e-8, 1e-30 cast to {dtype.name} and back",
            ", ".join(f"{v:.3g}" for v in kept),
        )
    report.metric("loss weight", LOSS_WEIGHT)

    with report.timed("training under both mixed policies and float32"):
        runs = {
            policy: train_under(
                impl,
                policy,
                initial,
                impl.wrap_optimizer(policy, keras.optimizers.Adam(LEARNING_RATE)),
                f"train: {policy}",
            )
            for policy in MIXED
        }
        # The yardstick: float32 training by this module's own functions, independent of
        # the candidate's (a wrong train_step must not move its own reference too).
        float32 = keras.optimizers.Adam(LEARNING_RATE)
        runs["float32"] = train_under(_Reference(), "float32", initial, float32, "train: float32")
    _controls(report, initial, runs["float32"])
    _where_float32_stays(report, runs)
    _gradients(report, runs)
    _training(report, runs)
    return report


def _where_float32_stays(report: SolutionReport, runs: dict[str, PolicyRun]) -> None:
    """Variables float32, hidden layers 16-bit, output float32: read off the built models."""
    mixed = [runs[p].model for p in MIXED]
    variables = [v for model in mixed for v in model.variables]
    float32_vars = float(np.mean([v.dtype == tf.float32 for v in variables])) if variables else 0
    hidden = [
        (policy, layer)
        for policy in MIXED
        for layer in [la for la in runs[policy].model.layers if la.weights][:-1]
    ]
    sixteen = {p: keras.mixed_precision.Policy(p).compute_dtype for p in MIXED}
    computes = [layer.compute_dtype == sixteen[policy] for policy, layer in hidden]
    x, _ = make_data()
    outputs = [model(x[:2], training=False).dtype == tf.float32 for model in mixed]
    report.metric(
        "output dtypes (mixed_float16, mixed_bfloat16)",
        ", ".join(model(x[:2]).dtype.name for model in mixed),
    )
    report.check(
        VARIABLES_CHECK,
        float32_vars,
        "==",
        1,
        "share of the mixed models' variables that are float32: the master weights, so an "
        "update ~1e-4 of a weight is not lost to 16-bit rounding (float16 spacing at 1 is "
        "1e-3); a model built with dtype='float16' (pure float16) has none",
    )
    report.check(
        COMPUTE_CHECK,
        float(np.mean(computes)) if computes else 0.0,
        "==",
        1,
        "share of the layers with weights, except the last, whose compute dtype is the "
        "policy's 16-bit type: that is where the speed and memory come from; a model that "
        "ignores the policy computes in float32: 0",
    )
    report.check(
        OUTPUT_CHECK,
        float(np.mean(outputs)),
        "==",
        1,
        "share of the mixed models whose output (the softmax probabilities) is float32: "
        "exp, the normalising sum and the log of the loss need float32's precision and "
        "range; the softmax left in the policy's type outputs float16/bfloat16: 0",
    )


def _gradients(report: SolutionReport, runs: dict[str, PolicyRun]) -> None:
    """The first step's gradients under each mixed policy against float32's (this module's
    own float32 step, from the same weights)."""
    reference = runs["float32"].grads
    report.metric("exactly-zero gradient entries, float32 (share)", float(np.mean(reference == 0)))
    for policy in MIXED:
        run = runs[policy]
        zero = float(np.mean(run.grads == 0)) if run.grads.size else 1.0
        error = relative_error(run.grads, reference)
        report.metric(f"loss scale at the end, {policy}", run.loss_scale)
        report.check(
            ZERO_CHECK[policy],
            zero,
            "<=",
            0.01,
            "share of the first step's gradient entries that are exactly 0 (float32 has none; "
            "tanh units are never exactly flat): with the loss x1e-5 the gradients reaching "
            "the float16 layers fall below 2^-24 and round to 0 unless the loss is scaled: "
            "mixed_float16 without loss scaling ~0.93; bfloat16 reaches 1e-38, so none",
        )
        report.check(
            GRAD_CHECK[policy],
            error,
            "<=",
            GRAD_TOLERANCE[policy],
            "|g - g_float32| / |g_float32| over all entries: 16-bit rounding of inputs, "
            "weights and activations, a few eps of the type (float16 2^-10, bfloat16 2^-7; "
            "reference ~5e-4 and ~9e-3); gradients not divided by the loss scale are 2^15 "
            "= 32768 times too large (error ~3e4), unscaled float16 ones mostly 0 (~1)",
        )


def _training(report: SolutionReport, runs: dict[str, PolicyRun]) -> None:
    """Does the mixed run train like the float32 one? The loss after STEPS Adam steps."""
    final = {p: runs[p].losses[-1] for p in runs}
    for policy, loss in final.items():
        report.metric(f"loss {runs[policy].losses[0]:.3f} -> after {STEPS} steps, {policy}", loss)
    worst = max(final[p] / final["float32"] for p in MIXED)
    report.check(
        TRAIN_CHECK,
        worst,
        "<=",
        1.05,
        f"cross-entropy after {STEPS} Adam steps (lr {LEARNING_RATE}) from the same weights, "
        f"divided by that of this module's float32 training (reference ~1.00 for float16 "
        f"with loss scaling, ~1.01 for bfloat16): 16-bit rounding changes it by about 1%; "
        f"without loss scaling most float16-layer gradients are 0 and the loss ends ~1.7x "
        f"float32's; a step that applies nothing stays at the initial loss, ~2.0x",
    )


def _controls(report: SolutionReport, initial: list[np.ndarray], float32: PolicyRun) -> None:
    """What mixed_float16 does without loss scaling, and dynamic scaling from a scale that
    is too large: the reference answer run with other optimizers. Metrics, not checks: they
    do not depend on the candidate's code; they show what the checks guard against.
    """
    this = _Reference()
    plain = train_under(
        this,
        "mixed_float16",
        initial,
        keras.optimizers.Adam(LEARNING_RATE),
        "train: mixed_float16, no loss scaling",
    )
    report.metric(
        "control, mixed_float16 without loss scaling: exactly-zero gradient share",
        float(np.mean(plain.grads == 0)),
    )
    report.metric(
        "control, mixed_float16 without loss scaling: gradient relative error",
        relative_error(plain.grads, float32.grads),
    )
    report.metric(
        f"control, mixed_float16 without loss scaling: loss after {STEPS} steps",
        plain.losses[-1],
    )
    too_large = keras.mixed_precision.LossScaleOptimizer(
        keras.optimizers.Adam(LEARNING_RATE), initial_scale=2.0**40
    )
    dynamic = train_under(
        this, "mixed_float16", initial, too_large, "train: mixed_float16, scale from 2^40"
    )
    report.metric(
        "control, dynamic loss scale from 2^40: steps skipped (overflow)", dynamic.skipped
    )
    report.metric("control, dynamic loss scale from 2^40: scale at the end", dynamic.loss_scale)
    report.metric(
        f"control, dynamic loss scale from 2^40: loss after {STEPS} steps", dynamic.losses[-1]
    )


class _Reference:
    """This module's answer functions, as an ``Answer`` for the controls."""

    build_model = staticmethod(build_model)
    wrap_optimizer = staticmethod(wrap_optimizer)
    train_step = staticmethod(train_step)


if __name__ == "__main__":
    print_check_of(__name__)
