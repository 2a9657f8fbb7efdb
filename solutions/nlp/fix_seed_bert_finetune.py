"""Debugging the seed's BERT classifier: a download, two Kerases and a one-hot loss.

The seed's text classifier (``TFBertModel`` + ``Dense(2, softmax)`` on the ``[CLS]``
vector) fails three times before it trains. Offline, ``from_pretrained('bert-base-uncased')``
cannot fetch anything (transformers 4.57's ``BertTokenizer`` even reports it as a
``TypeError``). With a local checkpoint, ``tensorflow.keras`` (Keras 3 since TF 2.16)
``Input`` tensors are refused by transformers' TF model, which is a tf_keras (Keras 2)
layer. With tf_keras, ``categorical_crossentropy`` wants one-hot labels and integer class
ids give a shape error. The fixed ``build_classifier`` keeps the seed's design (functional
model, head on the ``[CLS]`` vector) with tf_keras, logits and the sparse loss, and learns
a sentiment task whose label depends on word order, moving BERT's own weights (fine-tuned,
not only the head). The seed's failures are facts about the seed, not checks of the
candidate; a candidate's training that crashes fails the run. A small randomly initialised BERT,
saved with ``save_pretrained`` to a temp dir, stands in for ``bert-base-uncased``.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol
from unittest import mock

import huggingface_hub.constants
import numpy as np
import tensorflow as tf
import tf_keras as keras
import transformers
import transformers.utils.hub
from tensorflow.python.autograph.core import ag_ctx
from transformers import BertTokenizerFast, TFBertModel
from transformers.models.bert.modeling_tf_bert import TFBertMainLayer

from aiprep.kit import events, synthetic
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import run_seed
from aiprep.kit.synthetic.text import negation_sentences
from solutions.nlp.bert_text_classifier import (
    MAX_LEN,
    VOCAB_SIZE,
    build_model,
    encode,
    report_encoder_changed,
    train_tokenizer,
)

SEED = 0
EPOCHS = 5
BATCH_SIZE = 32
LEARNING_RATE = 1e-3  # a model trained from scratch; 2e-5..5e-5 for a pretrained BERT

# The seed's code (000, "2. 自然语言处理"), verbatim. It defines no data.
ORIGINAL = """
# 导入必要的库
import tensorflow as tf
from transformers import BertTokenizer, TFBertModel
from tensorflow.keras.layers import Input, Dense
from tensorflow.keras.models import Model

# 数据预处理
tokenizer = BertTokenizer.from_pretrained('bert-base-uncased')
max_length = 128

# 构建输入层
input_ids = Input(shape=(max_length,), dtype=tf.int32)
attention_mask = Input(shape=(max_length,), dtype=tf.int32)

# 加载预训练BERT模型
bert = TFBertModel.from_pretrained('bert-base-uncased')
output = bert(input_ids, attention_mask=attention_mask)

# 调整部分层
output = tf.keras.layers.Dense(128, activation='relu')(output.last_hidden_state[:, 0, :])

# 构建输出层
predictions = Dense(2, activation='softmax')(output)

# 构建模型
model = Model(inputs=[input_ids, attention_mask], outputs=predictions)

# 模型编译
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# 模型训练
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_data=(x_val, y_val))

# 模型评估
_, val_acc = model.evaluate(x_val, y_val)
print('Validation accuracy:', val_acc)
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_classifier",)
BASED_ON = "nlp.bert_text_classifier"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_classifier(self, checkpoint: str, max_len: int, num_labels: int) -> keras.Model: ...


# -----------------------------------------------------------------------------
# The answer: the seed's model, fixed


def build_classifier(checkpoint: str, max_len: int, num_labels: int) -> keras.Model:
    """The seed's classifier, fixed and compiled: BERT from ``checkpoint`` + a head on [CLS].

    ``checkpoint``: a hub name or a local ``save_pretrained`` directory. Inputs: a list
    ``[input_ids, attention_mask]``, each (B, ``max_len``) int32. Output: (B, num_labels)
    float32 logits. Compiled for integer labels (B,) with ``fit``.
    """
    # Fix: tf_keras Inputs. transformers' TF models are tf_keras (Keras 2) layers; the
    # seed's `tensorflow.keras` is Keras 3 in TF >= 2.16, whose tensors they refuse.
    input_ids = keras.layers.Input(shape=(max_len,), dtype=tf.int32)  # (B, T)
    attention_mask = keras.layers.Input(shape=(max_len,), dtype=tf.int32)  # (B, T), 0 on [PAD]
    bert = TFBertModel.from_pretrained(checkpoint)
    hidden = bert(input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
    x = keras.layers.Dense(128, activation="relu")(hidden[:, 0, :])  # [CLS]: (B, H) -> (B, 128)
    # Fix: logits (no softmax) with the SPARSE loss, which takes integer class ids (B,);
    # 'categorical_crossentropy' needs one-hot labels (B, num_labels).
    logits = keras.layers.Dense(num_labels)(x)  # (B, C)
    model = keras.Model(inputs=[input_ids, attention_mask], outputs=logits)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],  # sparse accuracy, arg-max of the logits
    )
    return model


