"""LoRA: fine-tune a frozen tiny GPT through low-rank adapters, merged back for inference.

A linear layer y = x W + b (Keras layout: W is (d_in, d_out)) gets two trainable factors,
A (d_in, r) random and B (r, d_out) zero, and computes y = x W + b + (alpha / r) x A B with W
and b frozen (Hu et al. 2021). Because B starts at zero, the adapted model computes exactly
the pretrained model's outputs at step 0; alpha / r keeps the size of the update roughly
independent of r; after training, W + (alpha / r) A B is one matrix, so the merged model is a
plain model with no extra inference cost.

The checks, cheap ones first:
- one LoRADense with known A, B equals the closed form x W + b + (alpha / r) x A B (NumPy);
- the merged kernel in a plain Dense computes the same outputs as the unmerged layer;
- the adapted GPT's logits at step 0 equal the base GPT's (B = 0);
- its trainable parameters are exactly r (d_in + d_out) per adapted layer, nothing else
  (Keras' own count of trainable weights against the closed form);
- a tiny GPT pretrained on one synthetic language (a second-order Markov chain) is
  fine-tuned on a shifted one (a quarter of its contexts rewired) twice, fully and with
  LoRA on every projection: LoRA's held-out loss ends within 0.1 nats of full fine-tuning
  while it trains a small fraction of the parameters, and far below the base model's loss
  on the new language. The chain's entropy rate, computed from its transition table, is the
  floor no model can go below.
The frozen base weights are compared bit for bit before and after LoRA training.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
VOCAB = 12  # tokens of the synthetic language
SEQ_LEN = 24  # tokens the model sees; it predicts tokens 1..SEQ_LEN
D_MODEL, N_HEADS, D_MLP, N_LAYERS = 48, 4, 96, 1
RANK, ALPHA = 4, 8.0  # alpha / r = 2
TARGETS = ("query", "key", "value", "out", "up", "down")  # every projection of a block
REWIRED = 0.25  # share of the contexts whose successors change in the new language
PRETRAIN_STEPS, FINE_TUNE_STEPS, BATCH = 200, 100, 16
PRETRAIN_LR, FULL_FT_LR, LORA_LR = 5e-3, 1e-3, 6e-3
MAX_GAP = 0.1  # nats: LoRA's held-out loss may exceed full fine-tuning's by at most this
LAYER_CHECK = "LoRADense with set A, B vs x W + b + (alpha/r) x A B"
MERGE_CHECK = "Dense(merge_lora(layer)) vs LoRADense outputs"
STEP0_CHECK = "adapted GPT vs base GPT logits at step 0"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("LoRADense", "add_lora", "merge_lora")

# -----------------------------------------------------------------------------
# The answer: a low-rank adapter around a frozen Dense, put on every projection, merged


class LoRADense(keras.layers.Layer):  # type: ignore[misc]
    """A frozen linear ``keras.layers.Dense`` (kernel W (d_in, d_out), bias b) plus
    (alpha / rank) x A B, with trainable ``lora_a`` A (d_in, rank) and ``lora_b`` B
    (rank, d_out). Input (..., d_in) -> output (..., d_out).
    """

    def __init__(self, base: keras.layers.Dense, rank: int, alpha: float, **kwargs: object):
        """Wrap the built Dense ``base`` (frozen); A (d_in, rank) random, B (rank, d_out) zero."""
        super().__init__(**kwargs)
        self.base = base
        base.trainable = False  # W and b are not trained: only A and B are
        self.rank = rank
        self.scale = alpha / rank  # so that changing r does not change the update's size
        d_in, d_out = base.kernel.shape
        # A: small random, as PEFT does (kaiming-uniform, bound 1/sqrt(d_in)), so that
        # dL/dB = (x A)^T dL/dy is not zero; B: zero, so that A B = 0 and the adapted layer
        # starts as the pretrained one. Both zero would leave both gradients zero forever.
        bound = 1.0 / np.sqrt(d_in)
        self.lora_a = self.add_weight(
            name="lora_a",
            shape=(d_in, rank),
            initializer=keras.initializers.RandomUniform(-bound, bound),
        )
        self.lora_b = self.add_weight(name="lora_b", shape=(rank, d_out), initializer="zeros")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """x (..., d_in) -> x W + b + (alpha / rank) x A B, (..., d_out)."""
        # (..., d_in) -> (..., r) -> (..., d_out): two thin matmuls, never the d_in x d_out
        # product A B (that is what makes training cheap in memory).
        low_rank = tf.einsum("...i,ir->...r", x, self.lora_a)
        return self.base(x) + self.scale * tf.einsum("...r,ro->...o", low_rank, self.lora_b)


def add_lora(model: TinyGPT, rank: int, alpha: float, targets: tuple[str, ...]) -> TinyGPT:
    """Freeze every weight of ``model`` and wrap the Dense layers named ``targets``
    (attributes of each block in ``model.blocks``: query, key, value, out, up, down) in
    LoRADense. Returns ``model`` itself, changed in place.
    """
    # Freeze the leaf layers, not the model: in Keras a layer with trainable = False
    # reports no trainable weights at all, so freezing a block would hide the adapters
    # that are put inside it.
    for layer in model.submodules:
        if isinstance(layer, keras.layers.Dense | keras.layers.Embedding | LayerNorm):
            layer.trainable = False
    for block in model.blocks:
        for name in targets:
            setattr(block, name, LoRADense(getattr(block, name), rank, alpha))
    return model


def merge_lora(layer: LoRADense) -> tuple[np.ndarray, np.ndarray]:
    """The plain Dense weights that compute what ``layer`` computes: kernel (d_in, d_out)
    W + (alpha / rank) A B, and the unchanged bias (d_out,).
    """
    kernel, bias = layer.base.get_weights()
    delta = layer.scale * layer.lora_a.numpy() @ layer.lora_b.numpy()  # (d_in, d_out)
    return kernel + delta, bias


# -----------------------------------------------------------------------------
# The tiny GPT the adapters go on (pre-norm decoder-only transformer)

LayerNorm = keras.layers.LayerNormalization


class Block(keras.layers.Layer):  # type: ignore[misc]
    """Causal self-attention then an MLP, each pre-normed and residual: (B, T, d) -> same.

    Every projection is a linear Dense attribute (the activation is applied outside), so a
    LoRADense can replace any of them: query, key, value, out (d -> d), up (d -> d_mlp),
    down (d_mlp -> d).
    """

    def __init__(self, d_model: int, n_heads: int, d_mlp: int, **kwargs: object):
        super().__init__(**kwargs)
        self.n_heads = n_heads
        self.norm1, self.norm2 = LayerNorm(epsilon=1e-5), LayerNorm(epsilon=1e-5)
        self.query, self.key = keras.layers.Dense(d_model), keras.layers.Dense(d_model)
        self.value, self.out = keras.layers.Dense(d_model), keras.layers.Dense(d_model)
        self.up, self.down = keras.layers.Dense(d_mlp), keras.layers.Dense(d_model)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        batch, length, d_model = tf.unstack(tf.shape(x))
        head = d_model // self.n_heads

        def heads(t: tf.Tensor) -> tf.Tensor:  # (B, T, d) -> (B, h, T, d/h)
            return tf.transpose(tf.reshape(t, (batch, length, self.n_heads, head)), (0, 2, 1, 3))

        h = self.norm1(x)
        q, k, v = heads(self.query(h)), heads(self.key(h)), heads(self.value(h))
        scores = tf.matmul(q, k, transpose_b=True) / tf.sqrt(tf.cast(head, x.dtype))  # (B,h,T,T)
        causal = tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)  # j <= i
        scores = tf.where(causal, scores, tf.fill(tf.shape(scores), -1e9))
        mixed = tf.matmul(tf.nn.softmax(scores), v)  # (B, h, T, d/h)
        mixed = tf.reshape(tf.transpose(mixed, (0, 2, 1, 3)), (batch, length, d_model))
        x = x + self.out(mixed)
        return x + self.down(tf.nn.gelu(self.up(self.norm2(x))))


class TinyGPT(keras.Model):  # type: ignore[misc]
    """Tokens (B, T) int -> next-token logits (B, T, vocab); learned positions; untied head."""

    def __init__(
        self, vocab: int, seq_len: int, d_model: int, n_heads: int, d_mlp: int, n_layers: int
    ):
        super().__init__()
        self.tokens = keras.layers.Embedding(vocab, d_model)
        self.positions = keras.layers.Embedding(seq_len, d_model)
        self.blocks = [Block(d_model, n_heads, d_mlp) for _ in range(n_layers)]
        self.norm = LayerNorm(epsilon=1e-5)
        self.head = keras.layers.Dense(vocab)

    def call(self, tokens: tf.Tensor) -> tf.Tensor:
        x = self.tokens(tokens) + self.positions(tf.range(tf.shape(tokens)[1]))  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))  # (B, T, vocab)


def build_gpt(seed: int = SEED) -> TinyGPT:
    """A freshly initialised TinyGPT, built (its weights exist)."""
    keras.utils.set_random_seed(seed)
    model = TinyGPT(VOCAB, SEQ_LEN, D_MODEL, N_HEADS, D_MLP, N_LAYERS)
    model(tf.zeros((1, SEQ_LEN), tf.int32))
    return model


# -----------------------------------------------------------------------------
# Data: two related synthetic languages (second-order Markov chains)


@dataclass(frozen=True)
class Language:
    """Next-token table: ``table[a, b]`` (vocab,) is the distribution of the token after
    (a, b). Every context has 2 successors, with probabilities 0.75 and 0.25."""

    table: np.ndarray  # (vocab, vocab, vocab)

    def entropy_rate(self) -> float:
        """Nats per token of the best possible predictor given the two previous tokens."""
        p = self.table[self.table > 0]
        return float(-(p * np.log(p)).sum() / VOCAB**2)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, SEQ_LEN + 1) int32 sequences: two uniform tokens, then the chain."""
        seqs = np.empty((n, SEQ_LEN + 1), np.int32)
        seqs[:, :2] = rng.integers(0, VOCAB, (n, 2))
        cumulative = self.table.cumsum(-1)  # (V, V, V)
        for t in range(2, SEQ_LEN + 1):
            u = rng.random((n, 1))
            seqs[:, t] = (u > cumulative[seqs[:, t - 2], seqs[:, t - 1]]).sum(-1)
        return seqs


