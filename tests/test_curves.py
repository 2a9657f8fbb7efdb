"""A run's curves: the series its events carry, the terminal charts, the TensorBoard logs."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiprep import curves, tensorboard_log
from aiprep.cli import cli
from aiprep.kit.report import SolutionReport
from aiprep.runner import Job, run_solution
from conftest import FIXTURES, GOOD_BANK, RUNNER_BANK

BASELINE, DROPOUT = "train: baseline", "train: dropout"


@pytest.fixture(scope="module")
def curves_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner bank plus crash.curves and a question for it, so the CLI can run it."""
    root = tmp_path_factory.mktemp("curves") / "bank"
    shutil.copytree(RUNNER_BANK, root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(FIXTURES / "curves" / "curves.py", root / "solutions" / "crash" / "curves.py")
    question = (root / "questions" / "crash" / "exit_hard.yaml").read_text(encoding="utf-8")
    (root / "questions" / "crash" / "curves.yaml").write_text(
        question.replace("exit_hard", "curves"), encoding="utf-8"
    )
    return root


@pytest.fixture(scope="module")
def curves_run(curves_bank: Path) -> Job:
    """crash.curves: two phases of five epochs, a mid-epoch and an end-of-epoch point each."""
    job = run_solution(curves_bank, "crash.curves")
    assert job.passed, job.message
    return job


def test_series_hold_every_advance_value_but_epoch_and_non_numbers(curves_run: Job) -> None:
    assert list(curves_run.series) == [BASELINE, DROPOUT]  # in the order they came
    base = curves_run.series[BASELINE]
    assert sorted(base) == ["loss", "val_loss"]  # "epoch" is an x axis, not a metric
    # Steps are the events' `completed`; two loss points per epoch, in order.
    assert [p[0] for p in base["loss"]] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert base["loss"][1] == [4, 0.5] and base["loss"][9] == [20, pytest.approx(0.5**5)]
    # val_loss at epoch ends only, epoch 3's NaN left out.
    assert [p[0] for p in base["val_loss"]] == [4, 8, 16, 20]
    assert all(math.isfinite(v) for _, v in base["val_loss"])
    assert curves_run.epochs[DROPOUT][:3] == [[2, 1], [4, 1], [6, 2]]


def test_series_survive_to_dict_and_from_dict(curves_run: Job) -> None:
    data = json.loads(json.dumps(curves_run.to_dict()))
    assert data["series"] == curves_run.series
    back = Job.from_dict(data)
    assert back.series == curves_run.series and back.epochs == curves_run.epochs
    old = {k: v for k, v in data.items() if k not in ("series", "epochs")}  # an older report
    assert Job.from_dict(old).series == {} and Job.from_dict(old).epochs == {}


def test_the_good_banks_progress_events_become_a_series() -> None:
    job = run_solution(GOOD_BANK, "beta.mean_estimate")
    assert list(job.series) == ["estimate"]
    [[step, error]] = job.series["estimate"]["error"]
    assert step == 2 and 0 <= error <= 0.1
    assert job.epochs == {}


def test_charts_plot_per_epoch_and_pair_validation_with_few_phases(curves_run: Job) -> None:
    drawn = curves.charts(curves_run.series, curves_run.epochs)
    assert [c.family for c in drawn] == ["loss"]  # val_loss shares the loss chart
    chart = drawn[0]
    assert chart.xlabel == "epoch"
    labels = [line.label for line in chart.lines]
    assert labels == [
        f"{BASELINE} loss",
        f"{BASELINE} val_loss",
        f"{DROPOUT} loss",
        f"{DROPOUT} val_loss",
    ]
    loss = chart.lines[0]
    # One point per epoch: the epoch's last (its end), not the mid-epoch one.
    assert loss.x == [1, 2, 3, 4, 5] and loss.y == pytest.approx([0.5**e for e in range(1, 6)])
    assert chart.lines[1].x == [1, 2, 4, 5] and chart.lines[1].validation


def test_charts_split_train_and_validation_with_many_phases_loss_first() -> None:
    series = {
        f"arm {i}": {
            "accuracy": [[1, 0.5], [2, 0.6]],
            "val_accuracy": [[1, 0.4], [2, 0.5]],
            "lr": [[1, 0.1], [2, 0.05]],
            "loss": [[1, 1.0], [2, 0.8]],
            "val_loss": [[1, 1.1], [2, 0.9]],
        }
        for i in range(3)
    }
    drawn = curves.charts(series)
    # Loss, accuracy, then the others; validation after; at most four charts.
    assert [c.family for c in drawn] == ["loss", "accuracy", "lr", "val_loss"]
    assert drawn[0].xlabel == "step"  # no epochs: per step
    assert [line.label for line in drawn[0].lines] == ["arm 0", "arm 1", "arm 2"]


def test_a_single_point_is_no_chart() -> None:
    assert curves.charts({"p": {"loss": [[1, 0.5]], "val_loss": [[1, 0.6]]}}) == []
    assert curves.render({"p": {"loss": [[1, 0.5]]}}) == ""


def test_render_draws_each_phase_and_a_legend(curves_run: Job) -> None:
    text = curves.render(curves_run.series, curves_run.epochs, width=80, color=False)
    lines = text.splitlines()
    # 0.03 to 0.75: a range over 20x reads on a log axis, and the title says so.
    assert lines[0].strip() == "loss (log scale)"
    flat = curves.render({"p": {"loss": [[1, 1.0], [2, 0.5]]}}, color=False)
    assert flat.splitlines()[0].strip() == "loss"
    assert max(len(line) for line in lines) <= 80  # readable in 80 columns
    assert any("┌" in line for line in lines) and "epoch" in text
    assert f"━ {BASELINE} loss" in text and f"• {DROPOUT} val_loss" in text
    assert "\x1b[" not in text  # color=False: plain text
    assert "\x1b[36m" in curves.render(curves_run.series, curves_run.epochs, color=True)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_show_draws_on_a_terminal_only(curves_run: Job) -> None:
    pipe = _Stream(tty=False)
    assert not curves.show(curves_run.series, curves_run.epochs, stream=pipe)
    assert pipe.getvalue() == ""
    terminal = _Stream(tty=True)
    assert curves.show(curves_run.series, curves_run.epochs, stream=terminal)
    assert "loss" in terminal.getvalue() and "┌" in terminal.getvalue()


def test_run_draws_unless_no_plot_and_json_carries_the_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[Any] = []
    monkeypatch.setattr(curves, "show", lambda series, epochs=None: drawn.append(series))
    args = ["--bank", str(GOOD_BANK), "run", "beta.mean_estimate"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert len(drawn) == 1 and "estimate" in drawn[0]
    assert CliRunner().invoke(cli, [*args, "--no-plot"]).exit_code == 0
    assert len(drawn) == 1  # --no-plot: not even asked
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert len(drawn) == 1  # --json: stdout is the JSON alone
    data = json.loads(result.output)
    assert data["series"]["estimate"]["error"][0][0] == 2


def test_no_chart_on_a_non_terminal_stdout(curves_bank: Path) -> None:
    """CliRunner's stdout is no terminal: the real show() prints nothing there."""
    result = CliRunner().invoke(cli, ["--bank", str(curves_bank), "run", "crash.curves"])
    assert result.exit_code == 0, result.output
    assert "1/1 checks passed" in result.output
    assert "log scale" not in result.output and f"━ {BASELINE}" not in result.output


def _spawn_run(bank: Path, *args: str) -> str:
    import pexpect

    env = dict(os.environ, TERM="xterm", NO_COLOR="1", COLUMNS="100")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "aiprep", "--bank", str(bank), "run", "crash.curves", *args],
        env=env,
        encoding="utf-8",
        dimensions=(50, 100),
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before or "")