# -----------------------------------------------------------------------------
# Running the seed's code


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """What ``HF_HUB_OFFLINE=1`` does, set after import: no network, and an empty cache.

    transformers reads the variable once at import, so its module copies are patched.
    Without this the call retries for minutes here before failing the same way.
    """
    with (
        tempfile.TemporaryDirectory() as empty_cache,
        mock.patch.object(transformers.utils.hub, "_is_offline_mode", True),
        mock.patch.object(transformers.utils.hub, "TRANSFORMERS_CACHE", empty_cache),
        mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True),
    ):
        yield


@contextlib.contextmanager
def no_autograph() -> Iterator[None]:
    """Call BERT without converting the transformers source with AutoGraph.

    Keras converts every layer it calls in a graph (functional model building, tf.function);
    for BERT that costs ~3 s each time on a CPU, and its code needs no conversion. This is
    TensorFlow's internal AutoGraph switch: ``tf.function(autograph=False)`` alone did not
    stop the conversion of the layers inside ``model.train_step`` here.
    """
    with ag_ctx.ControlStatusCtx(status=ag_ctx.Status.DISABLED):
        yield


def run_original(
    namespace: dict[str, Any], replace: list[tuple[str, str]], source: str = ORIGINAL
) -> BaseException | None:
    """Run the seed's code (``source``, with ``replace`` made) in ``namespace``; the
    exception it raises, or None.

    ``fit`` runs eagerly so the error comes from the first batch, not after a graph trace
    (the same train_step and loss code raise the same error); its printing is dropped.
    """
    tf.config.run_functions_eagerly(True)
    try:
        with no_autograph(), warnings.catch_warnings():
            # tf.data says run_functions_eagerly does not apply to it: true and harmless.
            warnings.simplefilter("ignore", UserWarning)
            error: BaseException | None = run_seed(source, namespace, replace=replace).error
    finally:
        tf.config.run_functions_eagerly(False)
    return error


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """2048 train / 512 test sentences (NumPy str (N,)), int labels in {0, 1}: the label
    depends on which word "not" precedes (see nlp.bert_text_classifier)."""
    return negation_sentences(n_train=2048, n_test=512, seed=seed)


def train(model: keras.Model, x: list[np.ndarray], y: np.ndarray) -> list[float]:
    """EPOCHS of ``model.train_step`` (what ``fit`` runs: the compiled loss and optimizer)
    in one graph without AutoGraph; the mean training loss of every epoch, as fit logs it."""
    model.optimizer.build(model.trainable_variables)  # slots made outside the tf.function
    step = tf.function(model.train_step, autograph=False, reduce_retracing=True)
    order = synthetic.rng(SEED)
    steps = len(y) // BATCH_SIZE
    events.start("fine-tune BERT classifier", EPOCHS * steps)
    history = []
    with no_autograph():
        for epoch in range(EPOCHS):
            model.reset_metrics()  # the loss in the logs is a running mean over the epoch
            for b in np.array_split(order.permutation(len(y)), steps):  # (B,) indices
                logs = step(([x[0][b], x[1][b]], y[b]))
            history.append(float(logs["loss"]))
            events.advance(
                "fine-tune BERT classifier", (epoch + 1) * steps, loss=history[-1], epoch=epoch + 1
            )
    return history


class Encoded(NamedTuple):
    """The negation sentences, tokenized: inputs ``[input_ids, attention_mask]``, each
    (N, MAX_LEN) int32, and integer class ids (N,), as a text dataset gives them."""

    tokenizer: BertTokenizerFast
    x_train: list[np.ndarray]
    y_train: np.ndarray
    x_test: list[np.ndarray]
    y_test: np.ndarray
    num_classes: int


def encoded_data() -> Encoded:
    """make_data(), tokenized with a WordPiece tokenizer trained on its training sentences."""
    data = make_data()
    tokenizer = train_tokenizer(data.x_train.tolist(), VOCAB_SIZE)
    enc_train = encode(tokenizer, data.x_train.tolist())
    enc_test = encode(tokenizer, data.x_test.tolist())
    return Encoded(
        tokenizer,
        [enc_train["input_ids"], enc_train["attention_mask"]],
        data.y_train.astype(np.int32),
        [enc_test["input_ids"], enc_test["attention_mask"]],
        data.y_test,
        data.num_classes,
    )


