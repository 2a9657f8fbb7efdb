"""Structured pruning: remove whole neurons to get a smaller dense model that is faster.

Unstructured (magnitude) pruning leaves the shapes as they are and fills kernels with zeros:
a dense matrix multiply computes on the zeros, so the file compresses but the model runs no
faster. Structured pruning removes whole units (neurons of a Dense layer, channels of a
convolution): the next model is genuinely smaller. Here a trained MLP 784 -> 512 -> 512 -> 10
keeps the half of each hidden layer's units with the largest L2 norm of incoming weights;
surgery copies the kept columns of the unit's own kernel and bias and the kept *rows* of the
next layer's kernel into a 784 -> 256 -> 256 -> 10 model, which is then fine-tuned briefly.
What the run proves: before fine-tuning the small model computes exactly what the original
does with the dropped units zeroed (float32 tolerance, oneDNN on and off), the parameter count
is what the kept units give (~2.5x fewer multiply-adds), the selection keeps the largest-norm
units (exact indices, on a layer with planted norms), the fine-tuned model is within one point
of the original, and, measured in the same run with the TFLite interpreter (1 thread, interleaved
timings, best of 15), it runs >= 1.5x faster, while the original with 80% of its weights zeroed
(same shapes) runs at the original's speed. Also 2:4 semi-structured sparsity: in every group
of 4 consecutive input weights of an output, keep the 2 largest |w|; the pattern NVIDIA's
sparse tensor cores (Ampere and later) execute at up to 2x math throughput, which a CPU
ignores (its latency ratio is recorded, not assumed). Recorded too, as a caution: before
fine-tuning the norm-selected half is no better than a random half here, and a random half
fine-tuned the same way comes within a point: fine-tuning, not the criterion, does most of
the work.
"""

from __future__ import annotations

import time
import warnings
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.fit import fit_classifier
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.int8_quantization import float_tflite

SEED = 0
HIDDEN = (512, 512)
KEEP_FRACTION = 0.5
FINE_TUNE_EPOCHS = 2
BATCH_SIZE = 64
LATENCY_BATCH = 256
LATENCY_ROUNDS = 15
RANDOM_SELECTIONS = 4  # random unit sets: the selection control, before fine-tuning
SURGERY = "pruned model vs original with the dropped units zeroed (before fine-tuning)"
SELECTION = "kept units vs the largest-L2-norm units (planted norms)"
TWO_FOUR = "2:4 mask vs the 2 largest |w| of each group of 4 inputs"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("units_to_keep", "shrink", "fine_tune", "two_four_mask")
BASED_ON = "compression.int8_quantization"  # its float32 TFLite conversion

# -----------------------------------------------------------------------------
# The answer: choose units, cut them out, fine-tune; and the 2:4 pattern


def units_to_keep(model: keras.Model, keep_fraction: float) -> list[np.ndarray]:
    """For each hidden Dense layer of ``model`` (every Dense but the last), the indices of
    the units to keep: ``int(units * keep_fraction)`` of them, sorted ascending, int64.

    A unit is scored by the L2 norm of its incoming weights (its kernel column): a unit
    whose weights are small contributes little. Returns one (k,) array per hidden layer.
    """
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    keep = []
    for layer in dense[:-1]:  # the output layer's units are the classes: never pruned
        kernel = layer.get_weights()[0]  # (inputs, units)
        score = np.linalg.norm(kernel, axis=0)  # (units,): one score per output unit
        k = int(kernel.shape[1] * keep_fraction)
        keep.append(np.sort(np.argsort(-score)[:k]))  # (k,) the k largest, in layer order
    return keep


