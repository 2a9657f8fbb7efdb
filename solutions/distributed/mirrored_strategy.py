"""Data-parallel training with tf.distribute.MirroredStrategy, proved equal to one device.

The same model, from the same initial weights, is trained with the same global batch
twice: on one replica and on two replicas (two logical CPU devices standing in for two
GPUs). A custom training step runs on every replica with ``strategy.run``, scales each
replica's loss by the GLOBAL batch size (``tf.nn.compute_average_loss``), and lets the
optimizer sum the gradients across replicas (all-reduce). Summed, those gradients are
exactly the single-device gradient of the global batch, so both runs end with the same
weights up to float32 rounding: the two runs sum the same numbers in a different order,
so they agree within ``1e-5 + 1e-4 * |w|`` (NumPy's allclose rule), not bit for bit.
Averaging the loss per replica instead (``tf.reduce_mean``) doubles the step on two
replicas and the weights diverge by about 0.1, thousands of times that bound.

Equal weights alone would also pass a ``train`` that ignores ``strategy`` and trains on one
device. So the model the check hands to ``train`` watches itself: ``model_fn`` records
whether it is called inside the given strategy's scope and keeps the model, whose variables
must be mirrored (one copy per device), and a probe layer at the model's input records, on
every forward pass, which replica ran it and on how many examples: each of the two replicas
must run the model on its own 32 of the global 64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.devices import use_logical_cpus
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
DEVICES = ["/cpu:0", "/cpu:1"]
GLOBAL_BATCH_SIZE = 64  # per replica: 64 on one replica, 32 on each of two
STEPS = 40
LEARNING_RATE = 0.3
# 1 vs 2 replicas: equal within ATOL + RTOL * |w_1rep| (allclose rule); see reference_comparisons.
ATOL = 1e-5
RTOL = 1e-4
WEIGHTS_CHECK = "w_2rep vs w_1rep after training (tolerance used)"
SCOPE_CHECK = "model_fn called inside the given strategy's scope (both runs)"
MIRRORED_CHECK = "model variables mirrored, one copy per device (mirrored run)"
REPLICAS_RAN_CHECK = "replicas that ran the model in training (mirrored run)"
PER_REPLICA_BATCH_CHECK = "forward passes on global / replicas examples (mirrored run)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("make_strategy", "train")

# -----------------------------------------------------------------------------
# The answer: a strategy over given devices, and a custom distributed training loop


def make_strategy(devices: list[str]) -> tf.distribute.Strategy:
    """A MirroredStrategy with one replica per device in ``devices`` (e.g. ["/cpu:0", "/cpu:1"]).

    The devices are named explicitly: ``MirroredStrategy()`` takes every visible GPU, or,
    without GPUs, every logical CPU device (one replica on an ordinary CPU machine), so
    the replica count would depend on the machine rather than on the caller.
    """
    return tf.distribute.MirroredStrategy(devices)


def train(
    strategy: tf.distribute.Strategy,
    model_fn: Callable[[], keras.Model],
    initial_weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    global_batch_size: int,
    steps: int,
    learning_rate: float,
) -> tuple[list[np.ndarray], list[float]]:
    """Train a fresh ``model_fn()`` with plain SGD for ``steps`` steps under ``strategy``.

    ``x``: (N, ...) float32 features, ``y``: (N,) int labels; batches of ``global_batch_size``
    are taken in order (no shuffling, so runs are comparable), repeating the data as needed,
    and split evenly across the replicas. The model starts from ``initial_weights``.
    Returns the final weights (as ``model.get_weights()``) and the loss of every step.
    """
    num_replicas = strategy.num_replicas_in_sync
    assert global_batch_size % num_replicas == 0, "global batch must split evenly"

    # Variables (model and optimizer slots) created inside the scope are mirrored: one copy
    # per replica, kept identical because every replica applies the same summed gradient.
    with strategy.scope():
        model = model_fn()
        model.set_weights(initial_weights)
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
        # Reduction NONE: we want the per-example losses and scale them ourselves.
        loss_fn = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=keras.losses.Reduction.NONE
        )

    # The dataset is batched with the GLOBAL batch; the distributed dataset then hands each
    # replica its slice of every global batch: (global_batch_size / num_replicas, ...).
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .repeat()
        .batch(global_batch_size, drop_remainder=True)
    )
    dist_dataset = strategy.experimental_distribute_dataset(dataset)

    def step_fn(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        # Runs once per replica on its slice: xb (B/R, ...), yb (B/R,).
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)  # (B/R, num_classes)
            per_example = loss_fn(yb, logits)  # (B/R,)
            # sum(per_example) / GLOBAL batch, not mean over the replica's B/R examples:
            # the optimizer SUMS gradients over replicas, so sum_r sum_i l_i / B is the
            # gradient of the global mean. reduce_mean here would make it R times larger.
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        # In a replica context, apply_gradients all-reduces (sums) grads across replicas
        # before the update, so every replica's copy of the weights stays the same.
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def replicated_step(batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        per_replica_loss = strategy.run(step_fn, args=batch)  # one value per replica
        # Each replica's loss is already divided by the global batch: SUM gives the mean.
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)

    # One graph, run on every replica. Traced here, from the distributed dataset's element
    # spec, before the input pipeline starts: an iterator alive while a multi-replica graph
    # traces (seconds) can take as long again to shut down (tf.data's autotuning thread).
    distributed_step = tf.function(replicated_step, input_signature=[dist_dataset.element_spec])
    distributed_step.get_concrete_function()

    phase = f"train on {num_replicas} replica{'s' if num_replicas > 1 else ''}"
    events.start(phase, steps)
    losses = []
    for step, batch in zip(range(steps), dist_dataset, strict=False):
        losses.append(float(distributed_step(batch)))
        events.advance(phase, step + 1, loss=losses[-1])
    return model.get_weights(), losses


# -----------------------------------------------------------------------------
# Setup, data, the model to train, and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """1024 train / 256 test small images (N, 8, 8, 3) float32 in [-0.5, 0.5], labels in [0, 10).

    Zero-centred so that plain SGD on an MLP converges within a few dozen steps.
    """
    split = synthetic.class_images(n_train=1024, n_test=256, size=8, max_shift=0, seed=seed)
    return synthetic.Split(split.x_train - 0.5, split.y_train, split.x_test - 0.5, split.y_test)


def build_model(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """An MLP (B, 8, 8, 3) -> logits (B, num_classes). No BatchNorm: its batch statistics
    are per replica under MirroredStrategy, which would break the 1-vs-2 replica equality."""
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),  # (B, 8, 8, 3)
            keras.layers.Flatten(),  # (B, 192)
            keras.layers.Dense(64, activation="relu"),  # (B, 64)
            keras.layers.Dense(num_classes),  # (B, num_classes)
        ]
    )


def mean_loss(model: keras.Model, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of ``model`` with ``weights`` on all of (x, y)."""
    model.set_weights(weights)
    logits = model(x, training=False)  # (N, num_classes)
    loss = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)  # (N,)
    return float(tf.reduce_mean(loss))


