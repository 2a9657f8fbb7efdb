"""Halve a model's size (and more): pruning, post-training quantization, distillation.

A trained MLP is compressed in two steps whose contributions are measured one by one:
magnitude pruning to 75% sparsity while fine-tuning (tensorflow-model-optimization), then
post-training dynamic-range quantization with the TFLite converter (int8 weights). Size is
the gzipped TFLite flatbuffer, the bytes a download or an app bundle costs: zeros left by
pruning compress, int8 weights are a quarter of float32. The pruned, quantized model is
>= 2x smaller (about 8x) and within one point of the original's accuracy. Third, a
student with 12x fewer parameters, given 300 training images, learns from the teacher's
temperature-softened outputs on them and clearly beats the same student trained on the
labels of the same images (both scored as TFLite files, like every model here): soft
targets carry more than the arg-max.
"""

from __future__ import annotations

import gzip
import warnings
from typing import Protocol

import numpy as np
import tensorflow as tf

# tfmot 0.8 chooses its Keras on import: it sets TF_USE_LEGACY_KERAS=1 itself and uses
# tf_keras, so nothing needs setting here. Side effect: from then on `tf.keras` (if not
# touched before) also means tf_keras in this process. Keras 3 models (`import keras`)
# are rejected by prune_low_magnitude ("can only prune ... keras.models.Sequential").
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.fit import fit_classifier
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.int8_quantization import float_tflite as float_tflite  # re-exported
from solutions.compression.int8_quantization import scales_per_tensor

SEED = 0
TARGET_SPARSITY = 0.75
PRUNE_EPOCHS = 2
TEMPERATURE = 2.0
ALPHA = 0.1  # weight of the hard-label loss; 1 - ALPHA on the teacher's soft targets
TEACHER_EPOCHS = 15
STUDENT_IMAGES, STUDENT_EPOCHS = 300, 30  # the student's (smaller) labelled budget
BATCH_SIZE = 64


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("prune", "quantize", "distill")
BASED_ON = "compression.int8_quantization"  # its TFLite conversion and weight inspection

# -----------------------------------------------------------------------------
# The answer: prune, quantize, distill


def prune(model: keras.Model, x: np.ndarray, y: np.ndarray, target_sparsity: float) -> keras.Model:
    """A copy of ``model`` whose Dense kernels are ``target_sparsity`` zeros, fine-tuned.

    ``x`` (N, ...) float32 and ``y`` (N,) int labels are the training data used to recover
    accuracy while weights are removed. ``model`` is left unchanged. Returns a plain Keras
    model (pruning wrappers stripped), same architecture, same outputs (logits).
    """
    # prune_low_magnitude wraps the layers of the model it is given, weights shared: pruning
    # `model` itself would zero the caller's weights too. Work on a copy.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())  # clone_model copies the architecture only

    steps = int(np.ceil(len(x) / BATCH_SIZE)) * PRUNE_EPOCHS
    # Sparsity ramps 0 -> target over the first 3/4 of fine-tuning, in ~10 steps; at each
    # step the smallest-magnitude weights of each kernel are masked. Removing weights
    # gradually lets the rest compensate; the last epoch recovers at full sparsity.
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=int(steps * 0.75),
        frequency=max(1, steps // 10),
    )
    pruned = tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule)
    pruned.compile(
        optimizer=keras.optimizers.Adam(3e-4),  # smaller than training's: fine-tuning
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # Variables made inside fit's first step (Adam's slots, an accuracy metric's totals)
    # make tf.function trace that step twice, and a step through the pruning wrappers
    # takes ~1 s to trace: create the slots now, and track no metric.
    pruned.optimizer.build(pruned.trainable_variables)
    pruned.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=PRUNE_EPOCHS,
        verbose=0,
        # UpdatePruningStep advances the schedule; fit() refuses to run without it.
        callbacks=[
            tfmot.sparsity.keras.UpdatePruningStep(),
            events.keras_callback("prune while fine-tuning"),
        ],
    )
    # Remove the wrappers (masks, step counters): the zeros stay in the plain kernels.
    return tfmot.sparsity.keras.strip_pruning(pruned)


