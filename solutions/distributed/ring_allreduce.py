"""Ring all-reduce by hand over 4 logical devices: reduce-scatter, then all-gather.

Every device i holds a gradient g_i of L values and must end with sum_i g_i. The ring
splits each tensor into N chunks and passes chunks only to the next device on a ring
(i -> i+1 mod N). Reduce-scatter: in N-1 steps every device sends one chunk and adds the
chunk it receives into its own copy, after which device i owns the fully reduced chunk
(i+1) mod N. All-gather: N-1 more steps pass the finished chunks around the ring,
overwriting. Each device sends 2(N-1) chunks of L/N values: 2(N-1)/N of the tensor,
whatever N is (1.5x for N=4, under 2x for any N), and every link carries the same
load. A parameter server that gathers the N tensors and sends the sum back moves
(N-1) full tensors in and out of one device: its link is the bottleneck and grows with N.

The check hands ``ring_allreduce`` an instrumented ``send``: the only way a tensor may
cross devices. It places the copy on the destination device and logs who sent how many
bytes to whom, so the traffic is measured from the sends the implementation makes, not
computed from a formula. The result on every device is compared with ``tf.add_n`` (and
TensorFlow's own all-reduce under MirroredStrategy is shown to agree with it). The tensor
has L = 1003 values, not a multiple of N = 4, so the chunks are uneven (251, 251, 251, 250)
and a chunking that assumes L % N == 0 breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import tensorflow as tf

from aiprep.kit.compare import Comparison, compare
from aiprep.kit.devices import use_logical_cpus
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
N_DEVICES = 4
DEVICES = [f"/cpu:{i}" for i in range(N_DEVICES)]
LENGTH = 1003  # not a multiple of N_DEVICES: uneven chunks
BYTES_PER_VALUE = 4  # float32
# Sum of N float32 values of magnitude <= ~4 in another order than tf.add_n: N-1 roundings
# of at most eps/2 = 6e-8 times a partial sum of magnitude <= ~10: <= 2e-6.
ATOL = 1e-5
SUM_CHECK = "all-reduced tensor on every device vs tf.add_n (tolerance used)"
PLACED_CHECK = "share of results on their own device"
NEIGHBOUR_CHECK = "share of sends to the next device on the ring"
TOTAL_CHECK = "bytes sent, all devices / (2(N-1) x tensor bytes)"
BUSIEST_CHECK = "bytes sent, busiest device / (2(N-1)/N x tensor bytes)"
VS_PS_CHECK = "busiest device's bytes sent, ring / parameter server"

# send(tensor, src, dst) -> the tensor copied onto device dst; the one way to move data.
Send = Callable[[tf.Tensor, int, int], tf.Tensor]

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("ring_allreduce",)

# -----------------------------------------------------------------------------
# The answer: reduce-scatter then all-gather, each device talking only to its neighbour


def chunk_sizes(length: int, n: int) -> list[int]:
    """Split ``length`` values into ``n`` chunks as evenly as possible (first ones larger)."""
    return [length // n + (1 if c < length % n else 0) for c in range(n)]


def ring_allreduce(values: list[tf.Tensor], devices: list[str], send: Send) -> list[tf.Tensor]:
    """All-reduce (sum) ``values`` over a ring of devices.

    ``values[i]``: (L,) float32 on ``devices[i]``; L need not be a multiple of N = len(values).
    ``send(tensor, src, dst)`` copies ``tensor`` (held by device ``src``) to device ``dst``
    and returns the copy; data moves between devices only through it, only to the next
    device on the ring. Returns N tensors (L,), the i-th on ``devices[i]``, each the sum.
    """
    n = len(values)
    sizes = chunk_sizes(int(values[0].shape[0]), n)  # e.g. [251, 251, 251, 250]
    chunks: list[list[tf.Tensor]] = []  # chunks[i][c]: device i's copy of chunk c
    for i in range(n):
        with tf.device(devices[i]):
            chunks.append(tf.split(values[i], sizes))  # N tensors of (~L/N,)

    # Reduce-scatter. Step s: device i sends chunk (i - s) mod N to i+1, which adds it to
    # its own. Chunk i - s is the one i received (and added to) at step s-1, so partial
    # sums travel around the ring; after N-1 steps device i holds the full sum of chunk
    # (i + 1) mod N. All N sends of a step happen at once: take them before any add.
    for s in range(n - 1):
        outgoing = [(i, (i - s) % n, chunks[i][(i - s) % n]) for i in range(n)]
        for i, c, chunk in outgoing:
            j = (i + 1) % n
            received = send(chunk, i, j)  # (~L/N,) now on device j
            with tf.device(devices[j]):
                chunks[j][c] = chunks[j][c] + received

    # All-gather. Step s: device i sends chunk (i + 1 - s) mod N, finished (its own at s=0,
    # the one it just received after), to i+1, which overwrites its partial copy.
    for s in range(n - 1):
        outgoing = [(i, (i + 1 - s) % n, chunks[i][(i + 1 - s) % n]) for i in range(n)]
        for i, c, chunk in outgoing:
            chunks[(i + 1) % n][c] = send(chunk, i, (i + 1) % n)

    results = []
    for i in range(n):
        with tf.device(devices[i]):
            results.append(tf.concat(chunks[i], axis=0))  # (L,)
    return results


# -----------------------------------------------------------------------------
# Setup, data, the instrumented send, and the baselines


def make_data(seed: int = SEED) -> list[np.ndarray]:
    """N_DEVICES "gradients" of LENGTH float32 values each, standard normal."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(LENGTH).astype(np.float32) for _ in range(N_DEVICES)]


