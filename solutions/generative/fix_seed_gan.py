"""Fix the seed's GAN: a sigmoid discriminator fed to a `from_logits=True` loss, and more.

The seed's DCGAN for 28x28 digits never runs: ``np`` is not imported, and ``generator``,
``discriminator``, ``batch_size`` and ``train_dataset`` are never created. Its worst bug
is quiet: the discriminator ends in a sigmoid while the loss is
``BinaryCrossentropy(from_logits=True)``. Straight from the model, Keras (tf_keras and
Keras 3 alike) spots the Sigmoid, feeds its input to the loss and only warns, so the
seed's loss is right by luck. Any op in between (a cast, a squeeze, ``predict()``
outputs) hands the loss probabilities, which get a second sigmoid: the loss then cannot
drop below log(1 + e^-1) + log 2 = 1.006, even for a perfect discriminator. The fix
outputs logits from the discriminator and keeps ``from_logits=True``. The harness runs the
seed's code (NameError on ``np``) and measures the floor with the seed's own loss: facts
about the seed (``report.seed_fact``), shown apart from the checks, which all run the
candidate's code. The checks compare the fixed losses against a BCE computed by hand in
NumPy, including logits of +-20 where a clipped probability loss goes wrong. Last, they
train the fixed discriminator for a few steps on synthetic digits vs generated images:
D's accuracy rises from chance to near 1, its loss on plain copies of its held-out
outputs (where a sigmoid cannot hide) falls far below 1.006, and a few generator steps
with the fixed generator loss pull its accuracy on fakes back down.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import SeedRun, run_seed

SEED = 0
LATENT_DIM = 100  # as in the seed
BATCH_SIZE = 32
D_STEPS = 20  # discriminator-only steps
G_STEPS = 20  # generator-only steps, D frozen
LEARNING_RATE = 1e-3  # the seed's 1e-4 is fine for 50 epochs, too slow for 20 steps
# The losses vs a float64 hand BCE (reference_comparisons): |got - expected| <= ATOL + RTOL *
# |expected|. Each loss is a float32 mean of 41 softplus values up to 20 (losses ~5 and ~10):
# a few eps (1.2e-7) per term, at most ~41 eps relative summed; RTOL = 1e-5 covers it.
ATOL, RTOL = 1e-6, 1e-5
D_LOSS_CHECK = "discriminator_loss vs hand BCE (tolerance used)"
G_LOSS_CHECK = "generator_loss vs hand BCE (tolerance used)"
# Logits -20..20 (41, 1) and the same reversed: where a clipped probability loss goes wrong.
PROBE_LOGITS = np.linspace(-20.0, 20.0, 41, dtype=np.float32)[:, None]

# The seed's code (seed 001, "1. 编写一个简单的GAN模型，实现图像生成。"), verbatim; the
# generator's body is cut (it is not wrong).
ORIGINAL = """
import tensorflow as tf
from tensorflow.keras import layers

# 定义生成器和判别器
def build_generator():
    model = tf.keras.Sequential()
    # ...
    return model

def build_discriminator():
    model = tf.keras.Sequential()
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding='same', input_shape=[28, 28, 1]))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))

    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding='same'))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))

    model.add(layers.Flatten())
    model.add(layers.Dense(1, activation='sigmoid'))
    return model

# 定义损失函数和优化器
cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)

def discriminator_loss(real_output, fake_output):
    real_loss = cross_entropy(tf.ones_like(real_output), real_output)
    fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
    total_loss = real_loss + fake_loss
    return total_loss

def generator_loss(fake_output):
    return cross_entropy(tf.ones_like(fake_output), fake_output)

generator_optimizer = tf.keras.optimizers.Adam(1e-4)
discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)

# 训练GAN模型
EPOCHS = 50

for epoch in range(EPOCHS):
    for _ in range(batch_size):
        noise = np.random.normal(0, 1, (batch_size, 100))
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            samples = generator(noise, training=True)

            real_samples = train_dataset.take(batch_size)
            real_samples = np.array([sample[0].numpy() for sample in real_samples])

            gen_samples = generator(noise, training=True)
            disc_real_output = discriminator(real_samples, training=True)
            disc_fake_output = discriminator(gen_samples, training=True)

            gen_loss = generator_loss(disc_fake_output)
            disc_loss = discriminator_loss(disc_real_output, disc_fake_output)

        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)

        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
