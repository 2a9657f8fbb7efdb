"""Activation checkpointing with ``tf.recompute_grad``: same gradients, less memory, one
extra forward pass; with dropout, only if the randomness is replayed.

Backpropagation needs every layer's activations. Checkpointing keeps only the inputs of
a few segments of the network; in the backward pass each segment is run forward again
from its input (under a new tape) and then differentiated. Splitting n blocks into
segments of k keeps n/k checkpoints plus, while one segment is recomputed, its k
activations: n/k + k, smallest at k = sqrt(n), 2*sqrt(n) instead of n (Chen et al. 2016,
"Training Deep Nets with Sublinear Memory Cost"). The price is one extra forward pass of
every recomputed block.

Here 16 tanh blocks in 4 segments of 4: the gradients equal the plain ones (the same ops
on the same numbers: max difference 0), and the activations held at the peak, counted from
what the blocks see (which run forward, which are recomputed in the backward pass, in
which segments), are 4 + 4 = 8 block outputs instead of 16. TensorFlow has no memory
statistics for CPU devices, so memory is counted, not measured by an allocator.

The pitfall: ``tf.recompute_grad`` (TF 2.21) calls the function again and restores no
random state, so a stateful dropout inside the segment (``keras.layers.Dropout``,
``tf.random.uniform``) draws a NEW mask when it is recomputed: the gradient belongs to a
network other than the one whose loss was computed. A stateless dropout whose seed is
fixed per block (``tf.random.stateless_uniform`` / ``tf.nn.experimental.stateless_dropout``)
draws the same mask both times and the gradients match again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
NUM_BLOCKS = 16
SEGMENT_SIZE = 4  # sqrt(16): n/k + k = 8 is the smallest
WIDTH = 32
BATCH = 64
DROPOUT_RATE = 0.5
# Same ops, same order: equal up to float32 rounding if any (measured bit-identical).
ATOL = 1e-6
RTOL = 1e-5
GRAD_CHECK = "gradients, checkpointed vs plain, no dropout (tolerance used)"
DROPOUT_GRAD_CHECK = "gradients, checkpointed vs plain, same dropout seeds (tolerance used)"
PEAK_CHECK = "block outputs held at the peak, checkpointed (count)"
RECOMPUTE_CHECK = "blocks recomputed in the backward pass per block (ratio)"
DROP_SHARE_CHECK = "dropout block: |share of outputs zeroed - rate|"
SEED_CHECK = "dropout block: share of the mask that changes with the seed"

Block = Callable[[tf.Tensor], tf.Tensor]

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("checkpointed", "dropout_block")

# -----------------------------------------------------------------------------
# The answer: segments wrapped in tf.recompute_grad, and a dropout that replays its mask


def checkpointed(blocks: list[Block], segment_size: int) -> Block:
    """The composition blocks[-1](...blocks[0](x)) with every ``segment_size`` consecutive
    blocks wrapped in one ``tf.recompute_grad``: (B, W) -> (B, W).

    Only each segment's input is kept for the backward pass; the segment runs forward again
    there. Blocks may use variables (Keras layers): recompute_grad differentiates them too.
    """

    def segment(part: list[Block]) -> Block:
        def run(h: tf.Tensor) -> tf.Tensor:
            for block in part:
                h = block(h)  # (B, W)
            return h

        recomputed: Block = tf.recompute_grad(run)  # keeps run's input; reruns it backward
        return recomputed

    segments = [segment(blocks[i : i + segment_size]) for i in range(0, len(blocks), segment_size)]

    def forward(x: tf.Tensor) -> tf.Tensor:
        for seg in segments:
            x = seg(x)  # (B, W), a checkpoint: the next segment's input
        return x

    return forward


def dropout_block(layer: keras.layers.Layer, rate: float, seed: tf.Tensor) -> Block:
    """``layer`` followed by dropout at ``rate`` (training mode, scaled by 1 / (1 - rate)),
    (B, W) -> (B, W), whose mask depends only on ``seed`` ((2,) int32) and the input's shape.

    Stateless: the recomputation in the backward pass draws exactly the mask of the forward
    pass. A stateful op (Dropout layer, tf.random.uniform) advances its generator and would
    draw a new one.
    """

    def block(h: tf.Tensor) -> tf.Tensor:
        h = layer(h)  # (B, W)
        return tf.nn.experimental.stateless_dropout(h, rate=rate, seed=seed)  # (B, W)

    return block


# -----------------------------------------------------------------------------
# Data, the blocks the check owns, and measurement


def make_data(seed: int = SEED) -> np.ndarray:
    """x (64, 32) float32 standard normal: the input of the block stack."""
    x: np.ndarray = synthetic.rng(seed).normal(size=(BATCH, WIDTH)).astype(np.float32)
    return x


def make_layers() -> list[keras.layers.Dense]:
    """NUM_BLOCKS Dense(32, tanh) layers, built, seeded: the blocks' weights."""
    keras.utils.set_random_seed(SEED)
    layers = [keras.layers.Dense(WIDTH, activation="tanh") for _ in range(NUM_BLOCKS)]
    for layer in layers:
        layer.build((None, WIDTH))
    return layers


