"""Fix the seed's compression snippet: nothing quantized, nothing pruned, no teacher signal.

The seed answers "how do you compress and optimize a model?" with four Keras models whose
names promise more than their code does. ``quantized_model`` is an ordinary float32 model;
``pruned_model`` is a separate, *bigger* model with dropout and not one zero weight; the
"distilled" student is trained on the hard labels only, before the teacher is even
trained; and the teacher is fit without ``compile``, which raises RuntimeError. The check
runs the seed on small stand-in data and records that RuntimeError, and measures the
seed's models: float32 weights only, 4x the parameters, zero sparsity. Then it checks the
fixed pieces (those of compression.halve_model_size): magnitude pruning reaches its target
sparsity, TFLite dynamic-range quantization makes the file >= 3x smaller, and
distillation makes the student imitate the teacher, shown with a teacher whose answers
differ from the labels: the distilled student follows the teacher, not the labels.
"""

from __future__ import annotations

import types

import numpy as np
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import SeedRun, run_seed
from solutions.compression.halve_model_size import (
    STUDENT_IMAGES,
    TARGET_SPARSITY,
    Answer,  # the ANSWER functions are halve_model_size's, so is what check calls
    build_student,
    check_int8_size,
    float_tflite,
    kernel_sparsity,
    make_data,
    tflite_accuracy,
    trained_teacher,
)

# The ANSWER functions are halve_model_size's; `x as x` re-exports them as this module's.
from solutions.compression.halve_model_size import distill as distill
from solutions.compression.halve_model_size import prune as prune
from solutions.compression.halve_model_size import quantize as quantize

SEED = 0
TEACHER_EPOCHS = 8
PRUNE_IMAGES = 256  # pruning's fine-tuning data: sparsity is the point here, not recovery
N_SEED_TRAIN, N_SEED_VAL = 256, 128  # the stand-in data for the seed's undefined x_train ...

# The seed's code (seed 003, "面试题 2：如何进行模型压缩与优化？"), verbatim.
ORIGINAL = """
import tensorflow as tf

# 量化
quantized_model = tf.keras.Sequential([
    tf.keras.layers.Dense(128, activation='relu', use_bias=False),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dense(10, activation='softmax', use_bias=False)
])

# 剪枝
pruned_model = tf.keras.Sequential([
    tf.keras.layers.Dense(512, activation='relu', use_bias=False),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dropout(0.5),
    tf.keras.layers.Dense(10, activation='softmax', use_bias=False)
])

# 知识蒸馏
teacher_model = tf.keras.Sequential([
    tf.keras.layers.Dense(1024, activation='relu', use_bias=False),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dense(10, activation='softmax', use_bias=False)
])

student_model = tf.keras.Sequential([
    tf.keras.layers.Dense(512, activation='relu', use_bias=False),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dense(10, activation='softmax', use_bias=False)
])

student_model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# 训练学生模型
student_model.fit(x_train, y_train, epochs=5, batch_size=64, validation_data=(x_val, y_val))

# 训练教师模型
teacher_model.fit(x_train, y_train, epochs=5, batch_size=64, validation_data=(x_val, y_val))

# 评估学生模型
student_loss, student_acc = student_model.evaluate(x_val, y_val, verbose=0)
print(f"Student model loss: {student_loss}, accuracy: {student_acc}")

# 评估教师模型
teacher_loss, teacher_acc = teacher_model.evaluate(x_val, y_val, verbose=0)
print(f"Teacher model loss: {teacher_loss}, accuracy: {teacher_acc}")
"""

# The functions a candidate writes; check(impl) calls only these on impl. They are the
# ones of compression.halve_model_size: prune (tfmot magnitude pruning while fine-tuning,
# then strip_pruning), quantize (TFLite converter with Optimize.DEFAULT), distill (loss
# alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))).
ANSWER = ("prune", "quantize", "distill")
BASED_ON = "compression.halve_model_size"

# -----------------------------------------------------------------------------
# Running the seed's code


def run_original(data: synthetic.Split) -> SeedRun:
    """Run ORIGINAL on stand-in data: what it raised and the namespace it left.

    The seed defines no data: we give it the first images of ``data``, flattened to
    (N, 432) (its models start with a Dense, no Flatten), with one-hot labels (its loss is
    categorical_crossentropy). ``tf.keras`` is tf_keras, the Keras 2 it was written for.
    """
    x = data.x_train.reshape(len(data.x_train), -1)  # (N, 432)
    y = keras.utils.to_categorical(data.y_train, data.num_classes)
    n, m = N_SEED_TRAIN, N_SEED_TRAIN + N_SEED_VAL
    namespace = {
        "tf": types.SimpleNamespace(keras=keras),
        "x_train": x[:n],
        "y_train": y[:n],
        "x_val": x[n:m],
        "y_val": y[n:m],
    }
    keras.utils.set_random_seed(SEED)
    return run_seed(ORIGINAL, namespace, replace=[("import tensorflow as tf\n", "")])


# -----------------------------------------------------------------------------
# The checks


def check(impl: Answer) -> SolutionReport:
    """Run the seed and measure its models; then check impl's prune, quantize and distill."""
    report = SolutionReport(solution="compression.fix_seed_compression_snippet")
    data = make_data()  # 1000 train / 3000 test images (N, 12, 12, 3), 10 classes
    _seed_facts(report, data)
    teacher, teacher_labels, teacher_test = _rotated_teacher(report, data)
    _pruning(report, impl, data, teacher, teacher_labels)
    _quantization(report, impl, data, teacher, teacher_test)
    _distillation(report, impl, data, teacher, teacher_test)
    return report


