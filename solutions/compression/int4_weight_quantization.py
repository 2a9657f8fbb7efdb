"""int4 weight-only quantization of a linear layer: round-to-nearest, GPTQ and AWQ.

A toy linear layer y = x @ W (W: 256 x 256, the Keras kernel layout (in, out)) gets 4-bit
weights, asymmetric, one scale and integer zero point per group of 64 input rows and per
output column: w_hat = scale * (q - zero), q in [0, 15]. The activations are what makes
LLM weight quantization hard: correlated channels (a low-rank signal plus noise) and a few
outlier channels 20x larger than the rest. Three quantizers, same format:

- round-to-nearest (RTN): each weight rounded on its own; ignores the data.
- GPTQ (Frantar et al. 2022): quantize one input row at a time and push each row's
  rounding error onto the rows not yet quantized, weighted by the inverse of the layer's
  Hessian H = 2 X^T X / n (X: calibration inputs), so that the *output* error
  ||X W - X W_hat|| is what is minimised, not the weight error.
- AWQ (Lin et al. 2023): scale each input channel's weights up by s = mean|x|^alpha
  before RTN (and the input down by s, folded into the previous op), so that the weights
  which meet large activations get finer steps; alpha is grid-searched on calibration data.

The checks measure the output error on *held-out* inputs: GPTQ and AWQ must each beat RTN
by a clear factor (the measured ones are about 2x); every code is an integer in [0, 15];
the stored (q, scale, zero) reproduce the weights the method computed with; the candidate's
RTN is the min/max RTN the others are measured against.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from aiprep.kit import synthetic
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
D_IN, D_OUT = 256, 256  # the toy layer: y (B, 256) = x (B, 256) @ W (256, 256)
GROUP = 64  # input rows sharing one scale and zero point (GPTQ/AWQ use 32-128)
LEVELS = 16  # int4: codes 0..15
N_CALIBRATION, N_TEST = 512, 1024  # tokens: calibration, and held out for the verdict
LATENT = 64  # rank of the correlated part of the activations
OUTLIER_CHANNELS, OUTLIER_GAIN = 4, 20.0  # ~1.5% of the channels, 20x larger
DAMP = 0.01  # GPTQ dampening: lambda = 1% of the mean diagonal of H
AWQ_GRID = 20  # alpha in {0, 0.05, ..., 1}
MAX_ERROR_RATIO = 0.8  # GPTQ and AWQ: held-out output error <= 0.8 x RTN's

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("rtn_int4", "gptq_int4", "awq_int4")


class Int4Weight(NamedTuple):
    """A quantized kernel (d_in, d_out) as it is stored, and the layer it computes.

    The layer computes y = (x / input_scale) @ weight; ``weight`` = scale * (q - zero),
    group by group (input rows g*GROUP .. (g+1)*GROUP - 1 use scale[g], zero[g]).
    """

    q: np.ndarray  # (d_in, d_out) int codes in [0, 15]
    scale: np.ndarray  # (d_in // GROUP, d_out) float step size
    zero: np.ndarray  # (d_in // GROUP, d_out) integer zero point in [0, 15]
    input_scale: np.ndarray  # (d_in,) AWQ's per-input-channel s; ones for RTN and GPTQ
    weight: np.ndarray  # (d_in, d_out) the dequantized weights the method computed with


# -----------------------------------------------------------------------------
# The answer: one int4 format, three ways to choose the codes


def group_params(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric min/max int4 parameters of a group ``w`` (GROUP, d_out), per column.

    Returns scale (d_out,) and integer zero (d_out,): the range [min, max] (widened to
    contain 0, so zero is a code in [0, 15]) is cut into 15 steps.
    """
    lo = np.minimum(w.min(axis=0), 0.0)  # (d_out,)
    hi = np.maximum(w.max(axis=0), 0.0)
    scale = (hi - lo) / (LEVELS - 1)
    scale = np.where(scale > 0, scale, 1.0)  # an all-zero column: any scale will do
    zero = np.round(-lo / scale)  # the code of 0.0, an integer so 0 is exact
    return scale, zero


