"""Pipeline parallelism: micro-batches through 2 stages give the full-batch gradient, and a
schedule simulator reproduces the bubble and the activation memory of GPipe, 1F1B and
interleaved 1F1B.

A model split by layers into p stages, one per device, idles while the pipeline fills and
drains. Splitting the batch into m micro-batches shrinks that idle time (the bubble):

- GPipe (Huang et al. 2019): all m forwards, then all m backwards. With t_f and t_b the time
  of one micro-batch's forward and backward on one stage, a step takes
  (m + p - 1)(t_f + t_b), of which each device computes m(t_f + t_b): the bubble is
  (p - 1)/(m + p - 1) of the step's time, or (p - 1)/m relative to the ideal time
  (Narayanan et al. 2021 use the second). Every stage holds the activations of all m
  micro-batches until their backward.
- 1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s runs p - s - 1 warm-up forwards,
  then alternates one forward and one backward. The bubble is the SAME as GPipe's; what
  changes is memory: at most p micro-batches in flight on the first stage instead of m.
- Interleaved 1F1B (Megatron-LM, Narayanan et al. 2021): each device holds v model chunks
  (virtual stages d, d + p, ...), each 1/v of the work; the fill and drain are v times
  shorter: bubble (p - 1)/(v m) relative to the ideal, for v times more point-to-point
  messages.

The answer runs the 1F1B order for real on two logical CPU devices (activations sent from
/cpu:0 to /cpu:1, their gradients back), accumulating the micro-batch gradients; the check
compares them with one full-batch gradient of the unsplit model. The answer's simulator
times the schedules; the check verifies every timeline (dependencies, one op at a time per
device, every forward and backward exactly once) and measures the bubble and the peak
in-flight micro-batches itself, against the closed forms, for several (p, m).
"""

from __future__ import annotations

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
DEVICES = ["/cpu:0", "/cpu:1"]  # stage 0 and stage 1
BATCH, FEATURES, HIDDEN, CLASSES = 64, 16, 32, 10
MICRO_BATCHES = 4  # of 16 examples each
T_FORWARD, T_BACKWARD = 1.0, 2.0  # a backward costs about two forwards (two matmuls per one)
# (p, m) for the simulator; m a multiple of p, as the interleaved schedule requires.
CASES = [(2, 4), (4, 4), (4, 8), (4, 16), (8, 8), (8, 32)]
CHUNKS = 2  # v: model chunks per device in the interleaved schedule
# Micro-batch vs full-batch gradients: see reference_comparisons.
ATOL = 1e-6
RTOL = 1e-4


class Op(NamedTuple):
    """One unit of pipeline work: ``kind`` "F" or "B" of ``micro_batch`` on model chunk
    (virtual stage) ``chunk``; with v chunks per device, device d holds chunks d, d + p, ..."""

    kind: str
    chunk: int
    micro_batch: int


class Slot(NamedTuple):
    """An op placed in time on a device."""

    device: int
    op: Op
    start: float
    end: float


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("pipeline_schedule", "simulate", "pipeline_gradients")

# -----------------------------------------------------------------------------
# The answer: the schedules, a simulator, and a real 2-stage pipelined step


