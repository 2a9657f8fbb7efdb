"""Debugging the seed's Transformer text classifier: two crashes, then a bag of words.

The seed's model is never built: the attention layer's ``call`` reshapes with a
``batch_size`` it never defined (NameError), and once that is fixed the first training
step reads ``self.dropout_rate``, which the layer never stored (AttributeError). Past the
crashes the model still cannot read word order: there is no position embedding. Its
block computes ``inputs + FFN(inputs + attn)``: the feed-forward skip carries the block's
input, bypassing the attention sublayer's output (which reaches the output only through
the FFN), and there is no LayerNorm (the fix: ``x + Sublayer(x)`` then LayerNorm, per
sublayer); there is no padding mask, and dropout is applied to the scores before the
softmax. The fixed ``build_transformer_model`` keeps the seed's signature and sigmoid
output, adds a learned position table inside a layer's ``call`` (so it is a trainable
weight, which the check confirms and training moves), and classifies sentences whose
label depends on which word "not" negates with >= 90% held-out accuracy, where any bag
of words tops out at 75%.
"""

# ruff: noqa: E501 -- ORIGINAL quotes the seed's long lines verbatim
# mypy: disallow-subclassing-any=False
# (keras.layers.Layer is Any: TensorFlow ships no type stubs)

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import run_seed
from solutions.nlp.transformer_attention_classifier import (
    MAX_LEN,
    PAD_ID,
    make_data,
    position_tables,
    report_position_table_trainable,
    report_position_table_trained,
)

SEED = 0
D_MODEL = 64
NUM_HEADS = 4
NUM_LAYERS = 2
DROPOUT_RATE = 0.1
EPOCHS = 4
BATCH_SIZE = 32
LEARNING_RATE = 2e-3

# The seed's code (001, "2. 编写一个基于注意力机制的Transformer模型，用于文本分类任务。"),
# verbatim except the final model.summary() call.
ORIGINAL = """
import tensorflow as tf
from tensorflow.keras.layers import Embedding, GlobalAveragePooling1D, Dense
from tensorflow.keras.models import Model

VOCAB_SIZE = 10000
D_MODEL = 512
MAX_LENGTH = 40
NUM_LAYERS = 2
DROPOUT_RATE = 0.1

class MultiHeadAttentionLayer(tf.keras.layers.Layer):
    def __init__(self, d_model, num_heads):
        super(MultiHeadAttentionLayer, self).__init__()
        self.d_model = d_model
        self.num_heads = num_heads
        self.depth = d_model // num_heads

        self.query_dense = Dense(d_model)
        self.key_dense = Dense(d_model)
        self.value_dense = Dense(d_model)

        self.output_dense = Dense(d_model)

    def split_heads(self, x, batch_size):
        x = tf.reshape(x, (batch_size, -1, self.num_heads, self.depth))
        return tf.transpose(x, perm=[0, 2, 1, 3])

    def call(self, inputs, training=False):
        query, key, value = self.query_dense(inputs), self.key_dense(inputs), self.value_dense(inputs)
        query = self.split_heads(query, tf.shape(inputs)[0])
        key = self.split_heads(key, tf.shape(inputs)[0])
        value = self.split_heads(value, tf.shape(inputs)[0])

        attention_scores = tf.matmul(query, key, transpose_b=True) / tf.sqrt(tf.cast(self.depth, tf.float32))
        if training:
            attention_scores = tf.nn.dropout(attention_scores, rate=self.dropout_rate)

        attention_weights = tf.nn.softmax(attention_scores, axis=-1)
        attention_output = tf.matmul(attention_weights, value)
        attention_output = tf.transpose(attention_output, perm=[0, 2, 1, 3])
        attention_output = tf.reshape(attention_output, (batch_size, -1, self.d_model))

        output = self.output_dense(attention_output)
        return output

class TransformerBlock(tf.keras.layers.Layer):
    def __init__(self, d_model, num_heads, dropout_rate=0.1):
        super(TransformerBlock, self).__init__()
        self.mha = MultiHeadAttentionLayer(d_model, num_heads)
        self.dense1 = Dense(d_model, activation='relu')
        self.dense2 = Dense(d_model)
        self.dropout = tf.keras.layers.Dropout(dropout_rate)

    def call(self, inputs, training=False):
        attention_output = self.mha(inputs, training=training)
        attention_output = self.dropout(attention_output, training=training)
        output = tf.add(inputs, attention_output)
        output = self.dense1(output)
        output = self.dense2(output)
        output = self.dropout(output, training=training)
        return tf.add(inputs, output)

def build_transformer_model(vocab_size, d_model, num_layers, max_length, dropout_rate):
    inputs = tf.keras.layers.Input(shape=(max_length,))
    embeddings = Embedding(vocab_size, d_model)(inputs)
    embeddings = tf.keras.layers.Dropout(dropout_rate)(embeddings)

    x = embeddings
    for i in range(num_layers):
        x = TransformerBlock(d_model, num_heads=8, dropout_rate=dropout_rate)(x)

    avg_predictions = GlobalAveragePooling1D()(x)
    output = Dense(1, activation='sigmoid')(avg_predictions)

    model = Model(inputs, output)
    return model

model = build_transformer_model(VOCAB_SIZE, D_MODEL, NUM_LAYERS, MAX_LENGTH, DROPOUT_RATE)
model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
# ... model.summary()
"""

