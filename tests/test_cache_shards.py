"""The sharded image cache: resumable after kill -9, damage detected and repaired, shared by
concurrent processes through claims, stale claims taken over, and cache keys that never serve a
changed input."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from clipaudit.data import load_dataset
from clipaudit.embed import embed_images, image_cache_folder
from clipaudit.embed import engine
from clipaudit.embed.claims import STALE_AFTER_S, try_claim
from clipaudit.embed.shards import plan_shards
from clipaudit.models import load_model

SHARD = 12  # images per shard in these tests: the 84 test faces make 7 shards
REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI with every shard's encoding slowed down (so a test can act mid-encode), logging each
# shard this process encodes to the file named by $SHARD_LOG.
SLOW_CLI = textwrap.dedent("""
    import os, sys, time
    from clipaudit.embed import engine
    encode_rows = engine.encode_rows
    def slow(model, dataset, rows, **kwargs):
        rows = list(rows)
        time.sleep(float(os.environ.get("SHARD_DELAY_S", "0.4")))
        with open(os.environ["SHARD_LOG"], "a") as log:
            log.write(f"{os.getpid()} {rows[0]}\\n")
        return encode_rows(model, dataset, rows, **kwargs)
    engine.encode_rows = slow
    from clipaudit.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def model(tiny_clip_dir, tmp_path_factory):
    return load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=tmp_path_factory.mktemp("models"))


def _dataset(face_folder, cache_dir):
    return load_dataset(f"csv:{face_folder / 'labels.csv'}", cache_dir=cache_dir)


def _count_encoded_shards(monkeypatch) -> list[int]:
    """Patch the encoder to record the first row of every shard it encodes."""
    started: list[int] = []
    original = engine.encode_rows

    def counting(model, dataset, rows, **kwargs):
        rows = list(rows)
        started.append(rows[0])
        return original(model, dataset, rows, **kwargs)
    monkeypatch.setattr(engine, "encode_rows", counting)
    return started


def _embed_command(face_folder, tiny_clip_dir, cache_dir) -> list[str]:
    return ["embed", "--data", f"csv:{face_folder / 'labels.csv'}", "--model", str(tiny_clip_dir),
            "--cache-dir", str(cache_dir), "--shard-images", str(SHARD), "--device", "cpu", "--quiet"]


def _slow_cli(arguments: list[str], log: Path, delay_s: float = 0.4) -> subprocess.Popen:
    environment = {**os.environ, "SHARD_LOG": str(log), "SHARD_DELAY_S": str(delay_s), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *arguments], cwd=REPO_ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_shards_are_written_as_they_complete_and_read_back(model, face_folder, cache_dir):
    dataset = _dataset(face_folder, cache_dir)
    first = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    folder = image_cache_folder(cache_dir, model.info, dataset.image_ids_key)
    assert sorted(path.name for path in folder.glob("*.npz")) == [shard.name for shard in plan_shards(84, SHARD)]
    assert not list(folder.glob("*.claim")), "claims are released"
    assert (first.images_encoded, first.images_from_cache, first.from_cache) == (84, 0, False)
    second = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    assert (second.images_encoded, second.images_from_cache, second.from_cache) == (0, 84, True)
    np.testing.assert_array_equal(first.rows, np.arange(84))
    np.testing.assert_array_equal(first.embeddings, second.embeddings)


def test_a_kill_9_mid_encode_resumes_with_the_missing_shards_only(model, face_folder, tiny_clip_dir, tmp_path,
                                                                   monkeypatch):
    cache_dir, log = tmp_path / "cache", tmp_path / "encoded.log"
    process = _slow_cli(_embed_command(face_folder, tiny_clip_dir, cache_dir), log)
    dataset = _dataset(face_folder, tmp_path / "other-cache")
    folder = image_cache_folder(cache_dir, model.info, dataset.image_ids_key)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and not (
            len(list(folder.glob("rows-*.npz"))) >= 2 and list(folder.glob("*.claim"))):
        time.sleep(0.02)  # two shards written and a third claimed: kill it mid-encode
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()[-2000:]
    done = {path.name for path in folder.glob("rows-*.npz")}
    assert 2 <= len(done) < 7
    assert list(folder.glob("*.claim")), "the killed process left its claim on the shard it was encoding"

    started = _count_encoded_shards(monkeypatch)
    resumed = embed_images(model, _dataset(face_folder, cache_dir), cache_dir=cache_dir, progress=False,
                           shard_images=SHARD)
    missing = [shard.start for shard in plan_shards(84, SHARD) if shard.name not in done]
    assert sorted(started) == missing
    assert resumed.images_encoded == 84 - SHARD * len(done)
    fresh = embed_images(model, dataset, cache_dir=tmp_path / "fresh", progress=False, shard_images=SHARD)
    np.testing.assert_allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)