def test_a_terminal_gets_the_chart_and_no_plot_turns_it_off(curves_bank: Path) -> None:
    shown = _spawn_run(curves_bank)
    assert "loss (log scale)" in shown and f"━ {BASELINE} loss" in shown
    assert f"• {DROPOUT} val_loss" in shown
    assert shown.index("1/1 checks passed") < shown.index("loss (log scale)")  # after the report
    quiet = _spawn_run(curves_bank, "--no-plot")
    assert "1/1 checks passed" in quiet and "log scale" not in quiet


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_logs_read_back_with_tensorboards_reader(
    curves_run: Job, tmp_path: Path
) -> None:
    written = tensorboard_log.write_job(tmp_path, curves_run, "crash.curves")
    base = tmp_path / "crash.curves"
    assert written == [base / "train_baseline", base / "train_dropout", base / "metrics"]
    scalars = _scalars(base / "train_baseline")
    assert sorted(scalars) == ["loss", "val_loss"]
    assert [s for s, _ in scalars["loss"]] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert scalars["val_loss"][0] == (4, pytest.approx(0.35))
    assert [s for s, _ in scalars["val_loss"]] == [4, 8, 16, 20]
    metrics = _scalars(base / "metrics")
    assert metrics == {"final loss": [(0, pytest.approx(0.5**5))]}  # "arm" is no number

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(base / "metrics"))
    acc.Reload()
    [checks] = acc.Tensors("checks")
    assert b"| loss falls |" in checks.tensor_proto.string_val[0]


