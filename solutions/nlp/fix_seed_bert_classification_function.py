"""Debugging the seed's ``bert_text_classification``: a crash, no classifier, no evaluation.

The seed wraps a pretrained ``TFBertModel`` in a Keras model and fits it. It crashes at
``tf.keras.Model(inputs=inputs.input, ...)``: the tokenizer returns a ``BatchEncoding``
(a dict of token-id tensors), which has no ``.input`` (AttributeError); and passing the
encoding itself fails too (ValueError), because a functional model is built from
symbolic ``keras.Input`` placeholders, not from tensors of data. Past the crash it is
still no classifier: the [CLS] hidden state (768 numbers in bert-base) is used as the
class scores with no head, under a loss that expects probabilities, and the model is
scored on the texts it was trained on. The fixed ``build_classifier`` adds a
``Dense(num_labels)`` head on [CLS] over ``keras.Input`` placeholders, and the fixed
``bert_text_classification`` trains it with ``from_logits=True`` (the check confirms that
BERT's own weights move: it is fine-tuned, not just the head) and predicts held-out
texts, which it classifies well above the bag-of-words ceiling. A small tokenizer and
BERT built here stand in for the seed's ``from_pretrained`` downloads (no network).
"""

from __future__ import annotations

import traceback
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras
from transformers import BertConfig, BertTokenizerFast, TFBertModel

from aiprep.kit import events
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import raised, run_seed
from aiprep.kit.synthetic import Split
from aiprep.kit.synthetic.text import negation_sentences
from solutions.nlp.bert_text_classifier import (
    VOCAB_SIZE,
    report_encoder_changed,
    train_tokenizer,
)

SEED = 0
NUM_LABELS = 2
EPOCHS = 7
LEARNING_RATE = 1e-3  # the stand-in BERT is untrained; a pretrained one takes 2e-5 to 5e-5

