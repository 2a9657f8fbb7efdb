"""Debugging the seed's PyTorch digit classifier: a missing import and 5 gradient steps.

The seed's PyTorch answer calls ``F.relu`` without ``import torch.nn.functional as F``
(a ``NameError`` at the first forward pass), feeds the whole training set as one batch,
so its 5 "epochs" are 5 gradient steps, and prints accuracy on the very batch it trained
on, never on test data. PyTorch is not part of this project, so the missing import is
shown statically: the names the snippet reads that nothing binds are exactly ``F`` plus
the data it assumes (``x_train``, ``y_train``). The fix is the same loop written in
TensorFlow: a ``minibatches`` generator (every sample once per epoch, reshuffled) drives
a GradientTape loop that reports accuracy on held-out digits. Five such epochs reach
>= 90% test accuracy; the seed's five full-batch steps (the same loop called with
batch_size = N, same model and optimizer) do not get near that.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events
from aiprep.kit.compare import compare
from aiprep.kit.metrics import accuracy
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.training.digits_mlp import build_model, make_data  # noqa: F401 (ANSWER name)

SEED = 0
EPOCHS = 5
BATCH_SIZE = 64
LEARNING_RATE = 1e-3  # the seed's optim.Adam(lr=0.001)

# The seed's code (002, "3.1 深度学习框架使用", the PyTorch version), verbatim.
ORIGINAL = """
import torch
import torch.nn as nn
import torch.optim as optim

class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return x

model = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)

for epoch in range(5):
    optimizer.zero_grad()
    outputs = model(x_train)
    loss = criterion(outputs, y_train)
    loss.backward()
    optimizer.step()

    _, predicted = torch.max(outputs.data, 1)
    total = predicted.size(0)
    correct = (predicted == y_train).sum().item()
    print('Accuracy:', correct / total)
"""

# Names the seed reads without defining them because it assumes the data is loaded.
SEED_DATA = {"x_train", "y_train"}

# The functions a candidate writes; check(impl) calls only these on impl.
# build_model (Flatten -> Dense(128, relu) -> Dense(10)) is the seed's Net with the ReLU fixed.
ANSWER = ("build_model", "minibatches", "train_and_evaluate")
BASED_ON = "training.digits_mlp"

# -----------------------------------------------------------------------------
# The answer: mini-batches, a training loop over them, evaluation on test data


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One epoch of mini-batches: index arrays (batch_size,) int64 into ``range(n)``.

    A fresh permutation per call, so every sample is used exactly once per epoch and the
    batches differ between epochs; the last batch holds the remaining n % batch_size.
    """
    order = rng.permutation(n)  # (n,)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def train_and_evaluate(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    seed: int = SEED,
) -> float:
    """Train ``model`` in place with Adam over ``minibatches``; return its TEST accuracy.

    Images (N, 28, 28) float32 in [0, 1], labels (N,) int. The seed's PyTorch loop
    (zero_grad / forward / loss / backward / step) in TensorFlow, but one step per
    mini-batch instead of one per epoch; accuracy is measured on ``x_test``, not on the
    batch the model was just trained on.
    """
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # nn.CrossEntropyLoss

    def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:  # a fresh tape: nothing to zero_grad
            loss = loss_fn(y, model(x, training=True))  # (B, 10) logits -> scalar
        grads = tape.gradient(loss, model.trainable_variables)  # loss.backward()
        optimizer.apply_gradients(
            zip(grads, model.trainable_variables, strict=True)
        )  # optimizer.step()
        return loss

    step = tf.function(train_step, reduce_retracing=True)  # full batches, and the last
    rng = np.random.default_rng(seed)
    events.start(f"train, batch size {batch_size}", epochs, unit="epoch")
    for epoch in range(epochs):
        losses = [
            float(step(x_train[idx], y_train[idx]))
            for idx in minibatches(len(x_train), batch_size, rng)
        ]
        events.advance(f"train, batch size {batch_size}", epoch + 1, loss=float(np.mean(losses)))
    events.finish(f"train, batch size {batch_size}")
    test_acc: float = accuracy(model, x_test, y_test)  # held-out data, inference mode
    return test_acc


# -----------------------------------------------------------------------------
# The seed's failures, and the measurement


def unbound_names(source: str) -> set[str]:
    """Names that ``source`` reads but nothing in it binds (import, assignment, def, class,
    argument) and that are not builtins. Flat, scope-blind: a name bound anywhere counts as
    bound, so what is left is certainly undefined wherever it is read."""
    tree = ast.parse(source)
    read: set[str] = set()
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def build_model(self, input_shape: tuple[int, int], num_classes: int) -> keras.Model: ...

    def minibatches(
        self, n: int, batch_size: int, rng: np.random.Generator
    ) -> Iterator[np.ndarray]: ...

    def train_and_evaluate(
        self,
        model: keras.Model,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        *,
        batch_size: int = ...,
    ) -> float: ...