@dataclass
class Seen:
    """What the check's own model saw of one ``impl.train`` run: where it was built and run.

    The check cannot see inside ``train``, but it owns ``model_fn`` and so the model:
    ``model_fn`` records whether it is called inside ``strategy.scope()`` and keeps each
    model it builds (their variables are inspected afterwards), and a replica_probe layer at
    the model's input records every forward pass.
    """

    strategy: tf.distribute.Strategy
    in_scope: list[bool] = field(default_factory=list)  # one per model_fn() call
    models: list[keras.Model] = field(default_factory=list)
    # One (replica id, batch size) per forward pass; replica -1: not inside one of the
    # strategy's replicas (no strategy.run, another strategy, or none).
    forward: list[tuple[int, int]] = field(default_factory=list)

    def replica_batches(self) -> list[int]:
        """Batch sizes of the forward passes run inside the strategy's replicas."""
        return [batch for replica, batch in self.forward if replica >= 0]

    def replicas_ran(self) -> int:
        """How many distinct replicas ran a forward pass."""
        return len({replica for replica, _ in self.forward if replica >= 0})

    def mirrored_share(self) -> float:
        """Share of the built models' variables that have one copy on each replica's device."""
        variables = [v for model in self.models for v in model.variables]
        replicas = self.strategy.num_replicas_in_sync

        def mirrored(v: tf.Variable) -> bool:
            copies = self.strategy.experimental_local_results(v)  # (v,) for a plain variable
            return (
                isinstance(v, tf.distribute.DistributedValues)
                and len(copies) == replicas
                and len({c.device for c in copies}) == replicas
            )

        return float(np.mean([mirrored(v) for v in variables])) if variables else 0.0


