"""Megatron tensor parallelism: an MLP and self-attention split over 2 devices, proved equal
to the unsplit layers, with the all-reduces counted.

Megatron-LM (Shoeybi et al. 2019) splits a transformer layer's weight matrices, not its
batch, over the ranks of a tensor-parallel group:

- MLP ``Y = GeLU(X W1 + b1) W2 + b2``: W1 is split by COLUMNS, so rank r computes its own
  slice of the hidden layer ``GeLU(X W1_r + b1_r)`` with no communication (GeLU acts per
  element, and every element of that slice is complete on rank r); W2 is split by ROWS, so
  rank r computes a partial sum ``GeLU(...)_r W2_r`` of the output, and ONE all-reduce adds
  the partial sums. b2 is added once, after the all-reduce.
- Self-attention: the heads are split over the ranks (Q, K, V projections by columns, one
  group of heads per rank, each head complete on its rank), and the output projection by
  rows: again one all-reduce per block, output bias after it.

Two conjugate operators carry the communication (the paper's f and g): ``f`` at the block's
input is the identity forward and an all-reduce of the input gradient backward (each rank
only sees the part of dL/dX that flows through its shard); ``g`` at the block's output is an
all-reduce forward and the identity backward. So a transformer layer (attention + MLP) costs
2 all-reduces forward and 2 backward.

Two logical CPU devices stand in for two GPUs. The check hands the answer an all-reduce
that counts its calls and, like NCCL's, is not differentiable: the answer must write f and g
itself. It compares each rank's outputs, input gradient and weight-shard gradients with the
unsplit Keras layers (``keras.layers.Dense`` pair, ``keras.layers.MultiHeadAttention``), and
counts the all-reduces in the forward and the backward pass of each block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit.compare import Comparison, compare
from aiprep.kit.devices import use_logical_cpus
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
RANKS = 2  # the tensor-parallel group: /cpu:0 and /cpu:1 stand in for 2 GPUs
BATCH, SEQ, D_MODEL = 4, 6, 16
D_FF = 4 * D_MODEL  # 64: the MLP's hidden width, 32 per rank
HEADS, KEY_DIM = 4, 4  # 2 heads per rank
# Split vs unsplit: float32 sums of <= 64 products in a different order; see reference_comparisons.
ATOL = 1e-4
RTOL = 1e-4

# A list of per-rank tensors in, a list of per-rank tensors out (the sum, on every rank).
AllReduce = Callable[[Sequence[tf.Tensor]], list[tf.Tensor]]
Params = tuple[np.ndarray, ...]  # a layer's weights in Keras order (get_weights())

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "copy_to_ranks",
    "reduce_from_ranks",
    "shard_mlp",
    "tensor_parallel_mlp",
    "shard_attention",
    "tensor_parallel_attention",
)

# -----------------------------------------------------------------------------
# The answer: the conjugate operators f and g, and the two split blocks


def copy_to_ranks(xs: Sequence[tf.Tensor], all_reduce: AllReduce) -> list[tf.Tensor]:
    """Megatron's ``f``: identity forward, all-reduce of the gradients backward.

    ``xs``: the block's input, one (B, T, D) copy per rank (each on its rank's device).
    Rank r's shard only sees the part of dL/dX that flows through its own weights; the
    input gradient is the sum over ranks, so the backward pass all-reduces it.
    """

    @tf.custom_gradient  # type: ignore[untyped-decorator]  # TF has no stubs
    def f(*copies: tf.Tensor) -> tuple[list[tf.Tensor], Callable[..., list[tf.Tensor]]]:
        def grad(*dys: tf.Tensor) -> list[tf.Tensor]:
            return all_reduce(dys)  # sum_r dL/dX through shard r, on every rank

        return [tf.identity(x) for x in copies], grad

    return list(f(*xs))


def reduce_from_ranks(partials: Sequence[tf.Tensor], all_reduce: AllReduce) -> list[tf.Tensor]:
    """Megatron's ``g``: all-reduce forward, identity gradients backward.

    ``partials``: each rank's (B, T, D) partial sum of the block's output. Every rank gets
    the full output; in the backward pass each rank's dL/dY is already the full gradient
    of its copy, so it passes through unchanged (an all-reduce here would count it R times).
    """

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def g(*parts: tf.Tensor) -> tuple[list[tf.Tensor], Callable[..., list[tf.Tensor]]]:
        def grad(*dys: tf.Tensor) -> list[tf.Tensor]:
            return [tf.identity(dy) for dy in dys]

        return all_reduce(parts), grad

    return list(g(*partials))


def shard_mlp(params: Params, ranks: int) -> list[Params]:
    """Split the MLP ``(w1 (D, F), b1 (F,), w2 (F, D), b2 (D,))`` over ``ranks``.

    Rank r gets ``(w1[:, cols_r] (D, F/R), b1[cols_r] (F/R,), w2[cols_r, :] (F/R, D), b2 (D,))``:
    W1 by columns and W2 by the same indices as rows, b2 replicated (added once, after g).
    """
    w1, b1, w2, b2 = params
    cols = np.array_split(np.arange(w1.shape[1]), ranks)
    return [(w1[:, c], b1[c], w2[c, :], b2) for c in cols]


def tensor_parallel_mlp(
    xs: Sequence[tf.Tensor], shards: Sequence[Sequence[tf.Variable]], all_reduce: AllReduce
) -> list[tf.Tensor]:
    """``GeLU(X W1 + b1) W2 + b2`` on the ranks: ``xs`` one (B, T, D) copy per rank, ``shards``
    rank r's ``(w1_r, b1_r, w2_r, b2)`` from ``shard_mlp``; returns the (B, T, D) output on
    every rank. One all-reduce forward (g), one backward (f).
    """
    xs = copy_to_ranks(xs, all_reduce)
    partials = []
    for r, (x, (w1, b1, w2, _)) in enumerate(zip(xs, shards, strict=True)):
        with tf.device(f"/cpu:{r}"):
            # Column slice of the hidden layer: complete elements, so GeLU is exact here.
            h = tf.nn.gelu(tf.einsum("btd,df->btf", x, w1) + b1)  # (B, T, F/R)
            partials.append(tf.einsum("btf,fd->btd", h, w2))  # (B, T, D), a partial sum
    ys = reduce_from_ranks(partials, all_reduce)  # (B, T, D) on every rank
    out = []
    for r, (y, shard) in enumerate(zip(ys, shards, strict=True)):
        with tf.device(f"/cpu:{r}"):
            out.append(y + shard[3])  # b2 once, after the sum: not once per rank
    return out


def shard_attention(params: Params, ranks: int) -> list[Params]:
    """Split self-attention by heads over ``ranks``; ``params`` in Keras MultiHeadAttention
    order: ``wq (D, H, K), bq (H, K), wk, bk, wv, bv`` (same shapes), ``wo (H, K, D), bo (D,)``.

    Rank r gets heads ``heads_r`` of every projection: ``wq[:, heads_r] (D, H/R, K)``, ...,
    ``wo[heads_r] (H/R, K, D)``, and ``bo`` replicated (added once, after g).
    """
    wq, bq, wk, bk, wv, bv, wo, bo = params
    heads = np.array_split(np.arange(wq.shape[1]), ranks)
    return [(wq[:, h], bq[h], wk[:, h], bk[h], wv[:, h], bv[h], wo[h], bo) for h in heads]


def tensor_parallel_attention(
    xs: Sequence[tf.Tensor], shards: Sequence[Sequence[tf.Variable]], all_reduce: AllReduce
) -> list[tf.Tensor]:
    """Multi-head self-attention (no mask) on the ranks: ``xs`` one (B, T, D) copy per rank,
    ``shards`` rank r's heads from ``shard_attention``; returns the (B, T, D) output on every
    rank. Each head is complete on its rank; one all-reduce forward (g), one backward (f).
    """
    xs = copy_to_ranks(xs, all_reduce)
    partials = []
    for r, (x, (wq, bq, wk, bk, wv, bv, wo, _)) in enumerate(zip(xs, shards, strict=True)):
        with tf.device(f"/cpu:{r}"):
            q = tf.einsum("btd,dhk->bthk", x, wq) + bq  # (B, T, H/R, K)
            k = tf.einsum("btd,dhk->bthk", x, wk) + bk  # (B, T, H/R, K)
            v = tf.einsum("btd,dhk->bthk", x, wv) + bv  # (B, T, H/R, K)
            scale = 1.0 / np.sqrt(float(wq.shape[-1]))
            logits = tf.einsum("bthk,bshk->bhts", q * scale, k)  # (B, H/R, T, T)
            weights = tf.nn.softmax(logits, axis=-1)  # over the keys s
            context = tf.einsum("bhts,bshk->bthk", weights, v)  # (B, T, H/R, K)
            # Rows of Wo for this rank's heads: a partial sum of the output projection.
            partials.append(tf.einsum("bthk,hkd->btd", context, wo))  # (B, T, D)
    ys = reduce_from_ranks(partials, all_reduce)
    out = []
    for r, (y, shard) in enumerate(zip(ys, shards, strict=True)):
        with tf.device(f"/cpu:{r}"):
            out.append(y + shard[7])  # bo once, after the sum
    return out


# -----------------------------------------------------------------------------
# Data, the unsplit reference layers, and the instrumented all-reduce


@dataclass(frozen=True)
class Data:
    x: np.ndarray  # (B, T, D) the block input
    upstream: np.ndarray  # (B, T, D) dL/dY: the loss is sum(Y * upstream) on every rank
    mlp: Params  # w1 (D, F), b1 (F,), w2 (F, D), b2 (D,)
    attention: Params  # Keras MultiHeadAttention weights, in get_weights() order


def make_data(seed: int = SEED) -> Data:
    """Random input, upstream gradient and weights (biases non-zero: a bias added on every
    rank must show), float32, scaled so that activations stay of order 1."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    d, f, h, k = D_MODEL, D_FF, HEADS, KEY_DIM
    mlp = (
        normal(d, f, scale=d**-0.5),
        normal(f, scale=0.5),
        normal(f, d, scale=f**-0.5),
        normal(d),
    )
    attention = (
        normal(d, h, k, scale=d**-0.5),
        normal(h, k, scale=0.5),
        normal(d, h, k, scale=d**-0.5),
        normal(h, k, scale=0.5),
        normal(d, h, k, scale=d**-0.5),
        normal(h, k, scale=0.5),
        normal(h, k, d, scale=(h * k) ** -0.5),
        normal(d),
    )
    return Data(normal(BATCH, SEQ, d), normal(BATCH, SEQ, d), mlp, attention)


