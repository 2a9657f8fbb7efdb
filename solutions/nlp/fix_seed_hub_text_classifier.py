"""Debugging the seed's TF-Hub text classifier: a SavedModel is not a Keras model.

The seed loads BERT with ``hub.load(url)`` and calls ``model.fit`` and ``model.predict``
on the result. ``hub.load`` is ``tf.saved_model.load`` (plus a download): it returns the
restored SavedModel object, whose ``__call__`` computes but which has no ``fit`` or
``predict``, so training raises ``AttributeError``. Its ``preprocess_text`` is never
called, and it returns lists of lower-cased words, while BERT needs WordPiece ids with
``[CLS]``/``[SEP]`` and an attention mask; ``x_train`` is never defined. Offline, the
check saves a tiny ``tf.Module`` with ``tf.saved_model.save`` and runs the seed against
what ``tf.saved_model.load`` gives back, which fails exactly like ``hub.load``. The fix
tokenises with a WordPiece tokenizer, wraps the encoder (a small BERT built locally,
standing in for the hub download) as one trainable layer of a Keras model with a
classification head, and that model's ``fit``/``predict`` learn a sentiment task to >= 90%
test accuracy while ``fit`` moves the encoder's own weights (it is fine-tuned, not frozen
as ``hub.KerasLayer`` is by default). The task has no negation, so a bag of words solves
it too (the check measures one): it shows a pipeline that trains, not language understanding.
"""

# mypy: disallow-subclassing-any=False
# (keras.layers.Layer is Any: TensorFlow ships no type stubs)

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras
from transformers import BertTokenizerFast

from aiprep.kit import events
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import SeedRun, run_seed
from aiprep.kit.synthetic import Split
from aiprep.kit.synthetic.text import negation_sentences
from solutions.nlp.bert_text_classifier import (  # noqa: F401  (train_tokenizer: part of the answer)
    bag_of_words_accuracy,
    build_model,
    report_encoder_changed,
    train_tokenizer,
)
from solutions.training.fix_seed_hub_image_classifier import restored_saved_model

SEED = 0
VOCAB_SIZE = 200  # WordPiece target size, as in nlp.bert_text_classifier
MAX_LEN = 16  # [CLS] + up to 13 words + [SEP], padded
EPOCHS = 6
BATCH_SIZE = 32
LEARNING_RATE = 2e-3

