"""The GE's two modes: registers (+ patches) in tokenization mode, registers only in denoising."""

import torch

from unite import config
from unite.models import build_model

TINY = {"model": {"depth": 2, "width": 64, "heads": 2, "decoder_depth": 1, "decoder_width": 64, "decoder_heads": 2}}


def _model(**model_overrides):
    """A tiny model with its adaLN-Zero gates opened (at init they make every block an identity)."""
    data = {"model": {**TINY["model"], **model_overrides}}
    torch.manual_seed(0)
    model = build_model(config.from_dict(data))
    for block in model.encoder.blocks:
        torch.nn.init.normal_(block.adaLN[-1].weight, std=0.05)
    return model


def test_tokenization_sees_the_image_and_denoising_does_not_need_it():
    model = _model()
    x = torch.randn(3, 3, 32, 32)
    noise = torch.randn(3, 64, 8)
    z_a = model.encoder.tokenize(x, noise=noise)
    z_b = model.encoder.tokenize(x + 1.0, noise=noise)
    assert z_a.shape == (3, 64, 8)
    assert not torch.allclose(z_a, z_b), "tokenizer output must depend on the image"
    out = model.denoise(z_a, torch.full((3,), 0.5), torch.tensor([0, 1, 2]))
    assert out.shape == z_a.shape
    assert model.decode(out).shape == x.shape


def test_class_and_time_condition_the_denoiser():
    model = _model()
    z = torch.randn(2, 64, 8)
    t = torch.full((2,), 0.3)
    base = model.denoise(z, t, torch.tensor([1, 1]))
    other_class = model.denoise(z, t, torch.tensor([2, 2]))
    other_time = model.denoise(z, torch.full((2,), 0.9), torch.tensor([1, 1]))
    assert not torch.allclose(base, other_class)
    assert not torch.allclose(base, other_time)


def test_in_context_class_tokens_keep_register_outputs_aligned():
    model = _model(in_context_tokens=4, in_context_start=1)
    z, hidden = model.encoder.tokenize(torch.randn(2, 3, 32, 32), return_hidden=True)
    assert z.shape == (2, 64, 8)
    assert len(hidden) == 2 and all(h.shape == (2, 64, 64) for h in hidden)


def test_xl_builds_on_meta_device_without_memory():
    cfg = config.load("config/experiments/unite-xl.yaml")
    with torch.device("meta"):
        model = build_model(cfg)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_separate_variant_has_two_networks_and_no_shared_tensors():
    model = _model(weight_sharing=False)
    assert not model.shared and model.denoiser is not model.encoder
    enc = {id(p) for p in model.encoder.parameters()}
    den = {id(p) for p in model.denoiser.parameters()}
    assert enc.isdisjoint(den)
    assert model.denoiser.input_embed is None
