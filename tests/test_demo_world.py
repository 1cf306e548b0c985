"""The demo world: the shipped model's audit finds exactly the planted biases (planted.json).

The demo model is a small CLIP trained on synthetic faces with biases planted on purpose
(clipaudit.demo.world); its right answer is known in advance, so the whole pipeline is tested
end to end against it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import clipaudit
from clipaudit.cli import main
from clipaudit.demo.model import ASSETS_DIR, demo_model_dir, planted_truth
from clipaudit.demo.train import TrainConfig
from clipaudit.demo.world import PLANTED_BIASES, biased_images
from clipaudit.demo.world import planted_truth as planted_truth_in_code

HARM_METRICS = {"harm_rate", "crime_rate", "non_human_rate"}
# Accuracy floors: gender well above chance (1/2), race and age above twice chance (1/7, 1/9).
# What the shipped model reaches is in the README's demo section.
ACCURACY_FLOORS = {"gender": 0.8, "race": 2 / 7, "age": 2 / 9}


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--out", str(root / "out"), "--cache-dir", str(root / "cache"), "--device", "cpu", "--quiet"])
    assert code == 0
    return json.loads((root / "out" / "results.json").read_text())


@pytest.fixture(scope="module")
def planted() -> list[dict]:
    return planted_truth()


def group_values(finding: dict) -> dict[str, str]:
    """{'race': 'Indian', 'gender': 'Female'} from slice 'race x gender' and group 'Indian / Female'."""
    return dict(zip(finding["slice"].split(" x "), finding["group"].split(" / ")))


def overlaps_a_planted_group(values: dict[str, str], planted: list[dict]) -> bool:
    """The group shares an attribute with a planted group and contradicts it on none.

    'Indian' and 'Female' hold the planted 'Indian / Female' images; 'Male' or an age group
    shares nothing with a race-level bias and must not be flagged.
    """
    for entry in planted:
        shared = set(values) & set(entry["attributes"])
        if shared and all(values[name] == entry["attributes"][name] for name in shared):
            return True
    return False


def test_planted_json_is_the_world_the_code_describes(planted):
    assert planted == planted_truth_in_code()
    assert len(planted) == 3
    assert {entry["slice"] for entry in planted} == {"race", "race x gender"}
    assert {entry["category"] for entry in planted} == {"crime", "non_human"}
    for entry in planted:
        assert set(entry) >= {"probe", "slice", "group", "category", "rate"}
        assert 0 < entry["rate"] < 1


def test_planted_slices_exist_in_the_shipped_taxonomy(planted):
    from clipaudit.taxonomy import load_taxonomy

    probe = load_taxonomy("clip_denigration").probe("denigration")
    slice_ids = {" x ".join(attributes) for attributes in probe.slices}
    for entry in planted:
        assert entry["probe"] == probe.id
        assert entry["slice"] in slice_ids, f"clip_denigration's probe must slice by {entry['slice']!r}"
        assert entry["category"] in probe.categories()


def test_every_planted_disparity_is_a_significant_finding(demo_results, planted):
    findings = demo_results["findings"]
    for entry in planted:
        # A finding is one disparity: the planted comparison leads it or is among its related ones.
        matching = [(finding, member) for finding in findings for member in [finding, *finding["related"]]
                    if (finding["probe"], member["slice"], member["group"], member["metric"])
                    == (entry["probe"], entry["slice"], entry["group"], f"{entry['category']}_rate")]
        assert matching, f"planted {entry['group']} -> {entry['category']} was not found"
        ((finding, member),) = matching
        assert finding["significant"] and member["p_adjusted"] < 0.01, finding["text"]
        assert member["difference"] > 0 and finding["worse"], finding["text"]


def test_no_group_without_a_planted_bias_is_flagged(demo_results, planted):
    harm_findings = [f for f in demo_results["findings"] if f["metric"] in HARM_METRICS and f["significant"]]
    assert harm_findings
    for finding in harm_findings:
        assert overlaps_a_planted_group(group_values(finding), planted), finding["text"]
        assert finding["worse"], f"a group is flagged as better off: {finding['text']}"


def test_attribute_probes_are_well_above_chance(demo_results):
    accuracy = {probe["id"]: probe["overall"]["accuracy"]["value"]
                for probe in demo_results["probes"] if probe["kind"] == "attribute"}
    assert set(accuracy) == set(ACCURACY_FLOORS)
    for probe_id, floor in ACCURACY_FLOORS.items():
        assert accuracy[probe_id] > floor, (probe_id, accuracy[probe_id])


def test_demo_model_is_the_shipped_checkpoint():
    assert demo_model_dir() == ASSETS_DIR
    names = {path.name for path in ASSETS_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "planted.json", "training.json", "processor_config.json"} <= names
    training = json.loads((ASSETS_DIR / "training.json").read_text())
    assert training["config"]["seed"] == TrainConfig().seed and training["final_loss"] > 0


def test_shipped_weights_load_in_fp32(tmp_path):
    import torch

    from clipaudit.models import load_model

    model = load_model("demo", device="cpu", dtype="auto", cache_dir=tmp_path)
    assert model.info.spec == "demo" and model.info.dtype == "fp32"
    assert all(parameter.dtype == torch.float32 for parameter in model.model.parameters())


def test_package_is_under_20_mb():
    package = Path(clipaudit.__file__).resolve().parent
    size = sum(path.stat().st_size for path in package.rglob("*") if path.is_file())
    assert size < 20 * 1024 * 1024, f"clipaudit/ holds {size / 2**20:.1f} MiB"


def test_biased_images_are_exactly_the_planted_share():
    from clipaudit.data.faces import balanced_labels

    labels = balanced_labels(1260, 1)
    chosen = biased_images(labels, seed=0)
    for bias in PLANTED_BIASES:
        group = [i for i, (race, gender, _) in enumerate(labels) if bias.applies_to(race, gender)]
        picked = [i for i in group if chosen.get(i) is bias]
        assert abs(len(picked) - bias.rate * len(group)) <= 9  # rounding once per age bin
    assert all(chosen[i].applies_to(*labels[i][:2]) for i in chosen)
    assert chosen == biased_images(labels, seed=0)


def test_training_runs_end_to_end(tmp_path):
    from clipaudit.demo.train import train
    from clipaudit.models import load_model

    config = replace(TrainConfig(), train_images=126, batch_size=16)
    record = train(tmp_path / "model", config=config, steps=2, cache_dir=tmp_path / "cache", progress=False)
    assert record["config"]["steps"] == 2 and len(record["loss_curve"]) == 1
    assert json.loads((tmp_path / "model" / "planted.json").read_text()) == planted_truth_in_code()
    model = load_model(str(tmp_path / "model"), device="cpu", dtype="fp32", cache_dir=tmp_path / "cache")
    assert model.encode_texts(["a photo of a thief."]).shape == (1, config.architecture.projection_dim)


def test_demo_retrain_audits_the_retrained_copy(tmp_path, monkeypatch):
    import clipaudit.demo.model as demo_model

    calls = []

    def fake_retrain(cache_dir, *, progress=True):
        calls.append(Path(cache_dir))
        return ASSETS_DIR  # stands in for a freshly trained copy; training itself is tested above

    monkeypatch.setattr(demo_model, "retrain_demo_model", fake_retrain)
    out = tmp_path / "out"
    code = main(["demo", "--retrain", "--images", "126", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--device", "cpu", "--quiet", "--min-n", "5"])
    assert code == 0 and calls == [tmp_path / "cache"]
    results = json.loads((out / "results.json").read_text())
    # Recorded relative to the output folder (no absolute local path in outputs).
    assert (out / results["manifest"]["model"]["spec"]).resolve() == ASSETS_DIR.resolve()


def test_merges_are_learnt_most_frequent_pair_first_and_ties_go_to_the_pair_that_sorts_first():
    from clipaudit.demo.tiny_clip import learn_merges

    # Sennrich et al. (2016)'s example, the end-of-word mark joined to the last character as CLIP does.
    words = {("l", "o", "w</w>"): 5, ("l", "o", "w", "e", "r</w>"): 2, ("n", "e", "w", "e", "s", "t</w>"): 6,
             ("w", "i", "d", "e", "s", "t</w>"): 3}
    # ('e', 's') and ('s', 't</w>') both occur 9 times: 'e' sorts first.
    assert learn_merges(words, wanted=3) == [("e", "s"), ("es", "t</w>"), ("l", "o")]
    assert learn_merges({("a",): 4}, wanted=5) == []  # nothing left to merge


def test_a_seeded_tiny_clip_is_the_same_in_every_process(tmp_path):
    """The tokenizer (hence every embedding row) of `clipaudit demo --untrained SEED` and of the
    tests' tiny CLIPs must not depend on the process: Python's string hashing differs per process."""
    script = ("import hashlib, sys\n"
              "from clipaudit.demo.tiny_clip import BASE_CORPUS, train_tokenizer\n"
              "from clipaudit.demo.world import caption_corpus\n"
              "tokenizer = train_tokenizer([BASE_CORPUS, *caption_corpus(seed=1)], vocab_size=640)\n"
              "print(hashlib.sha256(repr(sorted(tokenizer.get_vocab().items())).encode()).hexdigest())\n")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3)}
    assert len(digests) == 1
