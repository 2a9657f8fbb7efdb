"""Debugging the seed's TF-Hub image classifier: no ``fit``, the wrong head, no batch axis.

The seed loads an ImageNet ResNet with ``hub.load(url)`` and calls ``fit``/``predict`` on
it. Its handle, ``.../google/imagenet_resnet_v2_152_1/fp16/1``, is not a published TF-Hub
path: the ResNet V2 152 models are ``https://tfhub.dev/google/imagenet/resnet_v2_152/
classification/5`` and ``.../feature_vector/5`` (tfhub.dev redirects to Kaggle Models since
November 2023; ``hub.load`` still resolves the tfhub.dev handles of migrated models). Past
the download, ``hub.load`` returns the restored SavedModel object (what ``tf.saved_model.load``
gives), which has no ``fit``: ``AttributeError``. Even as a Keras model it would keep the
ImageNet head (1001 classes) for a task with other classes, and
``model.predict(preprocess_image(x_test[0]))`` passes one (224, 224, 3) image where Keras
wants a batch (1, 224, 224, 3): ``predict`` reads the first axis as the batch and fails
on (None, 224, 3). Offline, the check runs the seed against a restored local SavedModel,
then against a small local Keras model to reach the ``predict`` line. The fix reads an
image file into a batch of one (pixels within float32 rounding of the file's uint8 / 255),
and puts a new head for the task's classes on a frozen pretrained backbone
(``training.resnet_transfer``; ``fit`` leaves every backbone variable bit-identical): it
classifies a 4-class few-shot task far above chance, one image file at a time.
"""

from __future__ import annotations

import tempfile
import types
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import SeedRun, run_seed
from solutions.training.resnet_transfer import (
    IMAGE_SIZE,
    NUM_SOURCE_CLASSES,
    TARGET_SEED,
    build_resnet,
    fit_harness,
)
from solutions.training.resnet_transfer import make_data as make_transfer_data

SEED = 0
NUM_CLASSES = 4  # the new task: 4 classes, not ImageNet's 1001
SHOTS = 8  # about this many labelled images per class
SEED_IMAGE_SIZE = 224  # what the seed resizes to
PRETRAIN_EPOCHS = 4  # of batch 64: 64 steps (resnet_transfer: 4 epochs of batch 50)
HEAD_EPOCHS = 30  # 32 images: one step per epoch
N_FILES = 20  # test images predicted one file at a time

# The seed's code (003, "算法编程题 2：图像分类"), verbatim.
ORIGINAL = """
import tensorflow as tf
import tensorflow_hub as hub

# 加载预训练模型
model = hub.load("https://tfhub.dev/google/imagenet_resnet_v2_152_1/fp16/1")

# 数据预处理
def preprocess_image(image_path):
    image = tf.io.read_file(image_path)
    image = tf.image.decode_jpeg(image, channels=3)
    image = tf.cast(image, tf.float32)
    image = tf.image.resize(image, [224, 224])
    image /= 255.0
    return image

# 训练
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_data=(x_val, y_val))

# 预测
predictions = model.predict(preprocess_image(x_test[0]))

# 输出预测结果
print(predictions)
"""

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("preprocess_image", "build_transfer_model")
BASED_ON = "training.resnet_transfer"

# -----------------------------------------------------------------------------
# The answer: an image file as a batch of one, and a new head on a pretrained backbone


def preprocess_image(image_path: str, size: int) -> tf.Tensor:
    """The image file at ``image_path`` (JPEG, PNG, GIF or BMP) as a batch of ONE image:
    (1, size, size, 3) float32 in [0, 1], ready for ``model.predict``."""
    image = tf.io.read_file(image_path)
    # decode_image handles every common format; expand_animations=False keeps GIFs 3-D.
    image = tf.io.decode_image(image, channels=3, expand_animations=False)  # (H, W, 3) uint8
    image = tf.image.resize(tf.cast(image, tf.float32), [size, size])  # (size, size, 3)
    return (image / 255.0)[tf.newaxis]  # (1, size, size, 3): Keras models take batches