@dataclass(frozen=True)
class Tasks:
    old: Language  # what the base model is pretrained on
    new: Language  # the fine-tuning task: REWIRED of the contexts changed
    pretrain: np.ndarray  # (N, SEQ_LEN + 1) from old
    fine_tune: np.ndarray  # (N, SEQ_LEN + 1) from new
    test_old: np.ndarray  # held-out sequences of each
    test_new: np.ndarray


def make_data(seed: int = SEED) -> Tasks:
    """The pretraining language, the shifted one, and sampled train/test sequences."""
    rng = synthetic.rng(seed)
    table = np.zeros((VOCAB, VOCAB, VOCAB))
    for a in range(VOCAB):
        for b in range(VOCAB):
            first, second = rng.choice(VOCAB, 2, replace=False)
            table[a, b, first], table[a, b, second] = 0.75, 0.25
    new = table.copy()
    contexts = rng.choice(VOCAB * VOCAB, int(REWIRED * VOCAB * VOCAB), replace=False)
    for c in contexts:
        a, b = divmod(int(c), VOCAB)
        new[a, b] = 0.0
        first, second = rng.choice(VOCAB, 2, replace=False)
        new[a, b, first], new[a, b, second] = 0.75, 0.25
    old_lang, new_lang = Language(table), Language(new)
    return Tasks(
        old_lang,
        new_lang,
        pretrain=old_lang.sample(4096, rng),
        fine_tune=new_lang.sample(2048, rng),
        test_old=old_lang.sample(512, rng),
        test_new=new_lang.sample(512, rng),
    )


