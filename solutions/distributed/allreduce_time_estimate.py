"""All-reduce time from latency and bandwidth (ring vs tree), and data-parallel efficiency.

The alpha-beta model: sending m bytes over one link costs alpha + m / B (alpha the
per-message latency, B the link bandwidth in one direction).

- Ring all-reduce (Patarasuk & Yuan 2009; Thakur et al. 2005) over N GPUs: a reduce-scatter
  then an all-gather, N - 1 steps each; in every step each GPU sends one chunk of M / N
  bytes to its neighbour. So T_ring = 2(N-1)*alpha + 2(N-1)/N * M/B: the bandwidth term
  hardly grows with N (it tends to 2M/B, the lower bound for any all-reduce), the latency
  term grows linearly.
- Tree all-reduce (binomial-tree reduce, then broadcast; Thakur et al. 2005): 2*log2(N)
  steps, each carrying the whole message: T_tree = 2*log2(N) * (alpha + M/B). Logarithmic
  latency, but log2(N) times the ring's bandwidth term. Below a crossover size the tree
  wins, above it the ring. NCCL's double binary tree pipelines chunks through two trees so
  that its bandwidth term approaches the ring's while keeping the log2(N) latency.
- nccl-tests report busBw = algBw * 2(n-1)/n for all-reduce (algBw = M / t), so that busBw
  of a bandwidth-bound ring equals the link bandwidth whatever n is.

The calculator is checked against a simulated ring (every GPU ends with the sum; steps and
bytes counted), the tree formula, the crossover, the nccl-tests relation and the scaling
efficiency of a 7B model's fp16 gradients over NVLink and 100/200/400 Gb/s InfiniBand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
RING_BYTES_CHECK = "ring bandwidth term vs simulated bytes per GPU, N = 2..64 (tolerance used)"
RING_LATENCY_CHECK = "ring latency term vs simulated steps x alpha, N = 2..64 (tolerance used)"
TREE_CHECK = "tree time vs 2 log2(N) (alpha + M/B), N = 2..64 (tolerance used)"
CROSSOVER_CHECK = "ring time = tree time at the crossover size (tolerance used)"
SIDES_CHECK = "tree faster at crossover / 10, ring faster at crossover x 10 (share of cases)"
BUSBW_CHECK = "nccl-tests busBw of a bandwidth-bound ring = link bandwidth (tolerance used)"
EFFICIENCY_CHECK = "7B data-parallel efficiency, 3 InfiniBand speeds x overlap (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "ring_allreduce_time",
    "tree_allreduce_time",
    "crossover_bytes",
    "bus_bandwidth",
    "scaling_efficiency",
)

# -----------------------------------------------------------------------------
# The answer: the alpha-beta calculator


def ring_allreduce_time(n: int, message_bytes: float, alpha: float, bandwidth: float) -> float:
    """Seconds for a ring all-reduce of ``message_bytes`` over ``n`` GPUs.

    ``alpha``: seconds of latency per step; ``bandwidth``: bytes per second of one link in
    one direction. Reduce-scatter and all-gather take n - 1 steps each, and in each step
    every GPU sends one chunk of message_bytes / n at the same time as the others.
    """
    steps = 2 * (n - 1)
    return steps * alpha + steps * (message_bytes / n) / bandwidth


def tree_allreduce_time(n: int, message_bytes: float, alpha: float, bandwidth: float) -> float:
    """Seconds for a binomial-tree reduce followed by a broadcast of ``message_bytes`` over
    ``n`` GPUs (no pipelining: each step moves the whole message)."""
    steps = 2 * math.log2(n)
    return steps * (alpha + message_bytes / bandwidth)


def crossover_bytes(n: int, alpha: float, bandwidth: float) -> float:
    """The message size in bytes at which ring and tree take equal time (tree faster below)."""
    # 2(n-1)a + 2(n-1)/n M/B = 2 log2(n) (a + M/B), solved for M
    lg = math.log2(n)
    return bandwidth * alpha * ((n - 1) - lg) / (lg - (n - 1) / n)


def bus_bandwidth(n: int, message_bytes: float, seconds: float) -> float:
    """nccl-tests' busBw (bytes/s) of an all-reduce that took ``seconds``: the algorithm
    bandwidth corrected so that it is comparable with the link speed across n."""
    # algBw = M / t, times 2(n-1)/n, the share of the message each GPU sends
    return message_bytes / seconds * 2 * (n - 1) / n


def scaling_efficiency(t_compute: float, t_comm: float, overlap: float) -> float:
    """Step-time efficiency against perfect scaling, in (0, 1].

    ``overlap``: the share of ``t_compute`` that communication can hide behind (gradient
    buckets all-reduced while the backward pass still runs: at most the backward's ~2/3);
    0 when the all-reduce starts after the backward pass.
    """
    exposed = max(t_comm - overlap * t_compute, 0.0)
    return t_compute / (t_compute + exposed)


# -----------------------------------------------------------------------------
# The harness: a simulated ring, published hardware figures, and the checks


@dataclass(frozen=True)
class Link:
    """A link as its vendor specifies it, in one direction."""

    name: str
    bandwidth: float  # bytes/s
    gpus: int  # GPUs in the ring over it


@dataclass(frozen=True)
class Scenarios:
    """A 7B model's fp16 gradients, one step's compute, and the links."""

    gradient_bytes: float
    t_compute: float  # seconds of forward + backward per step per GPU
    backward_share: float  # what overlap can hide behind
    alpha: float  # seconds per step of a collective (assumed, typical NCCL order)
    nvlink: Link
    infiniband: tuple[Link, ...]


class Answer(Protocol):
    def ring_allreduce_time(
        self, n: int, message_bytes: float, alpha: float, bandwidth: float
    ) -> float: ...

    def tree_allreduce_time(
        self, n: int, message_bytes: float, alpha: float, bandwidth: float
    ) -> float: ...

    def crossover_bytes(self, n: int, alpha: float, bandwidth: float) -> float: ...

    def bus_bandwidth(self, n: int, message_bytes: float, seconds: float) -> float: ...

    def scaling_efficiency(self, t_compute: float, t_comm: float, overlap: float) -> float: ...


def make_data(seed: int = SEED) -> Scenarios:
    """7B parameters in fp16 (14 GB of gradients); 8192 tokens per GPU per step at 6 FLOPs
    per parameter per token on an A100 (312 TFLOP/s bf16 dense, datasheet) at 52 % of peak
    (Narayanan et al. 2021); A100 NVLink 600 GB/s total = 300 GB/s per direction over 8
    GPUs; InfiniBand EDR/HDR/NDR 100/200/400 Gb/s per GPU over 64 GPUs. Published figures,
    so ``seed`` changes nothing."""
    flops = 6 * 7e9 * 8192
    return Scenarios(
        gradient_bytes=7e9 * 2,
        t_compute=flops / (312e12 * 0.52),
        backward_share=2 / 3,  # backward = 4 of the 6 FLOPs per parameter per token
        alpha=5e-6,
        nvlink=Link("NVLink (A100)", 300e9, 8),
        infiniband=(
            Link("InfiniBand 100 Gb/s", 100e9 / 8, 64),
            Link("InfiniBand 200 Gb/s", 200e9 / 8, 64),
            Link("InfiniBand 400 Gb/s", 400e9 / 8, 64),
        ),
    )


def simulate_ring(n: int, chunk: int) -> tuple[int, int]:
    """Run a ring all-reduce on n GPUs holding n chunks of ``chunk`` numbers each; return
    (steps, numbers sent per GPU), after asserting every GPU ends with the elementwise sum."""
    data = [
        [[float(g * 1000 + c * 10 + k) for k in range(chunk)] for c in range(n)] for g in range(n)
    ]
    want = [[sum(data[g][c][k] for g in range(n)) for k in range(chunk)] for c in range(n)]
    sent, steps = [0] * n, 0
    for s in range(n - 1):  # reduce-scatter: GPU g passes chunk (g - s) to g + 1, which adds
        msgs = [(g, (g - s) % n, list(data[g][(g - s) % n])) for g in range(n)]
        for g, c, values in msgs:
            dst = data[(g + 1) % n][c]
            data[(g + 1) % n][c] = [a + b for a, b in zip(dst, values, strict=True)]
            sent[g] += len(values)
        steps += 1
    for s in range(n - 1):  # all-gather: GPU g passes its finished chunk (g + 1 - s) on
        msgs = [(g, (g + 1 - s) % n, list(data[g][(g + 1 - s) % n])) for g in range(n)]
        for g, c, values in msgs:
            data[(g + 1) % n][c] = values
            sent[g] += len(values)
        steps += 1
    assert all(data[g] == want for g in range(n)), "the simulated ring is wrong"
    assert len(set(sent)) == 1, "every GPU sends the same amount"
    return steps, sent[0]


GPU_COUNTS = (2, 4, 8, 16, 64)


def check(impl: Answer) -> SolutionReport:
    """The calculator against a simulated ring, the tree formula, nccl-tests and a 7B run."""
    report = SolutionReport(solution="distributed.allreduce_time_estimate")
    data = make_data()
    _ring(report, impl)
    _tree_and_crossover(report, impl, data)
    _bus_bandwidth(report, impl, data)
    _efficiency(report, impl, data)
    return report


def _ring(report: SolutionReport, impl: Answer) -> None:
    """The ring's two terms against a ring actually run (in Python) on N = 2..64 GPUs."""
    chunk, b, alpha = 3, 1e9, 1e-5
    sims = {n: simulate_ring(n, chunk) for n in GPU_COUNTS}
    factors = [impl.ring_allreduce_time(n, n * chunk, 0.0, b) * b / (n * chunk) for n in GPU_COUNTS]
    simulated = [sims[n][1] / (n * chunk) for n in GPU_COUNTS]
    report.metric("ring bytes sent per GPU / M, N = 2..64", ", ".join(f"{f:.4f}" for f in factors))
    report.check_close(
        RING_BYTES_CHECK,
        compare(factors, simulated, atol=0.0, rtol=EXACT),
        "with alpha = 0, T * B / M is the share of the message each GPU sends; the simulated "
        "ring sends 2(N-1)/N of it (1.0 at N = 2, 1.97 at 64); exact arithmetic, 1e-9; the "
        "factor 2 answer is 2x off at N = 2, the N - 1 answer 32x at 64",
    )
    latency = [impl.ring_allreduce_time(n, 0.0, alpha, b) for n in GPU_COUNTS]
    report.metric(
        "ring latency, empty message, N = 2..64", ", ".join(f"{t * 1e6:.0f}" for t in latency), "us"
    )
    report.check_close(
        RING_LATENCY_CHECK,
        compare(latency, [sims[n][0] * alpha for n in GPU_COUNTS], atol=0.0, rtol=EXACT),
        "an empty message costs only the steps: the simulation takes 2(N-1) of them (126 at "
        "N = 64), alpha each; exact arithmetic, 1e-9; a time without the latency term is 0",
    )


def _tree_and_crossover(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    """Tree time, and the size where ring and tree swap places, for every link."""
    a, m = data.alpha, 1e6
    got = [impl.tree_allreduce_time(n, m, a, 25e9) for n in GPU_COUNTS]
    by_hand = [2 * math.log2(n) * (a + m / 25e9) for n in GPU_COUNTS]
    report.check_close(
        TREE_CHECK,
        compare(got, by_hand, atol=0.0, rtol=EXACT),
        "binomial reduce then broadcast (Thakur et al. 2005): 2 log2 N steps of the whole "
        "1 MB message; exact arithmetic, 1e-9",
    )
    links = [data.nvlink, *data.infiniband]
    cross = [impl.crossover_bytes(link.gpus, a, link.bandwidth) for link in links]
    report.metric(
        "crossover size: NVLink x8, IB 100/200/400 Gb/s x64",
        ", ".join(f"{c / 1e6:.2f}" for c in cross),
        "MB",
    )
    ring = [
        impl.ring_allreduce_time(k.gpus, c, a, k.bandwidth)
        for k, c in zip(links, cross, strict=True)
    ]
    tree = [
        impl.tree_allreduce_time(k.gpus, c, a, k.bandwidth)
        for k, c in zip(links, cross, strict=True)
    ]
    report.check_close(
        CROSSOVER_CHECK,
        compare(ring, tree, atol=0.0, rtol=1e-6),
        "at M* both formulas give the same time (about 1e-3 s, float64 leaves 1e-15 "
        "relative, 1e-6 allowed); a crossover that drops the latency terms lands at 0 bytes",
    )
    sides = []
    for k, c in zip(links, cross, strict=True):
        small, large = c / 10, c * 10
        sides.append(
            impl.tree_allreduce_time(k.gpus, small, a, k.bandwidth)
            < impl.ring_allreduce_time(k.gpus, small, a, k.bandwidth)
        )
        sides.append(
            impl.ring_allreduce_time(k.gpus, large, a, k.bandwidth)
            < impl.tree_allreduce_time(k.gpus, large, a, k.bandwidth)
        )
    report.check(
        SIDES_CHECK,
        sum(sides) / len(sides),
        "==",
        1.0,
        "latency-bound small messages go to the tree (log2 N steps instead of 2(N-1)), "
        "bandwidth-bound large ones to the ring; a ring without its latency term wins "
        "everywhere: 0.5",
    )


def _bus_bandwidth(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    """nccl-tests' busBw of the calculator's own ring recovers the link bandwidth."""
    b, m = 25e9, 1e9
    got = [impl.bus_bandwidth(n, m, impl.ring_allreduce_time(n, m, 0.0, b)) for n in GPU_COUNTS]
    report.metric(
        "busBw of a 1 GB ring all-reduce on a 25 GB/s link, N = 2..64",
        ", ".join(f"{g / 1e9:.2f}" for g in got),
        "GB/s",
    )
    report.check_close(
        BUSBW_CHECK,
        compare(got, [b] * len(GPU_COUNTS), atol=0.0, rtol=EXACT),
        "nccl-tests PERFORMANCE.md: busBw = algBw * 2(n-1)/n, chosen so that a ring limited "
        "by its links reports the link speed for every n; exact arithmetic, 1e-9; algBw "
        "itself is 0.51x at N = 64, and a ring with the factor 2 0.5x at N = 2",
    )


def _efficiency(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    """7B fp16 gradients: NVLink in a node, then 64 GPUs over 100/200/400 Gb/s."""
    g, a, tc = data.gradient_bytes, data.alpha, data.t_compute
    nv = data.nvlink
    t_nv = impl.ring_allreduce_time(nv.gpus, g, a, nv.bandwidth)
    report.metric("compute per step (8192 tokens, 7B, A100 at 52 %)", tc, "s")
    report.metric("ring all-reduce of 14 GB, 8 GPUs over NVLink", t_nv * 1e3, "ms")
    report.metric("NVLink efficiency without overlap", impl.scaling_efficiency(tc, t_nv, 0.0))
    got, by_hand = [], []
    for link in data.infiniband:
        t = impl.ring_allreduce_time(link.gpus, g, a, link.bandwidth)
        t_hand = 2 * (link.gpus - 1) * a + 2 * (link.gpus - 1) / link.gpus * g / link.bandwidth
        for overlap in (0.0, data.backward_share):
            got.append(impl.scaling_efficiency(tc, t, overlap))
            by_hand.append(tc / (tc + max(t_hand - overlap * tc, 0.0)))
        report.metric(f"ring all-reduce of 14 GB, 64 GPUs, {link.name}", t, "s")
        report.metric(
            f"efficiency without / with overlap, {link.name}", f"{got[-2]:.2f}, {got[-1]:.2f}"
        )
    report.check_close(
        EFFICIENCY_CHECK,
        compare(got, by_hand, atol=0.0, rtol=EXACT),
        "t_compute / (t_compute + exposed), exposed = ring time minus the backward pass "
        "(2/3 of compute) it hides behind, redone by hand; exact arithmetic, 1e-9; an "
        "efficiency that ignores overlap is 0.49-0.79 where the hand value is 0.73-1.0",
    )


if __name__ == "__main__":
    print_check_of(__name__)
