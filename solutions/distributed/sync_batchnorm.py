"""Synchronized BatchNorm under MirroredStrategy, proved equal to one device on skewed batches.

Under ``MirroredStrategy`` every replica runs BatchNorm on its own slice of the global batch,
so in training mode it normalizes with the slice's mean and variance. When the slices are
skewed (here replica 0 gets only class 0 and replica 1 only class 1, which is what an
unshuffled or per-source input pipeline does), those statistics are far from the global
batch's, and the model trains on different activations than one device would.

Synchronized BatchNorm all-reduces three sums over the replicas, sum(x), sum(x^2) and the
count, and derives the global mean and variance from them. ``sync_moments`` is that
computation written out; ``build_model`` uses Keras's own ``BatchNormalization(
synchronized=True)``. Checks: ``sync_moments`` equals ``tf.nn.moments`` of the global batch
(with equal and with unequal per-replica batches); on 2 replicas the model's training-mode
output, its moving variance and its weights after training equal a 1-device run on the
global batch, within float32 rounding.

The moving MEAN is no test: the moving statistics are mirrored variables aggregated by MEAN
over replicas, and the mean of two equal-size slices' means is the global mean, so an
UNSYNCHRONIZED model's moving mean matches one device too (the check shows it on its own
unsynchronized control). The variance does not: the global variance is the mean within-slice
variance PLUS the variance between the slice means, and an unsynchronized replica sees only
the first part (here about a quarter of the total).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.devices import use_logical_cpus
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.distributed.mirrored_strategy import train

SEED = 0
DEVICES = ["/cpu:0", "/cpu:1"]
FEATURES = 4
NUM_CLASSES = 2
GLOBAL_BATCH_SIZE = 64  # 32 per replica; replica 0 gets class 0, replica 1 class 1
UNEQUAL_SPLIT = (48, 16)  # per-replica batches for the count-weighting case
STEPS = 20
LEARNING_RATE = 0.1
# Moments and one forward pass: a few float32 roundings of values of order 1-10.
MOMENT_ATOL, MOMENT_RTOL = 1e-5, 1e-5
# Forward pass and training: see reference_comparisons.
ATOL, RTOL = 1e-5, 1e-4

MOMENTS_EQUAL_CHECK = "sync_moments (mean, variance) vs global batch, replica batches 32/32"
MOMENTS_UNEQUAL_CHECK = "sync_moments (mean, variance) vs global batch, replica batches 48/16"
HAS_BN_CHECK = "BatchNormalization layers in build_model()"
OUTPUT_CHECK = "training-mode output, 2 replicas vs 1 device (first forward pass)"
MOVING_VAR_CHECK = "moving variance after that pass, 2 replicas vs 1 device"
WEIGHTS_CHECK = "all weights after training, 2 replicas vs 1 device"
CONTROL_MEAN_CHECK = "control (synchronized=False): moving mean vs 1 device"
CONTROL_VAR_CHECK = "control (synchronized=False): moving variance / 1-device moving variance"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("sync_moments", "build_model")

# -----------------------------------------------------------------------------
# The answer: global batch statistics from per-replica slices, and a model that uses them


def sync_moments(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and (biased) variance per feature of the GLOBAL batch, called on each replica.

    ``x``: (B_r, C), this replica's slice; slices may differ in size. Runs in a replica
    context (inside ``strategy.run``). Returns (mean (C,), variance (C,)), the same on
    every replica: the moments of all replicas' rows together.
    """
    context = tf.distribute.get_replica_context()
    count = tf.cast(tf.shape(x)[0], x.dtype)  # B_r
    # One all-reduce of the three sums (batched together: one round of communication).
    # Sums, not means: slices of different sizes must weigh by their counts.
    total, total_sq, n = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        [tf.reduce_sum(x, axis=0), tf.reduce_sum(tf.square(x), axis=0), count],
    )  # (C,), (C,), ()
    mean = total / n  # (C,)
    # E[x^2] - E[x]^2 = within-slice variance + variance of the slice means around the global
    # mean. float32 cancellation costs ~eps * E[x^2] / var: fine for normalized-scale data.
    variance = tf.maximum(total_sq / n - tf.square(mean), 0.0)  # (C,)
    return mean, variance


