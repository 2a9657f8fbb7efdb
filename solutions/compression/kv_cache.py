"""KV cache: generate with a decoder-only transformer in O(t) work per new token.

A causal decoder's output at position i depends only on tokens 0..i, so the keys and values
that layer l computed for the earlier positions never change. Generation without a cache
re-runs the whole prefix for every new token: step t costs O(t * d^2 + t^2 * d), the whole
sequence O(T^2 * d^2 + T^3 * d). With a cache, each step projects only the new token, appends
its K and V to the cache of every layer, and lets its query attend over the t cached keys:
O(d^2 + t * d) per token. The price is memory: 2 (K and V) * L layers * n_kv heads * d_head
* bytes, per token of the sequence, per sequence in the batch.

The answer is ``decode_step`` (run n new tokens through the model against a cache, prefill
and single-token steps alike) and ``generate_with_cache`` (greedy generation with it). The
checks run a tiny 2-layer decoder trained briefly on a synthetic rule (each token is the sum
of the two before it, mod 16), so greedy generation is not trivial, and prove:
the greedy tokens are exactly those of full recomputation, the logits agree to float32
precision, prefill and chunked decoding (n > 1 new tokens against a cache, as speculative
decoding's verification needs) agree with the full forward pass, the cache holds exactly
2 * L * n_kv * d_head * 4 bytes per token, and the matmul FLOPs of one decode step grow by
exactly 4 * L * d_model per cached token (counted in the traced graph), while a full
recomputation grows by the whole model per token. Wall time per token is measured, cached
and recomputed, as a metric only.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.fit import fit_classifier
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
PROMPT_LEN = 8
NEW_TOKENS = 16  # prompt + new tokens = 24 positions, all seen in training
BATCH = 8
TRAIN_LENGTH = 25  # training sequences: inputs are the first 24 tokens
EPOCHS = 4
STEPS_BEFORE_BYTES = 4  # single-token steps after the prefill before the cache is weighed
TIMING_REPEATS = 15
FLOP_LENGTHS = (16, 48)  # cache lengths at which one decode step's FLOPs are counted
BYTES_FP32 = 4

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("decode_step", "generate_with_cache")

# -----------------------------------------------------------------------------
# The answer: one decode step against the cache, and greedy generation with it


def decode_step(
    model: keras.Model, tokens: tf.Tensor, cache: list[tuple[tf.Tensor, tf.Tensor]] | None
) -> tuple[tf.Tensor, list[tuple[tf.Tensor, tf.Tensor]]]:
    """Run ``tokens`` (B, n) int32, the next n tokens of each sequence, through ``model``.

    ``model`` is a decoder from ``build_decoder``: layers "tok_emb", "pos_emb", then per
    block i "ln1_i", "attn_i" (a ``CausalSelfAttention``: wq (d, H, dh), wk and wv (d, G, dh),
    wo (H, dh, d), no biases), "ln2_i", "ff_in_i", "ff_out_i"; then "ln_f", "lm_head".
    ``cache``: one (k, v) pair per block, each (B, G, t, dh) float32 for the t tokens already
    seen, or None before the first call (t = 0). Returns the logits (B, n, vocab) at the n
    new positions and the cache extended to t + n tokens. TF ops only: the check traces it
    with ``tf.function`` to count its FLOPs.
    """
    t = 0 if cache is None else int(cache[0][0].shape[2])  # tokens already cached
    n = int(tokens.shape[1])
    # The new tokens sit at positions t .. t+n-1: the position index advances with the cache.
    positions = tf.range(t, t + n)  # (n,)
    x = model.get_layer("tok_emb")(tokens) + model.get_layer("pos_emb")(positions)  # (B, n, d)
    new_cache = []
    for i in range(len([lay for lay in model.layers if lay.name.startswith("attn_")])):
        attn = model.get_layer(f"attn_{i}")
        h = model.get_layer(f"ln1_{i}")(x)  # (B, n, d)
        q = tf.einsum("bnd,dhk->bhnk", h, attn.wq)  # (B, H, n, dh)
        k = tf.einsum("bnd,dgk->bgnk", h, attn.wk)  # (B, G, n, dh): only the new tokens'
        v = tf.einsum("bnd,dgk->bgnk", h, attn.wv)  # (B, G, n, dh)
        if cache is not None:  # append to what earlier steps computed; nothing is redone
            k = tf.concat([cache[i][0], k], axis=2)  # (B, G, t+n, dh)
            v = tf.concat([cache[i][1], v], axis=2)  # (B, G, t+n, dh)
        new_cache.append((k, v))
        # Query j (absolute position t+j) may see keys 0..t+j: the causal mask is aligned to
        # the bottom right of the (n, t+n) score matrix, not the top left.
        mask = tf.range(t + n)[None, :] <= (t + tf.range(n))[:, None]  # (n, t+n)
        out = attend(q, k, v, mask)  # (B, H, n, dh)
        x = x + tf.einsum("bhnk,hkd->bnd", out, attn.wo)  # (B, n, d)
        h = model.get_layer(f"ln2_{i}")(x)
        x = x + model.get_layer(f"ff_out_{i}")(model.get_layer(f"ff_in_{i}")(h))  # (B, n, d)
    logits = model.get_layer("lm_head")(model.get_layer("ln_f")(x))  # (B, n, vocab)
    return logits, new_cache


def generate_with_cache(
    model: keras.Model, prompt: np.ndarray, n_new: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy generation of ``n_new`` tokens after ``prompt`` (B, P) int32, with a KV cache.

    One prefill call over the prompt, then one ``decode_step`` per new token (n = 1).
    Returns the tokens (B, n_new) int32 and the logits (B, n_new, vocab) float32 each of them
    was chosen from.
    """
    logits, cache = decode_step(model, tf.constant(prompt, tf.int32), None)  # prefill: t = P
    last = logits[:, -1]  # (B, vocab): the prediction for position P
    tokens, all_logits = [], []
    for step in range(n_new):
        token = tf.argmax(last, axis=-1, output_type=tf.int32)  # (B,)
        tokens.append(token)
        all_logits.append(last)
        if step + 1 < n_new:  # the last token's K/V would only serve a token not generated
            logits, cache = decode_step(model, token[:, None], cache)  # (B, 1, vocab)
            last = logits[:, 0]
    return np.stack(tokens, axis=1), np.stack(all_logits, axis=1)


