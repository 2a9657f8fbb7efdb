"""Gradient clipping by global norm: an exploding-gradient RNN diverges without it, trains with it.

Clipping by global norm treats all of a model's gradients as one vector g and rescales it when
it is too long: g <- g * c / max(||g||, c). Every tensor is scaled by the same factor, so the
update keeps its direction and only its length is capped at c. Clipping each tensor by its own
norm (Keras 2's ``clipnorm=``) or each coordinate by value (``clipvalue=``) also caps the step,
but changes its direction.

The exploding-gradient setup is the one Pascanu et al. (2013) analyse: a linear recurrent
network unrolled over 32 steps, whose gradient with respect to the recurrent matrix W sums
products of up to 32 copies of W. At an orthogonal initialisation (all eigenvalues on the unit
circle) the gradient norm is already ~76 (96% of its square in W); one plain SGD step grows
W's spectral radius past 1, the next gradient has norm ~7e4, and from the third step on the
loss is NaN. The same run with the global norm clipped at 1 trains to ~0.16 of the held-out
loss of predicting the mean (SGD, learning rate 0.03 with cosine decay over 150 steps).
Clipping at 1 is active on every step here: it caps the step length at learning rate x 1,
which is what keeps the recurrent matrix off the cliff.

The checks prove: ``clip_by_global_norm`` equals ``tf.clip_by_global_norm`` above and below the
threshold and returns the pre-clip norm (a hand computation); one ``train_step`` equals a step
of Keras SGD with ``global_clipnorm``; the clipped update is parallel to the raw gradient
(cosine 1) while clipping by value is not (measured, a metric); the unclipped control diverges
and the clipped run trains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
SEQ_LEN = 32  # unrolled steps: the recurrent gradient multiplies up to 32 copies of W
UNITS = 16
MEMORY = 5  # the target is the sum of the first 5 inputs: it must travel the whole sequence
N_TRAIN = 512
BATCH = 32
STEPS = 150
LEARNING_RATE = 0.03
CLIP_NORM = 1.0
CLIP_VALUE = 0.1  # the by-value control: a typical small per-coordinate limit
BLOWN_UP = 1e3  # a loss this many times the initial one (or non-finite) counts as diverged
TOLERANCE = {"atol": 1e-6, "rtol": 1e-5}

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("clip_by_global_norm", "train_step")

# -----------------------------------------------------------------------------
# The answer: clip the whole gradient as one vector, inside the training step


def clip_by_global_norm(
    grads: list[tf.Tensor], clip_norm: float
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Rescale ``grads`` (one tensor per variable, any shapes) so their global norm is <= clip.

    The global norm is sqrt(sum over tensors of sum(g ** 2)): the length of all gradients
    concatenated into one vector. Returns (clipped tensors, same shapes; the global norm
    *before* clipping, a float32 scalar). Below the threshold the gradients come back unchanged.
    """
    # ||g|| over every tensor together: (). Not per tensor, which would scale each by its own
    # factor and turn the update (it changes the direction, like clipping each coordinate).
    global_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
    # One factor for all: c / max(||g||, c) is 1 below the threshold, c / ||g|| above it.
    scale = clip_norm / tf.maximum(global_norm, clip_norm)
    return [g * scale for g in grads], global_norm


def train_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    x: tf.Tensor,
    y: tf.Tensor,
    clip_norm: float | None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One SGD step on the mean squared error, gradients clipped by global norm first.

    x (B, T, 1), y (B, 1). ``clip_norm=None`` applies the raw gradients (the control).
    Returns (loss before the step, global gradient norm before clipping), float32 scalars:
    the norm is what to log, since its spikes are what clipping hides. Traced by tf.function.
    """
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))  # ()
    grads = tape.gradient(loss, model.trainable_variables)
    # Clip between computing and applying the gradients; the control applies the raw ones.
    if clip_norm is None:
        update, norm = grads, tf.linalg.global_norm(grads)
    else:
        update, norm = clip_by_global_norm(grads, clip_norm)
    optimizer.apply_gradients(zip(update, model.trainable_variables, strict=True))
    return loss, norm


# -----------------------------------------------------------------------------
# Data, the exploding-gradient model, and the harness


def make_data(seed: int = SEED, n: int = N_TRAIN) -> tuple[np.ndarray, np.ndarray]:
    """x (n, 32, 1) standard normal; y (n, 1) the sum of each sequence's first 5 inputs.

    Predicting the mean gives a loss of var(y) = 5; the answer must carry the first inputs
    through 27 further recurrent steps.
    """
    rng = synthetic.rng(seed)
    x = rng.normal(size=(n, SEQ_LEN, 1)).astype(np.float32)
    y = x[:, :MEMORY, 0].sum(axis=1, keepdims=True).astype(np.float32)
    return x, y


def build_rnn(seed: int = SEED) -> keras.Model:
    """(B, 32, 1) -> (B, 1): a linear RNN (h_t = W h_{t-1} + U x_t + b), W orthogonal, 305 weights.

    Linear and orthogonal: nothing saturates and every eigenvalue of W has modulus 1, so
    d loss / d W sums terms with up to 31 factors of W (large), and any step that pushes
    W's spectral radius above 1 makes W^32 explode: the cliff of Pascanu et al.
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.layers.Input((SEQ_LEN, 1)),  # (B, T, 1)
            keras.layers.SimpleRNN(
                UNITS, activation=None, recurrent_initializer=keras.initializers.Orthogonal()
            ),  # (B, 16): the last state
            keras.layers.Dense(1),  # (B, 1)
        ]
    )


