"""Speculative decoding: a small draft proposes, the target verifies k tokens in one pass.

Decoding is memory-bound: one target forward pass per token, each reading all the weights.
A draft model much cheaper than the target proposes k tokens one by one; the target then
scores all of them in ONE forward pass over the k + 1 positions (its KV cache makes that a
chunk of k + 1 new tokens). With greedy decoding the target keeps the longest prefix of
the draft that equals its own arg-max, and at the first mismatch takes its own token
instead (when all k match, the token after them comes free: the "bonus" token). Each
target pass therefore yields between 1 and k + 1 tokens, and the output is exactly the
target's own greedy output (Leviathan et al. 2023 and Chen et al. 2023 extend this to
sampling with a rejection rule that keeps the target's distribution).

The answer is ``speculative_generate``. The checks use the tiny decoder of
``compression.kv_cache`` (target: 2 blocks, d_model 32) and a draft of 1 block, d_model 16,
both trained on the same synthetic "language" (walks around a fixed cycle through the 16
tokens), and prove: the output equals the target's greedy output token for token, with a
good draft and with a bad one; the target runs far fewer forward passes than tokens
(counted at its output layer), and no more than the reference implementation needs; and a
draft of the same size trained on other data (another cycle) is rejected almost every
round, so the target runs one pass per token again (the pitfall: the draft must be trained
on the target's data and share its tokenizer). Wall times are measured as metrics only:
on a CPU toy a step is bound by framework overhead, not by reading weights from memory, so
the draft is not cheaper to run than the target here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.fit import fit_classifier
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.kv_cache import (
    DecoderConfig,
    build_decoder,
    decode_step,
    generate_with_cache,
)

SEED = 0
DRAFT_TOKENS = 4  # k
NEW_TOKENS = 16
PROMPT_LEN = 4
N_PROMPTS = 3
VOCAB = 16
OFF_DATA_TOKENS = 5
TARGET = DecoderConfig()  # 2 blocks, d_model 32, 4 heads
DRAFT = DecoderConfig(d_model=16, n_heads=2, n_kv_heads=2, n_layers=1, d_ff=32)
TARGET_EPOCHS = 2  # 32 steps of 64: next-token accuracy 1.000 for target and drafts
DRAFT_EPOCHS = 2

# The function a candidate writes; check(impl) calls only it on impl.
ANSWER = ("speculative_generate",)

# -----------------------------------------------------------------------------
# The answer


def speculative_generate(
    target: keras.Model, draft: keras.Model, prompt: np.ndarray, n_new: int, k: int
) -> np.ndarray:
    """Greedy speculative decoding: ``n_new`` tokens after ``prompt`` (1, P) int32.

    ``target`` and ``draft``: decoders from ``compression.kv_cache.build_decoder`` (the same
    vocabulary); ``compression.kv_cache.decode_step(model, tokens, cache)`` runs n new tokens
    against a model's KV cache. Each round the draft proposes ``k`` tokens greedily and the
    target scores them all in one pass. Returns (n_new,) int32, equal to the target's own
    greedy decoding.
    """
    seq = [int(t) for t in prompt[0]]  # every token so far, prompt + accepted
    t_logits, t_cache = decode_step(target, tf.constant(prompt, tf.int32), None)  # prefill
    _, d_cache = decode_step(draft, tf.constant(prompt[:, :-1], tf.int32), None)
    seq.append(int(tf.argmax(t_logits[0, -1])))  # the target's first token: no draft needed
    while len(seq) - prompt.shape[1] < n_new:
        # 1. Draft: k greedy tokens, one cheap pass each. Its cache may lag the sequence
        #    (after a round where all k were accepted): feed whatever it has not seen.
        proposal: list[int] = []
        pending = seq[int(d_cache[0][0].shape[2]) :]
        for _ in range(k):
            logits, d_cache = decode_step(draft, tf.constant([pending], tf.int32), d_cache)
            pending = [int(tf.argmax(logits[0, -1]))]
            proposal.append(pending[0])
        # 2. Target: ONE pass over [last accepted token, d_1 .. d_k] (k + 1 positions).
        #    Row j of its logits is its own choice after seq + d_1 .. d_j.
        chunk = [seq[-1], *proposal]
        logits, t_cache = decode_step(target, tf.constant([chunk], tf.int32), t_cache)
        choice = np.argmax(np.asarray(logits[0]), axis=-1)  # (k+1,)
        # 3. Accept the longest prefix where the draft agrees with the target ...
        accepted = 0
        while accepted < k and proposal[accepted] == choice[accepted]:
            accepted += 1
        # ... and then the target's own token: the correction at the first mismatch, or the
        # bonus token after k agreements. Every pass yields accepted + 1 tokens, at least 1.
        seq += proposal[:accepted] + [int(choice[accepted])]
        # 4. Roll both caches back to the kept tokens: every token of seq but the last,
        #    which the next round feeds. K/V of rejected draft tokens must not stay.
        keep = len(seq) - 1
        t_cache = [(kk[:, :, :keep], vv[:, :, :keep]) for kk, vv in t_cache]
        d_cache = [(kk[:, :, :keep], vv[:, :, :keep]) for kk, vv in d_cache]
    return np.asarray(seq[prompt.shape[1] : prompt.shape[1] + n_new], np.int32)


# -----------------------------------------------------------------------------
# Harness: data, models, counting forward passes


def make_data(
    seed: int = SEED, n: int = 1024, length: int = 25, start_seed: int = SEED
) -> np.ndarray:
    """(n, length) int32 walks around one fixed cycle through all VOCAB tokens.

    The cycle (a random order of the tokens, fixed by ``seed``) is the "language":
    after token order[j] comes order[j + 1]. Each sequence starts at a random token.
    """
    order = synthetic.rng(seed).permutation(VOCAB)
    successor = np.empty(VOCAB, np.int32)
    successor[order] = np.roll(order, -1)  # successor[order[j]] = order[j + 1]
    x = np.empty((n, length), np.int32)
    x[:, 0] = synthetic.rng(start_seed).integers(0, VOCAB, n)
    for i in range(1, length):
        x[:, i] = successor[x[:, i - 1]]
    return x


def train_models() -> tuple[keras.Model, keras.Model, list[np.ndarray]]:
    """(target, draft, off-data draft's weights): the first two trained on the same data
    (cycle A), the off-data draft (the draft's architecture) on cycle B: the same vocabulary,
    other data. Its weights go into the draft model for its run (a model built fewer)."""
    target_w, draft_w, off_data_w = trained_weights()
    # The models trained in this process, if trained_weights just trained them (a memo miss):
    # a decoder costs ~0.8 s to build here. After a memo hit, built afresh.
    target = _trained_here.pop("target", None) or build_decoder(TARGET)
    draft = _trained_here.pop("draft", None) or build_decoder(DRAFT, seed=SEED + 1)
    target.set_weights(target_w)
    draft.set_weights(draft_w)
    return target, draft, off_data_w


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def trained_weights() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The weights of (target, draft, off-data draft) after training."""
    data, other = make_data(SEED), make_data(SEED + 1)  # (1024, 25) each
    target = build_decoder(TARGET)
    # The fused legacy Adam: the same update, half the trace of the current one's per-variable ops.
    fit_classifier(
        target,
        *_shifted(data),
        epochs=TARGET_EPOCHS,
        batch_size=64,
        phase="train target",
        optimizer=keras.optimizers.legacy.Adam(3e-3),
    )
    draft = build_decoder(DRAFT, seed=SEED + 1)
    start = draft.get_weights()
    # The off-data draft first; then the same compiled model is reset and trained again on
    # the target's data (no second trace of the training step).
    fit_classifier(
        draft,
        *_shifted(other),
        epochs=DRAFT_EPOCHS,
        batch_size=64,
        phase="train off-data draft",
        optimizer=keras.optimizers.legacy.Adam(3e-3),
    )
    off_data = draft.get_weights()
    draft.set_weights(start)
    for variable in draft.optimizer.variables():
        variable.assign(tf.zeros_like(variable))
    draft.fit(
        *_shifted(data),
        epochs=DRAFT_EPOCHS,
        batch_size=64,
        verbose=0,
        callbacks=[events.keras_callback("train draft")],
    )
    _trained_here.update(target=target, draft=draft)  # for train_models, in this process
    return target.get_weights(), draft.get_weights(), off_data


_trained_here: dict[str, keras.Model] = {}  # trained_weights -> train_models, see there


def _shifted(sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return sequences[:, :-1], sequences[:, 1:]  # inputs, next-token labels: (N, T-1) each


def prompts() -> np.ndarray:
    """(N_PROMPTS, PROMPT_LEN) int32: fresh walks on the target's cycle."""
    return make_data(SEED, n=N_PROMPTS, length=PROMPT_LEN, start_seed=SEED + 3)


class PassCounter:
    """Counts a model's forward passes (decode steps or full calls): each one runs its
    output layer "lm_head" exactly once, whatever code drives the model."""

    def __init__(self, model: keras.Model) -> None:
        self.passes = 0
        head = model.get_layer("lm_head")
        call: Callable[..., Any] = head.call

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.passes += 1
            return call(*args, **kwargs)

        head.call = counted


class Answer(Protocol):
    """What check(impl) calls: the ANSWER function, with the reference's signature."""

    def speculative_generate(
        self, target: keras.Model, draft: keras.Model, prompt: np.ndarray, n_new: int, k: int
    ) -> np.ndarray: ...


def run(
    generate: Callable[..., np.ndarray],
    target: keras.Model,
    draft: keras.Model,
    starts: np.ndarray,
    n_new: int = NEW_TOKENS,
) -> tuple[np.ndarray, int, int, float]:
    """``generate`` after each prompt in ``starts`` (N, P): tokens (N, NEW_TOKENS), target
    passes, draft passes, wall seconds."""
    target_count, draft_count = PassCounter(target), PassCounter(draft)
    start = time.perf_counter()
    out = [np.asarray(generate(target, draft, p[None], n_new, DRAFT_TOKENS)) for p in starts]
    seconds = time.perf_counter() - start
    shapes_ok = all(o.shape == (n_new,) for o in out)
    tokens = np.stack(out) if shapes_ok else np.full((len(starts), n_new), -1)
    return tokens, target_count.passes, draft_count.passes, seconds


def check(impl: Answer) -> SolutionReport:
    """Speculative decoding with ``impl``: exactness, passes saved, the off-data pitfall."""
    report = SolutionReport(solution="compression.speculative_decoding")
    target, draft, off_data_weights = train_models()
    report.metric("target parameters", int(target.count_params()))
    report.metric("draft parameters", int(draft.count_params()))
    total = N_PROMPTS * NEW_TOKENS

    # The reference output: the target alone, greedy with its KV cache (compression.kv_cache).
    start = time.perf_counter()
    expected, _ = generate_with_cache(target, prompts(), NEW_TOKENS)  # (N, n_new)
    target_only_s = time.perf_counter() - start

    starts = prompts()
    # The reference implementation first, on the same models: its passes are counted before
    # the candidate's code has touched them (each run counts only the passes made after it
    # starts counting).
    _, ref_passes, _, _ = run(speculative_generate, target, draft, starts)
    tokens, passes, draft_passes, spec_s = run(impl.speculative_generate, target, draft, starts)
    # The off-data draft on one prompt, OFF_DATA_TOKENS tokens: it is rejected almost every
    # round, k draft passes per token, and a few tokens are enough to measure it.
    off_data = draft
    off_data.set_weights(off_data_weights)  # the same architecture, trained on cycle B
    off_tokens, off_passes, _, _ = run(
        impl.speculative_generate, target, off_data, starts[:1], OFF_DATA_TOKENS
    )

    per_pass, off_per_pass = total / passes, OFF_DATA_TOKENS / off_passes
    report.metric("target forward passes, no speculation (one per token)", total)
    report.metric(f"target forward passes, speculative (k = {DRAFT_TOKENS})", passes)
    report.metric("target passes, reference implementation", ref_passes)
    report.metric("draft forward passes", draft_passes)
    report.metric("tokens per target pass", per_pass)
    report.metric("acceptance rate (from counted passes)", acceptance(total, passes, N_PROMPTS))
    report.metric("tokens per target pass, off-data draft", off_per_pass)
    report.metric("acceptance rate, off-data draft", acceptance(OFF_DATA_TOKENS, off_passes, 1))
    report.metric("wall time, target alone with KV cache", target_only_s * 1e3 / total, "ms/token")
    report.metric("wall time, speculative", spec_s * 1e3 / total, "ms/token")
    report.metric("wall time ratio target alone / speculative", target_only_s / spec_s, "x")

    off_expected = expected[:1, :OFF_DATA_TOKENS]
    differ = int((tokens != expected).sum()) + int((off_tokens != off_expected).sum())
    report.check(
        "speculative output vs the target's greedy output (tokens that differ)",
        differ,
        "==",
        0,
        f"{total} tokens with the same-data draft ({N_PROMPTS} prompts x {NEW_TOKENS}) and "
        f"{OFF_DATA_TOKENS} with the off-data draft (rejections every round): only tokens "
        "equal to the target's arg-max are kept and the target's own token replaces the first "
        "mismatch, so the output is the target's greedy output exactly, whatever the draft; "
        "accepting unverified or one extra draft token changes it",
    )
    report.check(
        "target passes, speculative / reference implementation",
        passes / ref_passes,
        "<=",
        1.0,
        f"the reference takes accepted + 1 tokens per pass ({ref_passes} passes, counted the "
        "same way); dropping the bonus token after k agreements, or comparing each draft token "
        "with the wrong row of the target's logits, needs more passes for the same tokens",
    )
    report.check(
        "target passes / tokens generated",
        passes / total,
        "<=",
        0.5,
        f"a draft trained on the target's data agrees with it on most tokens: measured "
        f"{per_pass:.2f} tokens per pass (at most k + 1 = {DRAFT_TOKENS + 1}); 0.5 asks for at "
        "least 2 tokens per target pass, half the passes saved",
    )
    report.check(
        "tokens per target pass: off-data draft / same-data draft",
        off_per_pass / per_pass,
        "<=",
        0.6,
        f"a draft of the same size trained on other data agrees with the target rarely "
        f"({off_per_pass:.2f} tokens per pass against {per_pass:.2f}); a verifier that "
        "accepts without checking gets k + 1 tokens per pass from any draft",
    )
    return report


def acceptance(tokens: int, target_passes: int, prompts: int) -> float:
    """Accepted draft tokens / drafted tokens, from counted passes: every target pass picks
    exactly one token itself (the first token after the prefill, then each round's correction
    or bonus), so accepted = tokens - passes; rounds = passes - prefills, k drafted each.
    (The last round's surplus tokens, cut at n_new, are not counted as accepted.)"""
    rounds = target_passes - prompts
    return (tokens - target_passes) / (DRAFT_TOKENS * rounds) if rounds > 0 else float("nan")


if __name__ == "__main__":
    print_check_of(__name__)
