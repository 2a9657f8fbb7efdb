"""`aiprep export --results`: measured evidence beside each runnable question, and the
hand-written SVG charts it draws (well-formed, inert, rendered by a real browser)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiprep import svg_chart
from aiprep.cli import cli
from aiprep.exporters.evidence import charts
from conftest import FIXTURES

QUIZ_BANK = FIXTURES / "quiz"  # beta.mean_estimate is its one runnable question
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ["<script>alert(1)</script>", 'say "hi" & <b onload="x()">', "it's & done"]


def entry(qid: str, *, passed: bool = True, series: dict[str, Any] | None = None) -> Any:
    """One solution's entry as `aiprep smoke --json` writes it (runner.Job.to_dict())."""
    return {
        "id": qid,
        "solution": qid,
        "state": "passed" if passed else "failed",
        "wall_s": 3.2,
        "message": "" if passed else "check failed: mean error",
        "report": {
            "solution": qid,
            "passed": passed,
            "metrics": [{"name": "samples", "value": 4096, "unit": ""}],
            "checks": [
                {
                    "name": "mean error",
                    "value": 0.0123 if passed else 0.5,
                    "op": "<=",
                    "threshold": 0.05,
                    "passed": passed,
                    "detail": "",
                }
            ],
            "seed_facts": [],
        },
        "series": series
        if series is not None
        else {
            "estimate": {"loss": [[1, 0.9], [2, 0.5], [3, 0.2]], "accuracy": [[3, 0.8]]},
            "baseline": {"loss": [[1, 1.0], [2, 0.9], [3, float("nan")], [4, 0.8]]},
        },
    }


def write_report(path: Path, *entries: Any, measured_at: str | None = "2026-11-30") -> Path:
    data: dict[str, Any] = {
        "format": "aiprep-smoke",
        "version": 1,
        "bank_digest": None,
        "onednn": None,
        "wall_s": 3.5,
        "jobs": 1,
        "solutions": list(entries),
    }
    if measured_at:
        data["measured_at"] = measured_at
    path.write_text(json.dumps(data))
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--bank", str(QUIZ_BANK), "export", *args])
    return result.exit_code, result.output


