"""Causal language-model pretraining of a tiny GPT on a synthetic grammar.

A decoder-only transformer (GPT) learns p(x_t | x_<t): every position predicts the NEXT token,
and self-attention is masked so position i sees only positions 0..i. Both halves of that are
easy to get wrong and silent when wrong: without the mask (or with it off by one) the model
reads the token it should predict, the training loss falls below what the text allows and the
model is useless for generation; without the shift the loss trains the model to copy its input.

The corpus is the kit's topic grammar ("in the bakery the chef fries the bread": six topics,
each agent always with its own action, four templates), sentences joined with a separator and
packed into fixed windows the way pretraining corpora are. Its entropy is known in closed form:
each sentence picks a template (4), a topic (6), an agent (3), an object (3) and a place (3),
log(648) nats spread over 9 tokens on average (8 words + the separator), a perplexity floor of
648 ** (1/9) = 2.05 that no model can beat.

The checks prove, before any training: ``next_token_loss`` is the shifted cross-entropy
computed by hand; the causal mask holds (changing token k leaves the logits at positions < k
unchanged, to float32 precision, while positions >= k move); ``perplexity`` is exp(mean token
NLL), pooled over tokens, of a hand computation (on the count bigram wrapped as a Keras
model). Then, after 156 Adam steps, the held-out perplexity is far below the unigram and
bigram baselines fitted on the same training tokens, and close to the grammar's floor.

``GPTConfig``, ``build_gpt``, ``make_data`` and ``pretrain`` are reused by other training
solutions (``from solutions.training.causal_lm_pretraining import ...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
WINDOW = 32  # tokens per packed training window (a real run: 2k-8k)
TRAIN_SENTENCES = 3000  # ~27k tokens
TEST_SENTENCES = 400
EPOCHS = 6  # 6 * 26 = 156 steps
BATCH = 32
LEARNING_RATE = 4e-3
SMOOTHING = 0.01  # add-alpha for the count baselines (every held-out pair occurs in training)
GRAMMAR_CHOICES = 4 * 6 * 3 * 3 * 3  # template, topic, agent, object, place per sentence
TOKENS_PER_SENTENCE = 9.0  # templates of 8, 8, 9, 7 words (equally likely) + separator
CHANGED_POSITION = 20  # the token the causal check changes
LOSS_CHECK = "next_token_loss vs hand-computed shifted cross-entropy"
CAUSAL_CHECK = "causal mask: logits before a changed token unchanged"
PPL_CHECK = "perplexity vs hand computation exp(mean NLL)"

# The names a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_gpt", "next_token_loss", "perplexity")

# -----------------------------------------------------------------------------
# The answer: a tiny GPT, the next-token loss, perplexity


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the tiny GPT (GPT-2 small: vocab 50257, d 768, 12 heads, 12 layers, 1024)."""

    vocab: int
    d_model: int = 48
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 192  # 4 * d_model, as in GPT-2
    max_len: int = WINDOW

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class CausalSelfAttention(keras.layers.Layer):  # type: ignore[misc]
    """Multi-head self-attention in which position i attends to positions 0..i only."""

    def __init__(self, d_model: int, n_heads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = keras.layers.Dense(3 * d_model, name="qkv")  # one matmul for q, k, v
        self.proj = keras.layers.Dense(d_model, name="proj")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        qkv = tf.reshape(self.qkv(x), (b, t, 3, self.n_heads, self.d_head))  # (B, T, 3, H, dh)
        q, k, v = tf.unstack(tf.transpose(qkv, (2, 0, 3, 1, 4)))  # each (B, H, T, dh)
        scores = tf.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(self.d_head)  # (B, H, T, T)
        # Lower triangle, diagonal included: query i may see keys j <= i (itself too, or
        # position 0 would attend to nothing). Masked scores get -1e9, not -inf: the softmax
        # weight is exactly 0 all the same, and a row can never become NaN.
        causal = tf.linalg.band_part(tf.ones((t, t), tf.bool), -1, 0)  # (T, T)
        scores = tf.where(causal, scores, tf.constant(-1e9, scores.dtype))
        weights = tf.nn.softmax(scores, axis=-1)  # (B, H, T, T), rows sum to 1
        out = tf.einsum("bhij,bhjd->bhid", weights, v)  # (B, H, T, dh)
        out = tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (b, t, self.n_heads * self.d_head))
        return self.proj(out)


