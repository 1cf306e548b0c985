"""Hostile datasets: one clear line, exit 2, nothing written, in seconds; and every image mode as RGB.

The first table is inputs a dataset can hold to make clipaudit read outside its folder, hang
or fill memory; each must be refused through the CLI. Problems with one image are listed
as unreadable images (``--skip-bad-images`` skips them), problems with the table at load.
The second part checks the conversion of each image mode against arrays computed here.
"""
from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipaudit.cli import main
from clipaudit.data import load_dataset
from clipaudit.data.safe_files import MAX_IMAGE_BYTES, MAX_TABLE_BYTES

TAXONOMY = """\
name: gender-only
description: one attribute probe, enough to run the audit over a dataset
templates: ["a photo of a {label}."]
probes:
  - id: gender
    kind: attribute
    target: gender
    classes:
      - {id: Male, label: man}
      - {id: Female, label: woman}
    slices: [race]
"""
SECONDS_ALLOWED = 5.0
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")


def jpeg_bytes(colour: tuple[int, int, int] = (120, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def folder_dataset(tmp_path: Path, extra: list[str]) -> Path:
    """data/labels.csv listing two good images then ``extra`` paths; a good image sits outside data/."""
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    for name in ("0.jpg", "1.jpg"):
        (root / "img" / name).write_bytes(jpeg_bytes())
    (tmp_path / "secret.jpg").write_bytes(jpeg_bytes((1, 2, 3)))
    rows = [f"{path},White,Male" for path in ["img/0.jpg", "img/1.jpg", *extra]]
    (root / "labels.csv").write_text("file,race,gender\n" + "\n".join(rows) + "\n")
    return root


def hub_folder(tmp_path: Path, paths: list[str | None]) -> Path:
    """A save_to_disk folder whose Image cells hold ``paths`` (None: embedded bytes).

    ``save_to_disk`` always embeds image bytes, so the path-only cells that older folders and
    extracted archives hold are written into its Arrow file directly.
    """
    import datasets

    features = datasets.Features({"image": datasets.Image(), "gender": datasets.Value("string"), "race": datasets.Value("string")})
    table = {"image": [{"bytes": jpeg_bytes(), "path": None}] * len(paths), "gender": ["Male"] * len(paths), "race": ["White"] * len(paths)}
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(folder))
    cells = [{"bytes": jpeg_bytes(), "path": None} if path is None else {"bytes": None, "path": path} for path in paths]
    rewrite_image_cells(folder, cells)
    (tmp_path / "secret.jpg").write_bytes(jpeg_bytes((1, 2, 3)))
    return folder


def rewrite_image_cells(folder: Path, cells: list[dict]) -> None:
    """Replace the image column of a saved dataset's one Arrow file, leaving its state.json alone."""
    import pyarrow as pa

    (arrow_file,) = folder.glob("*.arrow")
    table = pa.ipc.open_stream(arrow_file.read_bytes()).read_all()  # in memory: the file is rewritten
    position = table.schema.get_field_index("image")
    field = table.schema.field(position)
    table = table.set_column(position, field, pa.array(cells, type=field.type))
    with pa.OSFile(str(arrow_file), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def symlink_out(tmp_path: Path) -> str:
    root = folder_dataset(tmp_path, ["img/evil.jpg"])
    (root / "img" / "evil.jpg").symlink_to(tmp_path / "secret.jpg")
    return f"csv:{root / 'labels.csv'}"


def folder_link_up(tmp_path: Path) -> str:
    root = folder_dataset(tmp_path, ["up/secret.jpg"])
    (root / "up").symlink_to(tmp_path, target_is_directory=True)
    return f"csv:{root / 'labels.csv'}"


def make_fifo(path: Path) -> None:
    """A named pipe; should a regression open it, writers come by after a while so the test fails, not hangs."""
    os.mkfifo(path)

    def release_readers() -> None:
        time.sleep(3 * SECONDS_ALLOWED)
        for _ in range(300):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a blocked reader now reads nothing
            except FileNotFoundError:
                return
            except OSError:  # nobody is reading it: the good case
                pass
            time.sleep(0.2)

    threading.Thread(target=release_readers, daemon=True).start()


def image_fifo(tmp_path: Path) -> str:
    root = folder_dataset(tmp_path, ["img/pipe.jpg"])
    make_fifo(root / "img" / "pipe.jpg")
    return f"csv:{root / 'labels.csv'}"


def link_to_dev_zero(tmp_path: Path) -> str:
    root = folder_dataset(tmp_path, ["img/zero.jpg"])
    (root / "img" / "zero.jpg").symlink_to("/dev/zero")
    return f"csv:{root / 'labels.csv'}"


def oversized_image(tmp_path: Path) -> str:
    root = folder_dataset(tmp_path, ["img/huge.jpg"])
    with open(root / "img" / "huge.jpg", "wb") as huge:  # sparse: no disk space used
        huge.truncate(MAX_IMAGE_BYTES + 1)
    return f"csv:{root / 'labels.csv'}"


def utkface_link_out(tmp_path: Path) -> str:
    (tmp_path / "utk").mkdir()
    (tmp_path / "utk" / "25_0_3_20170116174525125.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "secret.jpg").write_bytes(jpeg_bytes((1, 2, 3)))
    (tmp_path / "utk" / "30_1_1_20170116174525126.jpg").symlink_to(tmp_path / "secret.jpg")
    return f"utkface:{tmp_path / 'utk'}"


def duplicate_dot_slash(tmp_path: Path) -> str:
    return f"csv:{folder_dataset(tmp_path, ['./img/0.jpg']) / 'labels.csv'}"


def duplicate_symlink(tmp_path: Path) -> str:
    root = folder_dataset(tmp_path, ["img/alias.jpg"])
    (root / "img" / "alias.jpg").symlink_to("1.jpg")
    return f"csv:{root / 'labels.csv'}"


def fairface_duplicate(tmp_path: Path) -> str:
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "1.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,20-29,Male,White,True\nval//1.jpg,3-9,Female,Black,False\n"
    )
    return f"fairface:{tmp_path}"


def csv_fifo(tmp_path: Path) -> str:
    make_fifo(tmp_path / "labels.csv")
    return f"csv:{tmp_path / 'labels.csv'}"


def csv_dev_zero(tmp_path: Path) -> str:
    (tmp_path / "labels.csv").symlink_to("/dev/zero")
    return f"csv:{tmp_path / 'labels.csv'}"


def csv_oversized(tmp_path: Path) -> str:
    with open(tmp_path / "labels.csv", "wb") as huge:
        huge.truncate(MAX_TABLE_BYTES + 1)
    return f"csv:{tmp_path / 'labels.csv'}"


def hub_absolute_path(tmp_path: Path) -> str:
    return f"hf:{hub_folder(tmp_path, [None, str(tmp_path / 'secret.jpg')])}"


def hub_parent_path(tmp_path: Path) -> str:
    return f"hf:{hub_folder(tmp_path, [None, '../secret.jpg'])}"


def hub_duplicate_paths(tmp_path: Path) -> str:
    folder = hub_folder(tmp_path, [None, "face.jpg", "./face.jpg"])
    (folder / "face.jpg").write_bytes(jpeg_bytes())
    return f"hf:{folder}"


def hub_state_fifo(tmp_path: Path) -> str:
    folder = hub_folder(tmp_path, [None])
    (folder / "state.json").unlink()
    make_fifo(folder / "state.json")
    return f"hf:{folder}"


def hub_arrow_dev_zero(tmp_path: Path) -> str:
    folder = hub_folder(tmp_path, [None])
    (arrow_file,) = folder.glob("*.arrow")
    arrow_file.unlink()
    arrow_file.symlink_to("/dev/zero")
    return f"hf:{folder}"


# name: (builds the dataset and returns its SPEC, command that must refuse it, pattern of the line)
HOSTILE: dict[str, tuple[Callable[[Path], str], str, str]] = {
    "symlink out of the folder": (symlink_out, "audit", r"img/evil\.jpg \(outside the dataset folder\)"),
    "symlinked folder pointing up": (folder_link_up, "audit", r"up/secret\.jpg \(outside the dataset folder\)"),
    "image is a named pipe": (image_fifo, "audit", r"img/pipe\.jpg \(not a regular file\)"),
    "symlink to /dev/zero": (link_to_dev_zero, "audit", r"img/zero\.jpg \(outside the dataset folder\)"),
    "image over the size limit": (oversized_image, "audit", r"img/huge\.jpg \(larger than 64 MiB\)"),
    "utkface symlink out": (utkface_link_out, "audit", r"30_1_1_\d+\.jpg \(outside the dataset folder\)"),
    "same file as ./path": (duplicate_dot_slash, "validate", r"line 2 \('img/0\.jpg'\) and line 4 \('\./img/0\.jpg'\) are the same file"),
    "same file via symlink": (duplicate_symlink, "validate", r"line 3 \('img/1\.jpg'\) and line 4 \('img/alias\.jpg'\) are the same file"),
    "fairface same file twice": (fairface_duplicate, "validate", r"fairface_label_val\.csv: line 2 .* and line 3 .* are the same file"),
    "csv is a named pipe": (csv_fifo, "validate", r"labels\.csv: not a regular file \(a named pipe\)"),
    "csv links to /dev/zero": (csv_dev_zero, "validate", r"labels\.csv: not a regular file \(a device\)"),
    "csv over the size limit": (csv_oversized, "validate", r"labels\.csv: CSV too large .*over the 256 MiB limit"),
    "hf absolute image path": (hub_absolute_path, "audit", r"1 \(outside the dataset folder\)"),
    "hf ../ image path": (hub_parent_path, "audit", r"1 \(outside the dataset folder\)"),
    "hf same file twice": (hub_duplicate_paths, "validate", r"rows 1 and 2 are the same file"),
    "hf saved folder holds a pipe": (hub_state_fifo, "validate", r"state\.json: not a regular file \(a named pipe\)"),
    "hf saved folder links to /dev/zero": (hub_arrow_dev_zero, "validate", r"\.arrow: outside the dataset folder"),
}
NEEDS = {"image is a named pipe": needs_fifo, "csv is a named pipe": needs_fifo, "hf saved folder holds a pipe": needs_fifo,
         "symlink to /dev/zero": needs_dev_zero, "csv links to /dev/zero": needs_dev_zero,
         "hf saved folder links to /dev/zero": needs_dev_zero}


@pytest.fixture(scope="module", autouse=True)
def warm_imports(tmp_path_factory) -> None:
    """Import torch, transformers and datasets once, so the timings below are clipaudit's own."""
    import datasets  # noqa: F401

    from clipaudit.models import load_model

    load_model("demo", device="cpu", dtype="fp32", cache_dir=tmp_path_factory.mktemp("warm"))


@pytest.mark.parametrize("case", [pytest.param(name, marks=NEEDS.get(name, ())) for name in HOSTILE])
def test_hostile_dataset_is_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    build, command, pattern = HOSTILE[case]
    spec = build(tmp_path)
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text(TAXONOMY)
    out = tmp_path / "out"
    if command == "audit":
        argv = ["audit", "--taxonomy", str(taxonomy), "--data", spec, "--model", "demo", "--out", str(out),
                "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--quiet"]
    else:
        argv = ["validate", str(taxonomy), "--data", spec]
    capsys.readouterr()
    started = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("clipaudit: error: "), err
    assert re.search(pattern, err[0]), err[0]
    assert "Traceback" not in err[0]
    assert not out.exists()
    assert elapsed < SECONDS_ALLOWED


@pytest.mark.parametrize("case", ["symlink out of the folder", "image is a named pipe", "hf ../ image path"])
def test_bad_images_can_be_skipped(case, tmp_path):
    if case == "image is a named pipe" and not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need a POSIX system")
    dataset = load_dataset(HOSTILE[case][0](tmp_path))
    bad = dataset.find_bad_images()
    assert len(bad) == 1 and len(dataset) - len(bad) >= 1
    assert len(dataset.fingerprint) == 64  # refused images are fingerprinted by their reason, never read


def test_symlinks_inside_the_folder_are_read(tmp_path):
    root = folder_dataset(tmp_path, ["img/link.jpg"])
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "face.jpg").write_bytes(jpeg_bytes((0, 250, 0)))
    (root / "img" / "link.jpg").symlink_to(root / "elsewhere" / "face.jpg")
    dataset = load_dataset(f"csv:{root / 'labels.csv'}")
    assert dataset.find_bad_images() == []
    assert dataset.open_image(2).getpixel((8, 8))[1] > 200


def test_hub_relative_path_inside_the_saved_folder_is_read(tmp_path):
    folder = hub_folder(tmp_path, ["images/face.jpg"])
    (folder / "images").mkdir()
    (folder / "images" / "face.jpg").write_bytes(jpeg_bytes((0, 0, 250)))
    assert load_dataset(f"hf:{folder}").open_image(0).getpixel((8, 8))[2] > 200


def test_hub_paths_may_point_into_any_allowed_cache(tmp_path):
    """Hub datasets keep paths into the datasets cache (extracted archives) or the Hub cache (downloads)."""
    import datasets

    from clipaudit.data.hub import HubImageDataset

    hub_cache = tmp_path / "hub-cache"
    hub_cache.mkdir()
    (hub_cache / "face.jpg").write_bytes(jpeg_bytes((250, 0, 0)))
    folder = hub_folder(tmp_path, [str(hub_cache / "face.jpg"), str(tmp_path / "secret.jpg")])
    saved = datasets.load_from_disk(str(folder))
    dataset = HubImageDataset(saved, spec="hf:x:train", config=None, split="train", path_roots=(tmp_path / "datasets-cache", hub_cache))
    assert dataset.open_image(0).getpixel((8, 8))[0] > 200
    assert dataset.find_bad_images() == ["1 (outside the dataset folder)"]


# -- hf: fingerprints cover the image bytes ---------------------------------------------


def test_hub_fingerprint_changes_with_the_image_bytes(tmp_path):
    import datasets

    folder = hub_folder(tmp_path, [None, None])
    before = load_dataset(f"hf:{folder}").fingerprint
    library_fingerprint = datasets.load_from_disk(str(folder))._fingerprint
    rewrite_image_cells(folder, [{"bytes": jpeg_bytes(), "path": None}, {"bytes": jpeg_bytes((9, 9, 9)), "path": None}])
    assert datasets.load_from_disk(str(folder))._fingerprint == library_fingerprint  # the library did not notice
    assert load_dataset(f"hf:{folder}").fingerprint != before


def test_hub_batched_digests_equal_the_row_by_row_ones(tmp_path):
    from clipaudit.data.base import ImageDataset

    dataset = load_dataset(f"hf:{hub_folder(tmp_path, [None, None, '../secret.jpg'])}")
    assert list(dataset._image_digests()) == list(ImageDataset._image_digests(dataset))


# -- every image mode becomes the 8-bit RGB image the processor expects --------------------

SIXTEEN_BITS = np.array([[0, 1, 128, 129], [257, 32767, 32768, 65535]], dtype=np.uint16)
RNG = np.random.default_rng(7)
COLOURS = RNG.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
ALPHAS = np.array([[0, 64, 128, 255]] * 4, dtype=np.uint8)


def grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(values, dtype=np.uint8)[..., None], 3, axis=2)


