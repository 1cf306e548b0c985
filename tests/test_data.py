"""Dataset adapters on tiny generated fixtures: no network, a few small JPEGs each."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipaudit.data import (
    FAIRFACE_AGES,
    FAIRFACE_RACES,
    ImageDataset,
    UTKFACE_RACE_NOTE,
    age_bin,
    describe_bad_images,
    load_dataset,
    to_fairface_value,
)
from clipaudit.data.hub import parse_hub_target
from clipaudit.data.utkface import parse_utkface_name
from clipaudit.errors import DataError


def write_jpeg(path: Path, colour: tuple[int, int, int] = (120, 80, 40), size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path, format="JPEG")


def jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def fairface_dir(tmp_path: Path) -> Path:
    rows = [
        ("val/1.jpg", "20-29", "Male", "White", "True"),
        ("val/2.jpg", "more than 70", "Female", "Latino_Hispanic", "False"),
        ("val/3.jpg", "0-2", "Female", "Southeast Asian", "True"),
    ]
    pd.DataFrame(rows, columns=["file", "age", "gender", "race", "service_test"]).to_csv(
        tmp_path / "fairface_label_val.csv", index=False
    )
    pd.DataFrame([("train/1.jpg", "3-9", "Male", "Black", "False")], columns=["file", "age", "gender", "race", "service_test"]).to_csv(
        tmp_path / "fairface_label_train.csv", index=False
    )
    for index, row in enumerate(rows):
        write_jpeg(tmp_path / row[0], colour=(40 * index, 100, 100))
    write_jpeg(tmp_path / "train/1.jpg")
    return tmp_path


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    write_jpeg(tmp_path / "imgs" / "a.jpg", (200, 10, 10))
    write_jpeg(tmp_path / "imgs" / "sub" / "b.jpg", (10, 200, 10))
    (tmp_path / "labels.csv").write_text("file,race,gender\nimgs/a.jpg,Black,Female\nimgs\\sub\\b.jpg,White,Male\n")
    return tmp_path


# -- spec dispatch ------------------------------------------------------------------------


def test_unknown_prefix_lists_valid_forms() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("imagenet:/data")
    message = str(caught.value)
    for form in ("fairface:DIR", "hf:NAME[:CONFIG]:SPLIT", "utkface:DIR", "csv:FILE", "synthetic[:N"):
        assert form in message


def test_prefix_without_target_is_an_error() -> None:
    with pytest.raises(DataError, match="csv:FILE"):
        load_dataset("csv:")


# -- fairface -----------------------------------------------------------------------------


def test_fairface_defaults_to_val_and_drops_service_test(fairface_dir: Path) -> None:
    dataset = load_dataset(f"fairface:{fairface_dir}")
    assert list(dataset.frame.columns) == ["image_id", "age", "gender", "race"]
    assert dataset.attributes == ["age", "gender", "race"]
    assert dataset.frame["image_id"].tolist() == ["val/1.jpg", "val/2.jpg", "val/3.jpg"]
    assert dataset.frame.loc[1, "age"] == "more than 70"
    assert dataset.root == fairface_dir
    assert len(dataset) == 3
    image = dataset.open_image(0)
    assert image.mode == "RGB" and image.size == (16, 16)


def test_fairface_train_split(fairface_dir: Path) -> None:
    dataset = load_dataset(f"fairface:{fairface_dir}:train")
    assert dataset.frame["image_id"].tolist() == ["train/1.jpg"]


def test_fairface_missing_label_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fairface_label_val.csv"):
        load_dataset(f"fairface:{tmp_path}")


def test_fairface_unknown_value_names_line_and_value(fairface_dir: Path) -> None:
    (fairface_dir / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,20-29,Male,White,True\nval/2.jpg,20-29,Male,Martian,True\n"
    )
    with pytest.raises(DataError, match=r"line 3: race 'Martian'"):
        load_dataset(f"fairface:{fairface_dir}")


def test_fairface_finds_images_in_the_release_zip_folder(tmp_path: Path) -> None:
    (tmp_path / "fairface_label_val.csv").write_text("file,age,gender,race,service_test\nval/1.jpg,3-9,Male,Indian,True\n")
    write_jpeg(tmp_path / "fairface-img-margin025-trainval" / "val" / "1.jpg")
    dataset = load_dataset(f"fairface:{tmp_path}")
    assert dataset.find_bad_images() == []
    assert dataset.frame.loc[0, "image_id"] == "val/1.jpg"


# -- csv ----------------------------------------------------------------------------------


def test_csv_paths_are_relative_to_the_csv_folder(csv_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    dataset = load_dataset(f"csv:{csv_dir / 'labels.csv'}")
    assert dataset.frame["image_id"].tolist() == ["imgs/a.jpg", "imgs/sub/b.jpg"]
    assert dataset.attributes == ["race", "gender"]
    assert dataset.open_image(1).getpixel((8, 8))[1] > 150


def test_csv_without_file_column_names_the_columns_found(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,race\na.jpg,White\n")
    with pytest.raises(DataError) as caught:
        load_dataset(f"csv:{tmp_path / 'labels.csv'}")
    assert "'file'" in str(caught.value) and "'path', 'race'" in str(caught.value)


def test_csv_empty_cell_names_line_and_column(csv_dir: Path) -> None:
    (csv_dir / "labels.csv").write_text("file,race,gender\nimgs/a.jpg,Black,Female\nimgs/sub/b.jpg,,Male\n")
    with pytest.raises(DataError, match=r"line 3: column 'race' is empty"):
        load_dataset(f"csv:{csv_dir / 'labels.csv'}")


def test_csv_duplicate_file_is_an_error(csv_dir: Path) -> None:
    (csv_dir / "labels.csv").write_text("file,race\nimgs/a.jpg,Black\nimgs/a.jpg,White\n")
    with pytest.raises(DataError, match=r"'imgs/a.jpg' appears more than once \(lines 2, 3\)"):
        load_dataset(f"csv:{csv_dir / 'labels.csv'}")


def test_csv_keeps_labels_like_NA_as_text(csv_dir: Path) -> None:
    (csv_dir / "labels.csv").write_text("file,group\nimgs/a.jpg,NA\n")
    assert load_dataset(f"csv:{csv_dir / 'labels.csv'}").attribute_values("group") == {"NA"}


def test_missing_csv_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"csv:{tmp_path / 'nope.csv'}")


# -- bad images ---------------------------------------------------------------------------


@pytest.fixture
def broken_csv_dataset(csv_dir: Path) -> ImageDataset:
    (csv_dir / "imgs" / "text.jpg").write_text("this is not an image")
    write_jpeg(csv_dir / "imgs" / "truncated.jpg", size=64)
    truncated = csv_dir / "imgs" / "truncated.jpg"
    truncated.write_bytes(truncated.read_bytes()[:200])
    (csv_dir / "labels.csv").write_text(
        "file,race\nimgs/a.jpg,Black\nimgs/missing.jpg,White\nimgs/text.jpg,Indian\nimgs/truncated.jpg,White\n"
    )
    return load_dataset(f"csv:{csv_dir / 'labels.csv'}")


def test_find_bad_images_lists_missing_and_non_images(broken_csv_dataset: ImageDataset) -> None:
    assert broken_csv_dataset.find_bad_images() == [
        "imgs/missing.jpg (missing)",
        "imgs/text.jpg (not an image)",
        "imgs/truncated.jpg (not an image)",
    ]
    assert broken_csv_dataset.find_bad_images(limit=1) == ["imgs/missing.jpg (missing)"]


def test_open_image_raises_data_error_naming_the_file(broken_csv_dataset: ImageDataset) -> None:
    with pytest.raises(DataError, match=r"missing\.jpg: missing"):
        broken_csv_dataset.open_image(1)
    with pytest.raises(DataError, match=r"text\.jpg: not an image"):
        broken_csv_dataset.open_image(2)


def test_check_images_raises_one_summary_line(broken_csv_dataset: ImageDataset) -> None:
    with pytest.raises(DataError) as caught:
        broken_csv_dataset.check_images(shown=2)
    assert str(caught.value) == (
        "3 images cannot be read: imgs/missing.jpg (missing), imgs/text.jpg (not an image) and 1 more"
    )


def test_describe_bad_images_singular() -> None:
    assert describe_bad_images(["a.jpg (missing)"]) == "1 image cannot be read: a.jpg (missing)"


def test_non_rgb_images_open_as_rgb(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("L", (8, 8), 90).save(tmp_path / "grey.png")
    (tmp_path / "labels.csv").write_text("file,race\nclear.png,White\ngrey.png,Black\n")
    dataset = load_dataset(f"csv:{tmp_path / 'labels.csv'}")
    assert dataset.open_image(0).getpixel((0, 0)) == (255, 255, 255)
    assert dataset.open_image(1).getpixel((0, 0)) == (90, 90, 90)


# -- fingerprint and pickling -------------------------------------------------------------


def test_fingerprint_is_stable_and_sees_one_byte(csv_dir: Path) -> None:
    spec = f"csv:{csv_dir / 'labels.csv'}"
    first = load_dataset(spec).fingerprint
    assert load_dataset(spec).fingerprint == first
    assert len(first) == 64
    image = csv_dir / "imgs" / "a.jpg"
    data = bytearray(image.read_bytes())
    data[-3] ^= 0x01
    image.write_bytes(bytes(data))
    assert load_dataset(spec).fingerprint != first


def test_fingerprint_depends_on_image_ids(csv_dir: Path) -> None:
    before = load_dataset(f"csv:{csv_dir / 'labels.csv'}").fingerprint
    (csv_dir / "imgs" / "a.jpg").rename(csv_dir / "imgs" / "c.jpg")
    (csv_dir / "labels.csv").write_text("file,race,gender\nimgs/c.jpg,Black,Female\nimgs/sub/b.jpg,White,Male\n")
    assert load_dataset(f"csv:{csv_dir / 'labels.csv'}").fingerprint != before


def test_fingerprint_is_computed_once(csv_dir: Path) -> None:
    dataset = load_dataset(f"csv:{csv_dir / 'labels.csv'}")
    first = dataset.fingerprint
    (csv_dir / "imgs" / "a.jpg").unlink()
    assert dataset.fingerprint == first


def test_pickle_round_trip(csv_dir: Path) -> None:
    dataset = load_dataset(f"csv:{csv_dir / 'labels.csv'}")
    fingerprint = dataset.fingerprint
    restored = pickle.loads(pickle.dumps(dataset))
    assert restored.fingerprint == fingerprint
    assert restored.frame.equals(dataset.frame)
    assert restored.open_image(0).tobytes() == dataset.open_image(0).tobytes()


def test_unreadable_image_error_pickles(broken_csv_dataset: ImageDataset) -> None:
    with pytest.raises(DataError) as caught:
        broken_csv_dataset.open_image(1)
    restored = pickle.loads(pickle.dumps(caught.value))
    assert str(restored) == str(caught.value) and restored.reason == "missing"


# -- utkface ------------------------------------------------------------------------------


def test_parse_utkface_name() -> None:
    assert parse_utkface_name("26_1_2_20170116174525125.jpg.chip.jpg") == {
        "age": "20-29",
        "gender": "Female",
        "race": "Asian",
    }
    assert parse_utkface_name("75_0_4_20170110.jpg") == {"age": "more than 70", "gender": "Male", "race": "Others"}
    assert parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg") is None  # no race field
    assert parse_utkface_name("5_2_0_2017.jpg") is None  # gender out of range


@pytest.mark.parametrize(
    ("years", "expected"),
    [(0, "0-2"), (2, "0-2"), (3, "3-9"), (9, "3-9"), (10, "10-19"), (29, "20-29"), (69, "60-69"), (70, "more than 70"), (116, "more than 70")],
)
def test_age_bins(years: int, expected: str) -> None:
    assert age_bin(years) == expected


def test_utkface_loads_labels_skips_and_notes(tmp_path: Path) -> None:
    for name in ("1_0_0_20161219140623097.jpg.chip.jpg", "45_1_3_20170104.jpg", "part2/80_0_1_2017.jpg"):
        write_jpeg(tmp_path / name)
    write_jpeg(tmp_path / "39_1_20170116174525125.jpg.chip.jpg")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    dataset = load_dataset(f"utkface:{tmp_path}")
    assert dataset.frame.to_dict("records") == [
        {"image_id": "1_0_0_20161219140623097.jpg.chip.jpg", "age": "0-2", "gender": "Male", "race": "White"},
        {"image_id": "45_1_3_20170104.jpg", "age": "40-49", "gender": "Female", "race": "Indian"},
        {"image_id": "part2/80_0_1_2017.jpg", "age": "more than 70", "gender": "Male", "race": "Black"},
    ]
    assert dataset.skipped == ["39_1_20170116174525125.jpg.chip.jpg"]
    assert dataset.notes["race"] == UTKFACE_RACE_NOTE
    assert dataset.find_bad_images() == []


def test_utkface_race_mismatch_explains_the_vocabulary(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "30_0_2_2017.jpg")
    dataset = load_dataset(f"utkface:{tmp_path}")
    assert dataset.attribute_values("race") == {"Asian"}
    with pytest.raises(DataError) as caught:
        dataset.check_attribute_values("race", FAIRFACE_RACES, context="probe 'race'")
    message = str(caught.value)
    assert message.startswith("probe 'race': ") and "'Asian'" in message
    assert "UTKFace has 5 race groups (White, Black, Asian, Indian, Others)" in message
    dataset.check_attribute_values("gender", ("Male", "Female"))  # no error


def test_utkface_without_labelled_files_is_an_error(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "photo.jpg")
    with pytest.raises(DataError, match="age_gender_race_date.jpg"):
        load_dataset(f"utkface:{tmp_path}")


def test_unknown_attribute_lists_the_known_ones(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "30_0_2_2017.jpg")
    with pytest.raises(DataError, match="has age, gender, race"):
        load_dataset(f"utkface:{tmp_path}").attribute_values("skin")


# -- hub (local save_to_disk, no network) -------------------------------------------------


def _hub_fixture(tmp_path: Path, race_names: list[str]) -> Path:
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "age": datasets.ClassLabel(names=list(FAIRFACE_AGES)),
            "gender": datasets.ClassLabel(names=["Male", "Female"]),
            "race": datasets.ClassLabel(names=race_names),
            "service_test": datasets.Value("bool"),
        }
    )
    table = {
        "image": [{"bytes": jpeg_bytes((200, 0, 0)), "path": None}, {"bytes": jpeg_bytes((0, 0, 200)), "path": None}],
        "age": [8, 0],
        "gender": [1, 0],
        "race": [5, 2],
        "service_test": [True, False],
    }
    dataset = datasets.Dataset.from_dict(table, features=features)
    folder = tmp_path / "saved"
    datasets.DatasetDict({"validation": dataset}).save_to_disk(str(folder))
    return folder


def test_hub_images_are_fingerprinted_from_the_encoders_reads(tmp_path: Path, tiny_clip_dir: Path) -> None:
    from clipaudit.embed import embed_images
    from clipaudit.models import load_model

    spec, cache_dir = f"hf:{_hub_fixture(tmp_path, list(FAIRFACE_RACES))}:validation", tmp_path / "cache"
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    cold = load_dataset(spec)
    embed_images(model, cold, cache_dir=cache_dir, progress=False, shard_images=1)
    expected = load_dataset(spec).fingerprint  # the separate pass
    assert cold.fingerprint == expected
    warm = load_dataset(spec)  # no cache folder, no memo: the cached shards are checked by reading them, in batches
    again = embed_images(model, warm, cache_dir=cache_dir, progress=False, shard_images=1)
    assert (again.images_from_cache, again.images_encoded) == (2, 0) and warm.fingerprint == expected


@pytest.fixture
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table file changed less than RACY_WINDOW_S before it was opened is not memoised (a write may
    still be under way): in these tests, any file changed before the table was opened counts as settled."""
    import clipaudit.data.table_digests as table_digests

    monkeypatch.setattr(table_digests, "RACY_WINDOW_S", 0.0)


