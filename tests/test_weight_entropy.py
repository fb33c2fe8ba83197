"""Histogram entropy is 0 for constants and ~log2(bins) for uniform values; parameters land in
the right category; `analyze entropy` compares trained and freshly initialised weights."""

import json
import math

import pytest
import torch

from analysis_checkpoints import tiny_model, write_checkpoint
from unite.analysis.entropy import categorize, histogram_entropy_bits, weight_entropy
from unite.cli import main


def test_constant_tensor_has_zero_entropy():
    assert histogram_entropy_bits(torch.full((1000,), 0.37)) == 0.0
    assert histogram_entropy_bits(torch.zeros(5, 5)) == 0.0


def test_uniform_values_cost_log2_bins():
    x = torch.rand(1_000_000, generator=torch.Generator().manual_seed(0))
    assert histogram_entropy_bits(x, 256) == pytest.approx(8.0, abs=0.01)
    assert histogram_entropy_bits(x, 16) == pytest.approx(4.0, abs=0.01)


def test_two_equally_likely_values_cost_one_bit_and_scale_does_not_matter():
    x = torch.tensor([-1.0, 1.0] * 500)
    assert histogram_entropy_bits(x) == pytest.approx(1.0)
    g = torch.randn(100_000, generator=torch.Generator().manual_seed(1))
    h = histogram_entropy_bits(g)
    assert h == pytest.approx(histogram_entropy_bits(g / 1024), abs=1e-9)  # exact rescale
    assert h == pytest.approx(histogram_entropy_bits(1e-3 * g + 5.0), abs=1e-3)  # fp32 rounding
    assert 4.0 < h < 8.0  # a peaked distribution costs less than a flat one


def test_categories_of_a_tiny_model():
    model, _ = tiny_model()
    cats = categorize(model)
    expected = {
        "encoder.blocks.0.adaLN.1.weight": "adaln",
        "encoder.final.adaLN.1.bias": "adaln",
        "encoder.blocks.0.attn.qkv.weight": "attention",
        "encoder.blocks.1.attn.proj.bias": "attention",
        "encoder.blocks.0.attn.q_norm.weight": "norm",
        "encoder.blocks.0.norm_out.weight": "norm",
        "encoder.latent_norm.bias": "norm",
        "encoder.blocks.0.mlp.w12.weight": "mlp",
        "encoder.blocks.1.mlp.w3.weight": "mlp",
        "encoder.register_embed": "other",
        "encoder.register_in.weight": "other",
        "encoder.t_embed.mlp.0.weight": "other",
        "encoder.y_embed.table.weight": "other",
        "encoder.input_embed.proj.weight": "other",
        "encoder.final.linear.weight": "other",
        "decoder.blocks.0.norm1.weight": "norm",
        "decoder.blocks.0.attn.qkv.weight": "attention",
        "decoder.blocks.0.mlp.0.weight": "mlp",
        "decoder.head.weight": "other",
    }
    for name, cat in expected.items():
        assert cats[name] == cat, name
    assert set(cats) == {n for n, _ in model.named_parameters()}


def test_totals_add_up_and_separate_model_has_a_denoiser_group():
    shared, _ = tiny_model()
    res = weight_entropy(shared)
    assert set(res["groups"]) == {"encoder", "decoder"}
    enc = res["groups"]["encoder"]
    assert enc["total"]["params"] == sum(p.numel() for p in shared.encoder.parameters())
    mb = sum(t["mb"] for t in res["tensors"] if t["group"] == "encoder")
    assert enc["total"]["mb"] == pytest.approx(mb)
    assert enc["normalization"]["mb"] == pytest.approx(enc["norm"]["mb"] + enc["adaln"]["mb"])
    for t in res["tensors"]:
        assert t["mb"] == pytest.approx(t["bits_per_param"] * t["numel"] / 8e6)
    separate, _ = tiny_model(["model.weight_sharing=false"])
    groups = weight_entropy(separate)["groups"]
    assert set(groups) == {"encoder", "denoiser", "decoder"}
    # the denoise-only network has no input embedder
    assert groups["denoiser"]["other"]["params"] < groups["encoder"]["other"]["params"]


def test_analyze_entropy_compares_trained_with_random_init(tmp_path):
    ckpt = tmp_path / "last.pt"
    write_checkpoint(ckpt, ["model.weight_sharing=false"])
    out, png = tmp_path / "entropy.json", tmp_path / "entropy.png"
    main(["analyze", "entropy", "--ckpt", str(ckpt), "--out", str(out), "--png", str(png)])
    res = json.loads(out.read_text())
    assert res["kind"] == "entropy" and res["metrics"]["bins"] == 256
    m = res["metrics"]
    groups = {"encoder", "denoiser", "decoder"}
    assert set(m["trained"]) == set(m["random_init"]) == set(m["random_gaussian"]) == groups
    # the checkpoint's adaLN gates were opened (random normal); at init they are zero (0 bits)
    assert m["random_init"]["encoder"]["adaln"]["mb"] < m["trained"]["encoder"]["adaln"]["mb"]
    assert m["trained"]["encoder"]["adaln"]["mb"] > 0
    assert all(math.isfinite(t["bits_per_param_trained"]) for t in m["tensors"])
    # structure-free reference: i.i.d. Gaussian adaLN weights cost bits, unlike their zero init
    assert m["random_gaussian"]["encoder"]["adaln"]["mb"] > m["random_init"]["encoder"]["adaln"]["mb"]
    assert any("constant at initialisation" in f for f in res["flags"])
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("use_ema", [True, False])
def test_analyses_honour_sample_use_ema(tmp_path, use_ema):
    """Like sampling and the evaluators, an analysis reads the EMA weights unless the run says
    ``sample.use_ema: false``: here the EMA is all zeros (0 bits), the raw weights are not."""
    from unite import config
    from unite.checkpoint import save_atomic

    model, cfg = tiny_model([f"sample.use_ema={str(use_ema).lower()}"])
    state = model.state_dict()
    ckpt = tmp_path / "last.pt"
    save_atomic({"model": state, "ema": {k: torch.zeros_like(v) for k, v in state.items()},
                 "step": 7, "config": config.to_dict(cfg), "meta": {"fine_tuned": False}}, ckpt)
    out = tmp_path / "entropy.json"
    main(["analyze", "entropy", "--ckpt", str(ckpt), "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["scale"]["use_ema"] is use_ema
    trained_mb = res["metrics"]["trained"]["encoder"]["adaln"]["mb"]
    assert (trained_mb == 0) is use_ema
