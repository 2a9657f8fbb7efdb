"""Grouped-query and multi-query attention: fewer K/V heads, a KV cache smaller by heads/groups.

Multi-head attention (MHA) gives each of the H query heads its own key and value head, so
the KV cache holds H heads per layer and token. Multi-query attention (MQA, Shazeer 2019)
shares one K/V head among all query heads; grouped-query attention (GQA, Ainslie et al.
2023) sits between: G K/V heads, each shared by a group of H/G consecutive query heads.
The cache and the memory read per decode step shrink by H/G; the query heads, the output
projection and the FLOPs of the attention itself stay as they were. G = H is MHA, G = 1 MQA.

The answer is ``grouped_query_attention`` (causal attention with each K/V head shared by
its group) and ``mean_pool_kv_heads`` (GQA's recipe for converting an MHA checkpoint: the
K/V projection of each group is the mean of its heads'). The checks prove: with G = H it
equals Keras' ``MultiHeadAttention``; with G = 2 and G = 1 it equals ``MultiHeadAttention``
whose K/V heads are copies of the shared ones, in the grouping the paper uses (query head
h reads K/V head h // (H/G)); mean pooling is exact on an MHA whose heads already agree
within each group; and the cache of a decoder with G K/V heads is H/G times smaller. On a
toy task (the tiny decoder of ``compression.kv_cache``), MHA, GQA-2 and MQA are trained
briefly and their held-out losses recorded, as is the loss of a trained MHA converted to
GQA-2 by mean pooling (before any uptraining) against converting by keeping one head.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.kv_cache import (
    DecoderConfig,
    build_decoder,
    cache_nbytes,
    decode_step,
    make_data,
    train_decoder,
)

SEED = 0
HEADS = 4
D_MODEL = 32
TOY_EPOCHS = 4
TOY = DecoderConfig(n_layers=1)  # one block: three trainings fit the budget
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("grouped_query_attention", "mean_pool_kv_heads")

# -----------------------------------------------------------------------------
# The answer


def grouped_query_attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, n_groups: int) -> tf.Tensor:
    """Causal attention with ``n_groups`` K/V heads shared by the query heads.

    q (B, H, T, dh); k and v (B, G, T, dh) with G = ``n_groups`` dividing H. Query heads
    g * H/G .. (g+1) * H/G - 1 (a consecutive group) all read K/V head g. Returns
    (B, H, T, dh); position i attends to positions 0..i.
    """
    heads, d_head = q.shape[1], q.shape[3]
    length = tf.shape(q)[2]  # T may be unknown while Keras builds the model
    per_group = heads // n_groups  # r query heads per K/V head
    # View the H query heads as (G, r): head h = g * r + j. The group axis lines up with
    # k's head axis, so each K/V head is read by its r queries without being copied H/G
    # times (what a GQA kernel does; tf.repeat(k, r, axis=1) gives the same numbers).
    qg = tf.reshape(q, (-1, n_groups, per_group, length, d_head))  # (B, G, r, T, dh)
    scores = tf.einsum("bgrtk,bgsk->bgrts", qg, k) / np.sqrt(d_head)  # (B, G, r, T, T)
    causal = tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)  # (T, T)
    scores = tf.where(causal, scores, tf.constant(-1e9, scores.dtype))
    out = tf.einsum("bgrts,bgsk->bgrtk", tf.nn.softmax(scores, axis=-1), v)  # (B, G, r, T, dh)
    return tf.reshape(out, (-1, heads, length, d_head))  # (B, H, T, dh)


def mean_pool_kv_heads(kernel: np.ndarray, n_groups: int) -> np.ndarray:
    """An MHA key or value projection (d, H, dh) pooled to GQA's (d, G, dh).

    K/V head g is the mean of MHA heads g * H/G .. (g+1) * H/G - 1: the same consecutive
    groups that ``grouped_query_attention`` shares a K/V head among (Ainslie et al. convert
    checkpoints this way, then uptrain for a few percent of the pre-training steps).
    """
    d, heads, d_head = kernel.shape
    grouped = kernel.reshape(d, n_groups, heads // n_groups, d_head)  # (d, G, r, dh)
    pooled: np.ndarray = grouped.mean(axis=2)  # (d, G, dh)
    return pooled


# -----------------------------------------------------------------------------
# Independent references: Keras' MultiHeadAttention, with K/V heads copied per group


def make_data_inputs(seed: int = SEED) -> np.ndarray:
    """(4, 12, D_MODEL) float32 activations for the attention comparisons."""
    x: np.ndarray = synthetic.rng(seed).normal(size=(4, 12, D_MODEL)).astype(np.float32)
    return x


def keras_mha(
    x: np.ndarray, n_groups: int, seed: int = SEED
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Keras ``MultiHeadAttention`` (H heads, causal, no biases) on ``x`` (B, T, d), with each
    group's K/V heads set equal: heads h with the same h // (H/G) share one K/V projection.

    Returns its output (B, T, d) and [wq (d, H, dh), wk (d, G, dh), wv (d, G, dh),
    wo (H, dh, d)]: the shared projections, G heads each.
    """
    keras.utils.set_random_seed(seed)
    mha = keras.layers.MultiHeadAttention(HEADS, D_MODEL // HEADS, use_bias=False)
    mha(x, x)  # build
    wq, wk, wv, wo = mha.get_weights()  # (d, H, dh) x3, (H, dh, d)
    per_group = HEADS // n_groups
    wk_g, wv_g = wk[:, ::per_group], wv[:, ::per_group]  # (d, G, dh): group g's head
    # Every query head of group g reads the same K/V: copy head g into its r slots.
    mha.set_weights([wq, np.repeat(wk_g, per_group, 1), np.repeat(wv_g, per_group, 1), wo])
    out = mha(x, x, use_causal_mask=True).numpy()  # (B, T, d)
    return out, [wq, wk_g, wv_g, wo]


def gqa_layer(impl: Answer, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """The same attention through ``impl.grouped_query_attention``: (B, T, d) -> (B, T, d)."""
    wq, wk, wv, wo = weights
    q = tf.einsum("btd,dhk->bhtk", x, wq)  # (B, H, T, dh)
    k = tf.einsum("btd,dgk->bgtk", x, wk)  # (B, G, T, dh)
    v = tf.einsum("btd,dgk->bgtk", x, wv)
    out = impl.grouped_query_attention(q, k, v, wk.shape[1])  # (B, H, T, dh)
    y: np.ndarray = tf.einsum("bhtk,hkd->btd", out, wo).numpy()  # (B, T, d)
    return y


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def grouped_query_attention(
        self, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, n_groups: int
    ) -> tf.Tensor: ...

    def mean_pool_kv_heads(self, kernel: np.ndarray, n_groups: int) -> np.ndarray: ...


MHA = "groups = heads (4) vs Keras MultiHeadAttention"
GQA = "GQA, 2 groups vs MultiHeadAttention with K/V heads shared per group"
MQA = "MQA, 1 group vs MultiHeadAttention with one K/V head for all"
POOL = "mean-pooled conversion of an MHA with equal heads per group vs that MHA"


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl`` vs Keras ``MultiHeadAttention`` with the same (shared) projections.

    Outputs of order 1, sums over 12 positions and 8-wide heads in another order than
    Keras' einsums: float32 rounding ~1e-6: atol 1e-5 + rtol 1e-4. Reading the wrong K/V
    head, or no causal mask, changes outputs by O(0.1).
    """
    x = make_data_inputs()
    found = {}
    for name, groups in ((MHA, HEADS), (GQA, 2), (MQA, 1)):
        expected, weights = keras_mha(x, groups)
        found[name] = compare(gqa_layer(impl, x, weights), expected, **TOLERANCE)
    # Conversion: an MHA whose heads agree within each pair (Keras layer above, 2 groups,
    # all 4 K/V heads given) pooled to 2 K/V heads must give the same attention.
    expected, (wq, wk_g, wv_g, wo) = keras_mha(x, 2)
    full_k, full_v = np.repeat(wk_g, 2, 1), np.repeat(wv_g, 2, 1)  # (d, 4, dh): the MHA's
    pooled = [wq, impl.mean_pool_kv_heads(full_k, 2), impl.mean_pool_kv_heads(full_v, 2), wo]
    found[POOL] = compare(gqa_layer(impl, x, pooled), expected, **TOLERANCE)
    return found


def check(impl: Answer) -> SolutionReport:
    """Equality with MHA for every grouping, cache size per grouping, toy-task quality."""
    report = SolutionReport(solution="compression.gqa_mqa")
    for name, cmp in reference_comparisons(impl).items():
        report.check_close(
            name,
            cmp,
            "same projections as the Keras layer, other summation order: float32 rounding "
            "(~1e-6 on outputs ~1): atol 1e-5 + rtol 1e-4; query head h must read K/V head "
            "h // (H/G) (tile instead of repeat reads h % G; strided pooling averages heads "
            "of different groups): off by O(0.1); " + cmp.detail,
        )
    _cache_and_quality(report, impl)
    return report


def _cache_and_quality(report: SolutionReport, impl: Answer) -> None:
    """A tiny decoder with G = 4, 2, 1 K/V heads: cache bytes, and loss after brief training."""
    data = make_data()  # (1024, 25): x[i] = x[i-1] + x[i-2] mod 16
    held_out = make_data(SEED + 1, n=256)
    losses, cache_bytes = {}, {}
    models = {}
    for groups in (HEADS, 2, 1):
        config = DecoderConfig(n_layers=TOY.n_layers, n_kv_heads=groups)
        label = {HEADS: "MHA", 2: "GQA-2", 1: "MQA"}[groups]
        model = train_decoder(
            config, data, TOY_EPOCHS, phase=f"train {label}", attention=impl.grouped_query_attention
        )
        models[groups] = model
        losses[groups] = held_out_loss(model, held_out)
        _, cache = decode_step(model, tf.constant(held_out[:8, :16]), None)  # 8 x 16 tokens
        cache_bytes[groups] = cache_nbytes(cache)
        report.metric(
            f"{label} ({groups} K/V heads): KV cache for 8 x 16 tokens", cache_bytes[groups], "B"
        )
        report.metric(f"{label}: held-out loss after {TOY_EPOCHS} epochs", losses[groups])
    for groups in (2, 1):
        report.check(
            f"cache bytes MHA / {groups} group(s)",
            cache_bytes[HEADS] / cache_bytes[groups],
            "==",
            HEADS / groups,
            "guard: the cache holds the K/V heads the layer projects, G per layer and token, "
            f"so H/G = {HEADS // groups} exactly; no grouping code can change it, the check "
            "guards the decoder's cache layout",
        )
    # Conversion of the trained MHA to GQA-2 (no uptraining): mean pooling vs one head kept.
    mha = models[HEADS]
    for how in ("mean-pooled", "first head of each group"):
        converted = build_decoder(
            DecoderConfig(n_layers=TOY.n_layers, n_kv_heads=2),
            attention=impl.grouped_query_attention,
        )
        for layer in (lay for lay in converted.layers if lay.weights):
            source = mha.get_layer(layer.name).get_weights()
            if layer.name.startswith("attn_"):
                wq, wk, wv, wo = source
                if how == "mean-pooled":
                    wk, wv = impl.mean_pool_kv_heads(wk, 2), impl.mean_pool_kv_heads(wv, 2)
                else:
                    wk, wv = wk[:, ::2], wv[:, ::2]
                source = [wq, wk, wv, wo]
            layer.set_weights(source)
        report.metric(
            f"MHA converted to GQA-2, {how}, no uptraining: held-out loss",
            held_out_loss(converted, held_out),
        )
    report.metric("uniform prediction loss ln(16)", float(np.log(16)))


def held_out_loss(model: keras.Model, sequences: np.ndarray) -> float:
    """Mean next-token cross-entropy (nats) of ``model`` on ``sequences`` (N, T)."""
    logits = model(sequences[:, :-1], training=False)  # (N, T-1, vocab)
    loss = keras.losses.sparse_categorical_crossentropy(sequences[:, 1:], logits, from_logits=True)
    return float(tf.reduce_mean(loss))


if __name__ == "__main__":
    print_check_of(__name__)
