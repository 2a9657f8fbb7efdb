"""Gradual magnitude pruning to 80% sparsity with tensorflow-model-optimization.

A trained MLP (784 -> 256 -> 10 on synthetic digits) is pruned while it is fine-tuned:
``prune_low_magnitude`` wraps every Dense layer with a mask, a ``PolynomialDecay`` schedule
raises the target sparsity from 0 to 80% over the first 60% of the fine-tuning steps (fast at
first, slowly near the end: ``s_t = s_f + (s_0 - s_f) (1 - t)^3``), the ``UpdatePruningStep``
callback advances the step and updates the masks, and ``strip_pruning`` removes the wrappers.
What the run proves: every Dense kernel is 80% exact zeros (to 0.5%), the zeros are where
the original weights were small (>= 70% of the kept weights are among the original's
largest 20% by |w|; a random mask: ~20%), the caller's model is untouched, the returned model
has plain layers only, its accuracy is within one point of the float model's (TFLite files
run by the interpreter), and its gzipped float32 TFLite file is >= 3x smaller. As a control,
the same 80% removed at once without fine-tuning is measured too: it loses far more.
A dense kernel computes on its zeros: the gain is in storage and download, not in speed
(see compression.structured_pruning).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

# tfmot 0.8 uses tf_keras (it sets TF_USE_LEGACY_KERAS=1 itself); a Keras 3 model is refused.
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import compare
from aiprep.kit.fit import fit_classifier
from aiprep.kit.memo import memo
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.halve_model_size import float_tflite, gzipped_size, tflite_accuracy

SEED = 0
FINAL_SPARSITY = 0.8
FINE_TUNE_EPOCHS = 3
RAMP_FRACTION = 0.6  # the schedule reaches FINAL_SPARSITY at 60% of fine-tuning; rest recovers
BATCH_SIZE = 64
FLOAT_EPOCHS = 6


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("magnitude_prune",)
BASED_ON = "compression.halve_model_size"  # its TFLite conversion, gzip size and accuracy

# -----------------------------------------------------------------------------
# The answer: prune gradually while fine-tuning, then strip the wrappers


def magnitude_prune(
    model: keras.Model, x: np.ndarray, y: np.ndarray, final_sparsity: float
) -> keras.Model:
    """A pruned copy of ``model``: each Dense kernel ``final_sparsity`` exact zeros.

    ``model`` maps ``x`` (N, ...) float32 to logits (N, K); ``y`` (N,) int labels are the
    fine-tuning data. The smallest-|w| weights of each kernel are masked step by step while
    the model is fine-tuned, so the remaining weights compensate. ``model`` is left unchanged.
    Returns a plain Keras model (no pruning wrappers), same layers, same outputs.
    """
    # prune_low_magnitude wraps the layers of the model it is given, sharing their weights:
    # pruning `model` itself would zero the caller's weights. Work on a copy.
    copy = keras.models.clone_model(model)  # architecture only ...
    copy.set_weights(model.get_weights())  # ... so copy the weights

    steps = int(np.ceil(len(x) / BATCH_SIZE)) * FINE_TUNE_EPOCHS  # optimizer steps in all
    # Masks are updated only at begin_step + k * frequency, up to end_step: size both to the
    # steps this fine-tuning really takes (tfmot's default frequency of 100 would never fire
    # in a short run). About 10 updates; the last 40% of the steps run at full sparsity and
    # let the network recover.
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=final_sparsity,
        begin_step=0,
        end_step=int(steps * RAMP_FRACTION),
        power=3,  # s_t = s_f + (0 - s_f) * (1 - t)^3: big cuts early, small cuts near the end
        frequency=max(1, steps // 10),
    )
    # Each kernel is pruned to its own sparsity (per layer), by |w| within that kernel.
    pruned = tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule)
    # UpdatePruningStep increments the wrappers' step counter before each batch and lets the
    # masks update on schedule; without it, the wrapper's training call fails an assertion
    # ("requires the UpdatePruningStep callback").
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    callbacks.append(events.keras_callback("prune while fine-tuning"))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    pruned.compile(keras.optimizers.Adam(5e-4), loss)  # below training's 1e-3: fine-tuning
    # Adam's slots made inside fit's first step would make tf.function trace that step twice
    # (~1 s each through the wrappers): create them now.
    pruned.optimizer.build(pruned.trainable_variables)
    pruned.fit(x, y, BATCH_SIZE, FINE_TUNE_EPOCHS, verbose=0, callbacks=callbacks)
    # The wrappers hold a mask, a threshold and a step counter per layer: strip them. The
    # zeros stay in the plain kernels (the masks were applied to the weights at each step).
    return tfmot.sparsity.keras.strip_pruning(pruned)


# -----------------------------------------------------------------------------
# Data, the float model to prune, and measurement


def make_data(seed: int = SEED) -> synthetic.Split:
    """1500 train / 3000 test digits, (N, 28, 28) float32 in [0, 1], labels in [0, 10).

    3000 test images: one point of accuracy is 30 images, not a handful.
    """
    return synthetic.digit_images(n_train=1500, n_test=3000, seed=seed)


def train_float_model(data: synthetic.Split) -> keras.Model:
    """The model to prune: (B, 28, 28) -> Flatten 784 -> Dense 256 ReLU -> Dense 10 logits.

    ~204k weights (~800 KB in float32), 99% of them in the two Dense kernels.
    """
    model = float_model(data)
    model.set_weights(float_model_weights())
    return model


@memo  # the answer does not enter: the wrong answers and the next verify reuse the weights
def float_model_weights() -> list[np.ndarray]:
    data = make_data()
    model = float_model(data)
    fit_classifier(
        model, data.x_train, data.y_train, epochs=FLOAT_EPOCHS, batch_size=BATCH_SIZE,
        phase="train float MLP",
    )  # fmt: skip
    return list(model.get_weights())


def float_model(data: synthetic.Split) -> keras.Model:
    """The untrained model ``train_float_model`` trains (seeded)."""
    keras.utils.set_random_seed(SEED)
    return keras.Sequential(
        [
            keras.layers.Input(data.x_train.shape[1:]),  # (B, 28, 28)
            keras.layers.Flatten(),  # (B, 784)
            keras.layers.Dense(256, activation="relu"),  # (B, 256): 200k weights
            keras.layers.Dense(data.num_classes),  # (B, 10) logits
        ]
    )


def dense_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """The Dense kernels of ``model`` by layer order ("kernel 0", ...), wrapped or not."""
    kernels = [w.numpy() for w in model.weights if w.name.endswith("kernel:0")]
    return {f"kernel {i}": k for i, k in enumerate(kernels)}


def wrapper_count(model: keras.Model) -> int:
    """Layers of ``model`` that are still wrappers (tfmot's PruneLowMagnitude is a Keras
    ``Wrapper`` around the layer it prunes)."""
    return sum(isinstance(layer, keras.layers.Wrapper) for layer in model.layers)


def kept_overlap(original: np.ndarray, pruned: np.ndarray) -> float:
    """Fraction of the nonzero weights of ``pruned`` that sit among the largest-|w| weights
    of ``original`` (as many as ``pruned`` keeps). 1.0: exactly the original's top weights;
    a random mask keeping a fraction f: about f."""
    kept = pruned != 0
    n = int(kept.sum())
    if n == 0:
        return 0.0
    top = np.zeros(original.size, bool)
    top[np.argsort(-np.abs(original), axis=None)[:n]] = True  # original's n largest |w|
    return float((kept.ravel() & top).sum() / n)


def one_shot_pruned(model: keras.Model, weights: list[np.ndarray], sparsity: float) -> keras.Model:
    """Control: a copy of ``model`` with ``weights``, the smallest ``sparsity`` of each Dense
    kernel's weights set to zero at once, no fine-tuning."""
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    for layer in copy.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            threshold = np.quantile(np.abs(kernel), sparsity)
            layer.set_weights([np.where(np.abs(kernel) <= threshold, 0.0, kernel), bias])
    return copy