def test_a_damaged_shard_is_named_and_encoded_again(model, face_folder, cache_dir, monkeypatch, capsys):
    dataset = _dataset(face_folder, cache_dir)
    first = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    folder = image_cache_folder(cache_dir, model.info, dataset.image_ids_key)
    shards = plan_shards(84, SHARD)
    truncated, flipped = folder / shards[1].name, folder / shards[4].name
    truncated.write_bytes(truncated.read_bytes()[:300])
    data = bytearray(flipped.read_bytes())
    position = data.index(np.float32(first.embeddings[4 * SHARD, 0]).tobytes())  # inside the embeddings array
    data[position] ^= 0x01
    flipped.write_bytes(bytes(data))
    started = _count_encoded_shards(monkeypatch)
    again = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    assert sorted(started) == [shards[1].start, shards[4].start]
    lines = capsys.readouterr().err.splitlines()
    assert any(shards[1].name in line and "damaged" in line for line in lines)
    assert any(shards[4].name in line and "damaged" in line for line in lines)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)


def test_two_processes_share_a_cache_without_encoding_a_shard_twice(model, face_folder, tiny_clip_dir, tmp_path,
                                                                    monkeypatch):
    cache_dir, log = tmp_path / "cache", tmp_path / "encoded.log"
    other = _slow_cli(_embed_command(face_folder, tiny_clip_dir, cache_dir), log, delay_s=0.5)
    dataset = _dataset(face_folder, cache_dir)
    folder = image_cache_folder(cache_dir, model.info, dataset.image_ids_key)
    deadline = time.monotonic() + 120
    while not list(folder.glob("*.claim")) and other.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # start while the other process holds its first claim
    original = engine.encode_rows

    def slow(model, dataset, rows, **kwargs):
        rows = list(rows)
        time.sleep(0.5)
        with open(log, "a") as stream:
            stream.write(f"{os.getpid()} {rows[0]}\n")
        return original(model, dataset, rows, **kwargs)
    monkeypatch.setattr(engine, "encode_rows", slow)
    here = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    _, stderr = other.communicate(timeout=300)
    assert other.returncode == 0, stderr[-2000:]
    encoded = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(start) for _, start in encoded) == [shard.start for shard in plan_shards(84, SHARD)], \
        "each shard encoded exactly once"
    assert {pid for pid, _ in encoded} == {str(os.getpid()), str(other.pid)}, "both processes did part of the work"
    assert here.images_encoded + here.images_from_cache == 84 and len(here.rows) == 84


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_claim(path: Path, **owner) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": "t", **owner}))


def test_a_claim_of_a_dead_process_or_silent_node_is_taken_over(tmp_path):
    from clipaudit.embed.claims import this_owner

    here = this_owner()
    dead = tmp_path / "dead.claim"
    _write_claim(dead, pid=_dead_pid(), pid_namespace=here["pid_namespace"])
    claim = try_claim(dead)
    assert claim is not None
    claim.release()
    assert not dead.exists()

    silent = tmp_path / "silent.claim"
    _write_claim(silent, host="another-node", pid=1)
    assert try_claim(silent) is None, "a fresh claim of another node is respected"
    old = time.time() - STALE_AFTER_S - 5
    os.utime(silent, (old, old))
    claim = try_claim(silent)
    assert claim is not None and json.loads(silent.read_text())["pid"] == os.getpid()
    claim.release()

    live = tmp_path / "live.claim"
    _write_claim(live, pid=os.getpid(), pid_namespace=here["pid_namespace"])
    assert try_claim(live) is None, "a running process keeps its claim"


def test_a_changed_image_never_reads_the_old_embeddings(model, face_folder, tmp_path, monkeypatch):
    import shutil

    root, cache_dir = tmp_path / "faces", tmp_path / "cache"
    shutil.copytree(face_folder, root)
    old = time.time() - 60
    for path in (root / "img").iterdir():
        os.utime(path, (old, old))  # older than the racy window: their digests are memoised
    spec = f"csv:{root / 'labels.csv'}"
    first = load_dataset(spec, cache_dir=cache_dir)
    embed_images(model, first, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    # One byte of the picture changed in place, same size, the old modification time restored.
    target = root / "img" / "0005.jpg"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))
    os.utime(target, (old, old))
    second = load_dataset(spec, cache_dir=cache_dir)
    assert second.fingerprint != first.fingerprint
    started = _count_encoded_shards(monkeypatch)
    embed_images(model, second, cache_dir=cache_dir, progress=False, shard_images=SHARD, skip_bad_images=True)
    assert started, "the changed dataset was encoded, not read from the old shards"