# -----------------------------------------------------------------------------
# The tiny decoder-only transformer (pre-LayerNorm, learned positions, grouped K/V heads)


@dataclass(frozen=True)
class DecoderConfig:
    vocab: int = 16
    d_model: int = 32
    n_heads: int = 4  # H query heads, d_head = d_model / H
    n_kv_heads: int = 4  # G key/value heads: H (multi-head), 1 (multi-query), or between
    n_layers: int = 2
    d_ff: int = 64
    max_len: int = 64

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def cache_bytes_per_token(self, bytes_per_value: int = BYTES_FP32) -> int:
        """2 (K and V) * L * n_kv * d_head * bytes: what each token adds to the cache."""
        return 2 * self.n_layers * self.n_kv_heads * self.d_head * bytes_per_value


def attend(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Scaled dot-product attention with K/V heads shared by groups of query heads.

    q (B, H, n, dh), k and v (B, G, s, dh) with H a multiple of G, mask (n, s) bool (True:
    may attend). Query head h reads K/V head h // (H / G): each K/V head is repeated for its
    H / G consecutive query heads. Returns (B, H, n, dh).
    """
    group = q.shape[1] // k.shape[1]
    k = tf.repeat(k, group, axis=1)  # (B, H, s, dh): kv head g serves heads g*group ..
    v = tf.repeat(v, group, axis=1)
    scores = tf.einsum("bhnk,bhsk->bhns", q, k) / np.sqrt(q.shape[-1])  # (B, H, n, s)
    scores = tf.where(mask, scores, tf.constant(-1e9, scores.dtype))
    return tf.einsum("bhns,bhsk->bhnk", tf.nn.softmax(scores, axis=-1), v)  # (B, H, n, dh)


class CausalSelfAttention(keras.layers.Layer):  # type: ignore[misc]
    """Causal self-attention over a whole sequence (B, T, d) -> (B, T, d): the full forward
    pass that training and full recomputation use. ``attention`` replaces ``attend``'s
    grouping (q, k, v, n_groups) -> output, for a question that writes its own."""

    def __init__(self, config: DecoderConfig, attention: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.attention = attention

    def build(self, input_shape: Any) -> None:
        c = self.config

        def init() -> keras.initializers.Initializer:
            # A fresh initializer per weight: one unseeded instance called again returns the
            # same values, which would start wq, wk and wv equal.
            return keras.initializers.RandomNormal(stddev=0.08)

        self.wq = self.add_weight(
            name="wq", shape=(c.d_model, c.n_heads, c.d_head), initializer=init()
        )
        self.wk = self.add_weight(
            name="wk", shape=(c.d_model, c.n_kv_heads, c.d_head), initializer=init()
        )
        self.wv = self.add_weight(
            name="wv", shape=(c.d_model, c.n_kv_heads, c.d_head), initializer=init()
        )
        self.wo = self.add_weight(
            name="wo", shape=(c.n_heads, c.d_head, c.d_model), initializer=init()
        )

    def call(self, x: tf.Tensor) -> tf.Tensor:
        q = tf.einsum("btd,dhk->bhtk", x, self.wq)  # (B, H, T, dh)
        k = tf.einsum("btd,dgk->bgtk", x, self.wk)  # (B, G, T, dh)
        v = tf.einsum("btd,dgk->bgtk", x, self.wv)  # (B, G, T, dh)
        if self.attention is not None:
            out = self.attention(q, k, v, self.config.n_kv_heads)  # (B, H, T, dh), causal
        else:
            length = tf.shape(x)[1]
            mask = tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)  # (T, T)
            out = attend(q, k, v, mask)
        return tf.einsum("bhtk,hkd->btd", out, self.wo)  # (B, T, d)


def build_decoder(config: DecoderConfig, seed: int = SEED, attention: Any = None) -> keras.Model:
    """tokens (B, T) int32 -> logits (B, T, vocab), T <= max_len."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    positions = keras.layers.Lambda(lambda t: tf.range(tf.shape(t)[1]), name="positions")(tokens)
    x = keras.layers.Embedding(config.vocab, config.d_model, name="tok_emb")(tokens)
    x = x + keras.layers.Embedding(config.max_len, config.d_model, name="pos_emb")(positions)
    for i in range(config.n_layers):
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln1_{i}")(x)
        x = x + CausalSelfAttention(config, attention, name=f"attn_{i}")(h)
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln2_{i}")(x)
        h = keras.layers.Dense(config.d_ff, activation="relu", name=f"ff_in_{i}")(h)
        x = x + keras.layers.Dense(config.d_model, name=f"ff_out_{i}")(h)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")(x)
    logits = keras.layers.Dense(config.vocab, use_bias=False, name="lm_head")(x)
    return keras.Model(tokens, logits, name="tiny_decoder")


# -----------------------------------------------------------------------------
# Data and training: a rule that needs the two previous tokens


def make_data(
    seed: int = SEED, n: int = 1024, length: int = TRAIN_LENGTH, vocab: int = 16
) -> np.ndarray:
    """(n, length) int32 sequences: two random tokens, then x[i] = (x[i-1] + x[i-2]) % vocab."""
    r = synthetic.rng(seed)
    x = np.zeros((n, length), np.int32)
    x[:, :2] = r.integers(0, vocab, (n, 2))
    for i in range(2, length):
        x[:, i] = (x[:, i - 1] + x[:, i - 2]) % vocab
    return x


def train_decoder(
    config: DecoderConfig,
    sequences: np.ndarray,
    epochs: int,
    phase: str,
    seed: int = SEED,
    attention: Any = None,
) -> keras.Model:
    """A decoder trained on next-token prediction over ``sequences`` (N, T): inputs the first
    T - 1 tokens, labels the last T - 1 (every position predicts the next token)."""
    model = build_decoder(config, seed, attention)
    fit_classifier(
        model,
        sequences[:, :-1],  # (N, T-1)
        sequences[:, 1:],  # (N, T-1)
        epochs=epochs,
        batch_size=64,
        phase=phase,
        learning_rate=3e-3,
    )
    return model


def full_recompute_greedy(model: keras.Model, prompt: np.ndarray, n_new: int) -> np.ndarray:
    """Greedy generation without a cache: the whole prefix through the model for every token.

    Returns the tokens (B, n_new) int32: the reference the cached generation must equal.
    """
    seq = np.asarray(prompt, np.int32)  # (B, P)
    for _ in range(n_new):
        logits = model(seq, training=False)[:, -1]  # (B, vocab): prediction for the next one
        seq = np.concatenate([seq, np.argmax(logits, -1).astype(np.int32)[:, None]], axis=1)
    return seq[:, prompt.shape[1] :]


# -----------------------------------------------------------------------------
# Counting work: the matmul FLOPs in a traced graph


def matmul_flops(graph: tf.Graph) -> int:
    """2 * multiply-adds of every MatMul, BatchMatMul and Einsum in ``graph`` (static shapes).

    Element-wise work (softmax, LayerNorm, adds) is left out: it is O(t * d) at most per
    token, like the attention, and a smaller constant. For a two-operand einsum the
    multiply-adds are the product of the sizes of all its distinct indices.
    """
    total = 0
    for op in graph.get_operations():
        if op.type == "MatMul":
            a = op.inputs[0].shape
            inner = a[0] if op.get_attr("transpose_a") else a[1]
            total += 2 * int(np.prod(op.outputs[0].shape)) * int(inner)
        elif op.type in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
            a = op.inputs[0].shape
            inner = a[-2] if op.get_attr("adj_x") else a[-1]
            total += 2 * int(np.prod(op.outputs[0].shape)) * int(inner)
        elif op.type == "Einsum":
            operands = op.get_attr("equation").decode().split("->")[0].split(",")
            sizes: dict[str, int] = {}
            for labels, tensor in zip(operands, op.inputs, strict=True):
                sizes.update(zip(labels, (int(d) for d in tensor.shape), strict=True))
            total += 2 * int(np.prod(list(sizes.values())))
    return total


def traced_step(impl: Answer, model: keras.Model, t: int) -> tuple[Any, Any]:
    """``impl.decode_step`` for one token (batch 1) against a cache of ``t`` tokens, traced.

    The cache is the one ``impl`` itself builds by a prefill of ``t`` tokens, so whatever it
    keeps (and in whatever layout) is what the traced step reads. Returns the concrete
    function (tokens (1, 1), cache) -> logits and that cache.
    """
    prefix = tf.constant(np.arange(t, dtype=np.int32)[None] % 16)  # (1, t)
    _, cache = impl.decode_step(model, prefix, None)
    cache_spec = tf.nest.map_structure(lambda x: tf.TensorSpec(x.shape, x.dtype), cache)
    step = tf.function(lambda tokens, cache: impl.decode_step(model, tokens, cache)[0])
    return step.get_concrete_function(tf.TensorSpec((1, 1), tf.int32), cache_spec), cache


def traced_full(model: keras.Model, length: int) -> Any:
    """The model's full forward pass over ``length`` tokens (batch 1), traced."""
    forward = tf.function(lambda tokens: model(tokens, training=False))
    return forward.get_concrete_function(tf.TensorSpec((1, length), tf.int32))


def median_ms(fn: Any, *args: Any) -> float:
    """Median wall time in ms of ``fn(*args)`` over TIMING_REPEATS calls, after a warm-up."""
    fn(*args)
    times = []
    for _ in range(TIMING_REPEATS):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cache_nbytes(cache: list[tuple[tf.Tensor, tf.Tensor]]) -> int:
    """Bytes actually held by the cache tensors."""
    return sum(int(np.asarray(k).nbytes) + int(np.asarray(v).nbytes) for k, v in cache)


# -----------------------------------------------------------------------------
# The checks


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def decode_step(
        self,
        model: keras.Model,
        tokens: tf.Tensor,
        cache: list[tuple[tf.Tensor, tf.Tensor]] | None,
    ) -> tuple[tf.Tensor, list[tuple[tf.Tensor, tf.Tensor]]]: ...

    def generate_with_cache(
        self, model: keras.Model, prompt: np.ndarray, n_new: int
    ) -> tuple[np.ndarray, np.ndarray]: ...


PREFILL = "prefill logits vs full forward pass"
CHUNK = "chunked decode (4 tokens against a cache of 8) vs full forward pass"
GREEDY_LOGITS = "cached greedy logits vs full recomputation"
TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}


