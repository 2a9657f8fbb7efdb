"""Multi-worker data parallelism across real processes, killed mid-run and resumed.

Two worker processes on loopback form a ``tf.distribute.MultiWorkerMirroredStrategy``
cluster, each told who it is by its own ``TF_CONFIG`` (the same cluster list, a different
task index), exactly as two hosts would be. Keras ``fit`` splits every global batch of 64
between the workers (32 each), all-reduces the gradients and applies the same update on
both, so the pair trains to the same weights as ONE process training on the same global
batches, up to float32 summation order.

Then the failure story. Worker 1 gets stuck as epoch 3 of 4 begins (it sleeps: a hung
data read, a wedged driver; its process stays alive and keeps answering the coordination
service's heartbeats, so nothing declares it dead). Worker 0 is blocked in the next
all-reduce; because the strategy was made with a collective timeout
(``CommunicationOptions(timeout_seconds=...)``) it fails with ``DeadlineExceededError``
instead of waiting for ever, and exits non-zero, which is what a job scheduler needs to
see. The harness, playing the scheduler, then SIGKILLs the stuck worker and starts both
workers again with the same backup directory: ``BackupAndRestore`` restores the weights,
optimizer state and epoch counter written at the end of epoch 2, the pair runs only epochs
3 and 4, and ends with the weights of an uninterrupted single-process run.

The check runs the candidate's ``tf_config``, ``make_strategy`` and ``train`` inside the
worker processes (each worker imports the file that defines them), and compares what the
workers return with a single-process Keras run made here. A probe layer in the model the
check hands to ``train`` records every forward pass's batch: 32 on each worker, not 64.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.zygote import Forked, Zygote, die_with_parent
from solutions.distributed.mirrored_strategy import mean_loss

SEED = 0
WORKERS = 2
GLOBAL_BATCH_SIZE = 64  # 32 per worker
STEPS_PER_EPOCH = 5  # the training set is exactly 5 global batches: one epoch = one pass
EPOCHS = 4
KILL_AT_EPOCH = 2  # worker 1 hangs as epoch index 2 (the 3rd) begins: 2 epochs backed up
LEARNING_RATE = 0.3
COLLECTIVE_TIMEOUT_S = 5.0  # an all-reduce waits this long for a peer, then fails
DETECT_BOUND_S = COLLECTIVE_TIMEOUT_S + 10  # the timeout, + 10 s for a loaded machine
HARNESS_STOP_S = DETECT_BOUND_S + 2  # a survivor with no error by then has failed the check
# Workers vs one process: equal within ATOL + RTOL * |w| (allclose rule); see
# reference_comparisons.
ATOL = 1e-5
RTOL = 1e-4

CLUSTER_CHECK = "workers that joined a 2-worker cluster (killed run)"
FORWARD_CHECK = "forward passes on 64 / 2 = 32 examples (every worker, killed run)"
DETECT_CHECK = "seconds from the peer's stall to the survivor's error"
EPOCHS_CHECK = "epochs run after the restart"
RESTORED_CHECK = "weights at the restart vs one process after 2 epochs (tolerance used)"
FINAL_CHECK = "final weights, killed + resumed vs one process (tolerance used)"
TRAINS_CHECK = "final / initial train loss"


# The functions a candidate writes; check(impl) calls only these on impl, in the workers
# (and tf_config here, to write each worker's TF_CONFIG).
ANSWER = ("tf_config", "make_strategy", "train")

# -----------------------------------------------------------------------------
# The answer: the worker side of multi-worker training


def tf_config(workers: list[str], index: int) -> dict[str, Any]:
    """The ``TF_CONFIG`` (as a dict, to be JSON-encoded into the environment) of worker
    ``index`` in the cluster ``workers`` (["host:port", ...], the same list on every worker).

    On a real cluster every host gets this list (its own address included) and its own
    index; worker 0 is the chief (it writes checkpoints and backups for the cluster).
    """
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def make_strategy(timeout_seconds: float) -> tf.distribute.Strategy:
    """A MultiWorkerMirroredStrategy for the cluster in ``TF_CONFIG``, whose collectives
    (the gradient all-reduce) fail after ``timeout_seconds`` instead of hanging.

    Must run before anything else touches TensorFlow's runtime: it starts this worker's
    gRPC server on its TF_CONFIG address and waits for the other workers to join.
    """
    # Without a timeout, an all-reduce whose peer is stuck (alive, so its heartbeats still
    # reach the coordination service and nothing declares it dead) waits for ever: the
    # survivor hangs, holding its accelerators, until something outside kills it.
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def train(
    strategy: tf.distribute.Strategy,
    model_fn: Callable[[], keras.Model],
    initial_weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    global_batch_size: int,
    epochs: int,
    learning_rate: float,
    backup_dir: str,
    callbacks: list[keras.callbacks.Callback],
) -> list[np.ndarray]:
    """Train ``model_fn()`` with plain SGD for ``epochs`` passes over (x, y), resuming from
    ``backup_dir`` if an earlier run of this cluster left a backup there.

    ``x``: (N, ...) float32 features, ``y``: (N,) int labels; each worker gets the SAME full
    arrays and the same arguments. Batches of ``global_batch_size`` are taken in order (no
    shuffling), split evenly across all the workers' replicas. The model starts from
    ``initial_weights`` unless a backup is restored; ``callbacks`` go to ``fit`` as well.
    Returns the final weights (``model.get_weights()``), the same on every worker.
    """
    # Model, optimizer and their variables inside the scope: mirrored on every worker, and
    # kept identical because every worker applies the same all-reduced gradient.
    with strategy.scope():
        model = model_fn()
        model.set_weights(initial_weights)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
            # Keras divides the summed per-example loss by the GLOBAL batch under a
            # strategy, so the all-reduced (summed) gradient is the global-batch mean's.
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    # Batch with the GLOBAL batch size: the distributed dataset splits every batch, each
    # worker keeps its share ((global_batch_size / workers, ...) per step). DATA sharding
    # says so explicitly: the arrays are one in-memory source, there are no files to split.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch_size).with_options(options)
    )

    # BackupAndRestore writes weights, optimizer state and the epoch counter at the end of
    # every epoch (the chief writes, the others write to temporary copies) and restores them
    # when fit starts again. It does not store the input pipeline's position: one epoch is
    # one pass over a finite dataset, so a resumed epoch sees the same batches again.
    backup = keras.callbacks.BackupAndRestore(backup_dir)
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[backup, *callbacks])
    return list(model.get_weights())


# -----------------------------------------------------------------------------
# Data and model


def make_data(seed: int = SEED) -> synthetic.Split:
    """320 train / 64 test images (N, 8, 8, 3) float32 in [-0.5, 0.5], labels in [0, 10).

    320 = STEPS_PER_EPOCH global batches of 64, so an epoch is one whole pass over the data.
    """
    n_train = STEPS_PER_EPOCH * GLOBAL_BATCH_SIZE
    split = synthetic.class_images(n_train=n_train, n_test=64, size=8, max_shift=0, seed=seed)
    return synthetic.Split(split.x_train - 0.5, split.y_train, split.x_test - 0.5, split.y_test)


def build_model(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """An MLP (B, 8, 8, 3) -> logits (B, num_classes); no BatchNorm (per-replica statistics
    would break the workers-vs-one-process equality)."""
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),  # (B, 8, 8, 3)
            keras.layers.Flatten(),  # (B, 192)
            keras.layers.Dense(32, activation="relu"),  # (B, 32)
            keras.layers.Dense(num_classes),  # (B, num_classes)
        ]
    )


# -----------------------------------------------------------------------------
# The worker process: runs the candidate's answer under the TF_CONFIG it was started with

JOB_ENV = "AIPREP_MULTI_WORKER_JOB"  # path of the job file a worker reads
MODULE = "solutions.distributed.multi_worker_mirrored"  # what a worker imports
# What the workers' zygote imports once; each worker is forked from it (aiprep.kit.zygote).
ZYGOTE_PRELOAD = ["tensorflow", "tf_keras", MODULE]


class BatchProbe(keras.layers.Layer):  # type: ignore[misc]
    """Identity on (B, ...) that appends B to ``sizes`` on every forward pass (no weights)."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__(name="batch_probe")
        self.sizes = sizes

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        def record(batch: tf.Tensor) -> int:
            self.sizes.append(int(batch))
            return 0

        recorded = tf.py_function(record, [tf.shape(inputs)[0]], tf.int32)
        with tf.control_dependencies([recorded]):  # runs on every step, not only at tracing
            return tf.identity(inputs)


