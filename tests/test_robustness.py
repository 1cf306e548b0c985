"""Hostile inputs: one clear line, exit 2, nothing written, in a second or two.

A table of bad inputs and the message each must produce. The YAML readers of taxonomies, sweep
specs and thresholds share one reader (clipaudit.located_yaml) and so share its limits.
"""
from __future__ import annotations

import os
import time

import pytest

from clipaudit.cli import main
from clipaudit.compare import load_thresholds
from clipaudit.errors import ThresholdsError


def alias_bomb() -> str:
    """'Billion laughs': ten aliases of ten aliases ... 10^9 leaves from a few hundred bytes."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(8):
        name, previous = chr(98 + index), chr(97 + index)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\n"


HOSTILE_YAML = {
    "alias bomb": (alias_bomb(), "expands to more than 200,000 values"),
    "deep nesting": ("name: x\nprobes: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than 64 levels deep"),
    "huge file": ("name: x\n" + "# padding\n" * 120_000, "refused above 1,048,576 bytes"),
}


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML))
@pytest.mark.parametrize("command", ["validate", "audit", "sweep --spec"])
def test_hostile_yaml_is_one_line_exit_2(case, command, tmp_path, capsys):
    text, message = HOSTILE_YAML[case]
    hostile = _write(tmp_path, "hostile.yaml", text)
    out = tmp_path / "out"
    if command == "validate":
        argv = ["validate", str(hostile)]
    elif command == "audit":
        argv = ["audit", "--taxonomy", str(hostile), "--data", "synthetic", "--model", "demo", "--out", str(out)]
    else:
        argv = ["sweep", "--taxonomy", "clip_denigration", "--spec", str(hostile), "--data", "synthetic",
                "--model", "demo", "--out", str(out)]
    capsys.readouterr()
    started = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - started < 10  # generous on a loaded CI machine; ~1 s here
    err = capsys.readouterr().err.strip().splitlines()
    if command == "validate":  # validate prints each problem, then a count
        assert len(err) <= 2 and message in err[0]
    else:
        assert len(err) == 1 and err[0].startswith("clipaudit: error: ") and message in err[0]
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML))
def test_hostile_thresholds_are_refused_in_one_line(case, tmp_path):
    text, message = HOSTILE_YAML[case]
    with pytest.raises(ThresholdsError, match=message.replace("(", r"\(")) as caught:
        load_thresholds(_write(tmp_path, "thresholds.yaml", text))
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_a_named_pipe_is_not_read(tmp_path, capsys):
    """Reading a FIFO would block forever; it is refused at once."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert main(["validate", str(fifo)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"not an archive at all" * 10,
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cache_entry_is_reported_discarded_and_recomputed(damage, face_folder, tiny_clip_dir, tmp_path,
                                                                      capsys):
    taxonomy = _write(tmp_path, "t.yaml", "name: t\ntemplates: ['a photo of a {label}.']\nprobes:\n  - id: gender\n"
                                          "    kind: attribute\n    target: gender\n"
                                          "    classes: [{id: Male, label: man}, {id: Female, label: woman}]\n")
    cache = tmp_path / "cache"

    def audit(out):
        return main(["audit", "--taxonomy", str(taxonomy), "--data", f"csv:{face_folder / 'labels.csv'}",
                     "--model", str(tiny_clip_dir), "--out", str(tmp_path / out), "--cache-dir", str(cache),
                     "--device", "cpu", "--quiet", "--min-n", "5"])

    assert audit("first") == 0
    first = (tmp_path / "first" / "results.json").read_text()
    entries = sorted((cache / "embeddings").rglob("*.npz"))
    assert len(entries) == 2  # the images' entry and the prompts'
    for entry in entries:
        entry.write_bytes(DAMAGE[damage](entry.read_bytes()))
    capsys.readouterr()
    assert audit("second") == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("clipaudit: cache entry")]
    assert len(err) == 2 and all("discarded, recomputing" in line for line in err)
    second = (tmp_path / "second" / "results.json").read_text()
    assert first.split('"probes"')[1] == second.split('"probes"')[1]  # the same numbers again
    capsys.readouterr()
    assert audit("third") == 0  # the recomputed entries were written back and are read cleanly
    assert "clipaudit: cache entry" not in capsys.readouterr().err


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_bound_that_is_not_a_finite_number_is_refused(value, tmp_path):
    """A NaN bound would make every comparison false: the rule could never fail."""
    path = _write(tmp_path, "thresholds.yaml", f"rules:\n  - probe: denigration\n    metric: harm_rate\n"
                                                 f"    max_rise: {value}\n")
    expected = r"thresholds.yaml:4: rules\[0\]\.max_rise: (max_rise is nan; a bound must be a finite|expected a proportion)"
    with pytest.raises(ThresholdsError, match=expected):
        load_thresholds(path)


def test_a_killed_rendering_leaves_nothing_behind_for_long(tmp_path, monkeypatch):
    """The synthetic faces render into a staging folder; one a killed run left is removed later."""
    from clipaudit.data import synthetic

    parent = tmp_path / "synthetic"
    name = synthetic.rendering_key(28, 0)
    abandoned, recent = parent / f".{name}.old", parent / f".{name}.new"
    for folder in (abandoned, recent):
        folder.mkdir(parents=True)
        (folder / "0.jpg").write_bytes(b"half a face")
    old = time.time() - 2 * synthetic.ABANDONED_AFTER_S
    os.utime(abandoned, (old, old))
    synthetic.ensure_rendered(28, 0, cache_dir=tmp_path)
    assert not abandoned.exists() and recent.exists()  # a recent one may be a render in progress
    assert (parent / name / "labels.csv").is_file()
