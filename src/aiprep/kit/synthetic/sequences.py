"""Synthetic "utterances": feature-frame sequences (like log-mel frames) spelling short words.

Each character of an alphabet has a prototype spectrum (a smooth random vector of ``n_mels``
values). An utterance of a transcript holds each character's prototype for a random number of
frames, scaled by a per-utterance speaking rate, blends neighbouring characters at their
boundary (coarticulation), adds a per-utterance "speaker" offset and per-frame noise, and pads
with silence. The frame-level alignment is random and not returned: like real speech, only the
transcript is known, which is the setting CTC is made for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aiprep.kit.synthetic import rng

LABEL_PAD = -1
"""Value of ``Utterances.labels`` past each transcript's length."""


@dataclass(frozen=True)
class Utterances:
    """A batch of padded utterances and their transcripts.

    - ``features``: (N, T_max, n_mels) float32, zero past ``feature_lengths``.
    - ``feature_lengths``: (N,) int32, number of real frames of each utterance.
    - ``labels``: (N, L_max) int32 character ids in [0, len(alphabet)), ``LABEL_PAD`` past
      ``label_lengths``.
    - ``label_lengths``: (N,) int32, number of characters of each transcript.
    - ``alphabet``: the characters; id ``i`` is ``alphabet[i]``.
    """

    features: np.ndarray
    feature_lengths: np.ndarray
    labels: np.ndarray
    label_lengths: np.ndarray
    alphabet: str

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_chars(self) -> int:
        return len(self.alphabet)

    def transcript(self, i: int) -> list[int]:
        """The character ids of utterance ``i`` (no padding)."""
        return [int(c) for c in self.labels[i, : self.label_lengths[i]]]

    def text(self, i: int) -> str:
        """The transcript of utterance ``i`` as a string."""
        return "".join(self.alphabet[c] for c in self.transcript(i))


@dataclass(frozen=True)
class UtteranceSplit:
    """Train and test utterances over the same alphabet and character prototypes."""

    train: Utterances
    test: Utterances


def char_prototypes(num_chars: int, n_mels: int, seed: int) -> np.ndarray:
    """One smooth prototype spectrum per character, (num_chars + 1, n_mels) float32.

    Row ``num_chars`` is silence (a low, flat spectrum). The others are white noise smoothed
    along the mel axis and standardised, so neighbouring mel bins are correlated as in speech.
    """
    g = rng(seed)
    raw = g.normal(size=(num_chars, n_mels + 4))
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    smooth = np.stack([np.convolve(r, kernel, mode="valid") for r in raw])  # (num_chars, n_mels)
    smooth = (smooth - smooth.mean(axis=1, keepdims=True)) / smooth.std(axis=1, keepdims=True)
    silence = np.full((1, n_mels), -2.0)
    return np.concatenate([smooth, silence]).astype(np.float32)


def random_transcripts(
    n: int, num_chars: int, min_len: int, max_len: int, repeat_prob: float, g: np.random.Generator
) -> list[list[int]]:
    """``n`` lists of character ids, lengths uniform in [min_len, max_len].

    With probability ``repeat_prob`` a character repeats the previous one (double letters, as
    in "hello"); otherwise it is drawn uniformly among the other characters.
    """
    out = []
    for _ in range(n):
        length = int(g.integers(min_len, max_len + 1))
        chars = [int(g.integers(num_chars))]
        for _ in range(length - 1):
            if g.random() < repeat_prob:
                chars.append(chars[-1])
            else:
                c = int(g.integers(num_chars - 1))
                chars.append(c + (c >= chars[-1]))  # uniform over the others
        out.append(chars)
    return out