def quantize(model: keras.Model) -> bytes:
    """``model`` as a TFLite flatbuffer with dynamic-range quantization.

    Weights are stored as int8 (TF 2.21: one scale per output channel; tensors too small
    to matter stay float). Activations are not stored quantized: the kernels that support it
    quantize their float inputs to int8 on the fly, per batch, and compute in integer. No
    calibration data needed; input and output stay float32, so it is a drop-in replacement.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # without it: a float32 TFLite file
    return bytes(converter.convert())


def distill(
    teacher: keras.Model,
    student: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    temperature: float = TEMPERATURE,
    alpha: float = ALPHA,
    epochs: int = STUDENT_EPOCHS,
) -> keras.Model:
    """Train ``student`` in place to imitate ``teacher``; both map ``x`` to logits (B, K).

    Loss per batch: ``alpha * CE(y, student) + (1 - alpha) * T^2 * KL(p_T || q_T)`` with
    ``p_T = softmax(teacher / T)``, ``q_T = softmax(student / T)``. Returns ``student``.
    """
    # The teacher is fixed: compute its logits once, (N, K), not at every step.
    teacher_logits = teacher.predict(x, batch_size=512, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((x, y, teacher_logits))
    dataset = dataset.shuffle(len(x), seed=SEED).batch(BATCH_SIZE)
    optimizer = keras.optimizers.Adam(1e-3)
    kl = keras.losses.KLDivergence()
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def train_step(xb: tf.Tensor, yb: tf.Tensor, tb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = student(xb, training=True)  # (B, K)
            # A temperature T > 1 flattens both distributions so the small probabilities
            # ("a 3 looks a bit like an 8") carry gradient; that is the teacher's extra
            # knowledge beyond the arg-max. Soft gradients scale as 1/T^2: multiply back.
            soft = kl(tf.nn.softmax(tb / temperature), tf.nn.softmax(logits / temperature))
            loss = alpha * ce(yb, logits) + (1.0 - alpha) * temperature**2 * soft
        grads = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(grads, student.trainable_variables, strict=True))
        return loss

    step = tf.function(train_step)  # traced once into a graph, not run op by op per batch
    steps_per_epoch = int(dataset.cardinality())
    events.start("train: distilled student", epochs * steps_per_epoch)
    for epoch in range(epochs):
        for xb, yb, tb in dataset:
            loss = step(xb, yb, tb)
        events.advance("train: distilled student", (epoch + 1) * steps_per_epoch, loss=float(loss))
    return student


# -----------------------------------------------------------------------------
# Data, the models to compress, and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """1000 train / 3000 test images (N, 12, 12, 3) float32 in [0, 1], labels in [0, 10).

    Heavy pixel noise (std 0.9) makes the task hard enough that model quality shows.
    """
    return synthetic.class_images(
        n_train=1000, n_test=3000, num_classes=10, size=12, noise=0.9, max_shift=0, seed=seed
    )


def mlp(
    input_shape: tuple[int, ...], num_classes: int, hidden: list[int], dropout: float
) -> keras.Model:
    """Images (B, 12, 12, 3) -> logits (B, num_classes) through Dense(h) + ReLU layers."""
    layers: list[keras.layers.Layer] = [keras.layers.Input(input_shape), keras.layers.Flatten()]
    for width in hidden:
        layers.append(keras.layers.Dense(width, activation="relu"))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(num_classes))
    return keras.Sequential(layers)


def build_teacher(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The model to compress: 432 -> 256 -> 256 -> 10, ~179k weights (700 KB in float32)."""
    return mlp(input_shape, num_classes, [256, 256], dropout=0.5)


def trained_teacher(epochs: int = TEACHER_EPOCHS, label_shift: int = 0) -> keras.Model:
    """``build_teacher`` trained ``epochs`` epochs on ``make_data()`` with labels
    (y + label_shift) mod 10. The weights are kept across runs (``kit.memo``), so the wrong
    answers and the next verify start from the same teacher without training it again;
    weight_clustering, fix_seed_quantize_model and fix_seed_compression_snippet share it."""
    data = make_data()
    keras.utils.set_random_seed(SEED)
    teacher = build_teacher(data.x_train.shape[1:], data.num_classes)
    teacher.set_weights(teacher_weights(epochs, label_shift))
    return teacher


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def teacher_weights(epochs: int, label_shift: int = 0) -> list[np.ndarray]:
    data = make_data()
    keras.utils.set_random_seed(SEED)
    teacher = build_teacher(data.x_train.shape[1:], data.num_classes)
    labels = (data.y_train + label_shift) % data.num_classes  # (N,)
    fit_on_labels(teacher, data.x_train, labels, epochs, "train teacher")
    return list(teacher.get_weights())