def pipeline_schedule(kind: str, p: int, m: int, v: int = 1) -> list[list[Op]]:
    """The order in which each of the ``p`` devices runs its ops for ``m`` micro-batches.

    ``kind``: "gpipe", "1f1b" or "interleaved" (``v`` chunks per device, ``m % p == 0``).
    Returns one list of ``Op`` per device; ``chunk`` is the virtual stage, 0 ... p*v - 1.
    """
    orders: list[list[Op]] = []
    for d in range(p):
        if kind == "gpipe":
            # All forwards, then all backwards: every activation is kept until the flush.
            orders.append([Op("F", d, i) for i in range(m)] + [Op("B", d, i) for i in range(m)])
        elif kind == "1f1b":
            # Enough forwards to fill the pipeline below this stage, then one F, one B, ...:
            # a micro-batch's activations are freed as soon as its backward has run.
            warmup = min(p - d - 1, m)
            order = [Op("F", d, i) for i in range(warmup)]
            for j in range(m - warmup):
                order += [Op("F", d, warmup + j), Op("B", d, j)]
            order += [Op("B", d, i) for i in range(m - warmup, m)]
            orders.append(order)
        elif kind == "interleaved":
            assert m % p == 0, "the interleaved schedule runs micro-batches in groups of p"
            total = m * v  # (chunk, micro-batch) pairs on this device

            def op(k: int, forward: bool, d: int = d) -> Op:
                # Megatron's order: p micro-batches through chunk 0, then through chunk 1, ...
                group, within = divmod(k % (p * v), p)
                local_chunk = group if forward else v - 1 - group
                micro_batch = (k // (p * v)) * p + within
                return Op("F" if forward else "B", local_chunk * p + d, micro_batch)

            warmup = min((p - d - 1) * 2 + (v - 1) * p, total)
            order = [op(k, True) for k in range(warmup)]
            for j in range(total - warmup):
                order += [op(warmup + j, True), op(j, False)]
            order += [op(k, False) for k in range(total - warmup, total)]
            orders.append(order)
        else:
            raise ValueError(f"unknown schedule {kind!r}")
    return orders


def simulate(orders: Sequence[Sequence[Op]], t_forward: float, t_backward: float) -> list[Slot]:
    """Time the per-device ``orders``: each device runs its ops in order, one at a time, each
    as soon as the device is free and its inputs exist. With C chunks in all, a chunk's
    forward takes ``t_forward * p / C`` and its backward ``t_backward * p / C``.

    F(c, i) needs F(c - 1, i) (the activation from the previous chunk); B(c, i) needs
    F(c, i) (its own stashed activation) and B(c + 1, i) (the gradient from the next chunk).
    Returns every op's ``Slot``; raises if the orders deadlock.
    """
    p = len(orders)
    chunks = 1 + max(op.chunk for order in orders for op in order)
    scale = p / chunks  # 1 / v: a chunk is 1/v of a device's layers
    end: dict[Op, float] = {}
    free = [0.0] * p  # when each device is next idle
    done = [0] * p  # ops done per device
    slots: list[Slot] = []
    while any(done[d] < len(orders[d]) for d in range(p)):
        progressed = False
        for d in range(p):
            while done[d] < len(orders[d]):
                op = orders[d][done[d]]
                if op.kind == "F":
                    deps = [Op("F", op.chunk - 1, op.micro_batch)] if op.chunk > 0 else []
                    duration = t_forward * scale
                else:
                    deps = [Op("F", op.chunk, op.micro_batch)]
                    if op.chunk < chunks - 1:
                        deps.append(Op("B", op.chunk + 1, op.micro_batch))
                    duration = t_backward * scale
                if any(dep not in end for dep in deps):
                    break  # wait for another device
                start = max([free[d], *(end[dep] for dep in deps)])
                end[op] = free[d] = start + duration
                slots.append(Slot(d, op, start, start + duration))
                done[d] += 1
                progressed = True
        if not progressed:
            raise RuntimeError("the schedule deadlocks")
    return slots


def pipeline_gradients(
    stages: Sequence[keras.Model],
    devices: Sequence[str],
    x: np.ndarray,
    y: np.ndarray,
    micro_batches: int,
) -> tuple[float, list[list[tf.Tensor]]]:
    """One pipelined step of ``stages`` (stage s on ``devices[s]``) on the batch ``x`` (B, F),
    ``y`` (B,) int labels, split into ``micro_batches`` equal micro-batches, run in the 1F1B
    order. The last stage's output is logits; the loss is the mean cross-entropy over the
    whole batch. Returns (loss, per stage the gradients of its trainable variables),
    equal to one full-batch step's.
    """
    p, m = len(stages), micro_batches
    x_mb = np.split(x, m)  # m x (B/m, F)
    y_mb = np.split(y, m)
    # The global order of the ops: the 1F1B timeline, by start time (a real pipeline runs
    # them concurrently on the p devices; here one process runs them in a valid order).
    slots = sorted(simulate(pipeline_schedule("1f1b", p, m), 1.0, 2.0), key=lambda s: s.start)
    received: list[dict[int, tf.Tensor]] = [{} for _ in range(p)]  # activations sent to s
    grad_received: list[dict[int, tf.Tensor]] = [{} for _ in range(p)]  # their gradients
    stash: list[dict[int, tuple[tf.GradientTape, tf.Tensor, tf.Tensor]]] = [{} for _ in range(p)]
    grads: list[list[tf.Tensor]] = [
        [tf.zeros_like(w) for w in stage.trainable_variables] for stage in stages
    ]
    losses = []
    for slot in slots:
        s, i = slot.device, slot.op.micro_batch
        stage = stages[s]
        with tf.device(devices[s]):
            if slot.op.kind == "F":
                # The activation arrives from the previous device (a send/recv on GPUs).
                inputs = tf.identity(x_mb[i] if s == 0 else received[s].pop(i))
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    out = stage(inputs, training=True)  # (B/m, HIDDEN) or (B/m, CLASSES)
                    if s == p - 1:
                        ce = keras.losses.sparse_categorical_crossentropy(
                            y_mb[i], out, from_logits=True
                        )  # (B/m,)
                        # mean over the micro-batch / m = this micro-batch's share of the
                        # full-batch mean; without / m the summed gradient is m times too big.
                        out = tf.reduce_mean(ce) / m
                        losses.append(out)
                stash[s][i] = (tape, inputs, out)  # kept until this micro-batch's backward
                if s < p - 1:
                    received[s + 1][i] = out
            else:
                tape, inputs, out = stash[s].pop(i)  # frees the activations
                upstream = None if s == p - 1 else grad_received[s].pop(i)
                found = tape.gradient(
                    out, [inputs, *stage.trainable_variables], output_gradients=upstream
                )
                grads[s] = [acc + g for acc, g in zip(grads[s], found[1:], strict=True)]
                if s > 0:
                    grad_received[s - 1][i] = found[0]  # dL/d(activation), sent back
    return float(tf.add_n(losses)), grads


# -----------------------------------------------------------------------------
# Data, the stages, and measurement


def make_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A batch of BATCH examples: x (B, FEATURES) float32 N(0, 1), y (B,) labels from a
    random linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, FEATURES)).astype(np.float32)
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES)), axis=1).astype(np.int32)
    return x, y


