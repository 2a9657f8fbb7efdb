"""A GAN trained with a custom GradientTape step, measured on a ring of 8 Gaussians.

A generator maps noise z to samples and a discriminator scores samples as real or fake. Each
step updates both at once (a simultaneous update, not alternating D and G steps), each with
its own optimizer, from one discriminator forward pass on the same real and generated batch.
The discriminator outputs logits and the losses use ``from_logits=True``; an R1 penalty on
the logit's input gradient keeps D smooth around the data; the generator uses the
non-saturating loss -log D(G(z)). Images make success a matter of taste, so the data here
is a 2-D mixture of 8 Gaussians on a circle whose modes are known: the checks count how many
modes the generator covers (mode collapse shows up as missing modes), how many samples land
near a mode, and a sliced Wasserstein distance between generated and real samples, each
compared with the same generator untrained.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.synthetic.points import nearest_mode, ring_centers, ring_of_gaussians

SEED = 0
LATENT_DIM = 16
MODES = 8
RADIUS = 2.0
STD = 0.05  # of each Gaussian; modes are 2 * RADIUS * sin(pi / 8) = 1.53 = 30 std apart
STEPS = 2000
BATCH_SIZE = 256
LEARNING_RATE = 2e-3  # start of a cosine decay to 0
R1_GAMMA = 1.0  # weight of the R1 gradient penalty on the discriminator
N_EVAL = 4000  # generated and real samples for the measurements
FAR_RADIUS = 1000.0  # 500x the ring's radius: a logit grows there, a probability cannot


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_generator", "build_discriminator", "train")

# -----------------------------------------------------------------------------
# The answer: generator, discriminator, adversarial training step and loop


def build_generator(latent_dim: int) -> keras.Model:
    """Noise z (B, latent_dim) float32 -> samples (B, 2) float32 (unbounded, no tanh)."""
    return keras.Sequential(
        [
            keras.layers.Input((latent_dim,)),  # (B, latent_dim), z ~ N(0, I)
            keras.layers.Dense(128, activation="relu"),  # (B, 128)
            keras.layers.Dense(128, activation="relu"),  # (B, 128)
            keras.layers.Dense(2),  # (B, 2): linear, the data is not in [-1, 1]
        ]
    )


def build_discriminator() -> keras.Model:
    """Samples (B, 2) float32 -> one logit per sample (B, 1): > 0 means "real".

    No sigmoid: the losses take logits (``from_logits=True``) and the R1 penalty in
    ``train`` is the input gradient of the logit. With a sigmoid here (seed 001) the BCE
    is still right in this step: tf_keras sees a Sigmoid output fed straight into the loss
    and uses its input, with a warning. What breaks is R1: it then penalises
    grad sigmoid(D) = sigmoid'(D) * grad D, at most 1/4 of grad D and vanishing wherever D
    is confident, the steep walls R1 exists to flatten. The generator collapses, how far
    depends on float rounding (tests/fixtures/wrong_answers/generative__gan.py: 0 or 6 of 8
    modes, oneDNN off or on); the check on D's outputs far from the data catches it for sure.
    """
    return keras.Sequential(
        [
            keras.layers.Input((2,)),  # (B, 2)
            keras.layers.Dense(128),
            keras.layers.LeakyReLU(0.2),  # (B, 128); leaky: no dead units, gradients flow to G
            keras.layers.Dense(128),
            keras.layers.LeakyReLU(0.2),  # (B, 128)
            keras.layers.Dense(1),  # (B, 1) logit
        ]
    )


def train(
    generator: keras.Model,
    discriminator: keras.Model,
    real: np.ndarray,
    steps: int = STEPS,
    batch_size: int = BATCH_SIZE,
) -> dict[str, list[float]]:
    """Adversarial training of both models in place on ``real`` samples (N, 2) float32.

    Each step draws a batch of real samples and one of noise, computes both losses from the
    same forward pass and updates the discriminator and the generator at once (simultaneous,
    not alternating). Returns the losses of every step: {"d_loss": [...], "g_loss": [...]}.
    """
    latent_dim = generator.input_shape[-1]
    # Two optimizers: each one's Adam moments belong to one network. beta_1 = 0.5 (DCGAN):
    # less momentum, because the other player keeps moving the target. The learning rate
    # decays to 0 (cosine): GAN training oscillates, and a shrinking step lets it settle.
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
    g_optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=0.5)
    d_optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=0.5)
    # Their moments now: a tf.function whose first call creates variables is traced twice.
    g_optimizer.build(generator.trainable_variables)
    d_optimizer.build(discriminator.trainable_variables)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    pool = tf.constant(real)  # (N, 2): sampling inside the graph beats a tf.data round trip

    def adversarial_step() -> tuple[tf.Tensor, tf.Tensor]:
        idx = tf.random.uniform((batch_size,), 0, len(real), dtype=tf.int32)
        real_batch = tf.gather(pool, idx)  # (B, 2)
        z = tf.random.normal((batch_size, latent_dim))  # (B, latent_dim)
        # Two tapes over one forward pass: each loss is differentiated w.r.t. its own model.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(z, training=True)  # (B, 2)
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(real_batch)
                real_logits = discriminator(real_batch, training=True)  # (B, 1)
                real_logit_sum = tf.reduce_sum(real_logits)  # inside the tape, or no gradient
            # R1 penalty: |dD/dx|^2 on real data, D the LOGIT (Mescheder et al. 2018). It keeps
            # D from building steep walls around the modes G has found, which is what drives G
            # to hop from mode to mode (mode collapse). Taken through a sigmoid it would shrink
            # by sigmoid'(D)^2 <= 1/16, to ~0 where D is confident. The outer d_tape
            # differentiates through this gradient (double backprop).
            real_grads = r1_tape.gradient(real_logit_sum, real_batch)  # (B, 2)
            r1 = tf.reduce_mean(tf.reduce_sum(tf.square(real_grads), axis=1))
            fake_logits = discriminator(fake, training=True)  # (B, 1)
            # D: real -> 1, fake -> 0, plus the penalty.
            d_loss = (
                bce(tf.ones_like(real_logits), real_logits)
                + bce(tf.zeros_like(fake_logits), fake_logits)
                + 0.5 * R1_GAMMA * r1
            )
            # G, non-saturating: maximise log D(G(z)) (label fakes as real), instead of
            # minimising log(1 - D(G(z))), whose gradient vanishes when D rejects the fakes,
            # which is exactly the situation at the start of training.
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))
        g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
        return d_loss, g_loss

    train_step = tf.function(adversarial_step)  # traced once into a graph, run every step
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    events.start("train GAN", steps)
    for step in range(steps):
        d_loss, g_loss = train_step()
        history["d_loss"].append(float(d_loss))
        history["g_loss"].append(float(g_loss))
        if (step + 1) % 100 == 0:
            events.advance("train GAN", step + 1, d_loss=float(d_loss), g_loss=float(g_loss))
    return history


# -----------------------------------------------------------------------------
# Data and measurement


def make_data(seed: int = SEED) -> np.ndarray:
    """20000 real samples (N, 2) float32 from the ring of 8 Gaussians (radius 2, std 0.05)."""
    points: np.ndarray = ring_of_gaussians(20000, MODES, RADIUS, STD, seed=seed)[0]
    return points


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = 128) -> float:
    """Sliced Wasserstein-1 distance between equal-size samples a, b (n, 2).

    Project both onto random unit directions; in 1-D the W1 distance between two samples is
    the mean gap between their sorted values. Average over directions.
    """
    g = np.random.default_rng(SEED)
    directions = g.normal(size=(2, projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)  # (2, P) unit vectors
    pa, pb = np.sort(a @ directions, axis=0), np.sort(b @ directions, axis=0)  # (n, P)
    return float(np.abs(pa - pb).mean())


def measure(samples: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Mode coverage, sample quality and distance to ``real`` of ``samples`` (n, 2)."""
    centers = ring_centers(MODES, RADIUS)
    mode, dist = nearest_mode(samples, centers)
    good = dist <= 3 * STD  # within 3 std of a mode: a sample that looks real
    counts = np.bincount(mode[good], minlength=MODES)  # good samples per mode
    # A mode is covered when it gets at least a quarter of its fair share (1 / MODES).
    covered = int((counts >= 0.25 * len(samples) / MODES).sum())
    return {
        "modes covered": covered,
        "high-quality share": float(good.mean()),
        "sliced Wasserstein": sliced_wasserstein(samples, real),
    }


