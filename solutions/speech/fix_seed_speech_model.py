"""Debugging the seed's speech model: Conv2D on a 3-D input, and a loss without alignment.

The seed's CNN + LSTM recognizer is never built: ``Conv2D`` needs 4-D input (B, H, W,
channels), but a spectrogram batch is 3-D (B, T, n_mels), so Keras raises ValueError.
With the convolution made 1-D it builds, but it still cannot be trained: it emits one
softmax per (pooled) frame, a transcript has far fewer characters than there are frames,
and nothing says which frame belongs to which character, so ``categorical_crossentropy``
against the transcript fails on the shapes (and would be meaningless with padded ones).
Its 29 outputs likely include a blank already (26 letters, space, apostrophe, blank); what
no cross-entropy can do is give that blank its role, which is CTC's collapse rule. The fix:
``Conv1D`` + ``MaxPooling1D`` over time, logits for the characters plus the blank (index
passed explicitly), and the CTC loss, which sums over every alignment. Made bidirectional,
the LSTM's backward direction starts at each utterance's own end (the test batch is padded
to its longest utterance), checked by comparing an utterance's logits alone and in the
padded batch. Trained with CTC, the fixed model transcribes held-out synthetic utterances
with a low character error rate.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit.compare import Comparison
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import run_seed
from aiprep.kit.synthetic.sequences import Utterances
from solutions.speech.ctc_speech_recognition import (
    TIME_STRIDE,
    Forward,
    character_error_rate,
    greedy_decode,
    make_data,
    padding_comparison,
    traced_once,
    train,
)

SEED = 0
TRAIN_UTTERANCES = 1000  # of the reference's 1500: enough for a clear result, cheaper
EPOCHS = 3

# The seed's code (000, "3. 语音识别"), verbatim up to compile; the fit/evaluate lines
# that use its undefined x_train / y_train are cut.
ORIGINAL = """
# 导入必要的库
import tensorflow as tf
from tensorflow.keras.layers import Input, LSTM, Dense, Conv2D, MaxPooling2D, Flatten
from tensorflow.keras.models import Model

# 构建输入层
input_data = Input(shape=(None, 26))

# 卷积神经网络
conv = Conv2D(filters=64, kernel_size=(3, 3), activation='relu')(input_data)
pool = MaxPooling2D(pool_size=(2, 2))(conv)

# 循环神经网络
lstm = LSTM(units=128, return_sequences=True)(pool)

# 全连接层
dense = Dense(units=128, activation='relu')(lstm)

# 输出层
output = Dense(units=29, activation='softmax')(dense)

# 构建模型
model = Model(inputs=input_data, outputs=output)

# 编译模型
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# ... model.fit(x_train, y_train, ...), model.evaluate(x_test, y_test)
"""

SEED_IMPORTS = """import tensorflow as tf
from tensorflow.keras.layers import Input, LSTM, Dense, Conv2D, MaxPooling2D, Flatten
from tensorflow.keras.models import Model
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_model",)
BASED_ON = "speech.ctc_speech_recognition"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_model(self, n_mels: int, num_chars: int) -> keras.Model: ...


# -----------------------------------------------------------------------------
# The answer: the seed's model, fixed for CTC


def build_model(n_mels: int, num_chars: int) -> keras.Model:
    """Frames (B, T, n_mels) float32 -> logits (B, ceil(T / 2), num_chars + 1) float32.

    Index ``num_chars`` (the last) is the CTC blank; no softmax (the CTC loss takes logits).
    Frames past an utterance's end are all-zero padding and do not change its logits.
    """
    frames = keras.layers.Input((None, n_mels))  # (B, T, n_mels), T varies
    valid = tf.reduce_any(tf.not_equal(frames, 0.0), axis=-1)  # (B, T): padding is all-zero
    # Fix: Conv1D over time (the input is a sequence of feature vectors, 3-D), not Conv2D.
    x = keras.layers.Conv1D(64, 3, padding="same", activation="relu")(frames)  # (B, T, 64)
    # MaxPooling1D halves the frame rate: (B, ceil(T / 2), 64); "same" keeps the last frame.
    x = keras.layers.MaxPooling1D(TIME_STRIDE, padding="same")(x)
    lengths = tf.reduce_sum(tf.cast(valid[:, ::TIME_STRIDE], tf.int32), axis=1)  # (B,) ceil(T_b/2)
    # Made bidirectional (the seed's LSTM is forward only). The backward direction must start
    # at each utterance's own last frame, not read the batch's padding first: reverse each row
    # within its length (or pass mask= to keras.layers.Bidirectional). RNN(LSTMCell) computes
    # what keras.layers.LSTM does, minus LSTM's CPU/cuDNN kernel switch (trace time on a CPU).
    forward = keras.layers.RNN(keras.layers.LSTMCell(64), return_sequences=True)(x)  # (B, T', 64)
    flipped = tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)
    backward = keras.layers.RNN(keras.layers.LSTMCell(64), return_sequences=True)(flipped)
    backward = tf.reverse_sequence(backward, lengths, seq_axis=1, batch_axis=0)
    x = keras.layers.Concatenate()([forward, backward])  # (B, T', 128)
    x = keras.layers.Dense(128, activation="relu")(x)
    # Fix: one logit per character plus the blank, and no softmax: CTC normalises itself.
    # (The seed's 29 units likely already count a blank: 26 letters, space, apostrophe.)
    return keras.Model(frames, keras.layers.Dense(num_chars + 1)(x))


# -----------------------------------------------------------------------------
# The seed's failures, and the measurement


