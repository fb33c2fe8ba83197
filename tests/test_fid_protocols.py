"""FID protocols: ADM's reference-batch format is read directly and scored against; FID of a set
against itself is ~0; FID depends neither on the feature batch size nor on how many shards the
samples were written in; the matrix square root inside FID is accurate on cases with a known
answer.

Feature network: torch-fidelity's InceptionV3 with random Kaiming-normal weights (the real
weights cannot be downloaded here), so the values are meaningless but image-dependent: FID
between different sets is far from 0 and every comparison below can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unite import cli
from unite.artifacts import read_sample_file, write_sample_file
from unite.errors import UserError
from unite.metrics import adm_reference
from unite.metrics import features as ft
from unite.metrics import image_sets as sets
from unite.metrics import images as im
from unite.metrics import reference as rs
from unite.provenance import file_sha256

pytestmark = pytest.mark.usefixtures("single_thread")
DIGITS = Path(__file__).resolve().parents[1] / "config/experiments/digits.yaml"


def pictures(seed: int, n: int, size: int = 32, smooth: int = 4) -> np.ndarray:
    """Smooth random colour fields, uint8 (n, size, size, 3)."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, smooth, smooth, generator=g), size=size, mode="bilinear")
    return (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return ft.write_random_inception_weights(tmp_path_factory.mktemp("w") / "inception.pth", seed=0)


def sample_file(path, images, **meta):
    labels = np.arange(len(images)) % 10
    base = {"experiment": "fid-test", "label_mode": "balanced", "total_samples": len(images),
            "num_samples": len(images), "seed": 0, "solver": "heun", "steps": 2}
    write_sample_file(path, {"images": images, "labels": labels}, {**base, **meta})
    return path


def evaluate(*argv) -> dict:
    out = argv[argv.index("--out") + 1]
    cli.main(["evaluate", "images", "--device", "cpu", "--quiet", *map(str, argv)])
    return json.loads(open(out).read())


# -- ADM's reference batch ------------------------------------------------------------------
def test_adm_reference_batch_is_read_and_scored(weights, tmp_path):
    from torch_fidelity import calculate_metrics

    ref_images, samples = pictures(1, 8, smooth=3), pictures(2, 8, smooth=5)
    spec = ft.feature_spec("inception", weights)
    ref_feats = ft.extract_features(sets.UInt8Images(ref_images), spec, device="cpu", verbose=False)
    ref_stats = rs.fid_statistics(ref_feats["2048"])
    adm = tmp_path / "VIRTUAL_test_labeled.npz"
    adm_reference.write_batch(adm, ref_stats, images=ref_images, labels=np.arange(8))
    with np.load(adm) as f:  # the layout of guided-diffusion's reference batches
        assert {"arr_0", "arr_1", "mu", "sigma"} <= set(f.files) and "meta" not in f.files
        assert f["mu"].dtype == np.float64 and f["sigma"].shape == (2048, 2048)

    stats, meta = rs.load_ref_stats(adm)
    assert meta["format"] == "adm" and meta["reference_images"] == 8
    np.testing.assert_array_equal(stats["mu"], np.asarray(ref_stats["mu"], np.float64))

    res = evaluate("--samples", sample_file(tmp_path / "s.npz", samples), "--ref", adm,
                   "--weights", weights, "--precision-recall", "--isc-splits", "2",
                   "--out", tmp_path / "adm.json")
    m = res["metrics"]
    assert set(m) >= {"fid_adm", "is_adm", "precision_adm", "recall_adm", "sfid_adm"}
    assert "fid" not in m and m["sfid_adm"] is None  # never mistaken for the UNITE protocol
    theirs = calculate_metrics(
        input1=sets.UInt8Images(samples), input2=sets.UInt8Images(ref_images), fid=True, prc=True,
        feature_extractor="inception-v3-compat", feature_layer_fid="2048",
        feature_layer_prc="2048", feature_extractor_weights_path=str(weights), cuda=False,
        cache=False, save_cpu_ram=True, verbose=False,
    )
    assert theirs["frechet_inception_distance"] > 1.0
    assert m["fid_adm"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert m["precision_adm"] == pytest.approx(theirs["precision"])
    assert m["recall_adm"] == pytest.approx(theirs["recall"])
    assert res["scale"]["fid_protocol"] == "adm"
    prov = res["provenance"]
    assert prov["reference_format"] == "adm" and prov["reference_sha256"] == file_sha256(adm)
    assert prov["feature_weights_sha256"] == file_sha256(weights)
    assert any("sFID not computed" in f for f in res["flags"])


def test_malformed_adm_batch_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(64), sigma=np.eye(64))
    with pytest.raises(UserError, match="pool_3"):
        rs.load_ref_stats(bad)
    asym = tmp_path / "asym.npz"
    np.savez(asym, mu=np.zeros(2048), sigma=np.triu(np.ones((2048, 2048))))
    with pytest.raises(UserError, match="symmetric"):
        rs.load_ref_stats(asym)


# -- self-FID, batch size, shards -----------------------------------------------------------
def test_self_fid_is_zero_through_ref_stats_and_evaluate(weights, tmp_path):
    """Reference statistics of the digits val split (the `ref-stats` command) against a sample
    file holding exactly those images: FID ~ 0, while other images are far away."""
    from unite import config
    from unite.metrics.image_sets import SplitAsUInt8, split_dataset

    ref = tmp_path / "ref.npz"
    cli.main(["evaluate", "ref-stats", "--config", str(DIGITS), "--split", "val",
              "--limit", "20", "--features", "inception", "--weights", str(weights),
              "--fid-layer", "64", "--out", str(ref), "--device", "cpu", "--quiet"])
    cfg = config.load(DIGITS)
    same = SplitAsUInt8(split_dataset(cfg, "val"), 20)
    same = np.stack([same[i].permute(1, 2, 0).numpy() for i in range(len(same))])
    res = evaluate("--samples", sample_file(tmp_path / "same.npz", same), "--ref", ref,
                   "--isc-splits", "2", "--out", tmp_path / "self.json")
    other = evaluate("--samples", sample_file(tmp_path / "other.npz", pictures(3, 20, 16)),
                     "--ref", ref, "--isc-splits", "2", "--out", tmp_path / "other.json")
    sigma = rs.load_ref_stats(ref)[0]["sigma"]
    assert abs(res["metrics"]["fid_64"]) < 1e-6 * np.trace(sigma)
    assert other["metrics"]["fid_64"] > 1e3 * max(abs(res["metrics"]["fid_64"]), 1e-9)
    assert res["provenance"]["reference_preprocess"].startswith("8x8 scans")


def test_fid_independent_of_feature_batch_size_and_shard_count(weights, tmp_path):
    images, ref_images = pictures(4, 12, 16, smooth=6), pictures(5, 12, 16, smooth=3)
    spec = ft.feature_spec("inception", weights, fid_layer="64")
    feats = ft.extract_features(sets.UInt8Images(ref_images), spec, device="cpu", verbose=False)
    ref = tmp_path / "ref.npz"
    rs.save_ref_stats(ref, rs.fid_statistics(feats["64"]), rs.stats_meta(spec, num_images=12))

    whole = sample_file(tmp_path / "whole.npz", images)
    arrays, meta = read_sample_file(whole)
    values = {}
    runs = {1: (1, 5, 64), 3: (64,), 5: (7,)}  # shard count -> feature batch sizes
    for shards, batches in runs.items():  # the samples written as `unite sample --shard k` would
        bounds = np.linspace(0, len(images), shards + 1).astype(int)
        files = []
        for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
            files.append(tmp_path / f"n{shards}-s{k}.npz")
            write_sample_file(files[-1], {key: v[a:b] for key, v in arrays.items()},
                              {**meta, "shard": k, "num_shards": shards, "shard_start": int(a),
                               "shard_stop": int(b), "num_samples": int(b - a)})
        gathered = tmp_path / f"gathered-{shards}.npz"
        cli.main(["gather", "--inputs", *map(str, reversed(files)), "--out", str(gathered)])
        for batch in batches:
            res = evaluate("--samples", gathered, "--ref", ref, "--batch-size", batch,
                           "--isc-splits", "2", "--out", tmp_path / f"r{shards}-{batch}.json")
            values[(shards, batch)] = res["metrics"]["fid_64"]
    first = values[(1, 64)]
    assert first > 0.1  # two different image sets: far above the tolerance
    assert len(values) == 5
    for key, value in values.items():
        assert value == pytest.approx(first, rel=1e-6, abs=1e-9), key


# what `unite finetune` records in a fine-tuned checkpoint's meta (unite.finetune.scale_fields)
FINETUNED = {"steps": 5, "epochs": 1, "gan_loss": "hinge", "adaptive_weight": True,
             "disc_weight": 0.5}


def test_samples_from_a_checkpoint_carry_every_provenance_field(weights, tmp_path):
    """`unite sample` from a checkpoint, then `evaluate images`: nothing required is missing."""
    import torch as th

    from training_helpers import tiny_image_dict
    from unite import checkpoint, config
    from unite.models import build_model

    cfg = config.from_dict(tiny_image_dict("provenance-test"))
    th.manual_seed(0)
    sd = build_model(cfg).state_dict()
    ckpt = tmp_path / "last.pt"
    checkpoint.save_atomic({"model": sd, "ema": sd, "optimizers": [], "scheduler": None,
                            "step": 7, "rng": None, "config": config.to_dict(cfg),
                            "meta": {"fine_tuned": True, "finetune": FINETUNED}}, ckpt)
    samples = tmp_path / "s.npz"
    cli.main(["sample", "--ckpt", str(ckpt), "--out", str(samples), "--per-class", "1",
              "--solver", "heun", "--steps", "2", "--cfg", "1.5", "--seed", "3", "--device", "cpu"])
    spec = ft.feature_spec("inception", weights, fid_layer="64")
    feats = ft.extract_features(sets.UInt8Images(pictures(6, 12, 16)), spec, device="cpu",
                                verbose=False)
    ref = tmp_path / "ref.npz"
    rs.save_ref_stats(ref, rs.fid_statistics(feats["64"]),
                      rs.stats_meta(spec, num_images=12, dataset="pictures", split="train",
                                    preprocess="16x16 colour fields"))
    res = evaluate("--samples", samples, "--ref", ref, "--isc-splits", "2",
                   "--out", tmp_path / "r.json")
    prov = res["provenance"]
    assert prov["missing"] == [] and not any("provenance" in f for f in res["flags"])
    assert prov["checkpoint_sha256"] == file_sha256(ckpt) and prov["train_step"] == 7
    assert prov["fine_tuned"] is True and prov["ema"] is True  # passed through from the meta
    assert prov["samples_sha256"] == file_sha256(samples) and prov["num_samples"] == 10
    assert (prov["solver"], prov["steps"], prov["nfe"], prov["cfg_scale"], prov["seed"]) == (
        "heun", 2, 4, 1.5, 3)
    assert prov["guidance_interval"] == [0.1, 1.0] and prov["label_sampling"] == "balanced"
    assert prov["reference_sha256"] == file_sha256(ref) and prov["reference_format"] == "unite"
    assert prov["feature_weights_sha256"] == file_sha256(weights)
    assert len(prov["config_hash"]) == 64 and len(prov["git_commit"]) >= 7


# -- the matrix square root -----------------------------------------------------------------
def known_case(d: int, rank: int, seed: int):
    """Covariances sharing eigenvectors Q: tr sqrt(S1 S2) = sum sqrt(a_i b_i) exactly."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.gamma(0.5, 10.0, d), rng.gamma(0.5, 10.0, d)
    a[rank:] = 0.0  # rank-deficient, as the covariance of fewer samples than features
    b[rng.permutation(d)[: d - rank]] = 0.0
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    fid = ((mu1 - mu2) ** 2).sum() + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum()
    return {"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, fid


@pytest.mark.parametrize("d,rank", [(256, 256), (256, 40), (512, 100)])
def test_frechet_distance_matches_eigendecomposition(d, rank):
    s1, s2, expected = known_case(d, rank, seed=d + rank)
    assert im.frechet_distance(s1, s2) == pytest.approx(expected, rel=1e-6)
    # float32 means (torch-fidelity's statistics) against float64 (ADM's) are accepted
    s1_32 = {"mu": s1["mu"].astype(np.float32), "sigma": s1["sigma"]}
    assert im.frechet_distance(s1_32, s2) == pytest.approx(expected, rel=1e-5)


def test_frechet_distance_non_commuting_known_case():
    """S2 = S1^-1 does not share a basis with a generic S1 but S1 S2 = I: tr sqrt = d."""
    rng = np.random.default_rng(7)
    d = 128
    x = rng.normal(size=(d, d))
    s1 = x @ x.T / d + 0.1 * np.eye(d)
    s2 = np.linalg.inv(s1)
    s2 = (s2 + s2.T) / 2
    mu = np.zeros(d)
    expected = np.trace(s1) + np.trace(s2) - 2 * d
    got = im.frechet_distance({"mu": mu, "sigma": s1}, {"mu": mu, "sigma": s2})
    assert got == pytest.approx(expected, rel=1e-6)
