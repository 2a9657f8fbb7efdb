"""Speech recognition with a convolutional + bidirectional LSTM model trained with CTC.

A speech corpus gives each utterance as frames (T, n_mels) and its transcript (L characters,
L < T), but not which frames belong to which character. CTC (connectionist temporal
classification) trains on exactly that: the model emits, per frame, a distribution over the
characters plus a "blank", and the loss sums the probability of every frame-level path that
collapses to the transcript (merge repeats, then drop blanks). Greedy decoding does the same
collapse on the arg-max path. On synthetic utterances (character prototype spectra held for a
random number of frames, with varying speaking rate, speaker offset and noise) the model reaches
a character error rate (CER) of a few percent on held-out utterances, double letters included,
while the same network untrained is near 100%. The module's own brute-force CTC (enumerating
every path of a tiny example) checks the loss, and hand-built paths check the decoder.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep import progress
from aiprep.report import SolutionReport, print_check_of
from aiprep.synthetic.sequences import Utterances, UtteranceSplit, utterance_split

SEED = 0
EPOCHS = 4
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
TIME_STRIDE = 2  # the model emits one output frame per 2 input frames


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_model", "ctc_loss", "greedy_decode", "train")

# -----------------------------------------------------------------------------
# The answer: model, CTC loss, greedy decoding, training loop


def build_model(n_mels: int, num_chars: int) -> keras.Model:
    """Frames (B, T, n_mels) float32 -> logits (B, ceil(T / TIME_STRIDE), num_chars + 1).

    Index ``num_chars`` (the last) is the CTC blank. Conv1D, not the seed's Conv2D: the input
    is a sequence of feature vectors (3-D), and a 1-D convolution over time mixes a few
    neighbouring frames, as the seed's CNN front end intended. Its stride halves the frame
    rate, which halves the LSTM's sequential steps (the slow part). The bidirectional LSTM
    then sees the whole utterance in both directions before each output frame's decision.
    """
    frames = keras.layers.Input((None, n_mels))  # (B, T, n_mels); T varies between batches
    x = keras.layers.Conv1D(64, 5, padding="same", activation="relu")(frames)  # (B, T, 64)
    # Subsampling is safe only while T / stride >= L + (number of double letters): CTC needs
    # one output frame per character plus a blank between repeats. Our slowest-to-fastest
    # speakers hold a character >= 3 frames, so a stride of 2 always leaves room.
    x = keras.layers.Conv1D(64, 3, strides=TIME_STRIDE, padding="same", activation="relu")(x)
    # x: (B, T', 64) with T' = ceil(T / 2)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True))(x)  # (B, T', 128)
    logits = keras.layers.Dense(num_chars + 1)(x)  # (B, T', num_chars + 1): no softmax
    return keras.Model(frames, logits)


def ctc_loss(
    labels: tf.Tensor, logits: tf.Tensor, label_lengths: tf.Tensor, logit_lengths: tf.Tensor
) -> tf.Tensor:
    """Per-utterance CTC negative log-likelihood, (B,) float32.

    ``labels``: (B, L_max) int, character ids, anything past ``label_lengths`` (B,) ignored.
    ``logits``: (B, T, num_chars + 1) float32, blank last; frames past ``logit_lengths`` (B,)
    ignored. The loss is -log sum over all frame paths that collapse to the label.
    """
    return tf.nn.ctc_loss(
        labels=tf.cast(labels, tf.int32),
        logits=logits,
        label_length=tf.cast(label_lengths, tf.int32),
        logit_length=tf.cast(logit_lengths, tf.int32),
        logits_time_major=False,  # ours are (B, T, C); the default expects (T, B, C)
        blank_index=-1,  # dense labels default to blank 0, which is our character "a"
    )


def greedy_decode(logits: np.ndarray, logit_lengths: np.ndarray) -> list[list[int]]:
    """Best-path decoding: per utterance, the character ids of the collapsed arg-max path.

    ``logits``: (B, T, num_chars + 1) float, blank last; ``logit_lengths``: (B,) int.
    Collapse order matters: merge repeated symbols FIRST, then drop blanks, so that the path
    "l l _ l" reads "ll" (the blank separates two l's) while "l l l" reads "l".
    """
    blank = logits.shape[-1] - 1
    best = np.asarray(logits).argmax(axis=-1)  # (B, T)
    out = []
    for path, length in zip(best, logit_lengths, strict=True):
        path = path[: int(length)]  # frames past the end are padding
        merged = [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]
        out.append([int(s) for s in merged if s != blank])
    return out


def train(
    model: keras.Model,
    data: Utterances,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
) -> list[float]:
    """Train ``model`` in place with CTC on ``data``; returns the mean loss of every epoch."""
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE, clipnorm=5.0)
    n_mels = data.features.shape[-1]
    spec = [
        tf.TensorSpec((None, None, n_mels), tf.float32),  # frames (B, T, n_mels)
        tf.TensorSpec((None,), tf.int32),  # frame counts (B,)
        tf.TensorSpec((None, None), tf.int32),  # labels (B, L_max)
        tf.TensorSpec((None,), tf.int32),  # label lengths (B,)
    ]

    @tf.function(input_signature=spec)  # one trace for every batch shape
    def step(x: tf.Tensor, x_len: tf.Tensor, y: tf.Tensor, y_len: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(x, training=True)  # (B, T', C + 1), T' = ceil(T / TIME_STRIDE)
            # Each utterance's valid output frames: its frame count, subsampled the same way.
            logit_len = (x_len + TIME_STRIDE - 1) // TIME_STRIDE  # (B,)
            loss = tf.reduce_mean(ctc_loss(y, logits, y_len, logit_len))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    n = len(data)
    order_rng = np.random.default_rng(SEED)
    progress.start("train CTC model", epochs, unit="epoch")
    history = []
    for epoch in range(epochs):
        order = order_rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            # Trim the batch to its longest utterance / transcript: less padding, less work.
            t_max, l_max = data.feature_lengths[idx].max(), data.label_lengths[idx].max()
            losses.append(
                step(
                    data.features[idx, :t_max],
                    data.feature_lengths[idx],
                    data.labels[idx, :l_max],
                    data.label_lengths[idx],
                )
            )
        history.append(float(np.mean(losses)))
        progress.advance("train CTC model", epoch + 1, loss=history[-1])
    return history


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> UtteranceSplit:
    """1500 train / 300 test utterances of 3-8 characters over "abcdefghijkl".

    Features (N, T_max, 16) float32 (T between about 11 and 61 frames), labels (N, 8) int32
    padded with -1; see ``aiprep.synthetic.sequences``.
    """
    return utterance_split(n_train=1500, n_test=300, seed=seed)


def edit_distance(ref: list[int], hyp: list[int]) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions from hyp to ref."""
    row = list(range(len(hyp) + 1))  # distances from ref[:0] to every prefix of hyp
    for i, r in enumerate(ref, 1):
        prev_diag, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev_diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev_diag + (r != h))
    return row[-1]


