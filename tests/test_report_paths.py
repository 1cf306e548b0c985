"""No absolute local path in what clipaudit writes (issue 13, point 7): outputs record paths
relative to the output folder; pages show an absolute path, where one reaches them, by its last part."""
from __future__ import annotations

import json
import re
from pathlib import Path

import report_fixtures
from clipaudit.files import relative_location, shown_location, without_local_paths
from clipaudit.pipeline.results import write_outputs

#: An absolute POSIX path or Windows drive path inside text (not the '/' of a relative one or a URL).
ABSOLUTE_PATH = re.compile(r'(?<![\w.:/~-])(/(?:tmp|home|work|Users|root|var|private|opt|mnt)/|[A-Za-z]:\\)')


def absolute_paths_in(text: str) -> list[str]:
    return [text[max(0, m.start() - 40): m.end() + 40] for m in ABSOLUTE_PATH.finditer(text)]


def test_relative_location_of_paths_and_specs(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "audit"
    assert relative_location(str(tmp_path / "cache"), base=out) == "../../cache"
    assert relative_location(str(out / "x.csv"), base=out) == "x.csv"
    assert relative_location(f"csv:{tmp_path}/data/labels.csv", base=out) == "csv:../../data/labels.csv"
    assert relative_location(f"open_clip:ViT-B-32:{tmp_path}/ckpt.pt", base=out) == "open_clip:ViT-B-32:../../ckpt.pt"
    for unchanged in ("synthetic", "synthetic:500:1", "hf:HuggingFaceM4/FairFace:0.25:validation",
                      "openai/clip-vit-base-patch32", "2026-11-30T00:47:22+00:00", "relative/folder"):
        assert relative_location(unchanged, base=out) == unchanged


def test_shown_location_keeps_the_name_only() -> None:
    assert shown_location("/home/me/models/my-clip") == "\u2026/my-clip"
    assert shown_location("fairface:/data/fairface") == "fairface:\u2026/fairface"
    assert shown_location("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"


def test_outputs_record_no_absolute_path(tmp_path: Path) -> None:
    results = report_fixtures.build()
    local = tmp_path / "elsewhere"
    manifest = results["manifest"]
    manifest["model"]["spec"] = manifest["model"]["id"] = str(local / "models" / "my-clip")
    manifest["dataset"]["spec"] = f"csv:{local}/data/labels.csv"
    manifest["taxonomy"]["path"] = str(local / "taxonomies" / "mine.yaml")
    out = tmp_path / "out"
    write_outputs(results, report_fixtures.predictions_table(), out)
    written = json.loads((out / "results.json").read_text(encoding="utf-8"))["manifest"]
    assert written["model"]["spec"] == "../elsewhere/models/my-clip"
    assert written["dataset"]["spec"] == "csv:../elsewhere/data/labels.csv"
    assert written["taxonomy"]["path"] == "../elsewhere/taxonomies/mine.yaml"
    for name in ("results.json", "report.html", "summary.md", "model-index.yaml"):
        text = (out / name).read_text(encoding="utf-8")
        assert str(tmp_path) not in text, name
        assert absolute_paths_in(text) == [], name


def test_a_page_rendered_from_absolute_paths_still_shows_none(tmp_path: Path) -> None:
    """Documents written before paths were relative: the page shows each path's last part."""
    from clipaudit.report import render_model_index, render_report, render_summary_markdown

    results = report_fixtures.build()
    results["manifest"] = without_local_paths(results["manifest"], base=Path("/"))  # no-op on relative text
    results["manifest"]["model"]["id"] = "/home/someone/models/my-clip"
    results["manifest"]["dataset"]["spec"] = "utkface:/home/someone/data/utk"
    for text in (render_report(results), render_summary_markdown(results), render_model_index(results)):
        assert "/home/someone" not in text
    assert "my-clip" in render_report(results)


def test_compare_outputs_name_the_audits_relative_to_their_folder(tmp_path: Path) -> None:
    from clipaudit.cli import main

    table = report_fixtures.predictions_table()
    for name in ("baseline", "candidate"):
        write_outputs(report_fixtures.build(predictions=table), table, tmp_path / "audits" / name)
    out = tmp_path / "checks" / "compare"
    assert main(["compare", str(tmp_path / "audits" / "baseline"), str(tmp_path / "audits" / "candidate"),
                 "--out", str(out)]) == 0
    document = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert document["baseline"]["path"] == "../../audits/baseline"
    for name in ("compare.json", "compare.md", "compare.html", "junit.xml"):
        text = (out / name).read_text(encoding="utf-8")
        assert str(tmp_path) not in text and absolute_paths_in(text) == [], name