def shrink(model: keras.Model, keep: list[np.ndarray]) -> keras.Model:
    """A new, smaller Sequential MLP with only the units in ``keep`` (one index array per
    hidden Dense layer of ``model``), weights copied: same input shape, same activations,
    same outputs as ``model`` with the other units' outputs forced to zero.
    """
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    layers: list[keras.layers.Layer] = [keras.layers.Input(model.input_shape[1:])]
    layers += [keras.layers.Flatten()]  # (B, 784)
    weights = []
    kept_inputs = None  # rows of this kernel that survive: the previous layer's kept units
    for i, layer in enumerate(dense):
        kernel, bias = layer.get_weights()  # (inputs, units), (units,)
        if kept_inputs is not None:
            # The dropped units of the previous layer no longer exist: drop the rows of this
            # kernel that read them, and keep the others *in the same order* as the columns
            # kept there. Forgetting this leaves a (512, units) kernel on a 256-wide input.
            kernel = kernel[kept_inputs]  # (k_prev, units)
        if i < len(keep):
            kernel, bias = kernel[:, keep[i]], bias[keep[i]]  # (inputs, k), (k,)
            kept_inputs = keep[i]
        layers.append(keras.layers.Dense(kernel.shape[1], activation=layer.activation))
        weights += [kernel, bias]
    small = keras.Sequential(layers)
    small.set_weights(weights)
    return small


def fine_tune(model: keras.Model, x: np.ndarray, y: np.ndarray) -> keras.Model:
    """Train ``model`` (logits (B, K)) in place on ``x`` (N, ...), ``y`` (N,) int labels for
    a short recovery: removing half the units costs accuracy that a few epochs win back.
    Returns ``model``."""
    model.compile(
        optimizer=keras.optimizers.Adam(5e-4),  # below training's 1e-3: the weights are good
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=FINE_TUNE_EPOCHS, verbose=0)
    return model


def two_four_mask(kernel: np.ndarray) -> np.ndarray:
    """The 2:4 sparsity mask of a Dense kernel (inputs, outputs), inputs divisible by 4:
    float32 0/1 of the same shape, in every group of 4 consecutive inputs of each output
    the 2 largest |w| kept.

    Groups run along the reduction (input) dimension, the K of the matrix multiply: that is
    the pattern a sparse tensor core skips (NVIDIA stores each row of W (outputs, inputs) as
    2 values + 2-bit indices per 4).
    """
    n_in, n_out = kernel.shape
    groups = np.abs(kernel).reshape(n_in // 4, 4, n_out)  # (groups, 4, outputs)
    order = np.argsort(groups, axis=1)  # ascending within each group of 4
    mask = np.ones_like(groups, dtype=np.float32)
    np.put_along_axis(mask, order[:, :2], 0.0, axis=1)  # the 2 smallest of each group off
    return mask.reshape(n_in, n_out)


# -----------------------------------------------------------------------------
# Data, the model to prune, controls and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """1500 train / 2000 test digits, (N, 28, 28) float32 in [0, 1], labels in [0, 10)."""
    return synthetic.digit_images(n_train=1500, n_test=2000, seed=seed)


def train_original(data: synthetic.Split) -> keras.Model:
    """The model to prune: (B, 28, 28) -> 784 -> 512 -> 512 -> 10 logits, ReLU, ~670k
    weights: the two hidden layers hold 99% of the multiply-adds."""
    model = original_model(data)
    model.set_weights(original_weights())
    return model


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def original_weights() -> list[np.ndarray]:
    data = make_data()
    model = original_model(data)
    fit_classifier(
        model, data.x_train, data.y_train, epochs=5, batch_size=BATCH_SIZE, phase="train MLP"
    )
    return list(model.get_weights())


def original_model(data: synthetic.Split) -> keras.Model:
    """The untrained model ``train_original`` trains (seeded)."""
    keras.utils.set_random_seed(SEED)
    layers: list[keras.layers.Layer] = [keras.layers.Input(data.x_train.shape[1:])]
    layers.append(keras.layers.Flatten())  # (B, 784)
    layers += [keras.layers.Dense(width, activation="relu") for width in HIDDEN]
    layers.append(keras.layers.Dense(data.num_classes))  # (B, 10)
    return keras.Sequential(layers)


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def hidden_kernels(model: keras.Model) -> list[np.ndarray]:
    """The kernels (inputs, units) of every Dense layer but the last (the logits)."""
    return [layer.get_weights()[0] for layer in dense_layers(model)[:-1]]


def _stacked(keep: list[np.ndarray]) -> np.ndarray:
    """Per-layer index arrays as one (layers, k) array; ragged or empty: a (0,) array."""
    try:
        return np.stack([np.asarray(k, dtype=np.int64) for k in keep])
    except ValueError:
        return np.zeros(0, np.int64)


def with_units_zeroed(model: keras.Model, keep: list[np.ndarray]) -> keras.Model:
    """A copy of ``model``, same shapes, with every hidden unit not in ``keep`` silenced:
    its kernel column and bias set to 0, so ReLU(0) = 0 and nothing reaches the next layer.
    What a correct surgery must compute, without any surgery."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer, kept in zip(dense_layers(copy), keep, strict=False):
        kernel, bias = layer.get_weights()  # (inputs, units), (units,)
        alive = np.zeros(kernel.shape[1], bool)
        alive[np.asarray(kept, dtype=np.int64)] = True
        layer.set_weights([kernel * alive, bias * alive])
    return copy


def with_kernels_masked(model: keras.Model, masks: list[np.ndarray]) -> keras.Model:
    """A copy of ``model`` with each Dense kernel multiplied by its mask (same shapes)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer, mask in zip(dense_layers(copy), masks, strict=True):
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * mask, bias])
    return copy