# The seed's code (004, "实现一个基于BERT的文本分类任务"), verbatim.
ORIGINAL = """
import tensorflow as tf
from transformers import BertTokenizer, TFBertModel

tokenizer = BertTokenizer.from_pretrained('bert-base-uncased')
bert_model = TFBertModel.from_pretrained('bert-base-uncased')

def bert_text_classification(texts, labels, batch_size=32):
    inputs = tokenizer(texts, padding=True, truncation=True, return_tensors='tf')
    outputs = bert_model(inputs)
    logits = outputs.last_hidden_state[:, 0, :]

    model = tf.keras.Model(inputs=inputs.input, outputs=logits)
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])

    model.fit(inputs, labels, batch_size=batch_size, epochs=3)

    predicted_labels = model.predict(inputs).argmax(axis=1)
    return predicted_labels
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_classifier", "bert_text_classification")
BASED_ON = "nlp.bert_text_classifier"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def build_classifier(self, bert_model: TFBertModel, num_labels: int) -> keras.Model: ...

    def bert_text_classification(
        self,
        tokenizer: BertTokenizerFast,
        classifier: keras.Model,
        train_texts: list[str],
        train_labels: np.ndarray,
        test_texts: list[str],
        *,
        epochs: int,
        learning_rate: float,
    ) -> np.ndarray: ...


# -----------------------------------------------------------------------------
# The answer: a classification head on BERT, trained and evaluated on held-out texts


def build_classifier(bert_model: TFBertModel, num_labels: int) -> keras.Model:
    """A Keras model: BERT, then a linear head on the final [CLS] vector.

    Inputs: ``[input_ids, attention_mask]``, each (B, T) int32 (0 in the mask on
    [PAD]). Output: (B, num_labels) float32 LOGITS. ``bert_model``'s weights are shared
    (not copied), so fitting the result fine-tunes BERT too.
    """
    # Fix: a functional model is built from symbolic placeholders, not from data tensors
    # (the seed's `inputs.input` does not exist; `inputs` itself would be data).
    input_ids = keras.Input((None,), dtype="int32", name="input_ids")  # (B, T)
    attention_mask = keras.Input((None,), dtype="int32", name="attention_mask")  # (B, T)
    hidden = bert_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    cls = hidden[:, 0, :]  # (B, H) the [CLS] position, H = 768 in bert-base
    # Fix: H hidden features are not H class scores; a Dense layer maps them to logits.
    logits = keras.layers.Dense(num_labels, name="classifier")(cls)  # (B, num_labels)
    return keras.Model([input_ids, attention_mask], logits)


def bert_text_classification(
    tokenizer: BertTokenizerFast,
    classifier: keras.Model,
    train_texts: list[str],
    train_labels: np.ndarray,
    test_texts: list[str],
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int = 32,
) -> np.ndarray:
    """Fine-tune ``classifier`` (from ``build_classifier``) on ``train_texts`` (list of str)
    with int ``train_labels`` (N,), then predict ``test_texts``, texts it never saw.

    Returns the predicted labels of ``test_texts``: (len(test_texts),) int.
    """

    def encode(texts: list[str]) -> list[np.ndarray]:  # [ids, mask], each (N, T) int32
        enc = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
        return [enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)]

    optimizer = keras.optimizers.Adam(learning_rate)
    # Create Adam's slots now: a tf.function that creates variables is traced twice.
    optimizer.build(classifier.trainable_variables)
    # Fix: the model outputs logits, so the loss must apply the softmax itself. The seed's
    # string loss takes probabilities: tf_keras clips them to [1e-7, 1 - 1e-7] and takes
    # the log, so every raw score outside that range is a constant with zero gradient.
    classifier.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.fit(
        encode(train_texts),
        np.asarray(train_labels, np.int32),
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[events.keras_callback("fine-tune BERT classifier")],
    )
    # Fix: predict texts held out from training; accuracy on the training texts says
    # nothing about generalisation (the seed fit and predicted the same `inputs`).
    logits = classifier.predict(encode(test_texts), batch_size=256, verbose=0)  # (N, C)
    predicted: np.ndarray = logits.argmax(axis=-1)
    return predicted


# -----------------------------------------------------------------------------
# Stand-ins for the downloads, the seed's failures, and the measurement


def make_data(seed: int = SEED) -> Split:
    """1024 train / 256 test sentences (NumPy str arrays), int labels in {0, 1}.

    The label depends on which word "not" modifies, so a bag of words tops out at 0.75.
    """
    return negation_sentences(n_train=1024, n_test=256, seed=seed)


def stand_in_bert(vocab_size: int) -> TFBertModel:
    """A small, randomly initialised ``TFBertModel`` in place of ``bert-base-uncased``."""
    config = BertConfig.from_dict(  # from_dict is typed; BertConfig(...) is not
        {
            "vocab_size": vocab_size,
            "hidden_size": 64,  # bert-base: 768
            "num_hidden_layers": 1,  # bert-base: 12; one layer learns this task, traces fast
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "max_position_embeddings": 32,
            "hidden_dropout_prob": 0.0,  # deterministic, no overfitting in 7 short epochs
            "attention_probs_dropout_prob": 0.0,
            "initializer_range": 0.1,  # ~1/sqrt(64); see nlp.bert_text_classifier
        }
    )
    bert = TFBertModel(config)
    # Not converted by AutoGraph: transformers' Python has no tensor-dependent control
    # flow, and converting it costs seconds per trace on this CPU (the test harness's
    # choice, not part of the answer).
    bert.call = tf.autograph.experimental.do_not_convert(bert.call)
    return bert


def run_original(
    fixes: list[tuple[str, str]], tokenizer: BertTokenizerFast, bert: TFBertModel, data: Split
) -> tuple[BaseException | None, str]:
    """Run the seed's code (with ``fixes`` made) and call its function; the exception and
    the seed line raising it.

    No network: the two ``from_pretrained`` downloads are replaced by our small tokenizer
    and BERT (same classes' APIs), and ``tf.keras`` is pointed at tf_keras (this project's
    Keras, the one transformers' TF models work with). The seed gives no data; eight of
    our training sentences and labels are the call's arguments.
    """
    replace = [  # these keep the line numbers
        ("from transformers import BertTokenizer, TFBertModel", ""),
        ("tokenizer = BertTokenizer.from_pretrained('bert-base-uncased')", ""),
        ("bert_model = TFBertModel.from_pretrained('bert-base-uncased')", ""),
        ("tf.keras", "keras"),
        *fixes,
    ]
    namespace: dict[str, object] = {"tf": tf, "keras": keras, "tokenizer": tokenizer}
    namespace["bert_model"] = bert
    run = run_seed(ORIGINAL, namespace, replace=replace)
    if run.error is None:
        namespace["texts"], namespace["labels"] = data.x_train[:8].tolist(), data.y_train[:8]
        call = "bert_text_classification(texts, labels)"
        run = run_seed(call, namespace, filename="<seed call>")
    error: BaseException | None = run.error
    if error is None:
        return None, ""
    seed_frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "<seed>"]
    seed_lines = ORIGINAL.splitlines()
    line = seed_lines[(seed_frames[-1].lineno or 0) - 1].strip() if seed_frames else ""
    return error, line


def check(impl: Answer) -> SolutionReport:
    """The seed's two failures; then impl's classifier: logits shape, held-out accuracy."""
    report = SolutionReport(solution="nlp.fix_seed_bert_classification_function")
    data = make_data()
    tokenizer = train_tokenizer(data.x_train.tolist(), VOCAB_SIZE)  # WordPiece, as in
    keras.utils.set_random_seed(SEED)  # bert_text_classifier
    bert = stand_in_bert(len(tokenizer))
    _seed_facts(report, tokenizer, bert, data)
    _fixed_classifier(report, impl, tokenizer, bert, data)
    return report


def _seed_facts(
    report: SolutionReport, tokenizer: BertTokenizerFast, bert: TFBertModel, data: Split
) -> None:
    """The seed as written, then with `inputs.input` replaced by `inputs`."""
    first, first_line = run_original([], tokenizer, bert, data)
    report.metric("original error", f"{type(first).__name__} at `{first_line}`")
    report.metric("seed's [CLS] 'logits' width", int(bert.config.hidden_size))
    report.seed_fact(  # not expect_raise: the fact is also about the line that raises
        "original raises AttributeError",
        raised(first, AttributeError, "") * float("inputs.input" in first_line),
        "==",
        1,
        "a BatchEncoding (dict of token tensors) has no .input",
    )
    second, _ = run_original([("inputs=inputs.input", "inputs=inputs")], tokenizer, bert, data)
    report.expect_raise(
        "original with inputs=inputs raises ValueError",
        second,
        ValueError,
        "Expecting KerasTensor",
        "a functional model needs keras.Input placeholders, not data tensors",
    )


def _fixed_classifier(
    report: SolutionReport,
    impl: Answer,
    tokenizer: BertTokenizerFast,
    bert: TFBertModel,
    data: Split,
) -> None:
    """The fix: (B, num_labels) logits, then fine-tuning scored on held-out texts."""
    train_texts, test_texts = data.x_train.tolist(), data.x_test.tolist()
    classifier = impl.build_classifier(bert, NUM_LABELS)
    enc = tokenizer(test_texts[:4], padding=True, return_tensors="np")
    sample = [enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)]
    shape = tuple(np.shape(classifier(sample, training=False)))
    report.metric("classifier output shape for 4 texts", str(shape))
    report.check(
        "classifier outputs (B, num_labels) logits",
        float(shape == (4, NUM_LABELS)),
        "==",
        1,
        f"one score per class, not the {bert.config.hidden_size}-wide [CLS] hidden state",
    )
    if shape != (4, NUM_LABELS):
        return  # not a classifier: nothing to train

    bert_before = [w.numpy().copy() for w in bert.weights]  # to show BERT is fine-tuned
    predicted = np.asarray(
        impl.bert_text_classification(
            tokenizer,
            classifier,
            train_texts,
            data.y_train,
            test_texts,
            epochs=EPOCHS,
            learning_rate=LEARNING_RATE,
        )
    )
    report.check(
        "one prediction per held-out text",
        float(predicted.shape == (len(test_texts),)),
        "==",
        1,
        f"{len(test_texts)} test texts, {len(train_texts)} training texts",
    )
    if predicted.shape != (len(test_texts),):
        return
    test_acc = float((predicted == data.y_test).mean())
    report.metric("held-out accuracy", test_acc)
    report.metric("chance accuracy", 1.0 / NUM_LABELS)
    report.check(
        "held-out accuracy",
        test_acc,
        ">=",
        0.85,
        "BERT + head learns the negation task (bag-of-words ceiling 0.75, chance 0.5); "
        "with the seed's string loss it stays at chance (the wrong-answer fixture)",
    )
    report_encoder_changed(report, bert, bert_before)


if __name__ == "__main__":
    print_check_of(__name__)