def test_tensorboard_run_names_are_folders_and_do_not_collide(tmp_path: Path) -> None:
    assert tensorboard_log.run_name("train: L2 weight decay") == "train_L2_weight_decay"
    assert tensorboard_log.run_name("../..") == "phase"
    job = Job("q", "q", report=SolutionReport("q"))
    job.series = {"a b": {"loss": [[1, 1.0]]}, "a/b": {"loss": [[1, 2.0]]}}
    written = tensorboard_log.write_job(tmp_path, job)
    assert [p.name for p in written] == ["a_b", "a_b-2"]
    assert all(p.parent == tmp_path / "q" for p in written)


def test_bad_logdir_is_one_line_before_the_run(tmp_path: Path) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    for command in (["run", "beta.mean_estimate"], ["smoke", "--ids", "beta.mean_estimate"]):
        result = CliRunner().invoke(
            cli, ["--bank", str(GOOD_BANK), *command, "--logdir", str(file)]
        )
        assert result.exit_code == 2
        assert f"--logdir {file}: is a file" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_run_and_smoke_write_logdir(tmp_path: Path) -> None:
    for command in (["run"], ["smoke", "--ids"]):
        logdir = tmp_path / command[0]
        args = ["--bank", str(GOOD_BANK), *command, "beta.mean_estimate", "--logdir", str(logdir)]
        assert CliRunner().invoke(cli, args).exit_code == 0
        base = logdir / "beta.mean_estimate"
        assert _scalars(base / "estimate")["error"][0][0] == 2
        assert "estimate" in _scalars(base / "metrics")


def test_writing_tensorboard_logs_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from aiprep import tensorboard_log, curves\n"
        "from aiprep.kit.report import SolutionReport\n"
        "from aiprep.runner import Job\n"
        "job = Job('q', 'q', report=SolutionReport('q'))\n"
        "job.report.metric('m', 1.0)\n"
        "job.report.check('c', 1.0, '<=', 2.0)\n"
        "job.series = {'p': {'loss': [[1, 1.0], [2, 0.5]]}}\n"
        f"assert tensorboard_log.write_job(Path({str(tmp_path)!r}), job)\n"
        "assert curves.render(job.series)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_does_not_import_plotext() -> None:
    code = (
        "import sys\n"
        "from aiprep.cli import cli\n"
        f"cli.main(['--bank', {str(GOOD_BANK)!r}, 'list'], standalone_mode=False)\n"
        "print('plotext' in sys.modules, 'tensorboard' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