class Answer(Protocol):
    """What check(impl) calls: the ANSWER function, with the reference's signature."""

    def magnitude_prune(
        self, model: keras.Model, x: np.ndarray, y: np.ndarray, final_sparsity: float
    ) -> keras.Model: ...


def check(impl: Answer) -> SolutionReport:
    """Prune a trained MLP to 80% with ``impl.magnitude_prune``; measure what it returns."""
    report = SolutionReport(solution="compression.magnitude_pruning")
    data = make_data()
    model = train_float_model(data)
    before = [w.copy() for w in model.get_weights()]  # the caller's weights, to compare after
    original_kernels = dense_kernels(model)
    float_bytes = float_tflite(model)
    float_acc = tflite_accuracy(float_bytes, data.x_test, data.y_test)
    report.metric("float model parameters", int(model.count_params()))
    report.metric("float32 TFLite: test accuracy", float_acc)

    keras.utils.set_random_seed(SEED)
    pruned = impl.magnitude_prune(model, data.x_train, data.y_train, FINAL_SPARSITY)

    _structure(report, model, before, pruned)
    _sparsity(report, original_kernels, pruned)
    _shipped_file(report, data, float_bytes, float_acc, pruned)

    # Control: the same sparsity in one cut, no fine-tuning (what gradual pruning avoids).
    control = one_shot_pruned(model, before, FINAL_SPARSITY)
    one_shot_acc = tflite_accuracy(float_tflite(control), data.x_test, data.y_test)
    report.metric("control, 80% removed at once without fine-tuning: test accuracy", one_shot_acc)
    return report