def replica_probe(seen: Seen) -> keras.layers.Layer:
    """A layer, identity on (B, ...), that appends (replica id, B) to ``seen.forward`` on
    every run.

    Inside ``strategy.run`` the replica context belongs to the strategy and carries the
    replica's id; outside it (a plain call, a call in the scope but not in strategy.run)
    the pass is recorded with replica -1. The Python part runs when the function is traced;
    ``tf.py_function`` runs on every step, with the real batch size. (A Lambda layer: Keras
    ships no type stubs, and mypy --strict refuses a subclass of an untyped class.)
    """

    def probe(inputs: tf.Tensor) -> tf.Tensor:
        context = tf.distribute.get_replica_context()  # None in a cross-replica context
        ours = (
            context is not None
            and tf.distribute.has_strategy()  # False for the default (no) strategy
            and tf.distribute.get_strategy() is seen.strategy
        )
        replica = context.replica_id_in_sync_group if ours else -1

        def record(replica_id: tf.Tensor, batch: tf.Tensor) -> int:
            seen.forward.append((int(replica_id), int(batch)))
            return 0

        recorded = tf.py_function(record, [replica, tf.shape(inputs)[0]], tf.int32)
        with tf.control_dependencies([recorded]):  # the record runs before the model does
            return tf.identity(inputs)

    return keras.layers.Lambda(probe, name="replica_probe")


@dataclass(frozen=True)
class Runs:
    """The same training on 1 and on 2 replicas, from the same initial weights."""

    replicas_1: int
    replicas_2: int
    weights_1: list[np.ndarray]
    weights_2: list[np.ndarray]
    initial_weights: list[np.ndarray]
    reference: keras.Model  # a model of the same architecture, used for measuring
    data: synthetic.Split
    seen_1: Seen  # what the model saw of the 1-replica run
    seen_2: Seen  # ... and of the mirrored run


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def make_strategy(self, devices: list[str]) -> tf.distribute.Strategy: ...

    def train(
        self,
        strategy: tf.distribute.Strategy,
        model_fn: Callable[[], keras.Model],
        initial_weights: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        global_batch_size: int,
        steps: int,
        learning_rate: float,
    ) -> tuple[list[np.ndarray], list[float]]: ...