def _touch(folder: Path) -> None:
    for arrow in folder.rglob("*.arrow"):
        os.utime(arrow, (arrow.stat().st_atime - 60, arrow.stat().st_mtime - 60))


def test_an_unchanged_hub_table_is_fingerprinted_and_checked_without_reading_an_image(
        tmp_path: Path, tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch, settled_at_once: None) -> None:
    from clipaudit.data.hub import HubImageDataset
    from clipaudit.embed import embed_images
    from clipaudit.models import load_model

    folder = _hub_fixture(tmp_path, list(FAIRFACE_RACES))
    spec, cache_dir = f"hf:{folder}:validation", tmp_path / "cache"
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    expected = load_dataset(spec).fingerprint
    embed_images(model, load_dataset(spec, cache_dir=cache_dir), cache_dir=cache_dir, progress=False, shard_images=1)
    reads: list[int] = []
    original = HubImageDataset._cell_bytes
    monkeypatch.setattr(HubImageDataset, "_cell_bytes", lambda self, index, cell: reads.append(index) or
                        original(self, index, cell))
    warm = load_dataset(spec, cache_dir=cache_dir)
    again = embed_images(model, warm, cache_dir=cache_dir, progress=False, shard_images=1)
    assert (again.images_from_cache, again.images_encoded) == (2, 0)
    assert warm.fingerprint == expected and reads == []
    # Any change to the table's files misses the memo: the images are read (and the shards checked) again.
    _touch(folder)
    changed = load_dataset(spec, cache_dir=cache_dir)
    assert changed.known_digests() == {} and changed.fingerprint == expected and sorted(reads) == [0, 1]
    # A damaged memo is not served, and is written again.
    for memo in (cache_dir / "digests").glob("table-*.json"):
        memo.write_text("{ cut short")
    assert load_dataset(spec, cache_dir=cache_dir).fingerprint == expected
    assert load_dataset(spec, cache_dir=cache_dir).known_digests()


