"""Progress events from a running solution to the CLI that shows them.

A solution reports its training through :func:`start` and :func:`advance` (or the
Keras callback from :func:`keras_callback`). Inside ``aiprep run`` the child process
connects the events to a pipe read by the parent's live display; anywhere else
(a plain ``python -m solutions...`` or a test) they go nowhere. Each check a report
records is sent too (``check``), so a runner can end a run whose verdict is decided.
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any

_sink: IO[str] | None = None


def connect(fd: int) -> None:
    """Send events to file descriptor ``fd`` as JSON lines (called by the child runner)."""
    global _sink
    _sink = os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def disconnect() -> None:
    """Send nothing more from this process: one forked from a run (``kit.zygote``) must not
    write into the run's own events."""
    global _sink
    _sink = None


def emit(event: str, **fields: Any) -> None:
    """Write one event; silently nothing when no display is connected."""
    if _sink is None:
        return
    try:
        _sink.write(json.dumps({"event": event, **fields}, default=float) + "\n")
    except (BrokenPipeError, ValueError):
        pass


def start(phase: str, total: int, unit: str = "step") -> None:
    """Announce a phase of work (e.g. ``"train CNN"``) with ``total`` units to do."""
    emit("start", phase=phase, total=int(total), unit=unit)


def advance(phase: str, completed: int, **values: float) -> None:
    """Report that ``completed`` units of ``phase`` are done, with current values (loss...)."""
    emit("advance", phase=phase, completed=int(completed), values=values)


def finish(phase: str) -> None:
    """Mark ``phase`` done, also when it stopped before its total (e.g. early stopping)."""
    emit("finish", phase=phase)


def keras_callback(phase: str) -> Any:
    """A ``tf_keras`` callback that reports steps and loss of ``fit`` as phase ``phase``.

    Updates are throttled to ~10 per second so a fast loop is not slowed by its display.
    """
    import tf_keras as keras

    class _ProgressCallback(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
            self._steps = int(self.params.get("steps") or 1)
            self._epochs = int(self.params.get("epochs") or 1)
            self._epoch = 0
            self._last = 0.0
            start(phase, self._steps * self._epochs, unit="step")

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
            now = time.monotonic()
            if now - self._last < 0.1:
                return
            self._last = now
            values = {"epoch": self._epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            advance(phase, self._epoch * self._steps + batch + 1, **values)

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            values = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            advance(phase, (epoch + 1) * self._steps, **values)

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            finish(phase)

    return _ProgressCallback()
