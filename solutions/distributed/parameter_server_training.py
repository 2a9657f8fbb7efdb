"""Parameter-server training with ParameterServerStrategy, and its staleness measured.

An in-process cluster (1 parameter server, 2 workers, this process as the coordinator)
trains a classifier. The variables live on the PS; the coordinator ``schedule``s a step
function, a free worker runs it: it reads (pulls) the current weights, computes a gradient
on its own batch and applies (pushes) ``w -= lr * g`` to the PS, without waiting for the
other worker. So a worker's gradient can be STALE: computed on weights that the other
worker has updated since it read them.

The staleness is measured, not assumed: a step counter on the PS is read before the
forward pass and incremented after the update (control dependencies fix that order), so
``counter after - 1 - counter before`` is the number of other updates that landed between
this step's read and its write. Asynchronous training (schedule every step, ``join`` once)
is compared with the synchronous control (``join`` after every step): there every step must
see staleness 0, and asynchronously about half the steps are one update stale (two
workers in lock-step). Both runs train to a target loss, measured here on the whole
training set from the weights ``train`` returns; the check reads them only after ``train``
has joined, and ``train`` must join before reading them itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from types import ModuleType

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.distributed.mirrored_strategy import mean_loss

SEED = 0
NUM_WORKERS = 2
NUM_PS = 1
BATCH_SIZE = 256  # per step, on one worker (each worker reads its own shard of the data)
STEPS = 60
LEARNING_RATE = 0.2

ASYNC_STALENESS_CHECK = "mean staleness, asynchronous (updates between read and write)"
SYNC_STALENESS_CHECK = "max staleness, synchronous control"
ASYNC_TARGET_CHECK = "final / initial train loss, asynchronous"
SYNC_TARGET_CHECK = "final / initial train loss, synchronous"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("make_cluster", "make_coordinator", "train")

# -----------------------------------------------------------------------------
# The answer: an in-process cluster, a coordinator, and a scheduled training loop


def make_cluster(num_workers: int, num_ps: int) -> tf.distribute.cluster_resolver.ClusterResolver:
    """Start ``num_workers`` worker and ``num_ps`` PS servers in this process, on free
    localhost ports, and return a resolver for the cluster (this process coordinates).

    On a real cluster each of these is its own host running ``tf.distribute.Server`` (or
    the same program with a ``TF_CONFIG`` naming its job and index); the coordinator ("chief")
    gets the resolver from ``TFConfigClusterResolver``.
    """
    # A remote call to an unreachable task fails at once instead of retrying for ever; set
    # before any server or channel exists.
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    with contextlib.ExitStack() as stack:  # held open together, so the ports differ
        sockets = [stack.enter_context(socket.socket()) for _ in range(num_workers + num_ps)]
        for s in sockets:
            s.bind(("localhost", 0))
        addresses = [f"localhost:{s.getsockname()[1]}" for s in sockets]
    spec = tf.train.ClusterSpec({"worker": addresses[:num_workers], "ps": addresses[num_workers:]})
    # A server runs each incoming function on its inter-op pool; with fewer threads than
    # workers + 1 the in-process servers wait on each other and the run deadlocks.
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=num_workers + 1)
    for job, count in (("worker", num_workers), ("ps", num_ps)):
        for index in range(count):
            tf.distribute.Server(
                spec, job_name=job, task_index=index, config=config, protocol="grpc"
            )
    return tf.distribute.cluster_resolver.SimpleClusterResolver(spec, rpc_layer="grpc")


def make_coordinator(
    cluster: tf.distribute.cluster_resolver.ClusterResolver,
) -> tf.distribute.coordinator.ClusterCoordinator:
    """A ParameterServerStrategy over ``cluster`` and the ClusterCoordinator that schedules
    functions on its workers (one coordinator per strategy, made once)."""
    strategy = tf.distribute.ParameterServerStrategy(cluster)
    return tf.distribute.coordinator.ClusterCoordinator(strategy)


def train(
    coordinator: tf.distribute.coordinator.ClusterCoordinator,
    model_fn: Callable[[], keras.Model],
    initial_weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    steps: int,
    learning_rate: float,
    synchronous: bool,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Train a fresh ``model_fn()`` (starting from ``initial_weights``) with plain SGD for
    ``steps`` scheduled steps of ``batch_size`` examples each.

    ``x``: (N, ...) float32, ``y``: (N,) int labels. Asynchronous (``synchronous=False``):
    schedule every step, then join. Synchronous control: join after every step, so no two
    steps overlap. Returns the final weights (read after the last step has finished) and
    the staleness of every step, (steps,) int: how many other updates reached the PS
    between the step's read of the weights and its own update.
    """
    strategy = coordinator.strategy
    with strategy.scope():  # variables are created on the PS
        model = model_fn()
        model.set_weights(initial_weights)
        updates = tf.Variable(0, dtype=tf.int64, trainable=False)  # updates applied so far
    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=keras.losses.Reduction.NONE
    )

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Runs on each worker: its own shard (input_pipeline_id = worker index), shuffled
        # and repeated. Without the shard every worker would read the same batches.
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        return ds.shuffle(len(x), seed=SEED).repeat().batch(batch_size)

    # create_per_worker_dataset builds the pipeline ON each worker: batches never travel
    # through the coordinator, which only sends "run step" requests.
    per_worker = coordinator.create_per_worker_dataset(
        strategy.distribute_datasets_from_function(dataset_fn)
    )
    per_worker_iterator = iter(per_worker)

    def step_fn(iterator: tf.distribute.DistributedIterator) -> tf.Tensor:
        xb, yb = next(iterator)  # (B, ...), (B,): on the worker

        def replica_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
            read = updates.read_value()  # the PS's update count when we pull the weights
            with tf.control_dependencies([read]):  # pull the weights after reading it
                with tf.GradientTape() as tape:
                    per_example = loss_fn(yb, model(xb, training=True))  # (B,)
                    # One step runs on ONE worker and is one update: its batch is the
                    # whole batch (no all-reduce with the other worker, unlike mirrored).
                    loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
            grads = tape.gradient(loss, model.trainable_variables)
            # Push: w -= lr * g on the PS, one variable at a time, no lock across workers.
            pushed = [
                v.assign_sub(learning_rate * g)
                for v, g in zip(model.trainable_variables, grads, strict=True)
            ]
            with tf.control_dependencies(pushed):
                written = updates.assign_add(1)  # count after our own update
            return written - 1 - read  # other updates between our read and our write

        return strategy.run(replica_step, args=(xb, yb))

    step = tf.function(step_fn)  # traced once, run by whichever worker takes the step

    phase = "train, " + ("synchronous" if synchronous else "asynchronous")
    events.start(phase, steps)
    results = []
    for i in range(steps):
        results.append(coordinator.schedule(step, args=(per_worker_iterator,)))
        if synchronous:
            coordinator.join()  # wait for this step: the next one reads its update
            events.advance(phase, i + 1)
    coordinator.join()  # every scheduled step has finished: the weights are final
    events.advance(phase, steps)
    weights = [np.array(w) for w in model.get_weights()]  # pulled from the PS
    staleness = np.array([int(r.fetch()) for r in results], dtype=np.int64)  # (steps,)
    return weights, staleness