def scaled(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of low..high onto 0..255, rounded; what non-8-bit greys are expected to become."""
    values = np.where(np.isfinite(values), values, low).astype(np.float64)
    return grey(np.rint((values - low) * 255 / (high - low)))


def on_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    colour, alpha = colour.astype(np.float64), alpha.astype(np.float64)[..., None]
    return np.rint((colour * alpha + 255 * (255 - alpha)) / 255).astype(np.uint8)


def palette_case(transparent: bool):
    palette = RNG.integers(0, 256, size=(4, 3), dtype=np.uint8)
    indices = np.array([[0, 1, 2, 3]] * 4, dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette.flatten().tolist())
    if not transparent:
        return image, "p.png", {}, "P", palette[indices]
    alpha = np.array([255, 0, 128, 40], dtype=np.uint8)
    return image, "p.png", {"transparency": alpha.tobytes()}, "P", on_white(palette[indices], alpha[indices])


def cmyk_case():
    cmyk = RNG.integers(0, 256, size=(4, 4, 4), dtype=np.uint8).astype(np.int64)
    remaining = 255 - cmyk[..., 3:]  # what black leaves of each channel
    expected = remaining - np.rint(cmyk[..., :3] * remaining / 255)
    return Image.fromarray(cmyk.astype(np.uint8), mode="CMYK"), "c.tif", {}, "CMYK", expected.astype(np.uint8)


def multi_frame_case():
    frames = [Image.fromarray(COLOURS), Image.fromarray(255 - COLOURS)]
    return frames[0], "frames.tif", {"save_all": True, "append_images": frames[1:]}, "RGB", COLOURS


def exif_rotated_case():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: shown after turning 90 degrees clockwise
    return Image.fromarray(COLOURS[:, :3]), "turned.png", {"exif": exif}, "RGB", np.rot90(COLOURS[:, :3], k=-1)


def int32_image(values) -> Image.Image:
    return Image.fromarray(np.asarray(values, dtype=np.int32))


def float_image(values) -> Image.Image:
    return Image.fromarray(np.asarray(values, dtype=np.float32))


WIDE = [[-1000, 0], [70000, 34500]]
FLOATS_IN_0_1 = [[0.0, 0.25], [0.75, 1.0]]
FLOATS_WIDE = [[-2.0, 0.0], [3.0, np.nan]]
# name: () -> (image to save, file name, save options, mode Pillow reads it back in, expected RGB array)
MODES = {
    "I;16 scaled from 0..65535": lambda: (Image.fromarray(SIXTEEN_BITS), "g.png", {}, "I;16", scaled(SIXTEEN_BITS, 0, 65535)),
    "I;16B scaled from 0..65535": lambda: (
        Image.frombytes("I;16B", (4, 2), SIXTEEN_BITS.astype(">u2").tobytes()), "g.tif", {}, "I;16B", scaled(SIXTEEN_BITS, 0, 65535)),
    "I within 0..65535 as 16-bit": lambda: (int32_image(SIXTEEN_BITS), "i.tif", {}, "I", scaled(SIXTEEN_BITS, 0, 65535)),
    "I beyond 16 bits from its range": lambda: (int32_image(WIDE), "i.tif", {}, "I", scaled(np.array(WIDE), -1000, 70000)),
    "F within 0..1": lambda: (float_image(FLOATS_IN_0_1), "f.tif", {}, "F", scaled(np.array(FLOATS_IN_0_1), 0, 1)),
    "F beyond 0..1 from its range, NaN as minimum": lambda: (
        float_image(FLOATS_WIDE), "f.tif", {}, "F", scaled(np.array(FLOATS_WIDE), -2, 3)),
    "CMYK": cmyk_case,
    "P": lambda: palette_case(transparent=False),
    "P with transparency on white": lambda: palette_case(transparent=True),
    "LA on white": lambda: (
        Image.fromarray(np.dstack([COLOURS[..., 0], ALPHAS]), mode="LA"), "la.png", {}, "LA", on_white(grey(COLOURS[..., 0]), ALPHAS)),
    "RGBA on white": lambda: (
        Image.fromarray(np.dstack([COLOURS, ALPHAS]), mode="RGBA"), "rgba.png", {}, "RGBA", on_white(COLOURS, ALPHAS)),
    "1-bit": lambda: (Image.fromarray(COLOURS[..., 0] > 127), "b.png", {}, "1", grey((COLOURS[..., 0] > 127) * 255)),
    "first of several frames": multi_frame_case,
    "EXIF orientation applied": exif_rotated_case,
}


@pytest.mark.parametrize("case", list(MODES))
def test_image_mode_opens_as_expected_rgb(case, tmp_path):
    image, file_name, save_options, stored_mode, expected = MODES[case]()
    image.save(tmp_path / file_name, **save_options)
    with Image.open(tmp_path / file_name) as stored:
        assert stored.mode == stored_mode  # the file really holds the mode under test
    (tmp_path / "labels.csv").write_text(f"file,race\n{file_name},White\n")
    opened = load_dataset(f"csv:{tmp_path / 'labels.csv'}").open_image(0)
    assert opened.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(opened), expected)
