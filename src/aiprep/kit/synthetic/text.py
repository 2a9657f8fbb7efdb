"""Sentences from a tiny vocabulary: a sentiment task that needs word order, and a plain corpus.

Both corpora are plain English-like word sequences (lower case, single spaces, no
punctuation), so any tokenizer works on them: a word-level vocabulary
(:func:`word_vocab`, :func:`encode_words`) or a WordPiece tokenizer trained with the
``tokenizers`` library.
"""

from __future__ import annotations

import numpy as np

from aiprep.kit.synthetic import Split, rng

# BERT's special tokens; :func:`word_vocab` gives them ids 0..4 in this order.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# -- negation_sentences ---------------------------------------------------------------------

_NOUNS = ("movie", "food", "service", "book", "hotel", "song", "game", "room", "staff", "view")
_POSITIVE = ("good", "great", "lovely", "excellent", "fun", "nice")
_NEGATIVE = ("bad", "awful", "boring", "poor", "terrible", "dull")
_ADVERBS = ("", "", "really", "truly", "honestly")
_COPULAS = ("was", "is", "seemed", "felt")
_ASIDE_SUBJECTS = ("i", "we", "they", "my friend")
_ASIDE_AUX = ("did", "do", "could")
_ASIDE_VERBS = ("expect", "know", "say", "believe", "mind")
_ASIDE_OBJECTS = ("that", "it", "much", "why")
_BEFORE = ("but", "and", "yet")  # aside, connector, opinion
_AFTER = ("and", "but", "though")  # opinion, connector, aside


def negation_sentences(
    n_train: int,
    n_test: int,
    seed: int = 0,
    p_negated: float = 0.5,
    p_aside_negated: float = 0.5,
) -> Split:
    """Binary sentiment whose label depends on WHICH word "not" modifies.

    Each sentence is an opinion clause ``the <noun> [adverb] <copula> [not] <adjective>``
    joined to an aside clause ``<subject> <aux> [not] <verb> <object>``, in either order:
    "we did not expect that but the food was great" is positive,
    "the food was not great and we did expect that" is negative.
    The label is 1 (positive) when the adjective is positive and not negated, or negative
    and negated; else 0. The opinion is negated with probability ``p_negated``, the aside
    independently with ``p_aside_negated``.

    Both clauses can hold a "not", so a bag of words cannot tell a sentence with one "not"
    apart from its opposite: with both probabilities 0.5 the best bag-of-words accuracy is
    0.75. Reaching more needs word order ("not" right before the adjective).

    ``x_train`` (n_train,) and ``x_test`` (n_test,) are NumPy unicode arrays of sentences
    (9 to 13 words); ``y_*`` are int64 labels in {0, 1}, balanced in expectation.
    """
    g = rng(seed)
    n = n_train + n_test
    texts, labels = [], []
    for _ in range(n):
        positive = g.random() < 0.5
        negated = g.random() < p_negated
        adjective = g.choice(_POSITIVE if positive else _NEGATIVE)
        opinion = " ".join(
            w
            for w in (
                "the",
                g.choice(_NOUNS),
                g.choice(_ADVERBS),
                g.choice(_COPULAS),
                "not" if negated else "",
                adjective,
            )
            if w
        )
        aside = " ".join(
            w
            for w in (
                g.choice(_ASIDE_SUBJECTS),
                g.choice(_ASIDE_AUX),
                "not" if g.random() < p_aside_negated else "",
                g.choice(_ASIDE_VERBS),
                g.choice(_ASIDE_OBJECTS),
            )
            if w
        )
        if g.random() < 0.5:
            texts.append(f"{aside} {g.choice(_BEFORE)} {opinion}")
        else:
            texts.append(f"{opinion} {g.choice(_AFTER)} {aside}")
        labels.append(int(positive != negated))
    x = np.array(texts)
    y = np.array(labels, dtype=np.int64)
    return Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