SEED_IMPORTS = """import tensorflow as tf
from tensorflow.keras.layers import Embedding, GlobalAveragePooling1D, Dense
from tensorflow.keras.models import Model
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_transformer_model",)
BASED_ON = "nlp.transformer_attention_classifier"


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_transformer_model(
        self, vocab_size: int, d_model: int, num_layers: int, max_length: int, dropout_rate: float
    ) -> keras.Model: ...


# -----------------------------------------------------------------------------
# The answer: the seed's classifier, fixed


class MultiHeadAttentionLayer(keras.layers.Layer):
    """Multi-head self-attention: x (B, T, d), mask (B, T) 1 = real token -> (B, T, d)."""

    def __init__(self, d_model: int, num_heads: int, dropout_rate: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.num_heads = num_heads
        self.depth = d_model // num_heads  # size of one head
        self.dropout_rate = dropout_rate  # Fix: stored, call() reads it
        self.query_dense = keras.layers.Dense(d_model)
        self.key_dense = keras.layers.Dense(d_model)
        self.value_dense = keras.layers.Dense(d_model)
        self.output_dense = keras.layers.Dense(d_model)

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        """(B, T, d) -> (B, H, T, depth)."""
        x = tf.reshape(x, (tf.shape(x)[0], -1, self.num_heads, self.depth))  # (B, T, H, depth)
        return tf.transpose(x, perm=[0, 2, 1, 3])

    def call(self, x: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        batch_size = tf.shape(x)[0]  # Fix: the seed used batch_size without defining it
        q = self.split_heads(self.query_dense(x))  # (B, H, T, depth)
        k = self.split_heads(self.key_dense(x))
        v = self.split_heads(self.value_dense(x))
        scores = tf.matmul(q, k, transpose_b=True) / tf.sqrt(float(self.depth))  # (B, H, T, T)
        # Fix: padded keys get -1e9 before the softmax, i.e. zero weight; (B, 1, 1, T).
        scores += (1.0 - mask[:, None, None, :]) * -1e9
        weights = tf.nn.softmax(scores, axis=-1)  # rows sum to 1
        if training:
            # Fix: dropout on the attention WEIGHTS, after the softmax (dropping scores
            # before it scales the survivors by 1/(1-rate) and sharpens the softmax).
            weights = tf.nn.dropout(weights, rate=self.dropout_rate)
        out = tf.transpose(tf.matmul(weights, v), perm=[0, 2, 1, 3])  # (B, T, H, depth)
        out = tf.reshape(out, (batch_size, -1, self.d_model))  # (B, T, d)
        return self.output_dense(out)


class TransformerBlock(keras.layers.Layer):
    """Post-LayerNorm encoder block: x (B, T, d), mask (B, T) -> (B, T, d)."""

    def __init__(self, d_model: int, num_heads: int, dropout_rate: float) -> None:
        super().__init__()
        self.mha = MultiHeadAttentionLayer(d_model, num_heads, dropout_rate)
        self.dense1 = keras.layers.Dense(2 * d_model, activation="relu")  # expand, then project
        self.dense2 = keras.layers.Dense(d_model)
        self.dropout = keras.layers.Dropout(dropout_rate)
        self.norm1 = keras.layers.LayerNormalization()  # Fix: LayerNorm after each residual
        self.norm2 = keras.layers.LayerNormalization()

    def call(self, x: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        a = self.dropout(self.mha(x, mask, training=training), training=training)
        x = self.norm1(x + a)  # (B, T, d): x + Sublayer(x), then LayerNorm
        f = self.dropout(self.dense2(self.dense1(x)), training=training)
        # Fix: the FFN's skip carries THIS sublayer's input x (the attention sublayer's
        # output). The seed returned inputs + FFN(inputs + attn): its skip carried the
        # block's input past the attention, and no LayerNorm kept the sum in scale.
        return self.norm2(x + f)


class PositionEmbedding(keras.layers.Layer):
    """x (B, T, d) -> x + rows 0..T-1 of a learned (max_length, d) position table."""

    def __init__(self, max_length: int, d_model: int) -> None:
        super().__init__()
        self.table = keras.layers.Embedding(max_length, d_model)  # its weight: (max_length, d)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        # The lookup runs in call, on every batch, so the table is this layer's weight
        # and gets gradients. Called outside a layer while the functional model is built,
        # Embedding(max_length, d)(tf.range(max_length)) runs once, eagerly: its result is
        # a tensor of numbers that the graph holds as a constant, frozen at its random init.
        return x + self.table(tf.range(tf.shape(x)[1]))[None]  # (B, T, d) + (1, T, d)


def build_transformer_model(
    vocab_size: int, d_model: int, num_layers: int, max_length: int, dropout_rate: float
) -> keras.Model:
    """Transformer classifier: ids (B, max_length) int32, 0 = [PAD] -> P(label 1) (B, 1)."""
    inputs = keras.layers.Input(shape=(max_length,), dtype="int32")  # ids, not floats
    mask = keras.layers.Lambda(lambda t: tf.cast(tf.not_equal(t, PAD_ID), tf.float32))(inputs)
    x = keras.layers.Embedding(vocab_size, d_model)(inputs)  # (B, T, d)
    # Fix: attention is order-blind; without positions the model is a bag of words.
    x = PositionEmbedding(max_length, d_model)(x)  # a layer: the table is trained
    x = keras.layers.Dropout(dropout_rate)(x)
    for _ in range(num_layers):
        x = TransformerBlock(d_model, NUM_HEADS, dropout_rate)(x, mask)
    # Fix: mean over REAL tokens; GlobalAveragePooling1D without a mask averages pads too.
    pooled = keras.layers.Lambda(
        lambda t: tf.reduce_sum(t[0] * t[1][..., None], 1) / tf.reduce_sum(t[1], 1, keepdims=True)
    )([x, mask])  # (B, d)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))


# -----------------------------------------------------------------------------
# The seed's failures, and the measurement


def original_error(fixes: list[tuple[str, str]], train_step: bool) -> BaseException | None:
    """Run the seed's code with ``fixes`` applied (and, if ``train_step``, one training
    step); the exception or None.

    ``tf.keras`` is pointed at tf_keras (Keras 2, this project's Keras), and the names the
    seed imports are given in its namespace. The seed gives no data: for the training step
    we substitute 4 random sequences and labels.
    """
    replace = [(SEED_IMPORTS, ""), ("tf.keras", "keras"), *fixes]
    namespace: dict[str, object] = {
        "tf": tf,
        "keras": keras,
        "Embedding": keras.layers.Embedding,
        "GlobalAveragePooling1D": keras.layers.GlobalAveragePooling1D,
        "Dense": keras.layers.Dense,
        "Model": keras.Model,
    }
    run = run_seed(ORIGINAL, namespace, replace=replace)
    if run.error is None and train_step:
        g = np.random.default_rng(SEED)
        namespace["ids"] = g.integers(1, 10000, size=(4, 40)).astype(np.float32)
        namespace["labels"] = g.integers(0, 2, size=(4, 1))
        run = run_seed("model.train_on_batch(ids, labels)", namespace, filename="<seed step>")
    error: BaseException | None = run.error
    return error


def check(impl: Answer) -> SolutionReport:
    """The fixed model's learned positions and held-out accuracy; the original's two crashes."""
    report = SolutionReport(solution="nlp.fix_seed_transformer")
    _fixed_model(report, impl)
    # After the fixed model, so that a wrong answer is decided before the seed runs; both
    # parts seed themselves, so their order changes none of the other's numbers.
    _seed_facts(report)
    return report


def _fixed_model(report: SolutionReport, impl: Answer) -> None:
    """The fixed model on sentences whose label depends on word order."""
    data, vocab = make_data(SEED)
    keras.utils.set_random_seed(SEED)
    model = impl.build_transformer_model(len(vocab), D_MODEL, NUM_LAYERS, MAX_LEN, DROPOUT_RATE)
    tables = position_tables(model, len(vocab), MAX_LEN)  # the learned position table
    report_position_table_trainable(report, tables)
    before = [t.numpy().copy() for t in tables]
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        data.x_train,
        data.y_train.astype(np.float32),
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        verbose=0,
        callbacks=[events.keras_callback("train fixed Transformer")],
    )
    report_position_table_trained(report, tables, before, min_change=1e-2)
    prob = np.asarray(model.predict(data.x_test, batch_size=256, verbose=0)).reshape(-1)  # (N,)
    test_acc = float(((prob > 0.5) == data.y_test).mean())
    report.metric("best bag-of-words accuracy", 0.75)
    report.check(
        "test accuracy",
        test_acc,
        ">=",
        0.9,
        "reads which word 'not' negates; a bag of words cannot exceed 0.75 here",
    )
    report.metric("parameters", int(model.count_params()))


def _seed_facts(report: SolutionReport) -> None:
    """The seed as written (build), then with batch_size defined (one training step)."""
    keras.utils.set_random_seed(SEED)
    report.expect_raise(
        "original raises NameError",
        original_error([], train_step=False),
        NameError,
        "batch_size",
        "call() reshapes with an undefined batch_size while the model is built",
    )
    batch_size_fix = ("(batch_size, -1, self.d_model)", "(tf.shape(inputs)[0], -1, self.d_model)")
    report.expect_raise(
        "original with batch_size raises AttributeError",
        original_error([batch_size_fix], train_step=True),
        AttributeError,
        "dropout_rate",
        "the first training step reads self.dropout_rate, never stored",
    )


if __name__ == "__main__":
    print_check_of(__name__)
