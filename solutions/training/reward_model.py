"""A reward model trained on pairwise preferences with the Bradley-Terry loss.

RLHF's reward model reads a prompt and a response and returns one number. People label
PAIRS (which of two responses to the same prompt is better), not scores, so the model is
fitted to the Bradley-Terry model of a preference: P(a preferred to b) = sigmoid(r(a) - r(b)).
Its negative log-likelihood over labelled pairs (chosen c, rejected j) is
``-log sigmoid(r_c - r_j) = softplus(r_j - r_c)``, written with softplus so that a pair the
model ranks wrong by a wide margin costs its margin, not ``-log(0) = inf``. Only differences
of rewards enter: the reward is defined up to a constant (RLHF pipelines normalize it).

The model is a causal decoder trunk plus a linear head on the hidden state of the LAST REAL
token of each sequence (the only position that has read the whole response); with right
padding that is position length - 1, not the last column.

The answer is ``build_reward_model`` (trunk + head, reading position length - 1),
``bradley_terry_loss`` and ``make_reward_step``. The checks prove: the loss and its
gradient equal their float64 closed forms, margins of +-120 included; rewards do not change
when the batch is padded further; and, trained on synthetic preferences (the hidden
reward counts "good" minus "bad" tokens of the response; each pair's label is drawn from
Bradley-Terry with that reward, so labels are noisy), the model ranks held-out pairs
right far above chance, close to the best any model can do on these noisy labels (the
hidden reward's own accuracy on them), and its rewards correlate with the hidden reward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.kv_cache import DecoderConfig, build_decoder

SEED = 0
PAD, SEP = 0, 1  # content tokens are 2 .. VOCAB - 1
VOCAB = 16
GOOD = (3, 4, 5)  # each adds 1 to the hidden reward
BAD = (6, 7, 8)  # each subtracts 1
PROMPT_WORDS = (2, 4)
RESPONSE_WORDS = (4, 8)
SEQ_LEN = PROMPT_WORDS[1] + 1 + RESPONSE_WORDS[1]  # 13
EXTRA_PADS = 5  # the padding check appends this many PAD columns
STEPS = 150
BATCH = 64
LEARNING_RATE = 3e-3
TRUNK = DecoderConfig(vocab=VOCAB, n_layers=1, max_len=SEQ_LEN + EXTRA_PADS)

LOSS_CHECK = "bradley_terry_loss vs float64 mean softplus(r_j - r_c)"
GRAD_CHECK = "d loss / d rewards vs -+sigmoid(r_j - r_c) / N"
PAD_CHECK = "rewards with 5 more PAD columns vs as padded"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_reward_model", "bradley_terry_loss", "make_reward_step")

# -----------------------------------------------------------------------------
# The answer: a scalar head on the last real token, the pairwise loss, a training step


def build_reward_model(trunk: keras.Model) -> keras.Model:
    """A reward model on ``trunk`` (tokens (B, T) int32 -> hidden states (B, T, d), causal).

    Inputs: tokens (B, T) int32, right-padded with 0, and lengths (B,) int32 (real tokens,
    prompt and response). Output: rewards (B,) float32, a linear head on the hidden state
    at position length - 1.
    """
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    lengths = keras.Input((), dtype="int32", name="lengths")
    hidden = trunk(tokens)  # (B, T, d)

    def last_real(args: list[tf.Tensor]) -> tf.Tensor:
        h, n = args
        # Row b reads h[b, n_b - 1]: under a causal mask it has seen the whole sequence and
        # none of the padding. h[:, -1] would read a PAD position whose state depends on
        # how much padding the batch has.
        return tf.gather(h, n - 1, batch_dims=1)  # (B, d)

    last = keras.layers.Lambda(last_real, name="last_real_token")([hidden, lengths])
    reward = keras.layers.Dense(1, name="reward_head")(last)  # (B, 1)
    return keras.Model([tokens, lengths], reward[:, 0], name="reward_model")  # (B,)


def bradley_terry_loss(r_chosen: tf.Tensor, r_rejected: tf.Tensor) -> tf.Tensor:
    """Mean over pairs of -log sigmoid(r_chosen - r_rejected); inputs (N,) float32.

    Returns a scalar. -log sigmoid(m) = softplus(-m): finite for any margin m.
    """
    # log(sigmoid(m)) underflows to log(0) = -inf once sigmoid(m) < 1e-45 (m < -103 in
    # float32): one confidently wrong pair makes the loss inf and the gradient NaN.
    return tf.reduce_mean(tf.nn.softplus(r_rejected - r_chosen))


def make_reward_step(
    model: keras.Model, optimizer: keras.optimizers.Optimizer
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """One compiled step: ``step(chosen, chosen_len, rejected, rejected_len) -> loss``.

    ``chosen``, ``rejected``: (B, T) int32 sequences of the same B prompts with the
    preferred and the other response; ``*_len``: (B,) int32. Both go through ``model``
    (one forward pass on the 2B sequences) and one update is applied on the pairwise loss.
    """

    def step(
        chosen: tf.Tensor, chosen_len: tf.Tensor, rejected: tf.Tensor, rejected_len: tf.Tensor
    ) -> tf.Tensor:
        tokens = tf.concat([chosen, rejected], axis=0)  # (2B, T)
        lengths = tf.concat([chosen_len, rejected_len], axis=0)  # (2B,)
        with tf.GradientTape() as tape:
            rewards = model([tokens, lengths], training=True)  # (2B,)
            r_chosen, r_rejected = tf.split(rewards, 2)  # (B,) each, pair i in row i
            loss = bradley_terry_loss(r_chosen, r_rejected)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    compiled: Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor] = tf.function(step)
    return compiled


# -----------------------------------------------------------------------------
# Data: pairs of responses to the same prompt, labelled by a noisy Bradley-Terry judge


@dataclass(frozen=True)
class Pairs:
    """Preference pairs: chosen / rejected (N, T) int32, their lengths (N,), and the hidden
    rewards of both (N,) float."""

    chosen: np.ndarray
    chosen_len: np.ndarray
    rejected: np.ndarray
    rejected_len: np.ndarray
    true_chosen: np.ndarray
    true_rejected: np.ndarray


def hidden_reward(response: np.ndarray) -> float:
    """What the synthetic judge values: good tokens minus bad tokens in the response."""
    return float(np.isin(response, GOOD).sum() - np.isin(response, BAD).sum())


def make_data(seed: int = SEED, n: int = 2048) -> Pairs:
    """``n`` pairs: a prompt of 2..4 neutral tokens + SEP, two responses of 4..8 tokens.

    The label is drawn from Bradley-Terry with the hidden reward: the first response is
    chosen with probability sigmoid(r*(a) - r*(b)). So labels are noisy: a pair whose hidden
    rewards differ by 1 is labelled "wrong" 27% of the time.
    """
    r = synthetic.rng(seed)
    neutral = np.arange(9, VOCAB)
    seqs = np.full((2, n, SEQ_LEN), PAD, np.int32)
    lens = np.zeros((2, n), np.int32)
    rewards = np.zeros((2, n))
    for i in range(n):
        prompt = [*r.choice(neutral, r.integers(PROMPT_WORDS[0], PROMPT_WORDS[1] + 1)), SEP]
        for k in range(2):
            response = r.integers(2, VOCAB, r.integers(RESPONSE_WORDS[0], RESPONSE_WORDS[1] + 1))
            seq = [*prompt, *response]
            seqs[k, i, : len(seq)] = seq
            lens[k, i] = len(seq)
            rewards[k, i] = hidden_reward(response)
    first_wins = r.random(n) < 1 / (1 + np.exp(-(rewards[0] - rewards[1])))  # (n,)
    c, j = np.where(first_wins, 0, 1), np.where(first_wins, 1, 0)
    rows = np.arange(n)
    return Pairs(
        seqs[c, rows],
        lens[c, rows],
        seqs[j, rows],
        lens[j, rows],
        rewards[c, rows],
        rewards[j, rows],
    )


def build_trunk(seed: int = SEED) -> keras.Model:
    """The tiny decoder of compression.kv_cache without its LM head: (B, T) -> (B, T, 32)."""
    decoder = build_decoder(TRUNK, seed)
    return keras.Model(decoder.input, decoder.get_layer("ln_f").output, name="trunk")


# -----------------------------------------------------------------------------
# Independent references and measurement


def loss_case(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Rewards (64,) of order 3 with margins r_c - r_j ~ N(1.5, 3), as a model that has
    learned something gives (so swapping chosen and rejected changes the loss by about the
    mean margin), and 4 pairs with margins -120, -40, +40, +120."""
    r = synthetic.rng(seed)
    chosen = (3 * r.normal(size=64)).astype(np.float32)
    margin = (1.5 + 3 * r.normal(size=64)).astype(np.float32)
    margin[:4] = [-120, -40, 40, 120]
    return chosen, chosen - margin


