"""Post-training full-integer int8 quantization with the TFLite converter.

A trained float CNN is converted twice: once as plain float32 TFLite, once with
post-training int8 quantization calibrated on a few hundred representative images
(weights int8, symmetric, one scale per output channel; activations int8 per tensor;
int8 input and output). The int8 file is >= 3.5x smaller, its accuracy is within one
point of the float model, and its predictions agree with the float ones on >= 97% of the
test images. Both are run with the TFLite interpreter, the int8 one fed inputs quantized
with the input tensor's own scale and zero point. The candidate's runner is compared value
by value with this module's on an int8 and a float32 file made here: dequantized outputs
within 2 output steps (arg-max alone would pass a runner that never dequantizes, since an
affine map keeps the order). The scales actually written for each weight tensor, and the
float/int8 latency ratios with and without XNNPACK on this machine's CPU (which the report
names), are recorded, not assumed: whether int8 is faster depends on the kernels and the CPU.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.fit import fit_classifier
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
CALIBRATION_IMAGES = 200  # representative samples; a few hundred is the usual advice
LATENCY_BATCH = 256
LATENCY_REPEATS = 5
RUNNER_STEPS = 2  # tolerance of the runner check, in output quantization steps
RUNNER_INT8 = "tflite_predict vs reference run: int8 file, dequantized outputs"
RUNNER_FLOAT = "tflite_predict vs reference run: float32 file"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("quantize_int8", "tflite_predict")

# -----------------------------------------------------------------------------
# The answer: quantize, then run the int8 model


def quantize_int8(model: keras.Model, representative_images: np.ndarray) -> bytes:
    """Full-integer int8 TFLite flatbuffer of ``model``.

    ``representative_images``: (N, H, W, C) float32, the same preprocessing as training;
    the converter runs them through the float model to pick each activation's int8 range.
    Returns the serialized model; its input and output tensors are int8.
    """

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        # One sample per step, as a list with one array per model input: (1, H, W, C).
        for image in representative_images:
            yield [image[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # DEFAULT alone = dynamic-range quantization: int8 weights; activations stay float
    # between ops, and the kernels that support it quantize them to int8 on the fly, per
    # batch. A representative dataset fixes every activation's int8 range in advance ...
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # ... and restricting to int8 builtins makes conversion fail loudly if some op has
    # no int8 kernel, instead of silently leaving it in float (what an int8-only
    # accelerator such as an Edge TPU or a microcontroller needs).
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # The model's I/O become int8 too; the caller quantizes inputs and dequantizes outputs.
    # Left as float32, the converter adds quantize/dequantize ops at the edges instead.
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # With int8 input the converter warns that it got no input statistics; it needs
        # none: the input's range comes from calibration like any other activation.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
        return bytes(converter.convert())


def tflite_predict(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    """Run a TFLite model (float or int8 I/O) on ``images`` (N, H, W, C) float32.

    Returns the outputs as float32 (N, num_classes), dequantized when the model's output is
    integer, so float and int8 models can be compared on the same scale.
    """
    interpreter = _interpreter(model_bytes)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    # Run the whole set as one batch: resize the (1, H, W, C) input to (N, H, W, C).
    interpreter.resize_tensor_input(inp["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], quantize_input(images, inp))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])  # (N, num_classes), int8 or float32
    if np.issubdtype(out["dtype"], np.integer):
        scale, zero_point = out["quantization"]
        y = (y.astype(np.float32) - zero_point) * scale  # real = scale * (q - zero_point)
    outputs: np.ndarray = y.astype(np.float32)
    return outputs


def quantize_input(images: np.ndarray, input_details: dict[str, Any]) -> np.ndarray:
    """``images`` float32 in the model's input dtype: q = round(x / scale) + zero_point."""
    dtype = input_details["dtype"]
    if not np.issubdtype(dtype, np.integer):
        converted: np.ndarray = images.astype(dtype)
        return converted
    scale, zero_point = input_details["quantization"]
    # Inputs in [0, 1] calibrate to scale = 1/255, zero_point = -128: q in [-128, 127].
    info = np.iinfo(dtype)
    q = np.round(images / scale) + zero_point
    quantized: np.ndarray = np.clip(q, info.min, info.max).astype(dtype)
    return quantized