@dataclass
class CallLog:
    """Which block ran, in the forward pass ("forward") or during tape.gradient ("backward")."""

    phase: str = "forward"
    calls: list[tuple[str, int]] = field(default_factory=list)

    def backward_segments(self) -> list[list[int]]:
        """The blocks recomputed in the backward pass, as runs of consecutive indices."""
        runs: list[list[int]] = []
        for phase, i in self.calls:
            if phase != "backward":
                continue
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        return runs

    def peak_held(self, num_blocks: int) -> int:
        """Block outputs held at the peak of the backward pass, in units of one (B, W) tensor.

        A block never recomputed keeps its output from the forward pass; each recomputed
        segment keeps its input (a checkpoint) and, while it is recomputed, all its
        outputs, one segment at a time: kept + segments + longest segment (Chen et al.).
        """
        segments = self.backward_segments()
        recomputed = {i for run in segments for i in run}
        kept = num_blocks - len(recomputed)
        return kept + len(segments) + max((len(run) for run in segments), default=0)


def logged_blocks(layers: list[keras.layers.Dense], log: CallLog) -> list[Block]:
    """One block per layer that records (phase, index) each time it runs (the check runs
    eagerly, so the Python side runs on every call, recomputation included)."""

    def block(i: int) -> Block:
        def run(h: tf.Tensor) -> tf.Tensor:
            log.calls.append((log.phase, i))
            return layers[i](h)  # (B, W)

        return run

    return [block(i) for i in range(len(layers))]


def compose(blocks: list[Block]) -> Block:
    """The plain stack: every activation stays on the tape."""

    def forward(h: tf.Tensor) -> tf.Tensor:
        for block in blocks:
            h = block(h)
        return h

    return forward


def loss_and_gradients(
    forward: Block, layers: list[keras.layers.Dense], x: np.ndarray, log: CallLog | None = None
) -> tuple[float, np.ndarray]:
    """Loss sum(forward(x)^2) / B and its gradient w.r.t. every layer's weights, flattened."""
    if log is not None:
        log.phase = "forward"
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(forward(tf.constant(x)))) / BATCH
    if log is not None:
        log.phase = "backward"
    variables = [v for layer in layers for v in layer.trainable_variables]
    grads = tape.gradient(loss, variables)
    flat = [
        np.zeros(v.shape, np.float32) if g is None else np.asarray(g)
        for g, v in zip(grads, variables, strict=True)
    ]
    return float(loss), np.concatenate([np.ravel(g) for g in flat])


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def checkpointed(self, blocks: list[Block], segment_size: int) -> Block: ...

    def dropout_block(self, layer: keras.layers.Layer, rate: float, seed: tf.Tensor) -> Block: ...