def build_student(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The distillation student: 432 -> 32 -> 10, ~14k weights (12x fewer)."""
    return mlp(input_shape, num_classes, [32], dropout=0.0)


def fit_on_labels(
    model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, phase: str
) -> None:
    """Ordinary supervised training on hard labels (the teacher, and the scratch student)."""
    fit_classifier(model, x, y, epochs=epochs, batch_size=BATCH_SIZE, phase=phase)


def check_int8_size(report: SolutionReport, name: str, original: bytes, quantized: bytes) -> None:
    """Record the float32 and the quantized TFLite sizes; check ``name``: their ratio is at
    least 3 (int8 weights take 1 byte instead of 4; raw flatbuffer bytes, no gzip)."""
    report.metric("float32 TFLite size", len(original) / 1024, "KB")
    report.metric("quantized TFLite size", len(quantized) / 1024, "KB")
    ratio = len(original) / len(quantized)
    report.check(name, ratio, ">=", 3.0, "int8 weights take 1 byte, not 4 (raw bytes, no gzip)")


def gzipped_size(model_bytes: bytes) -> int:
    """Bytes of ``model_bytes`` after gzip at its default level 6 (the gzip tool's, a web
    server's): what storing or downloading it costs. Level 9 is ~4% smaller on pruned
    files and ~10x slower on them."""
    return len(gzip.compress(model_bytes, compresslevel=6))


def tflite_accuracy(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a float-I/O TFLite model on (x, y), run as one batch by the interpreter."""
    with warnings.catch_warnings():
        # TF warns that tf.lite.Interpreter moves to the ai_edge_litert package (same API).
        warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=model_bytes, num_threads=1)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))  # (1, ...) -> (N, ...)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x.astype(np.float32))
    interpreter.invoke()
    logits = interpreter.get_tensor(out["index"])  # (N, num_classes)
    return float((logits.argmax(axis=-1) == y).mean())


def kernel_sparsity(model: keras.Model) -> float:
    """Fraction of exact zeros among the kernels of ``model`` (biases excluded)."""
    kernels = [w.numpy() for w in model.weights if w.name.endswith("kernel:0")]
    zeros, total = sum(int((k == 0).sum()) for k in kernels), sum(int(k.size) for k in kernels)
    return zeros / max(1, total)


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def prune(
        self, model: keras.Model, x: np.ndarray, y: np.ndarray, target_sparsity: float
    ) -> keras.Model: ...

    def quantize(self, model: keras.Model) -> bytes: ...

    def distill(
        self,
        teacher: keras.Model,
        student: keras.Model,
        x: np.ndarray,
        y: np.ndarray,
        *,
        alpha: float = ...,  # fix_seed_compression_snippet passes it
    ) -> keras.Model: ...


class ShippedFiles:
    """The TFLite files measured so far: gzipped size and test accuracy, each recorded.

    Every size is gzipped TFLite bytes; every accuracy is a TFLite file's own, run by the
    interpreter on the 3000 test images (what would ship, not the Keras object), the two
    students included, so that their comparison is like for like.
    """

    def __init__(self, report: SolutionReport, data: synthetic.Split) -> None:
        self.report, self.data = report, data
        self.size: dict[str, int] = {}
        self.acc: dict[str, float] = {}

    def measure(self, name: str, model_bytes: bytes) -> None:
        """Record the file's gzipped size and test accuracy under ``name``."""
        self.size[name] = gzipped_size(model_bytes)
        self.acc[name] = tflite_accuracy(model_bytes, self.data.x_test, self.data.y_test)
        self.report.metric(f"{name}: gzipped TFLite size", self.size[name] / 1024, "KB")
        self.report.metric(f"{name}: test accuracy", self.acc[name])


def check(impl: Answer) -> SolutionReport:
    """Prune and quantize a trained teacher with ``impl``; distill a student; measure each."""
    report = SolutionReport(solution="compression.halve_model_size")
    data = make_data()
    shipped = ShippedFiles(report, data)

    teacher = trained_teacher()
    original = float_tflite(teacher)  # measured before anything can touch the teacher
    report.metric("teacher parameters", int(teacher.count_params()))

    _prune_then_quantize(report, impl, data, shipped, teacher, original)
    _distillation(report, impl, data, shipped, teacher)
    return report


