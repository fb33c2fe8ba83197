"""ImageNet-layout loader: class map from sorted train folders, ADM crop size, flip only on
train, corrupt files -> UserError naming them or skipped and counted, layout errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from unite import config
from unite.data import build_dataset
from unite.data.images import ImageFolderDataset, adm_center_crop, prepare
from unite.errors import UserError

WNIDS = ["n02", "n01", "n03"]  # deliberately unsorted on creation


def _write(path, w, h, rng, kind="gradient"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "gradient":  # left-right asymmetric, so a flip is visible
        row = np.linspace(0, 255, w, dtype=np.float32)
        arr = np.broadcast_to(row[None, :, None], (h, w, 3)).astype(np.uint8)
        arr = arr.copy()
        arr[..., 1] = rng.integers(0, 30, size=(h, w))
    else:
        arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=95)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imnet"
    sizes = [(40, 30), (64, 100), (33, 33), (120, 50)]
    for c in WNIDS:
        for j, (w, h) in enumerate(sizes):
            _write(root / "train" / c / f"{c}_{j}.JPEG", w, h, rng)
        _write(root / "val" / c / f"val_{c}.JPEG", 50, 45, rng)
    (root / "train" / "n01" / "n01_bad.JPEG").write_bytes(b"\xff\xd8 this is not a jpeg")
    return root


def _cfg(root, **sets):
    base = {"data.kind": "imagefolder", "data.root": str(root), "data.image_size": 16,
            "data.num_classes": 3, "model.patch_size": 4, "model.num_registers": 16}
    base.update(sets)
    return config.from_dict({}, [f"{k}={v}" for k, v in base.items()])


def test_class_map_sorted_from_train_and_shared_with_val(folder):
    train = build_dataset(_cfg(folder, **{"data.on_corrupt": "skip"}), "train")
    val = build_dataset(_cfg(folder), "val")
    assert train.classes == ["n01", "n02", "n03"] == val.classes
    assert train.class_to_idx == {"n01": 0, "n02": 1, "n03": 2}
    assert len(train) == 13 and len(val) == 3
    for rel, y in val.items:
        assert rel.split("/")[1] == val.classes[y]


def test_adm_crop_size_and_range(folder):
    val = build_dataset(_cfg(folder), "val")
    x, y = val[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and y == 0
    for w, h in [(500, 375), (256, 256), (300, 1000), (17, 40)]:
        out = adm_center_crop(Image.new("RGB", (w, h)), 256 if w > 100 else 16)
        assert out.size == ((256, 256) if w > 100 else (16, 16))


def test_adm_crop_keeps_center():
    arr = np.zeros((60, 200, 3), np.uint8)
    arr[:, 70:130] = 255  # a white band in the middle of a wide image
    out = np.asarray(adm_center_crop(Image.fromarray(arr), 30))
    assert out.shape == (30, 30, 3) and out.mean() > 250


def test_flip_only_on_train(folder):
    cfg = _cfg(folder, **{"data.on_corrupt": "skip", "data.hflip": True})
    train = ImageFolderDataset(cfg, "train")
    val = ImageFolderDataset(cfg, "val")
    torch.manual_seed(0)
    i = 1  # a gradient image: flipped red channel runs the other way
    reds = {float(train[i][0][0, :, 0].mean() - train[i][0][0, :, -1].mean()) > 0 for _ in range(30)}
    assert reds == {True, False}
    vals = {float(val[0][0][0, :, 0].mean() - val[0][0][0, :, -1].mean()) > 0 for _ in range(30)}
    assert vals == {False}  # left dark, right bright: never flipped
    no_flip = ImageFolderDataset(_cfg(folder, **{"data.on_corrupt": "skip", "data.hflip": False}), "train")
    assert all(torch.equal(no_flip[i][0], no_flip[i][0]) for _ in range(10))


def test_corrupt_file_error_names_it(folder):
    ds = ImageFolderDataset(_cfg(folder), "train")
    bad = next(j for j, (rel, _) in enumerate(ds.items) if rel.endswith("n01_bad.JPEG"))
    with pytest.raises(UserError, match="n01_bad.JPEG"):
        ds[bad]


def test_corrupt_file_skip_counted_and_deterministic(folder):
    ds = ImageFolderDataset(_cfg(folder, **{"data.on_corrupt": "skip", "data.hflip": False}), "train")
    bad = next(j for j, (rel, _) in enumerate(ds.items) if rel.endswith("n01_bad.JPEG"))
    x, y = ds[bad]
    assert ds.corrupt_count == 1
    assert torch.equal(x, ds[(bad + 1) % len(ds)][0])  # the next readable item, not a blank
    assert torch.equal(ds[bad][0], x) and ds.corrupt_count == 2
    assert ds.report_corrupt() == 2
    others = [ds[j] for j in range(len(ds)) if j != bad]
    assert len(others) == 12 and ds.corrupt_count == 2


def test_skip_count_shared_with_workers(folder):
    ds = ImageFolderDataset(_cfg(folder, **{"data.on_corrupt": "skip"}), "train")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    n = sum(len(y) for _, y in loader)
    assert n == len(ds) and ds.corrupt_count == 1


def test_layout_errors(tmp_path, folder):
    with pytest.raises(UserError, match="root not found"):
        ImageFolderDataset(_cfg(tmp_path / "missing"), "train")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no class folders"):
        ImageFolderDataset(_cfg(tmp_path / "empty"), "train")
    (tmp_path / "empty" / "train" / "n01").mkdir()
    with pytest.raises(UserError, match="no images found"):
        ImageFolderDataset(_cfg(tmp_path / "empty", **{"data.num_classes": 1}), "train")
    with pytest.raises(UserError, match="num_classes"):
        ImageFolderDataset(_cfg(folder, **{"data.num_classes": 10}), "val")
    with pytest.raises(UserError, match="split missing"):
        ImageFolderDataset(_cfg(folder), "test")


def test_prepare_index_and_reuse(folder, tmp_path):
    out = tmp_path / "index.json"
    summary = prepare(_cfg(folder), out)
    index = json.loads(out.read_text())
    assert summary["counts"] == {"train": 13, "val": 3}
    assert index["class_to_idx"] == {"n01": 0, "n02": 1, "n03": 2}
    assert index["splits"]["train"]["corrupt"] == ["train/n01/n01_bad.JPEG"]
    from_index = ImageFolderDataset(_cfg(out, **{"data.on_corrupt": "skip"}), "train")
    assert len(from_index) == 12  # the verified-corrupt file is left out up front
    with pytest.raises(UserError, match="n01_bad.JPEG"):
        ImageFolderDataset(_cfg(out), "train")
