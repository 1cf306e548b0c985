"""Hostile inputs at the door: options, model folders, predictions files, thresholds, text from data.

Each case runs the CLI in-process and must exit 2 with exactly one `clipaudit: error:` line that
names the problem, write nothing to --out and take under 5 s. Cases that name `--model demo
--data synthetic` must stop before either is loaded (loading them would blow the time limit).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipaudit.cli import main
from clipaudit.cli.terminal import inert
from clipaudit.files import write_output_files
from clipaudit.pipeline.options import AuditOptions, available_cpus
from clipaudit.pipeline.results import build_results
from clipaudit.predictions import predictions_to_parquet_bytes
from clipaudit.report.compare_exports import xml_safe
from clipaudit.stats import StatsSettings
from clipaudit.taxonomy import load_taxonomy

TAXONOMY = """\
name: robustness-test
templates: ["a photo of a {label}."]
probes:
  - id: denigration
    kind: harm
    classes:
      - {id: thief, category: crime}
      - {id: person}
    slices: [race]
"""
COMPARE_OUTPUTS = ("compare.json", "compare.md", "compare.html", "junit.xml")
PWNED = Path(tempfile.gettempdir()) / "clipaudit-robustness-pwned"  # what the pickle payload would create


def predictions(races=("Black", "White"), *, harm: dict[str, int] | None = None, per_race: int = 80) -> pd.DataFrame:
    harm = harm or {}
    rows = [{"probe": "denigration", "image_id": f"img/{race}_{index:03d}.jpg", "race": race, "target": None,
             "prediction": "thief" if index < harm.get(race, 4) else "person", "scores": [0.0, 0.0]}
            for race in races for index in range(per_race)]
    return pd.DataFrame(rows)


def write_audit(out: Path, taxonomy: Path, frame: pd.DataFrame) -> Path:
    manifest = {"model": {"id": "synthetic"}, "device": "none", "dtype": "none", "seed": 0,
                "dataset": {"spec": "synthetic-test", "fingerprint": "same-images", "n_images": len(frame),
                            "n_used": len(frame), "n_skipped": 0, "skipped_images": [], "attributes": ["race"]}}
    results = build_results(frame, load_taxonomy(taxonomy), manifest=manifest, timings={}, started=time.perf_counter(),
                            settings=StatsSettings())
    write_output_files(out, {"results.json": json.dumps(results).encode("utf-8"),
                             "predictions.parquet": predictions_to_parquet_bytes(frame)})
    return out


def write_parquet(path: Path, frame: pd.DataFrame, **types: pa.DataType) -> Path:
    schema = pa.schema([pa.field(name, types.get(name, pa.string())) for name in frame.columns
                        if name != "scores"] + [pa.field("scores", types.get("scores", pa.list_(pa.float32())))])
    pq.write_table(pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False), path)
    return path


def break_model(source: Path, folder: Path, damage: str) -> Path:
    shutil.copytree(source, folder)
    if damage == "pickle payload":
        import torch

        (folder / "model.safetensors").unlink()
        torch.save({"weights": Payload()}, folder / "pytorch_model.bin")
    elif damage == "text tower missing":
        from safetensors.torch import load_file, save_file

        weights = load_file(folder / "model.safetensors")
        save_file({name: tensor for name, tensor in weights.items() if not name.startswith("text_model.")},
                  folder / "model.safetensors", metadata={"format": "pt"})
    elif damage == "truncated weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    else:
        for name in damage.split("+"):
            (folder / name).unlink()
    return folder


class Payload:
    def __reduce__(self):
        return (Path.touch, (PWNED,))


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_clip_dir, face_folder) -> dict[str, Path]:
    """Every file a hostile case points at, built once; the cases name them as {placeholders}."""
    root = tmp_path_factory.mktemp("hostile")
    taxonomy = root / "taxonomy.yaml"
    taxonomy.write_text(TAXONOMY)
    paths = {"root": root, "taxonomy": taxonomy, "faces": face_folder / "labels.csv", "a_file": root / "a-file"}
    paths["a_file"].write_text("not a folder\n")
    paths["baseline"] = write_audit(root / "baseline", taxonomy, predictions())
    rule = "rules:\n  - {{probe: {probe}, metric: harm_rate, {slice}max_rise: 0.05}}\n"
    (root / "rules-age.yaml").write_text(rule.format(probe="denigration", slice="slice: age, "))
    (root / "rules-probe.yaml").write_text(rule.format(probe="nonesuch", slice=""))
    paths.update(bad_predictions(root, paths["baseline"]))
    for damage in MODEL_DAMAGE:
        paths[damage] = break_model(tiny_clip_dir, root / "models" / re.sub(r"\W+", "-", damage), damage)
    paths["newline.csv"] = hostile_csv(root / "newline", face_folder, race="White\n::error title=forged::x")
    paths["ansi.csv"] = hostile_csv(root / "ansi", face_folder, race="White\x1b[2J\x1b[31mred")
    return paths


def bad_predictions(root: Path, baseline: Path) -> dict[str, Path]:
    """Predictions files off their schema, alone (for stats) and as a candidate audit folder (for compare)."""
    frame = predictions()
    paths = {
        "int-id.parquet": write_parquet(root / "int-id.parquet", frame.assign(image_id=range(len(frame))),
                                        image_id=pa.int64()),
        "int-scores.parquet": write_parquet(root / "int-scores.parquet", frame.assign(scores=[[0, 1]] * len(frame)),
                                            scores=pa.list_(pa.int64())),
        "twice.parquet": write_parquet(root / "twice.parquet", pd.concat([frame, frame], ignore_index=True)),
    }
    for name in ("int-id", "twice"):
        folder = root / f"candidate-{name}"
        folder.mkdir()
        shutil.copy(baseline / "results.json", folder / "results.json")
        shutil.copy(paths[f"{name}.parquet"], folder / "predictions.parquet")
        paths[f"candidate-{name}"] = folder
    return paths


def hostile_csv(folder: Path, face_folder: Path, *, race: str) -> Path:
    folder.mkdir()
    shutil.copytree(face_folder / "img", folder / "img")
    table = pd.read_csv(face_folder / "labels.csv")
    table["race"] = race
    table.to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


MODEL_DAMAGE = {  # damage -> what the one line must say
    "tokenizer.json+tokenizer_config.json": r"tokenizer has no vocabulary.*tokenizer files are missing",
    "processor_config.json": r"cannot load model .*: the folder has no image processor config",
    "model.safetensors": r"cannot load model .*: the folder has no weights \(expected one of model\.safetensors",
    "config.json": r"cannot load model .*: the folder has no config\.json",
    "pickle payload": r"refused pytorch_model\.bin: it holds more than tensors \(.+\), and clipaudit loads weights",
    "truncated weights": r"model\.safetensors is damaged or truncated",
    "text tower missing": r"its weights file lacks \d+ of the model's tensors \(first: text_model\.",
}
AUDIT = ["audit", "--taxonomy", "{taxonomy}", "--data", "synthetic", "--model", "demo", "--out", "{out}",
         "--cache-dir", "{root}/cache", "--device", "cpu", "--quiet"]


def audit_on(data: str, model: str, taxonomy: str = "clip_denigration") -> list[str]:
    """An audit that loads a real (csv:) dataset, so that the model is reached."""
    return ["audit", "--taxonomy", taxonomy, "--data", f"csv:{data}", "--model", model, "--out", "{out}",
            "--cache-dir", "{root}/cache", "--device", "cpu", "--quiet"]


STATS = ["stats", "--taxonomy", "{taxonomy}", "--out", "{out}"]
COMPARE = ["compare", "{baseline}", "--out", "{out}"]

CASES = {  # name -> (argv with {placeholders}, pattern of the one stderr line)
    "seed 2**70": (AUDIT + ["--seed", str(2**70)], r"--seed: expected an integer from 0 to 4294967295"),
    "seed negative": (AUDIT + ["--seed=-1"], r"--seed: expected an integer from 0"),
    "stats has no seed": (STATS + ["{int-id.parquet}", "--seed", "3"], r"unrecognized arguments: --seed 3"),
    "batch size 0": (AUDIT + ["--batch-size", "0"], r"--batch-size: expected an integer from 1 to 4096"),
    "batch size 10**9": (AUDIT + ["--batch-size", str(10**9)], r"--batch-size: expected an integer from 1"),
    "num workers negative": (AUDIT + ["--num-workers=-2"], r"--num-workers: expected 0 or a positive integer"),
    "cache dir is a file": (AUDIT + ["--cache-dir", "{a_file}"], r"--cache-dir .*a-file: exists and is not a folder"),
    "cache dir under a file": (AUDIT + ["--cache-dir", "{a_file}/cache"], r"--cache-dir .*a-file is not a folder"),
    "out empty": (AUDIT[:7] + ["--out", ""], r"--out: expected a folder name, got an empty one"),
    "out under a file": (AUDIT[:7] + ["--out", "{a_file}/out"], r"--out .*a-file is not a folder"),
    "demo images 0": (["demo", "--out", "{out}", "--images", "0"], r"--images: expected a positive integer"),
    "thresholds slice not in baseline": (AUDIT + ["--baseline", "{baseline}", "--thresholds", "{root}/rules-age.yaml"],
                                         r"rules-age\.yaml:2: .*slice 'age': attribute 'age' is not in the predictions "
                                         r"of the baseline"),
    "thresholds probe in neither": (AUDIT + ["--baseline", "{baseline}", "--thresholds", "{root}/rules-probe.yaml"],
                                    r"probe 'nonesuch' is in neither audit"),
    "stats integer image_id": (STATS + ["{int-id.parquet}"], r"column 'image_id' must hold strings, got int64"),
    "stats integer scores": (STATS + ["{int-scores.parquet}"], r"column 'scores' must be a list of floats"),
    "stats every row twice": (STATS + ["{twice.parquet}"], r"160 row\(s\) repeat a \(probe, image_id\) pair"),
    "compare integer image_id": (COMPARE[:2] + ["{candidate-int-id}"] + COMPARE[2:],
                                 r"candidate .*column 'image_id' must hold strings"),
    "compare every row twice": (COMPARE[:2] + ["{candidate-twice}"] + COMPARE[2:],
                                r"candidate .*repeat a \(probe, image_id\) pair"),
    **{f"model: {damage}": (audit_on("{faces}", f"{{{damage}}}"), pattern) for damage, pattern in MODEL_DAMAGE.items()},
    "csv value with a newline": (audit_on("{newline.csv}", "demo", "fairface_demographics"),
                                 r"White\\n::error title=forged::x"),
}


def fill(argv: list[str], world: dict[str, Path], out: Path) -> list[str]:
    values = {**{name: str(path) for name, path in world.items()}, "out": str(out)}
    return [re.sub(r"\{([^{}]+)\}", lambda match: values[match.group(1)], argument) for argument in argv]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str], float]:
    capsys.readouterr()
    started = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - started
    return code, capsys.readouterr().err.splitlines(), seconds


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_one_line_exit_2(case, world, tmp_path, capsys):
    argv, pattern = CASES[case]
    out = tmp_path / "out"
    code, err, seconds = run_cli(fill(argv, world, out), capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("clipaudit: error: "), err
    assert re.search(pattern, err[0]), err[0]
    assert not out.exists()
    assert seconds < 5, f"{case}: {seconds:.1f} s"
    assert not PWNED.exists()


def test_escape_sequences_from_data_never_reach_the_terminal(world, tmp_path, capsys):
    argv = fill(audit_on("{ansi.csv}", "demo", "fairface_demographics"), world, tmp_path / "out")
    code, err, _ = run_cli(argv, capsys)
    assert code == 2 and len(err) == 1
    assert "\x1b" not in err[0] and r"White\x1b[2J\x1b[31mred" in err[0]


def test_a_cache_dir_that_cannot_be_written_is_refused_before_loading(world, tmp_path, capsys):
    if os.name == "posix" and os.geteuid() != 0:
        cache = tmp_path / "cache"
        cache.mkdir(mode=0o500)
    elif Path("/proc/self").is_dir():  # root writes into read-only folders, not into /proc
        cache = Path("/proc/self/clipaudit-cache")
    else:
        pytest.skip("no folder here that this user cannot write into")
    code, err, _ = run_cli(fill(AUDIT, world, tmp_path / "out") + ["--cache-dir", str(cache)], capsys)
    assert code == 2 and len(err) == 1 and "cannot write there" in err[0]
    assert not (tmp_path / "out").exists()


def test_device_cuda_without_a_gpu_is_refused_before_loading(world, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    code, err, seconds = run_cli(fill(AUDIT, world, tmp_path / "out") + ["--device", "cuda"], capsys)
    assert code == 2 and len(err) == 1 and "--device cuda: no CUDA GPU" in err[0] and seconds < 5


def test_inert_escapes_controls_and_keeps_text():
    assert inert("a\nb\r\tc\x1b[31m\u202ed\u2028é") == r"a\nb\r\tc\x1b[31m\u202ed\u2028é"


def test_num_workers_above_the_cpus_are_capped_and_noted():
    options = AuditOptions(num_workers=10**6)
    assert options.num_workers == available_cpus() and options.num_workers_requested == 10**6
    assert options.notes and "capped" in options.notes[0]
    assert AuditOptions(num_workers=0).notes == []


def test_names_with_control_characters_keep_junit_valid_and_stderr_inert(world, tmp_path, capsys):
    races = ("Black\x1b[31m", "White")
    baseline = write_audit(tmp_path / "base", world["taxonomy"], predictions(races))
    worse = write_audit(tmp_path / "worse", world["taxonomy"], predictions(races, harm={"Black\x1b[31m": 24}))
    code, err, _ = run_cli(["compare", str(baseline), str(worse), "--out", str(tmp_path / "cmp")], capsys)
    assert code == 1
    assert not any("\x1b" in line for line in err) and any(r"Black\x1b[31m" in line for line in err)
    suite = ElementTree.parse(tmp_path / "cmp" / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) >= 1
    assert "\x1b" not in (tmp_path / "cmp" / "junit.xml").read_text(encoding="utf-8")
    assert xml_safe("a\x1bb\x00") == r"a\x1bb\x00"


@pytest.mark.parametrize("page", ["sweep.html.j2", "compare.html.j2"])
def test_every_page_carries_the_reports_content_security_policy(page):
    templates = Path(__file__).parents[1] / "clipaudit" / "report" / "templates"
    policy = next(line for line in (templates / "report.html.j2").read_text().splitlines()
                  if "Content-Security-Policy" in line)
    assert policy in (templates / page).read_text()


def test_stats_into_an_earlier_audit_folder_drops_its_compare_verdict(world, tmp_path, capsys):
    out = tmp_path / "earlier"
    write_audit(out, world["taxonomy"], predictions())
    for name in COMPARE_OUTPUTS:
        (out / name).write_text("stale verdict")
    code, err, _ = run_cli(["stats", str(world["baseline"] / "predictions.parquet"), "--taxonomy",
                            str(world["taxonomy"]), "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "results.json").is_file()
    assert not any((out / name).exists() for name in COMPARE_OUTPUTS)


def test_demo_into_an_earlier_audit_folder_drops_its_compare_verdict(tmp_path, capsys):
    out = tmp_path / "earlier"
    out.mkdir()
    for name in COMPARE_OUTPUTS:
        (out / name).write_text("stale verdict")
    code, err, _ = run_cli(["demo", "--out", str(out), "--images", "28", "--cache-dir", str(tmp_path / "cache"),
                            "--device", "cpu", "--quiet", "--min-n", "2"], capsys)
    assert code == 0, err
    assert (out / "results.json").is_file()
    assert not any((out / name).exists() for name in COMPARE_OUTPUTS)