class Watch(keras.callbacks.Callback):  # type: ignore[misc]
    """Records the epochs this process runs and the weights it starts them from, and saves
    what ``out`` holds so far as each epoch begins (``note``); when epoch ``kill_at`` begins
    it notes the time and hangs (alive, heartbeats still answered by TensorFlow's threads)
    until the harness SIGKILLs it."""

    def __init__(
        self,
        out: dict[str, Any],
        note: Callable[[], None],
        kill_at: int | None,
        kill_file: Path,
    ) -> None:
        super().__init__()
        self.out, self.note, self.kill_at, self.kill_file = out, note, kill_at, kill_file
        self.start_weights: list[np.ndarray] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.start_weights is None:  # after BackupAndRestore's on_train_begin restored
            self.start_weights = [np.array(w) for w in self.model.get_weights()]
        if epoch == self.kill_at:
            self.note()
            self.kill_file.write_text(repr(time.time()), encoding="utf-8")
            time.sleep(COLLECTIVE_TIMEOUT_S + 60)  # stuck until the harness kills it
            os._exit(1)  # bounded even if nobody does
        self.out["epochs"].append(epoch)
        self.note()


def _load_answer(path: str) -> ModuleType:
    """The module defining the answer: this one, or a candidate's file loaded by path."""
    if Path(path).resolve() == Path(__file__).resolve():
        return sys.modules[__name__]
    spec = importlib.util.spec_from_file_location("attempt", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["attempt"] = module
    spec.loader.exec_module(module)
    return module


def run_worker() -> None:
    """Entry point of a worker process (``TF_CONFIG`` and ``JOB_ENV`` in its environment).

    Writes ``result.json`` (+ ``.npz`` weights) into its folder and exits: 0 when training
    finished, 1 on an error (recorded with the time it was raised).
    """
    job = json.loads(Path(os.environ[JOB_ENV]).read_text(encoding="utf-8"))
    die_with_parent(job["parent"])
    go = Path(job["go_file"])
    while not go.exists():  # started early (TensorFlow imported): wait for the harness's go
        time.sleep(0.05)
    folder = Path(job["folder"])
    out: dict[str, Any] = {"replicas": 0, "epochs": [], "forward": [], "error": None}
    weights: dict[str, np.ndarray] = {}
    try:
        impl = _load_answer(job["answer"])
        arrays = np.load(job["arrays"])
        strategy = impl.make_strategy(COLLECTIVE_TIMEOUT_S)
        out["replicas"] = int(strategy.num_replicas_in_sync)

        def note() -> None:  # a worker killed later leaves no result.json, but this
            (folder / "progress.tmp").write_text(json.dumps(out), encoding="utf-8")
            (folder / "progress.tmp").replace(folder / "progress.json")

        note()
        sizes: list[int] = out["forward"]
        watch = Watch(out, note, job["kill_at"], Path(job["kill_file"]))
        initial = [arrays[f"w{i}"] for i in range(len(arrays.files) - 2)]
        input_shape, classes = arrays["x"].shape[1:], int(arrays["y"].max()) + 1

        def model_fn() -> keras.Model:
            return keras.Sequential(
                [
                    keras.layers.Input(input_shape),  # (B, 8, 8, 3)
                    BatchProbe(sizes),  # (B, 8, 8, 3), records B
                    build_model(input_shape, classes),  # (B, classes): the weights trained
                ]
            )

        final = impl.train(
            strategy,
            model_fn,
            initial,
            arrays["x"],
            arrays["y"],
            GLOBAL_BATCH_SIZE,
            EPOCHS,
            LEARNING_RATE,
            job["backup_dir"],
            [watch],
        )
        weights.update({f"final{i}": np.asarray(w) for i, w in enumerate(final)})
        weights.update({f"start{i}": w for i, w in enumerate(watch.start_weights or [])})
    except Exception as e:  # the survivor of a stuck peer lands here: record, then exit
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        out["error"] = f"{type(e).__name__}: {(lines or [''])[-1][:200]}"
        out["error_time"] = time.time()
    np.savez(folder / "weights.npz", **weights)  # type: ignore[arg-type]  # numpy's stub
    (folder / "result.json").write_text(json.dumps(out), encoding="utf-8")
    # os._exit: a normal exit can wait a long time on the gRPC server's threads.
    os._exit(0 if out["error"] is None else 1)


# -----------------------------------------------------------------------------
# The harness: start the workers, kill one, restart, and measure


# check(impl) takes the module that defines the ANSWER functions: this one, a candidate's
# attempt, a wrong-answer fixture or a generated mutant (the runner checks their signatures).
Answer = ModuleType


@dataclass
class WorkerRun:
    """What one worker process left behind."""

    index: int
    returncode: int | None  # None: still running when the harness killed it
    replicas: int
    epochs: list[int]
    forward: list[int]
    error: str | None
    error_time: float | None
    start_weights: list[np.ndarray]
    final_weights: list[np.ndarray]
    log_tail: str


@dataclass
class Round:
    """One start of the cluster: its workers, and when worker 1 got stuck (if it did)."""

    workers: list[WorkerRun]
    killed_at: float | None
    stopped_by_harness: bool


def free_ports(n: int) -> list[int]:
    """``n`` ports the OS reports free now (bind to port 0), held open until all are picked
    so that they differ."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("localhost", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def answer_file(impl: object) -> str:
    """The source file that defines ``impl`` (this solution, a candidate's attempt, a
    fixture or a generated mutant): the workers import it again."""
    path = getattr(impl, "__file__", None)
    if not path:
        raise TypeError("the answer must be a module loaded from a file (workers import it)")
    return str(Path(path).resolve())


@dataclass
class WorkerStart:
    """How to start one worker: the environment it adds to the check's, and its log."""

    env: dict[str, str]
    log: Path


@contextlib.contextmanager
def started(zygote: Zygote, workers: list[WorkerStart]) -> Iterator[list[Forked]]:
    """Start the worker processes (forked from ``zygote``: each a fresh process with
    TensorFlow imported, in its own session); kill every one on the way out, on success,
    failure or timeout alike, so no worker outlives the check."""
    procs: list[Forked] = []
    try:
        for worker in workers:
            procs.append(zygote.start(f"{MODULE}:run_worker", log=worker.log, env=worker.env))
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


@dataclass
class Cluster:
    """One start of the cluster, prepared: each worker's command and the files that steer
    the round (``go``: the workers may start; ``kill_file``: worker 1 stalled, and when)."""

    folder: Path
    workers: list[WorkerStart]
    go: Path
    kill_file: Path


def prepare_cluster(
    impl: Answer, folder: Path, arrays: Path, backup_dir: Path, kill: bool
) -> Cluster:
    """What WORKERS processes running ``run_worker`` with ``impl`` need: each one's job file,
    environment (its own TF_CONFIG; free loopback ports picked now) and log."""
    folder.mkdir()
    addresses = [f"localhost:{port}" for port in free_ports(WORKERS)]
    kill_file, go = folder / "stalled_at", folder / "go"
    workers = []
    for index in range(WORKERS):
        work = folder / f"worker{index}"
        work.mkdir()
        job = {
            "folder": str(work),
            "answer": answer_file(impl),
            "arrays": str(arrays),
            "backup_dir": str(backup_dir),
            "kill_at": KILL_AT_EPOCH if kill and index == 1 else None,
            "kill_file": str(kill_file),
            "go_file": str(go),
            "parent": os.getpid(),
        }
        (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
        env = {
            "TF_CONFIG": json.dumps(impl.tf_config(addresses, index)),
            "GRPC_FAIL_FAST": "use_caller",  # a call to a dead peer fails instead of retrying
            JOB_ENV: str(work / "job.json"),
        }
        workers.append(WorkerStart(env, work / "log.txt"))
    return Cluster(folder, workers, go, kill_file)


def run_cluster(
    cluster: Cluster,
    procs: list[Forked],
    limit_s: float,
    on_stall: Callable[[], None] = lambda: None,
) -> Round:
    """Let the started workers go; wait for all of them, but at most ``limit_s`` in all and
    HARNESS_STOP_S after a planned stall; stop the round as soon as a worker fails on its
    own, or as soon as worker 0 has exited after a planned stall (the caller then kills the
    stuck worker). ``on_stall`` runs once when the planned stall begins."""
    cluster.go.touch()
    start, stopped, stalled = time.time(), False, False
    kill_file = cluster.kill_file
    while None in (codes := [p.poll() for p in procs]):  # poll every one, every time
        now = time.time()
        planned = kill_file.exists()
        if planned and not stalled:
            stalled = True
            on_stall()
        failed = any(code not in (None, 0) for code in codes) and not planned
        if planned and codes[0] is not None:
            break  # the survivor gave up: kill the stuck worker, as a scheduler would
        late = now - start > limit_s or (
            planned and now - float(kill_file.read_text() or now) > HARNESS_STOP_S
        )
        if failed or late:
            stopped = late
            break
        time.sleep(0.1)
    return Round([], float(kill_file.read_text()) if kill_file.exists() else None, stopped)


def _read_worker(folder: Path, index: int, proc: Forked) -> WorkerRun:
    work = folder / f"worker{index}"
    out: dict[str, Any] = {}
    for name in ("result.json", "progress.json"):  # killed: what it had noted by then
        if (work / name).exists():
            out = json.loads((work / name).read_text(encoding="utf-8"))
            break
    saved = np.load(work / "weights.npz") if (work / "weights.npz").exists() else {}
    log = (work / "log.txt").read_text(encoding="utf-8", errors="replace").splitlines()
    tail = [line for line in log if line.strip() and line[:5] not in ("I0000", "W0000")][-2:]
    return WorkerRun(
        index=index,
        returncode=proc.poll(),
        replicas=int(out.get("replicas", 0)),
        epochs=list(out.get("epochs", [])),
        forward=list(out.get("forward", [])),
        error=out.get("error"),
        error_time=out.get("error_time"),
        start_weights=[saved[k] for k in sorted(_keys(saved, "start"), key=_number)],
        final_weights=[saved[k] for k in sorted(_keys(saved, "final"), key=_number)],
        log_tail=" | ".join(line[:160] for line in tail),
    )


def _keys(saved: Any, prefix: str) -> list[str]:
    return [k for k in getattr(saved, "files", []) if k.startswith(prefix)]


def _number(key: str) -> int:
    return int(key.removeprefix("start").removeprefix("final"))


@dataclass
class SingleProcess:
    """The reference: one process, the same data, initial weights and global batches."""

    after_kill_epoch: list[np.ndarray]  # weights after KILL_AT_EPOCH epochs
    final: list[np.ndarray]  # after EPOCHS epochs
    model: keras.Model


def train_single_process(data: synthetic.Split, initial: list[np.ndarray]) -> SingleProcess:
    """Plain Keras fit, no strategy: what the cluster must reproduce."""
    model = build_model(data.x_train.shape[1:], data.num_classes)
    model.set_weights(initial)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    dataset = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
    dataset = dataset.batch(GLOBAL_BATCH_SIZE)
    model.fit(dataset, epochs=KILL_AT_EPOCH, verbose=0)
    after = [np.array(w) for w in model.get_weights()]
    model.fit(dataset, initial_epoch=KILL_AT_EPOCH, epochs=EPOCHS, verbose=0)
    return SingleProcess(after, [np.array(w) for w in model.get_weights()], model)


@dataclass
class Runs:
    """The killed run, the resumed run, and the single-process reference."""

    killed: Round
    resumed: Round
    single: SingleProcess
    initial: list[np.ndarray]
    data: synthetic.Split


def kill_and_resume(
    impl: Answer, after_killed_run: Callable[[Round], None] = lambda _: None
) -> Runs:
    """Run the cluster with worker 1 killed at epoch KILL_AT_EPOCH, then again from the
    same backup directory; and the single-process reference, here. ``after_killed_run``
    sees the first round before the second starts (the checks of what it shows)."""
    singles: list[SingleProcess] = []  # trained while worker 0 waits out the stall
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="multi_worker_")))
        # Opened first: where the zygote is a new interpreter (see aiprep.kit.zygote), it
        # imports TensorFlow while the data is made here.
        zygote = stack.enter_context(Zygote(ZYGOTE_PRELOAD, log=folder / "zygote.txt"))
        data = make_data()
        keras.utils.set_random_seed(SEED)
        initial = build_model(data.x_train.shape[1:], data.num_classes).get_weights()
        arrays = folder / "arrays.npz"
        named = {f"w{i}": w for i, w in enumerate(initial)}
        np.savez(arrays, x=data.x_train, y=data.y_train, **named)
        backup = folder / "backup"
        first = prepare_cluster(impl, folder / "killed run", arrays, backup, kill=True)
        second = prepare_cluster(impl, folder / "resumed run", arrays, backup, kill=False)
        # While worker 0 waits out the stall (idle CPUs), the restart's workers start (they
        # train once `second.go` exists) and the single-process reference trains here.
        later: list[Forked] = []

        def while_stalled() -> None:
            later.extend(stack.enter_context(started(zygote, second.workers)))
            singles.append(train_single_process(data, initial))

        with started(zygote, first.workers) as procs:
            events.start("killed run", 1, unit="cluster run")
            killed = run_cluster(first, procs, limit_s=180, on_stall=while_stalled)
        killed.workers = [_read_worker(first.folder, i, procs[i]) for i in range(WORKERS)]
        events.advance("killed run", 1)
        after_killed_run(killed)
        events.start("resumed run", 1, unit="cluster run")
        if not later:  # no stall in the first round (a wrong answer): start them now
            while_stalled()
        resumed = run_cluster(second, later, limit_s=180)
        for proc in later:
            proc.kill()
            proc.wait()
        resumed.workers = [_read_worker(second.folder, i, later[i]) for i in range(WORKERS)]
        events.advance("resumed run", 1)
    return Runs(killed, resumed, singles[0], initial, data)