def device_index(tensor: tf.Tensor) -> int:
    """Which of DEVICES an eager tensor lives on (its device's CPU index)."""
    return int(tf.DeviceSpec.from_string(tensor.device).device_index or 0)


@dataclass
class Wire:
    """The instrumented network: every send, as (src, dst, bytes)."""

    sends: list[tuple[int, int, int]] = field(default_factory=list)

    def send(self, tensor: tf.Tensor, src: int, dst: int) -> tf.Tensor:
        self.sends.append((src, dst, int(tf.size(tensor)) * tensor.dtype.size))
        with tf.device(DEVICES[dst]):
            return tf.identity(tensor)  # the copy, on device dst

    def sent_by(self, n: int) -> list[int]:
        """Bytes sent by each of the n devices."""
        return [sum(b for s, _, b in self.sends if s == i) for i in range(n)]


def parameter_server_allreduce(values: list[tf.Tensor], send: Send) -> list[tf.Tensor]:
    """The parameter-server pattern, for comparison: device 0 is the server. Every other
    device sends it its whole tensor; it sums and sends the sum back to each."""
    n = len(values)
    with tf.device(DEVICES[0]):
        total = tf.add_n([values[0]] + [send(values[i], i, 0) for i in range(1, n)])
    return [total] + [send(total, 0, i) for i in range(1, n)]


def mirrored_allreduce(values: list[tf.Tensor]) -> np.ndarray:
    """TensorFlow's own all-reduce: MirroredStrategy over DEVICES, replica i holding values[i]."""
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: values[ctx.replica_id_in_sync_group]
    )

    def all_reduce(v: tf.Tensor) -> tf.Tensor:
        context = tf.distribute.get_replica_context()
        assert context is not None
        return context.all_reduce(tf.distribute.ReduceOp.SUM, v)

    reduced = strategy.run(all_reduce, args=(per_replica,))
    return np.asarray(strategy.experimental_local_results(reduced)[0])


class Answer(Protocol):
    """What check(impl) calls: the ANSWER function, with the reference's signature."""

    def ring_allreduce(
        self, values: list[tf.Tensor], devices: list[str], send: Send
    ) -> list[tf.Tensor]: ...


@dataclass(frozen=True)
class Run:
    results: list[np.ndarray]
    result_devices: list[int]
    expected: np.ndarray  # tf.add_n of the inputs
    mirrored: np.ndarray  # MirroredStrategy all-reduce of the inputs
    ring: Wire
    server: Wire


def run_it(impl: Answer) -> Run:
    use_logical_cpus(N_DEVICES)  # first: before anything touches TensorFlow's devices
    arrays = make_data()
    values = []
    for i, a in enumerate(arrays):
        with tf.device(DEVICES[i]):
            values.append(tf.constant(a))  # (L,) on device i
    ring, server = Wire(), Wire()
    results = impl.ring_allreduce(values, list(DEVICES), ring.send)
    parameter_server_allreduce(values, server.send)
    with tf.device(DEVICES[0]):
        expected = np.asarray(tf.add_n(values))
    return Run(
        [np.asarray(r) for r in results],
        [device_index(r) for r in results],
        expected,
        mirrored_allreduce(values),
        ring,
        server,
    )