def trained_model() -> keras.Model:
    """The 2-layer decoder of DecoderConfig(), trained EPOCHS epochs on ``make_data()``."""
    model = build_decoder(DecoderConfig())
    model.set_weights(trained_weights())
    return model


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def trained_weights() -> list[np.ndarray]:
    model = train_decoder(DecoderConfig(), make_data(), EPOCHS, phase="train tiny decoder")
    return list(model.get_weights())


def prompts(seed: int = SEED + 1) -> np.ndarray:
    """(BATCH, PROMPT_LEN) int32 prompts: starts of fresh sequences that follow the rule."""
    return make_data(seed, n=BATCH, length=PROMPT_LEN)


def reference_comparisons(impl: Answer, model: keras.Model | None = None) -> dict[str, Comparison]:
    """``impl``'s cached computation vs the model's full forward pass over the same tokens.

    Logits of order 10 after two blocks; the cached path sums the same products as the full
    pass but in other shapes (a (1, t) score row instead of a (T, T) matrix, concatenated
    K/V), so they differ by float32 rounding (measured: ~6e-6): atol 1e-4 + rtol 1e-4. A
    wrong position, mask or cache changes logits by O(1).
    """
    model = trained_model() if model is None else model
    prompt = prompts()  # (B, P)
    full_prompt = model(prompt, training=False).numpy()  # (B, P, vocab)
    prefill, cache = impl.decode_step(model, tf.constant(prompt), None)
    # A chunk of 4 tokens in one call against the prefilled cache: each must see the cache
    # and the chunk tokens before it (speculative decoding verifies its draft this way).
    chunk_tokens = make_data(SEED + 1, n=BATCH, length=PROMPT_LEN + 4)  # (B, P+4)
    chunk, _ = impl.decode_step(model, tf.constant(chunk_tokens[:, PROMPT_LEN:]), cache)
    full_chunk = model(chunk_tokens, training=False).numpy()[:, PROMPT_LEN:]  # (B, 4, vocab)
    tokens, logits = impl.generate_with_cache(model, prompt, NEW_TOKENS)
    # Teacher-forced over the generated tokens: the logits each token was chosen from.
    sequence = np.concatenate([prompt, np.asarray(tokens, np.int32)], axis=1)[:, :-1]
    full_greedy = model(sequence, training=False).numpy()[:, PROMPT_LEN - 1 :]
    return {
        PREFILL: compare(np.asarray(prefill), full_prompt, **TOLERANCE),
        CHUNK: compare(np.asarray(chunk), full_chunk, **TOLERANCE),
        GREEDY_LOGITS: compare(np.asarray(logits), full_greedy, **TOLERANCE),
    }


