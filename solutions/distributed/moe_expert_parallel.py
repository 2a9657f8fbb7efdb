"""Mixture of experts with expert parallelism: top-2 routing with a capacity, the
load-balancing loss, and an all-to-all dispatch over 2 devices equal to the dense
computation of the same routing.

A MoE layer (Shazeer et al. 2017) replaces one FFN by E expert FFNs and a router. Each token
goes to its top-2 experts (GShard, Lepikhin et al. 2020), weighted by the router's two
probabilities renormalised to sum to 1. An expert takes at most C = ceil(CF * k * N / E)
assignments per batch (capacity factor CF, k = 2 choices, N tokens): static shapes, and no
expert is flooded. Assignments beyond that are dropped (the token keeps only its residual);
first choices are served before second choices. The auxiliary load-balancing loss
(Switch Transformer, Fedus et al. 2021) ``alpha * E * sum_i f_i * P_i``, f_i the share of
tokens whose first choice is expert i and P_i the mean router probability of expert i, is 1
for perfectly uniform routing and grows as routing collapses onto few experts.

Expert parallelism: with E experts over R devices, device d holds experts d*E/R ... and the
tokens of its own data shard. One all-to-all sends every kept token to the device of its
expert, the experts run there, and a second all-to-all brings the outputs back, where the
gates combine them. The check hands the answer an all-to-all that counts its calls, gives it
experts that record where they ran and on how many rows, and compares the output with the
dense computation of the same routing (every expert on every token, masked by the kept
assignments and their gates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit.compare import Comparison, compare
from aiprep.kit.devices import use_logical_cpus
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
DEVICES = ["/cpu:0", "/cpu:1"]
TOKENS, D_MODEL, D_HIDDEN, EXPERTS, TOP_K = 64, 8, 16, 4, 2
# A router bias toward the first experts: routing is skewed, as it is early in training.
ROUTER_SKEW = np.array([1.2, 0.4, -0.4, -1.2], np.float32)
CAPACITY_FACTORS = (1.0, 2.0)
# Expert-parallel vs dense: the same float32 ops on the same rows; see reference_comparisons.
ATOL = 1e-5
RTOL = 1e-4

# buffers[src][dst] -> received[dst][src], each on the receiving device.
AllToAll = Callable[[Sequence[Sequence[tf.Tensor]]], list[list[tf.Tensor]]]


class Routing(NamedTuple):
    """Top-k routing of N tokens: ``experts`` (N, k) int expert ids, best first; ``gates``
    (N, k) float32 weights; ``kept`` (N, k) bool, False where the expert was full."""

    experts: np.ndarray
    gates: np.ndarray
    kept: np.ndarray


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("route_top2", "load_balancing_loss", "expert_parallel_moe")

# -----------------------------------------------------------------------------
# The answer: routing with a capacity, the auxiliary loss, the all-to-all dispatch


def route_top2(probs: np.ndarray, capacity: int) -> Routing:
    """Top-2 routing of ``probs`` (N, E) router probabilities, at most ``capacity``
    assignments per expert. Gates are the two probabilities renormalised to sum to 1;
    first choices are served before second choices, each in token order (GShard)."""
    n, e = probs.shape
    experts = np.argsort(-probs, axis=1, kind="stable")[:, :2]  # (N, 2) best first
    top = np.take_along_axis(probs, experts, axis=1)  # (N, 2)
    # Renormalise over the two chosen experts: the token's output is a convex combination.
    gates = (top / top.sum(axis=1, keepdims=True)).astype(np.float32)  # (N, 2)
    kept = np.zeros((n, 2), bool)
    load = np.zeros(e, int)  # assignments each expert has taken so far
    for choice in range(2):  # all first choices, then all second choices
        for t in range(n):
            expert = experts[t, choice]
            if load[expert] < capacity:  # otherwise dropped: the token keeps its residual
                load[expert] += 1
                kept[t, choice] = True
    return Routing(experts, gates, kept)


def load_balancing_loss(probs: tf.Tensor, first_choice: tf.Tensor) -> tf.Tensor:
    """Switch Transformer's auxiliary loss (alpha = 1): ``E * sum_i f_i * P_i``.

    ``probs`` (N, E) router probabilities, ``first_choice`` (N,) each token's top expert.
    f_i (share of tokens sent first to expert i) is not differentiable; P_i (mean router
    probability of expert i) is, and pushes the router toward uniform. 1 when both are 1/E.
    """
    e = probs.shape[-1]
    f = tf.reduce_mean(tf.one_hot(first_choice, e, dtype=probs.dtype), axis=0)  # (E,)
    p = tf.reduce_mean(probs, axis=0)  # (E,)
    return e * tf.reduce_sum(f * p)


def expert_parallel_moe(
    x_shards: Sequence[np.ndarray],
    routing_shards: Sequence[Routing],
    experts: Sequence[keras.Model],
    devices: Sequence[str],
    all_to_all: AllToAll,
) -> list[tf.Tensor]:
    """The MoE layer with expert parallelism over ``devices`` (R of them).

    ``x_shards[d]``: device d's tokens (N/R, D); ``routing_shards[d]``: their routing;
    ``experts``: E models (rows, D) -> (rows, D), expert e lives on device e // (E/R).
    Returns per device the (N/R, D) outputs ``sum_k kept * gate * expert(x)``.
    """
    r = len(devices)
    per_device = len(experts) // r  # experts held by each device
    # 1. On each source device, gather the kept (token, choice) pairs bound for each
    #    destination device, ordered by (expert, token, choice).
    sends, plans = [], []
    for d, (x, routing) in enumerate(zip(x_shards, routing_shards, strict=True)):
        token, choice = np.nonzero(routing.kept)  # kept pairs, (P,) each
        expert = routing.experts[token, choice]
        order = np.lexsort((choice, token, expert))  # by expert, then token
        token, choice, expert = token[order], choice[order], expert[order]
        dest = expert // per_device
        with tf.device(devices[d]):
            sends.append([tf.gather(x, token[dest == j]) for j in range(r)])  # (P_j, D)
        plans.append((token, choice, expert, dest))
    # 2. All-to-all: device j receives, from every source, the tokens for its experts.
    received = all_to_all(sends)  # received[j][src]: (P_src->j, D)
    # 3. Each device runs its experts on what it received, in the same (expert, token) order.
    replies = []
    for j in range(r):
        back = []
        with tf.device(devices[j]):
            for src in range(r):
                expert = plans[src][2][plans[src][3] == j]  # the experts of those rows
                rows = received[j][src]
                out = tf.zeros_like(rows)
                for e in range(j * per_device, (j + 1) * per_device):
                    mine = np.nonzero(expert == e)[0]
                    if mine.size:  # expert e on its rows only
                        y = experts[e](tf.gather(rows, mine))
                        out = tf.tensor_scatter_nd_update(out, mine[:, None], y)
                back.append(out)  # to src, in the order src sent them
        replies.append(back)
    # 4. All-to-all back: each source gets its rows' outputs, and combines with the gates.
    returned = all_to_all(replies)  # returned[src][j]
    outputs = []
    for d, (x, routing) in enumerate(zip(x_shards, routing_shards, strict=True)):
        token, choice, _, dest = plans[d]
        with tf.device(devices[d]):
            y = tf.zeros_like(tf.convert_to_tensor(x))  # (N/R, D)
            for j in range(r):
                sel = dest == j
                gate = routing.gates[token[sel], choice[sel]][:, None]  # (P_j, 1)
                # The reply from j lists the rows in the order this device sent them.
                y = tf.tensor_scatter_nd_add(y, token[sel][:, None], gate * returned[d][j])
            outputs.append(y)
    return outputs


# -----------------------------------------------------------------------------
# Data, experts, the instrumented all-to-all, and measurement


@dataclass(frozen=True)
class Data:
    x: np.ndarray  # (N, D) tokens
    router: np.ndarray  # (D, E) router weights
    experts: list[list[np.ndarray]]  # per expert: w1 (D, H), b1 (H,), w2 (H, D), b2 (D,)


def make_data(seed: int = SEED) -> Data:
    """Tokens N(0, 1), a random router and E random expert FFNs, float32."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    x = normal(TOKENS, D_MODEL)
    router = normal(D_MODEL, EXPERTS, scale=0.5)
    experts = [
        [
            normal(D_MODEL, D_HIDDEN, scale=D_MODEL**-0.5),
            normal(D_HIDDEN, scale=0.1),
            normal(D_HIDDEN, D_MODEL, scale=D_HIDDEN**-0.5),
            normal(D_MODEL, scale=0.1),
        ]
        for _ in range(EXPERTS)
    ]
    return Data(x, router, experts)


