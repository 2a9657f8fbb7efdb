"""Gradient accumulation: k micro-batches, one update, equal to one large-batch step.

When the batch you need does not fit in memory, split it into ``k`` micro-batches, run
forward and backward on each, add up the gradients in accumulator variables, and apply the
optimizer ONCE per ``k`` micro-batches. The loss of a batch is a mean, so the large-batch
gradient is the mean of the micro-batch gradients: each micro-batch gradient must be
divided by ``k`` (or the sum divided once). Then every update is the large-batch update
and the weights after any number of updates equal those of large-batch training, for SGD
and for Adam alike, up to float32 summation order (``|diff| <= 1e-5 + 1e-4 * |w|``).

The wrong answers and what catches them:
- No ``1/k``: the gradient is ``k`` times too large. SGD's step is ``k`` times too long:
  every weight lands outside the tolerance, by up to ~0.3. Adam hides most of it: its
  update ``m / (sqrt(v) + eps)`` does not change when the gradient is scaled, except
  through ``eps``, so 85% of the weights stay within the tolerance and the largest
  difference is ~0.002; the weights whose gradients are tiny (``sqrt(v)`` comparable to
  eps) move differently, so the Adam comparison still fails, by far less. The check does
  not rely on that: the accumulated gradient itself is compared with the large-batch one.
- The optimizer applied after every micro-batch: ``k`` times the updates (``optimizer.
  iterations``), and Adam moves every weight about ``lr`` per update, so ``k`` times as far.
- Accumulators not reset after an update: from the second update on, every update carries
  all the gradients before it.

Accumulation is NOT equivalent with BatchNorm in training mode: each micro-batch is
normalized with its own statistics, so the sum of micro-batch gradients is not the
large-batch gradient (measured here on a BatchNorm model, metric "BatchNorm model: ...").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
BATCH_SIZE = 64  # the large batch: what one update should see
ACCUM_STEPS = 4  # k micro-batches of 16 per update
UPDATES = 6
SGD_LR = 0.5
ADAM_LR = 0.01
# Equal within ATOL + RTOL * |expected| (allclose rule); see reference_comparisons.
ATOL = 1e-5
RTOL = 1e-4
GRAD_CHECK = "accumulated gradient vs large-batch gradient (tolerance used)"
SGD_CHECK = "SGD: weights after accumulated updates vs large-batch steps (tolerance used)"
ADAM_CHECK = "Adam: weights after accumulated updates vs large-batch steps (tolerance used)"
ITERATIONS_CHECK = "optimizer updates per accumulation cycle (SGD and Adam runs)"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("accumulated_gradients", "train_accumulated")

# -----------------------------------------------------------------------------
# The answer: gradients accumulated over micro-batches, and a training loop that applies
# them once per cycle


def accumulated_gradients(
    model: keras.Model, x: np.ndarray, y: np.ndarray, accum_steps: int
) -> list[tf.Tensor]:
    """The gradient of the mean loss over the batch (x, y), computed ``accum_steps``
    micro-batches at a time.

    ``x``: (B, ...) float32, ``y``: (B,) int labels, B divisible by ``accum_steps``; the loss
    is sparse cross-entropy on the model's logits. Returns one tensor per trainable
    variable, shaped like it: equal to the gradient of the large batch's mean loss.
    """
    micro = len(x) // accum_steps  # B / k rows per micro-batch
    total = [tf.zeros_like(v) for v in model.trainable_variables]
    for i in range(accum_steps):
        xb, yb = x[i * micro : (i + 1) * micro], y[i * micro : (i + 1) * micro]  # (B/k, ...)
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)  # (B/k, classes)
            # The mean over B/k rows, divided by k: sum_i mean_i / k is the mean over B.
            loss = micro_batch_loss(yb, logits) / accum_steps
        grads = tape.gradient(loss, model.trainable_variables)
        total = [t + g for t, g in zip(total, grads, strict=True)]
    return total


def micro_batch_loss(y: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean sparse cross-entropy of (n,) labels against (n, classes) logits: a scalar."""
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def train_accumulated(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    accum_steps: int,
    updates: int,
) -> None:
    """Train ``model`` in place: ``updates`` optimizer updates, each on the next
    ``batch_size`` rows of (x, y) (in order, no shuffling), seen ``accum_steps``
    micro-batches at a time.

    The way it is written on a real accelerator: one accumulator variable per trainable
    variable, a compiled step that adds one micro-batch's gradient to them, and an
    ``apply_gradients`` once per cycle, after which the accumulators are zeroed.
    """
    micro = batch_size // accum_steps
    variables = model.trainable_variables
    # Accumulators live outside the graph, like the optimizer's slots: one per weight.
    accumulators = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]

    def accumulate(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)  # (B/k, classes)
            loss = micro_batch_loss(yb, logits)
        grads = tape.gradient(loss, variables)
        for acc, g in zip(accumulators, grads, strict=True):
            acc.assign_add(g / accum_steps)  # the 1/k: k micro means -> one large-batch mean
        return loss

    def apply() -> None:
        optimizer.apply_gradients(zip(accumulators, variables, strict=True))  # once per cycle
        for acc in accumulators:
            acc.assign(tf.zeros_like(acc))  # the next cycle starts from zero

    accumulate_step, apply_step = tf.function(accumulate), tf.function(apply)  # graphs

    phase = f"train, {accum_steps} micro-batches per update"
    events.start(phase, updates)
    for u in range(updates):
        rows = slice(u * batch_size, (u + 1) * batch_size)
        xs, ys = x[rows], y[rows]  # (B, ...), the update's large batch
        for i in range(accum_steps):
            loss = accumulate_step(xs[i * micro : (i + 1) * micro], ys[i * micro : (i + 1) * micro])
        apply_step()
        events.advance(phase, u + 1, loss=float(loss))