def test_a_hub_table_whose_cells_point_to_files_is_never_memoised(tmp_path: Path, settled_at_once: None) -> None:
    from test_robustness_data import hub_folder

    folder = hub_folder(tmp_path, [None, "inside.jpg"])
    (folder / "inside.jpg").write_bytes(jpeg_bytes((9, 9, 9)))
    cache_dir = tmp_path / "cache"
    first = load_dataset(f"hf:{folder}", cache_dir=cache_dir).fingerprint
    assert not list(cache_dir.rglob("table-*.json"))  # the file the cell points to is not in the key
    (folder / "inside.jpg").write_bytes(jpeg_bytes((200, 9, 9)))
    assert load_dataset(f"hf:{folder}", cache_dir=cache_dir).fingerprint != first
    embedded = tmp_path / "embedded"
    embedded.mkdir()
    folder = hub_folder(embedded, [None, None])
    assert load_dataset(f"hf:{folder}", cache_dir=cache_dir).fingerprint
    assert len(list(cache_dir.rglob("table-*.json"))) == 1


def test_a_slice_of_a_table_file_is_never_memoised(tmp_path: Path, settled_at_once: None) -> None:
    """`train[:2]` and `train[2:4]` map the same file: its stat cannot tell their images apart."""
    import datasets

    from clipaudit.data.table_digests import whole_mapped_files

    features = datasets.Features({"image": datasets.Image(), "race": datasets.Value("string")})
    table = {"image": [{"bytes": jpeg_bytes((60 * i, 0, 0)), "path": None} for i in range(4)], "race": ["White"] * 4}
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp_path / "t.parquet"))
    loaded = {split: datasets.load_dataset("parquet", data_files=str(tmp_path / "t.parquet"), split=split,
                                           cache_dir=str(tmp_path / "hf")) for split in ("train", "train[2:4]")}
    assert len(whole_mapped_files(loaded["train"])) == 1
    assert whole_mapped_files(loaded["train[2:4]"]) == []
    assert whole_mapped_files(loaded["train"].select([3, 2, 1, 0])) == []  # reordered by an indices mapping