def build_model(input_dim: int, num_classes: int) -> keras.Model:
    """(B, input_dim) -> logits (B, num_classes): Dense -> synchronized BatchNorm -> ReLU -> Dense.

    ``synchronized=True`` makes the layer all-reduce its batch statistics across the
    replicas of the strategy it runs under (the same sums as ``sync_moments``); it is a
    no-op on one device.
    """
    return keras.Sequential(
        [
            keras.layers.Input((input_dim,)),  # (B, input_dim)
            keras.layers.Dense(16, use_bias=False),  # (B, 16); BN's beta is the bias
            keras.layers.BatchNormalization(synchronized=True),  # (B, 16), global statistics
            keras.layers.ReLU(),  # (B, 16)
            keras.layers.Dense(num_classes),  # (B, num_classes)
        ]
    )


# -----------------------------------------------------------------------------
# Data: skewed so that each replica's slice is a single class


def make_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(512, FEATURES) float32 features and (512,) int labels, in global batches of 64 whose
    first 32 rows are class 0 and last 32 class 1.

    The two classes are Gaussians 6 apart along a random direction (unit variance): the
    between-class part dominates the variance of the projected features, so per-slice
    statistics are far from the global ones.
    """
    rng = synthetic.rng(seed)
    direction = rng.normal(size=FEATURES)
    direction /= np.linalg.norm(direction)  # (FEATURES,)
    half = GLOBAL_BATCH_SIZE // 2
    batches = 8
    x = rng.normal(size=(batches, 2, half, FEATURES))  # (batch, class, row, feature)
    x[:, 0] += 3.0 * direction
    x[:, 1] -= 3.0 * direction
    y = np.broadcast_to(np.array([0, 1])[None, :, None], (batches, 2, half))
    return (
        x.reshape(-1, FEATURES).astype(np.float32),
        y.reshape(-1).astype(np.int64),
    )


# -----------------------------------------------------------------------------
# Measurement


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def sync_moments(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]: ...

    def build_model(self, input_dim: int, num_classes: int) -> keras.Model: ...


def per_replica_slices(
    strategy: tf.distribute.Strategy, x: np.ndarray, sizes: tuple[int, ...]
) -> tf.distribute.DistributedValues:
    """Hand replica i the i-th consecutive block of ``sizes[i]`` rows of ``x``."""
    starts = np.cumsum((0, *sizes))

    def slice_for(context: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        i = context.replica_id_in_sync_group
        return tf.constant(x[starts[i] : starts[i + 1]])

    return strategy.experimental_distribute_values_from_function(slice_for)


def moments_on_replicas(
    impl: Answer, strategy: tf.distribute.Strategy, x: np.ndarray, sizes: tuple[int, ...]
) -> np.ndarray:
    """impl.sync_moments on each replica's slice; returns (replicas, 2, C): every replica's
    (mean, variance)."""
    per_replica = per_replica_slices(strategy, x, sizes)
    results = tf.function(lambda v: strategy.run(impl.sync_moments, args=(v,)))(per_replica)
    means = strategy.experimental_local_results(results[0])
    variances = strategy.experimental_local_results(results[1])
    return np.stack(
        [np.stack([np.asarray(m), np.asarray(v)]) for m, v in zip(means, variances, strict=True)]
    )


@dataclass(frozen=True)
class Pass:
    """One training-mode forward pass: the logits of the global batch and the moving stats."""

    logits: np.ndarray  # (GLOBAL_BATCH_SIZE, classes), replicas' outputs in batch order
    moving_mean: np.ndarray  # every BN layer's moving mean, concatenated
    moving_variance: np.ndarray


def bn_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [
        layer for layer in model.submodules if isinstance(layer, keras.layers.BatchNormalization)
    ]


def forward_once(
    strategy: tf.distribute.Strategy,
    model_fn: Callable[[], keras.Model],
    weights: list[np.ndarray],
    x: np.ndarray,
) -> Pass:
    """Build ``model_fn()`` in ``strategy.scope()``, set ``weights``, run it once in training
    mode on the global batch ``x`` split evenly over the replicas (which updates BN's moving
    statistics), and read back the outputs and the moving statistics."""
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        model = model_fn()
        model.set_weights(weights)
    sizes = (len(x) // replicas,) * replicas
    per_replica = per_replica_slices(strategy, x, sizes)
    logits = tf.function(lambda v: strategy.run(lambda xb: model(xb, training=True), args=(v,)))(
        per_replica
    )
    layers = bn_layers(model)

    def stat(name: str) -> np.ndarray:
        values = [np.ravel(getattr(layer, name).numpy()) for layer in layers]
        return np.concatenate(values) if values else np.zeros(0, np.float32)

    return Pass(
        np.concatenate([np.asarray(t) for t in strategy.experimental_local_results(logits)]),
        stat("moving_mean"),
        stat("moving_variance"),
    )


def unsynchronized(model_fn: Callable[[], keras.Model]) -> Callable[[], keras.Model]:
    """The same model with every BatchNormalization's ``synchronized`` set to False."""

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = False
        return type(layer).from_config(config)

    return lambda: keras.models.clone_model(model_fn(), clone_function=clone_layer)