# -----------------------------------------------------------------------------
# Data, models, the large-batch reference, and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """512 train / 64 test tiny images (N, 4, 4, 3) float32 in [-0.5, 0.5], 4 classes."""
    split = synthetic.class_images(
        n_train=512, n_test=64, num_classes=4, size=4, max_shift=0, seed=seed
    )
    return synthetic.Split(split.x_train - 0.5, split.y_train, split.x_test - 0.5, split.y_test)


def build_model(batch_norm: bool = False) -> keras.Model:
    """An MLP (B, 4, 4, 3) -> (B, 4) logits; optionally with BatchNorm after the hidden layer."""
    layers: list[keras.layers.Layer] = [
        keras.layers.Input((4, 4, 3)),
        keras.layers.Flatten(),  # (B, 48)
        keras.layers.Dense(32, activation="tanh"),  # (B, 32)
    ]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())  # statistics of the batch it sees
    layers.append(keras.layers.Dense(4))  # (B, 4) logits
    return keras.Sequential(layers)


def large_batch_gradient(model: keras.Model, x: np.ndarray, y: np.ndarray) -> list[tf.Tensor]:
    """The reference gradient: one tape over the whole batch, mean loss."""
    with tf.GradientTape() as tape:
        loss = micro_batch_loss(y, model(x, training=True))
    return list(tape.gradient(loss, model.trainable_variables))


def large_batch_training(
    initial: list[np.ndarray],
    optimizer: keras.optimizers.Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    scale: float = 1.0,
) -> list[np.ndarray]:
    """The reference run: Keras's own training step (``train_on_batch``), one per large batch.

    ``scale`` multiplies the loss, so every gradient: 1 for the reference, ``ACCUM_STEPS``
    for the control that mimics a missing 1/k.
    """
    model = build_model()
    model.set_weights(initial)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # mean over the batch

    def scaled_loss(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return scale * loss(y_true, logits)

    model.compile(optimizer=optimizer, loss=loss if scale == 1.0 else scaled_loss)
    for u in range(UPDATES):
        rows = slice(u * BATCH_SIZE, (u + 1) * BATCH_SIZE)
        model.train_on_batch(x[rows], y[rows])
    return list(model.get_weights())


def _flat(arrays: list[np.ndarray] | list[tf.Tensor]) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a)) for a in arrays])  # (1700,) for the MLP