def test_a_table_file_replaced_after_it_was_opened_is_not_memoised(tmp_path: Path, settled_at_once: None) -> None:
    """The rows come from the file that was mapped; a file renamed over it since (rsync, cp -p then mv,
    keeping the old modification time) is another file, whose stat must not key the digests read."""
    from clipaudit.data.hub import load_hub_dataset

    folder = _hub_fixture(tmp_path, list(FAIRFACE_RACES))
    dataset = load_hub_dataset(f"{folder}:validation", spec=f"hf:{folder}:validation")
    arrow = next(folder.rglob("*.arrow"))
    replacement = arrow.with_name("replacement.arrow")
    replacement.write_bytes(arrow.read_bytes())
    os.utime(replacement, (arrow.stat().st_atime, arrow.stat().st_mtime))
    os.replace(replacement, arrow)
    dataset.memoise_digests(tmp_path / "cache")
    assert dataset.fingerprint and not list((tmp_path / "cache").rglob("table-*.json"))


def test_hub_class_labels_become_fairface_names(tmp_path: Path) -> None:
    hub_races = ["East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino Hispanic", "Southeast Asian"]
    folder = _hub_fixture(tmp_path, hub_races)
    dataset = load_dataset(f"hf:{folder}:validation")
    assert dataset.frame.to_dict("records") == [
        {"image_id": "0", "age": "more than 70", "gender": "Female", "race": "Latino_Hispanic"},
        {"image_id": "1", "age": "0-2", "gender": "Male", "race": "Black"},
    ]
    assert dataset.root is None
    assert dataset.open_image(0).getpixel((8, 8))[0] > 150
    assert dataset.find_bad_images() == []