@dataclass(frozen=True)
class Runs:
    """Plain and checkpointed runs, without and with the candidate's dropout."""

    loss: tuple[float, float]  # (plain, checkpointed), no dropout
    grads: tuple[np.ndarray, np.ndarray]
    log: CallLog  # the checkpointed run's block calls
    dropout_loss: tuple[float, float]
    dropout_grads: tuple[np.ndarray, np.ndarray]


def _seeds() -> list[tf.Tensor]:
    return [tf.constant([SEED, i], tf.int32) for i in range(NUM_BLOCKS)]  # one per block


def run_both(impl: Answer) -> Runs:
    """The stack plain and through ``impl.checkpointed``, without and with dropout blocks."""
    x = make_data()
    layers = make_layers()
    plain = loss_and_gradients(compose(logged_blocks(layers, CallLog())), layers, x)
    log = CallLog()
    forward = impl.checkpointed(logged_blocks(layers, log), SEGMENT_SIZE)
    ours = loss_and_gradients(forward, layers, x, log)

    def dropout_blocks() -> list[Block]:
        return [
            impl.dropout_block(layer, DROPOUT_RATE, s)
            for layer, s in zip(layers, _seeds(), strict=True)
        ]

    # The same global seed before both runs: a stateful dropout then draws the same mask
    # in both forward passes, and differs only by what the recomputation draws.
    keras.utils.set_random_seed(SEED)
    dropout_plain = loss_and_gradients(compose(dropout_blocks()), layers, x)
    keras.utils.set_random_seed(SEED)
    dropout_ours = loss_and_gradients(impl.checkpointed(dropout_blocks(), SEGMENT_SIZE), layers, x)
    return Runs(
        (plain[0], ours[0]),
        (plain[1], ours[1]),
        log,
        (dropout_plain[0], dropout_ours[0]),
        (dropout_plain[1], dropout_ours[1]),
    )


def reference_comparisons(impl: Answer, runs: Runs | None = None) -> dict[str, Comparison]:
    """Checkpointed vs plain gradients, without and with dropout.

    Recomputation runs the same ops on the same inputs in the same order, so the gradients
    are bit-identical in practice (measured max difference 0, oneDNN on and off); ATOL 1e-6
    and RTOL 1e-5 leave room for a kernel that rounds differently in the recomputed pass.
    A new dropout mask in the recomputation changes gradients by up to ~2: ~1e6 times that.
    """
    runs = runs if runs is not None else run_both(impl)
    return {
        GRAD_CHECK: compare(runs.grads[1], runs.grads[0], atol=ATOL, rtol=RTOL),
        DROPOUT_GRAD_CHECK: compare(
            runs.dropout_grads[1], runs.dropout_grads[0], atol=ATOL, rtol=RTOL
        ),
    }


def check(impl: Answer) -> SolutionReport:
    """Gradients, memory and recompute cost of ``impl.checkpointed``; the dropout's mask."""
    report = SolutionReport(solution="distributed.activation_checkpointing")
    report.metric("blocks, segment size", f"{NUM_BLOCKS}, {SEGMENT_SIZE}")
    runs = run_both(impl)
    comparisons = reference_comparisons(impl, runs)
    report.metric(
        "loss plain, checkpointed (no dropout)", f"{runs.loss[0]:.6g}, {runs.loss[1]:.6g}"
    )
    report.metric(
        "loss plain, checkpointed (dropout)",
        f"{runs.dropout_loss[0]:.6g}, {runs.dropout_loss[1]:.6g}",
    )
    for name, comparison in comparisons.items():
        report.metric(f"max |diff|: {name.split(' (')[0]}", comparison.max_abs_diff)
    _memory(report, runs.log)
    report.check_close(
        GRAD_CHECK,
        comparisons[GRAD_CHECK],
        "recompute_grad reruns the same ops on the same segment inputs, so the gradients "
        "equal the plain stack's (|diff| <= 1e-6 + 1e-5*|g|; reference: identical); "
        "segments built by lambdas closing over the loop variable all run the last blocks: "
        "~5e5; " + comparisons[GRAD_CHECK].detail,
    )
    report.check_close(
        DROPOUT_GRAD_CHECK,
        comparisons[DROPOUT_GRAD_CHECK],
        "the dropout mask must be the same in the forward pass and in the recomputation; "
        "both runs start from the same global seed, so a stateful dropout (Dropout layer, "
        "tf.random.uniform) draws the same forward mask and a new one when recomputed: "
        "gradients of a different network, off by up to ~2 (tolerance used ~1e6); a stateless "
        "mask from the block's seed: identical; " + comparisons[DROPOUT_GRAD_CHECK].detail,
    )
    _dropout_mask(report, impl)
    return report