def reference_comparisons(impl: Answer, run: Run | None = None) -> dict[str, Comparison]:
    """The ring's result on every device vs tf.add_n: the same 4 numbers summed in another
    order, so equal up to float32 rounding (<= ~2e-6 here), not bit for bit."""
    run = run if run is not None else run_it(impl)
    got = np.stack(run.results) if run.results else np.zeros((0,))
    return {SUM_CHECK: compare(got, np.stack([run.expected] * N_DEVICES), atol=ATOL)}


def check(impl: Answer) -> SolutionReport:
    report = SolutionReport(solution="distributed.ring_allreduce")
    run = run_it(impl)
    n, tensor_bytes = N_DEVICES, LENGTH * BYTES_PER_VALUE
    report.metric("devices", n)
    report.metric("tensor", f"{LENGTH} float32 = {tensor_bytes} bytes")
    report.metric("chunk sizes", ", ".join(map(str, chunk_sizes(LENGTH, n))))

    comparison = reference_comparisons(impl, run)[SUM_CHECK]
    report.metric("max |ring - tf.add_n|", comparison.max_abs_diff)
    report.metric(
        "max |MirroredStrategy all_reduce - tf.add_n|",
        float(np.max(np.abs(run.mirrored - run.expected))),
    )
    report.check_close(
        SUM_CHECK,
        comparison,
        f"the same {n} float32 values summed in another order: {n - 1} roundings of at most "
        f"6e-8 x a partial sum of magnitude <= ~10, so <= ~2e-6 < {ATOL:g}; skipping the "
        "all-gather leaves 3 of 4 chunks partial on every device (off by O(1), ~6e5x the "
        "tolerance); so does an off-by-one ring index; " + comparison.detail,
    )
    placed = [d == i for i, d in enumerate(run.result_devices)]
    report.check(
        PLACED_CHECK,
        float(np.mean(placed)) if len(placed) == n else 0.0,
        "==",
        1,
        "result i must live on devices[i], where the next step of training uses it "
        "(0 also when not N results come back)",
    )

    sends = run.ring.sends
    neighbour = [dst == (src + 1) % n for src, dst, _ in sends]
    sent = run.ring.sent_by(n)
    busiest, ps_busiest = max(sent), max(run.server.sent_by(n))
    report.metric("sends made (ring)", len(sends))
    report.metric("bytes sent per device (ring)", ", ".join(map(str, sent)))
    report.metric(
        "bytes sent per device (parameter server on device 0)",
        ", ".join(map(str, run.server.sent_by(n))),
    )
    report.check(
        NEIGHBOUR_CHECK,
        float(np.mean(neighbour)) if neighbour else 0.0,
        "==",
        1,
        "a ring talks only to device i+1 (one link per device, all links busy at once); "
        "sending the full tensor to everyone reaches 1 of the 3 others: 1/3",
    )
    report.check(
        TOTAL_CHECK,
        sum(sent) / (2 * (n - 1) * tensor_bytes),
        "==",
        1,
        "each device sends N-1 chunks in reduce-scatter and N-1 in all-gather, every chunk "
        "once per step: the chunks of all devices add up to exactly 2(N-1) tensors; no "
        "all-gather: 0.5; everyone sends the full tensor to everyone: N/2 = 2",
    )
    bound = 1 + n / LENGTH  # uneven chunks: the busiest sends at most 2(N-1) values more
    report.check(
        BUSIEST_CHECK,
        busiest / (2 * (n - 1) / n * tensor_bytes),
        "<=",
        bound,
        f"2(N-1) chunks of ~L/N values: 2(N-1)/N = {2 * (n - 1) / n:g} tensors per device; "
        f"chunks of 251 or 250 values put the busiest device up to N/L above (<= {bound:.4f}); "
        "everyone-sends-everything: 2",
    )
    report.check(
        VS_PS_CHECK,
        busiest / ps_busiest if ps_busiest else float("nan"),
        "<=",
        2 / n * bound,
        f"the parameter server sends the sum to N-1 workers ((N-1) tensors from one device, "
        f"growing with N); the ring's busiest device sends 2(N-1)/N: ratio 2/N = {2 / n:g} "
        "(+ chunk rounding); everyone-sends-everything: 1",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