def test_hub_fingerprint_and_pickle(tmp_path: Path) -> None:
    folder = _hub_fixture(tmp_path, list(FAIRFACE_RACES))
    dataset = load_dataset(f"hf:{folder}:validation")
    assert load_dataset(f"hf:{folder}:validation").fingerprint == dataset.fingerprint
    restored = pickle.loads(pickle.dumps(dataset))
    assert restored.fingerprint == dataset.fingerprint
    assert np.array_equal(np.asarray(restored.open_image(1)), np.asarray(dataset.open_image(1)))


def test_hub_unknown_split_lists_the_saved_ones(tmp_path: Path) -> None:
    folder = _hub_fixture(tmp_path, list(FAIRFACE_RACES))
    with pytest.raises(DataError, match="no split 'test'.*has validation"):
        load_dataset(f"hf:{folder}:test")


def test_hub_not_found_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nobody/nothing' on the Hub\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError) as caught:
        load_dataset("hf:nobody/nothing:train")
    assert "\n" not in str(caught.value) and "nobody/nothing" in str(caught.value)


def test_hub_plain_dataset_with_image_paths_string_labels_and_age_in_years(tmp_path: Path) -> None:
    import datasets

    write_jpeg(tmp_path / "x.jpg", (0, 200, 0))
    features = datasets.Features(
        {"picture": datasets.Image(), "age": datasets.Value("int32"), "race": datasets.Value("string"), "score": datasets.Value("float32")}
    )
    table = {"picture": [str(tmp_path / "x.jpg")], "age": [34], "race": ["middle eastern"], "score": [0.5]}
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "plain"))
    dataset = load_dataset(f"hf:{tmp_path / 'plain'}")
    assert dataset.frame.to_dict("records") == [{"image_id": "0", "age": "30-39", "race": "Middle Eastern"}]
    assert dataset.open_image(0).getpixel((8, 8))[1] > 150


