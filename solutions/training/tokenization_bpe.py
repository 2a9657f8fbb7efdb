"""Byte-level BPE tokenization (GPT-2 style) trained with the ``tokenizers`` library.

Byte-pair encoding starts from a base alphabet and repeatedly merges the most frequent
adjacent pair of symbols into a new token, until the vocabulary reaches its target size. The
byte-level variant (GPT-2, Llama 3, GPT-4's tokenizers) takes the 256 byte values as its base
alphabet, so every string, in any script, encodes without an unknown token and decodes back
exactly; a pre-tokenizer first splits text at word boundaries (a space stays glued to the start
of the next word, shown as "Ġ"), so merges never cross from one word into the next.

The checks prove, on the kit's topic corpus plus held-out strings in scripts the corpus never
shows (accents, Chinese, an emoji): decode(encode(x)) == x for every one; with no merges
(vocabulary 257 = 256 bytes + one special token) one token per UTF-8 byte, the closed form;
no learned token spans two words; ``chars_per_token`` is total characters over total tokens by
hand; and with a vocabulary large enough for every word, one token per word. The vocabulary
sweep (257 .. 600) records how the sequence length falls with the vocabulary size and where it
stops falling; the first merges are recorded next to the most frequent pairs counted by hand.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from aiprep.kit import synthetic
from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
END_OF_TEXT = "<|endoftext|>"  # GPT-2's one special token: separates documents
BASE_VOCAB = 256 + 1  # the byte alphabet + END_OF_TEXT: a vocabulary with no merges
VOCAB_SIZES = (BASE_VOCAB, 300, 400, 600)  # the sweep; 600 exceeds what the corpus can fill
UNSEEN = (
    "the café served a naïve crème brûlée",
    "数据并行 and 张量并行 split the work",
    "the chef 🙂 bakes bread",
)
ROUND_TRIP = "round trip: decode(encode(text)) == text, unseen scripts included"
NO_MERGES = "no merges: tokens per UTF-8 byte"
NO_SPAN = "learned tokens spanning two words"
RATIO = "chars_per_token vs hand count"
WHOLE_WORDS = "largest vocabulary: tokens per word"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("train_bpe", "chars_per_token")

# -----------------------------------------------------------------------------
# The answer: train a byte-level BPE, measure its compression


def train_bpe(texts: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer trained on ``texts``, with at most ``vocab_size`` tokens.

    The vocabulary holds the 256 byte symbols, ``END_OF_TEXT`` and ``vocab_size - 257``
    merges (fewer when the corpus runs out of pairs). ``encode(text).ids`` is a list of int;
    ``decode(ids)`` gives back ``text`` exactly, whatever its script.
    """
    tokenizer = Tokenizer(models.BPE())  # no unk_token: with a byte alphabet none is needed
    # GPT-2's pre-tokenizer: a regex splits words, numbers and punctuation ("the chef" ->
    # "the", " chef"), then every byte maps to a printable symbol (space -> "Ġ"). BPE merges
    # only inside these pieces, so no token spans two words.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()  # symbols -> bytes -> UTF-8 text
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        # All 256 byte symbols, not only those seen in training: a byte the corpus lacks
        # (any Chinese character here) still encodes, as its UTF-8 bytes.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def chars_per_token(tokenizer: Tokenizer, texts: list[str]) -> float:
    """Compression ratio: total characters of ``texts`` over the total number of tokens.

    A ratio of sums, not a mean of per-text ratios: every character weighs the same, so the
    number does not depend on how the text was split into documents.
    """
    chars = sum(len(text) for text in texts)
    tokens = sum(len(encoding.ids) for encoding in tokenizer.encode_batch(texts))
    return chars / tokens


# -----------------------------------------------------------------------------
# Data and measurement


@dataclass(frozen=True)
class Corpus:
    """``train``: 2000 sentences; ``held_out``: 300 more; ``unseen``: other scripts."""

    train: list[str]
    held_out: list[str]
    unseen: list[str]


def make_data(seed: int = SEED) -> Corpus:
    """Sentences of the kit's topic grammar (78 words, 7-9 per sentence) and UNSEEN."""
    sentences = [str(s) for s in synthetic.topic_sentences(2300, seed=seed)]
    return Corpus(sentences[:2000], sentences[2000:], list(UNSEEN))