def _structure(
    report: SolutionReport, model: keras.Model, before: list[np.ndarray], pruned: keras.Model
) -> None:
    """1. What comes back: plain layers, and the caller's model untouched."""
    left = wrapper_count(pruned)
    report.check(
        "PruneLowMagnitude wrappers left after strip_pruning",
        left,
        "==",
        0,
        "strip_pruning replaces each wrapper by its plain layer; left in, each Dense carries a "
        "mask, a threshold and a step counter and needs tfmot to load",
    )
    changed = sum(
        not np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True)
    )
    report.check(
        "caller's model weights changed by pruning",
        changed,
        "==",
        0,
        "prune_low_magnitude shares the weights of the layers it wraps: pruning the caller's "
        "model instead of a copy zeroes its kernels too (any change counts: the copy is exact)",
    )


def _sparsity(
    report: SolutionReport, original_kernels: dict[str, np.ndarray], pruned: keras.Model
) -> None:
    """2. Each kernel's sparsity, and whether the zeros are where |w| was small."""
    kernels = dense_kernels(pruned)
    names = sorted(original_kernels)
    if sorted(kernels) != names:  # a model of another shape: nothing to compare kernel-wise
        kernels = {name: np.ones_like(original_kernels[name]) for name in names}
    sparsity = {name: float((kernels[name] == 0).mean()) for name in names}
    for name in names:
        report.metric(f"{name} {original_kernels[name].shape}: sparsity", sparsity[name])
    got = np.array([sparsity[name] for name in names])  # (2,)
    report.check_close(
        "sparsity of each Dense kernel",
        compare(got, np.full_like(got, FINAL_SPARSITY), atol=0.005),
        f"target {FINAL_SPARSITY} per kernel; tfmot masks round(s * size) weights (exact to "
        "1 weight in 2560), atol 0.005 leaves room for another rounding, not for a missed "
        "schedule (sparsity 0) or a global threshold that prunes one layer more than another",
    )
    overlap = min(kept_overlap(original_kernels[n], kernels[n]) for n in names)
    report.metric("kept weights among the original's largest |w| (worst kernel)", overlap)
    report.check(
        "kept weights among the original's largest |w| (worst kernel)",
        overlap,
        ">=",
        0.7,
        "magnitude pruning keeps the large weights (fine-tuning moves a few across the "
        f"threshold); a mask blind to |w| keeps the original's top {1 - FINAL_SPARSITY:.0%} on "
        "~20% of its kept weights, a threshold on w instead of |w| (largest positive weights "
        "only) on ~50%",
    )


def _shipped_file(
    report: SolutionReport,
    data: synthetic.Split,
    float_bytes: bytes,
    float_acc: float,
    pruned: keras.Model,
) -> None:
    """3. The pruned model as a float32 TFLite file: accuracy and gzipped size."""
    if wrapper_count(pruned):
        # Wrappers assign the masked kernel inside their call: the frozen-graph conversion
        # cannot take that. Strip them here so the remaining checks still measure the
        # weights (the wrapper check above has already failed).
        pruned = tfmot.sparsity.keras.strip_pruning(pruned)
    pruned_bytes = float_tflite(pruned)
    pruned_acc = tflite_accuracy(pruned_bytes, data.x_test, data.y_test)
    report.metric("pruned float32 TFLite: test accuracy", pruned_acc)
    report.check(
        "accuracy loss float - pruned (TFLite, 3000 test images)",
        float_acc - pruned_acc,
        "<=",
        0.01,
        "at most one point (30 images); gradual pruning while fine-tuning loses none here",
    )
    float_gz, pruned_gz = gzipped_size(float_bytes), gzipped_size(pruned_bytes)
    report.metric("float32 TFLite size (raw)", len(float_bytes) / 1024, "KB")
    report.metric("pruned float32 TFLite size (raw)", len(pruned_bytes) / 1024, "KB")
    report.metric("float32 TFLite size (gzip)", float_gz / 1024, "KB")
    report.metric("pruned float32 TFLite size (gzip)", pruned_gz / 1024, "KB")
    report.check(
        "gzipped size ratio float / pruned",
        float_gz / pruned_gz,
        ">=",
        3.0,
        "the raw file does not shrink (zeros are stored); gzip stores the 20% nonzero float32 "
        "values (~4 bytes each) plus where they are: ~1/(0.2 + mask) of the original, ~3.3x",
    )


if __name__ == "__main__":
    print_check_of(__name__)