def _flat(weights: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(w) for w in weights])


@dataclass(frozen=True)
class Runs:
    moments_equal: Comparison
    moments_unequal: Comparison
    bn_count: int
    pass_1: Pass  # candidate model, 1 device
    pass_2: Pass  # candidate model, 2 replicas
    control_1: Pass  # this module's model with synchronized=False, 1 device
    control_2: Pass  # ... on 2 replicas
    weights_1: list[np.ndarray]  # candidate model after STEPS, 1 device
    weights_2: list[np.ndarray]  # ... 2 replicas
    loss_2: tuple[float, float]  # first and last step loss, 2 replicas


def run_all(impl: Answer) -> Runs:
    use_logical_cpus(len(DEVICES))  # first: before anything touches TensorFlow's devices
    x, y = make_data()
    batch = x[:GLOBAL_BATCH_SIZE]  # (64, FEATURES): class 0 rows, then class 1 rows
    one = tf.distribute.MirroredStrategy(DEVICES[:1])
    two = tf.distribute.MirroredStrategy(DEVICES)

    # 1. The moments, against tf.nn.moments of the rows all together.
    expected = np.stack([np.asarray(t) for t in tf.nn.moments(tf.constant(batch), axes=[0])])

    def moments_cmp(sizes: tuple[int, ...]) -> Comparison:
        got = moments_on_replicas(impl, two, batch, sizes)  # (2, 2, C)
        return compare(got, np.stack([expected] * len(sizes)), atol=MOMENT_ATOL, rtol=MOMENT_RTOL)

    moments_equal = moments_cmp((GLOBAL_BATCH_SIZE // 2,) * 2)
    moments_unequal = moments_cmp(UNEQUAL_SPLIT)

    # 2. The model: one forward pass, then training, on 1 device and on 2 replicas.
    def model_fn() -> keras.Model:
        return impl.build_model(FEATURES, NUM_CLASSES)

    keras.utils.set_random_seed(SEED)
    initial = model_fn()
    weights = initial.get_weights()
    bn_count = len(bn_layers(initial))
    pass_1, pass_2 = (forward_once(s, model_fn, weights, batch) for s in (one, two))

    keras.utils.set_random_seed(SEED)
    control_weights = build_model(FEATURES, NUM_CLASSES).get_weights()
    control_fn = unsynchronized(lambda: build_model(FEATURES, NUM_CLASSES))
    control_1, control_2 = (forward_once(s, control_fn, control_weights, batch) for s in (one, two))

    trained = [
        train(s, model_fn, weights, x, y, GLOBAL_BATCH_SIZE, STEPS, LEARNING_RATE)
        for s in (one, two)
    ]
    (weights_1, _), (weights_2, losses_2) = trained
    return Runs(
        moments_equal,
        moments_unequal,
        bn_count,
        pass_1,
        pass_2,
        control_1,
        control_2,
        weights_1,
        weights_2,
        (losses_2[0], losses_2[-1]),
    )


def reference_comparisons(impl: Answer, runs: Runs | None = None) -> dict[str, Comparison]:
    """Every equality-with-a-reference claim: moments vs tf.nn.moments, 2 replicas vs 1 device.

    Moments: sums of 32-64 values of order 1-3 and a subtraction of ~2 from ~3: a few eps
    (1.2e-7) relative, so 1e-5 + 1e-5 * |expected|. Forward pass and moving variance: the
    same statistics computed in a different order, then two small matmuls: float32 rounding
    of order 1e-6 on values of order 1, inside 1e-5 + 1e-4 * |expected|. Training: 20 SGD
    steps accumulate that rounding (as in distributed.mirrored_strategy); the same bound
    holds with a wide margin. Unsynchronized statistics miss by O(1): the variance of the
    BN input is about 10x the within-class variance.
    """
    runs = runs if runs is not None else run_all(impl)
    return {
        MOMENTS_EQUAL_CHECK: runs.moments_equal,
        MOMENTS_UNEQUAL_CHECK: runs.moments_unequal,
        OUTPUT_CHECK: compare(runs.pass_2.logits, runs.pass_1.logits, atol=ATOL, rtol=RTOL),
        MOVING_VAR_CHECK: compare(
            runs.pass_2.moving_variance, runs.pass_1.moving_variance, atol=ATOL, rtol=RTOL
        ),
        WEIGHTS_CHECK: compare(_flat(runs.weights_2), _flat(runs.weights_1), atol=ATOL, rtol=RTOL),
    }


def check(impl: Answer) -> SolutionReport:
    """Moments from impl.sync_moments, then impl.build_model on 1 device vs 2 replicas."""
    report = SolutionReport(solution="distributed.sync_batchnorm")
    with report.timed("all runs"):
        runs = run_all(impl)
    comparisons = reference_comparisons(impl, runs)
    report.metric("global batch size", GLOBAL_BATCH_SIZE)
    report.metric("replicas", len(DEVICES))
    report.check_close(
        MOMENTS_EQUAL_CHECK,
        comparisons[MOMENTS_EQUAL_CHECK],
        "every replica returns tf.nn.moments of the global batch, within 1e-5 + 1e-5*|x| (a "
        "few float32 roundings of sums of order 1-100); local tf.nn.moments misses the "
        "mean by ~1.5 (tolerance used ~3e5); all-reducing the MEAN of the local variances "
        "gets the mean right and misses the between-class variance (~8e4): "
        + comparisons[MOMENTS_EQUAL_CHECK].detail,
    )
    report.check_close(
        MOMENTS_UNEQUAL_CHECK,
        comparisons[MOMENTS_UNEQUAL_CHECK],
        "slices of 48 and 16 rows: the global moments need the sums weighted by the counts; "
        "averaging the two slices' E[x] and E[x^2] (right for equal slices) weighs the "
        "16 rows like the 48 and misses (tolerance used ~8e4): "
        + comparisons[MOMENTS_UNEQUAL_CHECK].detail,
    )
    report.metric("BatchNormalization layers", runs.bn_count)
    report.check(
        HAS_BN_CHECK,
        runs.bn_count,
        ">=",
        1,
        "a model without BatchNorm matches one device trivially, which proves nothing",
    )
    _model_checks(report, runs, comparisons)
    _control_checks(report, runs)
    return report


def _model_checks(report: SolutionReport, runs: Runs, comparisons: dict[str, Comparison]) -> None:
    report.metric(
        "max |logits_2rep - logits_1dev| (first pass)", comparisons[OUTPUT_CHECK].max_abs_diff
    )
    report.metric(
        "max |moving_mean_2rep - moving_mean_1dev|",
        float(np.max(np.abs(runs.pass_2.moving_mean - runs.pass_1.moving_mean)))
        if runs.pass_1.moving_mean.shape == runs.pass_2.moving_mean.shape
        and runs.pass_1.moving_mean.size
        else float("nan"),
    )
    report.check_close(
        OUTPUT_CHECK,
        comparisons[OUTPUT_CHECK],
        "synchronized statistics are the global batch's, so each row is normalized as on "
        "one device: float32 rounding only, within 1e-5 + 1e-4*|x|; synchronized=False "
        "normalizes each class by its own statistics, logits up to ~2.3 off, tolerance "
        "used ~9e4: " + comparisons[OUTPUT_CHECK].detail,
    )
    report.check_close(
        MOVING_VAR_CHECK,
        comparisons[MOVING_VAR_CHECK],
        "moving variance = momentum * 1 + (1 - momentum) * batch variance; unsynchronized it "
        "averages the within-class variances only (~0.24 of the global), tolerance used "
        "~400: " + comparisons[MOVING_VAR_CHECK].detail,
    )
    report.metric("max |w_2rep - w_1dev| after training", comparisons[WEIGHTS_CHECK].max_abs_diff)
    report.metric(
        "train loss, first and last step (2 replicas)",
        f"{runs.loss_2[0]:.4f}, {runs.loss_2[1]:.4f}",
    )
    report.check_close(
        WEIGHTS_CHECK,
        comparisons[WEIGHTS_CHECK],
        f"{STEPS} SGD steps (lr {LEARNING_RATE}) with the loop of distributed.mirrored_strategy; "
        "gradients flow through the all-reduced statistics, so the 2-replica run follows "
        "the 1-device one up to float32 rounding (1e-5 + 1e-4*|w|); unsynchronized BN trains "
        "on different activations and drifts ~0.8 away (tolerance used ~2e4): "
        + comparisons[WEIGHTS_CHECK].detail,
    )


def _control_checks(report: SolutionReport, runs: Runs) -> None:
    """This module's own model with synchronized=False: what a moving-mean check would miss."""
    c1, c2 = runs.control_1, runs.control_2
    mean_cmp = compare(c2.moving_mean, c1.moving_mean, atol=ATOL, rtol=RTOL)
    var_ratio = float(np.mean(c2.moving_variance - 0.99) / np.mean(c1.moving_variance - 0.99))
    report.metric(
        "control: max |logits_2rep - logits_1dev| (synchronized=False)",
        float(np.max(np.abs(c2.logits - c1.logits))),
    )
    report.check_close(
        CONTROL_MEAN_CHECK,
        mean_cmp,
        "guard: the unsynchronized model's moving mean matches one device anyway: the "
        "replicas' updates are averaged and the mean of two equal slices' means is the "
        "global mean, so a check of the moving mean alone is fooled: " + mean_cmp.detail,
    )
    report.check(
        CONTROL_VAR_CHECK,
        var_ratio,
        "<=",
        0.5,
        "guard: the part of the moving variance this pass added (moving - 0.99 * 1), "
        "unsynchronized over synchronized: within-class variance over total; the data puts "
        "most of the variance between the classes, so the ratio is far below 1; if it were "
        "near 1 the data would not be skewed and the checks above would prove nothing",
    )


if __name__ == "__main__":
    print_check_of(__name__)