def check(impl: Answer) -> SolutionReport:
    """Cached generation with ``impl`` on a trained tiny decoder: tokens, logits, bytes, work."""
    report = SolutionReport(solution="compression.kv_cache")
    config = DecoderConfig()
    model = trained_model()
    report.metric("decoder parameters", int(model.count_params()))
    _equality(report, impl, model)
    _cache_bytes(report, impl, model, config)
    _work(report, impl, model, config)
    return report


def _equality(report: SolutionReport, impl: Answer, model: keras.Model) -> None:
    """1. Cached generation = full recomputation: the same greedy tokens, close logits."""
    prompt = prompts()
    start = time.perf_counter()
    expected = full_recompute_greedy(model, prompt, NEW_TOKENS)  # (B, n_new)
    full_s = time.perf_counter() - start
    start = time.perf_counter()
    tokens, logits = impl.generate_with_cache(model, prompt, NEW_TOKENS)
    cached_s = time.perf_counter() - start
    truth = make_data(SEED + 1, n=BATCH, length=PROMPT_LEN + NEW_TOKENS)[:, PROMPT_LEN:]
    report.metric(
        "generated tokens that follow the rule (model quality)", (expected == truth).mean()
    )
    top2 = np.sort(np.asarray(logits), axis=-1)[..., -2:]
    report.metric(
        "smallest top-1 minus top-2 logit gap (ties would be fragile)",
        float((top2[..., 1] - top2[..., 0]).min()),
    )
    report.metric("eager generation, full recomputation", full_s * 1e3 / NEW_TOKENS, "ms/token")
    report.metric("eager generation, KV cache", cached_s * 1e3 / NEW_TOKENS, "ms/token")
    mismatches = (
        int((np.asarray(tokens) != expected).sum())
        if np.shape(tokens) == expected.shape
        else expected.size
    )
    report.check(
        "greedy tokens: cached vs full recomputation (tokens that differ)",
        mismatches,
        "==",
        0,
        f"{expected.size} tokens ({BATCH} prompts x {NEW_TOKENS}); the cache changes only how "
        "the same numbers are computed, so greedy decoding must pick the same token every "
        "step (the smallest top-1 minus top-2 logit gap, a metric, was 0.002: ~200x the "
        "~1e-5 rounding)",
    )
    for name, cmp in reference_comparisons(impl, model).items():
        report.check_close(
            name,
            cmp,
            "the same sums in other shapes differ by float32 rounding (~6e-6 on logits ~10): "
            "atol 1e-4 + rtol 1e-4; a position index not advanced, a mask aligned top-left "
            "or a cache that drops tokens is off by O(1); " + cmp.detail,
        )