def float64_loss_and_grads(chosen: np.ndarray, rejected: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softplus(r_j - r_c) in float64 and its gradient [d/d r_c, d/d r_j] (2, N)."""
    d = rejected.astype(np.float64) - chosen.astype(np.float64)
    loss = np.logaddexp(0.0, d).mean()  # softplus(d) = log(1 + e^d), stable
    sig = 1 / (1 + np.exp(-d))  # sigmoid(r_j - r_c): the probability the model got it wrong
    return float(loss), np.stack([-sig, sig]) / len(d)


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_reward_model(self, trunk: keras.Model) -> keras.Model: ...

    def bradley_terry_loss(self, r_chosen: tf.Tensor, r_rejected: tf.Tensor) -> tf.Tensor: ...

    def make_reward_step(
        self, model: keras.Model, optimizer: keras.optimizers.Optimizer
    ) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]: ...


def loss_and_grads(
    impl: Answer, chosen: np.ndarray, rejected: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``impl.bradley_terry_loss`` (kept as an array: a non-scalar fails the comparison on
    its shape) and its gradient in both reward vectors: (2, N)."""
    c, j = tf.constant(chosen), tf.constant(rejected)
    with tf.GradientTape() as tape:
        tape.watch([c, j])
        loss = impl.bradley_terry_loss(c, j)
    grads = tape.gradient(loss, [c, j])
    stacked = np.stack([np.zeros_like(chosen) if g is None else g.numpy() for g in grads])
    return np.asarray(loss), stacked


def padded_rewards(impl: Answer) -> tuple[np.ndarray, np.ndarray]:
    """An untrained reward model's rewards on 32 sequences, padded to T and to T + 5."""
    pairs = make_data(SEED + 2, n=32)
    model = impl.build_reward_model(build_trunk())
    tokens = pairs.chosen  # (32, 13)
    wider = np.pad(tokens, ((0, 0), (0, EXTRA_PADS)))  # (32, 18): five more PAD columns
    as_padded = np.asarray(model([tokens, pairs.chosen_len], training=False))
    more = np.asarray(model([wider, pairs.chosen_len], training=False))
    return more, as_padded


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """The loss and its gradient against float64; rewards under more padding.

    Loss ~3 with terms up to 120: float32 softplus ~1e-7 relative: atol 1e-5 + rtol 1e-5.
    Gradient entries <= 1/64: atol 1e-7 + rtol 1e-5. Padding: the same causal computation
    on a longer (masked) row; rewards ~1, float32 rounding ~1e-7: atol 1e-5 + rtol 1e-4.
    """
    chosen, rejected = loss_case()
    expected_loss, expected_grads = float64_loss_and_grads(chosen, rejected)
    loss, grads = loss_and_grads(impl, chosen, rejected)
    more, as_padded = padded_rewards(impl)
    return {
        LOSS_CHECK: compare(loss, np.asarray(expected_loss, np.float32), atol=1e-5, rtol=1e-5),
        GRAD_CHECK: compare(grads, expected_grads, atol=1e-7, rtol=1e-5),
        PAD_CHECK: compare(more, as_padded, atol=1e-5, rtol=1e-4),
    }


def check(impl: Answer) -> SolutionReport:
    """Loss, gradient and padding against references; then train and rank held-out pairs."""
    report = SolutionReport(solution="training.reward_model")
    found = reference_comparisons(impl)
    report.check_close(
        LOSS_CHECK,
        found[LOSS_CHECK],
        "loss ~3 in float32 with margins up to 120: atol 1e-5 + rtol 1e-5; chosen and "
        "rejected swapped moves it by the mean margin (~1.5), -log(sigmoid(m)) gives inf "
        "at m = -120; " + found[LOSS_CHECK].detail,
    )
    report.check_close(
        GRAD_CHECK,
        found[GRAD_CHECK],
        "entries up to 1/64 in float32: atol 1e-7 + rtol 1e-5; a pair ranked wrong by a wide "
        "margin must pull with the full 1/N, not NaN; " + found[GRAD_CHECK].detail,
    )
    report.check_close(
        PAD_CHECK,
        found[PAD_CHECK],
        "causal trunk: the last real token has not seen the padding, so its reward is the "
        "same to float32 rounding (atol 1e-5 + rtol 1e-4); the last column or a mean over "
        "positions reads padding and moves by ~0.1; " + found[PAD_CHECK].detail,
    )
    _train_and_rank(report, impl)
    return report


def train_reward_model(impl: Answer, pairs: Pairs) -> keras.Model:
    """``impl``'s reward model on a fresh trunk, trained with ``impl.make_reward_step``."""
    model = impl.build_reward_model(build_trunk())
    step = impl.make_reward_step(model, keras.optimizers.Adam(LEARNING_RATE))
    order = synthetic.rng(SEED).integers(0, len(pairs.chosen), (STEPS, BATCH))
    phase = "train reward model"
    events.start(phase, STEPS)
    for i, rows in enumerate(order):
        loss = step(
            tf.constant(pairs.chosen[rows]),
            tf.constant(pairs.chosen_len[rows]),
            tf.constant(pairs.rejected[rows]),
            tf.constant(pairs.rejected_len[rows]),
        )
        if (i + 1) % 25 == 0:
            events.advance(phase, i + 1, loss=float(loss))
    events.finish(phase)
    return model


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (average ranks for ties)."""

    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for value in np.unique(x):  # ties share their mean rank
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def _train_and_rank(report: SolutionReport, impl: Answer) -> None:
    train, held_out = make_data(), make_data(SEED + 1, n=1024)
    with report.timed("train reward model"):
        model = train_reward_model(impl, train)
    r_c = np.asarray(model([held_out.chosen, held_out.chosen_len], training=False))  # (N,)
    r_j = np.asarray(model([held_out.rejected, held_out.rejected_len], training=False))
    accuracy = float(np.mean(r_c > r_j))
    # The best any reward can do on these labels: rank by the hidden reward (ties half).
    diff = held_out.true_chosen - held_out.true_rejected
    ceiling = float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))
    rewards = np.concatenate([r_c, r_j])
    truth = np.concatenate([held_out.true_chosen, held_out.true_rejected])
    rho = spearman(rewards, truth)
    report.metric("steps x pairs per batch", f"{STEPS} x {BATCH}")
    report.metric("train / held-out pairs", f"{len(train.chosen)} / {len(held_out.chosen)}")
    report.metric("held-out pair accuracy", accuracy)
    report.metric("hidden reward's own accuracy on the noisy labels (ceiling)", ceiling)
    report.metric("held-out pairs with equal hidden rewards", float(np.mean(diff == 0)))
    report.metric("Spearman(reward, hidden reward), held-out responses", rho)
    report.metric("mean reward (free: BT sees only differences)", float(rewards.mean()))
    report.check(
        "held-out pair accuracy",
        accuracy,
        ">=",
        0.65,
        "chance is 0.5; the hidden reward itself scores the ceiling metric (~0.72: the labels "
        "are drawn from Bradley-Terry, so noisy); a swapped loss ranks below 0.5",
    )
    report.check(
        "held-out pair accuracy, short of the ceiling",
        ceiling - accuracy,
        "<=",
        0.08,
        "within 8 points of what the hidden reward itself scores on the same noisy pairs "
        "(measured: ~3 points after 150 steps; a fifth of the pairs tie on the hidden reward "
        "and no model beats a coin on those)",
    )
    report.check(
        "Spearman(reward, hidden reward)",
        rho,
        ">=",
        0.8,
        "a reward model must order single responses, not only the training pairs; a model "
        "that learned nothing scores ~0, a swapped loss ~-1",
    )


if __name__ == "__main__":
    print_check_of(__name__)