@dataclass
class Probe:
    """Every forward pass of a stage: (batch size, device the stage's first op ran on)."""

    calls: list[tuple[int, str]] = field(default_factory=list)


def probed_stage(layer: keras.layers.Layer, input_dim: int, probe: Probe) -> keras.Model:
    """A stage: a probe (identity that records each call) then ``layer``."""

    def record(inputs: tf.Tensor) -> tf.Tensor:
        out = tf.identity(inputs)  # placed by the caller's tf.device scope
        if inputs.shape[0] is not None:  # a real call (not Keras building the model)
            probe.calls.append((int(inputs.shape[0]), out.device))
        return out

    return keras.Sequential([keras.layers.Input((input_dim,)), keras.layers.Lambda(record), layer])


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def pipeline_schedule(self, kind: str, p: int, m: int, v: int = 1) -> list[list[Op]]: ...

    def simulate(
        self, orders: Sequence[Sequence[Op]], t_forward: float, t_backward: float
    ) -> list[Slot]: ...

    def pipeline_gradients(
        self,
        stages: Sequence[keras.Model],
        devices: Sequence[str],
        x: np.ndarray,
        y: np.ndarray,
        micro_batches: int,
    ) -> tuple[float, list[list[tf.Tensor]]]: ...


@dataclass(frozen=True)
class StepRun:
    loss: float
    expected_loss: float
    grads: np.ndarray  # both stages' gradients, flattened
    expected_grads: np.ndarray
    probes: list[Probe]