def gradients(model: keras.Model, x: np.ndarray, y: np.ndarray) -> list[tf.Tensor]:
    """The raw MSE gradients of ``model`` on (x, y), one tensor per trainable variable."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    return list(tape.gradient(loss, model.trainable_variables))


def flat(tensors: list[tf.Tensor]) -> np.ndarray:
    """All tensors concatenated into one float64 vector."""
    return np.concatenate([np.asarray(t, np.float64).ravel() for t in tensors])


def cosine(a: list[tf.Tensor], b: list[tf.Tensor]) -> float:
    """Cosine of the angle between two gradient lists seen as single vectors."""
    u, v = flat(a), flat(b)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def random_grads(seed: int, scale: float) -> list[tf.Tensor]:
    """Gradient-shaped tensors (3, 4), (4,), (5, 2, 2) ~ N(0, scale^2): global norm ~ 5 * scale."""
    rng = synthetic.rng(seed)
    return [
        tf.constant(rng.normal(scale=scale, size=shape).astype(np.float32))
        for shape in ((3, 4), (4,), (5, 2, 2))
    ]


def mse(model: keras.Model, data: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean squared error of ``model`` on (x, y), computed here (not the loss a step reports)."""
    x, y = data
    return float(np.mean(np.square(model(x, training=False).numpy() - y)))


def train(
    impl: Answer, clip_norm: float | None, data: tuple[np.ndarray, np.ndarray], phase: str
) -> tuple[keras.Model, list[float], list[float]]:
    """STEPS steps of ``impl.train_step`` on the RNN (plain SGD): (model, losses, norms)."""
    model = build_rnn()
    # Plain SGD with cosine decay: clipping caps the step at lr x clip, decay settles the end.
    optimizer = keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, STEPS))
    step: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]] = tf.function(
        lambda xb, yb: impl.train_step(model, optimizer, xb, yb, clip_norm)
    )
    x, y = data
    losses, norms = [], []
    events.start(phase, STEPS, "steps")
    for i in range(STEPS):
        start = (i * BATCH) % N_TRAIN
        loss, norm = step(
            tf.constant(x[start : start + BATCH]), tf.constant(y[start : start + BATCH])
        )
        losses.append(float(loss))
        norms.append(float(norm))
        if i % 10 == 9:
            events.advance(phase, i + 1, loss=losses[-1])
    events.finish(phase)
    return model, losses, norms


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def clip_by_global_norm(
        self, grads: list[tf.Tensor], clip_norm: float
    ) -> tuple[list[tf.Tensor], tf.Tensor]: ...

    def train_step(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        x: tf.Tensor,
        y: tf.Tensor,
        clip_norm: float | None,
    ) -> tuple[tf.Tensor, tf.Tensor]: ...


