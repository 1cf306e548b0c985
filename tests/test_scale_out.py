"""Start-up and scale-out: a fully cached audit never loads the model, torchrun ranks split the
shards (rank 0 alone writes, with the predictions of one process), `embed --shard i/N` fills the
cache for array jobs, and bad input (a part that does not exist, a cache folder that cannot be
written) is one line and exit 2 before anything is encoded."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clipaudit.cli import main
from small_taxonomies import TWO_PROBES

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARD = "12"  # 84 test faces: 7 shards
TAXONOMY = TWO_PROBES


@pytest.fixture()
def taxonomy_file(tmp_path) -> Path:
    path = tmp_path / "scale-out.yaml"
    path.write_text(TAXONOMY)
    return path


def _audit(taxonomy_file, face_folder, model_dir, out, cache_dir) -> list[str]:
    return ["audit", "--taxonomy", str(taxonomy_file), "--data", f"csv:{face_folder / 'labels.csv'}",
            "--model", str(model_dir), "--out", str(out), "--cache-dir", str(cache_dir), "--device", "cpu",
            "--quiet", "--min-n", "5", "--shard-images", SHARD]


def _forbid_model_loading(monkeypatch) -> None:
    import clipaudit.models

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(clipaudit.models, "load_model", no_loading)


def test_a_fully_cached_audit_never_loads_the_model(taxonomy_file, face_folder, tiny_clip_dir, tmp_path,
                                                      monkeypatch):
    cache_dir = tmp_path / "cache"
    assert main(_audit(taxonomy_file, face_folder, tiny_clip_dir, tmp_path / "cold", cache_dir)) == 0
    cold = json.loads((tmp_path / "cold" / "results.json").read_text())["manifest"]
    assert (cold["model_loaded"], cold["images_encoded"], cold["images_from_cache"]) == (True, 84, 0)

    _forbid_model_loading(monkeypatch)
    assert main(_audit(taxonomy_file, face_folder, tiny_clip_dir, tmp_path / "warm", cache_dir)) == 0
    warm = json.loads((tmp_path / "warm" / "results.json").read_text())["manifest"]
    assert (warm["model_loaded"], warm["images_encoded"], warm["images_from_cache"]) == (False, 0, 84)
    assert warm["model"] == cold["model"], "the memoised model info is the loaded model's"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cold" / "predictions.parquet"),
                                  pd.read_parquet(tmp_path / "warm" / "predictions.parquet"))


def test_array_jobs_fill_the_cache_then_the_audit_needs_no_model(taxonomy_file, face_folder, tiny_clip_dir,
                                                                  tmp_path):
    cache_dir = tmp_path / "cache"
    common = ["--data", f"csv:{face_folder / 'labels.csv'}", "--model", str(tiny_clip_dir), "--cache-dir",
              str(cache_dir), "--device", "cpu", "--quiet", "--shard-images", SHARD]
    for index in range(3):
        assert main(["embed", *common, "--shard", f"{index}/3", "--taxonomy", str(taxonomy_file)]) == 0
    # The audit in a fresh interpreter: with everything cached it imports neither torch nor transformers.
    script = ("import sys; from clipaudit.cli import main; code = main(sys.argv[1:]); "
              "print('heavy:', sorted(name for name in ('torch', 'transformers') if name in sys.modules)); "
              "sys.exit(code)")
    completed = subprocess.run(
        [sys.executable, "-c", script, *_audit(taxonomy_file, face_folder, tiny_clip_dir, tmp_path / "out", cache_dir)],
        cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "heavy: []" in completed.stdout
    manifest = json.loads((tmp_path / "out" / "results.json").read_text())["manifest"]
    assert (manifest["model_loaded"], manifest["images_from_cache"]) == (False, 84)


def test_torchrun_ranks_split_the_shards_and_rank_0_writes_what_one_process_would(
        taxonomy_file, face_folder, tiny_clip_dir, tmp_path):
    single = tmp_path / "single"
    assert main(_audit(taxonomy_file, face_folder, tiny_clip_dir, single, tmp_path / "single-cache")) == 0
    out = tmp_path / "ranks"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "clipaudit",
         *_audit(taxonomy_file, face_folder, tiny_clip_dir, out, tmp_path / "shared-cache")],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "rank 1 of 2" in completed.stdout + completed.stderr
    manifest = json.loads((out / "results.json").read_text())["manifest"]
    # Rank 0 encoded its shards (0, 2, 4, 6: 12 + 12 + 12 + 12 images) and read rank 1's.
    assert (manifest["images_encoded"], manifest["images_from_cache"]) == (48, 36)
    pd.testing.assert_frame_equal(pd.read_parquet(single / "predictions.parquet"),
                                  pd.read_parquet(out / "predictions.parquet"))
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("ranks")) == ["ranks"]


@pytest.mark.parametrize("part, expected", [
    ("3/2", "part 3 does not exist among 2 parts"),
    ("x", "expected i/N with 0 <= i < N"),
    ("1/0", "expected i/N with 0 <= i < N"),
])
def test_a_shard_that_does_not_exist_is_one_line_and_exit_2(part, expected, tmp_path, capsys, monkeypatch):
    _forbid_model_loading(monkeypatch)
    code = main(["embed", "--data", "synthetic:8", "--model", "demo", "--cache-dir", str(tmp_path / "cache"),
                 f"--shard={part}"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and expected in error, error
    assert not (tmp_path / "cache").exists(), "nothing was written"


def test_a_cache_folder_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    _forbid_model_loading(monkeypatch)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    code = main(["embed", "--data", "synthetic:8", "--model", "demo", "--cache-dir", str(blocked / "cache")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "a-file is not a folder" in error, error

    import clipaudit.files

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(clipaudit.files.tempfile, "mkdtemp", read_only)
    monkeypatch.setenv("CLIPAUDIT_CACHE_DIR", str(tmp_path / "read-only"))
    code = main(["embed", "--data", "synthetic:8", "--model", "demo"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "Read-only file system" in error, error


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through folder permissions")
def test_a_cache_folder_without_write_permission_is_one_line_and_exit_2(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code = main(["embed", "--data", "synthetic:8", "--model", "demo", "--cache-dir", str(locked / "cache")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "cannot write there" in error, error


def test_under_torchrun_demo_retrain_trains_on_rank_0_alone(tmp_path, capsys, monkeypatch):
    import clipaudit.demo.model as demo_model

    monkeypatch.setattr(demo_model, "retrain_demo_model",
                        lambda *args, **kwargs: pytest.fail("a rank other than 0 retrained the demo model"))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["demo", "--retrain", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "rank 1 of 2: demo --retrain trains and encodes on rank 0 alone" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