def _cache_bytes(
    report: SolutionReport, impl: Answer, model: keras.Model, config: DecoderConfig
) -> None:
    """2. What the cache holds: 2 * L * n_kv * d_head * 4 bytes per token and sequence."""
    prompt = tf.constant(prompts())
    _, cache = impl.decode_step(model, prompt, None)
    token = prompt[:, -1:]
    for _ in range(STEPS_BEFORE_BYTES):
        _, cache = impl.decode_step(model, token, cache)
    tokens_held = PROMPT_LEN + STEPS_BEFORE_BYTES
    formula = config.cache_bytes_per_token() * BATCH * tokens_held
    measured = cache_nbytes(cache)
    report.metric(
        "KV cache bytes per token (2 * L * n_kv * d_head * 4)", config.cache_bytes_per_token(), "B"
    )
    report.metric(f"KV cache after {tokens_held} tokens x {BATCH} sequences", measured, "B")
    report.check(
        "cache bytes / (2 * L * n_kv * d_head * 4 * batch * tokens)",
        measured / formula,
        "==",
        1.0,
        f"after a prefill of {PROMPT_LEN} and {STEPS_BEFORE_BYTES} single-token steps every "
        f"token's K and V, for each of {config.n_layers} layers and {config.n_kv_heads} heads of "
        f"{config.d_head} float32 values, is held once: exactly {formula} bytes; a cache of the "
        "last token only holds 1/12 of it, a cache of hidden states instead of K/V a different "
        "amount",
    )


