"""Rotary position embedding (RoPE): rotate q and k so attention scores see only the offset.

RoPE (Su et al., RoFormer) splits each query and key head vector (dh values) into dh/2 pairs
and rotates pair j of the vector at position p by the angle p * theta_j, with
theta_j = base^(-2j/dh) (base 10000 in RoFormer and Llama 2). A rotation by a and one by b
give <R(a) q, R(b) k> = <q, R(b - a) k>, so the score of query position m against key
position n depends on the contents and on n - m only: relative position enters attention
with no extra parameters, and values are not rotated. Pair j is (x_j, x_{j + dh/2}) here:
the "rotate half" layout of GPT-NeoX, Llama and ESM. The original RoFormer / GPT-J layout
pairs neighbours (x_2j, x_2j+1); both are RoPE, but they differ by a fixed permutation of q
and k's features, so the layout must match the checkpoint's.

The checks prove: the frequencies are base^(-2j/dh); ``apply_rope`` equals transformers'
``TFRotaryEmbedding`` (ESM) at positions 0..15, and a float64 closed form at fractional
positions (what position interpolation feeds it, from a KV-cache offset of 40); and the score
of (m + s, n + s) equals that of (m, n) for shifts s up to 4096, to the float32 rounding of
angles of ~4096 rad.

Extrapolation, measured as in the position-interpolation paper (Chen et al. 2023, Fig. 2):
a query is fitted (ridge least squares) so that its scores against a key match target
scores at offsets 0..63, as training fixes them only inside the training length. Evaluated
at offsets 64..255 (direct extrapolation) the scores leave the fitted range by several
times; with positions interpolated by 64/256 (PI: every position scaled into the trained
range) they stay inside it. The same is recorded for real configurations: how many of the
frequency pairs never complete a turn within the training length (their angles past it are
new to the model), the pairs that NTK-aware scaling and YaRN treat differently.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
D_HEAD = 32
BASE = 10000.0
TRAIN_LEN = 64  # offsets the fitted scores are constrained on
EXTEND = 4  # evaluate at 4x the trained length
RIDGE = 1e-3
MAX_SHIFT = 4096

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("rope_frequencies", "apply_rope")

# -----------------------------------------------------------------------------
# The answer


def rope_frequencies(d_head: int, base: float = BASE) -> np.ndarray:
    """theta_j = base^(-2j / d_head) for j = 0 .. d_head/2 - 1: (d_head/2,) float64.

    Pair 0 turns by 1 radian per position (wavelength 2*pi); the last pair by about 1/base
    (wavelength ~2*pi*base): geometric in between, like the sinusoidal encoding's.
    """
    j = np.arange(d_head // 2, dtype=np.float64)  # (dh/2,)
    frequencies: np.ndarray = base ** (-2.0 * j / d_head)
    return frequencies


def apply_rope(x: tf.Tensor, positions: tf.Tensor, base: float = BASE) -> tf.Tensor:
    """Rotate the vectors of ``x`` (..., T, dh) by their positions (T,), float32.

    Pair j = (x[..., j], x[..., j + dh/2]) of the vector at position p is rotated by
    p * theta_j. Positions may be fractional (position interpolation scales them) and need
    not start at 0 (a decode step with a KV cache continues at the cache length).
    Returns a tensor like ``x``. Apply to queries and keys, not to values.
    """
    d_head = x.shape[-1]
    half = d_head // 2
    theta = tf.constant(rope_frequencies(d_head, base), tf.float32)  # (dh/2,)
    # Float positions: casting to int would round interpolated positions (p * L / L').
    angles = tf.cast(positions, tf.float32)[:, None] * theta[None, :]  # (T, dh/2)
    cos, sin = tf.cos(angles), tf.sin(angles)  # (T, dh/2), broadcast over leading axes
    x1, x2 = x[..., :half], x[..., half:]  # (..., T, dh/2) each: the two halves of each pair
    # (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin): a 2-D rotation of every pair.
    return tf.concat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # (..., T, dh)


# -----------------------------------------------------------------------------
# Data, independent references and the harness


def make_data(seed: int = SEED) -> np.ndarray:
    """(2, 4, 48, 32) float32 standard normal: a batch of q or k, (B, H, T, dh)."""
    x: np.ndarray = synthetic.rng(seed).normal(size=(2, 4, 48, D_HEAD)).astype(np.float32)
    return x


def closed_form_rope(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """float64 reference: each pair (x_j, x_{j+dh/2}) as a complex number times e^{i p theta_j}."""
    half = x.shape[-1] // 2
    theta = BASE ** (-2.0 * np.arange(half) / x.shape[-1])  # (dh/2,)
    z = (x[..., :half] + 1j * x[..., half:]).astype(np.complex128)  # (..., T, dh/2)
    rotated = z * np.exp(1j * np.outer(positions, theta))  # (..., T, dh/2)
    return np.concatenate([rotated.real, rotated.imag], axis=-1)


def transformers_rope(x: np.ndarray) -> np.ndarray:
    """transformers' TFRotaryEmbedding (ESM; rotate-half layout, base 10000) at 0..T-1."""
    from transformers.models.esm.modeling_tf_esm import TFRotaryEmbedding

    layer = TFRotaryEmbedding(x.shape[-1])
    q, _ = layer(tf.constant(x), tf.constant(x))  # (B, H, T, dh), positions 0..T-1
    out: np.ndarray = q.numpy()
    return out


