"""Quantization from scratch: per-tensor, per-channel and group-wise; symmetric and asymmetric.

Affine quantization stores a real tensor as 8-bit integers q with a scale and a zero point:
``real = scale * (q - zero_point)``. Where the scale comes from decides the error:

- **symmetric** (zero point 0, codes in [-127, 127]): ``scale = max|x| / 127``. What TFLite
  uses for weights: with no zero point, an integer matmul needs no correction terms.
- **asymmetric** (codes in [-128, 127]): ``scale = (max - min) / 255`` and an integer zero
  point ``round(-128 - min / scale)``, so the real 0.0 is exactly representable (zero
  padding and ReLU zeros stay exact). What TFLite uses for activations: on a one-sided
  tensor (after a ReLU or GELU) symmetric wastes about half the codes on negatives that never
  occur.
- **granularity**: one scale per tensor, one per output channel (per-axis), or one per group
  of ``group_size`` consecutive input rows within each output channel (group-wise, the format
  of 4-bit LLM weights: GPTQ / AWQ use groups of 128). A rounding error is up to scale / 2,
  and the scale follows the largest value it covers: one outlier channel inflates a
  per-tensor scale for every weight, an outlier input row inflates its channel's scale, and a
  finer granularity confines each outlier to its own scale.

The check quantizes a Dense kernel with a few outlier output channels and a few outlier input
rows, and measures the kernel's and the layer output's error for each granularity: per-tensor
> per-channel > group-wise, with the factors recorded. It proves the round-trip bound
(|x - x̂| <= scale / 2 inside the range, saturation at the int8 limits outside it), that 0.0 is
exact, that asymmetric beats symmetric on a post-GELU tensor, and that the scheme is TFLite's
where they match: per-channel symmetric weight scales and int8 codes equal those the TFLite
converter writes for a Conv2D and a Dense layer, and asymmetric fake quantization equals
``tf.quantization.fake_quant_with_min_max_vars``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
QMAX = 127  # int8 codes: [-128, 127]; symmetric ones use [-127, 127] (TFLite "narrow range")
D_IN, D_OUT = 256, 64  # the Dense kernel (in, out) quantized below
GROUP_SIZE = 32  # rows per group: 8 groups per output channel
CONV_IN, CONV_OUT, SPATIAL = 16, 16, 4  # a Conv2D (3x3, 16 -> 16) on (4, 4, 16): flattens to 256
TFLITE_SCALES = "per-channel weight scales vs TFLite converter (Conv2D + Dense)"
TFLITE_CODES = "int8 weight codes vs TFLite converter (Conv2D + Dense)"
FAKE_QUANT = "asymmetric fake-quant vs tf.quantization.fake_quant_with_min_max_vars"
ZERO_EXACT = "asymmetric: 0.0 round-trips exactly"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("choose_qparams", "quantize", "dequantize")

# -----------------------------------------------------------------------------
# The answer: choose scale and zero point, quantize, dequantize


def choose_qparams(
    x: np.ndarray, symmetric: bool, axis: int | None = None, group_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Int8 ``(scale, zero_point)`` for ``x``, both broadcastable against ``x``.

    ``axis=None``: one scale for the whole tensor (shape (1, ..., 1)). ``axis=a``: one scale
    per index of axis ``a`` (per-channel; a Keras Dense kernel (in, out) or Conv2D kernel
    (kh, kw, in, out) has its output channels on axis -1), shape 1 everywhere but ``a``.
    ``group_size=g`` (2-D ``x`` and an ``axis`` only): also one scale per ``g`` consecutive
    entries of the other axis, repeated over those entries so it still broadcasts: (in, out)
    for a (in, out) kernel, with in / g * out distinct values.
    ``symmetric``: scale = max|x| / 127, zero point 0 (codes in [-127, 127]). Otherwise
    scale = (max - min) / 255 over a range stretched to contain 0, and an integer zero point
    in [-128, 127]. Returns scale float32 and zero_point int32.
    """
    x = np.asarray(x, np.float32)
    if symmetric:
        # max|x|, not max(x): a kernel's largest magnitude may well be negative.
        amax = _reduce(np.abs(x), np.max, axis, group_size)
        scale = amax / np.float32(QMAX)  # the largest |x| maps to code 127
        zero_point = np.zeros_like(scale, np.int32)
    else:
        # The range must contain 0, so that the real 0.0 has an integer code of its own.
        lo = np.minimum(_reduce(x, np.min, axis, group_size), 0)
        hi = np.maximum(_reduce(x, np.max, axis, group_size), 0)
        scale = (hi - lo) / np.float32(2 * QMAX + 1)  # 255 steps between the ends
        # lo maps to code -128; the zero point is rounded (0.0 exact) and kept in int8 range.
        zero_point = np.clip(np.round(-QMAX - 1 - lo / _nonzero(scale)), -QMAX - 1, QMAX)
        zero_point = zero_point.astype(np.int32)
    return _nonzero(scale).astype(np.float32), zero_point