def test_hub_missing_label_names_row_and_column(tmp_path: Path) -> None:
    import datasets

    features = datasets.Features({"image": datasets.Image(), "gender": datasets.ClassLabel(names=["Male", "Female"])})
    table = {"image": [{"bytes": jpeg_bytes((1, 2, 3)), "path": None}] * 2, "gender": [0, -1]}
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "gaps"))
    with pytest.raises(DataError, match=r"row 1: column 'gender' is empty"):
        load_dataset(f"hf:{tmp_path / 'gaps'}")


def test_parse_hub_target_keeps_slices() -> None:
    assert parse_hub_target("HuggingFaceM4/FairFace:0.25:validation[:100]", spec="x") == (
        "HuggingFaceM4/FairFace",
        "0.25",
        "validation[:100]",
    )
    assert parse_hub_target("name:train", spec="x") == ("name", None, "train")


def test_fairface_spellings() -> None:
    assert to_fairface_value("race", "latino hispanic") == "Latino_Hispanic"
    assert to_fairface_value("race", "Southeast-Asian") == "Southeast Asian"
    assert to_fairface_value("age", "70+") == "more than 70"
    assert to_fairface_value("age", "10 - 19") == "10-19"
    assert to_fairface_value("gender", "female") == "Female"
    assert to_fairface_value("race", "Asian") is None


# -- synthetic ----------------------------------------------------------------------------