def original_error(fixes: list[tuple[str, str]], fit: bool) -> BaseException | None:
    """Run the seed's code with ``fixes`` made (and, if ``fit``, one epoch on transcripts);
    the exception or None.

    The seed's imports are pointed at tf_keras (Keras 2, this project's Keras): the names
    it imports are given in its namespace. The seed gives no data: we substitute 4 random
    40-frame utterances with 8-character one-hot transcripts, the shape a transcript has
    before any alignment.
    """
    layers = keras.layers
    namespace: dict[str, object] = {"tf": tf, "Model": keras.Model}
    for name in ("Input", "LSTM", "Dense", "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D"):
        namespace[name] = getattr(layers, name)
    run = run_seed(ORIGINAL, namespace, replace=[(SEED_IMPORTS, ""), *fixes])
    if run.error is None and fit:
        g = np.random.default_rng(SEED)
        namespace["x"] = g.random((4, 40, 26), dtype=np.float32)  # (B, T, 26)
        namespace["y"] = np.eye(29, dtype=np.float32)[g.integers(0, 29, size=(4, 8))]  # (B, L, 29)
        run = run_seed("model.fit(x, y, verbose=0)", namespace, filename="<seed fit>")
    error: BaseException | None = run.error
    return error


def transcribe(forward: Forward, data: Utterances) -> list[list[int]]:
    """Greedy CTC decoding (the reference decoder) of every utterance of ``data``, one batch
    padded to its longest."""
    logits = np.asarray(forward(data.features))  # (N, T', C + 1)
    return greedy_decode(logits, -(-data.feature_lengths // TIME_STRIDE))  # ceil(T / 2) frames


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """The equality check: an utterance's logits padded alone vs in a padded batch."""
    return {
        "logits of an utterance: padded alone vs in a padded batch": padding_comparison(
            impl.build_model
        )
    }


def check_fixed_model(impl: Answer, report: SolutionReport) -> None:
    """The fixed model: output shape, padding, then CTC training and held-out CER.

    Stops after the shape check when the shape is wrong.
    """
    data = make_data(SEED)
    train_set, test = data.train, data.test
    n_mels, num_chars = train_set.features.shape[-1], train_set.num_chars
    keras.utils.set_random_seed(SEED)
    model = impl.build_model(n_mels, num_chars)
    forward = traced_once(model, n_mels)  # the shape probe, and the test set before/after training
    shape = tuple(forward(np.zeros((2, 21, n_mels), np.float32)).shape)
    expected = (2, -(-21 // TIME_STRIDE), num_chars + 1)  # (B, ceil(T / 2), chars + blank)
    report.metric("output shape for 21 frames", str(shape))
    report.check(
        "output is (B, ceil(T / 2), num_chars + 1) logits",
        float(shape == expected),
        "==",
        1,
        "halved frame rate, one logit per character plus the CTC blank",
    )
    if shape != expected:
        return  # CTC training below assumes that layout

    pad_cmp = reference_comparisons(impl)[
        "logits of an utterance: padded alone vs in a padded batch"
    ]
    report.metric("logits padded alone vs in a padded batch: max |diff|", pad_cmp.max_abs_diff)
    report.check_close(
        "logits of an utterance: padded alone vs in a padded batch",
        pad_cmp,
        "the backward LSTM starts at the utterance's own last frame, not the batch's padding; "
        "logits ~1 after a ~30-step LSTM in float32: atol 1e-5 + rtol 1e-5 (the reference uses "
        "~0.02 of it; a forward-only LSTM passes too); a Bidirectional LSTM without a mask "
        "lands at ~2.6e3; " + pad_cmp.detail,
    )

    refs = [test.transcript(i) for i in range(len(test))]
    untrained_cer = character_error_rate(refs, transcribe(forward, test))
    subset = Utterances(
        train_set.features[:TRAIN_UTTERANCES],
        train_set.feature_lengths[:TRAIN_UTTERANCES],
        train_set.labels[:TRAIN_UTTERANCES],
        train_set.label_lengths[:TRAIN_UTTERANCES],
        train_set.alphabet,
    )
    history = train(model, subset, epochs=EPOCHS)
    cer = character_error_rate(refs, transcribe(forward, test))
    report.metric("CTC loss per epoch", " ".join(f"{v:.2f}" for v in history))
    report.metric("untrained CER", untrained_cer)
    report.metric("test CER", cer)
    report.check("test CER", cer, "<=", 0.2, "held-out utterances, greedy CTC decoding")


def check(impl: Answer) -> SolutionReport:
    """The fixed model's output shape, padding and CER trained with CTC; the original's two
    failures."""
    report = SolutionReport(solution="speech.fix_seed_speech_model")
    # The fixed model first, so a wrong answer is decided early. Both parts seed
    # themselves, so their order changes none of the other's numbers.
    check_fixed_model(impl, report)
    _seed_facts(report)
    return report


def _seed_facts(report: SolutionReport) -> None:
    """The seed as written, then with the convolution made 1-D (trained on transcripts).
    Facts about the seed's code (outside the verdict: a candidate's code cannot change them).
    """
    keras.utils.set_random_seed(SEED)
    report.expect_raise(
        "original raises ValueError",
        original_error([], fit=False),
        ValueError,
        "ndim=3",
        "Conv2D expects (B, H, W, C); the spectrogram batch is (B, T, n_mels)",
    )
    one_d = [
        ("Conv2D(filters=64, kernel_size=(3, 3)", "Conv1D(filters=64, kernel_size=3"),
        ("MaxPooling2D(pool_size=(2, 2))", "MaxPooling1D(2)"),
    ]
    report.expect_raise(
        "original with Conv1D raises ValueError on transcripts",
        original_error(one_d, fit=True),
        ValueError,
        "incompatible",
        "per-frame cross-entropy needs one label per frame; a transcript has no alignment",
    )


if __name__ == "__main__":
    print_check_of(__name__)
