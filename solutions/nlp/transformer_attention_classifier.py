"""Multi-head self-attention written by hand, proved equal to Keras, in a Transformer classifier.

The attention layer projects the inputs to queries, keys and values, splits them into
heads, computes softmax(Q K^T / sqrt(d_k)) V with padded keys masked out, merges the heads
and projects back. Loaded with the weights of a ``keras.layers.MultiHeadAttention``
(random, scaled like a real initialisation, non-zero biases), it gives Keras' output to
float32 rounding (within 1e-5 + 1e-5 * |expected| on outputs of order 1) on random inputs,
with and without a padding mask. Two Transformer blocks built on it (attention +
feed-forward, residuals, LayerNorm) over token + learned position embeddings, and a
masked mean pooling, classify sentences whose label depends on word order (which word
"not" negates) with >= 90% held-out accuracy, above what any bag of words can reach; the
position table is a trainable weight that training moves.
"""

# mypy: disallow-subclassing-any=False
# (keras.layers.Layer is Any: TensorFlow ships no type stubs)

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.synthetic.text import SPECIAL_TOKENS, encode_words, negation_sentences, word_vocab

SEED = 0
MAX_LEN = 16  # [CLS] + up to 13 words + [SEP], padded
PAD_ID = SPECIAL_TOKENS.index("[PAD]")
D_MODEL = 64
NUM_HEADS = 4
NUM_LAYERS = 2
EPOCHS = 3
BATCH_SIZE = 32
LEARNING_RATE = 1e-3


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_attention", "build_classifier", "train")


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def build_attention(self, num_heads: int, key_dim: int) -> keras.layers.Layer: ...

    def build_classifier(self, vocab_size: int, max_len: int, num_classes: int) -> keras.Model: ...

    def train(
        self, model: keras.Model, ids: np.ndarray, labels: np.ndarray, *, callbacks: list[Any]
    ) -> keras.callbacks.History: ...


# -----------------------------------------------------------------------------
# The answer: multi-head self-attention, a Transformer classifier, training