def check(impl: Answer) -> SolutionReport:
    """The seed's three failures (seed facts); then impl's classifier learns the negation
    task and fine-tunes BERT."""
    report = SolutionReport(solution="nlp.fix_seed_bert_finetune")
    # TFBertModel loaded from a sequence-classifier checkpoint logs that the classifier
    # weights went unused: expected, silenced.
    transformers.logging.set_verbosity(logging.ERROR)
    data = encoded_data()
    _seed_offline(report)
    with tempfile.TemporaryDirectory() as checkpoint:
        # A small random BERT and the corpus tokenizer stand in for 'bert-base-uncased'.
        keras.utils.set_random_seed(SEED)
        build_model(len(data.tokenizer), data.num_classes, MAX_LEN).save_pretrained(checkpoint)
        data.tokenizer.save_pretrained(checkpoint)
        _seed_local_checkpoint(report, data, checkpoint)
        keras.utils.set_random_seed(SEED)
        with no_autograph():
            model = impl.build_classifier(checkpoint, MAX_LEN, data.num_classes)
    _fixed_classifier(report, model, data)
    return report


def _seed_offline(report: SolutionReport) -> None:
    """The seed as written, offline: the first download fails."""
    with offline():
        download = run_original({}, [])
        # The seed's model line on its own (the tokenizer line stops the seed before it).
        model_line = "bert = TFBertModel.from_pretrained('bert-base-uncased')"
        model_download = run_original({"TFBertModel": TFBertModel}, [], source=model_line)
    report.expect_raise(
        "original raises TypeError offline",
        download,
        TypeError,
        "NoneType",
        "BertTokenizer.from_pretrained finds no vocab file and fails on a None path",
    )
    report.expect_raise(
        "its TFBertModel line raises OSError offline",
        model_download,
        OSError,
        "couldn't connect",
        "no network and no cached checkpoint",
    )


def _seed_local_checkpoint(report: SolutionReport, data: Encoded, checkpoint: str) -> None:
    """The seed on a local checkpoint: Keras 3 inputs, then (tf_keras) the one-hot loss.

    The seed has no data: x_* are our encoded sentences, y_* integer class ids;
    max_length 128 becomes MAX_LEN (the stand-in has 2 * MAX_LEN positions).
    """
    local = [
        ("'bert-base-uncased'", repr(checkpoint)),
        ("max_length = 128", f"max_length = {MAX_LEN}"),
    ]
    seed_data = {
        "x_train": data.x_train,
        "y_train": data.y_train,
        "x_val": data.x_test,
        "y_val": data.y_test,
    }

    # The seed's imports: tensorflow.keras is Keras 3, named here as `keras` (the Keras 3
    # package) so that TF_USE_LEGACY_KERAS=1 changes nothing.
    report.expect_raise(
        "original raises ValueError on Keras 3 inputs",
        run_original(dict(seed_data), [*local, ("tensorflow.keras", "keras")]),
        ValueError,
        "KerasTensor",
        "a tf_keras BERT layer called on Keras 3 Input tensors",
    )

    # tf_keras throughout: the loss/label mismatch.
    one_keras = [*local, ("tensorflow.keras", "tf_keras"), ("tf.keras.", "keras.")]
    report.expect_raise(
        "original with tf_keras raises ValueError on int labels",
        run_original({"keras": keras, **seed_data}, one_keras),
        ValueError,
        "incompatible",
        "categorical_crossentropy: labels (32, 1) vs predictions (32, 2)",
    )


def _fixed_classifier(report: SolutionReport, model: keras.Model, data: Encoded) -> None:
    """impl's classifier, trained on integer labels, fine-tunes BERT and reads word order."""
    # The BERT inside impl's model, to show that training fine-tunes it, not only the head.
    encoder = next((m for m in model.submodules if isinstance(m, TFBertMainLayer)), None)
    encoder_before = [w.numpy().copy() for w in encoder.weights] if encoder is not None else []
    # No try/except: a compiled loss that does not take integer class ids (the seed's
    # categorical_crossentropy) crashes here, and the run fails as a crash, traceback shown.
    losses = train(model, data.x_train, data.y_train)
    if encoder is not None:
        report_encoder_changed(report, encoder, encoder_before)
    else:
        report.check(
            "training changed the encoder's weights",
            0.0,
            ">=",
            0.5,
            "no BERT (TFBertMainLayer) from the checkpoint found in the model",
        )

    def predict(pair: np.ndarray, training: bool = False) -> tf.Tensor:  # (B, 2, T) -> (B, C)
        return model([pair[:, 0], pair[:, 1]], training=training)

    test_acc = accuracy(predict, np.stack(data.x_test, axis=1), data.y_test)
    report.metric("loss per epoch", " ".join(f"{v:.3f}" for v in losses))
    report.metric("test accuracy", test_acc)
    report.metric("chance accuracy", 1.0 / data.num_classes)
    report.check(
        "fixed classifier test accuracy",
        test_acc,
        ">=",
        0.9,
        "trains on integer labels and reads word order (a bag of words tops out at 0.75); "
        "logits under the string loss 'sparse_categorical_crossentropy', which takes "
        "probabilities, stay at chance (the wrong-answer fixture)",
    )
    report.metric("parameters", int(model.count_params()))


if __name__ == "__main__":
    print_check_of(__name__)