def character_error_rate(refs: list[list[int]], hyps: list[list[int]]) -> float:
    """Corpus CER: total edit distance / total reference characters."""
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    return errors / sum(len(r) for r in refs)


def time_stride(model: keras.Model, n_mels: int) -> int:
    """How many input frames ``model`` turns into one output frame (1 if no subsampling)."""
    probe = np.zeros((1, 64, n_mels), np.float32)
    return 64 // int(model(probe).shape[1])


def transcribe(impl: object, model: keras.Model, data: Utterances) -> list[list[int]]:
    """Decode every utterance of ``data`` with ``impl.greedy_decode``."""
    logits = model.predict(data.features, batch_size=256, verbose=0)  # (N, T', C + 1)
    stride = time_stride(model, data.features.shape[-1])
    logit_lengths = -(-data.feature_lengths // stride)  # ceil(T / stride) valid output frames
    return impl.greedy_decode(logits, logit_lengths)  # type: ignore[attr-defined]


def brute_force_ctc(log_probs: np.ndarray, label: list[int], blank: int) -> float:
    """-log P(label) by enumerating all C**T frame paths of ``log_probs`` (T, C)."""
    steps, classes = log_probs.shape
    total = -np.inf
    for path in itertools.product(range(classes), repeat=steps):
        merged = [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]
        if [s for s in merged if s != blank] == label:
            total = np.logaddexp(total, sum(log_probs[t, s] for t, s in enumerate(path)))
    return float(-total)


def ctc_loss_error(impl: object) -> float:
    """Max |impl.ctc_loss - brute force| on tiny batches with padding and double letters."""
    g = np.random.default_rng(SEED)
    logits = g.normal(0.0, 1.5, size=(4, 5, 4)).astype(np.float32)  # B=4, T=5, 3 chars + blank
    labels = np.array([[0, 1, 2], [1, 1, -1], [2, -1, -1], [0, 2, 0]], np.int32)
    label_lengths = np.array([3, 2, 1, 3], np.int32)
    logit_lengths = np.array([5, 4, 5, 3], np.int32)  # two utterances shorter than the batch
    got = np.asarray(impl.ctc_loss(labels, logits, label_lengths, logit_lengths))  # type: ignore[attr-defined]
    errors = []
    for b in range(len(labels)):
        t = logit_lengths[b]
        log_probs = logits[b, :t] - np.logaddexp.reduce(logits[b, :t], axis=-1, keepdims=True)
        want = brute_force_ctc(log_probs, [int(c) for c in labels[b, : label_lengths[b]]], 3)
        errors.append(abs(float(got[b]) - want))
    return max(errors)


def decoder_accuracy(impl: object) -> float:
    """Fraction of hand-built frame paths that ``impl.greedy_decode`` reads correctly."""
    blank = 3
    # path (blank "_" = 3), valid length, expected transcript
    cases = [
        ("aab_bb_", 7, [0, 1, 1]),
        ("_aa_a__", 7, [0, 0]),  # a blank between two runs of "a": a double letter
        ("abbbc__", 7, [0, 1, 2]),
        ("__c_cca", 5, [2, 2]),  # frames 5-6 are padding: the trailing "a" must not count
        ("_______", 7, []),
    ]
    symbols = {"a": 0, "b": 1, "c": 2, "_": blank}
    logits = np.zeros((len(cases), 7, blank + 1), np.float32)
    for b, (path, _, _) in enumerate(cases):
        logits[b, np.arange(7), [symbols[s] for s in path]] = 5.0  # one-hot-ish frames
    lengths = np.array([length for _, length, _ in cases], np.int32)
    got = impl.greedy_decode(logits, lengths)  # type: ignore[attr-defined]
    return float(np.mean([list(g) == want for g, (_, _, want) in zip(got, cases, strict=True)]))


def has_double_letter(chars: list[int]) -> bool:
    return any(a == b for a, b in itertools.pairwise(chars))


def check(impl: object) -> SolutionReport:
    """Check ``impl.ctc_loss`` and ``impl.greedy_decode``, then train and measure CER."""
    report = SolutionReport(solution="speech.ctc_speech_recognition")

    # 1. The pieces, on cases small enough to know the answer exactly.
    loss_error = ctc_loss_error(impl)
    decoded_ok = decoder_accuracy(impl)

    # 2. The whole recognizer: untrained, then trained, on held-out utterances.
    data = make_data()
    test = data.test
    refs = [test.transcript(i) for i in range(len(test))]
    keras.utils.set_random_seed(SEED)
    model = impl.build_model(data.train.features.shape[-1], data.train.num_chars)  # type: ignore[attr-defined]
    untrained_cer = character_error_rate(refs, transcribe(impl, model, test))
    t0 = time.perf_counter()
    history = impl.train(model, data.train)  # type: ignore[attr-defined]
    train_s = time.perf_counter() - t0
    hyps = transcribe(impl, model, test)
    cer = character_error_rate(refs, hyps)
    doubles = [i for i, r in enumerate(refs) if has_double_letter(r)]
    double_cer = character_error_rate([refs[i] for i in doubles], [hyps[i] for i in doubles])
    exact = float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)]))

    report.metric("max |ctc_loss - brute force|", loss_error)
    report.metric("hand-built paths decoded correctly", decoded_ok)
    report.metric("test utterances", len(test))
    report.metric("test utterances with a double letter", len(doubles))
    report.metric("untrained CER", untrained_cer)
    report.metric("test CER", cer)
    report.metric("test CER, utterances with a double letter", double_cer)
    report.metric("test utterances transcribed exactly", exact)
    report.metric("final train CTC loss", history[-1] if len(history) else float("nan"))
    report.metric("parameters", int(model.count_params()))
    report.metric("train wall time", train_s, "s")
    report.check(
        "max |ctc_loss - brute force|",
        loss_error,
        "<=",
        1e-3,
        "the loss sums every path that collapses to the label, ignoring padded frames/labels",
    )
    report.check(
        "hand-built paths decoded correctly",
        decoded_ok,
        "==",
        1.0,
        "merge repeats, then drop blanks; frames past the length ignored",
    )
    report.check("test CER", cer, "<=", 0.1, "held-out utterances, greedy decoding")
    report.check(
        "test CER / untrained CER",
        cer / max(untrained_cer, 1e-9),
        "<=",
        0.2,
        "the error rate comes from training, not from the decoder or the metric",
    )
    report.check(
        "test CER, utterances with a double letter",
        double_cer,
        "<=",
        0.15,
        "a blank between two runs of the same character keeps both",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