def _memory(report: SolutionReport, log: CallLog) -> None:
    """The memory bound and the recompute cost, read off the checkpointed run's block calls."""
    segments = log.backward_segments()
    held = log.peak_held(NUM_BLOCKS)
    recomputed = sum(len(run) for run in segments)
    bound = NUM_BLOCKS // SEGMENT_SIZE + SEGMENT_SIZE
    report.metric("segments recomputed in the backward pass", len(segments))
    report.metric("block outputs held at the peak, plain", NUM_BLOCKS)
    report.metric(
        "activation bytes at the peak, checkpointed vs plain",
        f"{held * BATCH * WIDTH * 4} vs {NUM_BLOCKS * BATCH * WIDTH * 4}",
    )
    report.check(
        PEAK_CHECK,
        held,
        "<=",
        bound,
        f"an exact count, no noise: n/k + k = {NUM_BLOCKS}/{SEGMENT_SIZE} + {SEGMENT_SIZE} = "
        f"{bound} (B x W tensors): the "
        f"segment inputs kept, plus one segment recomputed at a time; the plain stack keeps "
        f"all {NUM_BLOCKS}; recompute_grad around the whole model keeps 1 + {NUM_BLOCKS}: "
        f"during its single recomputation every activation is alive again",
    )
    report.check(
        RECOMPUTE_CHECK,
        recomputed / NUM_BLOCKS,
        "==",
        1,
        "block evaluations during tape.gradient per block: exactly one extra forward pass "
        "is the price (about a third more compute when backward costs twice forward); "
        "without recompute_grad nothing is recomputed: 0",
    )


def _dropout_mask(report: SolutionReport, impl: Answer) -> None:
    """The candidate's dropout really drops, at the rate, with a mask set by the seed."""
    identity = keras.layers.Lambda(lambda h: h)  # (B, W) -> (B, W): the mask alone shows
    ones = tf.ones((BATCH, WIDTH))
    first = impl.dropout_block(identity, DROPOUT_RATE, tf.constant([SEED, 0]))(ones).numpy()
    again = impl.dropout_block(identity, DROPOUT_RATE, tf.constant([SEED, 1]))(ones).numpy()
    zeroed = float(np.mean(first == 0))
    changed = float(np.mean((first == 0) != (again == 0)))
    report.metric("dropout block: share of outputs zeroed", zeroed)
    report.check(
        DROP_SHARE_CHECK,
        abs(zeroed - DROPOUT_RATE),
        "<=",
        0.05,
        f"|share of the {BATCH * WIDTH} outputs zeroed - {DROPOUT_RATE}|: binomial spread is "
        f"0.011, so 0.05 is ~4.5 sigma (reference {zeroed:.3f}); a block without dropout "
        f"zeroes none: 0.5",
    )
    report.check(
        SEED_CHECK,
        changed,
        ">=",
        0.3,
        "share of positions whose keep/drop differs between seeds (SEED, 0) and (SEED, 1): "
        "independent masks at rate 0.5 differ in ~0.5; a mask that ignores the seed (fixed "
        "once) differs in none: 0",
    )


if __name__ == "__main__":
    print_check_of(__name__)