def _prune_then_quantize(
    report: SolutionReport,
    impl: Answer,
    data: synthetic.Split,
    shipped: ShippedFiles,
    teacher: keras.Model,
    original: bytes,
) -> None:
    """1. Pruning, then 2. quantization of the pruned model: the deliverable.

    ``original`` is the teacher's float32 TFLite file, made before impl touched it.
    """
    keras.utils.set_random_seed(SEED)
    pruned = impl.prune(teacher, data.x_train, data.y_train, TARGET_SPARSITY)
    sparsity = kernel_sparsity(pruned)
    report.metric("pruned kernel sparsity (zeros counted)", sparsity)
    report.check(
        "pruned kernel sparsity",
        sparsity,
        ">=",
        TARGET_SPARSITY - 0.01,
        f"exact zeros in the Dense kernels, target {TARGET_SPARSITY}",
    )

    events.start("convert to TFLite", 2)
    pruned_float = float_tflite(pruned)
    events.advance("convert to TFLite", 1)
    final = bytes(impl.quantize(pruned))
    events.advance("convert to TFLite", 2)
    shipped.measure("original (float32)", original)
    shipped.measure("pruned (float32)", pruned_float)
    shipped.measure("pruned + quantized (int8 weights)", final)
    size, acc = shipped.size, shipped.acc
    report.metric("pruned + quantized: int8 scales / output channels", scales_per_tensor(final))
    report.check(
        "pruning alone: size ratio (gzipped)",
        size["original (float32)"] / size["pruned (float32)"],
        ">=",
        2.0,
        "zeros compress; the flatbuffer alone would not shrink",
    )
    report.check(
        "quantization of the pruned model: size ratio (gzipped)",
        size["pruned (float32)"] / size["pruned + quantized (int8 weights)"],
        ">=",
        2.0,
        "int8 weights: 1 byte instead of 4 (zeros compressed either way)",
    )
    ratio = size["original (float32)"] / size["pruned + quantized (int8 weights)"]
    report.check(
        "final size ratio original / pruned + quantized (gzipped TFLite)",
        ratio,
        ">=",
        2.0,
        "the model is at least halved",
    )
    report.check(
        "accuracy drop original - final",
        acc["original (float32)"] - acc["pruned + quantized (int8 weights)"],
        "<=",
        0.01,
        "at most one point lost",
    )


def _distillation(
    report: SolutionReport,
    impl: Answer,
    data: synthetic.Split,
    shipped: ShippedFiles,
    teacher: keras.Model,
) -> None:
    """3. Distillation: the same student architecture, soft targets vs hard labels.

    Both students see the same 300 training images: one their labels, the other the
    teacher's soft outputs on them (the teacher learned from all 1000).
    """
    shape, k = data.x_train.shape[1:], data.num_classes
    x_few, y_few = data.x_train[:STUDENT_IMAGES], data.y_train[:STUDENT_IMAGES]
    keras.utils.set_random_seed(SEED)
    scratch = build_student(shape, k)
    fit_on_labels(scratch, x_few, y_few, STUDENT_EPOCHS, "train: student from scratch")
    report.metric("student parameters", int(scratch.count_params()))
    keras.utils.set_random_seed(SEED)
    given = build_student(shape, k)
    student = impl.distill(teacher, given, x_few, y_few)
    report.check(
        "distill returns the student (its parameter count)",
        float(student.count_params() == given.count_params()),
        "==",
        1,
        f"the {given.count_params()}-weight student is what gets scored; the teacher "
        f"({teacher.count_params()} weights) returned instead would beat the scratch student",
    )
    shipped.measure("distilled student (float32)", float_tflite(student))
    shipped.measure("student from scratch (float32)", float_tflite(scratch))
    report.check(
        "distilled - scratch student accuracy",
        shipped.acc["distilled student (float32)"] - shipped.acc["student from scratch (float32)"],
        ">=",
        0.01,
        "same student, same 300 images: soft targets beat hard labels",
    )


if __name__ == "__main__":
    print_check_of(__name__)