def merges(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    """The learned merges, in the order they were learned (= the order they are applied)."""
    model = json.loads(tokenizer.to_str())["model"]
    return [
        tuple(pair) if isinstance(pair, list) else tuple(pair.split(" "))
        for pair in model["merges"]
    ]


def top_pairs_by_hand(texts: list[str], n: int) -> list[tuple[tuple[str, str], int]]:
    """The n most frequent adjacent byte-symbol pairs in ``texts``, counted without BPE.

    Pre-tokenized the GPT-2 way (words, a space glued to the next word), each piece spelled
    in byte symbols: what the first BPE merge is chosen from.
    """
    split = pre_tokenizers.ByteLevel(add_prefix_space=False)
    pairs: Counter[tuple[str, str]] = Counter()
    for text in texts:
        for piece, _ in split.pre_tokenize_str(text):
            pairs.update(zip(piece, piece[1:], strict=False))
    return pairs.most_common(n)


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def train_bpe(self, texts: list[str], vocab_size: int) -> Tokenizer: ...

    def chars_per_token(self, tokenizer: Tokenizer, texts: list[str]) -> float: ...


def check(impl: Answer) -> SolutionReport:
    """Train at each vocabulary size; exact properties first, then the sweep."""
    report = SolutionReport(solution="training.tokenization_bpe")
    data = make_data()
    held_out = data.held_out + data.unseen
    tokenizers = {size: impl.train_bpe(data.train, size) for size in VOCAB_SIZES}
    middle = tokenizers[400]
    report.metric("vocabulary size asked / got at 400", f"400 / {middle.get_vocab_size()}")
    report.metric("merges learned at 400", len(merges(middle)))

    # 1. Lossless on anything: the byte alphabet leaves nothing unknown.
    exact = [middle.decode(middle.encode(t).ids) == t for t in held_out]
    report.metric("unseen string 2 as tokens", " ".join(middle.encode(UNSEEN[1]).tokens))
    report.check(
        ROUND_TRIP,
        sum(exact) / len(exact),
        "==",
        1.0,
        f"{len(held_out)} held-out strings, the last {len(UNSEEN)} with characters the corpus "
        "never shows: a byte-level vocabulary encodes them as UTF-8 bytes; a character "
        "vocabulary maps them to [UNK] (or drops them) and splitting on whitespace loses "
        "the spaces, so those strings do not come back",
    )

    # 2. No merges: one token per UTF-8 byte (closed form); Chinese characters are 3 bytes.
    base = tokenizers[BASE_VOCAB]
    n_bytes = sum(len(t.encode("utf-8")) for t in held_out)
    n_tokens = sum(len(e.ids) for e in base.encode_batch(held_out))
    report.metric("held-out UTF-8 bytes", n_bytes)
    report.check(
        NO_MERGES,
        n_tokens / n_bytes,
        "==",
        1.0,
        f"vocabulary {BASE_VOCAB} = 256 byte symbols + {END_OF_TEXT}: no room for a merge, "
        "so each byte is one token; a character alphabet gives fewer tokens than bytes (one "
        "per character, 3 bytes for each Chinese one) and learns merges with the room left",
    )

    # 3. Merges stay inside a word: "Ġ" (a space) may only start a token.
    spanning = [
        token for size in VOCAB_SIZES for token in tokenizers[size].get_vocab() if "Ġ" in token[1:]
    ]
    report.metric(
        "example tokens spanning two words", " ".join(sorted(set(spanning))[:5]) or "none"
    )
    report.check(
        NO_SPAN,
        len(set(spanning)),
        "==",
        0,
        "the pre-tokenizer cuts text before each space, so a learned token holds at most one "
        "word (with its leading space); without it frequent word pairs ('Ġthe' + 'Ġchef') "
        "merge into one token, and the vocabulary spends itself on phrases",
    )

    # 4. The compression ratio, by hand, on the reference's tokenizer.
    reference = train_bpe(data.train, 400)
    chars = sum(len(t) for t in held_out)
    tokens = sum(len(e.ids) for e in reference.encode_batch(held_out))
    report.check_close(
        RATIO,
        compare(impl.chars_per_token(reference, held_out), chars / tokens, atol=1e-9, rtol=1e-9),
        "a ratio of two integer counts, so float64 is exact to ~1e-16: atol = rtol = 1e-9; a "
        "mean of per-sentence ratios differs by ~2% (short sentences weigh as much as long "
        "ones), tokens per character is the inverse (~3x off)",
    )

    # 5. The sweep: sequence length against vocabulary size, on in-corpus held-out text.
    words = sum(len(t.split()) for t in data.held_out)
    text_chars = sum(len(t) for t in data.held_out)
    report.metric("held-out characters per word (incl. spaces)", text_chars / words)
    for size in VOCAB_SIZES:
        n = sum(len(e.ids) for e in tokenizers[size].encode_batch(data.held_out))
        report.metric(f"vocab {size}: vocabulary got", tokenizers[size].get_vocab_size())
        report.metric(f"vocab {size}: held-out tokens", n)
        report.metric(f"vocab {size}: characters per token", text_chars / n)
    largest = tokenizers[VOCAB_SIZES[-1]]
    n_largest = sum(len(e.ids) for e in largest.encode_batch(data.held_out))
    report.check_close(
        WHOLE_WORDS,
        compare(n_largest / words, 1.0, atol=1e-9),
        f"{VOCAB_SIZES[-1]} exceeds what the corpus fills (each of its words, with and without "
        "a leading space, plus the 257 base symbols): every held-out word is one token, "
        "exactly; fewer tokens than words means tokens span words, more means merges missing",
    )

    # The first merges are the most frequent pairs: recorded next to a hand count.
    report.metric("first 5 merges", " ".join("+".join(p) for p in merges(middle)[:5]))
    report.metric(
        "most frequent pairs counted by hand",
        " ".join(f"{a}+{b}:{n}" for (a, b), n in top_pairs_by_hand(data.train, 3)),
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