def _flat(weights: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(w) for w in weights]) if weights else np.zeros(0)


def reference_comparisons(impl: Answer, runs: Runs | None = None) -> dict[str, Comparison]:
    """The cluster's weights vs the single-process run: at the restart and at the end.

    The workers add the same per-example gradients as one process, in another order (two
    32-row matmuls and an all-reduce instead of one 64-row matmul), so the weights differ by
    float32 rounding that depends on the CPU's kernels (oneDNN on or off), not by zero.
    Why ATOL + RTOL * |w|: one step's rounding is a few eps (1.2e-7) relative to each
    weight; 20 steps accumulate at most ~20x that and training amplifies it a few times, far
    under 1e-4 relative; ATOL covers weights near zero (biases start at 0). A missing
    worker's weights compare as empty arrays, which fails.
    """
    runs = runs if runs is not None else kill_and_resume(impl)
    restarted = runs.resumed.workers[0].start_weights
    final = runs.resumed.workers[0].final_weights
    single = runs.single
    return {
        RESTORED_CHECK: _compare(restarted, single.after_kill_epoch),
        FINAL_CHECK: _compare(final, single.final),
    }


def _compare(got: list[np.ndarray], expected: list[np.ndarray]) -> Comparison:
    flat_got, flat_expected = _flat(got), _flat(expected)
    if flat_got.shape != flat_expected.shape:  # nothing came back: as far off as it gets
        flat_got = np.full_like(flat_expected, np.inf)
    return compare(flat_got, flat_expected, atol=ATOL, rtol=RTOL)