class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention: x (B, T, d) and padding mask (B, T) -> (B, T, d)."""

    def __init__(self, num_heads: int, key_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim  # size of ONE head

    def build(self, input_shape: tf.TensorShape) -> None:
        d_model = int(input_shape[-1])
        width = self.num_heads * self.key_dim
        # All heads' projections in one matrix each: (d, H * d_k), head h = columns h*d_k...
        self.query_dense = keras.layers.Dense(width, name="query")
        self.key_dense = keras.layers.Dense(width, name="key")
        self.value_dense = keras.layers.Dense(width, name="value")
        self.output_dense = keras.layers.Dense(d_model, name="attention_output")
        for layer, size in [
            (self.query_dense, d_model),
            (self.key_dense, d_model),
            (self.value_dense, d_model),
            (self.output_dense, width),
        ]:
            layer.build((None, None, size))
        super().build(input_shape)

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        """(B, T, H * d_k) -> (B, H, T, d_k)."""
        batch, length = tf.shape(x)[0], tf.shape(x)[1]  # dynamic: never a Python batch_size
        x = tf.reshape(x, (batch, length, self.num_heads, self.key_dim))  # (B, T, H, d_k)
        return tf.transpose(x, (0, 2, 1, 3))  # (B, H, T, d_k)

    def call(self, x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        q = self.split_heads(self.query_dense(x))  # (B, H, T, d_k)
        k = self.split_heads(self.key_dense(x))  # (B, H, T, d_k)
        v = self.split_heads(self.value_dense(x))  # (B, H, T, d_k)
        # Scale by sqrt(d_k): dot products of d_k-dim vectors grow like sqrt(d_k), and
        # large logits saturate the softmax (one-hot weights, vanishing gradients).
        q = q * (1.0 / np.sqrt(self.key_dim))
        scores = tf.matmul(q, k, transpose_b=True)  # (B, H, T_query, T_key)
        if mask is not None:
            # mask (B, T): 1 for real tokens. A padded KEY gets -1e9 before the softmax,
            # i.e. weight 0 for every query; (B, 1, 1, T) broadcasts over heads and queries.
            keep = tf.cast(mask, scores.dtype)[:, None, None, :]
            scores += (1.0 - keep) * -1e9
        weights = tf.nn.softmax(scores, axis=-1)  # (B, H, T, T), rows sum to 1
        # (Attention dropout, if any, goes HERE, on the weights after the softmax.)
        heads = tf.matmul(weights, v)  # (B, H, T, d_k)
        heads = tf.transpose(heads, (0, 2, 1, 3))  # (B, T, H, d_k)
        merged = tf.reshape(heads, (tf.shape(x)[0], tf.shape(x)[1], -1))  # (B, T, H * d_k)
        return self.output_dense(merged)  # (B, T, d)


def build_attention(num_heads: int, key_dim: int) -> keras.layers.Layer:
    """A multi-head self-attention layer, called as ``layer(x, mask=None)``.

    ``x`` (B, T, d) float32, ``mask`` (B, T) bool or int (1 = real token, 0 = padding) or
    None; returns (B, T, d) float32. Once built, ``get_weights()`` is
    ``[W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o]`` with ``W_q`` (d, H * key_dim), ``b_q``
    (H * key_dim,), likewise for K and V, ``W_o`` (H * key_dim, d), ``b_o`` (d,); head h
    uses columns ``h * key_dim : (h + 1) * key_dim``.
    """
    return MultiHeadSelfAttention(num_heads, key_dim)


class TransformerBlock(keras.layers.Layer):
    """Post-LayerNorm encoder block: x (B, T, d), mask (B, T) -> (B, T, d)."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attention = build_attention(num_heads, d_model // num_heads)
        self.attention_norm = keras.layers.LayerNormalization()
        self.ffn_in = keras.layers.Dense(ff_dim, activation="relu")  # expand (seed: no expansion)
        self.ffn_out = keras.layers.Dense(d_model)
        self.ffn_norm = keras.layers.LayerNormalization()

    def call(self, x: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        x = self.attention_norm(x + self.attention(x, mask=mask))  # residual around attention
        # x + Sublayer(x) for EACH sublayer: the FFN's skip carries ITS input (the attention
        # sublayer's output). The seed's skip added the block's input instead, so the
        # attention output bypassed the skip and reached the block's output only through
        # the FFN (inputs + FFN(inputs + attn)).
        return self.ffn_norm(x + self.ffn_out(self.ffn_in(x)))


class TokenAndPositionEmbedding(keras.layers.Layer):
    """ids (B, T) int -> token + learned position embeddings (B, T, d)."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = keras.layers.Embedding(vocab_size, d_model)
        self.positions = keras.layers.Embedding(max_len, d_model)  # attention is order-blind

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        # Looked up HERE, in call, so the (max_len, d) table is this layer's weight and is
        # trained. Called on tf.range outside any layer while a functional model is built,
        # the Embedding would run once, eagerly, and enter the graph as a frozen constant.
        return self.tokens(ids) + self.positions(tf.range(tf.shape(ids)[1]))[None]


def build_classifier(vocab_size: int, max_len: int, num_classes: int) -> keras.Model:
    """A Transformer encoder classifier: ids (B, T) int32 (0 = [PAD]) -> logits (B, num_classes)."""
    ids = keras.layers.Input((max_len,), dtype="int32")  # int ids (the seed's Input was float)
    mask = keras.layers.Lambda(lambda t: tf.cast(tf.not_equal(t, PAD_ID), tf.float32))(ids)
    x = TokenAndPositionEmbedding(vocab_size, max_len, D_MODEL)(ids)  # (B, T, d)
    for _ in range(NUM_LAYERS):
        x = TransformerBlock(D_MODEL, NUM_HEADS, ff_dim=2 * D_MODEL)(x, mask)
    # Mean over REAL tokens: a plain GlobalAveragePooling1D (the seed) also averages pads.
    pooled = keras.layers.Lambda(
        lambda t: (
            tf.reduce_sum(t[0] * t[1][..., None], axis=1)
            / tf.reduce_sum(t[1], axis=1, keepdims=True)
        )
    )([x, mask])  # (B, d)
    logits = keras.layers.Dense(num_classes)(pooled)  # (B, C) logits, no softmax
    return keras.Model(ids, logits)


def train(
    model: keras.Model,
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Train ``model`` in place on token ids (N, T) int32 and int labels (N,)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model.fit(
        ids,
        labels,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> tuple[synthetic.Split, list[str]]:
    """Token ids: train (2048, MAX_LEN), test (512, MAX_LEN) int32, labels in {0, 1}; vocab."""
    text = negation_sentences(n_train=2048, n_test=512, seed=seed)
    vocab = word_vocab(text.x_train)
    return (
        synthetic.Split(
            encode_words(text.x_train, vocab, MAX_LEN),
            text.y_train,
            encode_words(text.x_test, vocab, MAX_LEN),
            text.y_test,
        ),
        vocab,
    )


def keras_weights_as_dense(mha: keras.layers.MultiHeadAttention) -> list[np.ndarray]:
    """A Keras MultiHeadAttention's weights in the layout of ``build_attention``'s docstring.

    Keras keeps the heads as an axis: query kernel (d, H, d_k), bias (H, d_k), output
    kernel (H, d_k, d). Flattening (H, d_k) head-major gives the (d, H * d_k) matrices.
    """
    wq, bq, wk, bk, wv, bv, wo, bo = mha.get_weights()
    d = wq.shape[0]
    return [
        wq.reshape(d, -1),
        bq.reshape(-1),
        wk.reshape(d, -1),
        bk.reshape(-1),
        wv.reshape(d, -1),
        bv.reshape(-1),
        wo.reshape(-1, d),
        bo,
    ]


def scaled_random_weights(
    mha: keras.layers.MultiHeadAttention, g: np.random.Generator
) -> list[np.ndarray]:
    """Random weights for ``mha`` at the scale of a real initialisation, biases non-zero.

    Kernels N(0, 1/fan_in) keep every projection's output of order 1 (unscaled N(0, 1)
    kernels grow it by sqrt(fan_in) per projection, to |out| ~ 100, where a float32 ulp
    is ~1e-5). Biases N(0, 0.1^2): Keras initialises them to 0, which would hide a
    missing bias, and 0.1 still moves the output far beyond float rounding.
    """
    wq, bq, wk, bk, wv, bv, wo, bo = mha.get_weights()
    d, width = wq.shape[0], wo.shape[0] * wo.shape[1]  # fan-ins: d for Q/K/V, H * d_k for W_o

    def kernel(w: np.ndarray, fan_in: int) -> np.ndarray:
        k: np.ndarray = g.normal(size=w.shape) / np.sqrt(fan_in)
        return k

    def bias(b: np.ndarray) -> np.ndarray:
        return 0.1 * g.normal(size=b.shape)

    return [
        kernel(wq, d), bias(bq), kernel(wk, d), bias(bk),
        kernel(wv, d), bias(bv), kernel(wo, width), bias(bo),
    ]  # fmt: skip


# Float32 rounding, not exact equality: Keras computes the projections and heads with einsum,
# summing in another order than these matmuls, and CPU kernels (oneDNN on or off, AVX2 or
# AVX-512) sum in different orders. Outputs and intermediates are of order
# 1, so 1e-5 is ~80 float32 ulps (eps 1.2e-7) there; rtol covers the larger outputs.
ATOL, RTOL = 1e-5, 1e-5
NO_MASK = "attention vs Keras MultiHeadAttention, no mask"
PADDING_MASK = "attention vs Keras MultiHeadAttention, padding mask"


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """impl's attention vs Keras MultiHeadAttention with the same weights: no mask, padding mask."""
    g = synthetic.rng(SEED)
    batch, length, d_model, heads, key_dim = 4, 10, 32, 4, 8
    x = g.normal(size=(batch, length, d_model)).astype(np.float32)  # (B, T, d)
    lengths = np.array([10, 7, 3, 1])  # real tokens per row; the rest is padding
    mask = np.arange(length)[None, :] < lengths[:, None]  # (B, T) bool

    keras.utils.set_random_seed(SEED)
    reference = keras.layers.MultiHeadAttention(heads, key_dim)
    reference(x, x)  # build
    reference.set_weights(scaled_random_weights(reference, g))
    layer = impl.build_attention(heads, key_dim)
    layer(x)  # build
    layer.set_weights(keras_weights_as_dense(reference))

    expected = reference(x, x).numpy()
    got = np.asarray(layer(x))
    # Keras' attention_mask is (B, T_query, T_key): every query ignores the padded keys.
    expected_masked = reference(x, x, attention_mask=mask[:, None, :]).numpy()
    got_masked = np.asarray(layer(x, mask=mask))
    return {
        NO_MASK: compare(got, expected, ATOL, RTOL),
        PADDING_MASK: compare(got_masked, expected_masked, ATOL, RTOL),
    }