def build_transfer_model(pretrained: keras.Model, num_classes: int) -> keras.Model:
    """A compiled classifier for a NEW task: ``pretrained``'s frozen backbone (everything
    before its last layer, the old head) and a new ``Dense(num_classes)`` head.

    Images (B, H, W, 3) float32 in [0, 1] -> logits (B, num_classes); ``fit`` trains the
    head only (unfreeze later to fine-tune, as in training.resnet_transfer).
    """
    backbone = keras.Model(pretrained.input, pretrained.layers[-2].output)  # (B, features)
    backbone.trainable = False  # keep the pretrained features; BN stays in inference mode
    inputs = keras.layers.Input(pretrained.input_shape[1:])
    features = backbone(inputs, training=False)
    outputs = keras.layers.Dense(num_classes)(features)  # not the old 1001-way head
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-2),  # only the small head learns: a large step is fine
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def preprocess_image(self, image_path: str, size: int) -> tf.Tensor: ...

    def build_transfer_model(self, pretrained: keras.Model, num_classes: int) -> keras.Model: ...


# -----------------------------------------------------------------------------
# The seed's failures, run offline


def restored_saved_model() -> Any:
    """What ``hub.load(url)`` returns once the files are downloaded: ``tf.saved_model.load``
    of a SavedModel, here a tiny module (one variable and a traced ``__call__``, a stand-in
    for a hub model) saved to a temp dir (no network, and tensorflow_hub is not installed).
    Callable, but not a Keras model."""
    module = tf.Module()
    module.w = tf.Variable(tf.ones((4, 2)))
    module.__call__ = tf.function(
        lambda x: x @ module.w,  # (B, 4) -> (B, 2)
        input_signature=[tf.TensorSpec((None, 4), tf.float32)],
    )
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp)
        return tf.saved_model.load(tmp)


def run_original(hub_model: object, data: dict[str, object]) -> SeedRun:
    """Run ORIGINAL with ``hub.load(url)`` returning ``hub_model`` and the names in ``data``
    defined (the seed's data, which it never loads): what it raised and its namespace."""
    hub = types.SimpleNamespace(load=lambda url: hub_model)
    return run_seed(ORIGINAL, {"hub": hub, **data}, replace=[("import tensorflow_hub as hub", "")])


