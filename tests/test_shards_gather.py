"""Sharded sampling: contiguous slices of one label list with per-sample seeded noise, so the
gathered shards equal the unsharded run; gather refuses incomplete or mixed shard sets."""

import json

import numpy as np
import pytest
import torch

from training_helpers import tiny_image_dict
from unite import checkpoint, cli, config
from unite.artifacts import read_sample_file
from unite.errors import UserError
from unite.gather import gather
from unite.models import build_model
from unite.sampling import initial_noise, label_list, shard_range

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = tiny_image_dict("shards-test")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = config.from_dict(TINY)
    torch.manual_seed(0)
    model = build_model(cfg)
    path = tmp_path_factory.mktemp("run") / "last.pt"
    sd = model.state_dict()
    checkpoint.save_atomic({"model": sd, "ema": sd, "optimizers": [], "scheduler": None,
                            "step": 3, "rng": None, "config": config.to_dict(cfg),
                            "meta": {"fine_tuned": False}}, path)
    return path


def test_shard_ranges_partition_the_label_list():
    for total, n in [(10, 3), (50, 7), (5, 5), (1000, 8)]:
        ranges = [shard_range(total, k, n) for k in range(n)]
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        sizes = [b - a for a, b in ranges]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(UserError):
        shard_range(10, 3, 3)
    with pytest.raises(UserError):
        shard_range(2, 0, 3)


def test_noise_depends_on_seed_and_global_index_only():
    full = initial_noise(range(10), (4, 2), seed=5)
    part = initial_noise(range(6, 10), (4, 2), seed=5)
    torch.testing.assert_close(full[6:], part)
    other_seed = initial_noise(range(10), (4, 2), seed=6)
    assert not torch.allclose(full, other_seed)
    # shard 1 of seed 0 must not reuse shard 0 of seed 1 (a 'seed + shard' scheme would)
    assert not torch.allclose(initial_noise(range(5, 10), (4, 2), 0), initial_noise(range(5), (4, 2), 1))
    rows = full.reshape(10, -1)
    assert torch.cdist(rows, rows).fill_diagonal_(1.0).min() > 0.1  # every sample its own noise


def test_random_labels_shared_by_all_shards():
    a, mode = label_list(10, per_class=3, random=True, seed=1)
    b, _ = label_list(10, per_class=3, random=True, seed=1)
    assert mode == "random" and len(a) == 30
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, label_list(10, per_class=3, random=True, seed=2)[0])
    u, mode = label_list(1, per_class=3, num_samples=7)
    assert mode == "unconditional" and len(u) == 7 and not u.any()
    with pytest.raises(UserError, match="multiple"):
        label_list(10, per_class=3, num_samples=15)


def _sample(ckpt, out, *extra):
    cli.main(["sample", "--ckpt", str(ckpt), "--out", str(out), "--per-class", "1",
              "--solver", "euler", "--steps", "2", "--seed", "4", "--device", "cpu", *extra])


def test_gathered_shards_equal_unsharded_run(ckpt, tmp_path, capsys):
    _sample(ckpt, tmp_path / "all.npz")
    for k in range(3):
        _sample(ckpt, tmp_path / f"s{k}.npz", "--shard", str(k), "--num-shards", "3")
    capsys.readouterr()
    cli.main(["gather", "--inputs", *(str(tmp_path / f"s{k}.npz") for k in (2, 0, 1)),
              "--out", str(tmp_path / "gathered.npz")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["num_samples"] == 10
    full, full_meta = read_sample_file(tmp_path / "all.npz")
    got, meta = read_sample_file(tmp_path / "gathered.npz")
    np.testing.assert_array_equal(got["labels"], full["labels"])
    np.testing.assert_array_equal(got["labels"], np.arange(10))
    assert np.abs(got["images"].astype(int) - full["images"]).max() <= 1
    assert meta["num_samples"] == 10 and meta["num_shards"] == 3 and meta["nfe"] == 2
    assert meta["seed"] == full_meta["seed"] == 4 and meta["shard"] is None
    s0, m0 = read_sample_file(tmp_path / "s0.npz")
    s1, m1 = read_sample_file(tmp_path / "s1.npz")
    assert m0["num_samples"] == 4 and m1["shard_start"] == 4 and len(s1["labels"]) == 3
    assert not np.array_equal(s0["images"][:3], s1["images"])

    with pytest.raises(UserError, match=r"missing.*\[1\]"):
        gather([tmp_path / "s0.npz", tmp_path / "s2.npz"])
    with pytest.raises(UserError, match="twice"):
        gather([tmp_path / "s0.npz", tmp_path / "s0.npz", tmp_path / "s1.npz", tmp_path / "s2.npz"])
    _sample(ckpt, tmp_path / "t1.npz", "--shard", "1", "--num-shards", "3", "--cfg", "2.0")
    with pytest.raises(UserError, match="same run.*cfg"):
        gather([tmp_path / "s0.npz", tmp_path / "t1.npz", tmp_path / "s2.npz"])
    with pytest.raises(UserError, match="not found"):
        gather([tmp_path / "nope.npz"])


def test_gather_cli_error_exits_2(ckpt, tmp_path, capsys):
    _sample(ckpt, tmp_path / "s0.npz", "--shard", "0", "--num-shards", "2")
    with pytest.raises(SystemExit) as exc:
        cli.main(["gather", "--inputs", str(tmp_path / "s0.npz"), "--out", str(tmp_path / "g.npz")])
    assert exc.value.code == 2
    assert "error: shards missing" in capsys.readouterr().err
