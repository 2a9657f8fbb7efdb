"""Writing outputs safely: `-o -` for stdout, and never a rename over a non-file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiprep.cli import cli
from aiprep.files import NotAFileError, write_atomic
from conftest import GOOD_BANK


def aiprep(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aiprep", "--bank", str(GOOD_BANK), *args],
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_export_dash_writes_stdout_and_no_file(tmp_path: Path) -> None:
    done = aiprep("export", "--format", "json", "-o", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"{") and b'"alpha.gradient_clipping"' in done.stdout
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_export_to_dev_stdout_writes_through_without_force(tmp_path: Path) -> None:
    done = aiprep("export", "--format", "md", "-o", "/dev/stdout", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"gradient clipping" in done.stdout.lower()


def test_binary_export_refuses_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "aiprep", "--bank", str(GOOD_BANK)]
            + ["export", "--format", "anki", "-o", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert b"binary format" in done.stderr and b"Traceback" not in done.stderr


def test_binary_export_into_a_pipe(tmp_path: Path) -> None:
    done = aiprep("export", "--format", "qti", "-o", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout[:2] == b"PK"  # a zip


def test_symlink_is_followed_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target.name)
    result = CliRunner().invoke(
        cli, ["--bank", str(GOOD_BANK), "export", "--format", "md", "-o", str(link)]
    )
    assert result.exit_code == 2 and "exists; pass --force" in result.output
    result = CliRunner().invoke(
        cli, ["--bank", str(GOOD_BANK), "export", "--format", "md", "-o", str(link), "--force"]
    )
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text().startswith("# aiprep questions")


def test_write_atomic_follows_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("new.txt")
    write_atomic(link, b"hello")
    assert link.is_symlink() and (tmp_path / "new.txt").read_bytes() == b"hello"


def test_write_atomic_writes_through_a_pipe_or_device(tmp_path: Path) -> None:
    write_atomic(Path("/dev/null"), b"x", force=True)
    assert Path("/dev/null").is_char_device()  # still the device, not a regular file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, b"through")
        assert os.read(reader, 100) == b"through"
    finally:
        os.close(reader)
    assert not fifo.is_file()


def test_write_atomic_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NotAFileError, match="is a folder"):
        write_atomic(tmp_path, b"x", force=True)
    assert tmp_path.is_dir()


def test_export_to_a_symlinked_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "to_d").symlink_to("d")
    done = aiprep("export", "--format", "md", "-o", "to_d", "--force", cwd=tmp_path)
    assert done.returncode == 2
    assert b"is a directory" in done.stderr
    assert b"Traceback" not in done.stderr and (tmp_path / "to_d").is_symlink()


def test_progress_export_dash_is_stdout(tmp_path: Path) -> None:
    done = aiprep("progress", "export", "-o", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.lstrip().startswith(b"{") and list(tmp_path.iterdir()) == []


def test_practice_into_a_folder_and_to_stdout(tmp_path: Path) -> None:
    from conftest import RUNNER_BANK

    qid = next(
        f"{p.parent.name}.{p.stem}"
        for p in sorted((RUNNER_BANK / "questions").glob("*/*.yaml"))
        if "\nsolution:" in p.read_text()
    )
    (tmp_path / "out").mkdir()
    args = ["--bank", str(RUNNER_BANK), "practice", qid, "-o"]
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / f"{qid}.py").is_file()
    result = CliRunner().invoke(cli, [*args, "-"])
    assert result.exit_code == 0 and "NotImplementedError" in result.output