def check(impl: Answer) -> SolutionReport:
    """Kill a worker of ``impl``'s 2-worker cluster mid-run, resume, compare with one process."""
    report = SolutionReport(solution="distributed.multi_worker_mirrored")
    report.metric("workers", WORKERS)
    report.metric("global batch size", GLOBAL_BATCH_SIZE)
    report.metric("epochs x steps", f"{EPOCHS} x {STEPS_PER_EPOCH}")

    def killed_run_checks(killed: Round) -> None:
        # Recorded before the resumed run starts: a wrong answer they catch ends there.
        _cluster(report, killed)
        _kill(report, killed)

    with report.timed("wall time, both cluster runs (process starts included)"):
        runs = kill_and_resume(impl, killed_run_checks)
    _resume(report, impl, runs)
    _it_trains(report, runs)
    return report


def _cluster(report: SolutionReport, killed: Round) -> None:
    every = killed.workers
    joined = sum(w.replicas == WORKERS for w in every)
    failures = "; ".join(
        f"worker {w.index}: {w.error or w.log_tail}" for w in every if w.replicas != WORKERS
    )
    report.check(
        CLUSTER_CHECK,
        joined,
        "==",
        WORKERS,
        "worker processes of the killed run whose strategy reported 2 replicas in sync "
        "(the resumed run's workers are held to the epochs and weights checks); "
        "two workers given the same task index both bind the same port: one fails with "
        "'Could not start gRPC server', the other waits for a worker 1 that never comes "
        "and is stopped here: 0" + (f". Seen: {failures}" if failures else ""),
    )
    sizes = [size for w in every if w.replicas == WORKERS for size in w.forward]
    share = GLOBAL_BATCH_SIZE // WORKERS
    on_share = float(np.mean([s == share for s in sizes])) if sizes else 0.0
    report.check(
        FORWARD_CHECK,
        on_share,
        "==",
        1,
        "share of the forward passes, recorded by a probe layer at the model's input in "
        "every worker, whose batch is 32 (0 when none ran): the distributed dataset splits "
        "each global batch of 64 between the workers; batching with the global batch size "
        "times the workers gives 64 per worker (a global batch of 128; only the short last "
        "batch splits to 32): 0.33; a train that ignores the strategy runs 64 on each "
        "worker: 0",
    )