def quantize_codes(w: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """Codes q = clip(round(w / scale) + zero, 0, 15), same shape as ``w``."""
    codes: np.ndarray = np.clip(np.round(w / scale) + zero, 0, LEVELS - 1)
    return codes


def rtn_int4(w: np.ndarray) -> Int4Weight:
    """Round-to-nearest int4 of a kernel ``w`` (d_in, d_out), group by group of input rows."""
    d_in, d_out = w.shape
    q = np.empty((d_in, d_out))
    scales, zeros = [], []
    for start in range(0, d_in, GROUP):
        scale, zero = group_params(w[start : start + GROUP])  # (d_out,) each
        q[start : start + GROUP] = quantize_codes(w[start : start + GROUP], scale, zero)
        scales.append(scale)
        zeros.append(zero)
    return _packed(q, np.stack(scales), np.stack(zeros), np.ones(d_in))


def gptq_int4(w: np.ndarray, x_calibration: np.ndarray) -> Int4Weight:
    """GPTQ int4 of a kernel ``w`` (d_in, d_out) given calibration inputs (n, d_in).

    Minimises ||X W - X W_hat||^2 row by row: after quantizing input row i, the rows not
    yet quantized absorb its error so that the layer's output moves as little as possible.
    """
    d_in, d_out = w.shape
    # The Hessian of the output error with respect to one column of W: (d_in, d_in).
    # Keras kernels are (in, out) and inputs (n, in), so it is X^T X; in PyTorch's (out, in)
    # layout the same matrix is written X X^T with X stored (in, n).
    h = 2.0 * x_calibration.T @ x_calibration / len(x_calibration)
    # Dampening: X^T X is near-singular (correlated channels, dead inputs); lambda on the
    # diagonal keeps the inverse and its Cholesky factor stable.
    h += DAMP * np.mean(np.diag(h)) * np.eye(d_in)
    # Upper Cholesky factor of H^-1: row i holds, from its diagonal on, the coefficients that
    # spread row i's error over rows i+1.. (the paper's Cholesky reformulation, which equals
    # updating H^-1 by Gaussian elimination after each row, but stable).
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # (d_in, d_in), upper triangular
    w = w.astype(np.float64).copy()  # updated in place as rows absorb errors
    q = np.empty((d_in, d_out))
    scales, zeros = [], []
    for i in range(d_in):
        if i % GROUP == 0:
            # A group's scale and zero are set when the loop reaches it, from the weights
            # as the earlier rows' errors have already changed them.
            scale, zero = group_params(w[i : i + GROUP])
            scales.append(scale)
            zeros.append(zero)
        q[i] = quantize_codes(w[i], scale, zero)  # (d_out,)
        err = (w[i] - scale * (q[i] - zero)) / u[i, i]  # (d_out,) scaled rounding error
        # Every output column at once: later rows move against the error, in proportion to
        # how the inputs of row i correlate with theirs.
        w[i + 1 :] -= np.outer(u[i, i + 1 :], err)  # (d_in - i - 1, d_out)
    return _packed(q, np.stack(scales), np.stack(zeros), np.ones(d_in))


def awq_int4(w: np.ndarray, x_calibration: np.ndarray) -> Int4Weight:
    """AWQ int4 of a kernel ``w`` (d_in, d_out) given calibration inputs (n, d_in).

    Input channel j's weights are scaled by s_j = mean|x_j|^alpha before RTN and its input
    by 1 / s_j (x @ W = (x / s) @ (s W)), which gives the salient channels (large
    activations) finer steps relative to their weights. alpha: the grid value with the least
    calibration output error; alpha = 0 is plain RTN.
    """
    magnitude = np.abs(x_calibration).mean(axis=0)  # (d_in,) per input channel
    y = x_calibration @ w  # (n, d_out) float output to match
    best: tuple[float, Int4Weight] | None = None
    for k in range(AWQ_GRID + 1):
        s = magnitude ** (k / AWQ_GRID)  # (d_in,)
        s = s / np.sqrt(s.max() * s.min())  # centred on 1 (as AWQ does): only ratios matter
        scaled = rtn_int4(w * s[:, None])  # the rows of W scaled by s
        quantized = scaled._replace(input_scale=s)
        error = float(np.linalg.norm(y - (x_calibration / s) @ quantized.weight))
        if best is None or error < best[0]:
            best = (error, quantized)
    assert best is not None
    return best[1]


def _packed(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, s: np.ndarray) -> Int4Weight:
    """The stored form and its dequantized weights: scale * (q - zero) per group."""
    weight = np.repeat(scale, GROUP, axis=0) * (q - np.repeat(zero, GROUP, axis=0))
    return Int4Weight(q.astype(np.int8), scale, zero, s, weight)


# -----------------------------------------------------------------------------
# Data and measurement


class LayerData(NamedTuple):
    weight: np.ndarray  # (D_IN, D_OUT) float kernel to quantize
    x_calibration: np.ndarray  # (N_CALIBRATION, D_IN) inputs the quantizers may look at
    x_test: np.ndarray  # (N_TEST, D_IN) held-out inputs from the same distribution


def make_data(seed: int = SEED) -> LayerData:
    """A float kernel and LLM-like activations: correlated channels, a few outliers.

    x = (z A + 0.5 e) * gain: z (n, 64) latent, A (64, 256), so the channels are
    correlated (what GPTQ's Hessian exploits); gain is log-normal per channel with
    OUTLIER_CHANNELS of them 20x larger (the salient channels AWQ protects).
    """
    rng = synthetic.rng(seed)
    mixing = rng.standard_normal((LATENT, D_IN))
    gain = np.exp(rng.normal(0.0, 0.5, D_IN))
    gain[rng.choice(D_IN, OUTLIER_CHANNELS, replace=False)] *= OUTLIER_GAIN
    weight = rng.standard_normal((D_IN, D_OUT)) / np.sqrt(D_IN)

    def activations(n: int) -> np.ndarray:
        latent = rng.standard_normal((n, LATENT))
        noise = rng.standard_normal((n, D_IN))
        return (latent @ mixing + 0.5 * noise) * gain  # (n, D_IN)

    return LayerData(weight, activations(N_CALIBRATION), activations(N_TEST))


def dequantized(w: Int4Weight) -> np.ndarray:
    """The kernel the stored form computes with, in the original input scale: (d_in, d_out).

    scale * (q - zero) per group, then row j divided by input_scale[j] (AWQ's 1 / s folded
    back), so that x @ result = (x / s) @ (scale * (q - zero)).
    """
    q = np.asarray(w.q, dtype=np.float64)
    groups = q.shape[0] // np.shape(w.scale)[0]
    stored = np.repeat(w.scale, groups, axis=0) * (q - np.repeat(w.zero, groups, axis=0))
    result: np.ndarray = stored / np.asarray(w.input_scale)[:, None]
    return result


def output_error(x: np.ndarray, w: np.ndarray, w_hat: np.ndarray) -> float:
    """Relative output error ||x W - x W_hat||_F / ||x W||_F of a layer on inputs ``x``."""
    return float(np.linalg.norm(x @ w - x @ w_hat) / np.linalg.norm(x @ w))


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def rtn_int4(self, w: np.ndarray) -> Int4Weight: ...

    def gptq_int4(self, w: np.ndarray, x_calibration: np.ndarray) -> Int4Weight: ...

    def awq_int4(self, w: np.ndarray, x_calibration: np.ndarray) -> Int4Weight: ...


def check(impl: Answer) -> SolutionReport:
    """Quantize one layer three ways with ``impl``; compare held-out output errors."""
    report = SolutionReport(solution="compression.int4_weight_quantization")
    data = make_data()
    w, x_cal, x_test = data
    baseline = rtn_int4(w)  # this module's RTN: the bar, whatever the candidate's RTN does
    rtn_error = output_error(x_test, w, dequantized(baseline))
    report.metric("RTN int4 output error (held out, relative)", rtn_error)
    report.metric(
        "bits per weight (4-bit codes + fp16 scale + 4-bit zero per group)",
        4 + (16 + 4) / GROUP,
    )

    candidates = {
        "rtn_int4": impl.rtn_int4(w),
        "gptq_int4": impl.gptq_int4(w, x_cal),
        "awq_int4": impl.awq_int4(w, x_cal),
    }
    for name, quantized in candidates.items():
        _stored_format(report, name, quantized)

    rtn = candidates["rtn_int4"]
    same = np.isclose(dequantized(rtn), dequantized(baseline), rtol=0, atol=1e-6 * np.abs(w).max())
    report.check(
        "rtn_int4: weights equal the reference min/max RTN's",
        float(same.mean()),
        ">=",
        0.999,
        "the baseline of the question: asymmetric min/max (range widened to 0), 15 steps, "
        "integer zero, round to nearest, groups of 64 input rows; a float32 implementation "
        "can flip a code that lies on a rounding tie (a few of 65536), hence 0.999 not 1; "
        "floor instead of round or a symmetric grid change ~half the weights",
    )

    for name in ("gptq_int4", "awq_int4"):
        held_out = output_error(x_test, w, dequantized(candidates[name]))
        calibration = output_error(x_cal, w, dequantized(candidates[name]))
        ratio = held_out / rtn_error
        report.metric(f"{name} output error (held out, relative)", held_out)
        report.metric(f"{name} output error (calibration, relative)", calibration)
        report.metric(f"{name} / RTN output error (held out)", ratio, "x")
        report.check(
            f"{name}: held-out output error / RTN's",
            ratio,
            "<=",
            MAX_ERROR_RATIO,
            "same int4 format and bits as RTN, so any gain comes from using the calibration "
            "inputs; measured on inputs the quantizer never saw; the reference reaches about "
            "0.5 (GPTQ) and 0.6 (AWQ); GPTQ without error feedback or AWQ without dividing "
            "the inputs by s is RTN (1.0) or worse, the Hessian applied along the output axis "
            "~1.4",
        )

    # Calibration data that does not look like the real inputs: i.i.d. channels of the same
    # magnitudes (no correlation); GPTQ then has no structure to exploit.
    iid = synthetic.rng(SEED + 1).standard_normal(x_cal.shape) * np.abs(x_cal).std(axis=0)
    mismatched = output_error(x_test, w, dequantized(gptq_int4(w, iid)))
    report.metric("GPTQ (reference) / RTN, calibrated on i.i.d. channels", mismatched / rtn_error)
    return report


def _stored_format(report: SolutionReport, name: str, quantized: Int4Weight) -> None:
    """The int4 format itself: codes on the grid, and (q, scale, zero) giving the weights."""
    q = np.asarray(quantized.q, dtype=np.float64)
    on_grid = (q == np.round(q)) & (q >= 0) & (q <= LEVELS - 1)
    report.check(
        f"{name}: codes are integers in [0, 15]",
        float(on_grid.mean()),
        "==",
        1.0,
        "4 bits hold 16 codes; a code outside [0, 15] (a GPTQ row pushed past its group's "
        "range and not clamped, signed codes -8..7) does not fit the format",
    )
    stored = dequantized(quantized._replace(input_scale=np.ones(q.shape[0])))
    weight = np.asarray(quantized.weight, dtype=np.float64)
    step = float(np.max(quantized.scale))
    same = np.abs(weight - stored) <= 1e-6 * step + 1e-6 * np.abs(stored)
    report.check(
        f"{name}: weights = scale * (q - zero)",
        float(same.mean()),
        "==",
        1.0,
        "the weights the method measured its error with must be the ones the stored codes "
        "give back; float rounding of scale * (q - zero) is ~1e-16 of a step, so 1e-6 of the "
        "largest step (+ 1e-6 relative) is loose; a zero point rounded only for storage "
        "moves weights by up to half a step",
    )


if __name__ == "__main__":
    print_check_of(__name__)