def train_on_1_and_2_replicas(
    impl: Answer, on_strategy: Callable[[int, int], None] | None = None
) -> Runs:
    """Run ``impl.train`` under ``impl.make_strategy`` on DEVICES[:1] and on DEVICES.

    ``on_strategy(devices asked for, replicas in sync)`` is called for each strategy as
    soon as it is made, before anything trains on it (``check`` checks the count there).
    """
    use_logical_cpus(len(DEVICES))  # first: before anything touches TensorFlow's devices
    data = make_data()
    input_shape, num_classes = data.x_train.shape[1:], data.num_classes

    keras.utils.set_random_seed(SEED)
    reference = build_model(input_shape, num_classes)
    initial_weights = reference.get_weights()

    runs = {}
    for devices in (DEVICES[:1], DEVICES):
        strategy = impl.make_strategy(devices)
        replicas = int(strategy.num_replicas_in_sync)
        if on_strategy is not None:
            on_strategy(len(devices), replicas)
        seen = Seen(strategy)

        def model_fn(seen: Seen = seen) -> keras.Model:
            # Called inside strategy.scope(), as train must: then every variable is mirrored.
            seen.in_scope.append(
                tf.distribute.has_strategy() and tf.distribute.get_strategy() is seen.strategy
            )
            model = keras.Sequential(
                [
                    keras.layers.Input(input_shape),  # (B, 8, 8, 3)
                    replica_probe(seen),  # (B, 8, 8, 3), records (replica, B)
                    build_model(input_shape, num_classes),  # (B, num_classes), the weights
                ]
            )
            seen.models.append(model)
            return model

        weights, _ = impl.train(
            strategy,
            model_fn,
            initial_weights,
            data.x_train,
            data.y_train,
            global_batch_size=GLOBAL_BATCH_SIZE,
            steps=STEPS,
            learning_rate=LEARNING_RATE,
        )
        runs[len(devices)] = (replicas, weights, seen)
    (replicas_1, weights_1, seen_1), (replicas_2, weights_2, seen_2) = runs[1], runs[2]
    return Runs(
        replicas_1,
        replicas_2,
        weights_1,
        weights_2,
        initial_weights,
        reference,
        data,
        seen_1,
        seen_2,
    )


def _flat(weights: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(w) for w in weights])  # (13002,) for this MLP


def reference_comparisons(impl: Answer, runs: Runs | None = None) -> dict[str, Comparison]:
    """Every equality-type comparison of this solution: the 2-replica weights vs 1 replica.

    Both runs add the same per-example gradients, in a different order (64 rows in one
    matmul, or 2 x 32 rows then an all-reduce), so they differ by float32 rounding, which
    depends on the CPU's kernels (oneDNN on or off, AVX2 or AVX-512), not by zero. Why
    ATOL + RTOL * |w|: one step's rounding is a few eps (1.2e-7) relative to each weight
    and its update; over 40 steps it accumulates at most about 40 x that, and the training
    dynamics amplify a difference in the weights only about 6x (an initial perturbation of
    one ulp, ~3e-8, ends at ~1.8e-7 after these 40 steps), so relative differences stay
    well under 1e-4; ATOL covers weights near zero (biases start at 0). Measured: max
    difference ~9e-8, tolerance used ~0.003 with oneDNN on and off.
    """
    runs = runs if runs is not None else train_on_1_and_2_replicas(impl)
    return {
        WEIGHTS_CHECK: compare(_flat(runs.weights_2), _flat(runs.weights_1), atol=ATOL, rtol=RTOL)
    }


def check(impl: Answer) -> SolutionReport:
    """Train with ``impl.train`` on 1 and on 2 replicas from ``impl.make_strategy``; compare."""
    report = SolutionReport(solution="distributed.mirrored_strategy")
    runs = train_on_1_and_2_replicas(
        impl, on_strategy=lambda devices, replicas: _replica_count(report, devices, replicas)
    )
    report.metric("global batch size", GLOBAL_BATCH_SIZE)
    report.metric("steps", STEPS)
    _where_it_ran(report, runs)
    _same_weights(report, impl, runs)
    _it_trains(report, runs)
    return report


def _replica_count(report: SolutionReport, devices: int, replicas: int) -> None:
    """Each strategy's replica count, checked before anything trains on it."""
    if devices == 1:
        report.metric("replicas (1-device run)", replicas)
        report.check(
            "replicas in sync (1-device run)",
            replicas,
            "==",
            1,
            "the baseline really is single-replica",
        )
    else:
        report.metric("replicas (mirrored run)", replicas)
        report.check(
            "replicas in sync (mirrored run)",
            replicas,
            "==",
            len(DEVICES),
            "one replica per listed device",
        )


