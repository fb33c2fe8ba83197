"""The digits split is fixed, stratified and disjoint; items are RGB in [-1, 1], never flipped."""

import numpy as np
import pytest
import torch

from unite import config
from unite.data import build_dataset
from unite.data.digits import SPLIT_SIZES, DigitsDataset, load_splits, prepare
from unite.errors import UserError


def _cfg(**sets):
    return config.from_dict({}, [f"{k}={v}" for k, v in sets.items()])


def _keys(images):
    return {img.tobytes() for img in images}


def test_split_sizes_fixed_and_disjoint():
    a, b = load_splits(), load_splits()
    assert {s: len(y) for s, (_, y) in a.items()} == SPLIT_SIZES
    assert sum(SPLIT_SIZES.values()) == 1797
    for s in SPLIT_SIZES:
        np.testing.assert_array_equal(a[s][0], b[s][0])
        np.testing.assert_array_equal(a[s][1], b[s][1])
    # disjoint by content: digits holds a handful of exact duplicate images, so count rows
    from sklearn.datasets import load_digits

    all_rows = load_digits().images.astype(np.uint8)
    total = np.concatenate([a[s][0] for s in SPLIT_SIZES])
    assert sorted(r.tobytes() for r in total) == sorted(r.tobytes() for r in all_rows)
    # stratified: every class in every split, val/test 15 each (150 / 10 classes)
    for s in ("val", "test"):
        counts = np.bincount(a[s][1], minlength=10)
        assert counts.min() >= 14 and counts.max() <= 16


def test_items_rgb_range_and_size():
    cfg = _cfg(**{"data.image_size": 32})
    ds = build_dataset(cfg, "val")
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert isinstance(y, int) and 0 <= y < 10
    assert len(ds) == 150


def test_hflip_off_even_when_config_asks():
    cfg = _cfg(**{"data.hflip": True})
    ds = DigitsDataset(cfg, "train")
    i = next(i for i in range(len(ds)) if not np.array_equal(ds.raw[i], ds.raw[i][:, ::-1]))
    expect = ds.upsample(ds.raw[i : i + 1])[0]
    # a p=0.5 flip would show up in 20 draws with probability 1 - 2^-20
    assert all(torch.equal(ds[i][0], expect) for _ in range(20))


def test_subset_keeps_first_n_training_examples():
    full = DigitsDataset(_cfg(), "train")
    sub = DigitsDataset(_cfg(**{"data.subset": 20}), "train")
    assert len(sub) == 20
    np.testing.assert_array_equal(sub.raw, full.raw[:20])
    assert len(DigitsDataset(_cfg(**{"data.subset": 20}), "val")) == 150


def test_prepared_file_round_trip(tmp_path):
    out = tmp_path / "digits.npz"
    meta = prepare(_cfg(), out)
    assert meta["counts"] == SPLIT_SIZES and out.is_file()
    direct = DigitsDataset(_cfg(), "test")
    from_file = DigitsDataset(_cfg(**{"data.root": str(out)}), "test")
    np.testing.assert_array_equal(direct.raw, from_file.raw)
    np.testing.assert_array_equal(direct.labels, from_file.labels)


def test_missing_prepared_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        DigitsDataset(_cfg(**{"data.root": str(tmp_path / "nope.npz")}), "train")