def _interpreter(model_bytes: bytes, xnnpack: bool = True) -> tf.lite.Interpreter:
    resolver = tf.lite.experimental.OpResolverType
    with warnings.catch_warnings():
        # TF warns that tf.lite.Interpreter moves to the ai_edge_litert package; the API is
        # the same there (ai_edge_litert.interpreter.Interpreter).
        warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
        return tf.lite.Interpreter(
            model_content=model_bytes,
            # One thread: latencies compare kernels, not how many cores the machine lends.
            num_threads=1,
            # AUTO applies the default XNNPACK delegate; without it, TFLite's builtin kernels.
            experimental_op_resolver_type=(
                resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )


# -----------------------------------------------------------------------------
# Data, the float model to compress, and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """2000 train / 500 test images, (N, 32, 32, 3) float32 in [0, 1], labels int in [0, 10)."""
    return synthetic.class_images(n_train=2000, n_test=500, num_classes=10, seed=seed)


def train_float_model(data: synthetic.Split, seed: int = SEED) -> keras.Model:
    """A float32 CNN trained on ``data``: (B, 32, 32, 3) -> logits (B, 10), ~154k parameters.

    The dense layer holds ~95% of the weights, so the file size is dominated by weights
    and the float/int8 size ratio approaches 4 (4-byte floats -> 1-byte ints).
    """
    model = float_model(data, seed)
    model.set_weights(float_model_weights(seed))
    return model


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def float_model_weights(seed: int = SEED) -> list[np.ndarray]:
    data = make_data()
    model = float_model(data, seed)
    fit_classifier(
        model, data.x_train, data.y_train, epochs=5, batch_size=64, phase="train float CNN"
    )
    return list(model.get_weights())


def float_model(data: synthetic.Split, seed: int = SEED) -> keras.Model:
    """The untrained model ``train_float_model`` trains (seeded)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.layers.Input(data.x_train.shape[1:]),  # (B, 32, 32, 3)
            keras.layers.Conv2D(16, 3, activation="relu"),  # (B, 30, 30, 16)
            keras.layers.MaxPooling2D(),  # (B, 15, 15, 16)
            keras.layers.Conv2D(32, 3, activation="relu"),  # (B, 13, 13, 32)
            keras.layers.MaxPooling2D(),  # (B, 6, 6, 32)
            keras.layers.Flatten(),  # (B, 1152)
            keras.layers.Dense(128, activation="relu"),  # (B, 128): 147k weights
            keras.layers.Dense(data.num_classes),  # (B, 10) logits
        ]
    )


def float_tflite(model: keras.Model) -> bytes:
    """The same model as a plain float32 TFLite flatbuffer (the baseline to compare with).

    Converted from the frozen graph of its inference call: the same ops and weights as
    ``from_keras_model``, without the SavedModel export and reload that take that one
    about 1 s more per model here.
    """
    call = tf.function(lambda x: model(x, training=False))  # (B, ...) -> outputs
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [call.get_concrete_function(spec)], model
    )
    converter.experimental_lower_to_saved_model = False  # freeze the graph, no SavedModel
    return bytes(converter.convert())


def int8_weight_tensors(model_bytes: bytes) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The int8 weight tensors of a TFLite file: (values, scales, quantized_dimension) each.

    Weights: int8 tensors of rank >= 2 that no op computes and that are not the model's
    input. One scale: per-tensor quantization; one per slice of ``quantized_dimension``:
    per-axis (per-channel).
    """
    interpreter = _interpreter(model_bytes)
    interpreter.allocate_tensors()
    computed = {i for op in interpreter._get_ops_details() for i in op["outputs"]}
    computed |= {d["index"] for d in interpreter.get_input_details()}
    weights = []
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] != np.int8 or len(detail["shape"]) < 2 or detail["index"] in computed:
            continue
        quantization = detail["quantization_parameters"]
        values = interpreter.get_tensor(detail["index"])
        weights.append((values, quantization["scales"], int(quantization["quantized_dimension"])))
    return weights


def scales_per_tensor(model_bytes: bytes) -> str:
    """E.g. "16/16, 128/128": scales written / output channels, per int8 weight tensor."""
    counts = sorted((len(s), v.shape[d]) for v, s, d in int8_weight_tensors(model_bytes))
    return ", ".join(f"{n}/{channels}" for n, channels in counts) or "no int8 weights"


