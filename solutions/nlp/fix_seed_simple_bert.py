"""Debugging the seed's "simple BERT": two crashes, then a model that is not BERT.

The seed's ``SimpleBERT`` never gets built: ``MultiHeadAttention`` has no ``head_size``
argument (the size of one head is ``key_dim``), and a ``keras.Model`` subclass cannot
assign ``self.output`` (a read-only property of every model). Past the crashes it is
still not BERT: no position embedding, no residual connections, LayerNorm or
feed-forward network, no padding mask, and a ``Dense(1)`` head that gives one number per
token instead of logits over the vocabulary, so it cannot be trained with masked
language modelling. The fixed ``build_encoder`` keeps the seed's subclass shape, gives
(B, T, vocab) logits, a learned position table (trainable, moved by training), and a
short MLM run predicts held-out masked words far better than the most frequent word.
"""

# mypy: disallow-subclassing-any=False
# (keras.Model is Any: TensorFlow ships no type stubs)

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import run_seed
from solutions.nlp.bert_mlm_pretraining import (
    IGNORE,
    NUM_SPECIAL,
    PAD_ID,
    eval_masking,
    make_data,
    train,
)
from solutions.nlp.transformer_attention_classifier import position_tables, report_position_table

SEED = 0
D_MODEL = 64
NUM_HEADS = 4
TRAIN_SENTENCES = 2000  # half of the reference corpus: a short run is enough here
EPOCHS = 3