def router_probs(data: Data) -> np.ndarray:
    """(N, E) softmax of x @ router + ROUTER_SKEW."""
    logits = data.x @ data.router + ROUTER_SKEW
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs: np.ndarray = (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
    return probs


def capacity(factor: float, tokens: int = TOKENS) -> int:
    """Assignments an expert may take: ceil(CF * k * N / E) (GShard)."""
    return math.ceil(factor * TOP_K * tokens / EXPERTS)


def build_expert(weights: list[np.ndarray], calls: list[tuple[str, int]] | None) -> keras.Model:
    """An expert FFN (rows, D) -> (rows, D); with ``calls``, a probe records each call's
    (device, rows)."""
    layers: list[keras.layers.Layer] = [keras.layers.Input((D_MODEL,))]
    if calls is not None:

        def record(rows: tf.Tensor) -> tf.Tensor:
            out = tf.identity(rows)  # placed by the caller's tf.device scope
            if rows.shape[0] is not None:  # a real call, not Keras building the model
                calls.append((out.device, int(rows.shape[0])))
            return out

        layers.append(keras.layers.Lambda(record))
    layers += [keras.layers.Dense(D_HIDDEN, activation="relu"), keras.layers.Dense(D_MODEL)]
    model = keras.Sequential(layers)
    model.set_weights(weights)
    return model


@dataclass
class CountingAllToAll:
    """The all-to-all the check provides: ``buffers[src][dst]`` arrives as
    ``received[dst][src]`` on device dst; counts its calls."""

    devices: list[str]
    calls: int = 0

    def __call__(self, buffers: Sequence[Sequence[tf.Tensor]]) -> list[list[tf.Tensor]]:
        r = len(self.devices)
        if len(buffers) != r or any(len(b) != r for b in buffers):
            raise ValueError(f"all_to_all takes {r} x {r} buffers [src][dst]")
        self.calls += 1
        received = []
        for dst in range(r):
            with tf.device(self.devices[dst]):
                received.append([tf.identity(buffers[src][dst]) for src in range(r)])
        return received


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def route_top2(self, probs: np.ndarray, capacity: int) -> Routing: ...

    def load_balancing_loss(self, probs: tf.Tensor, first_choice: tf.Tensor) -> tf.Tensor: ...

    def expert_parallel_moe(
        self,
        x_shards: Sequence[np.ndarray],
        routing_shards: Sequence[Routing],
        experts: Sequence[keras.Model],
        devices: Sequence[str],
        all_to_all: AllToAll,
    ) -> list[tf.Tensor]: ...


@dataclass
class MoeRun:
    probs: np.ndarray  # (N, E)
    routings: dict[float, Routing]  # by capacity factor
    output: np.ndarray  # (N, D) expert-parallel, at CF 1.0
    dense: np.ndarray  # (N, D) dense computation of the same routing
    all_to_alls: int
    expert_calls: list[list[tuple[str, int]]] = field(default_factory=list)
    aux_uniform: float = float("nan")
    aux_skewed: float = float("nan")


def _routing(found: Routing) -> Routing:
    return Routing(np.asarray(found.experts), np.asarray(found.gates), np.asarray(found.kept, bool))


def shard(routing: Routing, d: int, r: int) -> Routing:
    """Device d's tokens' rows of ``routing``."""
    rows = np.array_split(np.arange(len(routing.experts)), r)[d]
    return Routing(routing.experts[rows], routing.gates[rows], routing.kept[rows])


def run_moe(impl: Answer) -> MoeRun:
    """Route at each capacity factor, run the layer expert-parallel at CF 1.0, compute the
    dense reference and the auxiliary loss."""
    use_logical_cpus(len(DEVICES))  # first: before anything touches TensorFlow's devices
    data = make_data()
    probs = router_probs(data)
    routings = {cf: _routing(impl.route_top2(probs, capacity(cf))) for cf in CAPACITY_FACTORS}
    routing = routings[CAPACITY_FACTORS[0]]
    r = len(DEVICES)
    calls: list[list[tuple[str, int]]] = [[] for _ in range(EXPERTS)]
    experts = [build_expert(w, c) for w, c in zip(data.experts, calls, strict=True)]
    all_to_all = CountingAllToAll(DEVICES)
    for c in calls:
        c.clear()
    outputs = impl.expert_parallel_moe(
        np.array_split(data.x, r),
        [shard(routing, d, r) for d in range(r)],
        experts,
        DEVICES,
        all_to_all,
    )
    # The dense reference: every expert on every token, masked by the SAME routing.
    dense = np.zeros_like(data.x)
    for e, weights in enumerate(data.experts):
        out = build_expert(weights, None)(data.x).numpy()  # (N, D)
        weight = np.where(routing.kept & (routing.experts == e), routing.gates, 0).sum(axis=1)
        dense += weight[:, None] * out
    uniform_probs = np.full((TOKENS, EXPERTS), 1 / EXPERTS, np.float32)
    balanced = np.arange(TOKENS) % EXPERTS  # every expert first choice of N/E tokens
    return MoeRun(
        probs=probs,
        routings=routings,
        output=np.concatenate([np.asarray(y) for y in outputs]),
        dense=dense,
        all_to_alls=all_to_all.calls,
        expert_calls=calls,
        aux_uniform=float(impl.load_balancing_loss(tf.constant(uniform_probs), balanced)),
        aux_skewed=float(impl.load_balancing_loss(tf.constant(probs), routing.experts[:, 0])),
    )


ROUTE_CHECK = "top-2 experts vs argsort of the router probabilities"
GATES_CHECK = "gates vs top-2 probabilities renormalised to sum 1"
FILL_CHECK = "kept assignments per expert = min(demand, capacity), CF 1 and 2"
AUX_UNIFORM_CHECK = "aux loss for perfectly uniform routing"
AUX_CHECK = "aux loss vs E * sum f_i * P_i (numpy)"
EP_CHECK = "expert-parallel output vs dense computation of the same routing"
DEVICE_CHECK = "experts ran on their own device, on the tokens routed to them"
A2A_CHECK = "all-to-alls per MoE layer forward"


def reference_comparisons(impl: Answer, run: MoeRun | None = None) -> dict[str, Comparison]:
    """Expert-parallel vs dense: the same expert on the same rows, gathered differently,
    then at most 2 gated outputs added per token, so float32 rounding of a few eps
    (1.2e-7) times the outputs (~1): RTOL 1e-4 and ATOL 1e-5 are ~100x that. A token
    combined with another token's expert output (all-to-all order lost) is off by order 1.
    The gates against numpy's renormalisation: one division, same bound."""
    run = run if run is not None else run_moe(impl)
    routing = run.routings[CAPACITY_FACTORS[0]]
    top = np.take_along_axis(run.probs, np.argsort(-run.probs, axis=1)[:, :2], axis=1)
    return {
        EP_CHECK: compare(run.output, run.dense, atol=ATOL, rtol=RTOL),
        GATES_CHECK: compare(routing.gates, top / top.sum(axis=1, keepdims=True), ATOL, RTOL),
        AUX_CHECK: compare(run.aux_skewed, _aux_numpy(run), atol=ATOL, rtol=RTOL),
    }


def _aux_numpy(run: MoeRun) -> float:
    first = np.argmax(run.probs, axis=1)  # (N,) each token's top expert
    f = np.bincount(first, minlength=EXPERTS) / TOKENS  # (E,)
    p = run.probs.mean(axis=0)  # (E,)
    return float(EXPERTS * np.sum(f * p))


def check(impl: Answer) -> SolutionReport:
    """Route with capacities, check the aux loss, run the layer expert-parallel on 2 devices."""
    report = SolutionReport(solution="distributed.moe_expert_parallel")
    report.metric("tokens, experts, devices", f"{TOKENS}, {EXPERTS}, {len(DEVICES)}")
    with report.timed("routing and expert-parallel layer"):
        run = run_moe(impl)
    comparisons = reference_comparisons(impl, run)
    routing = run.routings[CAPACITY_FACTORS[0]]

    want = np.argsort(-run.probs, axis=1, kind="stable")[:, :2]
    report.check(
        ROUTE_CHECK,
        float(np.mean(routing.experts == want)),
        "==",
        1,
        "share of (token, choice) whose expert is the token's best / second-best by "
        "router probability (probabilities of distinct experts differ: no ties)",
    )
    report.check_close(
        GATES_CHECK,
        comparisons[GATES_CHECK],
        f"g_k = p_k / (p_1 + p_2), |diff| <= {ATOL:g} + {RTOL:g}*|g|; raw top-2 "
        "probabilities sum to less than 1 (here 0.68 to 0.99, mean 0.89): the outputs shrink. "
        + comparisons[GATES_CHECK].detail,
    )
    demand = np.bincount(want.ravel(), minlength=EXPERTS)  # assignments per expert
    report.metric("assignments per expert (top-2 demand)", ", ".join(map(str, demand)))
    fills = []
    for cf, found in run.routings.items():
        cap = capacity(cf)
        kept = np.bincount(found.experts[found.kept], minlength=EXPERTS)
        fills += list(kept == np.minimum(demand, cap))
        dropped = 1 - found.kept.mean()
        closed = np.maximum(demand - cap, 0).sum() / (TOKENS * TOP_K)
        report.metric(
            f"CF {cf:g}: capacity, kept per expert, dropped share (closed form)",
            f"{cap}, {', '.join(map(str, kept))}, {dropped:.4f} ({closed:.4f})",
        )
    report.check(
        FILL_CHECK,
        float(np.mean(fills)),
        "==",
        1,
        "share of (capacity factor, expert) where the expert keeps exactly "
        "min(assignments routed to it, capacity ceil(CF*k*N/E)): so the dropped share is "
        "sum max(0, demand - C) / (N k); capacity ignored keeps the full demand of the "
        "busiest expert (over capacity); dropping more than needed keeps too few",
    )
    report.metric(
        "aux loss: uniform, skewed routing", f"{run.aux_uniform:.4f}, {run.aux_skewed:.4f}"
    )
    report.check(
        AUX_UNIFORM_CHECK,
        abs(run.aux_uniform - 1.0),
        "<=",
        1e-5,
        "|loss - 1| with every P_i = 1/E and every f_i = 1/E: E * E * (1/E)^2 = 1 (Switch "
        "Transformer); float32 rounding of a sum of 4 products is ~1e-7; without the "
        "factor E it is 1/E = 0.25",
    )
    report.check_close(
        AUX_CHECK,
        comparisons[AUX_CHECK],
        "on the skewed routing, against the formula computed in numpy from the router "
        "probabilities; f counted over both choices instead of the first: 1.38, not 1.57. "
        + comparisons[AUX_CHECK].detail,
    )
    report.metric("max |y_ep - y_dense|", comparisons[EP_CHECK].max_abs_diff)
    report.check_close(
        EP_CHECK,
        comparisons[EP_CHECK],
        f"|diff| <= {ATOL:g} + {RTOL:g}*|y| (the same expert on the same rows, ~100x the "
        "rounding); outputs returned to the wrong tokens are off by order 1. "
        + comparisons[EP_CHECK].detail,
    )
    per_device = EXPERTS // len(DEVICES)
    kept = np.bincount(routing.experts[routing.kept], minlength=EXPERTS)
    right = [
        bool(calls)
        and all(dev.endswith(f"CPU:{e // per_device}") for dev, _ in calls)
        and sum(rows for _, rows in calls) == kept[e]
        for e, calls in enumerate(run.expert_calls)
    ]
    report.metric(
        "rows each expert ran on", ", ".join(str(sum(r for _, r in c)) for c in run.expert_calls)
    )
    report.check(
        DEVICE_CHECK,
        float(np.mean(right)),
        "==",
        1,
        "share of experts whose every call (a probe at the expert's input) ran on device "
        "e // (E/R) and that ran on exactly the assignments kept for it: all experts on one "
        "device, or every expert on every token: < 1",
    )
    report.metric("all-to-alls", run.all_to_alls)
    report.check(
        A2A_CHECK,
        run.all_to_alls,
        "==",
        2,
        "one to dispatch the tokens to their experts' devices, one to return the outputs "
        "(GShard); no expert parallelism: 0",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