def _flat(grads: Sequence[Sequence[tf.Tensor | np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(g)) for stage in grads for g in stage])


def run_step(impl: Answer) -> StepRun:
    """A pipelined step with ``impl`` and one full-batch step of the same unsplit model."""
    use_logical_cpus(len(DEVICES))  # first: before anything touches TensorFlow's devices
    x, y = make_data()
    keras.utils.set_random_seed(SEED)
    probes = [Probe(), Probe()]
    stages = [
        probed_stage(keras.layers.Dense(HIDDEN, activation="relu"), FEATURES, probes[0]),
        probed_stage(keras.layers.Dense(CLASSES), HIDDEN, probes[1]),
    ]
    # The reference: the unsplit model, one tape over the full batch.
    with tf.GradientTape() as tape:
        logits = stages[1](stages[0](x))  # (B, CLASSES)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, True))
    variables = [stage.trainable_variables for stage in stages]
    expected = tape.gradient(loss, [v for vs in variables for v in vs])
    for probe in probes:
        probe.calls.clear()
    got_loss, got = impl.pipeline_gradients(stages, DEVICES, x, y, MICRO_BATCHES)
    return StepRun(float(got_loss), float(loss), _flat(got), _flat([expected]), probes)


# --- the check's own reading of a timeline -----------------------------------


def timeline_errors(slots: Sequence[Slot], p: int, m: int, v: int) -> list[str]:
    """What is wrong with a simulated timeline (empty: valid): every F and B of every
    (chunk, micro-batch) exactly once, on the chunk's device, after its inputs, one op at a
    time per device."""
    errors: list[str] = []
    chunks = p * v
    by_op = {slot.op: slot for slot in slots}
    wanted = {Op(k, c, i) for k in "FB" for c in range(chunks) for i in range(m)}
    if len(slots) != len(wanted) or set(by_op) != wanted:
        errors.append(f"{len(slots)} ops, {len(set(by_op) & wanted)} of the {len(wanted)} wanted")
        return errors
    for slot in slots:
        op = slot.op
        if slot.device != op.chunk % p:
            errors.append(f"{op} on device {slot.device}")
        deps = []
        if op.kind == "F" and op.chunk > 0:
            deps.append(Op("F", op.chunk - 1, op.micro_batch))
        if op.kind == "B":
            deps.append(Op("F", op.chunk, op.micro_batch))
            if op.chunk < chunks - 1:
                deps.append(Op("B", op.chunk + 1, op.micro_batch))
        for dep in deps:
            if slot.start < by_op[dep].end - 1e-9:
                errors.append(f"{op} starts at {slot.start} before {dep} ends at {by_op[dep].end}")
    for d in range(p):
        mine = sorted((s for s in slots if s.device == d), key=lambda s: s.start)
        for a, b in zip(mine, mine[1:], strict=False):
            if b.start < a.end - 1e-9:
                errors.append(f"device {d}: {b.op} overlaps {a.op}")
    return errors


def bubble(slots: Sequence[Slot]) -> tuple[float, float]:
    """(idle share of the step's time, idle time / compute time) on the busiest-idle device."""
    total = max(s.end for s in slots) - min(s.start for s in slots)
    devices = {s.device for s in slots}
    busy = min(sum(s.end - s.start for s in slots if s.device == d) for d in devices)
    return (total - busy) / total, (total - busy) / busy


def peak_in_flight(slots: Sequence[Slot], device: int) -> int:
    """Most (chunk, micro-batch) activations held at once on ``device``: from the start of
    a forward to the end of its backward."""
    events = []
    for s in slots:
        if s.device == device:
            events.append((s.start, 1) if s.op.kind == "F" else (s.end, -1))
    held = peak = 0
    for _, change in sorted(events):  # at equal times a release (-1) sorts first
        held += change
        peak = max(peak, held)
    return peak


@dataclass(frozen=True)
class Case:
    kind: str
    p: int
    m: int
    v: int
    errors: list[str]
    bubble_share: float  # idle / total
    bubble_vs_ideal: float  # idle / compute
    peak: int  # on device 0, in (chunk, micro-batch) activations


