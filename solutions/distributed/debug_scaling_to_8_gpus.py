"""Debug "it trains on 1 GPU but badly on 8": four faults of a MirroredStrategy loop, each
shown by a metric, each fix restoring it.

The buggy loop (the question's prompt) was written for one GPU and moved under
``MirroredStrategy`` unchanged:

1. **Unsharded input.** ``strategy.run(step, args=(xb, yb))`` on a plain tensor hands every
   replica the SAME batch: R replicas do R times the work on one batch's worth of examples.
   Metric: distinct example ids per step over examples processed (1 fixed, 1/R faulty).
2. **Per-replica mean loss.** ``tf.reduce_mean`` over the replica's slice, then the optimizer
   SUMS the replicas' gradients: the step is R times the 1-device gradient. Metric: norm of
   the all-reduced gradient over the 1-device gradient of the same global batch (1 vs R).
3. **Learning rate not scaled.** The global batch is 8x the 1-GPU batch, so an epoch has 8x
   fewer steps; with the 1-GPU learning rate the model ends the same number of epochs far
   behind. The linear scaling rule (Goyal et al., 2017: multiply the rate by k when the batch
   grows k-fold, reaching it by a linear warmup) restores it. Metric: train loss after a fixed
   number of epochs at 8x the batch, against the 1-GPU run.
4. **BatchNorm not synchronized.** Each replica normalizes with its own slice's statistics;
   the loop's class-balanced batches are grouped by class, so each replica's slice is one
   class and the class signal is normalized away. Metric: eval accuracy.

Four logical CPU devices stand in for the GPUs (eight would only make the run slower here;
every effect scales with the replica count). The learning-rate experiment runs the 8x global
batch on one device: with faults 1 and 2 fixed, R replicas compute exactly the 1-device
gradient of the global batch (``distributed.mirrored_strategy`` proves it), so only the
global batch matters there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.devices import use_logical_cpus
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.distributed.mirrored_strategy import mean_loss, train
from solutions.distributed.sync_batchnorm import unsynchronized

SEED = 0
REPLICAS = 4
DEVICES = [f"/cpu:{i}" for i in range(REPLICAS)]
FEATURES = 16
NUM_CLASSES = 4  # one class per replica in the class-grouped batches
BATCH_PER_GPU = 32  # what the 1-GPU run used
GLOBAL_BATCH = REPLICAS * BATCH_PER_GPU  # 128 for sharding, loss and BN
# Learning rate: the 8-GPU global batch, k = 8 times the 1-GPU batch.
LR_SCALE_K = 8
BASE_LR = 0.05
LR_EPOCHS = 3
WARMUP_EPOCHS = 1
BN_LR = 0.3
BN_EPOCHS = 3

SHARD_ROWS_CHECK = "examples processed per step, all replicas together"
SHARD_DISTINCT_CHECK = "distinct examples / examples processed per step"
GRAD_CHECK = "all-reduced gradient vs 1-device gradient of the global batch"
LR_AFTER_WARMUP_CHECK = "learning rate after warmup / base rate"
LR_WARMUP_CHECK = "learning rate at step 0 / base rate (warmup starts low)"
LR_LOSS_CHECK = "train loss at 8x batch, scaled rate / 1-GPU train loss"
BN_ACC_CHECK = "eval accuracy, 4 replicas on class-grouped batches"
CONTROL_SHARD = "control (unsharded): distinct examples / examples processed"
CONTROL_GRAD = "control (per-replica mean loss): gradient norm / 1-device"
CONTROL_LR = "control (unscaled rate): train loss at 8x batch / 1-GPU train loss"
CONTROL_BN = "control (synchronized=False): eval accuracy"

# The buggy loop the question shows (as the colleague wrote it); the starter quotes it.
ORIGINAL = """
strategy = tf.distribute.MirroredStrategy()          # 8 GPUs
with strategy.scope():
    model = keras.Sequential([
        keras.layers.Dense(32, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.Dense(num_classes)])
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

dataset = class_balanced_batches(x, y, batch_size=32)  # rows grouped by class

@tf.function
def train_step(xb, yb):
    def step_fn(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(yb, model(xb, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return strategy.run(step_fn, args=(xb, yb))

for epoch in range(epochs):
    for xb, yb in dataset:
        train_step(xb, yb)
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("distribute_dataset", "replica_loss", "scaled_learning_rate", "build_model")

# -----------------------------------------------------------------------------
# The answer: the four fixed pieces of the loop


def distribute_dataset(
    strategy: tf.distribute.Strategy, x: np.ndarray, y: np.ndarray, global_batch_size: int
) -> tf.distribute.DistributedDataset:
    """Batches of ``global_batch_size`` rows of (x (N, ...), y (N,)), in order, repeated, each
    split across the replicas: replica r gets its own (global_batch_size / R, ...) slice.

    Batch by the GLOBAL size, then distribute: the distributed dataset hands each replica a
    different slice. Batching by the per-GPU size and passing plain tensors to
    ``strategy.run`` gives every replica the same batch.
    """
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .repeat()
        .batch(global_batch_size, drop_remainder=True)
    )
    return strategy.experimental_distribute_dataset(dataset)


def replica_loss(labels: tf.Tensor, logits: tf.Tensor, global_batch_size: int) -> tf.Tensor:
    """This replica's share of the global-batch mean cross-entropy: sum over its slice / GLOBAL.

    ``labels``: (B_r,) int, ``logits``: (B_r, C). The optimizer SUMS gradients over replicas,
    so summing these shares gives the gradient of the global mean; ``tf.reduce_mean`` over the
    slice would make the step R times too large.
    """
    per_example = keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True
    )  # (B_r,)
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def scaled_learning_rate(
    base_lr: float, base_batch: int, global_batch: int, step: int, warmup_steps: int
) -> float:
    """Learning rate at ``step`` for ``global_batch``, from ``base_lr`` tuned at ``base_batch``.

    Linear scaling rule (Goyal et al., 2017): k = global_batch / base_batch, target k * base_lr.
    Gradual warmup: start at base_lr and rise linearly to the target over ``warmup_steps``;
    the early steps, with the weights far from any minimum, cannot take k-times steps yet.
    """
    k = global_batch / base_batch
    target = k * base_lr
    if step >= warmup_steps:
        return target
    return base_lr + (target - base_lr) * step / warmup_steps


def build_model(input_dim: int, num_classes: int) -> keras.Model:
    """(B, input_dim) -> logits (B, num_classes): Dense -> BatchNorm -> ReLU -> Dense, with the
    BatchNorm synchronized across replicas (global-batch statistics; a no-op on one device)."""
    return keras.Sequential(
        [
            keras.layers.Input((input_dim,)),  # (B, input_dim)
            keras.layers.Dense(32, use_bias=False),  # (B, 32)
            keras.layers.BatchNormalization(synchronized=True),  # (B, 32)
            keras.layers.ReLU(),  # (B, 32)
            keras.layers.Dense(num_classes),  # (B, num_classes)
        ]
    )


# -----------------------------------------------------------------------------
# Data


def make_data(seed: int = SEED) -> synthetic.Split:
    """1024 train / 512 test rows (N, FEATURES) float32, labels in [0, NUM_CLASSES): Gaussian
    blobs (unit noise) around class centres drawn from N(0, 1), so classes overlap and the
    loss keeps falling for several epochs.

    The train rows are in class-grouped global batches (as a class-balanced sampler that
    concatenates per-class groups emits them): rows [32 r, 32 r + 32) of every batch of 128
    are class r, so replica r's slice is all class r.
    """
    rng = synthetic.rng(seed)
    centres = rng.normal(size=(NUM_CLASSES, FEATURES))  # (C, F)
    per_class = GLOBAL_BATCH // NUM_CLASSES  # rows of each class per global batch
    batches = 8
    y_train = np.tile(np.repeat(np.arange(NUM_CLASSES), per_class), batches)  # (1024,)
    y_test = rng.integers(0, NUM_CLASSES, 512)
    noise = rng.normal(size=(len(y_train) + len(y_test), FEATURES))
    x = (np.concatenate([centres[y_train], centres[y_test]]) + noise).astype(np.float32)
    return synthetic.Split(x[: len(y_train)], y_train, x[len(y_train) :], y_test)


# -----------------------------------------------------------------------------
# Measurement


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def distribute_dataset(
        self, strategy: tf.distribute.Strategy, x: np.ndarray, y: np.ndarray, global_batch_size: int
    ) -> tf.distribute.DistributedDataset: ...

    def replica_loss(
        self, labels: tf.Tensor, logits: tf.Tensor, global_batch_size: int
    ) -> tf.Tensor: ...

    def scaled_learning_rate(
        self, base_lr: float, base_batch: int, global_batch: int, step: int, warmup_steps: int
    ) -> float: ...

    def build_model(self, input_dim: int, num_classes: int) -> keras.Model: ...


def plain_mlp() -> keras.Model:
    """The check's own model without BatchNorm, for the loss and learning-rate experiments."""
    return keras.Sequential(
        [
            keras.layers.Input((FEATURES,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )


def ids_per_step(strategy: tf.distribute.Strategy, batches: object, steps: int) -> list[np.ndarray]:
    """The example ids each replica ran on, for the first ``steps`` batches of ``batches``
    (a distributed dataset, or a plain one: then strategy.run hands every replica the same
    tensors). Returns one array per step: the ids of all replicas, concatenated."""
    seen = tf.function(lambda xb, yb: strategy.run(lambda a, b: tf.reshape(a, [-1]), args=(xb, yb)))
    steps_ids = []
    for _, (xb, yb) in zip(range(steps), cast("tf.data.Dataset", batches), strict=False):
        local = strategy.experimental_local_results(seen(xb, yb))
        steps_ids.append(np.concatenate([np.asarray(t) for t in local]))
    return steps_ids


def summed_gradient(
    strategy: tf.distribute.Strategy,
    loss_fn: Callable[[tf.Tensor, tf.Tensor, int], tf.Tensor],
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """The gradient the optimizer would apply: each replica's gradient of ``loss_fn`` on its
    slice of the global batch (x, y), all-reduced with SUM. Flattened."""
    with strategy.scope():
        model = plain_mlp()
        model.set_weights(weights)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    def step(xb: tf.Tensor, yb: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True), len(x))
        grads = tape.gradient(loss, model.trainable_variables)
        context = tf.distribute.get_replica_context()
        return cast("list[tf.Tensor]", context.all_reduce(tf.distribute.ReduceOp.SUM, grads))

    grads = tf.function(lambda xb, yb: strategy.run(step, args=(xb, yb)))(*batch)
    first = [strategy.experimental_local_results(g)[0] for g in grads]  # replica 0's copy
    return np.concatenate([np.ravel(np.asarray(g)) for g in first])


def eval_accuracy(
    model_fn: Callable[[], keras.Model], weights: list[np.ndarray], split: synthetic.Split
) -> float:
    model = model_fn()
    model.set_weights(weights)
    logits = model(split.x_test, training=False)  # moving statistics, as at inference
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == split.y_test))


def schedule(values: list[float]) -> float:
    """A per-step learning rate for the SGD of ``mirrored_strategy.train`` (it takes a rate
    or a Keras schedule)."""
    # values[0] while step <= 0, values[i] while i - 1 < step <= i: one value per step.
    boundaries = list(range(len(values) - 1))
    piecewise = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return cast(float, piecewise)


# Each fault is measured, then its checks recorded, before the next one runs: a wrong
# answer is decided at its first failing check (the BatchNorm runs, the costly part, last).


@dataclass
class Sharding:
    rows: list[int]  # per step: rows the replicas ran on, together
    distinct: float  # distinct ids / rows, mean over steps
    control_distinct: float


@dataclass
class Gradients:
    grad: Comparison  # the replicas' all-reduced gradient vs one device's
    ratio: float  # |g_R| / |g_1|
    control_ratio: float
    mlp_weights: list[np.ndarray]  # the initial weights, reused by the learning-rate runs


@dataclass
class Rates:
    after_warmup: float  # / base rate
    at_0: float  # / base rate
    loss_1gpu: float
    loss_scaled: float
    loss_unscaled: float


@dataclass
class Norms:
    acc_1dev: float
    acc_synced: float
    acc_unsynced: float


@dataclass
class Setup:
    split: synthetic.Split
    many: tf.distribute.Strategy  # the replicas
    one: tf.distribute.Strategy  # one device


def setup() -> Setup:
    use_logical_cpus(REPLICAS)  # first: before anything touches TensorFlow's devices
    return Setup(
        make_data(),
        tf.distribute.MirroredStrategy(DEVICES),
        tf.distribute.MirroredStrategy(DEVICES[:1]),
    )


def measure_sharding(impl: Answer, s: Setup) -> Sharding:
    """1. Sharding: run the candidate's distributed dataset of example ids."""
    n = len(s.split.y_train)
    ids = np.arange(n, dtype=np.float32)[:, None]  # (N, 1): the "features" are the ids
    steps = impl.distribute_dataset(s.many, ids, s.split.y_train, GLOBAL_BATCH)
    fixed = ids_per_step(s.many, steps, 3)
    plain = tf.data.Dataset.from_tensor_slices((ids, s.split.y_train)).batch(BATCH_PER_GPU)
    faulty = ids_per_step(s.many, plain, 3)  # the prompt's loop: strategy.run on plain tensors

    def distinct_share(per_step: list[np.ndarray]) -> float:
        return float(np.mean([len(np.unique(x)) / max(len(x), 1) for x in per_step]))

    return Sharding([len(x) for x in fixed], distinct_share(fixed), distinct_share(faulty))


def measure_gradients(impl: Answer, s: Setup) -> Gradients:
    """2. Loss scaling: the all-reduced gradient against one device's on the same batch."""
    keras.utils.set_random_seed(SEED)
    mlp_weights = plain_mlp().get_weights()
    xb, yb = s.split.x_train[:GLOBAL_BATCH], s.split.y_train[:GLOBAL_BATCH]
    g_one = summed_gradient(s.one, replica_loss, mlp_weights, xb, yb)

    def per_replica_mean(labels: tf.Tensor, logits: tf.Tensor, _: int) -> tf.Tensor:
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return tf.reduce_mean(loss)

    g_many = summed_gradient(s.many, impl.replica_loss, mlp_weights, xb, yb)
    g_control = summed_gradient(s.many, per_replica_mean, mlp_weights, xb, yb)

    def norm_ratio(g: np.ndarray) -> float:
        return (
            float(np.linalg.norm(g) / np.linalg.norm(g_one))
            if g.shape == g_one.shape
            else float("inf")
        )

    return Gradients(
        compare(g_many, g_one, atol=1e-6, rtol=1e-4),
        norm_ratio(g_many),
        norm_ratio(g_control),
        mlp_weights,
    )


def measure_rates(impl: Answer, s: Setup, mlp_weights: list[np.ndarray]) -> Rates:
    """3. Learning rate: LR_EPOCHS epochs at the 1-GPU batch, then at 8x the batch."""
    n = len(s.split.y_train)
    big = LR_SCALE_K * BATCH_PER_GPU
    big_steps, warmup = LR_EPOCHS * n // big, WARMUP_EPOCHS * n // big
    rates = [
        float(impl.scaled_learning_rate(BASE_LR, BATCH_PER_GPU, big, t, warmup))
        for t in range(big_steps)
    ]
    shuffled = synthetic.rng(SEED + 1).permutation(n)  # i.i.d. batches: only the rate matters
    x_lr, y_lr = s.split.x_train[shuffled], s.split.y_train[shuffled]

    def final_loss(batch: int, learning_rate: float) -> float:
        weights, _ = train(
            s.one, plain_mlp, mlp_weights, x_lr, y_lr, batch, LR_EPOCHS * n // batch, learning_rate
        )
        return mean_loss(plain_mlp(), weights, x_lr, y_lr)

    return Rates(
        after_warmup=rates[-1] / BASE_LR,
        at_0=rates[0] / BASE_LR,
        loss_1gpu=final_loss(BATCH_PER_GPU, BASE_LR),
        loss_unscaled=final_loss(big, BASE_LR),
        loss_scaled=final_loss(big, schedule(rates)),
    )


def measure_norms(impl: Answer, s: Setup) -> Norms:
    """4. BatchNorm: train on the class-grouped batches, evaluate with the moving statistics."""
    split = s.split

    def model_fn() -> keras.Model:
        return impl.build_model(FEATURES, NUM_CLASSES)

    keras.utils.set_random_seed(SEED)
    bn_weights = model_fn().get_weights()
    bn_steps = BN_EPOCHS * len(split.y_train) // GLOBAL_BATCH

    def bn_accuracy(
        strategy: tf.distribute.Strategy, fn: Callable[[], keras.Model], initial: list[np.ndarray]
    ) -> float:
        weights, _ = train(
            strategy, fn, initial, split.x_train, split.y_train, GLOBAL_BATCH, bn_steps, BN_LR
        )
        return eval_accuracy(fn, weights, split)

    acc_1dev = bn_accuracy(s.one, model_fn, bn_weights)
    acc_synced = bn_accuracy(s.many, model_fn, bn_weights)
    # The control: this module's model with plain BatchNorm, on the same batches.
    keras.utils.set_random_seed(SEED)
    control_weights = build_model(FEATURES, NUM_CLASSES).get_weights()
    control_fn = unsynchronized(lambda: build_model(FEATURES, NUM_CLASSES))
    return Norms(acc_1dev, acc_synced, bn_accuracy(s.many, control_fn, control_weights))


def reference_comparisons(impl: Answer, grads: Gradients | None = None) -> dict[str, Comparison]:
    """The one equality claim: the 4 replicas' summed gradient equals one device's.

    Each replica sums 32 per-example gradients and the all-reduce adds 4 partial sums, where
    one device sums 128 at once: the same numbers in another order, float32 rounding of a
    few eps relative on gradients of order 0.01-0.1, inside 1e-6 + 1e-4 * |g|.
    """
    grads = grads if grads is not None else measure_gradients(impl, setup())
    return {GRAD_CHECK: grads.grad}


def check(impl: Answer) -> SolutionReport:
    """Each fault's metric with the candidate's fix and with the fault left in (control)."""
    report = SolutionReport(solution="distributed.debug_scaling_to_8_gpus")
    s = setup()
    report.metric("replicas", REPLICAS)
    report.metric("global batch (sharding, loss, BN)", GLOBAL_BATCH)
    with report.timed("all runs"):
        _sharding(report, measure_sharding(impl, s))
        grads = measure_gradients(impl, s)
        _loss(report, grads, reference_comparisons(impl, grads)[GRAD_CHECK])
        _learning_rate(report, measure_rates(impl, s, grads.mlp_weights))
        _batchnorm(report, measure_norms(impl, s))
    return report


def _sharding(report: SolutionReport, r: Sharding) -> None:
    report.metric("examples processed per step (first 3 steps)", ", ".join(map(str, r.rows)))
    report.check(
        SHARD_ROWS_CHECK,
        float(np.mean([rows == GLOBAL_BATCH for rows in r.rows])),
        "==",
        1,
        f"share of the first 3 steps on which the {REPLICAS} replicas together ran on "
        f"{GLOBAL_BATCH} rows; a plain dataset batched by {GLOBAL_BATCH} hands each replica "
        f"all of them ({REPLICAS * GLOBAL_BATCH}); batching by the per-GPU size before "
        f"distributing gives {BATCH_PER_GPU}",
    )
    report.check(
        SHARD_DISTINCT_CHECK,
        r.distinct,
        "==",
        1,
        f"every replica must run on different examples; strategy.run on a plain batch gives "
        f"every replica the same one: 1/{REPLICAS}",
    )
    report.check(
        CONTROL_SHARD,
        r.control_distinct,
        "<=",
        1 / REPLICAS + 1e-9,
        "guard: the prompt's loop (batch of 32, strategy.run on plain tensors) really runs all "
        "replicas on one batch",
    )


def _loss(report: SolutionReport, r: Gradients, grad: Comparison) -> None:
    report.metric("|g_4rep| / |g_1dev|", r.ratio)
    report.check_close(
        GRAD_CHECK,
        grad,
        "sum over the slice / GLOBAL batch on each replica, summed by the all-reduce = the "
        "1-device gradient of the global mean, up to float32 summation order (1e-6 + "
        "1e-4*|g|); tf.reduce_mean per replica gives 4x the gradient, tolerance used ~3e4: "
        + grad.detail,
    )
    report.check(
        CONTROL_GRAD,
        r.control_ratio,
        ">=",
        REPLICAS - 0.01,
        f"guard: with tf.reduce_mean the summed gradient is {REPLICAS}x the 1-device one",
    )


def _learning_rate(report: SolutionReport, r: Rates) -> None:
    report.metric("train loss after 3 epochs, 1 GPU (batch 32, lr 0.05)", r.loss_1gpu)
    report.metric("train loss after 3 epochs, batch 256, scaled rate", r.loss_scaled)
    report.metric("train loss after 3 epochs, batch 256, lr 0.05 (unscaled)", r.loss_unscaled)
    report.check(
        LR_AFTER_WARMUP_CHECK,
        r.after_warmup,
        "==",
        LR_SCALE_K,
        f"linear scaling rule (Goyal et al. 2017): batch {LR_SCALE_K}x => rate {LR_SCALE_K}x",
    )
    report.check(
        LR_WARMUP_CHECK,
        r.at_0,
        "<=",
        1,
        "gradual warmup (Goyal et al. 2017) starts at the base rate (or below) and reaches "
        f"{LR_SCALE_K}x after {WARMUP_EPOCHS} epoch; jumping to {LR_SCALE_K}x at step 0: "
        f"{LR_SCALE_K} (a rule from the reference: this small MLP trains without warmup too, "
        "deep networks early in training do not)",
    )
    report.check(
        LR_LOSS_CHECK,
        r.loss_scaled / r.loss_1gpu,
        "<=",
        1.6,
        "same epochs, 8x fewer steps: with the rate scaled (and warmed up) the loss ends near "
        "the 1-GPU run's (reference ~1.14, the warmup epoch costs a little); with the 1-GPU "
        "rate it ends ~4.6x (the control)",
    )
    report.check(
        CONTROL_LR,
        r.loss_unscaled / r.loss_1gpu,
        ">=",
        2,
        "guard: the unscaled rate takes 8x fewer steps of the same size, so after 3 epochs "
        "its loss is well above the 1-GPU run's: the fault shows",
    )


def _batchnorm(report: SolutionReport, r: Norms) -> None:
    report.metric("eval accuracy, 1 device", r.acc_1dev)
    report.check(
        BN_ACC_CHECK,
        r.acc_synced,
        ">=",
        r.acc_1dev - 0.05,
        "within 5 points of the same model on one device (statistics of the global batch "
        "either way; float rounding only); unsynchronized BN normalizes each replica's "
        "single class away and lands near chance (see control)",
    )
    report.check(
        CONTROL_BN,
        r.acc_unsynced,
        "<=",
        0.5,
        f"guard: plain BatchNorm on the same batches, {NUM_CLASSES} classes (chance 0.25): "
        "the fault shows",
    )


if __name__ == "__main__":
    print_check_of(__name__)
