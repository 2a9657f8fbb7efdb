"""TensorBoard event files of a run: ``aiprep run|verify|smoke --logdir DIR``.

A run's curves are the series its progress events carried (``runner.Job.series``); this
module writes them where ``tensorboard --logdir DIR`` finds them: ``DIR/<id>/<phase>`` is
one TensorBoard run per phase (so the arms of a comparison overlay on one chart, as in the
terminal), each metric a scalar tag at its step; ``DIR/<id>/metrics`` holds the report's
final numeric metrics (step 0) and a text table of its checks.

It writes with TensorBoard's own event writer and protocol buffers, never through
TensorFlow: the parent process of ``aiprep run`` does not import TensorFlow (3 s, and
the run itself happens in a child process).
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiprep.runner import Job

METRICS_RUN = "metrics"  # the folder of the report's final metrics and checks
_files = 0  # event files this process wrote: their names' last part, unique per process


def check_logdir(logdir: Path) -> str:
    """Why ``logdir`` cannot take event files ("" when it can); creates it if missing.

    Called before a run starts, so a typo costs nothing but a one-line error."""
    if logdir.exists() and not logdir.is_dir():
        return (
            f"--logdir {logdir}: is a file, not a folder — give a folder (it is created if missing)"
        )
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"--logdir {logdir}: cannot create it ({e.strerror}) — give a writable folder"
    if not os.access(logdir, os.W_OK | os.X_OK):
        return f"--logdir {logdir}: not writable — give a writable folder"
    return ""


def run_name(phase: str) -> str:
    """A folder name for a phase ("train: dropout" -> "train_dropout")."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", phase).strip("._-")
    return name or "phase"


def write_job(logdir: Path, job: Job, name: str | None = None) -> list[Path]:
    """Write ``job``'s series and final metrics under ``logdir/<name or job.id>``; the runs
    written.

    Each phase gets its own folder (two phases whose names clean to the same folder get
    ``-2``, ``-3``); a metric is a scalar tag, a point one step. Runs written again (a
    second ``aiprep run``) add new event files: TensorBoard shows the newest points."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    base = logdir / run_name(name or job.id)
    written: list[Path] = []
    used: set[str] = {METRICS_RUN}
    for phase, metrics in job.series.items():
        name = run_name(phase)
        folder, n = name, 1
        while folder in used:
            n += 1
            folder = f"{name}-{n}"
        used.add(folder)
        events = []
        for tag, points in metrics.items():
            for step, value in points:
                summary = summary_pb2.Summary(
                    value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
                )
                events.append(
                    event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
                )
        if events:
            written.append(_write(base / folder, events))
    final = _final_events(job)
    if final:
        written.append(_write(base / METRICS_RUN, final))
    return written


def _final_events(job: Job) -> list[object]:
    """The report's numeric metrics as scalars at step 0, and its checks as a text table."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

    if job.report is None:
        return []
    values = [
        summary_pb2.Summary.Value(tag=m.name, simple_value=float(m.value))
        for m in job.report.metrics
        if isinstance(m.value, int | float) and not isinstance(m.value, bool)
    ]
    if job.report.checks:
        rows = ["| check | value | rule | passed |", "|---|---|---|---|"]
        for c in job.report.checks:
            name = c.name.replace("|", "\\|")  # the text plugin reads Markdown
            rows.append(
                f"| {name} | {c.value:.6g} | {c.op} {c.threshold:.6g} | "
                f"{'yes' if c.passed else 'NO'} |"
            )
        text = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=["\n".join(rows).encode("utf-8")]
        )
        values.append(
            summary_pb2.Summary.Value(
                tag="checks",
                tensor=text,
                metadata=summary_pb2.SummaryMetadata(
                    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
                ),
            )
        )
    if not values:
        return []
    return [
        event_pb2.Event(wall_time=time.time(), step=0, summary=summary_pb2.Summary(value=values))
    ]


def _write(folder: Path, events: list[object]) -> Path:
    """One event file in ``folder``: the file-version record, then ``events``.

    TensorBoard's ``RecordWriter`` on a plain file, not its ``EventFileWriter``: that one
    opens files through ``tensorboard.compat.tf``, which imports TensorFlow when it is
    installed (3 s, and the TensorFlow C++ logs on the user's terminal)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    global _files
    _files += 1
    # The name TensorBoard's own writers give (it sorts a run's files by it).
    name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.{_files}"
    header = event_pb2.Event(
        wall_time=now,
        file_version="brain.Event:2",
        source_metadata=event_pb2.SourceMetadata(writer="aiprep"),
    )
    writer = RecordWriter(open(folder / name, "wb"))  # noqa: SIM115 (closed below)
    try:
        for event in [header, *events]:
            writer.write(event.SerializeToString())
    finally:
        writer.close()
    return folder
