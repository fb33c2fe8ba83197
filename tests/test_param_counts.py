"""Architecture sizes match the paper (REFERENCE section 1, within 2%), counted by
`python -m unite info` on the meta device; the analytic FLOPs count agrees with torch's
FlopCounterMode on the same passes."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from training_helpers import tiny_config
from unite import config
from unite.cli import main
from unite.info import describe, vgg16_lpips_flops
from unite.models import build_model

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "config" / "experiments"
PAPER = {  # GE params, decoder params (authors' README; totals 217M / 589M / 806M)
    "unite-b": (130.6e6, 86.2e6),
    "unite-l": (458.2e6, 86.2e6),
    "unite-xl": (675.3e6, 86.2e6),
}


def test_info_cli_unite_b_matches_paper(capsys):
    # the `python -m unite info` entry point, in-process (a new interpreter costs ~10 s here)
    main(["info", "--config", str(EXPERIMENTS / "unite-b.yaml")])
    info = json.loads(capsys.readouterr().out)
    ge, dec = PAPER["unite-b"]
    assert info["ge_params"] == pytest.approx(ge, rel=0.02)
    assert info["decoder_params"] == pytest.approx(dec, rel=0.02)
    assert info["total_params"] == info["ge_params"] + info["decoder_params"]
    assert info["denoiser_params"] == 0 and info["weight_sharing"] is True


@pytest.mark.parametrize("name", ["unite-l", "unite-xl"])
def test_larger_ge_sizes_match_paper(name):
    info = describe(config.load(EXPERIMENTS / f"{name}.yaml"))
    ge, dec = PAPER[name]
    assert info["ge_params"] == pytest.approx(ge, rel=0.02)
    assert info["decoder_params"] == pytest.approx(dec, rel=0.02)


def test_separate_variant_counts_a_second_network():
    info = describe(config.load(EXPERIMENTS / "unite-b.yaml", ["model.weight_sharing=false"]))
    assert info["denoiser_params"] > 0.95 * info["ge_params"]
    assert info["total_params"] == info["ge_params"] + info["denoiser_params"] + info["decoder_params"]


def _counted(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


@pytest.mark.parametrize("extra", [[], ["model.in_context_tokens=3", "model.in_context_start=1"]])
def test_analytic_forward_flops_equal_flop_counter(extra):
    cfg = tiny_config(*extra)
    info = describe(cfg)["breakdown"]
    with torch.device("meta"):
        model = build_model(cfg)
        x = torch.empty(1, 3, 8, 8)
        z = model.encode(x)
        tokenize = _counted(lambda: model.encode(x))
        denoise = _counted(lambda: model.denoise(z, torch.empty(1), torch.zeros(1, dtype=torch.long)))
        decode = _counted(lambda: model.decode(z))
    assert info["tokenize_forward_flops"] == tokenize
    assert info["denoise_forward_flops_per_pass"] == denoise
    assert info["decoder_forward_flops"] == decode


def test_vgg16_flops_at_224_are_the_known_figure():
    # VGG16's 13 conv layers at 224x224 are ~15.35 GMACs = ~30.7 GFLOPs
    assert vgg16_lpips_flops(224, 224) == pytest.approx(30.7e9, rel=0.01)


def test_train_flops_composition():
    cfg = config.load(EXPERIMENTS / "unite-b.yaml")
    info = describe(cfg)
    b = info["breakdown"]
    forward = b["tokenize_forward_flops"] + 14 * b["denoise_forward_flops_per_pass"] + b[
        "decoder_forward_flops"]
    assert b["trainable_forward_flops"] == forward
    assert info["train_flops_per_sample"] == 3 * forward + 3 * b["lpips_vgg16_forward_flops"]
    no_lpips = describe(config.load(EXPERIMENTS / "unite-b.yaml", ["train.lpips_weight=0"]))
    assert no_lpips["train_flops_per_sample"] == 3 * forward
