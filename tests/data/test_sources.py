"""build_dataset on real tiny data written here: IDX files, image folders, save_to_disk datasets."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from distgan.data import ImageDataset, build_dataset
from distgan.data.folder import IMAGE_EXTENSIONS
from distgan.data.mnist import array_dataset
from distgan.errors import DataError
from tests.data._helpers import (
    LABELS_MAGIC,
    folder_cfg,
    hf_cfg,
    idx_bytes,
    indexed_digits,
    mnist_cfg,
    save_image,
    solid,
    write_idx,
    write_mnist,
)

REPO = Path(__file__).resolve().parents[2]


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg, f"DataError must be one line, got: {msg!r}"
    return msg


# ---- mnist (IDX) ------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_mnist_idx_pixels_and_labels_exact(tmp_path, gz):
    written = write_mnist(tmp_path, gz=gz)
    ds = build_dataset(mnist_cfg(tmp_path, resolution=28))
    images, labels = written["train"]
    assert len(ds) == len(images) == 40
    for i in (0, 7, 39):
        item = ds[i]
        assert item["image"].dtype == torch.uint8 and item["image"].shape == (1, 28, 28)
        assert np.array_equal(item["image"][0].numpy(), images[i])  # 28 -> 28: untouched pixels
        assert item["label"].dtype == torch.int64 and item["label"].ndim == 0 and int(item["label"]) == labels[i]
    assert ds.hf.features["image"] == datasets.Array2D((28, 28), "uint8")


def test_mnist_mixed_gz_and_plain_files_and_test_split(tmp_path):
    write_mnist(tmp_path, gz=True)
    # Replace one train file by its plain form: each file may be either.
    plain = gzip.decompress((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(plain)
    assert len(build_dataset(mnist_cfg(tmp_path))) == 40
    test = build_dataset(mnist_cfg(tmp_path, split="test"))
    assert len(test) == 12
    assert [int(test[i]["label"]) for i in range(12)] == list(range(12))


def test_mnist_resizes_and_channels(tmp_path):
    write_mnist(tmp_path)
    ds = build_dataset(mnist_cfg(tmp_path, resolution=32, channels=3))
    img = ds[3]["image"]
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])  # gray replicated to RGB
    assert build_dataset(mnist_cfg(tmp_path, resolution=16))[0]["image"].shape == (1, 16, 16)


def test_array_dataset_matches_numpy(tmp_path):
    images, labels = indexed_digits(50)
    hf = array_dataset(images, labels)
    assert len(hf) == 50 and hf.features["label"] == datasets.Value("int64")
    back = hf.with_format("numpy")[[4, 49]]
    assert np.array_equal(np.asarray(back["image"], dtype=np.uint8), images[[4, 49]])
    assert list(back["label"]) == [4, 49]


def test_mnist_missing_dir(tmp_path):
    with pytest.raises(DataError) as err:
        build_dataset(mnist_cfg(tmp_path / "nope"))
    assert str(tmp_path / "nope") in one_line(err) and "data.path" in str(err.value)


def test_mnist_missing_file_lists_expected_names(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        build_dataset(mnist_cfg(tmp_path))
    msg = one_line(err)
    assert "missing train-labels-idx1-ubyte" in msg
    assert "train-images-idx3-ubyte" in msg and ".gz" in msg


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_mnist_truncated_file(tmp_path, gz):
    write_mnist(tmp_path, gz=False)
    name = "train-images-idx3-ubyte"
    data = (tmp_path / name).read_bytes()[:-100]
    (tmp_path / name).unlink()
    if gz:  # a gzip stream cut short, as from an interrupted download
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data)[:-30])
    else:
        (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError) as err:
        build_dataset(mnist_cfg(tmp_path))
    msg = one_line(err)
    assert name in msg and ("truncated" in msg or "cannot read" in msg)


def test_mnist_bad_magic(tmp_path):
    write_mnist(tmp_path, gz=False)
    images, _ = indexed_digits(40)
    # Labels magic on the images file: the classic swapped-files mistake.
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(LABELS_MAGIC, images))
    with pytest.raises(DataError) as err:
        build_dataset(mnist_cfg(tmp_path))
    assert "magic 2049" in one_line(err) and "2051" in str(err.value)


def test_mnist_count_mismatch(tmp_path):
    write_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", LABELS_MAGIC, np.arange(39, dtype=np.uint8), gz=False)
    with pytest.raises(DataError) as err:
        build_dataset(mnist_cfg(tmp_path))
    assert "40 images but 39 labels" in one_line(err)


def test_mnist_unknown_split(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(DataError) as err:
        build_dataset(mnist_cfg(tmp_path, split="validation"))
    assert "train and test" in one_line(err)


# ---- imagefolder ------------------------------------------------------------------------
def test_folder_class_subfolders(tmp_path):
    save_image(tmp_path / "dog" / "a.PNG", solid("RGB", (20, 20), (0, 0, 255)))
    save_image(tmp_path / "cat" / "b.jpg", solid("RGB", (20, 20), (255, 0, 0)), quality=95)
    save_image(tmp_path / "cat" / "deeper" / "c.JPEG", solid("RGB", (20, 20), (255, 0, 0)), quality=95)
    save_image(tmp_path / "cat" / "._b.jpg", solid("RGB", (8, 8), 0))  # resource fork: skipped
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "._junk.png").write_bytes(b"AppleDouble")  # would be corrupt: must be skipped
    ds = build_dataset(folder_cfg(tmp_path, resolution=8))
    assert len(ds) == 3
    assert ds.classes == ["cat", "dog"]
    labels = [int(ds[i]["label"]) for i in range(3)]
    assert labels == [0, 0, 1]  # sorted paths: cat/b.jpg, cat/deeper/c.JPEG, dog/a.PNG
    assert ds[2]["image"][2].float().mean() > 250 and ds[2]["image"][0].float().mean() < 5  # blue dog


def test_folder_flat_is_unlabelled(tmp_path):
    for i in range(3):
        save_image(tmp_path / f"{i}.png", solid("L", (10, 10), 40 * i))
    save_image(tmp_path / "sub" / "x.png", solid("L", (10, 10), 200))  # an image at the top: all -1
    ds = build_dataset(folder_cfg(tmp_path, resolution=8))
    assert len(ds) == 4 and ds.classes == []
    assert [int(ds[i]["label"]) for i in range(4)] == [-1] * 4


def test_folder_mixed_modes_and_sizes(tmp_path):
    pal = Image.new("P", (30, 10))
    pal.putpalette([0, 255, 0] * 256)
    pal_t = Image.new("P", (16, 16), 1)
    pal_t.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal_t.info["transparency"] = 1  # palette entry 1 (white) fully transparent -> black
    sixteen = Image.fromarray(np.full((12, 40), 32896, dtype=np.uint16))  # I;16: 32896/257 = 128
    images = {
        "rgba.png": solid("RGBA", (64, 20), (255, 0, 0, 0)),  # transparent red -> black
        "rgba_opaque.png": solid("RGBA", (9, 9), (10, 20, 30, 255)),
        "p.png": pal,
        "p_transparent.png": pal_t,
        "l.png": solid("L", (100, 50), 77),
        "la.png": solid("LA", (20, 20), (200, 255)),
        "rgb.bmp": solid("RGB", (17, 33), (1, 2, 3)),
        "gray16.png": sixteen,
        "cmyk.jpg": solid("CMYK", (24, 24), (0, 0, 0, 0)),  # no ink: white
        "bilevel.tif": solid("1", (14, 14), 1),
        "anim.gif": solid("P", (12, 12), 0),
        "rgb.webp": solid("RGB", (40, 30), (0, 0, 250)),
    }
    for name, img in images.items():
        save_image(tmp_path / name, img, **({"lossless": True} if name.endswith("webp") else {}))
    for channels in (1, 3):
        ds = build_dataset(folder_cfg(tmp_path, resolution=8, channels=channels))
        names = sorted(images)
        assert len(ds) == len(names)
        got = {name: ds[i]["image"] for i, name in enumerate(names)}
        for name, img in got.items():
            assert img.shape == (channels, 8, 8) and img.dtype == torch.uint8, name
        if channels == 3:
            assert got["rgba.png"].max() == 0
            assert got["rgba_opaque.png"][:, 0, 0].tolist() == [10, 20, 30]
            assert got["p.png"][:, 4, 4].tolist() == [0, 255, 0]
            assert got["p_transparent.png"].max() == 0
            assert got["rgb.bmp"][:, 4, 4].tolist() == [1, 2, 3]
            assert got["cmyk.jpg"].min() >= 250
            assert got["rgb.webp"][:, 3, 3].tolist() == [0, 0, 250]
        else:
            assert int(got["gray16.png"][0, 4, 4]) == 128  # scaled, not clipped to 255
            assert int(got["l.png"][0, 4, 4]) == 77
            assert int(got["la.png"][0, 4, 4]) == 200
            assert int(got["bilevel.tif"][0, 4, 4]) == 255


def test_resize_shorter_side_then_center_crop(tmp_path):
    # 64 x 32 (w x h): left 24 columns black, right white, after resize to 32 x 16 -> left 12 black.
    # The centre 16 x 16 crop spans x = 8..24 of the resized image: 4 black columns then 12 white.
    arr = np.zeros((32, 64), np.uint8)
    arr[:, 24:] = 255
    save_image(tmp_path / "wide.png", Image.fromarray(arr, "L"))
    img = build_dataset(folder_cfg(tmp_path, resolution=16, channels=1))[0]["image"][0]
    assert img.shape == (16, 16)
    assert (img[:, :3] == 0).all() and (img[:, 5:] == 255).all()
    # A tall image keeps its centre rows the same way.
    tall = np.zeros((64, 32), np.uint8)
    tall[:24, :] = 255
    save_image(tmp_path / "wide.png", Image.fromarray(tall, "L"))
    img = build_dataset(folder_cfg(tmp_path, resolution=16, channels=1))[0]["image"][0]
    assert (img[:3] == 255).all() and (img[5:] == 0).all()


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((16, 32, 3), np.uint8)  # stored wide: left half red
    arr[:, :16, 0] = 255
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": displayed tall, red on top
    save_image(tmp_path / "rot.jpg", img, exif=exif, quality=100)
    out = build_dataset(folder_cfg(tmp_path, resolution=16))[0]["image"]
    assert out.shape == (3, 16, 16)
    assert out[0, :6].float().mean() > 200 and out[0, -6:].float().mean() < 50


def test_folder_corrupt_image_named(tmp_path):
    save_image(tmp_path / "a_good.png", solid("RGB", (10, 10), 5))
    bad = tmp_path / "b_bad.png"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    ds = build_dataset(folder_cfg(tmp_path, resolution=8))  # the first image decodes: built
    with pytest.raises(DataError) as err:
        ds[1]
    assert str(bad) in one_line(err)
    bad.rename(tmp_path / "0_bad.png")  # now the first image: build_dataset itself must fail
    with pytest.raises(DataError) as err:
        build_dataset(folder_cfg(tmp_path, resolution=8))
    assert str(tmp_path / "0_bad.png") in one_line(err)


def test_folder_truncated_jpeg_is_an_error_not_skipped(tmp_path):
    rng = np.random.default_rng(1)
    path = save_image(tmp_path / "t.jpg", Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataError) as err:
        build_dataset(folder_cfg(tmp_path, resolution=8))
    assert str(path) in one_line(err)


def test_folder_empty_and_missing(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        build_dataset(folder_cfg(tmp_path))
    msg = one_line(err)
    assert str(tmp_path) in msg and all(ext in msg for ext in IMAGE_EXTENSIONS)
    with pytest.raises(DataError) as err:
        build_dataset(folder_cfg(tmp_path / "absent"))
    assert "absent" in one_line(err)


def _split_folder(root: Path) -> Path:
    """train/ with classes a and b (red, green), test/ with class a only (blue)."""
    for i in range(3):
        save_image(root / "train" / "a" / f"{i}.png", solid("RGB", (10, 10), (255, 0, 0)))
        save_image(root / "train" / "b" / f"{i}.png", solid("RGB", (10, 10), (0, 255, 0)))
    for i in range(2):
        save_image(root / "test" / "a" / f"{i}.png", solid("RGB", (10, 10), (0, 0, 255)))
    return root


def test_folder_with_split_subfolders_selects_the_split(tmp_path):
    root = _split_folder(tmp_path)
    train = build_dataset(folder_cfg(root, resolution=8))
    test = build_dataset(folder_cfg(root, split="test", resolution=8))
    assert len(train) == 6 and train.classes == ["a", "b"]  # classes come from inside the split
    assert len(test) == 2 and test.classes == ["a"]
    assert all(int(test[i]["image"][2, 0, 0]) == 255 and int(test[i]["image"][0, 0, 0]) == 0 for i in range(2))
    with pytest.raises(DataError) as err:
        build_dataset(folder_cfg(root, split="validation", resolution=8))
    msg = one_line(err)
    assert "validation" in msg and "test" in msg and "train" in msg


def test_plain_folder_trains_but_refuses_a_test_split(tmp_path):
    for i in range(3):
        save_image(tmp_path / "cat" / f"{i}.png", solid("RGB", (10, 10), (255, 0, 0)))
    assert len(build_dataset(folder_cfg(tmp_path, resolution=8))) == 3
    with pytest.raises(DataError) as err:
        build_dataset(folder_cfg(tmp_path, split="test", resolution=8))
    msg = one_line(err)
    assert str(tmp_path) in msg and "test/" in msg and "eval.real_split" in msg


# ---- hf (save_to_disk) ------------------------------------------------------------------
def _pil_dataset(n: int = 6) -> datasets.Dataset:
    imgs = [solid("RGB", (12 + i, 10), (20 * i, 0, 0)) for i in range(n)]
    features = datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=[f"c{k}" for k in range(3)])})
    return datasets.Dataset.from_dict({"img": imgs, "y": [i % 3 for i in range(n)]}, features=features)


def test_hf_save_to_disk_dataset_and_dict(tmp_path):
    ds = _pil_dataset()
    ds.save_to_disk(str(tmp_path / "one"))
    got = build_dataset(hf_cfg(tmp_path / "one", image_column="img", label_column="y", resolution=8))
    assert len(got) == 6 and got.classes == ["c0", "c1", "c2"]
    assert [int(got[i]["label"]) for i in range(6)] == [0, 1, 2, 0, 1, 2]
    assert got[5]["image"][:, 4, 4].tolist() == [100, 0, 0]

    datasets.DatasetDict({"train": ds, "test": ds.select([0, 1])}).save_to_disk(str(tmp_path / "dict"))
    test = build_dataset(hf_cfg(tmp_path / "dict", split="test", image_column="img", label_column="y"))
    assert len(test) == 2 and test[1]["image"].shape == (3, 32, 32)
    with pytest.raises(DataError) as err:
        build_dataset(hf_cfg(tmp_path / "dict", split="validation", image_column="img"))
    assert "train" in one_line(err) and "test" in str(err.value)


def test_hf_column_kinds(tmp_path):
    png = []
    for i in range(4):
        path = save_image(tmp_path / "files" / f"{i}.png", solid("L", (10, 10), 50 + i))
        png.append(path)
    raw = [p.read_bytes() for p in png]
    hwc = np.zeros((4, 10, 10, 3), np.uint8)
    hwc[..., 1] = 99
    chw = np.full((4, 1, 10, 10), 0.5, np.float32)
    cases = {
        "dicts": datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in raw]}),
        "nobytes": datasets.Dataset.from_dict({"image": [{"bytes": None, "path": str(p)} for p in png]}),
        "binary": datasets.Dataset.from_dict({"image": raw}),
        "paths": datasets.Dataset.from_dict({"image": [str(p) for p in png]}),
        "array3d": datasets.Dataset.from_dict(
            {"image": hwc}, features=datasets.Features({"image": datasets.Array3D((10, 10, 3), "uint8")})
        ),
        "floatlist": datasets.Dataset.from_dict({"image": chw.tolist()}),
    }
    for name, hf in cases.items():
        hf.save_to_disk(str(tmp_path / name))
        ds = build_dataset(hf_cfg(tmp_path / name, resolution=8, channels=1 if name != "array3d" else 3))
        assert len(ds) == 4 and [int(ds[i]["label"]) for i in range(4)] == [-1] * 4, name  # no label column
        img = ds[2]["image"]
        if name == "array3d":
            assert img.shape == (3, 8, 8) and img[:, 4, 4].tolist() == [0, 99, 0]
        elif name == "floatlist":
            assert img.shape == (1, 8, 8) and int(img[0, 4, 4]) == 128  # 0.5 * 255 rounded
        else:
            assert img.shape == (1, 8, 8) and int(img[0, 4, 4]) == 52, name


def test_hf_missing_image_column_lists_columns(tmp_path):
    _pil_dataset().save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError) as err:
        build_dataset(hf_cfg(tmp_path / "d"))  # image_column defaults to "image"
    msg = one_line(err)
    assert "'image'" in msg and "img, y" in msg and "data.image_column" in msg


def test_hf_bad_label_column_and_bad_image_column_type(tmp_path):
    hf = _pil_dataset().add_column("name", [f"n{i}" for i in range(6)])
    hf.save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError) as err:
        build_dataset(hf_cfg(tmp_path / "d", image_column="img", label_column="name"))
    assert "data.label_column=null" in one_line(err)
    with pytest.raises(DataError) as err:
        build_dataset(hf_cfg(tmp_path / "d", image_column="y"))
    assert "'y'" in one_line(err)


def test_hf_corrupt_row_named_by_index(tmp_path):
    good = (save_image(tmp_path / "g.png", solid("RGB", (8, 8), 1))).read_bytes()
    hf = datasets.Dataset.from_dict(
        {"image": [{"bytes": good, "path": None}, {"bytes": b"garbage", "path": None}]},
        features=datasets.Features({"image": datasets.Image(decode=False)}),
    )
    hf.save_to_disk(str(tmp_path / "d"))
    ds = build_dataset(hf_cfg(tmp_path / "d", resolution=8))
    with pytest.raises(DataError) as err:
        ds[1]
    assert "row 1 of" in one_line(err) and str(tmp_path / "d") in str(err.value)


def test_hf_plain_directory_is_not_a_saved_dataset(tmp_path):
    save_image(tmp_path / "a.png", solid("RGB", (8, 8), 1))
    with pytest.raises(DataError) as err:
        build_dataset(hf_cfg(tmp_path))
    assert "data.source=imagefolder" in one_line(err)
    with pytest.raises(DataError) as err:
        build_dataset(hf_cfg(tmp_path / "missing" / "dir"))
    assert "not a directory" in one_line(err)


def test_dataset_pickles_for_spawned_workers(tmp_path):
    import pickle

    write_mnist(tmp_path / "m")
    save_image(tmp_path / "f" / "x.png", solid("RGB", (9, 9), (1, 2, 3)))
    for ds in (build_dataset(mnist_cfg(tmp_path / "m")), build_dataset(folder_cfg(tmp_path / "f"))):
        back = pickle.loads(pickle.dumps(ds))
        assert isinstance(back, ImageDataset) and torch.equal(back[0]["image"], ds[0]["image"])


# ---- hub: offline failures only, in a subprocess so HF_HUB_OFFLINE is read at import ----
HUB_PROBE = textwrap.dedent("""
    import json, sys, time
    from distgan.config import DataConfig
    from distgan.data import build_dataset
    from distgan.errors import DataError
    out = {}
    cases = (
        ("mnist", DataConfig(source="hf", path="ylecun/mnist")),
        ("hf", DataConfig(source="hf", path="someone/some-images")),
    )
    for key, cfg in cases:
        t = time.monotonic()
        try:
            build_dataset(cfg)
            out[key] = {"error": None}
        except DataError as err:
            out[key] = {"error": str(err), "seconds": time.monotonic() - t}
    print(json.dumps(out))