# -- topic_sentences ------------------------------------------------------------------------

# topic: (agents, actions, objects, places); agent i always does action i.
_TOPICS = {
    "kitchen": (
        ("chef", "cook", "baker"),
        ("fries", "chops", "bakes"),
        ("fish", "onions", "bread"),
        ("kitchen", "restaurant", "bakery"),
    ),
    "farm": (
        ("farmer", "shepherd", "gardener"),
        ("plows", "herds", "waters"),
        ("fields", "sheep", "roses"),
        ("farm", "meadow", "garden"),
    ),
    "school": (
        ("teacher", "student", "librarian"),
        ("teaches", "studies", "shelves"),
        ("math", "history", "books"),
        ("school", "classroom", "library"),
    ),
    "garage": (
        ("mechanic", "driver", "painter"),
        ("repairs", "drives", "paints"),
        ("engines", "trucks", "fences"),
        ("garage", "highway", "yard"),
    ),
    "harbor": (
        ("sailor", "fisherman", "captain"),
        ("rows", "catches", "steers"),
        ("boats", "tuna", "ships"),
        ("harbor", "river", "sea"),
    ),
    "studio": (
        ("singer", "drummer", "pianist"),
        ("sings", "drums", "plays"),
        ("songs", "rhythms", "chords"),
        ("studio", "concert", "club"),
    ),
}
_TEMPLATES = (
    "the {agent} {action} the {object} in the {place}",
    "in the {place} the {agent} {action} the {object}",
    "every day the {agent} {action} {object} at the {place}",
    "at the {place} a {agent} {action} {object}",
)


def topic_sentences(n: int, seed: int = 0) -> np.ndarray:
    """``n`` plain sentences of 7 to 9 words (NumPy unicode array (n,)) for MLM pretraining.

    Each sentence describes one scene from one of six topics (kitchen, farm, school, ...):
    "in the bakery the chef fries the bread". All content words of a sentence come from its
    topic, each agent always goes with its own action (chef -> fries), and the function words
    follow one of four templates. So a masked word is predictable from its context: the
    agent from the action and vice versa exactly, an object or place up to its topic (1 in
    3), a function word from its neighbours; a model that ignores the context can only
    guess frequent words such as "the".
    """
    g = rng(seed)
    topics = list(_TOPICS.values())
    out = []
    for _ in range(n):
        agents, actions, objects, places = topics[g.integers(len(topics))]
        i = g.integers(len(agents))
        template = _TEMPLATES[g.integers(len(_TEMPLATES))]
        out.append(
            template.format(
                agent=agents[i],
                action=actions[i],
                object=objects[g.integers(len(objects))],
                place=places[g.integers(len(places))],
            )
        )
    return np.array(out)


# -- word-level vocabulary ------------------------------------------------------------------


def word_vocab(texts: np.ndarray | list[str]) -> list[str]:
    """The vocabulary of ``texts``: :data:`SPECIAL_TOKENS` (ids 0..4), then every word, sorted."""
    words = sorted({w for t in texts for w in str(t).split()})
    return [*SPECIAL_TOKENS, *words]


def encode_words(texts: np.ndarray | list[str], vocab: list[str], max_len: int) -> np.ndarray:
    """Token ids (len(texts), max_len) int32: ``[CLS] w1 ... wn [SEP]``, then ``[PAD]``.

    Words missing from ``vocab`` become ``[UNK]``; longer sentences are cut to fit
    ``max_len`` (the ``[SEP]`` is kept).
    """
    index = {w: i for i, w in enumerate(vocab)}
    cls, sep, unk = index["[CLS]"], index["[SEP]"], index["[UNK]"]
    ids = np.full((len(texts), max_len), index["[PAD]"], np.int32)
    for row, text in enumerate(texts):
        words = [index.get(w, unk) for w in str(text).split()][: max_len - 2]
        tokens = [cls, *words, sep]
        ids[row, : len(tokens)] = tokens
    return ids