def test_an_unchanged_folder_is_fingerprinted_without_reading_an_image(face_folder, tmp_path, monkeypatch):
    import shutil

    from clipaudit.data.base import FolderImageDataset

    root, cache_dir = tmp_path / "faces", tmp_path / "cache"
    shutil.copytree(face_folder, root)
    old = time.time() - 60
    for path in (root / "img").iterdir():
        os.utime(path, (old, old))
    spec = f"csv:{root / 'labels.csv'}"
    expected = load_dataset(spec, cache_dir=cache_dir).fingerprint
    assert load_dataset(spec, cache_dir=None).fingerprint == expected, "the memo does not change the fingerprint"

    def no_read(self, index):
        raise AssertionError("an image was read although its digest is memoised")
    monkeypatch.setattr(FolderImageDataset, "_read_image_bytes", no_read)
    assert load_dataset(spec, cache_dir=cache_dir).fingerprint == expected


def test_a_changed_checkpoint_file_changes_its_identity(tiny_clip_dir, tmp_path):
    import shutil

    from clipaudit.models.checkpoint_files import checkpoint_files_sha256

    folder, cache_dir = tmp_path / "model", tmp_path / "cache"
    shutil.copytree(tiny_clip_dir, folder)
    old = time.time() - 60
    for path in folder.iterdir():
        os.utime(path, (old, old))
    before = checkpoint_files_sha256(folder, cache_dir=cache_dir)
    assert checkpoint_files_sha256(folder, cache_dir=cache_dir) == before
    config = folder / "config.json"
    text = config.read_text()
    changed = text.replace('"logit_scale_init_value": 2.6592', '"logit_scale_init_value": 2.6593')
    assert changed != text and len(changed) == len(text)
    config.write_text(changed)
    os.utime(config, (old, old))
    assert checkpoint_files_sha256(folder, cache_dir=cache_dir) != before


def test_a_later_run_adopts_the_shard_size_the_cache_was_written_with(model, face_folder, cache_dir, monkeypatch):
    dataset = _dataset(face_folder, cache_dir)
    embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD)
    started = _count_encoded_shards(monkeypatch)
    again = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=50)
    assert started == [] and again.images_from_cache == 84


def _count_reads(monkeypatch) -> Counter:
    """Patch the folder datasets' one read function to count the reads of each row's file."""
    from clipaudit.data.base import FolderImageDataset

    reads: Counter = Counter()
    original = FolderImageDataset._read_image_bytes

    def counting(self, index):
        reads[index] += 1
        return original(self, index)
    monkeypatch.setattr(FolderImageDataset, "_read_image_bytes", counting)
    return reads


def test_a_cold_run_reads_each_image_once_and_fingerprints_from_those_reads(model, face_folder, tmp_path,
                                                                            monkeypatch):
    import shutil

    root, cache_dir = tmp_path / "faces", tmp_path / "cache"
    shutil.copytree(face_folder, root)
    (root / "img" / "0003.jpg").write_text("not an image")
    (root / "img" / "0004.jpg").unlink()
    old = time.time() - 60
    for path in (root / "img").iterdir():
        os.utime(path, (old, old))  # older than the racy window: their digests are memoised
    spec = f"csv:{root / 'labels.csv'}"
    reads = _count_reads(monkeypatch)
    dataset = load_dataset(spec, cache_dir=cache_dir)
    cold = embed_images(model, dataset, cache_dir=cache_dir, progress=False, shard_images=SHARD,
                        skip_bad_images=True)
    assert reads == Counter(range(84)), "each file read exactly once, by the encoder"
    assert cold.images_encoded == 84 and sorted(cold.bad_images) == [("img/0003.jpg", "not an image"),
                                                                     ("img/0004.jpg", "missing")]
    separate_pass = load_dataset(spec, cache_dir=None).fingerprint
    assert dataset.fingerprint == separate_pass, "assembled from the encoder's reads, the same value"

    reads.clear()
    warm = load_dataset(spec, cache_dir=cache_dir)
    again = embed_images(model, warm, cache_dir=cache_dir, progress=False, shard_images=SHARD, skip_bad_images=True)
    assert set(reads) == {4}, "a warm run stats the files; only the missing one is looked for again"
    assert again.images_from_cache == 84 and warm.fingerprint == separate_pass

    # One shard lost, one file of another shard touched (its digest no longer memoised, its bytes the same):
    # the lost shard's files are read once (to encode them), the touched file once (to check its shard).
    shards = plan_shards(84, SHARD)
    (image_cache_folder(cache_dir, model.info, warm.image_ids_key) / shards[2].name).unlink()
    os.utime(root / "img" / "0050.jpg", (old - 5, old - 5))
    reads.clear()
    started = _count_encoded_shards(monkeypatch)
    partly = load_dataset(spec, cache_dir=cache_dir)
    resumed = embed_images(model, partly, cache_dir=cache_dir, progress=False, shard_images=SHARD,
                           skip_bad_images=True)
    assert started == [shards[2].start] and resumed.images_encoded == SHARD
    assert reads == Counter([4, 50, *range(shards[2].start, shards[2].stop)])
    assert partly.fingerprint == separate_pass
    np.testing.assert_array_equal(resumed.embeddings, cold.embeddings)