def unsplit_mlp(params: Params) -> keras.Model:
    """The reference: two keras.layers.Dense, (B, T, D) -> (B, T, F) GeLU -> (B, T, D)."""
    model = keras.Sequential(
        [
            keras.layers.Input((SEQ, D_MODEL)),
            keras.layers.Dense(D_FF, activation="gelu"),  # exact (erf) GeLU, like tf.nn.gelu
            keras.layers.Dense(D_MODEL),
        ]
    )
    model.set_weights(list(params))
    return model


def unsplit_attention(params: Params) -> keras.layers.MultiHeadAttention:
    """The reference: keras.layers.MultiHeadAttention(HEADS, KEY_DIM), self-attention."""
    layer = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    x = tf.zeros((1, SEQ, D_MODEL))
    layer(x, x)  # builds the weights
    layer.set_weights(list(params))
    return layer


class CountingAllReduce:
    """The all-reduce the check hands the answer: sums one tensor per rank and returns the
    sum on every rank's device, counting its calls per phase ("forward" / "backward").

    Like NCCL's all-reduce it is not differentiable (its inputs pass through stop_gradient):
    the gradient of the communication is the answer's business (f and g).
    """

    def __init__(self, ranks: int) -> None:
        self.ranks = ranks
        self.phase = "forward"
        self.calls = {"forward": 0, "backward": 0}

    def __call__(self, tensors: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        tensors = list(tensors)
        if len(tensors) != self.ranks:
            raise ValueError(
                f"all_reduce takes one tensor per rank: {self.ranks}, got {len(tensors)}"
            )
        self.calls[self.phase] += 1
        with tf.device("/cpu:0"):
            total = tf.add_n([tf.stop_gradient(tf.convert_to_tensor(t)) for t in tensors])
        out = []
        for r in range(self.ranks):
            with tf.device(f"/cpu:{r}"):
                out.append(tf.identity(total))
        return out


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def shard_mlp(self, params: Params, ranks: int) -> list[Params]: ...

    def tensor_parallel_mlp(
        self,
        xs: Sequence[tf.Tensor],
        shards: Sequence[Sequence[tf.Variable]],
        all_reduce: AllReduce,
    ) -> list[tf.Tensor]: ...

    def shard_attention(self, params: Params, ranks: int) -> list[Params]: ...

    def tensor_parallel_attention(
        self,
        xs: Sequence[tf.Tensor],
        shards: Sequence[Sequence[tf.Variable]],
        all_reduce: AllReduce,
    ) -> list[tf.Tensor]: ...


@dataclass(frozen=True)
class BlockRun:
    """One block, split and unsplit: outputs and gradients, all-reduces counted."""

    outputs: np.ndarray  # (R, B, T, D) each rank's output
    expected_outputs: np.ndarray  # (R, B, T, D) the unsplit output, once per rank
    input_grads: np.ndarray  # (R, B, T, D) dL/dX on each rank
    expected_input_grads: np.ndarray  # (R, B, T, D)
    weight_grads: np.ndarray  # every shard's gradient, flattened and concatenated
    expected_weight_grads: np.ndarray  # the unsplit gradients, sharded the same way
    calls: dict[str, int]


def _flat(arrays: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.ravel(a) for shard in arrays for a in shard])