def quantize(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, symmetric: bool
) -> np.ndarray:
    """Int8 codes of ``x`` (any shape): q = clip(round(x / scale) + zero_point).

    ``scale``, ``zero_point``: from ``choose_qparams`` (broadcastable against ``x``). Codes are
    clipped to [-127, 127] when ``symmetric``, else [-128, 127]: a value outside the range the
    parameters were chosen on (a test activation larger than any calibration one) saturates
    instead of wrapping around. Returns an int8 array of ``x``'s shape.
    """
    qmin = -QMAX if symmetric else -QMAX - 1
    q = np.round(np.asarray(x, np.float32) / scale) + zero_point  # float, may leave the range
    codes: np.ndarray = np.clip(q, qmin, QMAX).astype(np.int8)  # clip BEFORE the int8 cast
    return codes


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """The real values of int8 codes ``q``: scale * (q - zero_point), float32, ``q``'s shape."""
    # Widen first: q - zero_point in int8 would overflow (e.g. 127 - (-128)).
    real: np.ndarray = (scale * (q.astype(np.float32) - zero_point)).astype(np.float32)
    return real


def _reduce(
    x: np.ndarray, fn: Callable[..., Any], axis: int | None, group_size: int | None
) -> np.ndarray:
    """``fn`` (np.max / np.min) over each quantization block of ``x``, broadcastable to ``x``."""
    if axis is None:
        return np.asarray(fn(x, keepdims=True))  # (1, ..., 1): per-tensor
    axis %= x.ndim
    others = tuple(i for i in range(x.ndim) if i != axis)
    if group_size is None:
        return np.asarray(fn(x, axis=others, keepdims=True))  # e.g. (1, out): per-channel
    rows = np.moveaxis(x, others[0], 0)  # (n, channels): the grouped axis first
    groups = rows.reshape(rows.shape[0] // group_size, group_size, -1)  # (n / g, g, channels)
    per_group = fn(groups, axis=1)  # (n / g, channels): one value per group and channel
    expanded = np.repeat(per_group, group_size, axis=0)  # (n, channels): over each group's rows
    return np.moveaxis(expanded, 0, others[0])


def _nonzero(scale: np.ndarray) -> np.ndarray:
    # An all-zero block has max 0: any scale works; 1 avoids dividing by zero.
    return np.where(scale > 0, scale, np.float32(1)).astype(np.float32)


# -----------------------------------------------------------------------------
# Data: a kernel with outliers, layer inputs, a post-GELU activation


class Data(NamedTuple):
    kernel: np.ndarray  # (256, 64) Dense kernel with 4 outlier columns and 8 outlier rows
    layer_input: np.ndarray  # (512, 256) inputs of that Dense layer
    act_calibration: np.ndarray  # (256, 64) post-GELU activations: choose the range here
    act_test: np.ndarray  # (256, 64) more of them, up to 1.5x larger: quantize these
    conv_kernel: np.ndarray  # (3, 3, 16, 16) Conv2D kernel, channels of different magnitude


def make_data(seed: int = SEED) -> Data:
    """A Dense kernel N(0, 0.05) (256, 64) whose output channels 3, 17, 40, 58 are 10x larger
    and whose input rows 0-3 and 128-131 are 8x larger (two of the eight 32-row groups); the
    layer's inputs N(0, 1); post-GELU activations gelu(N(0, 1)) in about [-0.17, 4], one-sided
    with a small negative tail (so the zero point is not an end of the range); a Conv2D kernel
    whose output channel c has standard deviation 0.02 * (1 + c)."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, 0.05, (D_IN, D_OUT))
    kernel[:, [3, 17, 40, 58]] *= 10.0  # outlier output channels
    kernel[[0, 1, 2, 3, 128, 129, 130, 131], :] *= 8.0  # outlier input rows (salient features)
    layer_input = rng.normal(0.0, 1.0, (512, D_IN))
    act_calibration = _gelu(rng.normal(0.0, 1.0, (256, D_OUT)))
    act_test = _gelu(rng.normal(0.0, 1.5, (256, D_OUT)))  # exceeds the calibrated max
    conv_scale = 0.02 * (1 + np.arange(CONV_OUT))  # (16,): per-channel scales must differ
    conv_kernel = rng.normal(0.0, 1.0, (3, 3, CONV_IN, CONV_OUT)) * conv_scale
    f32 = np.float32
    return Data(
        kernel=kernel.astype(f32),
        layer_input=layer_input.astype(f32),
        act_calibration=act_calibration.astype(f32),
        act_test=act_test.astype(f32),
        conv_kernel=conv_kernel.astype(f32),
    )


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (Hendrycks & Gimpel 2016): the MLP activation of BERT / GPT-2."""
    y: np.ndarray = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return y


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def choose_qparams(
        self,
        x: np.ndarray,
        symmetric: bool,
        axis: int | None = None,
        group_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def quantize(
        self, x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, symmetric: bool
    ) -> np.ndarray: ...

    def dequantize(
        self, q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray
    ) -> np.ndarray: ...


def round_trip(
    impl: Answer,
    x: np.ndarray,
    symmetric: bool,
    axis: int | None = None,
    group_size: int | None = None,
    calibration: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``impl``'s dequantize(quantize(x)) with parameters chosen on ``calibration`` (default
    ``x``), and the scale broadcast to ``x``'s shape: (x̂, scale)."""
    scale, zero_point = impl.choose_qparams(
        x if calibration is None else calibration, symmetric, axis, group_size
    )
    q = impl.quantize(x, scale, zero_point, symmetric)
    x_hat = impl.dequantize(q, scale, zero_point)
    return np.asarray(x_hat, np.float32), np.broadcast_to(np.asarray(scale, np.float32), x.shape)


# -----------------------------------------------------------------------------
# TFLite's own int8 weights, for the equality checks


def tflite_int8_weights(data: Data) -> list[tuple[np.ndarray, np.ndarray]]:
    """(int8 codes, scales) that the TFLite converter writes for a Conv2D and a Dense layer
    holding ``data.conv_kernel`` and ``data.kernel``, in Keras layout: codes (3, 3, 16, 16)
    and (256, 64), scales (16,) and (64,). Full-integer post-training quantization of
    (B, 4, 4, 16) -> Conv2D 3x3 same -> (B, 4, 4, 16) -> Flatten (B, 256) -> Dense (B, 64)."""
    model = keras.Sequential(
        [
            keras.layers.Input((SPATIAL, SPATIAL, CONV_IN)),
            keras.layers.Conv2D(CONV_OUT, 3, padding="same", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(D_OUT, name="dense"),
        ]
    )
    model.get_layer("conv").set_weights([data.conv_kernel, np.zeros(CONV_OUT, np.float32)])
    model.get_layer("dense").set_weights([data.kernel, np.zeros(D_OUT, np.float32)])
    images = np.random.default_rng(SEED).normal(size=(16, SPATIAL, SPATIAL, CONV_IN))

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for image in images.astype(np.float32):
            yield [image[None]]  # (1, 4, 4, 16)

    call = tf.function(lambda x: model(x, training=False))
    spec = tf.TensorSpec((None, SPATIAL, SPATIAL, CONV_IN), tf.float32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [call.get_concrete_function(spec)], model
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for detail in interpreter.get_tensor_details():
        params = detail["quantization_parameters"]
        if detail["dtype"] != np.int8 or len(params["scales"]) < 2:
            continue  # activations: int8 with one scale; weights: one scale per channel
        codes = interpreter.get_tensor(detail["index"])  # TFLite layout: output channels first
        assert int(params["quantized_dimension"]) == 0
        found[codes.ndim] = (codes, params["scales"])
    conv_codes, conv_scales = found[4]  # (16, 3, 3, 16): (out, kh, kw, in)
    dense_codes, dense_scales = found[2]  # (64, 256): (out, in)
    return [
        (np.transpose(conv_codes, (1, 2, 3, 0)), conv_scales),  # -> (kh, kw, in, out)
        (dense_codes.T, dense_scales),  # -> (in, out)
    ]


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl``'s schemes vs TensorFlow's, where they are the same scheme.

    TFLite weights: per-channel symmetric int8. Scales are max|w| / 127 in float32 (rtol 1e-6,
    ~8 ulps). Codes are integers: equal means |diff| < 0.5 (atol 0.5); a rounding that differs
    (half away from zero vs half to even) needs an exact tie, which float data never hits.
    Activations: asymmetric uint8 fake quantization with the calibration batch's min / max
    (TF nudges them so that 0.0 is a code, the same as rounding the zero point); values up to
    ~6, float32 ulp ~5e-7, a step ~0.02: atol 1e-5 (~20 ulps, 1/2000 step), a step off is
    ~2000x that. 0.0 must come back as exactly 0: atol 1e-7 (a rounded zero point gives 0.0
    exactly; an unrounded one is off by up to half a step, ~1e5x that).
    """
    data = make_data()
    scales, codes, tf_scales, tf_codes = [], [], [], []
    for kernel, (tflite_codes, tflite_scales) in zip(
        (data.conv_kernel, data.kernel), tflite_int8_weights(data), strict=True
    ):
        scale, zero_point = impl.choose_qparams(kernel, symmetric=True, axis=-1)
        scales.append(np.asarray(scale, np.float32).reshape(-1))  # (out,) if one per channel
        codes.append(np.asarray(impl.quantize(kernel, scale, zero_point, True)).reshape(-1))
        tf_scales.append(np.asarray(tflite_scales, np.float32))
        tf_codes.append(tflite_codes.reshape(-1))

    lo = float(min(data.act_calibration.min(), 0.0))
    hi = float(data.act_calibration.max())
    expected = tf.quantization.fake_quant_with_min_max_vars(
        data.act_test, min=lo, max=hi, num_bits=8, narrow_range=False
    ).numpy()  # (256, 64)
    got, _ = round_trip(impl, data.act_test, False, calibration=data.act_calibration)
    zeros = np.zeros((4, D_OUT), np.float32)
    zero_back, _ = round_trip(impl, zeros, False, calibration=data.act_calibration)
    return {
        TFLITE_SCALES: compare(_flat(scales), _flat(tf_scales), atol=1e-12, rtol=1e-6),
        TFLITE_CODES: compare(_flat(codes, np.int32), _flat(tf_codes, np.int32), atol=0.5),
        FAKE_QUANT: compare(got, expected, atol=1e-5),
        ZERO_EXACT: compare(zero_back, zeros, atol=1e-7),
    }


def _flat(parts: list[np.ndarray], dtype: type = np.float32) -> np.ndarray:
    """One vector of the parts (shape mismatches show as a length mismatch)."""
    return np.concatenate([p.astype(dtype) for p in parts])


# -----------------------------------------------------------------------------
# The checks


def check(impl: Answer) -> SolutionReport:
    """Error per scheme on the outlier kernel, the round-trip bounds, and TF's own schemes."""
    report = SolutionReport(solution="compression.quantization_schemes")
    data = make_data()
    _granularity(report, impl, data)
    _bounds(report, impl, data)
    _tensorflow(report, impl)
    return report


def _granularity(report: SolutionReport, impl: Answer, data: Data) -> None:
    """1. Per-tensor vs per-channel vs group-wise (symmetric int8, as weights are)."""
    w, x = data.kernel, data.layer_input  # (256, 64), (512, 256)
    y = x @ w  # (512, 64): the float layer output
    schemes = {
        "per-tensor": (None, None),
        "per-channel": (-1, None),
        f"group-wise (g={GROUP_SIZE})": (-1, GROUP_SIZE),
    }
    kernel_mse, output_mse = [], []
    for name, (axis, group_size) in schemes.items():
        w_hat, _ = round_trip(impl, w, True, axis, group_size)  # (256, 64)
        kernel_mse.append(float(np.mean((w_hat - w) ** 2)))
        output_mse.append(float(np.mean((x @ w_hat - y) ** 2)))
        report.metric(f"kernel MSE, {name}", kernel_mse[-1])
        report.metric(f"layer output relative RMS error, {name}", _relative_rms(x @ w_hat, y))
    # Storage: int8 codes plus one fp16 scale per block.
    for name, blocks in (("per-tensor", 1), ("per-channel", D_OUT)):
        report.metric(f"bits per weight with fp16 scales, {name}", 8 + 16 * blocks / w.size)
    groups = D_IN // GROUP_SIZE * D_OUT
    report.metric(
        f"bits per weight with fp16 scales, group-wise (g={GROUP_SIZE})", 8 + 16 * groups / w.size
    )

    # (name, coarser, finer, threshold for the kernel, for the layer output, why)
    pairs = (
        (
            "per-tensor / per-channel",
            0,
            1,
            10,
            5,
            "4 of 64 channels are 10x larger: one scale is ~10x too coarse for the other 60 "
            "(MSE ~ scale^2: 100x), while the 4 keep their error: ~64 / (60/100 + 4) ~ 14; the "
            "layer output x @ (W - Ŵ) sums 256 weight errors per output, so its MSE follows the "
            "kernel's; a scale of max(x) instead of max|x| clips negative outliers (ratio < 1)",
        ),
        (
            "per-channel / group-wise",
            1,
            2,
            2,
            1.5,
            "8 outlier rows (8x) sit in 2 of 8 row groups: group-wise gives the other 6 groups a "
            "scale ~8x smaller; x ~ N(0, 1) weights every row alike in the output; ignoring "
            "group_size gives exactly 1",
        ),
    )
    for name, coarser, finer, kernel_bound, output_bound, why in pairs:
        for what, mse, bound in (
            ("kernel MSE", kernel_mse, kernel_bound),
            ("layer output MSE", output_mse, output_bound),
        ):
            report.check(f"{what} ratio {name}", mse[coarser] / mse[finer], ">=", bound, why)


def _bounds(report: SolutionReport, impl: Answer, data: Data) -> None:
    """2. Round-trip bounds, saturation, and symmetric vs asymmetric on a one-sided tensor."""
    worst = 0.0
    for symmetric in (True, False):
        for axis, group_size in ((None, None), (-1, None), (-1, GROUP_SIZE)):
            w_hat, scale = round_trip(impl, data.kernel, symmetric, axis, group_size)
            worst = max(worst, float(np.max(np.abs(w_hat - data.kernel) / (scale / 2))))
    report.check(
        "round trip: max |x - x̂| / (scale / 2), all six schemes",
        worst,
        "<=",
        1.001,
        "round to nearest is off by at most half a step inside the range (the range covers the "
        "tensor, so nothing clips); 0.1% for float32 x / scale; flooring gives up to 2, a "
        "scale from max(x) instead of max|x| clips the negative outliers (>> 1)",
    )

    # Activations: range from the calibration batch, applied to a test batch that exceeds it.
    calib, test = data.act_calibration, data.act_test  # (256, 64) each
    scale, zero_point = impl.choose_qparams(calib, False)
    scale = np.asarray(scale, np.float32)
    zp = np.asarray(zero_point, np.float32)
    x_hat, _ = round_trip(impl, test, False, calibration=calib)
    lo, hi = scale * (-QMAX - 1 - zp), scale * (QMAX - zp)  # the representable range
    beyond = float(np.mean(test > hi))
    report.metric("test activations beyond the calibrated range", beyond)
    saturation = float(np.max(np.abs(x_hat - np.clip(test, lo, hi)) / (scale / 2)))
    report.check(
        "saturation: max |x̂ - clip(x)| / (scale / 2) on out-of-range activations",
        saturation,
        "<=",
        1.001,
        f"{beyond:.1%} of the test values exceed the calibration max: they must come back as the "
        "largest code's value (codes clipped to 127); without the clip, a cast to int8 wraps "
        "them to negative codes (~500 half-steps off) and an unclipped code overshoots",
    )

    sym_hat, _ = round_trip(impl, test, True, calibration=calib)
    asym_hat, _ = round_trip(impl, test, False, calibration=calib)
    inside = test <= hi  # compare rounding, not saturation
    sym_mse = float(np.mean((sym_hat - test)[inside] ** 2))
    asym_mse = float(np.mean((asym_hat - test)[inside] ** 2))
    report.metric("post-GELU MSE, symmetric", sym_mse)
    report.metric("post-GELU MSE, asymmetric", asym_mse)
    report.check(
        "post-GELU MSE ratio symmetric / asymmetric",
        sym_mse / asym_mse,
        ">=",
        2.5,
        "calibrated on [-0.17, 3.7]: symmetric spends codes -127..-6 on nothing, a step of max/127 "
        "vs (max - min)/255, MSE ~ step^2: ~(255/127)^2 * (max / (max - min))^2 ~ 3.9; an "
        "'asymmetric' with zero point 0 gives 1",
    )


def _tensorflow(report: SolutionReport, impl: Answer) -> None:
    """3. The same scheme as TensorFlow's: TFLite weights, fake_quant activations."""
    found = reference_comparisons(impl)
    for name, cmp in found.items():
        report.metric(f"{name}: max |diff|", cmp.max_abs_diff)
    report.check_close(
        TFLITE_SCALES,
        found[TFLITE_SCALES],
        "the TFLite converter's int8 weights are symmetric per output channel, scale = max|w| / "
        "127, read from the interpreter's tensor details (quantized_dimension 0); float32, "
        "rtol 1e-6; the wrong axis gives another count of scales (inf), max instead of max|w| "
        "smaller ones; " + found[TFLITE_SCALES].detail,
    )
    report.check_close(
        TFLITE_CODES,
        found[TFLITE_CODES],
        "the int8 values the converter stores, transposed to Keras layout: integers, so atol "
        "0.5 means equal; " + found[TFLITE_CODES].detail,
    )
    report.check_close(
        FAKE_QUANT,
        found[FAKE_QUANT],
        "TF's fake quantization with the calibration min/max (uint8, zero point nudged to an "
        "integer) is asymmetric int8 shifted by 128; atol 1e-5 (~20 float32 ulps at 6, 1/2000 "
        "of a step); an unrounded zero point is off by up to half a step; "
        + found[FAKE_QUANT].detail,
    )
    report.check_close(
        ZERO_EXACT,
        found[ZERO_EXACT],
        "zero padding and ReLU zeros must stay exactly 0 (TFLite quantization spec): a "
        "rounded integer zero point gives scale * 0; atol 1e-7; " + found[ZERO_EXACT].detail,
    )


def _relative_rms(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.sqrt(np.mean((got - expected) ** 2) / np.mean(expected**2)))


if __name__ == "__main__":
    print_check_of(__name__)