def cpu_description() -> str:
    """This machine's CPU, core count and widest int8-relevant SIMD (what int8 kernels use)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        name = re.search(r"model name\s*:\s*(.*)", info)
        flags = re.search(r"flags\s*:\s*(.*)", info)
    except OSError:
        name = flags = None
    model = name.group(1).strip() if name else (platform.processor() or platform.machine())
    simd = [
        f
        for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2")
        if flags and f in flags.group(1).split()
    ]
    features = " ".join(simd) or ("no AVX2" if flags else "SIMD flags unknown")
    return f"{model}, {os.cpu_count()} cores, {features}, TF {tf.__version__}"


def median_latency_ms(
    model_bytes: bytes, images: np.ndarray, repeats: int, xnnpack: bool = True
) -> float:
    """Median wall time in ms of one ``invoke`` on the batch ``images`` (after one warm-up)."""
    interpreter = _interpreter(model_bytes, xnnpack)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], quantize_input(images, inp))
    interpreter.invoke()  # warm-up: first call packs weights / allocates scratch
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def runner_files(data: synthetic.Split) -> tuple[bytes, bytes]:
    """A small untrained CNN as (float32, int8) TFLite files, to test a runner on.

    Cheap (no training): the runner's job is to quantize inputs, invoke and dequantize,
    whatever the weights. The output bias is +3, so the logits (about 2..4) sit away from
    zero and the int8 output's zero point lands at -128: a runner that ignores it is off by
    128 steps, not by a rounding. Every layer is named: Keras numbers unnamed layers
    (conv2d, conv2d_1, ...) and the names are stored in a TFLite file, so an unnamed model
    built here first would rename the trained model's layers and change its file's size.
    """
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.layers.Input(data.x_train.shape[1:], name="runner_input"),  # (B, 32, 32, 3)
            keras.layers.Conv2D(8, 3, activation="relu", name="runner_conv"),  # (B, 30, 30, 8)
            keras.layers.MaxPooling2D(name="runner_pool"),  # (B, 15, 15, 8)
            keras.layers.Flatten(name="runner_flatten"),  # (B, 1800)
            keras.layers.Dense(
                data.num_classes,
                bias_initializer=keras.initializers.Constant(3.0),
                name="runner_logits",
            ),
        ],
        name="runner_cnn",
    )
    return float_tflite(model), quantize_int8(model, data.x_train[:50])


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def quantize_int8(self, model: keras.Model, representative_images: np.ndarray) -> bytes: ...

    def tflite_predict(self, model_bytes: bytes, images: np.ndarray) -> np.ndarray: ...


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl.tflite_predict`` vs this module's runner, on files made here from one model.

    int8 file: both runners invoke the same integer kernels, so a correct runner differs only
    where a rounding differs (measured: 1 step with TFLite's builtin kernels instead of
    XNNPACK, or inputs rounded down instead of to nearest). An output step is the output
    tensor's scale, the same at every magnitude: atol = RUNNER_STEPS * scale, no rtol.
    float32 file: logits ~3, each a sum of 1800 products; other float kernels sum in another
    order (measured: 1e-5 with TFLite's builtin kernels instead of XNNPACK, ~30 float32 ulps):
    atol 1e-5 + rtol 1e-4.
    """
    data = make_data()
    float_bytes, int8_bytes = runner_files(data)
    scale = float(_interpreter(int8_bytes).get_output_details()[0]["quantization"][0])
    x = data.x_test  # (500, 32, 32, 3)
    int8_got = impl.tflite_predict(int8_bytes, x)
    float_got = impl.tflite_predict(float_bytes, x)
    return {
        RUNNER_INT8: compare(int8_got, tflite_predict(int8_bytes, x), atol=RUNNER_STEPS * scale),
        RUNNER_FLOAT: compare(float_got, tflite_predict(float_bytes, x), atol=1e-5, rtol=1e-4),
    }


def check(impl: Answer) -> SolutionReport:
    """Quantize a trained CNN with ``impl.quantize_int8``; compare size, accuracy, agreement."""
    report = SolutionReport(solution="compression.int8_quantization")
    data = make_data()
    # The runner first: no training. runner_files seeds itself and names its layers, and
    # train_float_model seeds itself: the order changes no number.
    _runner(report, impl)
    float_bytes, int8_bytes = _quantized_cnn(report, impl, data)
    _latency(report, data, float_bytes, int8_bytes)
    return report


def _runner(report: SolutionReport, impl: Answer) -> None:
    """1. The candidate's runner, on files of its own (see reference_comparisons)."""
    runner = reference_comparisons(impl)
    for name, cmp in runner.items():
        report.metric(f"{name}: max |diff|", cmp.max_abs_diff)
    int8_cmp, float_cmp = runner[RUNNER_INT8], runner[RUNNER_FLOAT]
    report.check_close(
        RUNNER_INT8,
        int8_cmp,
        f"inputs quantized and outputs dequantized, real = scale * (q - zero_point), with the "
        f"tensors' own parameters; a correct runner differs by a rounding (1 step with builtin "
        f"kernels or inputs rounded down), so atol = {RUNNER_STEPS} output steps (scale), no "
        "rtol (a step is the same at any magnitude); "
        "raw int8 outputs land at ~4e3, outputs without the zero point (-128) at ~64; "
        + int8_cmp.detail,
    )
    report.check_close(
        RUNNER_FLOAT,
        float_cmp,
        "a float32 file's input and output are used as they are (its quantization parameters "
        "are 0: dequantizing anyway gives zeros, ~1e4 times the tolerance); logits ~3, sums "
        "of 1800 products, builtin kernels instead of XNNPACK differ by 1e-5: atol 1e-5 + "
        "rtol 1e-4; " + float_cmp.detail,
    )