# -----------------------------------------------------------------------------
# Training and measurement (the harness: the same loop for every run)


def lm_loss(model: keras.Model, seqs: np.ndarray | tf.Tensor) -> tf.Tensor:
    """Mean next-token cross-entropy (nats) on positions 1.. (those with two tokens of context)."""
    logits = model(seqs[:, :-1])  # (B, T, V)
    losses = keras.losses.sparse_categorical_crossentropy(seqs[:, 1:], logits, from_logits=True)
    return tf.reduce_mean(losses[:, 1:])


def lm_trainer(model: keras.Model) -> Callable[[np.ndarray, int, float, str], float]:
    """``train(seqs, steps, lr, phase)``: Adam on ``model.trainable_weights`` for ``steps``
    batches of BATCH sequences (drawn with a fixed seed: every run sees the same), from fresh
    moments; returns the last batch's loss. One traced step per model, reused by every call.

    Adam is written out (Kingma & Ba, beta 0.9 / 0.999, bias-corrected): tracing a Keras
    optimizer's ``apply_gradients`` costs several CPU seconds per run here, longer than the
    training itself.
    """
    weights = model.trainable_weights
    moments = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in weights]
    t, rate = tf.Variable(0.0), tf.Variable(0.0)

    # autograph=False: the step is plain Python over lists, traced once as written
    @tf.function(autograph=False)  # type: ignore[untyped-decorator]  # TF has no stubs
    def step(batch: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = lm_loss(model, batch)
        t.assign_add(1.0)
        correction = tf.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
        for w, g, (m, v) in zip(weights, tape.gradient(loss, weights), moments, strict=True):
            g = tf.convert_to_tensor(g)  # embeddings' gradients come as IndexedSlices
            m.assign(0.9 * m + 0.1 * g)
            v.assign(0.999 * v + 0.001 * tf.square(g))
            w.assign_sub(rate * correction * m / (tf.sqrt(v) + 1e-7))
        return loss

    def train(seqs: np.ndarray, steps: int, lr: float, phase: str) -> float:
        t.assign(0.0)
        rate.assign(lr)
        for m, v in moments:
            m.assign(tf.zeros_like(m))
            v.assign(tf.zeros_like(v))
        order = synthetic.rng(SEED).integers(0, len(seqs), (steps, BATCH))
        events.start(phase, steps)
        loss = tf.constant(np.nan)
        for i, rows in enumerate(order):
            loss = step(tf.constant(seqs[rows]))
            if (i + 1) % 50 == 0:
                events.advance(phase, i + 1, loss=float(loss))
        events.finish(phase)
        return float(loss)

    return train


def held_out_loss(model: keras.Model, seqs: np.ndarray) -> float:
    return float(lm_loss(model, tf.constant(seqs)))


def pretrained_gpt() -> TinyGPT:
    """The base model: TinyGPT trained on ``make_data()``'s old language."""
    model = build_gpt()
    model.set_weights(pretrained_weights())
    return model


@functools.cache
def trainer() -> tuple[TinyGPT, Callable[[np.ndarray, int, float, str], float], list[np.ndarray]]:
    """One TinyGPT, its traced training step and its initial weights, for the base model's
    pretraining and for full fine-tuning in this process: tracing costs about as much as
    250 steps here, so both load their starting weights into this one model."""
    model = build_gpt()
    return model, lm_trainer(model), list(model.get_weights())


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def pretrained_weights() -> list[np.ndarray]:
    model, train, initial = trainer()
    model.set_weights(initial)
    train(make_data().pretrain, PRETRAIN_STEPS, PRETRAIN_LR, "pretrain tiny GPT")
    return list(model.get_weights())


@memo  # full fine-tuning does not involve the answer either: run once, then read
def full_fine_tune_losses() -> tuple[float, float]:
    """Held-out losses (new language, old language) of the base model fully fine-tuned on
    the new language: the comparison LoRA is held to."""
    tasks = make_data()
    model, train, _ = trainer()
    model.set_weights(pretrained_weights())
    train(tasks.fine_tune, FINE_TUNE_STEPS, FULL_FT_LR, "full fine-tuning")
    return held_out_loss(model, tasks.test_new), held_out_loss(model, tasks.test_old)


def copy_of(model: TinyGPT) -> TinyGPT:
    """A new TinyGPT with ``model``'s weights (fine-tuning the copy leaves ``model`` alone)."""
    twin = build_gpt()
    twin.set_weights(model.get_weights())
    return twin


def trainable_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


class Answer(Protocol):
    """What check(impl) calls: the ANSWER names, with the reference's signatures."""

    def LoRADense(
        self, base: keras.layers.Dense, rank: int, alpha: float
    ) -> keras.layers.Layer: ...

    def add_lora(
        self, model: TinyGPT, rank: int, alpha: float, targets: tuple[str, ...]
    ) -> TinyGPT: ...

    def merge_lora(self, layer: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]: ...


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """The equalities, on an untrained layer and model (no training needed).

    Layer: d_in 48 -> d_out 96 with A, B set to seeded random values (|A B| entries ~0.3,
    outputs ~1); the NumPy closed form in float64. Sums of 48 + 4 float32 products: atol 1e-5
    + rtol 1e-5 (float32 epsilon 1.2e-7 times ~50 terms, with margin for oneDNN's order).
    Merged: the same products summed in another order; same tolerance.
    Step 0: B = 0 adds exactly 0.0, so the logits agree to the same tolerance (they are
    in fact bit-equal where einsum adds an exact zero).
    """
    rng = synthetic.rng(SEED + 1)
    keras.utils.set_random_seed(SEED)
    base = keras.layers.Dense(D_MLP)
    base.build((None, D_MODEL))
    layer = impl.LoRADense(base, RANK, ALPHA)
    x = rng.standard_normal((8, 5, D_MODEL)).astype(np.float32)  # (B, T, d_in)
    layer(x)  # built
    a = rng.standard_normal((D_MODEL, RANK)).astype(np.float32) * 0.3
    b = rng.standard_normal((RANK, D_MLP)).astype(np.float32) * 0.3
    layer.lora_a.assign(a)
    layer.lora_b.assign(b)
    kernel, bias = (w.astype(np.float64) for w in base.get_weights())
    x64 = x.astype(np.float64)
    expected = x64 @ kernel + bias + (ALPHA / RANK) * (x64 @ a) @ b  # (8, 5, d_out)
    got = layer(x).numpy()

    merged_kernel, merged_bias = impl.merge_lora(layer)
    plain = keras.layers.Dense(D_MLP)
    plain.build((None, D_MODEL))
    plain.set_weights([merged_kernel, merged_bias])

    base_model = build_gpt()
    tokens = synthetic.rng(SEED + 2).integers(0, VOCAB, (4, SEQ_LEN)).astype(np.int32)
    base_logits = base_model(tokens).numpy()  # (4, T, V)
    adapted = impl.add_lora(copy_of(base_model), RANK, ALPHA, TARGETS)
    return {
        LAYER_CHECK: compare(got, expected, atol=1e-5, rtol=1e-5),
        MERGE_CHECK: compare(plain(x).numpy(), got, atol=1e-5, rtol=1e-5),
        STEP0_CHECK: compare(adapted(tokens).numpy(), base_logits, atol=1e-5, rtol=1e-5),
    }


def check(impl: Answer) -> SolutionReport:
    """The equalities and the parameter count first (cheap), then the fine-tuning runs."""
    report = SolutionReport(solution="training.lora")
    _equalities(report, impl)
    tasks = make_data()
    base = pretrained_gpt()
    adapted = _count(report, impl, base)
    _fine_tune(report, tasks, base, adapted)
    return report


def _equalities(report: SolutionReport, impl: Answer) -> None:
    comparisons = reference_comparisons(impl)
    report.check_close(
        LAYER_CHECK,
        comparisons[LAYER_CHECK],
        f"outputs ~1 from sums of {D_MODEL} + {RANK} float32 products vs a float64 NumPy closed "
        "form: atol 1e-5 + rtol 1e-5; scaling by alpha instead of alpha/r is off by "
        f"{ALPHA - ALPHA / RANK:g} x |x A B| ~ 10, no scaling by ~1; "
        + comparisons[LAYER_CHECK].detail,
    )
    report.check_close(
        MERGE_CHECK,
        comparisons[MERGE_CHECK],
        "W + (alpha/r) A B in a plain Dense computes the same outputs (linearity), float32 "
        "rounding only: atol 1e-5 + rtol 1e-5; a merge without alpha/r is off by ~5 "
        + comparisons[MERGE_CHECK].detail,
    )
    report.check_close(
        STEP0_CHECK,
        comparisons[STEP0_CHECK],
        "B = 0 adds exactly zero, so the adapted model starts as the base model: atol 1e-5 "
        "+ rtol 1e-5 on logits ~1; a random B moves the logits by ~0.1-1 "
        + comparisons[STEP0_CHECK].detail,
    )


def _count(report: SolutionReport, impl: Answer, base: TinyGPT) -> TinyGPT:
    """Adapt a copy of the pretrained model; count what Keras will train."""
    adapted = impl.add_lora(copy_of(base), RANK, ALPHA, TARGETS)
    d_in_out = {"query": (D_MODEL, D_MODEL), "key": (D_MODEL, D_MODEL)}
    d_in_out |= {"value": (D_MODEL, D_MODEL), "out": (D_MODEL, D_MODEL)}
    d_in_out |= {"up": (D_MODEL, D_MLP), "down": (D_MLP, D_MODEL)}
    expected = N_LAYERS * sum(RANK * (i + o) for i, o in d_in_out.values())
    total = int(base.count_params())
    got = trainable_count(adapted)
    report.metric("base model parameters", total)
    report.metric("LoRA trainable parameters", got)
    report.metric("LoRA trainable share", got / total)
    report.check(
        "LoRA trainable parameters - r (d_in + d_out) per adapted layer",
        abs(got - expected),
        "==",
        0,
        f"closed form {expected} = {N_LAYERS} blocks x sum over {len(TARGETS)} projections of "
        f"r (d_in + d_out), r = {RANK}; embeddings, norms and head left trainable add "
        "2604 here, a frozen block hides its adapters (0 trainable)",
    )
    return adapted


def _fine_tune(
    report: SolutionReport,
    tasks: Tasks,
    base: TinyGPT,
    adapted: TinyGPT,
) -> None:
    """Full fine-tuning vs LoRA on the new language, from the same pretrained weights."""
    floor = tasks.new.entropy_rate()
    base_new = held_out_loss(base, tasks.test_new)
    report.metric("entropy rate of the new language (loss floor)", floor, "nats")
    report.metric("base model loss, new language", base_new, "nats")

    frozen_before = [w.numpy().copy() for w in adapted.non_trainable_weights]
    with report.timed("LoRA fine-tuning time"):
        lora_train = lm_trainer(adapted)
        lora_train(tasks.fine_tune, FINE_TUNE_STEPS, LORA_LR, "LoRA fine-tuning")
    lora_new = held_out_loss(adapted, tasks.test_new)
    changed = sum(
        int(not np.array_equal(a, w.numpy()))
        for a, w in zip(frozen_before, adapted.non_trainable_weights, strict=True)
    )
    base_old = held_out_loss(base, tasks.test_old)
    full_new, full_old = full_fine_tune_losses()
    report.metric("full fine-tuning loss, new language", full_new, "nats")
    report.metric("LoRA loss, new language", lora_new, "nats")
    report.metric("LoRA loss, old language (forgetting)", held_out_loss(adapted, tasks.test_old))
    report.metric("full fine-tuning loss, old language", full_old)
    report.metric("base model loss, old language", base_old, "nats")
    report.metric("frozen tensors changed by LoRA training", changed)
    report.check(
        "LoRA loss - full fine-tuning loss (new language, held out)",
        lora_new - full_new,
        "<=",
        MAX_GAP,
        f"same steps and data from the same base; base model at {base_new:.3f}, full "
        f"fine-tuning at {full_new:.3f}, floor {floor:.3f} nats: adapters that do not train "
        f"(A = B = 0: no gradient reaches either) stay near the base model's loss",
    )


if __name__ == "__main__":
    print_check_of(__name__)
