"""The split data path (uint8 in decode workers, lookup-table normalisation on the device) gives the
pixel values transformers' own image processors give, for CLIP and SigLIP settings and awkward images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clipaudit.data import load_dataset
from clipaudit.embed.encoder import _PixelChunks
from clipaudit.models.pixels import DeviceNormaliser, pixel_spec_of

TOLERANCE = 1e-6


def _images() -> dict[str, Image.Image]:
    """One image per awkward kind, each with detail, so a one-pixel shift would show."""
    rng = np.random.default_rng(7)
    def noise(height, width, channels):
        return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    palette = Image.fromarray(noise(45, 70, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    palette_transparent = palette.copy()
    palette_transparent.info["transparency"] = 3
    sixteen_bit = Image.fromarray(rng.integers(0, 65536, (50, 61), dtype=np.uint16))
    exif_rotated = Image.fromarray(noise(40, 90, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    exif_rotated.info["exif"] = exif.tobytes()
    return {
        "rgb.png": Image.fromarray(noise(96, 128, 3)),
        "rgba.png": Image.fromarray(noise(80, 60, 4), mode="RGBA"),
        "cmyk.tif": Image.fromarray(noise(64, 64, 4), mode="CMYK"),
        "palette.png": palette,
        "palette_transparent.png": palette_transparent,
        "sixteen_bit.png": sixteen_bit,
        "exif_rotated.jpg": exif_rotated,
        "odd.png": Image.fromarray(noise(37, 91, 3)),
        "tall_odd.png": Image.fromarray(noise(113, 19, 3)),
        "tiny.png": Image.fromarray(noise(5, 3, 3)),
    }


@pytest.fixture(scope="module")
def awkward_dataset(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("awkward")
    names = []
    for name, image in _images().items():
        save = {"exif": image.info["exif"], "quality": 95} if "exif" in image.info else {}
        if "transparency" in image.info:
            save["transparency"] = image.info["transparency"]
        image.save(root / name, **save)
        names.append(name)
    (root / "labels.csv").write_text("file,kind\n" + "".join(f"{name},{name.split('.')[0]}\n" for name in names))
    return load_dataset(f"csv:{root / 'labels.csv'}", cache_dir=root / "cache")


def _processors():
    from transformers import AutoProcessor, CLIPImageProcessor, SiglipImageProcessor

    from clipaudit.models.demo import demo_model_dir

    return {
        "clip (ViT-L/14-336 settings)": CLIPImageProcessor(size={"shortest_edge": 336},
                                                           crop_size={"height": 336, "width": 336}),
        "clip, crop larger than the resize (zero padding), odd sizes": CLIPImageProcessor(
            size={"shortest_edge": 33}, crop_size={"height": 40, "width": 27}),
        "clip, bilinear, no rescale": CLIPImageProcessor(size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24},
                                                         resample=2, do_rescale=False),
        "siglip": SiglipImageProcessor(size={"height": 48, "width": 40}),
        "siglip, no normalisation": SiglipImageProcessor(size={"height": 32, "width": 32}, do_normalize=False),
        "the demo model's AutoProcessor": AutoProcessor.from_pretrained(str(demo_model_dir())).image_processor,
    }


@pytest.mark.parametrize("name", list(_processors()))
def test_split_path_equals_the_image_processor(name, awkward_dataset):
    processor = _processors()[name]
    spec = pixel_spec_of(processor)
    assert spec is not None
    normalise = DeviceNormaliser(spec, device=torch.device("cpu"), dtype=torch.float32)
    rows = list(range(len(awkward_dataset)))
    read_rows, pixels, bad, _ = _PixelChunks(awkward_dataset, spec.to_uint8, rows, chunk=len(rows))[0]
    assert bad == [] and read_rows.tolist() == rows and pixels.dtype == torch.uint8
    ours = normalise(pixels).numpy()
    for row in rows:
        expected = processor(images=awkward_dataset.open_image(row), return_tensors="np")["pixel_values"][0]
        assert ours[row].shape == expected.shape, awkward_dataset.image_id(row)
        difference = float(np.abs(ours[row] - expected).max())
        assert difference <= TOLERANCE, f"{name}: {awkward_dataset.image_id(row)} differs by {difference}"


def test_processors_whose_steps_differ_keep_the_per_image_path():
    from transformers import CLIPImageProcessor, SiglipImageProcessor

    assert pixel_spec_of(CLIPImageProcessor(do_center_crop=False)) is None  # output size depends on the image
    assert pixel_spec_of(SiglipImageProcessor(size={"shortest_edge": 30, "longest_edge": 60})) is None
    assert pixel_spec_of(object()) is None


def test_unreadable_images_are_named_by_the_chunk(tmp_path):
    Image.new("RGB", (20, 20), (10, 20, 30)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (tmp_path / "labels.csv").write_text("file,kind\ngood.png,a\nbroken.png,b\nmissing.png,c\n")
    dataset = load_dataset(f"csv:{tmp_path / 'labels.csv'}", cache_dir=tmp_path / "cache")
    from transformers import CLIPImageProcessor

    spec = pixel_spec_of(CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}))
    read_rows, pixels, bad, _ = _PixelChunks(dataset, spec.to_uint8, [0, 1, 2], chunk=3)[0]
    assert read_rows.tolist() == [0] and tuple(pixels.shape) == (1, 3, 16, 16)
    assert [row for row, _ in bad] == [1, 2] and bad[1][1] == "missing"