def render_utterance(
    chars: list[int],
    prototypes: np.ndarray,
    g: np.random.Generator,
    frames_per_char: tuple[int, int],
    rate_range: tuple[float, float],
    noise: float,
    speaker_std: float,
) -> np.ndarray:
    """Frames (T, n_mels) float32 of one utterance of ``chars``; T depends on rate and durations.

    A repeated character is separated from its twin by one or two silence frames (a short
    pause): without one, "ll" and "l" would be the same sound held for different times.
    """
    silence = prototypes[-1]
    rate = g.uniform(*rate_range)  # < 1: fast speaker, > 1: slow speaker
    segments = [np.repeat(silence[None], int(g.integers(1, 4)), axis=0)]  # leading silence
    previous = silence
    for i, c in enumerate(chars):
        if i > 0 and c == chars[i - 1]:
            segments.append(np.repeat(silence[None], int(g.integers(1, 3)), axis=0))
            previous = silence
        base = g.integers(frames_per_char[0], frames_per_char[1] + 1)
        duration = max(frames_per_char[0], int(round(base * rate)))
        held = np.repeat(prototypes[c][None], duration, axis=0)  # (duration, n_mels)
        held[0] = 0.5 * (previous + prototypes[c])  # coarticulation: blend into the new sound
        segments.append(held)
        previous = prototypes[c]
    segments.append(np.repeat(silence[None], int(g.integers(1, 4)), axis=0))  # trailing
    frames = np.concatenate(segments)  # (T, n_mels)
    speaker = g.normal(0.0, speaker_std, size=(1, frames.shape[1]))  # same for the whole utterance
    frames = frames + speaker + g.normal(0.0, noise, size=frames.shape)
    return frames.astype(np.float32)


def utterances(
    n: int,
    prototypes: np.ndarray,
    alphabet: str,
    seed: int,
    min_len: int = 3,
    max_len: int = 8,
    repeat_prob: float = 0.15,
    frames_per_char: tuple[int, int] = (3, 5),
    rate_range: tuple[float, float] = (0.8, 1.5),
    noise: float = 0.6,
    speaker_std: float = 0.3,
) -> Utterances:
    """``n`` utterances of random transcripts over ``alphabet`` rendered with ``prototypes``.

    ``prototypes``: (len(alphabet) + 1, n_mels) from :func:`char_prototypes`. Frames per
    character: uniform in ``frames_per_char`` times the utterance's speaking rate, and at
    least ``frames_per_char[0]`` (3 by default: a model may subsample time by 2 and still have
    room for CTC's blank between double letters).
    """
    num_chars = len(alphabet)
    assert prototypes.shape[0] == num_chars + 1, "one prototype per character, plus silence"
    g = rng(seed)
    transcripts = random_transcripts(n, num_chars, min_len, max_len, repeat_prob, g)
    frames = [
        render_utterance(t, prototypes, g, frames_per_char, rate_range, noise, speaker_std)
        for t in transcripts
    ]
    feature_lengths = np.array([len(f) for f in frames], np.int32)
    label_lengths = np.array([len(t) for t in transcripts], np.int32)
    features = np.zeros((n, feature_lengths.max(), prototypes.shape[1]), np.float32)
    labels = np.full((n, label_lengths.max()), LABEL_PAD, np.int32)
    for i, (f, t) in enumerate(zip(frames, transcripts, strict=True)):
        features[i, : len(f)] = f
        labels[i, : len(t)] = t
    return Utterances(features, feature_lengths, labels, label_lengths, alphabet)


def utterance_split(
    n_train: int,
    n_test: int,
    alphabet: str = "abcdefghijkl",
    n_mels: int = 16,
    seed: int = 0,
    **kwargs: object,
) -> UtteranceSplit:
    """Train and test :func:`utterances` sharing one set of prototypes (the same "language").

    Keyword arguments go to :func:`utterances` (lengths, repeat probability, rate, noise).
    """
    prototypes = char_prototypes(len(alphabet), n_mels, seed)
    train = utterances(n_train, prototypes, alphabet, seed + 1, **kwargs)  # type: ignore[arg-type]
    test = utterances(n_test, prototypes, alphabet, seed + 2, **kwargs)  # type: ignore[arg-type]
    return UtteranceSplit(train, test)