def simulate_cases(impl: Answer) -> list[Case]:
    """Every schedule for every (p, m) in CASES, timed by ``impl.simulate``, read by the check."""
    cases = []
    for p, m in CASES:
        for kind, v in (("gpipe", 1), ("1f1b", 1), ("interleaved", CHUNKS)):
            slots = impl.simulate(impl.pipeline_schedule(kind, p, m, v), T_FORWARD, T_BACKWARD)
            errors = timeline_errors(slots, p, m, v)
            share, vs_ideal = bubble(slots) if not errors else (float("nan"), float("nan"))
            peak = peak_in_flight(slots, 0) if not errors else -1
            cases.append(Case(kind, p, m, v, errors, share, vs_ideal, peak))
    return cases


GRADS_CHECK = "pipelined gradients of both stages vs full-batch gradient"
LOSS_CHECK = "pipelined loss vs full-batch loss"
MICRO_CHECK = "stage forward passes on micro-batches of B/m"
DEVICE_CHECK = "stage s runs on device s"
VALID_CHECK = "simulated timelines valid (dependencies, one op per device, each op once)"
GPIPE_CHECK = "GPipe bubble vs (p-1)/(m+p-1), max |diff| over (p, m)"
ONEF_CHECK = "1F1B bubble vs (p-1)/(m+p-1), max |diff| over (p, m)"
INTERLEAVED_CHECK = "interleaved bubble / ideal vs (p-1)/(v*m), max |diff| over (p, m)"
PEAK_CHECK = "peak in-flight micro-batches on stage 0: GPipe m, 1F1B p"


def reference_comparisons(impl: Answer, run: StepRun | None = None) -> dict[str, Comparison]:
    """The pipelined step vs one full-batch step: gradients and loss.

    The micro-batch gradients are sums of 16-row matmuls added up over 4 micro-batches, the
    full-batch one a 64-row matmul: the same terms in another order, so float32 rounding,
    a few eps (1.2e-7) times the gradient's magnitude (<= ~1 here). RTOL 1e-4 is ~100x
    that; ATOL 1e-6 covers gradients that cancel to near 0. Forgetting the 1/m is off by
    a factor m = 4.
    """
    run = run if run is not None else run_step(impl)
    return {
        GRADS_CHECK: compare(run.grads, run.expected_grads, atol=ATOL, rtol=RTOL),
        LOSS_CHECK: compare(run.loss, run.expected_loss, atol=ATOL, rtol=RTOL),
    }