def assert_inert(svg: str) -> ET.Element:
    """The SVG parses as XML and can do nothing: no script, no on* handler, no link out."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    for element in root.iter():
        assert element.tag.removeprefix(SVG) not in ("script", "foreignObject", "a", "image")
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert "href" not in name.lower(), (element.tag, name)
            assert "javascript:" not in value.lower()
    return root


# -----------------------------------------------------------------------------
# The chart


def test_chart_draws_a_line_per_series_with_axes_and_legend() -> None:
    svg = svg_chart.line_chart(
        "loss by step", [("train", [(0, 2.0), (10, 1.0), (20, 0.5)]), ("val", [(10, 1.5)])]
    )
    root = assert_inert(svg)
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 1 and len(lines[0].get("points", "").split()) == 3
    assert len(root.findall(f"{SVG}circle")) == 1  # a one-point series is a dot
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "loss by step" in texts and "train" in texts and "val" in texts
    assert "0" in texts and "20" in texts  # x ticks at round values across the range
    assert root.get("width") == "480"
    # Same input, same bytes (exports are byte-stable).
    assert svg == svg_chart.line_chart(
        "loss by step", [("train", [(0, 2.0), (10, 1.0), (20, 0.5)]), ("val", [(10, 1.5)])]
    )


def test_chart_points_stay_inside_the_plot_and_higher_values_are_higher() -> None:
    svg = svg_chart.line_chart("t", [("a", [(0, 0.0), (1, 1.0), (2, float("inf")), (3, 0.5)])])
    root = ET.fromstring(svg)
    points = [
        tuple(map(float, p.split(",")))
        for p in root.find(f"{SVG}polyline").get("points", "").split()
    ]  # type: ignore[union-attr]
    assert len(points) == 3  # the infinite point is left out
    assert points[1][1] < points[2][1] < points[0][1]  # SVG's y grows downwards
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    assert all(0 <= x <= width and 0 <= y <= height for x, y in points)


@pytest.mark.parametrize("name", HOSTILE)
def test_chart_text_from_solutions_is_escaped(name: str) -> None:
    svg = svg_chart.line_chart(name, [(name, [(0, 1), (1, 2)]), ("x", [])])
    root = assert_inert(svg)
    assert "<script" not in svg and "<b " not in svg
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert name in texts  # the title reads back as the same text
    assert "x (no data)" in texts


def test_charts_of_a_series_group_phases_by_metric() -> None:
    found = charts("q.one", entry("q.one")["series"])
    assert [c.metric for c in found] == ["loss"]  # accuracy has one point: no curve
    root = assert_inert(found[0].svg)
    assert len(root.findall(f"{SVG}polyline")) == 2  # a line per phase
    assert found[0].file == "q.one-loss.svg"
    hostile = charts("q", {HOSTILE[0]: {"../../x": [[0, 1], [1, 2]]}})
    assert "/" not in hostile[0].file and ".." not in hostile[0].file.removesuffix(".svg")
    assert_inert(hostile[0].svg)


# -----------------------------------------------------------------------------
# The exports


def test_html_export_shows_the_checks_and_an_inline_chart(tmp_path: Path) -> None:
    report = write_report(tmp_path / "smoke.json", entry("beta.mean_estimate"))
    out = tmp_path / "set.html"
    code, text = invoke("--format", "html", "-o", str(out), "--results", str(report))
    assert code == 0, text
    page = out.read_text()
    article = page.split('id="q-beta-mean_estimate"')[1].split("</article>")[0]
    assert "passed: 1/1 checks hold" in article and "measured 2026-11-30" in article
    assert "mean error" in article and "0.0123" in article and "&lt;= 0.05" in article
    # A Chinese sheet says it in Chinese.
    zh = tmp_path / "zh.html"
    code, text = invoke("--format", "html", "-o", str(zh), "--lang", "zh", "--results", str(report))
    assert code == 0, text
    assert "通过: 1/1 项检查成立" in zh.read_text() and "测于 2026-11-30" in zh.read_text()
    assert "samples: <b>4096</b>" in article
    assert article.count("<svg") == 1 and "<polyline" in article
    # The questions without a solution show nothing extra.
    other = page.split('id="q-alpha-clipping"')[1].split("</article>")[0]
    assert "<svg" not in other and "evidence" not in other
    assert "<script" not in page
    again = tmp_path / "again.html"
    assert invoke("--format", "html", "-o", str(again), "--results", str(report))[0] == 0
    assert again.read_bytes() == out.read_bytes()  # same input, same bytes


def test_a_failed_run_says_so(tmp_path: Path) -> None:
    report = write_report(tmp_path / "s.json", entry("beta.mean_estimate", passed=False))
    out = tmp_path / "set.html"
    assert invoke("--format", "html", "-o", str(out), "--results", str(report))[0] == 0
    page = out.read_text()
    assert "FAILED: 0/1 checks hold" in page and "check failed: mean error" in page
    assert 'class="evidence failed"' in page


def test_markdown_export_writes_the_charts_beside_it(tmp_path: Path) -> None:
    report = write_report(tmp_path / "smoke.json", entry("beta.mean_estimate"), measured_at=None)
    out = tmp_path / "set.md"
    code, text = invoke("--format", "md", "-o", str(out), "--results", str(report))
    assert code == 0, text
    md = out.read_text()
    assert "| ✓ | mean error | 0.0123 | &lt;= 0.05 |" in md
    assert "![loss by step](<set.assets/beta.mean_estimate-loss.svg>)" in md
    assert "measured 20" in md  # no date in the report: the file's own date
    assert_inert((tmp_path / "set.assets" / "beta.mean_estimate-loss.svg").read_text())
    assert sorted(p.name for p in (tmp_path / "set.assets").iterdir()) == [
        "beta.mean_estimate-loss.svg"
    ]


def test_without_results_the_export_is_unchanged(tmp_path: Path) -> None:
    empty = write_report(tmp_path / "smoke.json")
    plain, measured = tmp_path / "a.html", tmp_path / "b.html"
    assert invoke("--format", "html", "-o", str(plain))[0] == 0
    assert invoke("--format", "html", "-o", str(measured), "--results", str(empty))[0] == 0
    assert plain.read_bytes() == measured.read_bytes()


def test_a_report_from_another_bank_warns_once(tmp_path: Path) -> None:
    report = write_report(tmp_path / "smoke.json", entry("elsewhere.one"), entry("elsewhere.two"))
    code, text = invoke(
        "--format", "html", "-o", str(tmp_path / "s.html"), "--results", str(report)
    )
    assert code == 0
    assert text.count("warning:") == 1 and "2 result(s)" in text and "another bank" in text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ('{"format": "aiprep-questions"}', "not an `aiprep smoke --json` report"),
        ('{"format": "aiprep-smoke", "solutions": [{"x": 1}]}', "solution #1 has no id"),
    ],
)
def test_a_bad_results_file_is_one_line_naming_it(
    tmp_path: Path, content: str | None, words: str
) -> None:
    path = tmp_path / "smoke.json"
    if content is not None:
        path.write_text(content)
    code, text = invoke("--format", "html", "-o", str(tmp_path / "s.html"), "--results", str(path))
    assert code == 2
    error = [line for line in text.splitlines() if str(path) in line]
    assert len(error) == 1 and words in error[0] and "aiprep smoke" in error[0], text
    assert not (tmp_path / "s.html").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--format", "json"), "md or html"),
        (("--format", "html", "--no-answers"), "--no-answers"),
        (("--format", "md", "-o", "-"), "-o FILE.md"),
    ],
)
def test_results_refuses_what_it_cannot_show(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    report = write_report(tmp_path / "smoke.json", entry("beta.mean_estimate"))
    out = ("-o", str(tmp_path / "x")) if "-o" not in args else ()
    code, text = invoke(*args, *out, "--results", str(report))
    assert code == 2 and words in text


# -----------------------------------------------------------------------------
# A real browser


def browser() -> str | None:
    return next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )


@pytest.mark.skipif(
    browser() is None,
    reason="no headless browser (chromium, chromium-browser or google-chrome) on PATH; "
    "`apt-get install chromium` to run it",
)
def test_a_browser_renders_the_page_with_its_charts(tmp_path: Path) -> None:
    report = write_report(
        tmp_path / "smoke.json",
        entry("beta.mean_estimate", series={p: {"loss": [[0, 1], [5, 0.5]]} for p in HOSTILE}),
    )
    page = tmp_path / "set.html"
    assert invoke("--format", "html", "-o", str(page), "--results", str(report))[0] == 0
    binary = browser()
    assert binary is not None
    flags = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count("<svg") == 1 and dom.count("<polyline") == len(HOSTILE)
    assert "<script" not in dom  # the phase names stayed text
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=900,3000", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 1000