def check(impl: Answer) -> SolutionReport:
    """The seed's undefined ``F``; the mini-batch generator; mini-batch vs full-batch training."""
    report = SolutionReport(solution="training.fix_seed_torch_digits")
    _seed_facts(report)
    _minibatch_generator(report, impl)
    _minibatch_vs_full_batch(report, impl)
    return report


def _seed_facts(report: SolutionReport) -> None:
    """1. The seed, statically (no torch here): which names does nothing define?"""
    unbound = unbound_names(ORIGINAL)
    report.metric("names the seed reads but never defines", " ".join(sorted(unbound)))
    report.seed_fact(
        "original leaves only F undefined, besides its data",
        float(unbound - SEED_DATA == {"F"}),
        "==",
        1,
        "F.relu needs `import torch.nn.functional as F`: NameError at the first forward",
    )


def _minibatch_generator(report: SolutionReport, impl: Answer) -> None:
    """2. The generator: n = 10, batch size 4, two epochs."""
    rng = np.random.default_rng(SEED)
    epochs = [[np.asarray(b) for b in impl.minibatches(10, 4, rng)] for _ in range(2)]
    sizes = [[len(b) for b in epoch] for epoch in epochs]
    orders = [np.concatenate(epoch).tolist() if epoch else [] for epoch in epochs]
    report.metric("batch sizes per epoch (n=10, batch 4)", str(sizes))
    report.check(
        "every sample once per epoch, in batches of 4",
        float(sizes == [[4, 4, 2]] * 2 and all(sorted(o) == list(range(10)) for o in orders)),
        "==",
        1,
        "ceil(n / batch_size) batches covering range(n)",
    )
    report.check(
        "minibatches reshuffle every epoch",
        float(orders[0] != orders[1] and orders[0] != list(range(10))),
        "==",
        1,
        "a new permutation per epoch, not a fixed order",
    )


def _minibatch_vs_full_batch(report: SolutionReport, impl: Answer) -> None:
    """3. Training: the candidate's loop, then the seed's regime (5 full-batch steps) run by
    the SAME candidate code with batch_size = N: same model, optimizer and epochs, so the
    only difference is the number of updates (a loop that ignores batch_size shows here)."""
    data = make_data(SEED)
    input_shape = data.x_train.shape[1:]
    keras.utils.set_random_seed(SEED)
    model = impl.build_model(input_shape, data.num_classes)
    reported = impl.train_and_evaluate(model, data.x_train, data.y_train, data.x_test, data.y_test)
    test_acc = accuracy(model, data.x_test, data.y_test)

    keras.utils.set_random_seed(SEED)
    seed_model = impl.build_model(input_shape, data.num_classes)
    n = len(data.x_train)
    impl.train_and_evaluate(
        seed_model, data.x_train, data.y_train, data.x_test, data.y_test, batch_size=n
    )
    seed_acc = accuracy(seed_model, data.x_test, data.y_test)  # measured here, not reported

    # Accuracies are counts / N_test: multiples of 1 / N_test = 1e-3. float32 holds k / N to
    # within 6e-8 of the float64 value, so a tolerance of 1e-6 accepts any way of computing
    # the same count and rejects a count that differs by even one sample (1e-3, 1000x out).
    n_test = len(data.x_test)
    # (1,)-arrays: compare's detail does not count the failures of a 0-d input
    same_count = compare(np.atleast_1d(float(reported)), np.atleast_1d(test_acc), atol=1e-6)
    report.metric("reported accuracy", float(reported))
    report.metric("mini-batch test accuracy", test_acc)
    report.metric("|reported - test accuracy|", same_count.max_abs_diff)
    report.metric("seed's 5 full-batch steps, test accuracy", seed_acc)
    report.metric("updates: mini-batch vs seed", f"{EPOCHS * -(-n // BATCH_SIZE)} vs {EPOCHS}")
    report.check_close(
        "reported accuracy is the test accuracy",
        same_count,
        f"evaluate on held-out data, not on the training batch; accuracies are multiples of "
        f"1/{n_test} = {1 / n_test:g}, float32 rounding of k/N is < 1e-7, so atol 1e-6 "
        "rejects one sample's difference by 1000x; the seed's training-batch accuracy "
        "(wrong-answer fixture) lands 0.05 off, tolerance_used 5e4; " + same_count.detail,
    )
    report.check(
        "mini-batch test accuracy",
        test_acc,
        ">=",
        0.9,
        "5 epochs of mini-batches learn the 10 digits",
    )
    report.check(
        "seed's 5 full-batch steps test accuracy",
        seed_acc,
        "<=",
        0.7,
        "the candidate's loop with batch_size=N (the seed's regime) stays far below the 0.9 "
        "that mini-batches reach",
    )
    report.check(
        "mini-batch minus seed's full-batch test accuracy",
        test_acc - seed_acc,
        ">=",
        0.2,
        "5 full-batch steps are 5 updates, far too few",
    )


if __name__ == "__main__":
    print_check_of(__name__)
