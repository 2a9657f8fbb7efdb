"""A small BERT written with Keras layers, pretrained with masked language modelling.

The encoder is BERT's layout in miniature: token + position embeddings, then blocks of
multi-head self-attention and a feed-forward network, each with a residual connection and
LayerNorm, then an MLM head giving a distribution over the vocabulary at every position.
Pretraining hides 15% of the tokens (80% replaced by [MASK], 10% by a random token, 10%
left unchanged) and trains the model to predict them. On held-out sentences it predicts
masked words far better than guessing the most frequent word, and better than the best
guess from the position alone: it reads the context. The position embedding is learned:
a trainable table that pretraining moves.
"""

# mypy: disallow-subclassing-any=False
# (keras.layers.Layer is Any: TensorFlow ships no type stubs)

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.synthetic.text import SPECIAL_TOKENS, encode_words, topic_sentences, word_vocab
from solutions.nlp.transformer_attention_classifier import (
    position_tables,
    report_position_table_trainable,
    report_position_table_trained,
)

SEED = 0
MAX_LEN = 12  # [CLS] + up to 9 words + [SEP], padded
NUM_SPECIAL = len(SPECIAL_TOKENS)  # ids 0..4: [PAD] [UNK] [CLS] [SEP] [MASK]
PAD_ID = SPECIAL_TOKENS.index("[PAD]")
MASK_ID = SPECIAL_TOKENS.index("[MASK]")
MASK_RATE = 0.15
D_MODEL = 64
NUM_HEADS = 4
NUM_LAYERS = 2
EPOCHS = 4
BATCH_SIZE = 128
LEARNING_RATE = 3e-3
IGNORE = -1  # label of a position that is not predicted