def _work(report: SolutionReport, impl: Answer, model: keras.Model, config: DecoderConfig) -> None:
    """3. Work per new token: matmul FLOPs of one step, traced at two cache lengths."""
    short, long = FLOP_LENGTHS
    traced = [traced_step(impl, model, t) for t in FLOP_LENGTHS]
    steps = [step for step, _ in traced]
    fulls = [traced_full(model, t + 1) for t in FLOP_LENGTHS]
    step_flops = [matmul_flops(f.graph) for f in steps]
    full_flops = [matmul_flops(f.graph) for f in fulls]
    slope = (step_flops[1] - step_flops[0]) / (long - short)
    full_slope = (full_flops[1] - full_flops[0]) / (long - short)
    bound = 4 * config.n_layers * config.d_model
    for t, s, f in zip(FLOP_LENGTHS, step_flops, full_flops, strict=True):
        report.metric(f"matmul FLOPs for token {t + 1}: cached step", s)
        report.metric(f"matmul FLOPs for token {t + 1}: full recomputation", f)
    report.metric(
        "full recomputation / cached step FLOPs at token 49", full_flops[1] / step_flops[1], "x"
    )
    report.metric("full recomputation: extra FLOPs per extra token of context", full_slope)
    report.check(
        "cached step: extra FLOPs per extra cached token",
        slope,
        "<=",
        bound,
        f"one query against t cached keys: q.k scores (2 * d_model FLOPs per key) and the "
        f"weighted sum of values (2 * d_model per value) in each of {config.n_layers} layers: "
        f"4 * L * d_model = {bound} per cached token, O(t) per step; every projection and MLP "
        f"is for the new token only. Recomputing K/V (or the whole prefix) adds "
        f"O(d_model^2) per cached token ({full_slope:.0f} for the full pass)",
    )
    # Wall time of the traced functions, here and now: a metric, never a check.
    one = tf.constant([[1]], tf.int32)
    cached_ms = median_ms(steps[1], one, traced[1][1])
    full_ms = median_ms(fulls[1], tf.ones((1, long + 1), tf.int32))
    report.metric(f"traced step time, cached (token {long + 1}, median)", cached_ms, "ms")
    report.metric(f"traced step time, full recomputation (token {long + 1}, median)", full_ms, "ms")
    report.metric(
        "time ratio full / cached (measured, tiny model: overhead-bound)", full_ms / cached_ms, "x"
    )


if __name__ == "__main__":
    print_check_of(__name__)