def position_tables(model: keras.Model, vocab_size: int, max_len: int) -> list[tf.Variable]:
    """``model``'s TRAINABLE position tables: (max_len, d) weights, d = its token table's width.

    A table looked up outside a layer's ``call`` (an Embedding called on ``tf.range`` while
    a functional model is built) is a constant in the graph, not a weight: none is found.
    """
    widths = {
        int(w.shape[1]) for w in model.weights if w.shape.rank == 2 and w.shape[0] == vocab_size
    }
    return [
        w
        for w in model.trainable_weights
        if w.shape.rank == 2 and int(w.shape[0]) == max_len and int(w.shape[1]) in widths
    ]


def report_position_table(
    report: SolutionReport, tables: list[tf.Variable], before: list[np.ndarray], min_change: float
) -> None:
    """Checks that the position embedding is learned: a trainable table, moved by training.

    ``before``: the tables' values before training. ``min_change``: the least max |change|
    that counts as trained (Adam moves a weight by at most about lr a step). Both halves
    after training; a ``check`` that can stop early calls ``report_position_table_trainable``
    as soon as the model is built and ``report_position_table_trained`` after training.
    """
    report_position_table_trainable(report, tables)
    report_position_table_trained(report, tables, before, min_change)


def report_position_table_trainable(report: SolutionReport, tables: list[tf.Variable]) -> None:
    """Checks that the model has a trainable position table: measurable before training."""
    report.metric("trainable position tables", len(tables))
    report.check(
        "position table is a trainable weight",
        len(tables),
        ">=",
        1,
        "a learned (max_len, d_model) table in model.trainable_weights; an Embedding called "
        "on tf.range outside a layer's call is a frozen constant and lands at 0",
    )