# -----------------------------------------------------------------------------
# Data, model, measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """2048 train / 256 test images (N, 8, 8, 3) float32 in [-0.5, 0.5], labels in [0, 10)."""
    split = synthetic.class_images(n_train=2048, n_test=256, size=8, max_shift=0, seed=seed)
    return synthetic.Split(split.x_train - 0.5, split.y_train, split.x_test - 0.5, split.y_test)


def build_model(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """An MLP (B, 8, 8, 3) -> logits (B, num_classes); wide enough that a step is real work
    (a few ms), so the two workers' steps overlap."""
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),  # (B, 8, 8, 3)
            keras.layers.Flatten(),  # (B, 192)
            keras.layers.Dense(512, activation="relu"),  # (B, 512)
            keras.layers.Dense(num_classes),  # (B, num_classes)
        ]
    )


# check(impl) takes the module that defines the ANSWER functions: this one, a candidate's
# attempt, a wrong-answer fixture or a generated mutant (the runner checks their signatures).
Answer = ModuleType


def check(impl: Answer) -> SolutionReport:
    """Train asynchronously and synchronously on ``impl``'s cluster; measure staleness and loss."""
    report = SolutionReport(solution="distributed.parameter_server_training")
    data = make_data()
    input_shape, num_classes = data.x_train.shape[1:], data.num_classes
    coordinator = impl.make_coordinator(impl.make_cluster(NUM_WORKERS, NUM_PS))
    keras.utils.set_random_seed(SEED)
    local = build_model(input_shape, num_classes)  # here, for measuring
    initial = local.get_weights()
    runs = {}
    for synchronous in (False, True):
        with report.timed(f"wall time, {'synchronous' if synchronous else 'asynchronous'}"):
            runs[synchronous] = impl.train(
                coordinator,
                lambda: build_model(input_shape, num_classes),
                initial,
                data.x_train,
                data.y_train,
                BATCH_SIZE,
                STEPS,
                LEARNING_RATE,
                synchronous,
            )
    x, y = data.x_train, data.y_train
    initial_loss = mean_loss(local, initial, x, y)
    report.metric("workers", NUM_WORKERS)
    report.metric("steps per run", STEPS)
    report.metric("initial train loss", initial_loss)
    for synchronous, (weights, staleness) in runs.items():
        name = "synchronous" if synchronous else "asynchronous"
        staleness = np.asarray(staleness, dtype=np.float64).reshape(-1)
        report.metric(f"mean staleness, {name}", float(staleness.mean()) if staleness.size else 0)
        report.metric(
            f"share of stale steps, {name}", float((staleness > 0).mean()) if staleness.size else 0
        )
        report.metric(f"final train loss, {name}", mean_loss(local, weights, x, y))
    _staleness(report, runs)
    _target(report, local, initial_loss, runs, x, y)
    return report