def imagenet_stand_in() -> keras.Model:
    """A tiny Keras model with the hub ResNet's interface: (B, 224, 224, 3) -> (B, 1001)."""
    inputs = keras.layers.Input((SEED_IMAGE_SIZE, SEED_IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(4, 8, strides=8)(inputs)  # (B, 28, 28, 4)
    x = keras.layers.GlobalAveragePooling2D()(x)  # (B, 4)
    model = keras.Model(inputs, keras.layers.Dense(1001)(x))  # ImageNet's 1000 + background
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def write_images(x: np.ndarray, folder: str, suffix: str) -> list[str]:
    """Save images (N, H, W, 3) float32 in [0, 1] as files; their paths."""
    paths = []
    for i, image in enumerate(x):
        pixels = tf.convert_to_tensor(np.round(image * 255).astype(np.uint8))
        encoded = tf.io.encode_png(pixels) if suffix == "png" else tf.io.encode_jpeg(pixels)
        path = str(Path(folder) / f"{i}.{suffix}")
        tf.io.write_file(path, encoded)
        paths.append(path)
    return paths


# -----------------------------------------------------------------------------
# Data and measurement

PIXEL_CHECK = "preprocess_image pixels match the file, in [0, 1]"


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """``impl.preprocess_image`` on N_FILES lossless PNG files against the pixel values the
    files hold (uint8 / 255, computed in float64). Cheap: no training."""
    x_test = make_data().x_test[:N_FILES]  # (N_FILES, 16, 16, 3) float32 in [0, 1]
    # exactly what the PNGs hold: write_images' uint8 values, divided in float64
    stored = np.round(x_test * 255).astype(np.uint8).astype(np.float64) / 255
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(x_test, tmp, "png")
        got = [np.asarray(impl.preprocess_image(p, IMAGE_SIZE)) for p in paths]
    if any(g.shape != (1, IMAGE_SIZE, IMAGE_SIZE, 3) for g in got):
        return {PIXEL_CHECK: compare(got[0], stored[:1], atol=1e-6, rtol=1e-5)}  # shape: inf
    # (N_FILES, 16, 16, 3): one batch of one image per file
    return {PIXEL_CHECK: compare(np.concatenate(got), stored, atol=1e-6, rtol=1e-5)}


def make_data(seed: int = SEED) -> synthetic.Split:
    """The new task: (N, 16, 16, 3) float32 in [0, 1] images of NUM_CLASSES textures,
    NUM_CLASSES * SHOTS train and 200 test, int labels. (Pre-training uses the source task
    of ``training.resnet_transfer``.)"""
    return synthetic.class_images(
        NUM_CLASSES * SHOTS,
        200,
        NUM_CLASSES,
        size=IMAGE_SIZE,
        noise=0.25,
        max_shift=2,
        seed=TARGET_SEED + 7 + seed,
    )


def check(impl: Answer) -> SolutionReport:
    """The seed's two crashes; ``impl.preprocess_image`` on files; a new head that learns."""
    report = SolutionReport(solution="training.fix_seed_hub_image_classifier")
    data = make_data()
    with tempfile.TemporaryDirectory() as tmp:
        _seed_facts(report, data, tmp)
        png = write_images(data.x_test[:N_FILES], tmp, "png")  # only these are read back
        if not _preprocessing(report, impl, data, png):
            return report  # predict needs a batch
        model = _new_head(report, impl, data)
        _files_vs_arrays(report, impl, model, data, png)
    return report


def _seed_facts(report: SolutionReport, data: synthetic.Split, tmp: str) -> None:
    """1. The seed as written, against what hub.load returns: no fit. 2. Past fit, a Keras
    model with the same interface: now predict gets one image."""
    x_seed = np.zeros((2, SEED_IMAGE_SIZE, SEED_IMAGE_SIZE, 3), np.float32)
    y_seed = np.array([0, 1])
    jpeg = write_images(data.x_test[:1], tmp, "jpg")
    seed_data = {
        "x_train": x_seed,
        "y_train": y_seed,
        "x_val": x_seed,
        "y_val": y_seed,
        "x_test": jpeg,  # paths, as preprocess_image expects
    }
    fit_error = run_original(restored_saved_model(), seed_data).error
    report.expect_raise(
        "original raises AttributeError",
        fit_error,
        AttributeError,
        "has no attribute 'fit'",
        "hub.load returns a restored SavedModel: no fit, no predict",
    )
    keras.utils.set_random_seed(SEED)
    seed = run_original(imagenet_stand_in(), seed_data)
    report.expect_raise(
        "original predict raises ValueError",
        seed.error,
        ValueError,
        "found shape=(32, 224, 3)",
        "one (224, 224, 3) image is read as 224 samples of shape (224, 3)",
    )
    seed_shape = tuple(seed.namespace["preprocess_image"](jpeg[0]).shape)
    report.metric("seed's preprocess_image output shape", str(seed_shape))


def _preprocessing(
    report: SolutionReport, impl: Answer, data: synthetic.Split, png: list[str]
) -> bool:
    """3. The candidate's preprocessing, on lossless PNG files of the test images. Whether
    it gives a batch of one (what predict needs)."""
    batch = impl.preprocess_image(png[0], IMAGE_SIZE)
    shape = tuple(np.shape(batch))
    ok_shape = shape == (1, IMAGE_SIZE, IMAGE_SIZE, 3)
    pixels = reference_comparisons(impl)[PIXEL_CHECK]
    report.metric("preprocess_image output shape", str(shape))
    report.check(
        "preprocess_image gives (1, size, size, 3)",
        float(ok_shape),
        "==",
        1,
        "a batch of one image",
    )
    report.metric("preprocess_image: max |pixel - file|", pixels.max_abs_diff)
    report.check_close(
        PIXEL_CHECK,
        pixels,
        f"{N_FILES} PNG files decoded and scaled by 1/255, against the uint8 values / 255 "
        "in float64: values in [0, 1], one division and a same-size resize, so float32 "
        "rounding stays below 1e-7 and atol 1e-6 + rtol 1e-5 holds on any CPU. Wrong "
        "answers land far out (tolerance_used): no /255 at 2.3e7, [-1, 1] scaling "
        "(x/127.5 - 1) at 1e6, a resize to 2x and back at 3.5e5, no batch axis at inf; "
        + pixels.detail,
    )
    return ok_shape


def _new_head(report: SolutionReport, impl: Answer, data: synthetic.Split) -> keras.Model:
    """4. Transfer: pre-train a backbone on the source task, then impl's NEW head for 4
    classes, trained with the seed's fit call. Returns the trained model."""
    source = make_transfer_data(SEED).source
    x_source, y_source = source.x_train, source.y_train
    keras.utils.set_random_seed(SEED)
    pretrained = build_resnet(x_source.shape[1:], NUM_SOURCE_CLASSES)
    fit_harness(  # legacy Adam: its training step traces ~2 s faster than the newer one's
        pretrained,
        x_source,
        y_source,
        epochs=PRETRAIN_EPOCHS,
        batch_size=64,
        phase="pre-train",
        learning_rate=3e-3,
    )
    keras.utils.set_random_seed(SEED)
    model = impl.build_transfer_model(pretrained, NUM_CLASSES)
    out_shape = tuple(model.output_shape)
    report.metric("model output shape", str(out_shape))
    report.check(
        "new head has one logit per task class",
        float(out_shape == (None, NUM_CLASSES)),
        "==",
        1,
        f"{NUM_CLASSES} classes, not the pretrained head's",
    )
    before = [w.numpy().copy() for w in model.weights]  # to see what fit changes
    # The seed's fit call, on a model that has one now.
    model.fit(
        data.x_train,
        data.y_train,
        epochs=HEAD_EPOCHS,
        batch_size=32,
        verbose=0,
        callbacks=[events.keras_callback("train the new head")],
    )
    # "Train the head with the backbone frozen": every variable but the head's must be
    # bit-identical after fit (a frozen variable is never written, BN statistics included).
    head = {id(w) for w in model.layers[-1].weights}
    changed_backbone = [
        w.name
        for w, old in zip(model.weights, before, strict=True)
        if id(w) not in head and not np.array_equal(w.numpy(), old)
    ]
    report.metric("backbone variables changed by fit", len(changed_backbone))
    report.check(
        "backbone frozen: only the new head changes in fit",
        len(changed_backbone),
        "==",
        0,
        "backbone.trainable = False keeps the pretrained weights bit for bit; without it "
        "Adam(1e-2) rewrites all of them: " + ", ".join(changed_backbone[:3]),
    )
    test_acc = accuracy(model, data.x_test, data.y_test)
    report.metric("chance accuracy", 1.0 / NUM_CLASSES)
    report.check(
        "test accuracy",
        test_acc,
        ">=",
        0.75,
        f"the new head learns the new task from {len(data.x_train)} images; chance is 0.25",
    )
    return model


def _files_vs_arrays(
    report: SolutionReport, impl: Answer, model: keras.Model, data: synthetic.Split, png: list[str]
) -> None:
    """5. One file at a time, as the seed meant to: preprocess_image -> predict. The files
    hold exactly what the arrays hold (rounded to uint8), so the answers must be those for
    the arrays."""
    stored = np.round(data.x_test * 255) / 255  # what the PNG files hold
    file_pred = np.array(
        [
            # predict_on_batch: predict's computation for one batch, without building a
            # data pipeline per call (20 of them cost seconds)
            np.argmax(model.predict_on_batch(impl.preprocess_image(p, IMAGE_SIZE)))
            for p in png[:N_FILES]
        ]
    )
    array_pred = np.argmax(model.predict_on_batch(stored[:N_FILES]), axis=-1)  # (N_FILES,)
    agreement = float((file_pred == array_pred).mean())
    report.metric(f"file-by-file predictions of {N_FILES} images", " ".join(map(str, file_pred)))
    report.metric("file vs array prediction agreement", agreement)
    report.check(
        "predictions from files match predictions from arrays",
        agreement,
        ">=",
        0.95,
        f"preprocess_image + predict, one file at a time, on {N_FILES} files holding exactly "
        "the arrays' values: all should agree; 0.95 lets one near-tie argmax flip",
    )


if __name__ == "__main__":
    print_check_of(__name__)