def _quantized_cnn(
    report: SolutionReport, impl: Answer, data: synthetic.Split
) -> tuple[bytes, bytes]:
    """2. The candidate's quantization of a trained float CNN: size, int8 I/O, accuracy.

    Returns the float32 and the candidate's int8 TFLite files.
    """
    model = train_float_model(data)
    report.metric("keras parameters", int(model.count_params()))

    events.start("convert to TFLite", 2)
    float_bytes = float_tflite(model)
    events.advance("convert to TFLite", 1)
    calibration = data.x_train[:CALIBRATION_IMAGES]  # (200, 32, 32, 3)
    int8_bytes = bytes(impl.quantize_int8(model, calibration))
    events.advance("convert to TFLite", 2)

    size_ratio = len(float_bytes) / len(int8_bytes)
    report.metric("int8 weights: scales / output channels", scales_per_tensor(int8_bytes))
    report.metric("float32 TFLite size", len(float_bytes) / 1024, "KB")
    report.metric("int8 TFLite size", len(int8_bytes) / 1024, "KB")
    report.metric("size ratio float/int8", size_ratio, "x")
    report.check("size ratio float/int8", size_ratio, ">=", 3.5, "weights stored in 1 byte, not 4")

    # Is it really full-integer? Input and output tensors int8, as an int8-only device needs.
    probe = _interpreter(int8_bytes)
    io_dtypes = [d["dtype"] for d in probe.get_input_details() + probe.get_output_details()]
    int8_io = all(d == np.int8 for d in io_dtypes)
    report.check("int8 input and output tensors", float(int8_io), "==", 1.0, "full-integer model")

    # Measurement with this module's interpreter code, so a wrong candidate runner cannot
    # hide a wrong model (the candidate's runner is checked above).
    float_logits = tflite_predict(float_bytes, data.x_test)  # (500, 10)
    int8_logits = tflite_predict(int8_bytes, data.x_test)  # (500, 10), dequantized
    float_pred, int8_pred = float_logits.argmax(-1), int8_logits.argmax(-1)  # (500,)
    float_acc = float((float_pred == data.y_test).mean())
    int8_acc = float((int8_pred == data.y_test).mean())
    agreement = float((float_pred == int8_pred).mean())
    report.metric("float32 TFLite accuracy", float_acc)
    report.metric("int8 TFLite accuracy", int8_acc)
    report.metric("argmax agreement int8 vs float", agreement)
    report.check("accuracy drop float - int8", float_acc - int8_acc, "<=", 0.01)
    report.check("argmax agreement int8 vs float", agreement, ">=", 0.97)
    return float_bytes, int8_bytes


def _latency(
    report: SolutionReport, data: synthetic.Split, float_bytes: bytes, int8_bytes: bytes
) -> None:
    """Latency, measured here and now: with TF's default XNNPACK delegate (fast float
    kernels), and with TFLite's builtin kernels only (where int8 shows its own speed-up).
    Recorded, not checked: whether int8 is faster depends on the kernels and the CPU.
    """
    batch = data.x_test[:LATENCY_BATCH]  # (256, 32, 32, 3)
    float_ms = median_latency_ms(float_bytes, batch, LATENCY_REPEATS)
    int8_ms = median_latency_ms(int8_bytes, batch, LATENCY_REPEATS)
    float_builtin_ms = median_latency_ms(float_bytes, batch, LATENCY_REPEATS, xnnpack=False)
    int8_builtin_ms = median_latency_ms(int8_bytes, batch, LATENCY_REPEATS, xnnpack=False)
    where = f"batch {LATENCY_BATCH}, 1 thread, median"
    report.metric("latencies measured on", cpu_description())
    report.metric(f"float32 latency, XNNPACK ({where})", float_ms, "ms")
    report.metric(f"int8 latency, XNNPACK ({where})", int8_ms, "ms")
    report.metric("latency ratio float/int8, XNNPACK", float_ms / int8_ms, "x")
    report.metric(f"float32 latency, builtin kernels ({where})", float_builtin_ms, "ms")
    report.metric(f"int8 latency, builtin kernels ({where})", int8_builtin_ms, "ms")
    builtin_ratio = float_builtin_ms / int8_builtin_ms
    report.metric("latency ratio float/int8, builtin kernels", builtin_ratio, "x")


if __name__ == "__main__":
    print_check_of(__name__)