def generate(generator: keras.Model, n: int, seed: int) -> np.ndarray:
    """``n`` samples (n, 2) from ``generator`` for fixed noise drawn from ``seed``."""
    z = np.random.default_rng(seed).normal(size=(n, generator.input_shape[-1]))
    samples: np.ndarray = np.asarray(
        generator.predict(z.astype(np.float32), batch_size=1024, verbose=0)
    )
    return samples


def far_outputs(discriminator: keras.Model, n: int = 64) -> np.ndarray:
    """D's outputs (n, 1) at n points evenly spaced on a circle of radius FAR_RADIUS.

    D is a LeakyReLU MLP, piecewise linear, so far from the data its logit grows in
    proportion to the distance in almost every direction. A sigmoid output stays in (0, 1).
    """
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    points = FAR_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (n, 2)
    return np.asarray(discriminator(points.astype(np.float32), training=False))


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def build_generator(self, latent_dim: int) -> keras.Model: ...

    def build_discriminator(self) -> keras.Model: ...

    def train(
        self, generator: keras.Model, discriminator: keras.Model, real: np.ndarray
    ) -> dict[str, list[float]]: ...


def check(impl: Answer) -> SolutionReport:
    """Train ``impl``'s GAN on the ring; measure it against the real data and its untrained self."""
    report = SolutionReport(solution="generative.gan")
    real = make_data()
    real_eval, _ = ring_of_gaussians(N_EVAL, MODES, RADIUS, STD, seed=SEED + 1)  # held out

    keras.utils.set_random_seed(SEED)
    generator = impl.build_generator(LATENT_DIM)
    discriminator = impl.build_discriminator()
    before = measure(generate(generator, N_EVAL, SEED + 2), real_eval)
    with report.timed("train wall time"):
        history = impl.train(generator, discriminator, real)
    far = far_outputs(discriminator)  # (64, 1)
    report.metric("trained D output far from the data: min", float(far.min()))
    report.metric("trained D output far from the data: max", float(far.max()))
    report.check(
        "discriminator outputs logits (max |D| far from the data)",
        float(np.abs(far).max()),
        ">=",
        2,
        f"64 points at radius {FAR_RADIUS:g}: a logit of this piecewise-linear D grows with the "
        "distance (reference: -33 to -77), a probability stays in [0, 1] (seed 001's sigmoid "
        "D: max 1.0, or 0.0 with oneDNN on). The R1 penalty and the from_logits=True losses "
        "are written for a logit",
    )

    after = measure(generate(generator, N_EVAL, SEED + 2), real_eval)
    # The floor: the distance between two independent real samples of the same size.
    real_again, _ = ring_of_gaussians(N_EVAL, MODES, RADIUS, STD, seed=SEED + 3)
    floor = sliced_wasserstein(real_again, real_eval)
    for name, value in before.items():
        report.metric(f"untrained generator: {name}", value)
    for name, value in after.items():
        report.metric(f"trained generator: {name}", value)
    report.metric("real vs real sliced Wasserstein", floor)
    report.metric("final discriminator loss", np.mean(history["d_loss"][-100:]))
    report.metric("final generator loss", np.mean(history["g_loss"][-100:]))
    report.check(
        "modes covered",
        after["modes covered"],
        ">=",
        7,
        f"of {MODES}; each covered mode gets >= 1/4 of its fair share of samples within 3 std",
    )
    report.check(
        "high-quality share",
        after["high-quality share"],
        ">=",
        0.4,
        "samples within 3 std of some mode (real data: 0.99)",
    )
    report.check(
        "sliced Wasserstein to real data",
        after["sliced Wasserstein"],
        "<=",
        0.12,
        f"real vs real: {floor:.3f}",
    )
    report.check(
        "untrained / trained sliced Wasserstein",
        before["sliced Wasserstein"] / after["sliced Wasserstein"],
        ">=",
        5,
        "training moved the generated distribution onto the data",
    )
    return report


if __name__ == "__main__":
    print_check_of(__name__)
