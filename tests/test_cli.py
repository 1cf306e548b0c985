"""End-to-end through the CLI: audit, demo, validate, stats; every bad input is one line and exit 2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from clipaudit.cli import main
from clipaudit.schemas import validate_results

TAXONOMY = """\
name: e2e
description: a small taxonomy for the end-to-end tests
templates: ["a photo of a {label}."]
probes:
  - id: gender
    kind: attribute
    target: gender
    classes:
      - {id: Male, label: man}
      - {id: Female, prompts: ["a photo of a woman", "a close-up photo of a woman"]}
    slices: [race, gender, [race, gender]]
  - id: denigration
    kind: harm
    classes:
      - {id: thief, category: crime}
      - {id: gorilla, category: non_human}
      - {id: black_man, label: black man}
      - {id: person}
    slices: [race, gender, age]
"""


@pytest.fixture()
def taxonomy_file(tmp_path) -> Path:
    path = tmp_path / "e2e.yaml"
    path.write_text(TAXONOMY)
    return path


def run_cli(*argv: str) -> int:
    return main([str(argument) for argument in argv])


def audit_args(taxonomy_file, data, model, out, cache_dir, *extra):
    return ("audit", "--taxonomy", taxonomy_file, "--data", data, "--model", model, "--out", out,
            "--cache-dir", cache_dir, "--device", "cpu", "--quiet", *extra)


def test_audit_writes_the_three_outputs(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir):
    out = tmp_path / "out"
    code = run_cli(*audit_args(taxonomy_file, f"csv:{face_folder / 'labels.csv'}", tiny_clip_dir, out, cache_dir, "--min-n", "5"))
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["model-index.yaml", "predictions.parquet", "report.html", "results.json", "summary.md"]
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert results["schema_version"] == "1.0"
    assert [probe["classes"] for probe in results["probes"]] == [["Male", "Female"], ["thief", "gorilla", "black_man", "person"]]
    manifest = results["manifest"]
    assert manifest["taxonomy"]["sha256"] and manifest["model"]["weights_sha256"]
    assert manifest["dataset"]["n_used"] == 84 and manifest["device"] == "cpu" and manifest["dtype"] == "fp32"
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == 2 * 84
    assert {"probe", "image_id", "race", "gender", "age", "target", "prediction", "scores"} <= set(predictions.columns)
    assert predictions["image_id"].iloc[0].startswith("img/")
    assert predictions[predictions["probe"] == "denigration"]["target"].isna().all()
    assert (predictions[predictions["probe"] == "gender"]["target"] == predictions[predictions["probe"] == "gender"]["gender"]).all()
    report = (out / "report.html").read_text()
    assert "<svg" in report and "e2e" in report


def test_second_audit_with_another_taxonomy_encodes_no_image(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir, monkeypatch):
    data = f"csv:{face_folder / 'labels.csv'}"
    assert run_cli(*audit_args(taxonomy_file, data, tiny_clip_dir, tmp_path / "a", cache_dir)) == 0
    from clipaudit.models.hf import HFZeroShotModel

    def no_encoding(self, pixel_values):
        raise AssertionError("an image was encoded again")

    monkeypatch.setattr(HFZeroShotModel, "image_features", no_encoding)  # every image path goes through it
    assert run_cli(*audit_args("clip_denigration", data, tiny_clip_dir, tmp_path / "b", cache_dir)) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["manifest"]["image_embeddings_from_cache"] is True


def test_stats_recomputes_results_from_predictions_alone(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir):
    out = tmp_path / "audit"
    assert run_cli(*audit_args(taxonomy_file, f"csv:{face_folder / 'labels.csv'}", tiny_clip_dir, out, cache_dir)) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "predictions.parquet", alone / "predictions.parquet")
    again = tmp_path / "again"
    assert run_cli("stats", alone / "predictions.parquet", "--taxonomy", taxonomy_file, "--out", again, "--min-n", "5") == 0
    original = json.loads((out / "results.json").read_text())
    recomputed = json.loads((again / "results.json").read_text())
    validate_results(recomputed)
    assert sorted(p.name for p in again.iterdir()) == ["model-index.yaml", "report.html", "results.json", "summary.md"]
    # Same predictions, other min-n: same group counts.
    first = original["probes"][1]["slices"][0]["metrics"][0]["groups"]
    second = recomputed["probes"][1]["slices"][0]["metrics"][0]["groups"]
    assert [(g["group"], g["n"], g["successes"]) for g in first] == [(g["group"], g["n"], g["successes"]) for g in second]


def test_stats_does_not_import_torch(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir):
    import subprocess
    import sys

    out = tmp_path / "audit"
    assert run_cli(*audit_args(taxonomy_file, f"csv:{face_folder / 'labels.csv'}", tiny_clip_dir, out, cache_dir)) == 0
    script = (
        "import sys; from clipaudit.cli import main; "
        f"code = main(['stats', {str(out / 'predictions.parquet')!r}, '--taxonomy', {str(taxonomy_file)!r}, '--out', {str(tmp_path / 's')!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_validate_reports_ok_and_problems(taxonomy_file, tmp_path, capsys):
    assert run_cli("validate", taxonomy_file) == 0
    assert "ok" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text(TAXONOMY.replace("kind: harm", "kind: harm\n    colour: red").replace("{id: gorilla", "{id: thief"))
    assert run_cli("validate", broken) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert any("colour" in line and ":" in line for line in lines)
    assert any("duplicate" in line and "thief" in line for line in lines)


def test_validate_against_data_and_model(taxonomy_file, face_folder, tiny_clip_dir, cache_dir, capsys):
    assert run_cli("validate", taxonomy_file, "--data", f"csv:{face_folder / 'labels.csv'}",
                   "--model", tiny_clip_dir, "--cache-dir", cache_dir) == 0
    long_prompt = taxonomy_file.parent / "long.yaml"
    long_prompt.write_text(TAXONOMY.replace("{id: person}", "{id: person, prompts: ['" + ("a very long prompt " * 20).strip() + "']}"))
    assert run_cli("validate", long_prompt, "--model", tiny_clip_dir, "--cache-dir", cache_dir) == 2
    assert "tokens" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, expected",
    [
        ("malformed_yaml", "yaml"),
        ("unknown_key", "colour"),
        ("target_missing", "ethnicity"),
        ("csv_missing_file", "img/0003.jpg"),
        ("not_an_image", "img/0004.jpg"),
        ("model_missing", "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, expected, taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir, capsys):
    root = tmp_path / "data"
    shutil.copytree(face_folder, root)
    data = f"csv:{root / 'labels.csv'}"
    model = str(tiny_clip_dir)
    if case == "malformed_yaml":
        taxonomy_file.write_text(TAXONOMY + "  - id: [unclosed\n")
    elif case == "unknown_key":
        taxonomy_file.write_text(TAXONOMY.replace("kind: harm", "kind: harm\n    colour: red"))
    elif case == "target_missing":
        taxonomy_file.write_text(TAXONOMY.replace("target: gender", "target: ethnicity"))
    elif case == "csv_missing_file":
        (root / "img" / "0003.jpg").unlink()
    elif case == "not_an_image":
        (root / "img" / "0004.jpg").write_bytes(b"GIF89a but not really")
    elif case == "model_missing":
        model = str(tmp_path / "no-model-here")
    out = tmp_path / "out"
    code = run_cli(*audit_args(taxonomy_file, data, model, out, cache_dir))
    captured = capsys.readouterr()
    assert code == 2
    error_lines = [line for line in captured.err.splitlines() if line.startswith("clipaudit: error:")]
    assert len(error_lines) == 1, captured.err
    assert expected.lower() in error_lines[0].lower()
    assert "Traceback" not in captured.err
    assert not out.exists() or not any(out.iterdir())


def test_usage_errors_are_one_line(capsys):
    assert run_cli("audit", "--data", "x") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "required" in err[0]


def test_python_dash_m_works(tmp_path):
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "clipaudit", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert "audit" in completed.stdout and "demo" in completed.stdout


def test_utkface_race_against_fairface_classes_is_refused_with_the_reason(tiny_clip_dir, tmp_path, cache_dir, capsys):
    from clipaudit.data.faces import render_face
    import numpy as np

    folder = tmp_path / "utk"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index, (age, gender, race) in enumerate([(25, 0, 0), (30, 1, 1), (5, 0, 2), (70, 1, 3)] * 2):
        render_face("White", "Male", "20-29", rng=rng).save(folder / f"{age}_{gender}_{race}_2017010{index:04d}.jpg")
    out = tmp_path / "out"
    code = run_cli(*audit_args("fairface_demographics", f"utkface:{folder}", tiny_clip_dir, out, cache_dir))
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert "UTKFace has 5 race groups" in error[0] and "'Asian'" in error[0]
    assert not out.exists()


def test_what_the_data_cannot_answer_is_recorded_as_warnings(face_folder, tiny_clip_dir, tmp_path, cache_dir):
    out = tmp_path / "out"
    # The face folder holds three age bins only: the other six age classes can never be confirmed.
    assert run_cli(*audit_args("fairface_demographics", f"csv:{face_folder / 'labels.csv'}", tiny_clip_dir, out, cache_dir)) == 0
    warnings = json.loads((out / "results.json").read_text())["manifest"]["warnings"]
    assert any("'0-2' never occurs in column 'age'" in warning for warning in warnings)
    assert "never occurs in column" in (out / "report.html").read_text()


@pytest.mark.parametrize("command", ["audit", "stats", "sweep", "compare"])
def test_unwritable_out_is_refused_before_any_work(command, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = {
        "audit": ["audit", "--taxonomy", "clip_denigration", "--data", "synthetic", "--model", "demo", "--out", blocker],
        "stats": ["stats", tmp_path / "p.parquet", "--taxonomy", "clip_denigration", "--out", blocker],
        "sweep": ["sweep", "--taxonomy", "clip_denigration", "--data", "synthetic", "--model", "demo", "--out", blocker],
        "compare": ["compare", tmp_path, tmp_path, "--out", blocker],
    }[command]
    assert run_cli(*argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"clipaudit: error: --out {blocker}: exists and is not a folder"]


def test_audit_without_baseline_removes_an_earlier_verdict(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "junit.xml").write_text("<testsuite failures='1'/>")
    (out / "compare.md").write_text("FAILED")
    assert run_cli(*audit_args(taxonomy_file, f"csv:{face_folder / 'labels.csv'}", tiny_clip_dir, out, cache_dir)) == 0
    assert not (out / "junit.xml").exists() and not (out / "compare.md").exists()


def test_stats_refuses_a_taxonomy_with_other_prompts_than_the_audit_used(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir, capsys):
    out = tmp_path / "audit"
    assert run_cli(*audit_args(taxonomy_file, f"csv:{face_folder / 'labels.csv'}", tiny_clip_dir, out, cache_dir)) == 0
    edited = tmp_path / "edited.yaml"
    edited.write_text(TAXONOMY.replace("label: man}", "label: guy}"))
    capsys.readouterr()
    assert run_cli("stats", out / "predictions.parquet", "--taxonomy", edited, "--out", tmp_path / "again") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "a photo of a guy." in error[0] and "a photo of a man." in error[0]


def test_public_api_names_resolve_without_torch():
    import subprocess
    import sys

    script = (
        "import sys, clipaudit\n"
        "names = [n for n in clipaudit.__all__ if n != '__version__']\n"
        "[getattr(clipaudit, n) for n in names]\n"
        "assert 'torch' not in sys.modules, 'a public name imported torch'\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_a_cold_audit_names_an_image_found_bad_while_encoding_in_one_line(taxonomy_file, face_folder, tiny_clip_dir,
                                                                          tmp_path, cache_dir, capsys):
    root = tmp_path / "data"
    shutil.copytree(face_folder, root)
    (root / "img" / "0007.jpg").write_bytes(b"\x89PNG\r\n\x1a\n cut short")  # only a header: read, then found bad
    out = tmp_path / "out"
    code = run_cli(*audit_args(taxonomy_file, f"csv:{root / 'labels.csv'}", tiny_clip_dir, out, cache_dir))
    assert code == 2 and not out.exists()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "1 image cannot be read: img/0007.jpg (not an image)" in lines[0], lines
    assert "--skip-bad-images" in lines[0]


def test_skip_bad_images_counts_them_in_the_manifest(taxonomy_file, face_folder, tiny_clip_dir, tmp_path, cache_dir):
    root = tmp_path / "data"
    shutil.copytree(face_folder, root)
    (root / "img" / "0005.jpg").unlink()
    out = tmp_path / "out"
    code = run_cli(*audit_args(taxonomy_file, f"csv:{root / 'labels.csv'}", tiny_clip_dir, out, cache_dir, "--skip-bad-images"))
    assert code == 0
    dataset = json.loads((out / "results.json").read_text())["manifest"]["dataset"]
    assert (dataset["n_images"], dataset["n_used"], dataset["n_skipped"]) == (84, 83, 1)
    assert dataset["skipped_images"] == [{"image_id": "img/0005.jpg", "reason": "missing"}]
    assert "img/0005.jpg" not in set(pd.read_parquet(out / "predictions.parquet")["image_id"])


def test_options_are_never_abbreviated(capsys) -> None:
    """`audit --shard 1/2` is no abbreviation of --shard-images: audit has no --shard (embed has)."""
    from clipaudit.cli import main

    assert main(["audit", "--shard", "1/2", "--taxonomy", "clip_denigration", "--data", "synthetic",
                 "--model", "demo", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unrecognized arguments: --shard 1/2" in err[0], err