def test_synthetic_is_cached_and_behaves_like_csv(tmp_path: Path) -> None:
    dataset = load_dataset("synthetic:20:3", cache_dir=tmp_path)
    assert dataset.attributes == ["race", "gender", "age"]
    assert dataset.frame.loc[12, "image_id"] == "images/00012.jpg"
    assert dataset.root is not None and dataset.root.parent == tmp_path / "synthetic"
    assert (dataset.root / "labels.csv").is_file()
    assert dataset.open_image(0).size == (224, 224)
    assert set(dataset.attribute_values("race")) <= set(FAIRFACE_RACES)
    marker = dataset.root / "images" / "00000.jpg"
    modified = marker.stat().st_mtime_ns
    again = load_dataset("synthetic:20:3", cache_dir=tmp_path)
    assert again.root == dataset.root and marker.stat().st_mtime_ns == modified
    assert again.fingerprint == dataset.fingerprint
    assert [path.name for path in (tmp_path / "synthetic").iterdir()] == [dataset.root.name]  # no temp left


def test_synthetic_seed_changes_the_data(tmp_path: Path) -> None:
    first = load_dataset("synthetic:5", cache_dir=tmp_path)
    other = load_dataset("synthetic:5:1", cache_dir=tmp_path)
    assert first.root != other.root and first.fingerprint != other.fingerprint


def test_synthetic_uses_the_cache_dir_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPAUDIT_CACHE_DIR", str(tmp_path))
    dataset = load_dataset("synthetic:2")
    assert dataset.root is not None and tmp_path in dataset.root.parents


@pytest.mark.parametrize("spec", ["synthetic:many", "synthetic:0", "synthetic:5:-1", "synthetic:1:2:3"])
def test_synthetic_bad_spec(spec: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="synthetic"):
        load_dataset(spec, cache_dir=tmp_path)


def test_default_synthetic_size_is_balanced() -> None:
    from clipaudit.data.synthetic import DEFAULT_COUNT
    from clipaudit.data.faces import balanced_labels

    labels = pd.DataFrame(balanced_labels(DEFAULT_COUNT, 0), columns=["race", "gender", "age"])
    cells = labels.groupby(["race", "gender"]).size()
    assert len(cells) == 14 and cells.min() >= 30


@pytest.mark.parametrize("outside", ["../x.jpg", "/etc/passwd", "img/../../x.jpg", "C:/x.jpg"])
def test_csv_paths_outside_the_csv_folder_are_refused(tmp_path, outside):
    from clipaudit.data import load_dataset
    from clipaudit.errors import DataError

    (tmp_path / "labels.csv").write_text(f"file,race\nimg/a.jpg,Black\n{outside},White\n")
    with pytest.raises(DataError, match=r"line 3: file .* is outside the CSV's folder"):
        load_dataset(f"csv:{tmp_path / 'labels.csv'}")


# -- safe reading -------------------------------------------------------------------------


def test_read_regular_file_names_size_and_limit(tmp_path: Path) -> None:
    from clipaudit.data.safe_files import FileTooLarge, read_regular_file

    (tmp_path / "eleven").write_bytes(b"x" * 11)
    assert read_regular_file(tmp_path / "eleven", limit=11) == b"x" * 11
    with pytest.raises(FileTooLarge, match=r"11 bytes, over the 10 bytes limit"):
        read_regular_file(tmp_path / "eleven", limit=10)


def test_a_folder_listed_as_an_image_is_not_a_regular_file(csv_dir: Path) -> None:
    (csv_dir / "labels.csv").write_text("file,race\nimgs/a.jpg,Black\nimgs/sub,White\n")
    dataset = load_dataset(f"csv:{csv_dir / 'labels.csv'}")
    assert dataset.find_bad_images() == ["imgs/sub (not a regular file)"]
    with pytest.raises(DataError, match=r"imgs/sub: not a regular file \(a folder\)"):
        dataset.open_image(1)


def test_same_file_under_two_spellings_names_both_lines(csv_dir: Path) -> None:
    (csv_dir / "labels.csv").write_text("file,race\nimgs/a.jpg,Black\nimgs/sub/../a.jpg,White\n")
    with pytest.raises(DataError, match=r"outside the CSV's folder"):  # '..' stays refused as it was
        load_dataset(f"csv:{csv_dir / 'labels.csv'}")
    (csv_dir / "labels.csv").write_text("file,race\nimgs/a.jpg,Black\nimgs/sub/b.jpg,White\n./imgs//a.jpg,White\n")
    with pytest.raises(DataError, match=r"line 2 \('imgs/a.jpg'\) and line 4 \('./imgs//a.jpg'\) are the same file"):
        load_dataset(f"csv:{csv_dir / 'labels.csv'}")