def _seed_facts(report: SolutionReport, data: synthetic.Split) -> None:
    """1. The seed: the student trains (5 epochs), then the uncompiled teacher's fit raises.

    What it shows about the seed's code is a seed fact: outside the verdict, since a
    candidate's code cannot change it.
    """
    seed = run_original(data)
    report.expect_raise(
        "original raises RuntimeError",
        seed.error,
        RuntimeError,
        "You must compile your model",
        "teacher_model.fit(...) without teacher_model.compile(...)",
    )

    # Its "compressed" models, built on the same 432 inputs the student saw.
    base, pruned_seed = seed.namespace["quantized_model"], seed.namespace["pruned_model"]
    for model in (base, pruned_seed):
        model.build((None, int(np.prod(data.x_train.shape[1:]))))
    dtypes = [w.dtype.name for w in base.weights]  # kernels and BatchNorm statistics
    report.metric("original: quantized_model weight dtypes", ", ".join(sorted(set(dtypes))))
    report.seed_fact(
        "original: quantized_model weights not float32",
        sum(dtype != "float32" for dtype in dtypes),
        "==",
        0,
        "an ordinary Keras model: nothing is quantized",
    )
    report.metric("original: quantized_model parameters", int(base.count_params()))
    report.metric("original: pruned_model parameters", int(pruned_seed.count_params()))
    report.seed_fact(
        "original: pruned_model / quantized_model parameters",
        pruned_seed.count_params() / base.count_params(),
        ">",
        1,
        "the 'pruned' model is a bigger architecture (512 wide instead of 128)",
    )
    report.seed_fact(
        "original: pruned_model kernel sparsity",
        kernel_sparsity(pruned_seed),
        "==",
        0,
        "not one weight is zero: nothing was pruned (Dropout is not pruning)",
    )


def _rotated_teacher(
    report: SolutionReport, data: synthetic.Split
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """2. The fix's teacher, one that answers differently from the labels: trained on
    labels rotated by one class, (y + 1) mod 10. A student distilled from it must follow
    it; a student trained on the labels (the seed's "distillation") cannot.

    Returns the teacher, its training labels (N,) and its arg-max on the test images (M,).
    """
    k = data.num_classes
    teacher_labels = (data.y_train + 1) % k
    teacher = trained_teacher(TEACHER_EPOCHS, label_shift=1)  # build_teacher: 179k weights
    teacher_test = teacher.predict(data.x_test, batch_size=1024, verbose=0).argmax(axis=-1)
    report.metric(
        "teacher: test accuracy on rotated labels",
        float(np.mean(teacher_test == (data.y_test + 1) % k)),
    )
    return teacher, teacher_labels, teacher_test


def _pruning(
    report: SolutionReport,
    impl: Answer,
    data: synthetic.Split,
    teacher: keras.Model,
    teacher_labels: np.ndarray,
) -> None:
    """2a. Pruning: the target fraction of each kernel is exact zeros."""
    keras.utils.set_random_seed(SEED)
    x_prune, y_prune = data.x_train[:PRUNE_IMAGES], teacher_labels[:PRUNE_IMAGES]
    pruned = impl.prune(teacher, x_prune, y_prune, TARGET_SPARSITY)
    report.check(
        "fixed: pruned kernel sparsity",
        kernel_sparsity(pruned),
        ">=",
        TARGET_SPARSITY - 0.01,
        f"exact zeros in the Dense kernels, target {TARGET_SPARSITY}",
    )


def _quantization(
    report: SolutionReport,
    impl: Answer,
    data: synthetic.Split,
    teacher: keras.Model,
    teacher_test: np.ndarray,
) -> None:
    """2b. Quantization: raw TFLite bytes, float32 file vs impl's file."""
    original_bytes, quantized = float_tflite(teacher), bytes(impl.quantize(teacher))
    check_int8_size(
        report, "fixed: TFLite size ratio float32 / quantized", original_bytes, quantized
    )

    agree_quant = tflite_accuracy(quantized, data.x_test, teacher_test)  # vs Keras arg-max
    report.check(
        "fixed: quantized TFLite agrees with the float model (test images)",
        agree_quant,
        ">=",
        0.97,
        "arg-max agreement on 3000 images, run by the TFLite interpreter",
    )


def _distillation(
    report: SolutionReport,
    impl: Answer,
    data: synthetic.Split,
    teacher: keras.Model,
    teacher_test: np.ndarray,
) -> None:
    """2c. Distillation, soft targets only (alpha = 0): the labels given are the true ones,
    so whatever the student agrees with the teacher on, it learned from the teacher."""
    shape, k = data.x_train.shape[1:], data.num_classes
    x_few, y_few = data.x_train[:STUDENT_IMAGES], data.y_train[:STUDENT_IMAGES]
    keras.utils.set_random_seed(SEED)
    given = build_student(shape, k)  # 432 -> 32 -> 10, ~14k weights
    student = impl.distill(teacher, given, x_few, y_few, alpha=0.0)
    report.metric("distilled model parameters", int(student.count_params()))
    report.check(
        "fixed: distill returns the student (its parameter count)",
        float(student.count_params() == given.count_params()),
        "==",
        1,
        f"the {given.count_params()}-weight student is what gets scored below; the teacher "
        f"({teacher.count_params()} weights) returned instead would agree with itself",
    )
    student_test = student.predict(data.x_test, batch_size=1024, verbose=0).argmax(axis=-1)
    agreement = float(np.mean(student_test == teacher_test))
    report.metric(
        "distilled student: accuracy on the true labels",
        accuracy(student, data.x_test, data.y_test),
    )
    report.check(
        "fixed: distilled student agrees with the teacher (test images)",
        agreement,
        ">=",
        0.5,
        "arg-max agreement on 3000 images; a student trained on the labels scores ~0",
    )


if __name__ == "__main__":
    print_check_of(__name__)