def run_block(
    shard: Callable[[Params, int], list[Params]],
    block: Callable[
        [Sequence[tf.Tensor], Sequence[Sequence[tf.Variable]], AllReduce], list[tf.Tensor]
    ],
    params: Params,
    reference: Callable[[tf.Tensor], tf.Tensor],
    reference_weights: list[tf.Variable],
    data: Data,
) -> BlockRun:
    """Run ``block`` on RANKS ranks from ``shard(params)``, and ``reference`` unsplit; the
    loss on each rank is sum(Y_r * upstream), whose gradient on each copy is upstream."""
    all_reduce = CountingAllReduce(RANKS)
    shards = shard(params, RANKS)
    variables, xs = [], []
    for r, rank_params in enumerate(shards):
        with tf.device(f"/cpu:{r}"):
            variables.append([tf.Variable(np.asarray(p)) for p in rank_params])
            xs.append(tf.identity(tf.constant(data.x)))
    upstream = tf.constant(data.upstream)
    with tf.GradientTape() as tape:
        tape.watch(xs)
        ys = block(xs, variables, all_reduce)
        loss = tf.add_n([tf.reduce_sum(y * upstream) for y in ys])
    all_reduce.phase = "backward"
    flat_vars = [v for rank in variables for v in rank]
    grads = tape.gradient(loss, [*xs, *flat_vars])
    input_grads, var_grads = grads[:RANKS], grads[RANKS:]

    x = tf.constant(data.x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = reference(x)
        ref_loss = tf.reduce_sum(y * upstream)
    ref_grads = tape.gradient(ref_loss, [x, *reference_weights])
    # Slicing is linear: the gradient of a shard is the same shard of the gradient.
    expected = shard(tuple(g.numpy() for g in ref_grads[1:]), RANKS)

    def arr(t: tf.Tensor | None, like: np.ndarray) -> np.ndarray:
        return np.zeros_like(like) if t is None else np.asarray(t)  # None: no gradient flowed

    sizes = [len(rank) for rank in variables]
    got_grads, i = [], 0
    for n in sizes:
        got_grads.append([arr(var_grads[i + j], flat_vars[i + j].numpy()) for j in range(n)])
        i += n
    return BlockRun(
        outputs=np.stack([np.asarray(y_r) for y_r in ys]),
        expected_outputs=np.stack([np.asarray(y)] * RANKS),
        input_grads=np.stack([arr(g, data.x) for g in input_grads]),
        expected_input_grads=np.stack([np.asarray(ref_grads[0])] * RANKS),
        weight_grads=_flat(got_grads),
        expected_weight_grads=_flat(expected),
        calls=dict(all_reduce.calls),
    )


@dataclass(frozen=True)
class Runs:
    mlp: BlockRun
    attention: BlockRun


def run_both(impl: Answer) -> Runs:
    """The MLP block and the attention block, split over RANKS devices and unsplit."""
    use_logical_cpus(RANKS)  # first: before anything touches TensorFlow's devices
    data = make_data()
    mlp_ref = unsplit_mlp(data.mlp)
    attention_ref = unsplit_attention(data.attention)
    mlp = run_block(
        impl.shard_mlp, impl.tensor_parallel_mlp, data.mlp, mlp_ref, mlp_ref.weights, data
    )
    attention = run_block(
        impl.shard_attention,
        impl.tensor_parallel_attention,
        data.attention,
        lambda x: attention_ref(x, x),
        attention_ref.weights,
        data,
    )
    return Runs(mlp, attention)


MLP_Y = "MLP: output on each rank vs unsplit Dense layers"
MLP_DX = "MLP: input gradient on each rank vs unsplit"
MLP_DW = "MLP: weight-shard gradients vs unsplit"
MLP_FWD = "MLP: all-reduces in the forward pass"
MLP_BWD = "MLP: all-reduces in the backward pass"
ATT_Y = "attention: output on each rank vs unsplit MultiHeadAttention"
ATT_DX = "attention: input gradient on each rank vs unsplit"
ATT_DW = "attention: weight-shard gradients vs unsplit"
ATT_FWD = "attention: all-reduces in the forward pass"
ATT_BWD = "attention: all-reduces in the backward pass"


def reference_comparisons(impl: Answer, runs: Runs | None = None) -> dict[str, Comparison]:
    """Every split-vs-unsplit comparison: outputs, input gradients, weight gradients.

    The split layers add the same products as the unsplit ones in a different order (two
    32-term dot products and an all-reduce instead of one 64-term one), so they differ by
    float32 rounding: a few eps (1.2e-7) times the sum of |terms|, which is at most ~10
    here (outputs and gradients are of order 1, weight gradients sum over B*T = 24 rows).
    ATOL 1e-4 + RTOL 1e-4 * |expected| covers that ~100x over; a bias counted twice, a
    nonlinearity on partial sums or a doubled gradient is off by order 1.
    """
    runs = runs if runs is not None else run_both(impl)
    found = {}
    for block, (y, dx, dw) in (
        (runs.mlp, (MLP_Y, MLP_DX, MLP_DW)),
        (runs.attention, (ATT_Y, ATT_DX, ATT_DW)),
    ):
        found[y] = compare(block.outputs, block.expected_outputs, atol=ATOL, rtol=RTOL)
        found[dx] = compare(block.input_grads, block.expected_input_grads, atol=ATOL, rtol=RTOL)
        found[dw] = compare(block.weight_grads, block.expected_weight_grads, atol=ATOL, rtol=RTOL)
    return found


def check(impl: Answer) -> SolutionReport:
    """Split MLP and attention over 2 ranks with ``impl``; compare with the unsplit layers."""
    report = SolutionReport(solution="distributed.megatron_tensor_parallel")
    report.metric("ranks (tensor-parallel group)", RANKS)
    report.metric("x shape (B, T, D)", f"{BATCH}, {SEQ}, {D_MODEL}")
    with report.timed("split and unsplit forward + backward"):
        runs = run_both(impl)
    comparisons = reference_comparisons(impl, runs)
    bound = f"|diff| <= {ATOL:g} + {RTOL:g}*|expected|"
    for name, block, what, wrong in (
        (
            "MLP",
            runs.mlp,
            (MLP_Y, MLP_DX, MLP_DW, MLP_FWD, MLP_BWD),
            "a bias b2 added on every rank before the all-reduce is counted twice; GeLU on "
            "partial sums (row-split W1) is not GeLU of the sum",
        ),
        (
            "attention",
            runs.attention,
            (ATT_Y, ATT_DX, ATT_DW, ATT_FWD, ATT_BWD),
            "the output bias added on every rank is counted twice",
        ),
    ):
        y, dx, dw, fwd, bwd = what
        for metric, comparison in (
            ("max |y_split - y|", comparisons[y]),
            ("max |dx_split - dx|", comparisons[dx]),
            ("max |dW_split - dW|", comparisons[dw]),
        ):
            report.metric(f"{name}: {metric}", comparison.max_abs_diff)
        report.metric(
            f"{name}: all-reduces forward, backward",
            f"{block.calls['forward']}, {block.calls['backward']}",
        )
        report.check_close(
            y,
            comparisons[y],
            f"the same products summed in a different order: float32 rounding, ~1e-6 "
            f"(see reference_comparisons); {wrong}: off by order 1. " + comparisons[y].detail,
        )
        report.check_close(
            dx,
            comparisons[dx],
            f"{bound}; each rank's shard only sees its part of dL/dX: without f's backward "
            f"all-reduce a rank holds a partial gradient, off by order 1. "
            + comparisons[dx].detail,
        )
        report.check_close(
            dw,
            comparisons[dw],
            f"{bound}; the gradient of a shard is the shard of the unsplit gradient; an "
            f"all-reduce in g's backward as well (a differentiable all-reduce) sums the "
            f"{RANKS} ranks' identical dL/dY: {RANKS}x the gradient. " + comparisons[dw].detail,
        )
        report.check(
            fwd,
            block.calls["forward"],
            "==",
            1,
            "Megatron: column-split then row-split needs one all-reduce (g) per block "
            "forward; row-split first needs another one before the nonlinearity: 2",
        )
        report.check(
            bwd,
            block.calls["backward"],
            "==",
            1,
            "one all-reduce (f's backward, of dL/dX) per block; g's backward is the identity: "
            "0 without f, 2 with a differentiable all-reduce in g",
        )
    layer = {
        phase: runs.mlp.calls[phase] + runs.attention.calls[phase]
        for phase in ("forward", "backward")
    }
    report.metric(
        "all-reduces per transformer layer (forward, backward)",
        f"{layer['forward']}, {layer['backward']}",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
