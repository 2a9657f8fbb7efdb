"""Seeded synthetic data shared by every solution: built in memory, nothing downloaded.

Each generator takes a ``seed`` and returns NumPy arrays, so a solution's data is the
same on every run and every machine. Generators live in submodules by kind of data
(``images``, ``digits``, ``sequences``, ``points``, ``text``) and are re-exported here:
``from aiprep.kit import synthetic`` then ``synthetic.class_images(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """A train/test split of features ``x`` and integer labels ``y``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def rng(seed: int) -> np.random.Generator:
    """The one way solutions make randomness: a NumPy generator from ``seed``."""
    return np.random.default_rng(seed)


def shuffled_labels(y: np.ndarray, seed: int) -> np.ndarray:
    """A random permutation of ``y``: same label counts, no link to the inputs."""
    return rng(seed).permutation(y)


# Re-exports of each submodule's generators (they import Split and rng from above).
from aiprep.kit.synthetic.digits import digit_images  # noqa: E402
from aiprep.kit.synthetic.images import class_images, class_templates  # noqa: E402
from aiprep.kit.synthetic.points import nearest_mode, ring_centers, ring_of_gaussians  # noqa: E402
from aiprep.kit.synthetic.sequences import Utterances, UtteranceSplit, utterance_split  # noqa: E402
from aiprep.kit.synthetic.text import (  # noqa: E402
    SPECIAL_TOKENS,
    encode_words,
    negation_sentences,
    topic_sentences,
    word_vocab,
)

__all__ = [
    "SPECIAL_TOKENS",
    "Split",
    "UtteranceSplit",
    "Utterances",
    "class_images",
    "class_templates",
    "digit_images",
    "encode_words",
    "nearest_mode",
    "negation_sentences",
    "ring_centers",
    "ring_of_gaussians",
    "rng",
    "shuffled_labels",
    "topic_sentences",
    "utterance_split",
    "word_vocab",
]