# The functions a candidate writes; check(impl) calls only these on impl.
BASED_ON = "nlp.transformer_attention_classifier"  # its attention layer and position checks
ANSWER = ("mask_tokens", "build_encoder", "train")


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def mask_tokens(
        self,
        ids: np.ndarray,
        mask_id: int,
        vocab_size: int,
        num_special: int,
        *,
        rate: float,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def build_encoder(self, vocab_size: int, max_len: int) -> keras.Model: ...

    def train(self, model: keras.Model, ids: np.ndarray) -> list[float]: ...


# -----------------------------------------------------------------------------
# The answer: BERT's masking, the encoder, the pretraining loop


def mask_tokens(
    ids: np.ndarray,
    mask_id: int,
    vocab_size: int,
    num_special: int,
    rate: float = MASK_RATE,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking of token ids (N, T) int32, where ids < ``num_special`` are special tokens.

    Selects each non-special token with probability ``rate``. Of the selected, 80% become
    ``mask_id``, 10% a random non-special token, 10% stay unchanged. Returns ``(inputs,
    labels)``, both (N, T) int32: ``labels`` holds the original id at selected positions
    and -1 everywhere else (positions the loss ignores).
    """
    g = synthetic.rng(seed)
    maskable = ids >= num_special  # never [PAD], [CLS], [SEP]
    selected = maskable & (g.random(ids.shape) < rate)  # (N, T) bool
    labels = np.where(selected, ids, IGNORE).astype(np.int32)

    # 80/10/10: if the input were always [MASK], the model would learn nothing useful
    # for tokens it can see (fine-tuning inputs never contain [MASK]); random and kept
    # tokens force it to keep a good representation of every input token.
    u = g.random(ids.shape)
    to_mask = selected & (u < 0.8)
    to_random = selected & (u >= 0.8) & (u < 0.9)  # the last 10% stay unchanged
    inputs = ids.copy()
    inputs[to_mask] = mask_id
    inputs[to_random] = g.integers(num_special, vocab_size, size=int(to_random.sum()))
    return inputs.astype(np.int32), labels


class TokenAndPositionEmbedding(keras.layers.Layer):
    """ids (B, T) int -> token embedding + learned position embedding (B, T, d_model)."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = keras.layers.Embedding(vocab_size, d_model)
        # Attention itself is order-blind (a permutation of the inputs permutes the
        # outputs): the position embedding is what tells "the chef" from "chef the".
        self.positions = keras.layers.Embedding(max_len, d_model)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        positions = tf.range(tf.shape(ids)[1])  # (T,)
        return self.tokens(ids) + self.positions(positions)[None]  # (B, T, d) + (1, T, d)


class TransformerBlock(keras.layers.Layer):
    """BERT's encoder block (post-LayerNorm): x (B, T, d) -> (B, T, d)."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # key_dim is the size of ONE head (the seed's "head_size=" is not an argument).
        self.attention = keras.layers.MultiHeadAttention(num_heads, key_dim=d_model // num_heads)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-12)
        self.ffn_in = keras.layers.Dense(ff_dim, activation="gelu")
        self.ffn_out = keras.layers.Dense(d_model)
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=1e-12)

    def call(self, x: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        # attention_mask (B, 1, T): True where the KEY is a real token; broadcast over queries.
        a = self.attention(x, x, attention_mask=attention_mask)  # (B, T, d) self-attention
        x = self.attention_norm(x + a)  # residual, then LayerNorm
        f = self.ffn_out(self.ffn_in(x))  # (B, T, ff) -> (B, T, d), position-wise
        return self.ffn_norm(x + f)


def build_encoder(
    vocab_size: int,
    max_len: int,
    d_model: int = D_MODEL,
    num_heads: int = NUM_HEADS,
    num_layers: int = NUM_LAYERS,
) -> keras.Model:
    """A BERT-style encoder with an MLM head: ids (B, T) int32 -> logits (B, T, vocab_size).

    T <= ``max_len``; id 0 is [PAD] and is masked out of attention.
    """
    ids = keras.layers.Input((None,), dtype="int32")  # (B, T)
    # (B, 1, T): padded keys get no attention from any query.
    attention_mask = keras.layers.Lambda(lambda t: tf.not_equal(t, PAD_ID)[:, None, :])(ids)
    x = TokenAndPositionEmbedding(vocab_size, max_len, d_model)(ids)  # (B, T, d)
    x = keras.layers.LayerNormalization(epsilon=1e-12)(x)
    for _ in range(num_layers):
        x = TransformerBlock(d_model, num_heads, ff_dim=2 * d_model)(x, attention_mask)
    # MLM head as in BERT: transform, normalise, project to the vocabulary (logits).
    x = keras.layers.Dense(d_model, activation="gelu")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-12)(x)
    logits = keras.layers.Dense(vocab_size)(x)  # (B, T, V)
    # A functional Model: its output is model.output, so no layer may be called
    # self.output (the seed's subclass did that; Keras raises AttributeError).
    return keras.Model(ids, logits)


def train(
    model: keras.Model,
    ids: np.ndarray,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
) -> list[float]:
    """Pretrain ``model`` in place with MLM on token ids (N, T) int32 (ids 0..4 special).

    The masking is redrawn every epoch (dynamic masking, as in RoBERTa), so the model
    sees different masked positions of each sentence. Returns each epoch's mean loss.
    """
    vocab_size = model.output_shape[-1]
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
    optimizer.build(model.trainable_variables)  # slots now: one trace of the step below
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    spec = tf.TensorSpec((None, None), tf.int32)

    def mlm_step(inputs: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        selected = tf.cast(labels != IGNORE, tf.float32)  # (B, T): 1 where predicted
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)  # (B, T, V)
            per_token = loss_fn(tf.maximum(labels, 0), logits)  # (B, T); -1 -> 0, then weighted out
            # Mean over the SELECTED tokens only: unmasked tokens are trivially copied.
            loss = tf.reduce_sum(per_token * selected) / tf.maximum(tf.reduce_sum(selected), 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    step = tf.function(mlm_step, input_signature=[spec, spec])
    order = synthetic.rng(SEED)
    steps = -(-len(ids) // batch_size)
    events.start("MLM pretraining", epochs * steps)
    history = []
    for epoch in range(epochs):
        inputs, labels = mask_tokens(ids, MASK_ID, vocab_size, NUM_SPECIAL, seed=SEED + epoch)
        perm = order.permutation(len(ids))
        losses = [float(step(inputs[b], labels[b])) for b in np.array_split(perm, steps)]
        history.append(float(np.mean(losses)))
        events.advance("MLM pretraining", (epoch + 1) * steps, loss=history[-1], epoch=epoch + 1)
    return history


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Train ids (4000, MAX_LEN), test ids (500, MAX_LEN) int32, and the word vocabulary."""
    texts = topic_sentences(4500, seed=seed)
    vocab = word_vocab(texts[:4000])
    ids = encode_words(texts, vocab, MAX_LEN)  # (4500, MAX_LEN)
    return ids[:4000], ids[4000:], vocab


def eval_masking(ids: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed evaluation masking: 15% of real tokens, ALL replaced by [MASK] (inputs, labels)."""
    g = synthetic.rng(seed)
    selected = (ids >= NUM_SPECIAL) & (g.random(ids.shape) < MASK_RATE)
    return np.where(selected, MASK_ID, ids).astype(np.int32), np.where(selected, ids, IGNORE)


def masking_stats(ids: np.ndarray, inputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Shares that describe a masking: selection rate, [MASK] / random / kept shares, errors."""
    special = ids < NUM_SPECIAL
    selected = labels != IGNORE
    n = max(int(selected.sum()), 1)
    return {
        "rate": float(selected.sum() / (~special).sum()),
        "mask": float((selected & (inputs == MASK_ID)).sum() / n),
        "random": float((selected & (inputs != MASK_ID) & (inputs != ids)).sum() / n),
        "kept": float((selected & (inputs == ids)).sum() / n),
        "special selected": int((selected & special).sum()),
        "wrong labels": int((selected & (labels != ids)).sum()),
        "unselected changed": int((~selected & (inputs != ids)).sum()),
    }


def check(impl: Answer) -> SolutionReport:
    """Masking statistics of ``impl.mask_tokens``; MLM accuracy of the pretrained encoder."""
    report = SolutionReport(solution="nlp.bert_mlm_pretraining")
    ids_train, ids_test, vocab = make_data()
    _masking(report, impl, ids_train, len(vocab))
    _pretraining(report, impl, ids_train, ids_test, len(vocab))
    return report


def _masking(report: SolutionReport, impl: Answer, ids_train: np.ndarray, vocab_size: int) -> None:
    """The masking procedure, measured on ~36k tokens (std of a share ~0.2-0.5 points)."""
    inputs, labels = impl.mask_tokens(
        ids_train, MASK_ID, vocab_size, NUM_SPECIAL, rate=MASK_RATE, seed=SEED + 100
    )
    stats = masking_stats(ids_train, np.asarray(inputs), np.asarray(labels))
    report.metric("masking: selected share", stats["rate"])
    report.metric(
        "masking: [MASK] / random / kept", "{mask:.3f} / {random:.3f} / {kept:.3f}".format(**stats)
    )
    report.check(
        "masking rate error",
        abs(stats["rate"] - MASK_RATE),
        "<=",
        0.01,
        "about 15% of the ~32k real tokens are selected: sampling std 0.002, so 0.01 is 5 std; "
        "a rate of 0.10 or 0.20 lands at 0.05",
    )
    report.check(
        "[MASK] share error",
        abs(stats["mask"] - 0.8),
        "<=",
        0.03,
        "80% of the ~4.8k selected tokens become [MASK]: std 0.006, so 0.03 is 5 std; "
        "always [MASK] (no 80/10/10) lands at 0.2, never replacing (the fixture) at 0.8",
    )
    report.check(
        "random-token share error",
        abs(stats["random"] - 0.1),
        "<=",
        0.03,
        "10% become a random token (the other 10% stay unchanged): std 0.004, so 0.03 is "
        "7 std; no random tokens (always [MASK], or the fixture) lands at 0.1",
    )
    report.check(
        "masking errors",
        stats["special selected"] + stats["wrong labels"] + stats["unselected changed"],
        "==",
        0,
        "specials never selected, labels are the original ids, other tokens untouched",
    )


def _pretraining(
    report: SolutionReport,
    impl: Answer,
    ids_train: np.ndarray,
    ids_test: np.ndarray,
    vocab_size: int,
) -> None:
    """Pretraining, then prediction of held-out masked words."""
    keras.utils.set_random_seed(SEED)
    model = impl.build_encoder(vocab_size, MAX_LEN)
    tables = position_tables(model, vocab_size, MAX_LEN)  # the learned position embedding
    report_position_table_trainable(report, tables)
    before = [t.numpy().copy() for t in tables]
    with report.timed("train wall time"):
        impl.train(model, ids_train)

    test_inputs, test_labels = eval_masking(ids_test, seed=SEED + 200)
    selected = test_labels != IGNORE  # (N, T)
    pred = np.asarray(model(test_inputs, training=False)).argmax(-1)  # (N, T)
    mlm_acc = float((pred[selected] == test_labels[selected]).mean())

    # Baselines that do not read the context: the most frequent word overall, and the
    # most frequent word at each position (which knows the sentence templates).
    words = ids_train[ids_train >= NUM_SPECIAL]
    unigram_acc = float((test_labels[selected] == np.bincount(words).argmax()).mean())
    by_position = np.array(
        [np.bincount(col[col >= NUM_SPECIAL], minlength=1).argmax() for col in ids_train.T]
    )  # (T,) most frequent word id per position
    position_pred = np.broadcast_to(by_position, ids_test.shape)
    position_acc = float((position_pred[selected] == test_labels[selected]).mean())

    report.metric("masked-word accuracy", mlm_acc)
    report.metric("most-frequent-word accuracy", unigram_acc)
    report.metric("most-frequent-word-per-position accuracy", position_acc)
    report.metric("chance accuracy", 1.0 / (vocab_size - NUM_SPECIAL))
    report.metric("held-out masked words", int(selected.sum()))
    report.check(
        "masked-word accuracy over most-frequent-word",
        mlm_acc - unigram_acc,
        ">=",
        0.3,
        "the encoder predicts hidden words, not just 'the'",
    )
    report.metric("parameters", int(model.count_params()))
    report.check(
        "masked-word accuracy over position baseline",
        mlm_acc - position_acc,
        ">=",
        0.25,
        "and it uses the context, not only the position in the template",
    )
    report_position_table_trained(report, tables, before, min_change=1e-2)


if __name__ == "__main__":
    print_check_of(__name__)