def magnitude_masks(model: keras.Model, sparsity: float) -> list[np.ndarray]:
    """Unstructured masks: the smallest ``sparsity`` of each Dense kernel's |w| off."""
    masks = []
    for layer in dense_layers(model):
        kernel = np.abs(layer.get_weights()[0])
        masks.append((kernel > np.quantile(kernel, sparsity)).astype(np.float32))
    return masks


def reference_two_four(kernel: np.ndarray) -> np.ndarray:
    """2:4 mask computed another way: per output column, per group of 4 inputs, the rank
    of each |w| within its group (0 = smallest); ranks 2 and 3 kept."""
    n_in, n_out = kernel.shape
    groups = np.abs(kernel).T.reshape(n_out, n_in // 4, 4)  # (outputs, groups, 4)
    ranks = groups.argsort(axis=-1).argsort(axis=-1)  # rank of each weight in its group
    mask: np.ndarray = (ranks >= 2).astype(np.float32).reshape(n_out, n_in).T
    return mask  # (inputs, outputs)


def accuracy(model: keras.Model, data: synthetic.Split) -> float:
    logits = model.predict(data.x_test, batch_size=1000, verbose=0)  # (2000, 10)
    return float((logits.argmax(-1) == data.y_test).mean())


def expected_parameters(model: keras.Model, keep_fraction: float) -> int:
    """Weights + biases of ``model`` with int(units * keep_fraction) units per hidden layer."""
    dense = dense_layers(model)
    widths = [int(layer.units * keep_fraction) for layer in dense[:-1]] + [dense[-1].units]
    n_in = int(np.prod(model.input_shape[1:]))
    total = 0
    for width in widths:
        total += n_in * width + width
        n_in = width
    return total


def interleaved_latency_ms(models: dict[str, bytes], batch: np.ndarray) -> dict[str, float]:
    """Fastest ms of one TFLite ``invoke`` on ``batch`` per model, 1 thread, XNNPACK.

    The models take turns in every round, so a load change on a shared machine hits them
    all alike and the ratios stay fair; one warm-up call each first.
    """
    interpreters = {}
    for name, model_bytes in models.items():
        with warnings.catch_warnings():
            # TF warns that tf.lite.Interpreter moves to ai_edge_litert (same API).
            warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
            interpreter = tf.lite.Interpreter(model_content=model_bytes, num_threads=1)
        inp = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(inp["index"], list(batch.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()  # warm-up: weight packing, scratch buffers
        interpreters[name] = interpreter
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(LATENCY_ROUNDS):
        for name, interpreter in interpreters.items():
            t0 = time.perf_counter()
            interpreter.invoke()
            times[name].append((time.perf_counter() - t0) * 1e3)
    # The fastest round: other processes on a shared machine only ever add time, so the
    # minimum is the least disturbed measurement of each model.
    return {name: min(t) for name, t in times.items()}


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def units_to_keep(self, model: keras.Model, keep_fraction: float) -> list[np.ndarray]: ...

    def shrink(self, model: keras.Model, keep: list[np.ndarray]) -> keras.Model: ...

    def fine_tune(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> keras.Model: ...

    def two_four_mask(self, kernel: np.ndarray) -> np.ndarray: ...


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """The selection, the surgery and the 2:4 mask against independent computations.

    Selection: a small untrained MLP whose kernel columns are scaled by factors e^u,
    u ~ U(-3, 3), so each unit's norm is set by its factor (neighbours in rank differ by
    ~10% on average, the columns' own L2 norms by ~3%: L1 or L2 rank alike); the candidate's kept
    indices must be the reference's, exactly (atol 0.5 on integers).
    Surgery: the candidate's ``shrink`` on that MLP with a fixed keep list, against the same
    MLP with the other units zeroed. Logits up to ~10 (the planted factors reach e^3), sums
    of up to 784 products, computed by matrix multiplies of other shapes (other summation
    orders, oneDNN or not): float32 differences ~1e-6 relative; atol 1e-4 + rtol 1e-4.
    2:4: exact 0/1 masks; atol 0.5 so that any one weight kept or dropped wrongly fails.
    """
    data = make_data()
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [keras.layers.Input(data.x_train.shape[1:]), keras.layers.Flatten()]
        + [keras.layers.Dense(64, activation="relu") for _ in range(2)]
        + [keras.layers.Dense(data.num_classes)]
    )
    g = synthetic.rng(SEED)
    for layer in dense_layers(model)[:-1]:
        kernel, bias = layer.get_weights()  # (inputs, 64)
        layer.set_weights([kernel * np.exp(g.uniform(-3, 3, 64)).astype(np.float32), bias])
    chosen = impl.units_to_keep(model, 0.25)  # 16 of 64 per hidden layer
    planted = [np.sort(np.argsort(-np.linalg.norm(k, axis=0))[:16]) for k in hidden_kernels(model)]
    keep = [np.sort(g.choice(64, 24, replace=False)) for _ in range(2)]  # 24 of 64 each
    x = data.x_test[:200]  # (200, 28, 28)
    small = impl.shrink(model, keep)
    got = small.predict(x, batch_size=200, verbose=0)
    expected = with_units_zeroed(model, keep).predict(x, batch_size=200, verbose=0)
    kernel = g.normal(size=(64, 48)).astype(np.float32)  # (inputs, outputs)
    return {
        SELECTION: compare(_stacked(chosen), np.stack(planted), atol=0.5),
        SURGERY: compare(got, expected, atol=1e-4, rtol=1e-4),
        TWO_FOUR: compare(impl.two_four_mask(kernel), reference_two_four(kernel), atol=0.5),
    }


def check(impl: Answer) -> SolutionReport:
    """Structured-prune a trained MLP with ``impl``; compare with unstructured and 2:4."""
    report = SolutionReport(solution="compression.structured_pruning")
    _exact_parts(report, impl)
    data = make_data()
    model = train_original(data)
    original_acc = accuracy(model, data)
    report.metric("original: parameters", int(model.count_params()))
    report.metric("original: test accuracy", original_acc)

    keep = impl.units_to_keep(model, KEEP_FRACTION)
    small = impl.shrink(model, keep)
    _selection(report, data, model, small)
    small = impl.fine_tune(small, data.x_train, data.y_train)
    small_acc = accuracy(small, data)
    report.metric("structured-pruned, fine-tuned: test accuracy", small_acc)
    report.check(
        "accuracy drop original - structured-pruned after fine-tuning",
        original_acc - small_acc,
        "<=",
        0.01,
        "half the units removed cost ~12 points before fine-tuning (0.9765 -> 0.859); 2 epochs "
        "win them back: at most one point (20 test images) may stay lost",
    )
    _latency(report, impl, data, model, small)
    return report


def _exact_parts(report: SolutionReport, impl: Answer) -> None:
    """1. Surgery and 2:4 mask, value by value (see reference_comparisons)."""
    exact = reference_comparisons(impl)
    report.check_close(
        SELECTION,
        exact[SELECTION],
        "the units with the largest L2 norm of incoming weights, sorted; norms planted ~10% "
        "apart on average, so L1 ranks alike; the first units by index, or the smallest "
        "norms, differ in most places; " + exact[SELECTION].detail,
    )
    report.check_close(
        SURGERY,
        exact[SURGERY],
        "the kept columns of each kernel and bias and the matching rows of the next kernel, "
        "in the same order, compute exactly the zeroed original; float32 summation order "
        "differs: atol 1e-4 + rtol 1e-4 on logits up to ~10; next-layer rows taken by "
        "position instead of by kept index miss by far more; " + exact[SURGERY].detail,
    )
    report.check_close(
        TWO_FOUR,
        exact[TWO_FOUR],
        "groups of 4 along the input (reduction) dimension, the 2 largest |w| kept; groups "
        "along the outputs, or w instead of |w|, drop other weights; " + exact[TWO_FOUR].detail,
    )


def _selection(
    report: SolutionReport, data: synthetic.Split, model: keras.Model, small: keras.Model
) -> None:
    """2. The smaller model's size, and whether the chosen units were worth keeping."""
    expected = expected_parameters(model, KEEP_FRACTION)
    report.metric("structured-pruned: parameters", int(small.count_params()))
    report.metric("parameter ratio original / pruned", model.count_params() / small.count_params())
    report.check(
        "structured-pruned parameters",
        int(small.count_params()),
        "==",
        expected,
        f"784*256 + 256 + 256*256 + 256 + 256*10 + 10 = {expected}: half the units of each "
        "hidden layer really gone (zeroed units in the original shapes keep every parameter)",
    )
    chosen = accuracy(small, data)
    g = synthetic.rng(SEED + 1)
    random_acc = []
    for _ in range(RANDOM_SELECTIONS):
        keep = [np.sort(g.choice(w, int(w * KEEP_FRACTION), replace=False)) for w in HIDDEN]
        random_acc.append(accuracy(with_units_zeroed(model, keep), data))
    first_half = [np.arange(int(w * KEEP_FRACTION)) for w in HIDDEN]
    report.metric("structured-pruned before fine-tuning: test accuracy", chosen)
    report.metric(
        f"random units, same number, before fine-tuning: accuracy (min / mean / max of "
        f"{RANDOM_SELECTIONS})",
        f"{min(random_acc):.3f} / {np.mean(random_acc):.3f} / {max(random_acc):.3f}",
    )
    report.metric(
        "first half of the units by index, before fine-tuning: accuracy",
        accuracy(with_units_zeroed(model, first_half), data),
    )
    # The control that matters: the last random set, cut out and fine-tuned like the answer.
    random_small = shrink(model, keep)
    fine_tune(random_small, data.x_train, data.y_train)
    report.metric(
        "random units, fine-tuned the same way: test accuracy", accuracy(random_small, data)
    )


def _latency(
    report: SolutionReport,
    impl: Answer,
    data: synthetic.Split,
    model: keras.Model,
    small: keras.Model,
) -> None:
    """3. Latency of four float32 TFLite files, same run, same batch, interleaved."""
    unstructured = with_kernels_masked(model, magnitude_masks(model, 0.8))
    # 2:4 on the two hidden kernels (99% of the multiply-adds); the 512 x 10 classifier
    # (under 1% of them) stays dense.
    masks = [impl.two_four_mask(kernel) for kernel in hidden_kernels(model)]
    two_four = with_kernels_masked(
        model, [*masks, np.ones(dense_layers(model)[-1].kernel.shape, np.float32)]
    )
    report.metric(
        "unstructured 80% (same shapes, no fine-tuning): test accuracy",
        accuracy(unstructured, data),
    )
    report.metric(
        "2:4 on the hidden kernels (50%, no fine-tuning): test accuracy", accuracy(two_four, data)
    )
    files = {
        "original": float_tflite(model),
        "structured": float_tflite(small),
        "unstructured 80%": float_tflite(unstructured),
        "2:4": float_tflite(two_four),
    }
    ms = interleaved_latency_ms(files, data.x_test[:LATENCY_BATCH])
    where = f"TFLite float32, batch {LATENCY_BATCH}, 1 thread, best of {LATENCY_ROUNDS}"
    for name, value in ms.items():
        report.metric(f"{name}: latency ({where})", value, "ms")
    for name in ("unstructured 80%", "2:4"):
        report.metric(f"latency ratio original / {name}", ms["original"] / ms[name], "x")
    ratio = ms["original"] / ms["structured"]
    report.metric("latency ratio original / structured", ratio, "x")
    report.check(
        "latency ratio original / structured (measured, same run)",
        ratio,
        ">=",
        1.5,
        "2.5x fewer multiply-adds (668k -> 269k per image); dense kernels skip no zeros, so "
        "only removed units save time; 1.5 leaves room for overheads and a noisy shared CPU",
    )


if __name__ == "__main__":
    print_check_of(__name__)