ABOVE = "clip_by_global_norm vs tf.clip_by_global_norm, norm ~25 above clip 1"
BELOW = "clip_by_global_norm vs tf.clip_by_global_norm, norm ~0.5 below clip 1"
NORM = "returned norm vs sqrt(sum of squares) before clipping"
KERAS_STEP = "one train_step vs Keras SGD(global_clipnorm=1) on the RNN's weights"


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl`` vs TensorFlow's clipping and Keras' ``global_clipnorm`` on the same inputs.

    Gradients of order 0.1..5 scaled by one float32 factor: a few ulps (~1e-7 relative) from
    another order of operations; atol 1e-6 + rtol 1e-5. Per-tensor clipping or clipping by
    value moves components by O(10%); never clipping leaves them 25x too large.
    """
    found = {}
    big, small = random_grads(SEED, 5.0), random_grads(SEED + 1, 0.1)
    for name, grads in ((ABOVE, big), (BELOW, small)):
        got, _ = impl.clip_by_global_norm(grads, CLIP_NORM)
        expected, _ = tf.clip_by_global_norm(grads, CLIP_NORM)
        found[name] = compare(flat(got), flat(expected), **TOLERANCE)
    _, norm = impl.clip_by_global_norm(big, CLIP_NORM)
    found[NORM] = compare(float(norm), float(np.linalg.norm(flat(big))), **TOLERANCE)
    # One step on the exploding RNN: the candidate's step vs Keras applying global_clipnorm.
    x, y = make_data()
    xb, yb = tf.constant(x[:BATCH]), tf.constant(y[:BATCH])
    model, reference = build_rnn(), build_rnn()
    impl.train_step(model, keras.optimizers.SGD(LEARNING_RATE), xb, yb, CLIP_NORM)
    keras_sgd = keras.optimizers.SGD(LEARNING_RATE, global_clipnorm=CLIP_NORM)
    raw = gradients(reference, x[:BATCH], y[:BATCH])
    keras_sgd.apply_gradients(zip(raw, reference.trainable_variables, strict=True))
    found[KERAS_STEP] = compare(
        flat(model.get_weights()), flat(reference.get_weights()), **TOLERANCE
    )
    return found


def check(impl: Answer) -> SolutionReport:
    """Equal to TF/Keras clipping, direction kept, unclipped control diverges, clipped trains."""
    report = SolutionReport(solution="training.gradient_clipping")
    for name, cmp in reference_comparisons(impl).items():
        report.check_close(
            name,
            cmp,
            "the same arithmetic as TF's clip_by_global_norm / Keras' global_clipnorm, another "
            "order of float32 operations: a few ulps (~1e-7 relative): atol 1e-6 + rtol 1e-5; "
            "per-tensor or by-value clipping moves components by O(10%), no clipping by 25x; "
            + cmp.detail,
        )
    data = make_data()
    x, y = data
    # Direction, on the RNN's actual (exploding) gradients at initialisation.
    raw = gradients(build_rnn(), x[:BATCH], y[:BATCH])
    by_norm, norm = impl.clip_by_global_norm(raw, CLIP_NORM)
    by_value = [tf.clip_by_value(g, -CLIP_VALUE, CLIP_VALUE) for g in raw]
    report.metric("global gradient norm at initialisation (batch of 32)", float(norm))
    recurrent = float(np.sum(np.square(raw[1])))  # SimpleRNN: kernel, recurrent_kernel, bias
    report.metric(
        "share of the squared norm in the recurrent matrix W", recurrent / float(norm) ** 2
    )
    report.check(
        "global-norm clipping keeps the direction: cosine(clipped, raw)",
        cosine(by_norm, raw),
        ">=",
        1 - 1e-6,
        "one factor for every tensor: cosine 1 up to float32 rounding (~1e-7); per-tensor "
        "factors turn the vector (the RNN's tensors have very different norms)",
    )
    clipped_values = float(np.mean(np.abs(flat(raw)) > CLIP_VALUE))
    report.metric(f"clip by value {CLIP_VALUE}: share of coordinates clipped", clipped_values)
    report.metric(f"clip by value {CLIP_VALUE}: cosine(clipped, raw)", cosine(by_value, raw))

    # Training: the same model, data order and learning rate, without and with clipping;
    # judged on 256 held-out sequences by this harness, not by the losses train_step reports.
    held_out = make_data(SEED + 1, n=256)
    initial = mse(build_rnn(), held_out)
    baseline = float(np.var(held_out[1]))  # the loss of predicting the mean
    report.metric("held-out loss at initialisation", initial)
    report.metric("held-out loss of predicting the mean, var(y)", baseline)
    with report.timed("training, 2 x 150 steps"):
        plain, _, plain_norms = train(impl, None, data, "train without clipping")
        clipped, _, clipped_norms = train(impl, CLIP_NORM, data, f"train, clip norm {CLIP_NORM}")
    finite = [v for v in plain_norms if np.isfinite(v)]
    report.metric("without clipping: largest finite gradient norm", max(finite) if finite else 0.0)
    plain_loss = mse(plain, held_out)
    report.metric("without clipping: held-out loss after training", plain_loss)
    report.check(
        "control without clipping diverged (1 = held-out loss NaN or > 1e3 x initial)",
        float(not np.isfinite(plain_loss) or plain_loss > BLOWN_UP * initial),
        ">=",
        1,
        "the control must fail: one raw step (norm ~76 x lr 0.03) pushes W past spectral "
        "radius 1, the next gradient norm is ~7e4 and the loss is NaN from the third step; a "
        "train_step that clips even when told not to trains instead (0)",
    )
    final = mse(clipped, held_out)
    report.metric("with clipping: held-out loss after training", final)
    report.metric(
        "with clipping: share of steps where the clip was active",
        float(np.mean(np.asarray(clipped_norms) > CLIP_NORM)),
    )
    report.check(
        "with clipping: held-out loss / loss of predicting the mean",
        final / baseline,
        "<=",
        0.4,
        "clipped SGD must learn to carry the first inputs: measured 0.16 (a model that "
        "learns nothing sits at ~1, a diverged one at NaN); 0.4 leaves 2.5x margin",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
