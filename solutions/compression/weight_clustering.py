"""Weight clustering with tfmot: 16 shared values per kernel, a file gzip shrinks ~4.8x.

Clustering (weight sharing) replaces each Dense kernel's weights by the nearest of 16
centroids, found by k-means (k-means++ initialization), then fine-tunes the centroids with
the assignments fixed, and strips the clustering wrappers so plain Dense layers remain.
The kernels keep their float32 shape and dtype, so the raw TFLite file is as large as
before; what shrinks is its entropy: 16 distinct values per kernel are 4 bits of
information per weight, which gzip finds. The check trains an MLP (~179k weights),
clusters it with ``impl``, and measures, on the float32 TFLite files that would ship: at
most 16 distinct values per kernel, plain layers left, the gzipped file >= 4x smaller
(about 4.8x measured) and test accuracy within one point of the original's. A control run
here records what clustering without fine-tuning gives.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

# Imported first: tfmot picks tf_keras for itself (see compression.halve_model_size).
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.halve_model_size import (
    ShippedFiles,
    make_data,
    trained_teacher,
)
from solutions.compression.int8_quantization import float_tflite

SEED = 0
CLUSTERS = 16
TEACHER_EPOCHS = 15
FINE_TUNE_EPOCHS = 2
BATCH_SIZE = 64

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("cluster",)
BASED_ON = "compression.halve_model_size"  # its data, model, gzip and TFLite accuracy

# -----------------------------------------------------------------------------
# The answer: cluster, fine-tune the centroids, strip


def cluster(
    model: keras.Model, x: np.ndarray, y: np.ndarray, number_of_clusters: int
) -> keras.Model:
    """A copy of ``model`` whose Dense kernels each hold ``number_of_clusters`` values.

    ``model``: trained, (B, ...) -> logits (B, K); left unchanged. ``x`` (N, ...) float32 and
    ``y`` (N,) int labels: the fine-tuning data. Returns a plain Keras model (clustering
    wrappers stripped), same architecture, same outputs.
    """
    clustered = with_clustering(model, number_of_clusters)
    # Fine-tuning: each weight's cluster is fixed; the gradients of its members are summed
    # into the shared centroid, which moves to where the loss wants it.
    clustered.compile(
        keras.optimizers.Adam(1e-4),  # small steps: the centroids start near-right
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    clustered.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=FINE_TUNE_EPOCHS,
        verbose=0,
        callbacks=[events.keras_callback("fine-tune clustered model")],
    )
    # Remove the wrappers (original weights, centroids, indices): the kernels now hold the
    # centroid values and the layers are plain Dense again, ready to convert or save.
    return tfmot.clustering.keras.strip_clustering(clustered)


def with_clustering(model: keras.Model, number_of_clusters: int) -> keras.Model:
    """A copy of ``model`` with each layer wrapped for clustering, centroids from k-means."""
    # cluster_weights wraps the layers of the model it is given, sharing their weights:
    # clustering `model` itself would overwrite the caller's kernels. Work on a copy.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())  # clone_model copies the architecture only
    return tfmot.clustering.keras.cluster_weights(
        copy,
        number_of_clusters=number_of_clusters,
        # k-means++ spreads the initial centroids over the weight distribution (LINEAR,
        # evenly spaced between min and max, wastes centroids on the sparse tails).
        cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS,
    )


# -----------------------------------------------------------------------------
# Measurement: distinct values, wrappers left, gzipped size, accuracy


def train_original(data: synthetic.Split) -> keras.Model:
    """The model to cluster: halve_model_size's teacher MLP, 432 -> 256 -> 256 -> 10 (~179k
    weights), trained on ``data`` (``make_data()``) with its labels."""
    return trained_teacher(TEACHER_EPOCHS)


def kernel_levels(model: keras.Model) -> list[int]:
    """Distinct values in each kernel variable of ``model`` (biases are not clustered)."""
    return [len(np.unique(w.numpy())) for w in model.weights if w.name.endswith("kernel:0")]


def wrapped_layers(model: keras.Model) -> int:
    """Layers of ``model`` that are still tfmot clustering wrappers (not plain layers)."""
    return sum("Cluster" in type(layer).__name__ for layer in model.layers)


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def cluster(
        self, model: keras.Model, x: np.ndarray, y: np.ndarray, number_of_clusters: int
    ) -> keras.Model: ...


def check(impl: Answer) -> SolutionReport:
    """Train an MLP; cluster it with impl (16 clusters); measure the shipped files."""
    report = SolutionReport(solution="compression.weight_clustering")
    data = make_data()  # the halve_model_size data: 12x12x3 noisy class images, 10 classes
    model = train_original(data)
    original = float_tflite(model)  # measured before impl can touch the model
    report.metric("original parameters", int(model.count_params()))

    keras.utils.set_random_seed(SEED)
    clustered = impl.cluster(model, data.x_train, data.y_train, CLUSTERS)
    wrapped = wrapped_layers(clustered)
    report.check(
        "layers still wrapped by clustering",
        wrapped,
        "==",
        0,
        "strip_clustering leaves plain Dense layers; a wrapper keeps the original float "
        "weights, the centroids and an index per weight, and is not what you export",
    )
    if wrapped:
        # Measure the rest on what the model would export as (a wrapped model does not
        # convert to TFLite), so that this one mistake fails this one check.
        clustered = tfmot.clustering.keras.strip_clustering(clustered)
    levels = kernel_levels(clustered)
    report.metric("distinct values per kernel", str(levels))
    report.check(
        "most distinct values in a clustered kernel",
        max(levels, default=float("nan")),
        "<=",
        CLUSTERS,
        f"{CLUSTERS} clusters per kernel, so at most {CLUSTERS} values (a float kernel of "
        "this MLP has ~65k; no kernel found: NaN fails)",
    )

    _measure_files(report, data, model, original, clustered)
    return report


def _measure_files(
    report: SolutionReport,
    data: synthetic.Split,
    model: keras.Model,
    original: bytes,
    clustered: keras.Model,
) -> None:
    """Gzipped size and test accuracy of the float32 TFLite files: the original (``model``'s
    file, made before impl ran), impl's clustered model, and this module's clustering without
    fine-tuning (a control, recorded as metrics)."""
    files = ShippedFiles(report, data)  # records "<name>: gzipped TFLite size", "... accuracy"
    files.measure("original", original)
    shipped = float_tflite(clustered)
    files.measure("clustered", shipped)
    report.metric("clustered: raw float32 TFLite size", len(shipped) / 1024, "KB")
    report.check(
        "size ratio gzipped original / clustered",
        files.size["original"] / files.size["clustered"],
        ">=",
        4.0,
        "16 values = 4 bits of entropy per 32-bit weight (8x at best); gzip's Huffman coding "
        "gets ~4.8x here; trained float weights barely compress (~1.1x), so an unclustered "
        "kernel gives ~1",
    )
    report.check(
        "accuracy drop original - clustered",
        files.acc["original"] - files.acc["clustered"],
        "<=",
        0.01,
        "at most one point on 3000 test images; 2 clusters per kernel lose ~5",
    )
    keras.utils.set_random_seed(SEED)
    unrefined = tfmot.clustering.keras.strip_clustering(with_clustering(model, CLUSTERS))
    files.measure("control, clustered without fine-tuning", float_tflite(unrefined))
    drop = files.acc["original"] - files.acc["control, clustered without fine-tuning"]
    report.metric("control: accuracy drop without fine-tuning", drop)


if __name__ == "__main__":
    print_check_of(__name__)