""")


def test_hub_offline_fails_fast_pointing_at_data_path(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}
    env.pop("HF_DATASETS_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", HUB_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("mnist", "hf"):
        msg = out[key]["error"]
        assert msg and "\n" not in msg and "data.path" in msg, (key, msg)
        assert out[key]["seconds"] < 10, out[key]
    # Both ways to train without the hub are named: IDX files, and the bundled subset.
    assert (
        "IDX" in out["mnist"]["error"] and "bundled" in out["mnist"]["error"] and "save_to_disk" in out["hf"]["error"]
    )


# ---- the real MNIST files, where this machine has them ----------------------------------
SHARED = Path(os.environ.get("DISTGAN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.mark.skipif(
    not (SHARED / "mnist").is_dir(),
    reason=f"no MNIST IDX files at {SHARED / 'mnist'} (set DISTGAN_SHARED_DATA to the shared data folder)",
)
def test_real_mnist_from_shared_data():
    train = build_dataset(mnist_cfg(SHARED / "mnist", resolution=32))
    assert len(train) == 60000
    first = train[0]
    assert first["image"].shape == (1, 32, 32) and first["image"].dtype == torch.uint8
    assert int(first["label"]) == 5  # the first MNIST training digit is a 5
    assert 0 < first["image"].float().mean() < 128  # a dark background with a bright stroke
    test = build_dataset(mnist_cfg(SHARED / "mnist", split="test", resolution=28))
    assert len(test) == 10000 and int(test[0]["label"]) == 7
    assert sorted(set(train.labels.tolist())) == list(range(10))