def _kill(report: SolutionReport, run: Round) -> None:
    survivor = run.workers[0]
    killed = run.killed_at
    seconds = (
        survivor.error_time - killed
        if killed is not None and survivor.error_time is not None
        else float("inf")
    )
    report.metric("survivor's error", survivor.error or "none")
    report.check(
        DETECT_CHECK,
        seconds,
        "<=",
        DETECT_BOUND_S,
        f"worker 1 hangs (alive, still heartbeating) as epoch {KILL_AT_EPOCH + 1} begins; "
        f"worker 0's next all-reduce fails after the {COLLECTIVE_TIMEOUT_S:g} s collective "
        f"timeout (DeadlineExceededError); + 10 s for a loaded machine. Without a timeout "
        f"it waits for the stuck peer and is stopped by this harness after "
        f"{HARNESS_STOP_S:g} s: inf; a train that catches the error and returns "
        f"raises nothing: inf"
        + (" -- stopped by the harness: it hung" if run.stopped_by_harness else ""),
    )


def _resume(report: SolutionReport, impl: Answer, runs: Runs) -> None:
    epochs = runs.resumed.workers[0].epochs
    report.metric("epochs the survivor began in the killed run", len(runs.killed.workers[0].epochs))
    report.check(
        EPOCHS_CHECK,
        len(epochs),
        "==",
        EPOCHS - KILL_AT_EPOCH,
        f"the backup written at the end of epoch {KILL_AT_EPOCH} holds the epoch counter: "
        f"the restarted cluster runs epochs {KILL_AT_EPOCH + 1}..{EPOCHS} only; without "
        f"BackupAndRestore it starts from scratch: {EPOCHS}",
    )
    comparisons = reference_comparisons(impl, runs)
    restored, final = comparisons[RESTORED_CHECK], comparisons[FINAL_CHECK]
    report.metric("max |w_restart - w_1proc| (2 epochs)", restored.max_abs_diff)
    report.metric("max |w_final - w_1proc|", final.max_abs_diff)
    why = (
        f"|diff| <= {ATOL:g} + {RTOL:g}*|w_1proc|: the same global batches in another "
        f"summation order differ by float32 rounding only (see reference_comparisons)"
    )
    report.check_close(
        RESTORED_CHECK,
        restored,
        f"{why}; a restart without a restore starts from the initial weights, tolerance "
        f"used ~9e3; a global batch of 128 (per-worker batch of 64) ~4e3; " + restored.detail,
    )
    report.check_close(
        FINAL_CHECK,
        final,
        f"{why}; the global batch of 128 lands ~5e3 off; " + final.detail,
    )


def _it_trains(report: SolutionReport, runs: Runs) -> None:
    """Losses measured here, on the whole training set, with the weights the workers returned."""
    model, x, y = runs.single.model, runs.data.x_train, runs.data.y_train
    initial = mean_loss(model, runs.initial, x, y)
    final_weights = runs.resumed.workers[0].final_weights
    final = mean_loss(model, final_weights, x, y) if final_weights else float("nan")
    report.metric("initial train loss", initial)
    report.metric("final train loss (workers)", final)
    report.check(
        TRAINS_CHECK,
        final / initial,
        "<=",
        0.5,
        "the cluster actually trains (reference 0.31); a train that returns zeroed weights "
        "lands at ln(10) / 2.37 = 0.97; the global batch of 128 (half the steps) at 0.59",
    )


if __name__ == "__main__":
    print_check_of(__name__)