def _where_it_ran(report: SolutionReport, runs: Runs) -> None:
    """Where the work ran, as the check's own model saw it."""
    calls = runs.seen_1.in_scope + runs.seen_2.in_scope
    in_scope = float(np.mean(calls)) if calls else 0.0
    batches = runs.seen_2.replica_batches()
    per_replica = GLOBAL_BATCH_SIZE // len(DEVICES)
    on_slice = float(np.mean([b == per_replica for b in batches])) if batches else 0.0
    outside = len(runs.seen_2.forward) - len(batches)
    report.metric(
        "model_fn calls (1-device run, mirrored run)",
        f"{len(runs.seen_1.in_scope)}, {len(runs.seen_2.in_scope)}",
    )
    report.metric("forward passes in a replica (mirrored run)", len(batches))
    report.metric("forward passes outside the replicas (mirrored run)", outside)
    report.metric(
        "batch sizes seen in the replicas (mirrored run)",
        ", ".join(str(b) for b in sorted(set(batches))) or "none",
    )
    report.check(
        SCOPE_CHECK,
        in_scope,
        "==",
        1,
        "share of model_fn() calls made inside strategy.scope() of the strategy train was "
        "given (tf.distribute.get_strategy() is it): only variables created there are "
        "mirrored; a train that ignores the strategy builds the model outside it: 0",
    )
    report.check(
        MIRRORED_CHECK,
        runs.seen_2.mirrored_share(),
        "==",
        1,
        f"share of the variables of the models model_fn built that have one copy on each of "
        f"the {len(DEVICES)} devices; a model built outside the scope has plain variables: 0",
    )
    report.check(
        REPLICAS_RAN_CHECK,
        runs.seen_2.replicas_ran(),
        "==",
        len(DEVICES),
        "distinct replica ids of the forward passes run inside strategy.run, recorded by a "
        "probe layer at the model's input; a step that calls the model without "
        "strategy.run (in the scope or not) runs on no replica: 0",
    )
    report.check(
        PER_REPLICA_BATCH_CHECK,
        on_slice,
        "==",
        1,
        f"share of those forward passes whose batch is {GLOBAL_BATCH_SIZE} / {len(DEVICES)} = "
        f"{per_replica} (0 when none ran in a replica): experimental_distribute_dataset "
        f"splits each global batch; strategy.run on an undistributed batch hands every "
        f"replica all {GLOBAL_BATCH_SIZE}: 0",
    )


def _same_weights(report: SolutionReport, impl: Answer, runs: Runs) -> None:
    """1 vs 2 replicas: the same weights, up to float32 summation order."""
    weights_cmp = reference_comparisons(impl, runs)[WEIGHTS_CHECK]
    report.metric("max |w_2rep - w_1rep|", weights_cmp.max_abs_diff)
    report.check_close(
        WEIGHTS_CHECK,
        weights_cmp,
        f"same global batch => same gradients => same weights, up to float32 summation "
        f"order: |diff| <= {ATOL:g} + {RTOL:g}*|w_1rep| (40 steps of rounding, a few eps "
        f"each, amplified ~6x by training; reference ~9e-8 apart, tolerance used ~0.003); "
        f"the per-replica mean loss (tf.reduce_mean) lands ~0.13 apart, tolerance used "
        f"~3e3, nearly every weight outside; so does the learning rate scaled by the "
        f"replicas (~0.13, ~3e3); no all-reduce (each replica applies its own gradient) "
        f"~0.18, ~5e3; " + weights_cmp.detail,
    )


def _it_trains(report: SolutionReport, runs: Runs) -> None:
    """Losses measured here on the whole training set, not taken from the candidate's loop."""
    x, y = runs.data.x_train, runs.data.y_train
    initial_loss = mean_loss(runs.reference, runs.initial_weights, x, y)
    final_loss = mean_loss(runs.reference, runs.weights_2, x, y)
    report.metric("initial train loss", initial_loss)
    report.metric("final train loss (2 replicas)", final_loss)
    report.check(
        "final / initial train loss",
        final_loss / initial_loss,
        "<=",
        0.5,
        "the distributed run actually trains (reference 0.064); a train that returns "
        "the weights zeroed in both runs passes the comparison and lands at 0.99",
    )


if __name__ == "__main__":
    print_check_of(__name__)