# The seed's code (003, "算法编程题 1：文本分类"), verbatim.
ORIGINAL = """
import tensorflow as tf
import tensorflow_hub as hub

# 加载预训练模型
model = hub.load("https://tfhub.dev/google/bert_uncased_L-12_H-768_A-12/1")

# 数据预处理
def preprocess_text(texts):
    return [text.lower().split() for text in texts]

# 训练
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_data=(x_val, y_val))

# 预测
predictions = model.predict(x_test)

# 输出预测结果
for text, prediction in zip(x_test, predictions):
    print(f"Text: {text}, Prediction: {prediction}")
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("train_tokenizer", "preprocess_text", "build_classifier")
BASED_ON = "nlp.bert_text_classifier"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def train_tokenizer(self, texts: list[str], vocab_size: int) -> BertTokenizerFast: ...

    def preprocess_text(
        self, tokenizer: BertTokenizerFast, texts: list[str], max_len: int
    ) -> dict[str, np.ndarray]: ...

    def build_classifier(
        self, encoder: keras.layers.Layer, max_len: int, num_labels: int
    ) -> keras.Model: ...


# -----------------------------------------------------------------------------
# The answer: proper tokenisation, and the encoder inside a Keras model with a head


def preprocess_text(
    tokenizer: BertTokenizerFast, texts: list[str], max_len: int
) -> dict[str, np.ndarray]:
    """BERT inputs for ``texts`` (list of str), from a WordPiece ``tokenizer``.

    Returns ``input_ids`` ([CLS] pieces [SEP] [PAD]...) and ``attention_mask`` (1 on real
    tokens, 0 on [PAD]), each (N, max_len) int32: what a BERT encoder takes, not words.
    """
    enc = tokenizer(texts, padding="max_length", max_length=max_len, truncation=True)
    return {k: np.asarray(enc[k], np.int32) for k in ("input_ids", "attention_mask")}


# tf.autograph's decorator, typed here: TensorFlow ships no type stubs.
do_not_convert: Callable[[Callable[..., tf.Tensor]], Callable[..., tf.Tensor]] = (
    tf.autograph.experimental.do_not_convert
)


class EncoderLayer(keras.layers.Layer):
    """An encoder as one trainable Keras layer (what ``hub.KerasLayer`` does for a hub model).

    dict of ``input_ids`` and ``attention_mask`` (B, T) int32 -> pooled [CLS] vector (B, H).
    """

    def __init__(self, encoder: keras.layers.Layer, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder  # its weights are tracked: fine-tuned with the head

    # The transformers code needs no AutoGraph; converting it would only slow each trace.
    @do_not_convert
    def call(self, inputs: dict[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        out = self.encoder(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            training=training,
        )
        return out.pooler_output  # (B, H): tanh(dense([CLS] vector))


def build_classifier(encoder: keras.layers.Layer, max_len: int, num_labels: int) -> keras.Model:
    """A compiled Keras classifier around ``encoder``, a BERT main layer (called with
    ``input_ids``/``attention_mask``, output with ``.pooler_output`` (B, H)).

    Input: dict ``input_ids``, ``attention_mask`` (B, max_len) int32 (from ``preprocess_text``).
    Output: logits (B, num_labels) float32. ``fit`` fine-tunes encoder and head together.
    """
    inputs = {
        name: keras.Input((max_len,), dtype="int32", name=name)
        for name in ("input_ids", "attention_mask")
    }
    pooled = EncoderLayer(encoder)(inputs)  # (B, H)
    logits = keras.layers.Dense(num_labels)(pooled)  # (B, num_labels): the new task's head
    model = keras.Model(inputs, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# -----------------------------------------------------------------------------
# Data, the seed's failure, and the measurement


def make_data(seed: int = SEED) -> Split:
    """512 train / 256 test sentences (str arrays (N,)), sentiment labels in {0, 1}.

    No negations (unlike nlp.bert_text_classifier): the sentiment is the adjective's, so a
    bag of words solves it. The point here is a pipeline that trains, not word order, so
    the task stays small.
    """
    return negation_sentences(
        n_train=512, n_test=256, seed=seed, p_negated=0.0, p_aside_negated=0.0
    )


def run_original(data: Split) -> SeedRun:
    """Run the seed with ``hub.load`` returning ``tf.saved_model.load`` of a local tiny
    SavedModel (what hub.load does after downloading; no network, tensorflow_hub is not
    installed). The seed defines no data: small slices of ours stand in for
    x_train/y_train/x_val/y_val/x_test. Its namespace keeps ``model``, the restored object,
    and ``preprocess_text``, both defined before the crash."""
    x, y = data.x_train[:8].tolist(), data.y_train[:8]
    hub_model = restored_saved_model()
    namespace: dict[str, Any] = {
        "hub": types.SimpleNamespace(load=lambda url: hub_model),
        **{"x_train": x, "y_train": y, "x_val": x, "y_val": y, "x_test": x},
    }
    return run_seed(ORIGINAL, namespace, replace=[("import tensorflow_hub as hub", "")])


def check(impl: Answer) -> SolutionReport:
    """The seed's AttributeError; the fixed tokenisation; fit/predict of the fixed model."""
    report = SolutionReport(solution="nlp.fix_seed_hub_text_classifier")
    data = make_data()
    _seed_facts(report, data)
    encoded = _tokenisation(report, impl, data)
    if encoded is None:
        return report  # nothing a BERT encoder could be trained on
    _fixed_model(report, impl, data, *encoded)
    return report


def _seed_facts(report: SolutionReport, data: Split) -> None:
    """The seed, against a real restored SavedModel."""
    run = run_original(data)
    loaded, seed_preprocess = run.namespace["model"], run.namespace["preprocess_text"]
    report.expect_raise(
        "original raises AttributeError",
        run.error,
        AttributeError,
        "has no attribute 'fit'",
        "a restored SavedModel is not a Keras model: no fit, no predict",
    )
    report.metric("hub.load / tf.saved_model.load returns", type(loaded).__name__)
    report.metric("restored object computes", str(np.asarray(loaded(tf.ones((1, 4)))).tolist()))
    # The seed's (unused) preprocessing: words, which no BERT can take.
    report.metric("seed's preprocess_text(['Great movie'])", str(seed_preprocess(["Great movie"])))