"""  # noqa: E501 (the seed's lines, verbatim)

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_discriminator", "discriminator_loss", "generator_loss")

# -----------------------------------------------------------------------------
# The answer: a discriminator that outputs logits, and losses that expect logits

_bce = keras.losses.BinaryCrossentropy(from_logits=True)


def build_discriminator() -> keras.Model:
    """Images (B, 28, 28, 1) float32 in [-1, 1] -> one logit per image (B, 1): > 0 = "real".

    The seed's network without the final sigmoid. The loss applies the sigmoid itself
    (``from_logits=True``): stable log-sigmoid, no clipping, no saturation.
    """
    return keras.Sequential(
        [
            keras.layers.Input((28, 28, 1)),
            keras.layers.Conv2D(64, 5, strides=2, padding="same"),  # (B, 14, 14, 64)
            keras.layers.LeakyReLU(0.2),
            keras.layers.Dropout(0.3),
            keras.layers.Conv2D(128, 5, strides=2, padding="same"),  # (B, 7, 7, 128)
            keras.layers.LeakyReLU(0.2),
            keras.layers.Dropout(0.3),
            keras.layers.Flatten(),  # (B, 6272)
            keras.layers.Dense(1),  # (B, 1) logit, no activation
        ]
    )


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Scalar: mean BCE(1, real) + mean BCE(0, fake), both (B, 1) float32 logits."""
    real_loss = _bce(tf.ones_like(real_logits), real_logits)  # -log sigmoid(real)
    fake_loss = _bce(tf.zeros_like(fake_logits), fake_logits)  # -log(1 - sigmoid(fake))
    return real_loss + fake_loss


def generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Scalar: mean BCE(1, fake), the non-saturating loss -log D(G(z)); (B, 1) logits."""
    return _bce(tf.ones_like(fake_logits), fake_logits)


# -----------------------------------------------------------------------------
# Running the seed's code, data, and measurement


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def build_discriminator(self) -> keras.Model: ...

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor: ...

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor: ...


def run_original() -> SeedRun:
    """Run ORIGINAL: the exception it raised and the namespace it left.

    The seed defines neither ``batch_size`` nor ``train_dataset``: we substitute 4 and
    four tiny (image, label) pairs, so the run gets as far as the seed's own next bug.
    """
    images = np.zeros((4, 28, 28, 1), np.float32)
    namespace: dict[str, Any] = {
        "batch_size": 4,
        "train_dataset": tf.data.Dataset.from_tensor_slices((images, np.zeros(4))),
    }
    return run_seed(ORIGINAL, namespace)


def make_data(seed: int = SEED) -> synthetic.Split:
    """Synthetic digits (N, 28, 28, 1) float32 scaled to [-1, 1] (the generator's tanh range).

    512 training images for the steps, 256 held-out ones for measuring D's accuracy.
    """
    split = synthetic.digit_images(n_train=512, n_test=256, seed=seed)
    return synthetic.Split(
        x_train=split.x_train[..., None] * 2.0 - 1.0,
        y_train=split.y_train,
        x_test=split.x_test[..., None] * 2.0 - 1.0,
        y_test=split.y_test,
    )


def build_generator() -> keras.Model:
    """Noise (B, 100) -> images (B, 28, 28, 1) in [-1, 1]; the seed's shape, 8x narrower."""
    return keras.Sequential(
        [
            keras.layers.Input((LATENT_DIM,)),
            keras.layers.Dense(7 * 7 * 32, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Reshape((7, 7, 32)),  # (B, 7, 7, 32)
            keras.layers.Conv2DTranspose(16, 5, strides=2, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.LeakyReLU(0.2),  # (B, 14, 14, 16)
            keras.layers.Conv2DTranspose(1, 5, strides=2, padding="same", activation="tanh"),
        ]
    )


def hand_bce(logits: np.ndarray, label: float) -> float:
    """Mean binary cross-entropy of ``logits`` against ``label`` in NumPy, exactly.

    -log sigmoid(x) = log(1 + e^-x) and -log(1 - sigmoid(x)) = log(1 + e^x), via logaddexp.
    """
    x = logits.astype(np.float64)
    return float(np.mean(np.logaddexp(0.0, -x) if label == 1.0 else np.logaddexp(0.0, x)))


def d_accuracy(
    discriminator: keras.Model, real: np.ndarray, fake: np.ndarray
) -> tuple[float, float]:
    """(accuracy on real, accuracy on fake): logit > 0 means "real"."""
    real_logits = discriminator(real, training=False).numpy()  # (N, 1)
    fake_logits = discriminator(fake, training=False).numpy()
    return float((real_logits > 0).mean()), float((fake_logits <= 0).mean())


def hand_bce_pair() -> tuple[float, float]:
    """(hand BCE of real + fake, hand BCE of fake-as-real) on PROBE_LOGITS, in float64."""
    reversed_logits = PROBE_LOGITS[::-1]
    return (
        hand_bce(PROBE_LOGITS, 1.0) + hand_bce(reversed_logits, 0.0),
        hand_bce(PROBE_LOGITS, 1.0),
    )


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """Every equality-type comparison: impl's two losses vs BCE computed by hand in float64.

    Why ATOL + RTOL * |expected| with ATOL = 1e-6, RTOL = 1e-5: each loss is a float32 mean
    of 41 stable log-sigmoid terms of size up to 20 (losses ~10.3 and ~5.2); each term is
    exact to a few eps (1.2e-7) and the sum of 41 adds at most ~41 eps relative, 5e-6.
    Measured 2e-7 apart (tolerance used 0.002), oneDNN on and off. A loss that applies a
    sigmoid and then a probability BCE clips at 1e-7 (16.1 nats where the truth is up to
    20): 0.66 off for the discriminator and 0.33 for the generator, 6e3 times outside.
    """
    d_expected, g_expected = hand_bce_pair()
    reversed_logits = tf.constant(PROBE_LOGITS[::-1].copy())
    d_loss = impl.discriminator_loss(tf.constant(PROBE_LOGITS), reversed_logits)
    g_loss = impl.generator_loss(tf.constant(PROBE_LOGITS))
    return {
        D_LOSS_CHECK: compare(float(d_loss), d_expected, atol=ATOL, rtol=RTOL),
        G_LOSS_CHECK: compare(float(g_loss), g_expected, atol=ATOL, rtol=RTOL),
    }


def loss_on_plain_copies(
    impl: Answer, discriminator: keras.Model, real: np.ndarray, fake: np.ndarray
) -> float:
    """impl's discriminator_loss on D's outputs for ``real`` and ``fake`` as plain tensors.

    Straight from a model, tf_keras recognises a Sigmoid output (the tensor carries its
    input as ``_keras_logits``; in a graph, the op type is Sigmoid) and feeds that input to
    a ``from_logits=True`` loss, with a warning: a sigmoid discriminator then trains with
    the right loss. A plain copy carries no such tag, like the output of any op between D
    and the loss (a cast, a squeeze, ``predict()``). On it, a sigmoid output gets a second
    sigmoid; a logit output gives the same loss as straight from the model.
    """
    real_out = discriminator(real, training=False).numpy()  # (N, 1)
    fake_out = discriminator(fake, training=False).numpy()
    return float(impl.discriminator_loss(tf.constant(real_out), tf.constant(fake_out)))


def check(impl: Answer) -> SolutionReport:
    """Run the seed; compare impl's losses with hand BCE; train impl's D, then a generator."""
    report = SolutionReport(solution="generative.fix_seed_gan")
    _seed_facts(report)
    _losses_vs_hand_bce(report, impl)
    # A few training steps. D first (G fixed): it should separate digits from untrained
    # generator output. Then G (D fixed): it should pull D's accuracy on fakes back down.
    data = make_data()
    steps = _discriminator_steps(report, impl, data)
    _generator_steps(report, impl, data, steps)
    return report


def _seed_facts(report: SolutionReport) -> None:
    """1. The seed as written: it stops at its first undefined name. What this part measures
    is about the seed's code, not impl's: seed facts, outside the candidate's verdict."""
    seed = run_original()
    report.expect_raise(
        "original raises NameError",
        seed.error,
        NameError,
        "'np'",
        f"np is never imported: {seed.error}",
    )
    # The silent bug, measured with the seed's own loss on its own discriminator's outputs
    # (Keras 3, as the seed's tf.keras is in TF >= 2.16). Straight from the model, Keras
    # sees the Sigmoid (``_keras_logits``), uses its input and only warns, so the loss is
    # right by luck; the same probabilities as plain tensors (after any op, a cast, a
    # predict()) get a second sigmoid. The true BCE of those probabilities is the reference.
    seed_loss = seed.namespace["discriminator_loss"]
    keras.utils.set_random_seed(SEED)
    probe = np.random.default_rng(SEED).uniform(-1, 1, (2, 8, 28, 28, 1)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*received `from_logits=True`", UserWarning)
        warnings.filterwarnings("ignore", ".*`input_shape`/`input_dim`", UserWarning)
        seed_d = seed.namespace["build_discriminator"]()
        p_real, p_fake = seed_d(probe[0]), seed_d(probe[1])  # (8, 1) sigmoid outputs
        seed_direct = float(seed_loss(p_real, p_fake))
    p_real, p_fake = p_real.numpy(), p_fake.numpy()
    seed_plain = float(seed_loss(tf.constant(p_real), tf.constant(p_fake)))
    true_bce = float(-np.mean(np.log(p_real)) - np.mean(np.log1p(-p_fake)))
    report.metric("seed's D: true BCE of its probabilities", true_bce)
    report.metric("seed's loss, outputs straight from the model", seed_direct)
    report.metric("seed's loss, same outputs as plain tensors", seed_plain)
    # A perfect discriminator (probability 1 on real, 0 on fake) as plain tensors.
    perfect_real, perfect_fake = np.ones((8, 1), np.float32), np.zeros((8, 1), np.float32)
    seed_floor = float(seed_loss(perfect_real, perfect_fake))
    report.metric("seed's D loss for a perfect D (plain probabilities)", seed_floor)
    report.seed_fact(
        "original: D loss floor with sigmoid + from_logits",
        seed_floor,
        ">=",
        1.0,
        "log(1 + e^-1) + log 2 = 1.006 where the true BCE is 0: a second sigmoid",
    )


def _losses_vs_hand_bce(report: SolutionReport, impl: Answer) -> None:
    """2a. impl's losses against a hand-computed BCE, on logits up to +-20: a sigmoid + BCE
    on probabilities clips at 1e-7 (16.1 nats) and gets these wrong."""
    comparisons = reference_comparisons(impl)
    d_cmp, g_cmp = comparisons[D_LOSS_CHECK], comparisons[G_LOSS_CHECK]
    report.metric("hand-computed BCE, real + fake (logits -20..20)", hand_bce_pair()[0])
    report.metric("discriminator_loss - hand BCE (max abs)", d_cmp.max_abs_diff)
    report.metric("generator_loss - hand BCE (max abs)", g_cmp.max_abs_diff)
    report.check_close(
        D_LOSS_CHECK,
        d_cmp,
        f"mean -log s(real) + mean -log(1 - s(fake)), logits in [-20, 20], value ~10.3: "
        f"|diff| <= {ATOL:g} + {RTOL:g}*|expected| (a float32 mean of 41 terms; reference "
        f"2e-7 apart); BCE on sigmoid probabilities (clipped at 1e-7) is 0.66 off, 6e3 "
        f"times outside; " + d_cmp.detail,
    )
    report.check_close(
        G_LOSS_CHECK,
        g_cmp,
        "non-saturating: mean -log s(D(G(z))), value ~5.2, same bound; BCE on clipped "
        "probabilities is 0.33 off, 6e3 times outside; the saturating log(1 - s) 10.3 "
        "off; " + g_cmp.detail,
    )


class _AfterDSteps(NamedTuple):
    """What the D steps leave for the G steps."""

    discriminator: keras.Model
    generator: keras.Model
    g_opt: keras.optimizers.Optimizer
    z_eval: tf.Tensor  # (256, LATENT_DIM): the held-out noise D's accuracy is measured on
    fake_acc: float  # D's accuracy on G(z_eval) after the D steps


def _discriminator_steps(
    report: SolutionReport, impl: Answer, data: synthetic.Split
) -> _AfterDSteps:
    """2b. D_STEPS steps of impl's discriminator with impl's discriminator_loss against an
    untrained generator: D's accuracy, and its loss on plain copies of its outputs."""
    keras.utils.set_random_seed(SEED)
    discriminator = impl.build_discriminator()
    generator = build_generator()
    d_opt = keras.optimizers.Adam(LEARNING_RATE)
    g_opt = keras.optimizers.Adam(LEARNING_RATE)
    real_pool = tf.constant(data.x_train)  # (512, 28, 28, 1)
    z_eval = tf.random.normal((len(data.x_test), LATENT_DIM), seed=SEED)  # (256, 100)

    def d_update() -> tf.Tensor:
        idx = tf.random.uniform((BATCH_SIZE,), 0, len(data.x_train), dtype=tf.int32)
        z = tf.random.normal((BATCH_SIZE, LATENT_DIM))
        fake = generator(z, training=False)  # (B, 28, 28, 1), G not updated here
        with tf.GradientTape() as tape:
            real_logits = discriminator(tf.gather(real_pool, idx), training=True)  # (B, 1)
            fake_logits = discriminator(fake, training=True)
            loss = impl.discriminator_loss(real_logits, fake_logits)
        grads = tape.gradient(loss, discriminator.trainable_variables)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables, strict=True))
        return loss

    d_step = tf.function(d_update)
    real_acc0, fake_acc0 = d_accuracy(discriminator, data.x_test, generator(z_eval).numpy())
    events.start("train discriminator", D_STEPS)
    for step in range(D_STEPS):
        loss = d_step()
        if (step + 1) % 5 == 0:
            events.advance("train discriminator", step + 1, d_loss=float(loss))
    d_final_loss = float(loss)
    fake_eval = generator(z_eval).numpy()  # (256, 28, 28, 1), G as it was during the D steps
    real_acc1, fake_acc1 = d_accuracy(discriminator, data.x_test, fake_eval)
    copy_loss = loss_on_plain_copies(impl, discriminator, data.x_test, fake_eval)
    report.metric("D accuracy before training (real, fake)", f"{real_acc0:.3f}, {fake_acc0:.3f}")
    report.metric("D accuracy after D steps (real, fake)", f"{real_acc1:.3f}, {fake_acc1:.3f}")
    report.metric("D loss at the last D step (outputs straight from the model)", d_final_loss)
    report.metric("D loss on plain copies of its held-out outputs", copy_loss)
    report.check(
        "D accuracy after D steps",
        (real_acc1 + fake_acc1) / 2,
        ">=",
        0.9,
        f"{D_STEPS} steps, held-out digits vs generated images; logit > 0 = real",
    )
    report.check(
        "D loss on plain copies of its held-out outputs",
        copy_loss,
        "<=",
        0.5,
        "impl's discriminator_loss on D's held-out outputs as plain tensors (what a cast, a "
        "squeeze or predict() hands over), where Keras cannot swap a Sigmoid output back "
        "for its input: a logit D scores ~0.001; a sigmoid output gets a second sigmoid and "
        "cannot go below log(1 + e^-1) + log 2 = 1.006 (the seed's D scores 1.0065, though "
        "its training loss straight from the model reaches 0.0004); 0.5 lies between",
    )
    return _AfterDSteps(discriminator, generator, g_opt, z_eval, fake_acc1)


def _generator_steps(
    report: SolutionReport, impl: Answer, data: synthetic.Split, after: _AfterDSteps
) -> None:
    """2c. G_STEPS steps of the generator with impl's generator_loss, D frozen: they should
    pull D's accuracy on fakes back down."""
    discriminator, generator, g_opt = after.discriminator, after.generator, after.g_opt

    def g_update() -> tf.Tensor:
        z = tf.random.normal((BATCH_SIZE, LATENT_DIM))
        with tf.GradientTape() as tape:
            fake_logits = discriminator(generator(z, training=True), training=False)
            loss = impl.generator_loss(fake_logits)
        grads = tape.gradient(loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables, strict=True))
        return loss

    g_step = tf.function(g_update)
    events.start("train generator", G_STEPS)
    for step in range(G_STEPS):
        loss = g_step()
        if (step + 1) % 5 == 0:
            events.advance("train generator", step + 1, g_loss=float(loss))
    _, fake_acc2 = d_accuracy(discriminator, data.x_test, generator(after.z_eval).numpy())
    report.metric("D accuracy on fakes after G steps", fake_acc2)
    report.check(
        "D accuracy on fakes: drop after G steps",
        after.fake_acc - fake_acc2,
        ">=",
        0.3,
        f"{G_STEPS} generator steps with generator_loss fool the frozen D (reference: from "
        f"1.0 to 0.0); the saturating log(1 - D(G(z))) has ~0 gradient where D rejects the "
        f"fakes and leaves it at 1.0 (drop 0)",
    )


if __name__ == "__main__":
    print_check_of(__name__)