class TokenAndPosition(keras.layers.Layer):  # type: ignore[misc]
    """Token embedding plus a learned absolute position embedding (GPT-2's choice)."""

    def __init__(self, vocab: int, max_len: int, d_model: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tok = keras.layers.Embedding(vocab, d_model, name="tok_emb")
        self.pos = keras.layers.Embedding(max_len, d_model, name="pos_emb")

    def call(self, tokens: tf.Tensor) -> tf.Tensor:
        positions = tf.range(tf.shape(tokens)[1])  # (T,)
        return self.tok(tokens) + self.pos(positions)  # (B, T, d) + (T, d)


def build_gpt(config: GPTConfig) -> keras.Model:
    """A pre-LayerNorm decoder-only transformer: tokens (B, T) int32 -> logits (B, T, vocab).

    ``T <= config.max_len``. The logits at position i are the model's prediction of token
    i + 1 and depend on tokens 0..i only.
    """
    tokens = keras.layers.Input((None,), dtype="int32", name="tokens")  # (B, T)
    x = TokenAndPosition(config.vocab, config.max_len, config.d_model, name="embed")(tokens)
    for i in range(config.n_layers):
        # Pre-LN residual blocks (GPT-2): x + attn(ln(x)), then x + mlp(ln(x)).
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln1_{i}")(x)
        x = x + CausalSelfAttention(config.d_model, config.n_heads, name=f"attn_{i}")(h)
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln2_{i}")(x)
        h = keras.layers.Dense(config.d_ff, activation="gelu", name=f"ff_in_{i}")(h)
        x = x + keras.layers.Dense(config.d_model, name=f"ff_out_{i}")(h)  # (B, T, d)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")(x)
    logits = keras.layers.Dense(config.vocab, name="lm_head")(x)  # (B, T, vocab)
    return keras.Model(tokens, logits, name="tiny_gpt")


def next_token_loss(logits: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy (nats) of predicting ``tokens[:, 1:]`` from ``logits[:, :-1]``.

    ``logits`` (B, T, vocab) float32 from the model run on ``tokens`` (B, T) int32; the last
    position has no target inside the window and the first token is never a target.
    Returns a scalar.
    """
    targets = tokens[:, 1:]  # (B, T-1): the next token of each position
    predictions = logits[:, :-1]  # (B, T-1, vocab)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=predictions)
    return tf.reduce_mean(nll)  # over all B * (T-1) predicted tokens


def perplexity(model: keras.Model, tokens: np.ndarray, batch_size: int = 256) -> float:
    """exp(mean next-token NLL) of ``model`` over every predicted token of ``tokens`` (N, T).

    The mean is over tokens, pooled across windows, before the exp; a mean of per-window
    perplexities is larger (Jensen) and depends on how the text was cut.
    """
    total_nll, count = 0.0, 0
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start : start + batch_size]  # (b, T)
        logits = model(batch, training=False)  # (b, T, vocab)
        targets = batch[:, 1:]
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits[:, :-1])
        total_nll += float(tf.reduce_sum(tf.cast(nll, tf.float64)))
        count += int(targets.size)
    return math.exp(total_nll / count)


# -----------------------------------------------------------------------------
# Data, training, baselines


@dataclass(frozen=True)
class Corpus:
    """Packed token windows of the topic grammar: ``train`` (N, WINDOW), ``test`` (M, WINDOW)."""

    train: np.ndarray
    test: np.ndarray
    vocab: list[str]


def pack(sentences: np.ndarray, vocab: list[str], window: int) -> np.ndarray:
    """Sentences joined by [SEP] into one token stream, cut into (N, window) int32 windows.

    Packing (no padding) as in GPT pretraining: a window may start mid-sentence, and
    attention runs across the separator (the model learns that [SEP] resets the topic).
    """
    index = {w: i for i, w in enumerate(vocab)}
    stream = [t for s in sentences for t in (*(index[w] for w in s.split()), index["[SEP]"])]
    n = len(stream) // window
    return np.array(stream[: n * window], np.int32).reshape(n, window)


def make_data(seed: int = SEED) -> Corpus:
    """~27k training and ~3.6k held-out tokens from ``synthetic.topic_sentences``, packed."""
    sentences = synthetic.topic_sentences(TRAIN_SENTENCES + TEST_SENTENCES, seed=seed)
    vocab = synthetic.word_vocab(sentences)  # 5 special tokens + 78 words
    train, test = sentences[:TRAIN_SENTENCES], sentences[TRAIN_SENTENCES:]
    return Corpus(pack(train, vocab, WINDOW), pack(test, vocab, WINDOW), vocab)


def pretrain(
    model: keras.Model,
    windows: np.ndarray,
    loss_fn: Any = next_token_loss,
    *,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    learning_rate: float = LEARNING_RATE,
    seed: int = SEED,
    phase: str = "pretrain tiny GPT",
) -> list[float]:
    """Train ``model`` in place with Adam on ``loss_fn(logits, tokens)``; returns the loss per step.

    ``windows`` (N, T) int32. The inputs are their own labels: ``loss_fn`` does the shift.
    """
    # The legacy Adam: the same update; tracing its apply_gradients costs ~1 s of CPU here
    # against ~4 s for the new optimizer classes, a third of this solution's budget.
    optimizer = keras.optimizers.legacy.Adam(learning_rate)

    @tf.function  # type: ignore[untyped-decorator]  # TF has no stubs
    def step(batch: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(model(batch, training=True), batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    order = synthetic.rng(seed)
    steps = epochs * (len(windows) // batch_size)
    events.start(phase, steps)
    losses = []
    for _ in range(epochs):
        perm = order.permutation(len(windows))
        for s in range(len(windows) // batch_size):
            batch = windows[perm[s * batch_size : (s + 1) * batch_size]]  # (B, T)
            losses.append(float(step(tf.constant(batch))))
            events.advance(phase, len(losses), loss=losses[-1])
    events.finish(phase)
    return losses


def count_baselines(train: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """Add-alpha unigram (V,) and bigram (V, V) next-token probabilities fitted on ``train``.

    Pairs are counted inside windows, as the GPT sees them; ``bigram[a, b]`` = p(b | a).
    """
    unigram = np.bincount(train.ravel(), minlength=vocab) + SMOOTHING  # (V,)
    pairs = np.zeros((vocab, vocab))  # (V, V) counts of (previous, next)
    np.add.at(pairs, (train[:, :-1].ravel(), train[:, 1:].ravel()), 1.0)
    bigram = (pairs + SMOOTHING) / (pairs + SMOOTHING).sum(axis=1, keepdims=True)
    return unigram / unigram.sum(), bigram


def bigram_as_keras(bigram: np.ndarray) -> keras.Model:
    """The bigram table as a Keras LM: tokens (B, T) -> logits log p(. | token) (B, T, V).

    A model whose per-window NLL varies a lot, to test ``perplexity`` on without training.
    """
    vocab = bigram.shape[0]
    table = keras.layers.Embedding(
        vocab, vocab, embeddings_initializer=keras.initializers.Constant(np.log(bigram))
    )
    tokens = keras.layers.Input((None,), dtype="int32")
    return keras.Model(tokens, table(tokens))


def log_softmax_np(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64 (the hand computation)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return out


def hand_shifted_nll(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """-log p(tokens[:, i+1] | logits[:, i]) for every predicted token: (B, T-1) float64."""
    logp = log_softmax_np(logits[:, :-1])  # (B, T-1, V)
    targets = tokens[:, 1:]  # (B, T-1)
    picked: np.ndarray = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return -picked


def hand_perplexity(model: keras.Model, tokens: np.ndarray) -> float:
    """exp(mean NLL) over all predicted tokens of ``tokens`` (N, T), in float64."""
    return math.exp(float(hand_shifted_nll(model(tokens).numpy(), tokens).mean()))


def loss_probe(tokens: np.ndarray, vocab: int) -> np.ndarray:
    """Logits (B, T, V) that favour the NEXT token of ``tokens`` (B, T) by +4 over N(0, 1).

    Scored with the shift the loss is ~1.3 nats; scored against the current token (no
    shift), ~5: the two answers are far apart, unlike on logits unrelated to the tokens.
    """
    g = synthetic.rng(SEED)
    logits = g.normal(0.0, 1.0, (*tokens.shape, vocab))
    rows, cols = np.indices(tokens[:, 1:].shape)
    logits[rows, cols, tokens[:, 1:]] += 4.0  # position i points at token i + 1
    probe: np.ndarray = logits.astype(np.float32)
    return probe


class Answer(Protocol):
    """What check(impl) calls: the ANSWER names, with the reference's signatures."""

    def build_gpt(self, config: GPTConfig) -> keras.Model: ...

    def next_token_loss(self, logits: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor: ...

    def perplexity(
        self, model: keras.Model, tokens: np.ndarray, batch_size: int = ...
    ) -> float: ...


def causal_probe(model: keras.Model, windows: np.ndarray) -> tuple[Comparison, float]:
    """Change token CHANGED_POSITION of each window; compare logits before and from there.

    Returns the comparison of positions < k (must be equal) and the largest change at
    positions >= k (not 0: the probe does change what the model sees).
    """
    k = CHANGED_POSITION
    changed = windows.copy()
    changed[:, k] = (changed[:, k] + 1 + np.arange(len(changed)) % 7) % model.output_shape[-1]
    before = model(windows, training=False).numpy()  # (B, T, V)
    after = model(changed, training=False).numpy()
    moved = float(np.abs(after[:, k:] - before[:, k:]).max())
    # Logits ~1 at init; the same row computed again differs by float32 summation only.
    return compare(after[:, :k], before[:, :k], atol=1e-5, rtol=1e-5), moved


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """The loss and perplexity vs float64 hand computations; the causal mask.

    All cheap (no training): these are exact properties, not learned ones.
    """
    data = make_data()
    vocab = len(data.vocab)
    windows = data.test[:16]  # (16, 32)
    logits = loss_probe(windows, vocab)  # (16, 32, V)
    # As arrays: a non-scalar answer then fails the comparison (shapes differ), not float().
    loss = np.asarray(impl.next_token_loss(tf.constant(logits), tf.constant(windows)), np.float64)
    hand_loss = float(hand_shifted_nll(logits, windows).mean())
    keras.utils.set_random_seed(SEED)
    causal, _ = causal_probe(impl.build_gpt(GPTConfig(vocab=vocab)), windows)
    bigram_lm = bigram_as_keras(count_baselines(data.train, vocab)[1])
    ppl = np.asarray(impl.perplexity(bigram_lm, data.test), np.float64)
    return {
        # Loss ~1.3 nats, float32 log-softmax over 83 classes: ~1e-6 relative.
        LOSS_CHECK: compare(loss, hand_loss, atol=1e-5, rtol=1e-5),
        CAUSAL_CHECK: causal,
        # ~3.6k float32 log-probabilities averaged: 1e-5 relative at worst.
        PPL_CHECK: compare(ppl, hand_perplexity(bigram_lm, data.test), atol=1e-4, rtol=1e-4),
    }


def check(impl: Answer) -> SolutionReport:
    """Exact properties first (loss, mask, perplexity: no training), then pretrain and score."""
    report = SolutionReport(solution="training.causal_lm_pretraining")
    data = make_data()
    vocab = len(data.vocab)
    report.metric("vocabulary", vocab)
    report.metric("training tokens", int(data.train.size))
    report.metric("held-out tokens", int(data.test.size))
    exact = reference_comparisons(impl)

    # 1. The loss: the shift and the mean, against float64 by hand.
    windows = data.test[:16]
    probe = loss_probe(windows, vocab)  # (16, 32, V)
    unshifted = -float(np.take_along_axis(log_softmax_np(probe), windows[..., None], -1).mean())
    shifted = float(hand_shifted_nll(probe, windows).mean())
    report.metric("probe logits, shifted loss (by hand)", shifted, "nats")
    report.metric("probe logits scored without the shift", unshifted, "nats")
    report.check_close(
        LOSS_CHECK,
        exact[LOSS_CHECK],
        "logits favouring the next token by +4: the shifted loss is ~1.3 nats, float32 "
        "log-softmax over 83 classes is good to ~1e-6 relative, so atol = rtol = 1e-5; "
        "scoring position i against token i (no shift) gives ~5 nats (metric 'probe logits "
        "scored without the shift'), a sum instead of a mean ~500x; " + exact[LOSS_CHECK].detail,
    )

    # 2. The causal mask, on the untrained model: changing token k must leave positions < k
    # the same up to float32 rounding, while positions >= k move.
    keras.utils.set_random_seed(SEED)
    model = impl.build_gpt(GPTConfig(vocab=vocab))
    report.metric("parameters", int(model.count_params()))
    _, moved = causal_probe(model, windows)
    report.metric("largest logit change at or after the changed token", moved)
    report.check_close(
        CAUSAL_CHECK,
        exact[CAUSAL_CHECK],
        f"token {CHANGED_POSITION} of 16 windows changed; masked keys get softmax weight "
        "exactly 0, so logits ~1 at earlier positions may differ by float32 rounding only: "
        "atol = rtol = 1e-5; without the mask (or with softmax over the query axis) they move "
        "by ~1e-2 to 1, like the later ones (metric above); " + exact[CAUSAL_CHECK].detail,
    )

    # 3. Perplexity, on the count bigram wrapped as a Keras LM: its value is known exactly.
    unigram, bigram = count_baselines(data.train, vocab)
    nxt = data.test[:, 1:].ravel()
    uni_ppl = math.exp(-float(np.mean(np.log(unigram[nxt]))))
    bi_ppl = hand_perplexity(bigram_as_keras(bigram), data.test)
    report.metric("unigram perplexity (add-0.01, held out)", uni_ppl)
    report.metric("bigram perplexity (add-0.01, held out)", bi_ppl)
    report.check_close(
        PPL_CHECK,
        exact[PPL_CHECK],
        "perplexity(bigram LM) = exp(mean NLL) pooled over all held-out tokens, by hand in "
        "float64: ~3.6k float32 log-probabilities, rtol 1e-4; a mean of per-window "
        "perplexities is ~0.6% larger (Jensen: ~60x the tolerance), 2 ** NLL (nats read "
        "as bits) ~40% smaller; " + exact[PPL_CHECK].detail,
    )
    if not report.passed:
        return report  # a broken loss, mask or metric: training would measure nothing

    # 4. Pretrain with the candidate's loss; score held-out text by hand.
    with report.timed("pretraining wall time"):
        losses = pretrain(model, data.train, impl.next_token_loss)
    report.metric("loss at step 0 (uniform: log 83 = 4.42)", losses[0], "nats")
    report.metric("loss at the last step", losses[-1], "nats")
    ppl = hand_perplexity(model, data.test)
    floor = GRAMMAR_CHOICES ** (1.0 / TOKENS_PER_SENTENCE)
    report.metric("held-out perplexity", ppl)
    report.metric("grammar entropy floor: 648 ** (1/9)", floor)
    report.metric("GPT / unigram perplexity", ppl / uni_ppl, "x")
    report.metric("GPT perplexity / grammar floor", ppl / floor, "x")
    report.metric("floor / bigram perplexity (the best reachable ratio)", floor / bi_ppl, "x")
    report.check(
        "held-out perplexity / bigram perplexity",
        ppl / bi_ppl,
        "<=",
        0.7,
        "the bigram sees only the previous word: after 'the' it cannot tell the topic, which "
        "the GPT reads from earlier words; the floor sits at 0.42 of the bigram, so an "
        "attention that works gets near 0.5, one that sees only the current token (a "
        "bigram with positions) near 1",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