def _staleness(
    report: SolutionReport, runs: dict[bool, tuple[list[np.ndarray], np.ndarray]]
) -> None:
    stale_async = np.asarray(runs[False][1], dtype=np.float64).reshape(-1)
    stale_sync = np.asarray(runs[True][1], dtype=np.float64).reshape(-1)
    report.check(
        ASYNC_STALENESS_CHECK,
        float(stale_async.mean()) if stale_async.size == STEPS else float("nan"),
        ">=",
        0.2,
        f"one value per step ({STEPS}); two workers in lock-step read the same count, so about "
        "half the steps are 1 stale (reference 0.45-0.57; 2 when one worker runs two steps "
        "during the other's one); a loop that "
        "joins (or fetches) after every schedule never has two steps in flight: 0",
    )
    report.check(
        SYNC_STALENESS_CHECK,
        float(stale_sync.max()) if stale_sync.size == STEPS else float("nan"),
        "==",
        0,
        "join after every step: no other update can land between a step's read and its "
        "write, so the measurement itself must read 0 here; a 'synchronous' run that "
        "schedules one step per worker before each join reads 1",
    )


def _target(
    report: SolutionReport,
    local: keras.Model,
    initial_loss: float,
    runs: dict[bool, tuple[list[np.ndarray], np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
) -> None:
    for synchronous, name in ((False, ASYNC_TARGET_CHECK), (True, SYNC_TARGET_CHECK)):
        ratio = mean_loss(local, runs[synchronous][0], x, y) / initial_loss
        report.check(
            name,
            ratio,
            "<=",
            0.3,
            f"{STEPS} SGD steps of {BATCH_SIZE} at lr {LEARNING_RATE}, loss on all 2048 "
            "training examples from the returned weights (reference ~0.1 in both modes: "
            "staleness of 1 costs little here); weights read before join() hold only the "
            "steps finished by then: 1.0; zeroed weights: ln(10) / 2.32 = 0.99",
        )


if __name__ == "__main__":
    print_check_of(__name__)