def _optimizers() -> dict[str, keras.optimizers.Optimizer]:
    return {"SGD": keras.optimizers.SGD(SGD_LR), "Adam": keras.optimizers.Adam(ADAM_LR)}


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions (signatures as above)."""

    accumulated_gradients: Callable[[keras.Model, np.ndarray, np.ndarray, int], list[tf.Tensor]]
    # (model, optimizer, x, y, batch_size, accum_steps, updates) -> None
    train_accumulated: Callable[
        [keras.Model, keras.optimizers.Optimizer, np.ndarray, np.ndarray, int, int, int], None
    ]


@dataclass(frozen=True)
class Runs:
    """The candidate's accumulated gradient and training runs next to the large-batch ones."""

    grad: list[np.ndarray]
    grad_large: list[np.ndarray]
    weights: dict[str, list[np.ndarray]]  # "SGD"/"Adam" -> after train_accumulated
    weights_large: dict[str, list[np.ndarray]]  # "SGD"/"Adam" -> after train_on_batch steps
    iterations: dict[str, int]  # optimizer.iterations after train_accumulated


def run_both(impl: Answer) -> Runs:
    """The same model and data through ``impl`` (accumulated) and through Keras (large batch)."""
    data = make_data()
    x, y = data.x_train, data.y_train
    keras.utils.set_random_seed(SEED)
    initial = build_model().get_weights()

    model = build_model()
    model.set_weights(initial)
    grad = impl.accumulated_gradients(model, x[:BATCH_SIZE], y[:BATCH_SIZE], ACCUM_STEPS)
    grad_large = large_batch_gradient(model, x[:BATCH_SIZE], y[:BATCH_SIZE])

    weights, weights_large, iterations = {}, {}, {}
    for name, optimizer in _optimizers().items():
        model = build_model()
        model.set_weights(initial)
        impl.train_accumulated(model, optimizer, x, y, BATCH_SIZE, ACCUM_STEPS, UPDATES)
        weights[name] = list(model.get_weights())
        iterations[name] = int(optimizer.iterations.numpy())
        weights_large[name] = large_batch_training(initial, _optimizers()[name], x, y)
    return Runs(
        [np.asarray(g) for g in grad],
        [np.asarray(g) for g in grad_large],
        weights,
        weights_large,
        iterations,
    )


def reference_comparisons(impl: Answer, runs: Runs | None = None) -> dict[str, Comparison]:
    """Every equality-with-a-reference claim: the gradient, and the SGD and Adam weights.

    Accumulation adds the same per-example gradients as the large batch, in another order
    (four 16-row matmuls and three additions, or one 64-row matmul), so the two differ by
    float32 rounding: a few eps (1.2e-7) relative to each gradient entry, whose magnitudes
    are 1e-4 to 1e-1. RTOL 1e-4 is ~1000 eps, ATOL 1e-5 covers entries near zero. The
    weights carry that rounding through 6 updates (SGD lr 0.5 and Adam lr 0.01 move a weight
    by at most ~0.1 in all, so relative rounding stays near eps). The missing 1/k puts the
    gradient and the SGD weights off by a factor 4 of the update: thousands of times the
    tolerance. Measured in the reference: tolerance used under 0.01, oneDNN on and off.
    """
    runs = runs if runs is not None else run_both(impl)
    return {
        GRAD_CHECK: compare(_flat(runs.grad), _flat(runs.grad_large), atol=ATOL, rtol=RTOL),
        SGD_CHECK: compare(
            _flat(runs.weights["SGD"]), _flat(runs.weights_large["SGD"]), atol=ATOL, rtol=RTOL
        ),
        ADAM_CHECK: compare(
            _flat(runs.weights["Adam"]), _flat(runs.weights_large["Adam"]), atol=ATOL, rtol=RTOL
        ),
    }