# The seed's code (004, "实现一个简单的BERT模型"), verbatim.
ORIGINAL = """
import tensorflow as tf

class SimpleBERT(tf.keras.Model):
    def __init__(self, vocab_size, d_model):
        super(SimpleBERT, self).__init__()
        self.embedding = tf.keras.layers.Embedding(vocab_size, d_model)
        self.transformer = tf.keras.layers.MultiHeadAttention(head_size=d_model, num_heads=8)
        self.output = tf.keras.layers.Dense(1)

    def call(self, inputs, training=False):
        embedded = self.embedding(inputs)
        output = self.transformer(embedded, embedded)
        logits = self.output(output)
        return logits
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_encoder",)
BASED_ON = "nlp.bert_mlm_pretraining"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_encoder(self, vocab_size: int, max_len: int) -> keras.Model: ...


# -----------------------------------------------------------------------------
# The answer: the seed's SimpleBERT, fixed


class SimpleBERT(keras.Model):
    """ids (B, T) int32 ([PAD] = 0) -> MLM logits (B, T, vocab_size)."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.embedding = keras.layers.Embedding(vocab_size, d_model)
        # Fix: attention is order-blind, BERT adds a learned position embedding.
        self.position = keras.layers.Embedding(max_len, d_model)
        self.embedding_norm = keras.layers.LayerNormalization(epsilon=1e-12)
        # Fix: key_dim (the size of ONE head), not head_size, which does not exist.
        self.attention = keras.layers.MultiHeadAttention(num_heads, key_dim=d_model // num_heads)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-12)
        # Fix: a Transformer layer also has a position-wise feed-forward network.
        self.ffn_in = keras.layers.Dense(2 * d_model, activation="gelu")
        self.ffn_out = keras.layers.Dense(d_model)
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=1e-12)
        # Fix: not self.output (read-only property of keras.Model), and one logit per
        # vocabulary word, not Dense(1): the MLM head predicts which word is hidden.
        self.mlm_head = keras.layers.Dense(vocab_size)

    def call(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        positions = tf.range(tf.shape(ids)[1])  # (T,)
        x = self.embedding(ids) + self.position(positions)[None]  # (B, T, d)
        x = self.embedding_norm(x)
        # Fix: padded keys get no attention; (B, 1, T) broadcasts over the queries.
        mask = tf.not_equal(ids, PAD_ID)[:, None, :]
        a = self.attention(x, x, attention_mask=mask, training=training)  # (B, T, d)
        x = self.attention_norm(x + a)  # Fix: residual + LayerNorm
        x = self.ffn_norm(x + self.ffn_out(self.ffn_in(x)))  # (B, T, d)
        return self.mlm_head(x)  # (B, T, V)


def build_encoder(vocab_size: int, max_len: int) -> keras.Model:
    """The fixed SimpleBERT: ids (B, T) int32, T <= ``max_len`` -> logits (B, T, vocab_size)."""
    ids = keras.layers.Input((None,), dtype="int32")  # (B, T)
    # Wrapped in a functional Model so output_shape is known before the first call.
    return keras.Model(ids, SimpleBERT(vocab_size, max_len, D_MODEL, NUM_HEADS)(ids))


# -----------------------------------------------------------------------------
# The seed's failures, and the measurement


def original_error(fixes: list[tuple[str, str]]) -> BaseException | None:
    """Run the seed's code (with ``fixes`` applied) and build its model; the exception
    raised, or None.

    ``tf.keras`` is pointed at tf_keras (Keras 2, this project's Keras); Keras 3 raises
    the same two errors. The seed gives no data; the constructor call is ours.
    """
    replace = [("import tensorflow as tf", ""), ("tf.keras", "keras"), *fixes]
    run = run_seed(ORIGINAL, {"tf": tf, "keras": keras}, replace=replace)
    if run.error is None:  # the class is defined: build it and call it
        namespace = {**run.namespace, "ids": np.ones((2, 5), dtype=np.int32)}
        run = run_seed("SimpleBERT(50, 32)(ids)", namespace, filename="<seed model>")
    error: BaseException | None = run.error
    return error


def check(impl: Answer) -> SolutionReport:
    """The original's two crashes; output shape and a short MLM run of the fixed model."""
    report = SolutionReport(solution="nlp.fix_seed_simple_bert")
    _seed_facts(report)
    _fixed_model(report, impl)
    return report


def _seed_facts(report: SolutionReport) -> None:
    """The seed as written, then with only the first bug fixed."""
    report.expect_raise(
        "original raises TypeError",
        original_error([]),
        TypeError,
        "key_dim",
        "MultiHeadAttention has no head_size argument; key_dim is missing",
    )
    report.expect_raise(
        "original with key_dim raises AttributeError",
        original_error([("head_size=", "key_dim=")]),
        AttributeError,
        "output",
        "a keras.Model subclass cannot assign self.output",
    )


def _fixed_model(report: SolutionReport, impl: Answer) -> None:
    """The fixed model: (B, T, V) logits, and MLM pretraining that reads the context."""
    ids_train, ids_test, vocab = make_data(SEED)
    ids_train = ids_train[:TRAIN_SENTENCES]
    vocab_size = len(vocab)
    keras.utils.set_random_seed(SEED)
    model = impl.build_encoder(vocab_size, ids_train.shape[1])
    shape = tuple(model(ids_test[:4], training=False).shape)
    report.metric("output shape for (4, T) ids", str(shape))
    report.check(
        "output is (B, T, vocab) logits",
        float(shape == (4, ids_test.shape[1], vocab_size)),
        "==",
        1,
        "one logit per vocabulary word at every position",
    )
    if shape != (4, ids_test.shape[1], vocab_size):
        return  # MLM training needs vocabulary logits

    tables = position_tables(model, vocab_size, ids_train.shape[1])  # the learned positions
    before = [t.numpy().copy() for t in tables]
    losses = train(model, ids_train, epochs=EPOCHS)
    test_inputs, test_labels = eval_masking(ids_test, seed=SEED + 200)
    selected = test_labels != IGNORE  # (N, T)
    pred = np.asarray(model(test_inputs, training=False)).argmax(-1)  # (N, T)
    mlm_acc = float((pred[selected] == test_labels[selected]).mean())
    words = ids_train[ids_train >= NUM_SPECIAL]
    unigram_acc = float((test_labels[selected] == np.bincount(words).argmax()).mean())

    report.metric("MLM loss per epoch", " ".join(f"{v:.3f}" for v in losses))
    report.metric("masked-word accuracy", mlm_acc)
    report.metric("most-frequent-word accuracy", unigram_acc)
    report.check(
        "MLM loss last / first epoch",
        losses[-1] / losses[0],
        "<=",
        0.8,
        "pretraining makes progress",
    )
    report.check(
        "masked-word accuracy over most-frequent-word",
        mlm_acc - unigram_acc,
        ">=",
        0.1,
        "the fixed model predicts hidden words from their context",
    )
    report_position_table(report, tables, before, min_change=1e-2)


if __name__ == "__main__":
    print_check_of(__name__)