def _tokenisation(
    report: SolutionReport, impl: Answer, data: Split
) -> tuple[BertTokenizerFast, dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """WordPiece ids with [CLS] and a mask, not word lists: (tokenizer, train and test
    inputs), or None when preprocess_text's output is not that."""
    train_texts, test_texts = data.x_train.tolist(), data.x_test.tolist()
    tokenizer = impl.train_tokenizer(train_texts, VOCAB_SIZE)
    enc_train = impl.preprocess_text(tokenizer, train_texts, MAX_LEN)
    enc_test = impl.preprocess_text(tokenizer, test_texts, MAX_LEN)
    ids = np.asarray(enc_test.get("input_ids", [])) if isinstance(enc_test, dict) else None
    mask = np.asarray(enc_test.get("attention_mask", [])) if isinstance(enc_test, dict) else None
    shape = (len(test_texts), MAX_LEN)
    valid = (
        ids is not None
        and mask is not None
        and ids.shape == shape
        and mask.shape == shape
        and np.issubdtype(ids.dtype, np.integer)
        and bool((ids[:, 0] == tokenizer.cls_token_id).all())
        and bool((mask == (ids != tokenizer.pad_token_id)).all())
    )
    report.metric(
        "preprocess_text output",
        str({k: np.shape(v) for k, v in dict(enc_test).items()})
        if isinstance(enc_test, dict)
        else type(enc_test).__name__,
    )
    report.check(
        "preprocess_text gives [CLS] ids and mask, (N, max_len) int",
        float(valid),
        "==",
        1,
        "BERT takes WordPiece ids and an attention mask, not lists of words",
    )
    if not valid:
        return None
    return tokenizer, enc_train, enc_test


def _fixed_model(
    report: SolutionReport,
    impl: Answer,
    data: Split,
    tokenizer: BertTokenizerFast,
    enc_train: dict[str, np.ndarray],
    enc_test: dict[str, np.ndarray],
) -> None:
    """A small BERT (stand-in for the hub download, random init) as one layer of a Keras
    model with a new head; the seed's fit/predict calls now work."""
    test_texts = data.x_test.tolist()
    keras.utils.set_random_seed(SEED)
    encoder = build_model(len(tokenizer), data.num_classes, MAX_LEN).bert  # body, no head
    model = impl.build_classifier(encoder, MAX_LEN, data.num_classes)
    encoder_before = [w.numpy().copy() for w in encoder.weights]  # to show it is fine-tuned
    history = model.fit(
        enc_train,
        data.y_train,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        verbose=0,
        callbacks=[events.keras_callback("fine-tune encoder + head")],
    )
    report_encoder_changed(report, encoder, encoder_before)
    logits = model.predict(enc_test, batch_size=256, verbose=0)  # (N, num_labels)
    test_acc = float((np.argmax(logits, -1) == data.y_test).mean())
    report.metric("training loss per epoch", " ".join(f"{v:.3f}" for v in history.history["loss"]))
    report.metric("predict output shape", str(np.shape(logits)))
    report.check(
        "predict gives (N, num_labels) logits",
        float(np.shape(logits) == (len(test_texts), data.num_classes)),
        "==",
        1,
        "one score per class for every test sentence",
    )
    report.check(
        "test accuracy",
        test_acc,
        ">=",
        0.9,
        "encoder + head trained with fit; a bag of words also solves this data (no negation), "
        "so this shows a pipeline that trains, not understanding",
    )
    # What the data allows one to claim: word counts alone, no encoder at all. (It seeds
    # itself, so running it last changes none of its numbers.)
    bow_acc = bag_of_words_accuracy(data)
    report.metric("bag-of-words MLP test accuracy", bow_acc)


if __name__ == "__main__":
    print_check_of(__name__)