def report_position_table_trained(
    report: SolutionReport, tables: list[tf.Variable], before: list[np.ndarray], min_change: float
) -> None:
    """Checks that training moved the position tables (``before``: their values before it)."""
    change = max(
        (float(np.abs(t.numpy() - b).max()) for t, b in zip(tables, before, strict=True)),
        default=0.0,
    )
    report.metric("position table max |change| in training", change)
    report.check(
        "training changed the position table",
        change,
        ">=",
        min_change,
        f"max |change| of the table; {min_change:g} is ten Adam steps at lr 1e-3; a frozen "
        "or missing table lands at 0",
    )


def check(impl: Answer) -> SolutionReport:
    """Hand-written attention vs Keras; learned positions; the classifier's held-out accuracy."""
    report = SolutionReport(solution="nlp.transformer_attention_classifier")
    _attention_vs_keras(report, impl)
    _classifier(report, impl)
    return report


def _attention_vs_keras(report: SolutionReport, impl: Answer) -> None:
    """impl's attention layer vs Keras MultiHeadAttention with the same weights."""
    comparisons = reference_comparisons(impl)
    # Where the wrong answers land (tolerance used): the reason each bound is what it is.
    why = {
        NO_MASK: "without the 1/sqrt(d_k) scale it lands at ~8e4 (|diff| 1.6), without "
        "the biases at ~3e4 (|diff| 0.3)",
        PADDING_MASK: "a layer that ignores the mask lands at ~1e5 (|diff| 2.1)",
    }
    for name, cmp in comparisons.items():
        report.metric(f"max |diff|, {name}", cmp.max_abs_diff)
        report.check_close(
            name,
            cmp,
            f"|diff| <= {ATOL:g} + {RTOL:g}·|Keras|: float32 rounding of O(1) values summed in "
            f"another order; {why[name]}; {cmp.detail}",
        )


def _classifier(report: SolutionReport, impl: Answer) -> None:
    """The Transformer classifier: a trainable position table, moved by training, and
    held-out accuracy above any bag of words."""
    data, vocab = make_data()
    keras.utils.set_random_seed(SEED)
    model = impl.build_classifier(len(vocab), MAX_LEN, data.num_classes)
    tables = position_tables(model, len(vocab), MAX_LEN)
    report_position_table_trainable(report, tables)
    before = [t.numpy().copy() for t in tables]
    with report.timed("train wall time"):
        impl.train(
            model,
            data.x_train,
            data.y_train,
            callbacks=[events.keras_callback("train Transformer classifier")],
        )
    report_position_table_trained(report, tables, before, min_change=1e-2)
    logits = np.asarray(model.predict(data.x_test, batch_size=256, verbose=0))  # (N, 2)
    test_acc = float((logits.argmax(-1) == data.y_test).mean())

    report.metric("chance accuracy", 1.0 / data.num_classes)
    report.check(
        "test accuracy",
        test_acc,
        ">=",
        0.9,
        "learns which word 'not' negates; a bag of words cannot exceed 0.75 here",
    )
    report.metric("parameters", int(model.count_params()))


if __name__ == "__main__":
    print_check_of(__name__)