def check(impl: Answer) -> SolutionReport:
    """A real 2-stage pipelined step, then every schedule simulated for several (p, m)."""
    report = SolutionReport(solution="distributed.pipeline_parallel")
    report.metric("batch, micro-batches", f"{BATCH}, {MICRO_BATCHES}")
    with report.timed("pipelined step on 2 devices"):
        run = run_step(impl)
    comparisons = reference_comparisons(impl, run)
    report.metric("max |grad_pipelined - grad_full|", comparisons[GRADS_CHECK].max_abs_diff)
    report.metric("loss pipelined, full batch", f"{run.loss:.6f}, {run.expected_loss:.6f}")
    report.check_close(
        GRADS_CHECK,
        comparisons[GRADS_CHECK],
        f"micro-batch gradients accumulated = the full-batch gradient, up to float32 "
        f"summation order: |diff| <= {ATOL:g} + {RTOL:g}*|g| (~100x the rounding); "
        f"micro-batch losses summed without / m give {MICRO_BATCHES}x the gradient. "
        + comparisons[GRADS_CHECK].detail,
    )
    report.check_close(
        LOSS_CHECK,
        comparisons[LOSS_CHECK],
        f"the mean over the batch; sum of micro-batch means without / m: {MICRO_BATCHES}x. "
        + comparisons[LOSS_CHECK].detail,
    )
    per_micro = BATCH // MICRO_BATCHES
    calls = [c for probe in run.probes for c in probe.calls]
    report.metric(
        "forward passes per stage", ", ".join(str(len(probe.calls)) for probe in run.probes)
    )
    report.check(
        MICRO_CHECK,
        float(np.mean([b == per_micro for b, _ in calls])) if calls else 0.0,
        "==",
        1,
        f"share of the stages' forward passes (a probe at each stage's input) on "
        f"{BATCH} / {MICRO_BATCHES} = {per_micro} rows; one full-batch pass (no pipeline, "
        f"every device idle but one): 0",
    )
    on_device = [
        float(np.mean([dev.endswith(f"CPU:{s}") for _, dev in probe.calls])) if probe.calls else 0
        for s, probe in enumerate(run.probes)
    ]
    report.metric(
        "devices stage 0, stage 1 ran on",
        "; ".join(
            " ".join(sorted({dev.rsplit("/", 1)[-1] for _, dev in probe.calls}))
            for probe in run.probes
        ),
    )
    report.check(
        DEVICE_CHECK,
        min(on_device),
        "==",
        1,
        "share of each stage's forward passes that ran on its own device (the device of the "
        "first op in the stage); both stages on /cpu:0: 0 for stage 1",
    )

    cases = simulate_cases(impl)
    valid = [not c.errors for c in cases]
    report.metric("schedules simulated (kind x (p, m))", len(cases))
    first_error = next((f"{c.kind} p={c.p} m={c.m}: {c.errors[0]}" for c in cases if c.errors), "")
    report.check(
        VALID_CHECK,
        float(np.mean(valid)),
        "==",
        1,
        "share of timelines (GPipe, 1F1B, interleaved v=2 for (p, m) in "
        f"{CASES}) in which every op starts after its inputs end and no device runs two ops "
        "at once, read by the check from the slots; a backward started before its forward "
        "finished: < 1. " + first_error,
    )

    def worst(kind: str, got: Callable[[Case], float], want: Callable[[Case], float]) -> float:
        return max(abs(got(c) - want(c)) for c in cases if c.kind == kind)

    for c in cases:
        if c.p == 4 and c.m == 8:
            report.metric(
                f"{c.kind} p=4 m=8: bubble share, bubble/ideal, peak in flight on stage 0",
                f"{c.bubble_share:.4f}, {c.bubble_vs_ideal:.4f}, {c.peak}",
            )
    report.check(
        GPIPE_CHECK,
        worst("gpipe", lambda c: c.bubble_share, lambda c: (c.p - 1) / (c.m + c.p - 1)),
        "<=",
        1e-9,
        "idle time / step time measured from the timeline (t_b = 2 t_f) vs Huang et al.'s "
        "closed form; exact up to float rounding, hence 1e-9",
    )
    report.check(
        ONEF_CHECK,
        worst("1f1b", lambda c: c.bubble_share, lambda c: (c.p - 1) / (c.m + c.p - 1)),
        "<=",
        1e-9,
        "1F1B reorders the work but keeps GPipe's fill and drain: the same bubble "
        "(Narayanan et al. 2021), exact up to float rounding",
    )
    report.check(
        INTERLEAVED_CHECK,
        worst("interleaved", lambda c: c.bubble_vs_ideal, lambda c: (c.p - 1) / (c.v * c.m)),
        "<=",
        1e-9,
        "idle time / compute time with v = 2 chunks per device vs Megatron-LM's (p-1)/(v m): "
        "half 1F1B's (p-1)/m",
    )
    peaks_right = [
        c.peak == (c.m if c.kind == "gpipe" else c.p) for c in cases if c.kind in ("gpipe", "1f1b")
    ]
    report.check(
        PEAK_CHECK,
        float(np.mean(peaks_right)),
        "==",
        1,
        "share of (schedule, p, m) whose stage 0 holds at most m (GPipe) / p (1F1B) "
        "micro-batches' activations at once, counted from the timeline; a 1F1B that runs "
        "all forwards first holds m",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