def unit_vectors(n: int, seed: int) -> np.ndarray:
    """(n, 32) float32 random unit vectors: scores are cosines, in [-1, 1]."""
    v = synthetic.rng(seed).normal(size=(n, D_HEAD))
    unit: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return unit


def scores(impl: Answer, q: np.ndarray, k: np.ndarray, start: float) -> np.ndarray:
    """(16, 16) scores <rope(q_m, start + m), rope(k_n, start + n)>: q, k (16, 32)."""
    positions = start + np.arange(len(q), dtype=np.float32)
    rq = impl.apply_rope(tf.constant(q), tf.constant(positions))  # (16, 32)
    rk = impl.apply_rope(tf.constant(k), tf.constant(positions))
    out: np.ndarray = tf.matmul(rq, rk, transpose_b=True).numpy()  # (16, 16)
    return out


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def rope_frequencies(self, d_head: int, base: float = BASE) -> np.ndarray: ...

    def apply_rope(self, x: tf.Tensor, positions: tf.Tensor, base: float = BASE) -> tf.Tensor: ...


FREQS = "rope_frequencies(32) and (128, base 500000) vs base^(-2j/d)"
LIBRARY = "apply_rope vs transformers TFRotaryEmbedding (ESM), positions 0..15"
INTERPOLATED = "apply_rope at positions 40, 40.25, ..., 51.75 vs float64 closed form"
RELATIVE = "score(m + s, n + s) == score(m, n) for shifts s = 1, 100, 1000, 4096"


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl`` vs closed forms, transformers' RoPE layer, and RoPE's relative property.

    Values ~1, angles <= 52 rad, float32 sin/cos: ~1e-6 off: atol 1e-5 + rtol 1e-5. The
    relative property at shifts up to 4096: float32 positions and products p * theta near
    4096 round by up to ~2.4e-4 rad each (ulp 4.9e-4 at 4096), so a cosine score of unit
    vectors moves by up to ~5e-4: atol 1e-3 (measured: 2e-5). Wrong frequencies, layout or
    an added absolute encoding are off by O(0.1..1).
    """
    x = make_data()
    found = {}
    expected_freqs = np.concatenate(
        [10000.0 ** (-np.arange(16) / 16), 500000.0 ** (-np.arange(64) / 64)]
    )
    got_freqs = np.concatenate([impl.rope_frequencies(32), impl.rope_frequencies(128, 500000.0)])
    found[FREQS] = compare(got_freqs, expected_freqs, atol=1e-12, rtol=1e-6)
    first = x[:, :, :16]  # (2, 4, 16, 32)
    got = impl.apply_rope(tf.constant(first), tf.range(16, dtype=tf.float32))
    found[LIBRARY] = compare(np.asarray(got), transformers_rope(first), atol=1e-5, rtol=1e-5)
    # A decode chunk at a cache offset, 4x interpolated (PI): fractional positions 40 + i/4.
    positions = 40.0 + np.arange(48) / 4.0  # (48,)
    got = impl.apply_rope(tf.constant(x), tf.constant(positions, tf.float32))
    found[INTERPOLATED] = compare(
        np.asarray(got), closed_form_rope(x, positions), atol=1e-5, rtol=1e-5
    )
    q, k = unit_vectors(16, SEED), unit_vectors(16, SEED + 1)
    at_zero = scores(impl, q, k, 0.0)  # (16, 16): offsets n - m in -15..15
    shifted = np.stack([scores(impl, q, k, s) for s in (1.0, 100.0, 1000.0, float(MAX_SHIFT))])
    found[RELATIVE] = compare(shifted, np.broadcast_to(at_zero, shifted.shape), atol=1e-3)
    return found


def check(impl: Answer) -> SolutionReport:
    """Frequencies, equality with references, the relative property, extrapolation vs PI."""
    report = SolutionReport(solution="training.rope")
    details = {
        FREQS: "closed form, float64: rtol 1e-6; base^(-j/d) (the factor 2 forgotten) is off "
        "by up to 100x at the last pair",
        LIBRARY: "same rotate-half layout and base as the library layer, float32 sin/cos of "
        "angles <= 15 rad: ~1e-6: atol 1e-5 + rtol 1e-5; the interleaved (GPT-J) layout or "
        "an added sinusoid differ by O(1)",
        INTERPOLATED: "float64 reference; float32 angles <= 52 rad round by ~4e-6: atol 1e-5 "
        "+ rtol 1e-5; positions ignored (0..47) or cast to int differ by O(0.1..1)",
        RELATIVE: "rotations compose: R(m)^T R(n) = R(n - m); float32 angles near 4096 rad "
        "round by up to ~2.4e-4 rad each, scores are cosines: worst case ~5e-4, atol 1e-3 "
        "(measured 2e-5); an absolute encoding added instead moves scores by O(0.1)",
    }
    for name, cmp in reference_comparisons(impl).items():
        report.check_close(name, cmp, details[name] + "; " + cmp.detail)
    _extrapolation(report, impl)
    return report


def _extrapolation(report: SolutionReport, impl: Answer) -> None:
    """Scores fitted on offsets 0..63, evaluated beyond (direct) and interpolated (PI)."""
    key = unit_vectors(1, SEED + 2)[0]  # (32,), at position 0

    # score(m) = <R(m) q, k> = q . R(-m) k: linear in the query, one basis row per offset.
    def basis(positions: np.ndarray) -> np.ndarray:
        rows = impl.apply_rope(
            tf.constant(np.tile(key, (len(positions), 1))), tf.constant(-positions, tf.float32)
        )
        out: np.ndarray = np.asarray(rows, np.float64)  # (P, 32)
        return out

    trained = np.arange(TRAIN_LEN, dtype=np.float64)
    target = synthetic.rng(SEED + 3).normal(size=TRAIN_LEN)  # scores "training" fixed
    rows = basis(trained)  # (64, 32)
    query = np.linalg.solve(rows.T @ rows + RIDGE * np.eye(D_HEAD), rows.T @ target)  # (32,)
    inside = max(float(np.max(np.abs(rows @ query))), 1e-12)  # > 0 even for a zero answer
    longer = np.arange(TRAIN_LEN * EXTEND, dtype=np.float64)
    direct = float(np.max(np.abs(basis(longer[TRAIN_LEN:]) @ query)))
    interpolated = float(np.max(np.abs(basis(longer / EXTEND) @ query)))
    report.metric(f"fitted scores, offsets 0..{TRAIN_LEN - 1}: max |score|", inside)
    report.metric(
        f"direct extrapolation to offsets {TRAIN_LEN}..{TRAIN_LEN * EXTEND - 1}: "
        "max |score| / trained max",
        direct / inside,
    )
    report.metric(
        f"position interpolation (positions x 1/{EXTEND}) over {TRAIN_LEN * EXTEND} "
        "positions: max |score| / trained max",
        interpolated / inside,
    )
    # Real configurations: pairs whose wavelength 2*pi/theta exceeds the training length
    # never complete a turn in training; past it their angles are new.
    for label, d_head, base, length in (
        ("Llama 2 (dh 128, base 1e4, 4096 tokens)", 128, 1e4, 4096),
        ("Llama 3 (dh 128, base 5e5, 8192 tokens)", 128, 5e5, 8192),
    ):
        wavelengths = 2 * np.pi / impl.rope_frequencies(d_head, base)
        report.metric(
            f"{label}: pairs with wavelength > training length",
            f"{int(np.sum(wavelengths > length))} of {d_head // 2}",
        )


if __name__ == "__main__":
    print_check_of(__name__)
