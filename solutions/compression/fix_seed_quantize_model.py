"""Fix the seed's quantization code: `quantize_model(model, num_bits=5)` is not an API.

The seed "quantizes" with ``quantize_model(model, num_bits=5)``: tfmot's ``quantize_model``
takes no ``num_bits`` (TypeError), and even called correctly it returns a new model with
fake-quantization nodes (for quantization-aware training) whose weights are still float32;
the seed also throws that return value away. The fix converts the trained model with the
TFLite converter and ``Optimize.DEFAULT`` (dynamic-range quantization: int8 weights) and
returns the flatbuffer bytes. The check runs the seed's line and records its TypeError,
then measures the fixed ``quantize`` on a trained MLP: >= 3x smaller than the float32
TFLite file and within 2 points of its accuracy, run by the TFLite interpreter.
"""

from __future__ import annotations

import tensorflow as tf

# Imported first: tfmot picks tf_keras for itself (see compression.halve_model_size).
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from aiprep import progress
from aiprep.report import SolutionReport, print_check_of
from aiprep.seed_code import raised
from solutions.compression.halve_model_size import (
    build_teacher,
    fit_on_labels,
    float_tflite,
    make_data,
    tflite_accuracy,
)

SEED = 0
EPOCHS = 10

# The seed's quantization step (seed 002, "3.2 模型优化"), verbatim; pruning and
# distillation lines cut. `model = ...` is the seed's placeholder for "the original model".
ORIGINAL = """
model = ...  # 原始模型
# ...
# 量化
quantize_model(model, num_bits=5)
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("quantize",)

# -----------------------------------------------------------------------------
# The answer: post-training quantization with the TFLite converter


def quantize(model: keras.Model) -> bytes:
    """``model`` (trained, float32) as a TFLite flatbuffer with int8 weights.

    Dynamic-range quantization: weights stored as int8 with per-channel scales,
    activations quantized on the fly, input and output stay float32 (drop-in). No
    calibration data needed. ``model`` is left unchanged; the result is returned (the
    seed discarded it).
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # without it: float32 weights
    return bytes(converter.convert())


# -----------------------------------------------------------------------------
# Running the seed's code, and measuring the fix


def run_original(model: keras.Model) -> BaseException | None:
    """Exec ORIGINAL with the import the seed forgot and a real model; the exception raised.

    The seed never imports ``quantize_model`` (a NameError first); we give it tfmot's, the
    only ``quantize_model`` in TensorFlow, and substitute a small trained Keras model for
    the seed's ``model = ...`` placeholder, so the failure shown is the API misuse itself.
    """
    source = ORIGINAL.replace("model = ...  # 原始模型", "")  # keep our real model
    namespace = {"quantize_model": tfmot.quantization.keras.quantize_model, "model": model}
    try:
        exec(source, namespace)  # the seed's code, on purpose
    except Exception as error:  # record whatever it raises
        return error
    return None


def check(impl: object) -> SolutionReport:
    """Record the seed's TypeError; quantize a trained MLP with ``impl`` and measure it."""
    report = SolutionReport(solution="compression.fix_seed_quantize_model")
    data = make_data()  # the halve_model_size data: 12x12x3 noisy class images, 10 classes

    keras.utils.set_random_seed(SEED)
    model = build_teacher(data.x_train.shape[1:], data.num_classes)  # ~179k weights
    fit_on_labels(model, data.x_train, data.y_train, EPOCHS, "train model")

    # 1. The seed's line, as written.
    error = run_original(model)
    report.metric("original raised", type(error).__name__ if error else "nothing")
    report.check(
        "original raises TypeError",
        raised(error, TypeError, "num_bits"),
        "==",
        1,
        f"quantize_model(model, num_bits=5): {error}",
    )

    # 2. The fix: float32 TFLite file vs impl's quantized one, both run by the interpreter.
    progress.start("convert to TFLite", 2)
    original = float_tflite(model)
    progress.advance("convert to TFLite", 1)
    quantized = bytes(impl.quantize(model))  # type: ignore[attr-defined]
    progress.advance("convert to TFLite", 2)
    acc_float = tflite_accuracy(original, data.x_test, data.y_test)
    acc_quant = tflite_accuracy(quantized, data.x_test, data.y_test)
    report.metric("float32 TFLite size", len(original) / 1024, "KB")
    report.metric("quantized TFLite size", len(quantized) / 1024, "KB")
    report.metric("float32 TFLite test accuracy", acc_float)
    report.metric("quantized TFLite test accuracy", acc_quant)
    report.check(
        "size ratio float32 / quantized",
        len(original) / len(quantized),
        ">=",
        3.0,
        "int8 weights are 1 byte instead of 4 (raw flatbuffer bytes, no gzip)",
    )
    report.check(
        "accuracy drop float32 - quantized",
        acc_float - acc_quant,
        "<=",
        0.02,
        "at most two points lost on 3000 test images",
    )
    report.check(
        "quantized model still classifies",
        acc_quant,
        ">=",
        0.5,
        "10 classes: chance is 0.1 (a broken file cannot pass by matching a broken baseline)",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
