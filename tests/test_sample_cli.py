"""``unite sample`` round trip on a tiny random checkpoint: class-balanced labels, uint8 images,
meta with every field the evaluators read, a class-row grid, and clear user errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training_helpers import tiny_image_dict
from unite import checkpoint, cli, config
from unite.artifacts import read_sample_file
from unite.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = tiny_image_dict("sample-test")
META_KEYS = {"experiment", "model_size", "train_step", "solver", "steps", "nfe", "cfg",
             "interval", "seed", "shard", "num_shards", "num_samples", "fine_tuned", "use_ema"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = config.from_dict(TINY)
    torch.manual_seed(0)
    sd = build_model(cfg).state_dict()
    path = tmp_path_factory.mktemp("run") / "last.pt"
    checkpoint.save_atomic({"model": sd, "ema": sd, "optimizers": [], "scheduler": None,
                            "step": 5, "rng": None, "config": config.to_dict(cfg),
                            "meta": {"fine_tuned": False}}, path)
    return path


def test_sample_round_trip(ckpt, tmp_path, capsys):
    out, grid = tmp_path / "s.npz", tmp_path / "s.png"
    cli.main(["sample", "--ckpt", str(ckpt), "--out", str(out), "--per-class", "2",
              "--solver", "heun", "--steps", "2", "--cfg", "1.5", "--interval", "0.2", "0.9",
              "--seed", "3", "--grid", str(grid), "--device", "cpu", "--batch-size", "7"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    arrays, meta = read_sample_file(out)
    assert arrays["images"].shape == (20, 16, 16, 3) and arrays["images"].dtype == np.uint8
    assert arrays["labels"].dtype == np.int64
    np.testing.assert_array_equal(arrays["labels"], np.repeat(np.arange(10), 2))
    assert META_KEYS <= set(meta)
    assert meta["nfe"] == 4 == printed["nfe"] and meta["steps"] == 2 and meta["solver"] == "heun"
    assert meta["cfg"] == 1.5 and meta["interval"] == [0.2, 0.9] and meta["seed"] == 3
    assert meta["train_step"] == 5 and meta["num_samples"] == 20 and meta["label_mode"] == "balanced"
    # heun on the shifted 2-step grid evaluates t = 0, 1/3, 1/3, 1: guided at 1/3 only
    assert meta["network_passes"] == 6
    with Image.open(grid) as img:
        assert img.height >= 10 * 16  # one row per class


def test_sample_random_labels_and_dopri5(ckpt, tmp_path):
    out = tmp_path / "r.npz"
    cli.main(["sample", "--ckpt", str(ckpt), "--out", str(out), "--num-samples", "6",
              "--random-labels", "--solver", "dopri5", "--rtol", "1e-2", "--atol", "1e-3",
              "--device", "cpu"])
    arrays, meta = read_sample_file(out)
    assert len(arrays["labels"]) == 6 and meta["label_mode"] == "random"
    assert meta["steps"] is None and meta["nfe"] > 0 and meta["atol"] == 1e-3 and meta["rtol"] == 1e-2


def test_sample_user_errors(ckpt, tmp_path, capsys):
    bad = [["--shard", "2", "--num-shards", "2"], ["--num-samples", "15"], ["--steps", "0"],
           ["--interval", "0.8", "0.2"]]
    for extra in bad:
        with pytest.raises(SystemExit) as exc:
            cli.main(["sample", "--ckpt", str(ckpt), "--out", str(tmp_path / "x.npz"),
                      "--device", "cpu", *extra])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == len(bad)
    assert not (tmp_path / "x.npz").exists()


def sweep_file(path, best=2.4):
    record = {"experiment": "sample-test", "kind": "cfg_sweep",
              "metrics": {"best_cfg": best, "best_fid": 9.0, "fid_key": "fid",
                          "scales_evaluated": [1.0, 1.2, 2.4, 4.0], "points": []},
              "scale": {"num_samples": 10000, "solver": "dopri5", "steps": None}}
    path.write_text(json.dumps(record))
    return path


def test_cfg_from_a_sweep_samples_at_its_best_w_and_records_how(ckpt, tmp_path):
    """The workflow's 50K runs read w from the sweep when they run (`--cfg-from`)."""
    out = tmp_path / "best.npz"
    cli.main(["sample", "--ckpt", str(ckpt), "--out", str(out), "--per-class", "1",
              "--solver", "euler", "--steps", "2", "--device", "cpu",
              "--cfg-from", str(sweep_file(tmp_path / "sweep.json"))])
    _, meta = read_sample_file(out)
    assert meta["cfg"] == 2.4 and meta["cfg_source"] == "sweep"
    assert meta["cfg_selection"] == ("w = 2.4: lowest fid of a sweep over w = 1-4 (4 scales), "
                                     "10000 samples per scale, dopri5")
    assert meta["network_passes"] == 2 * meta["nfe"] - 1  # t = 0 is outside [0.1, 1.0]
    plain = tmp_path / "plain.npz"
    cli.main(["sample", "--ckpt", str(ckpt), "--out", str(plain), "--per-class", "1",
              "--solver", "euler", "--steps", "2", "--device", "cpu"])
    _, meta = read_sample_file(plain)
    assert (meta["cfg"], meta["cfg_source"], meta["cfg_selection"]) == (
        1.0, "sample.cfg", "unguided (w = 1)")


def test_cfg_from_mistakes_are_one_line_errors(ckpt, tmp_path, capsys):
    not_a_sweep = tmp_path / "gen.json"
    not_a_sweep.write_text(json.dumps({"kind": "gen_images", "metrics": {}}))
    cases = [["--cfg-from", str(tmp_path / "missing.json")], ["--cfg-from", str(not_a_sweep)],
             ["--cfg", "2", "--cfg-from", str(sweep_file(tmp_path / "s.json"))]]
    for extra in cases:
        with pytest.raises(SystemExit) as exc:
            cli.main(["sample", "--ckpt", str(ckpt), "--out", str(tmp_path / "x.npz"),
                      "--device", "cpu", *extra])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "not a cfg_sweep result" in err and "not both" in err
    assert not (tmp_path / "x.npz").exists()