def check(impl: Answer) -> SolutionReport:
    """Accumulate with ``impl`` and compare with Keras's large-batch gradient and training."""
    report = SolutionReport(solution="distributed.gradient_accumulation")
    report.metric("large batch = micro-batches x micro-batch size", f"{ACCUM_STEPS} x 16 = 64")
    report.metric("updates compared", UPDATES)
    with report.timed("accumulated and large-batch runs"):
        runs = run_both(impl)
    comparisons = reference_comparisons(impl, runs)
    for name, comparison in comparisons.items():
        report.metric(f"max |diff|: {name.split(' (')[0]}", comparison.max_abs_diff)
    _controls(report, runs)

    report.check_close(
        GRAD_CHECK,
        comparisons[GRAD_CHECK],
        "the large batch's loss is the mean over 64 rows = the mean of the 4 micro-batch "
        "means, so the summed micro-batch gradients, each divided by k = 4, are its gradient, "
        "up to float32 summation order (|diff| <= 1e-5 + 1e-4*|g|; reference well under 1% "
        "of it); without the 1/k every entry is 4x too large: tolerance used in the "
        "hundreds; " + comparisons[GRAD_CHECK].detail,
    )
    report.check_close(
        SGD_CHECK,
        comparisons[SGD_CHECK],
        f"each of the {UPDATES} updates is the large-batch update, so the weights match "
        f"Keras's train_on_batch on the 64-row batches (|diff| <= 1e-5 + 1e-4*|w|); no 1/k "
        f"makes every step 4x too long, no reset adds all earlier gradients again, and "
        f"applying after every micro-batch takes 4 smaller steps whose gradients move with "
        f"the weights (lr {SGD_LR}): all land far outside; " + comparisons[SGD_CHECK].detail,
    )
    report.check_close(
        ADAM_CHECK,
        comparisons[ADAM_CHECK],
        f"same as SGD with Adam (lr {ADAM_LR}), whose moments must see one gradient per "
        f"cycle (reference ~0.1 of the tolerance: Adam divides by sqrt(v) + eps, so for "
        f"weights with tiny gradients rounding is amplified, still 10x inside): applying "
        f"after every micro-batch makes 4 Adam steps of ~lr each (~1e4), a missing reset "
        f"feeds it the running sum (~3e3); a missing 1/k is mostly hidden (Adam is "
        f"scale-invariant up to eps, ~170, against ~1e4 for SGD; see the control metrics) "
        f"and is caught head-on by the gradient check; " + comparisons[ADAM_CHECK].detail,
    )
    # Per run, optimizer updates per cycle; the one furthest from 1 is the verdict.
    per_cycle = [runs.iterations[name] / UPDATES for name in ("SGD", "Adam")]
    worst = max(per_cycle, key=lambda r: abs(r - 1))
    report.metric(
        "optimizer.iterations (SGD, Adam)", f"{runs.iterations['SGD']}, {runs.iterations['Adam']}"
    )
    report.check(
        ITERATIONS_CHECK,
        worst,
        "==",
        1,
        f"optimizer.iterations / {UPDATES} cycles: one apply_gradients per {ACCUM_STEPS} "
        f"micro-batches; applying after every micro-batch gives {ACCUM_STEPS}, never "
        f"applying 0",
    )
    return report


def _controls(report: SolutionReport, runs: Runs) -> None:
    """What the missing 1/k does to each optimizer, shown on Keras's own training step with
    the loss multiplied by k, and what BatchNorm does to accumulation. Not checks: they do
    not depend on the candidate's code; they show why the checks above are built as they are.
    """
    data = make_data()
    x, y = data.x_train, data.y_train
    keras.utils.set_random_seed(SEED)
    initial = build_model().get_weights()
    for name, optimizer in _optimizers().items():
        scaled = large_batch_training(initial, optimizer, x, y, scale=ACCUM_STEPS)
        found = compare(_flat(scaled), _flat(runs.weights_large[name]), atol=ATOL, rtol=RTOL)
        report.metric(
            f"control, gradient x{ACCUM_STEPS} (no 1/k), {name}: tolerance used",
            found.tolerance_used,
        )
        report.metric(
            f"control, gradient x{ACCUM_STEPS} (no 1/k), {name}: max |diff|", found.max_abs_diff
        )
        got, expected = _flat(scaled), _flat(runs.weights_large[name])
        off = np.abs(got - expected) > ATOL + RTOL * np.abs(expected)  # (1700,) bool
        report.metric(
            f"control, gradient x{ACCUM_STEPS} (no 1/k), {name}: share of weights off",
            float(np.mean(off)),
        )

    keras.utils.set_random_seed(SEED)
    bn_model = build_model(batch_norm=True)
    accumulated = accumulated_gradients(bn_model, x[:BATCH_SIZE], y[:BATCH_SIZE], ACCUM_STEPS)
    large = large_batch_gradient(bn_model, x[:BATCH_SIZE], y[:BATCH_SIZE])
    found = compare(_flat(accumulated), _flat(large), atol=ATOL, rtol=RTOL)
    relative = float(
        np.linalg.norm(_flat(accumulated) - _flat(large)) / np.linalg.norm(_flat(large))
    )
    report.metric(
        "BatchNorm model: accumulated vs large-batch gradient, tolerance used", found.tolerance_used
    )
    report.metric("BatchNorm model: |g_acc - g_large| / |g_large|", relative)


if __name__ == "__main__":
    print_check_of(__name__)
