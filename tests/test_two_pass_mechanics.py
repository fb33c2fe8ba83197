"""The joint step of REFERENCE section 2: shared vs separate weights, stop-gradient, the final
LayerNorm on every emitted latent, label dropout, recon noise, and the Muon/AdamW split."""

import pytest
import torch

from training_helpers import one_thread, tiny_config
from unite.models import build_model
from unite.objective import JointObjective, add_recon_noise, chunk_sizes, drop_labels
from unite.optim import build_optimizers, split_params


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def _batch(cfg, b=4):
    g = torch.Generator().manual_seed(1)
    s = cfg.data.image_size
    return torch.rand(b, 3, s, s, generator=g) * 2 - 1, torch.randint(0, 10, (b,), generator=g)


def _ids(module):
    return {id(p) for p in module.parameters()}


def test_shared_model_has_one_ge_parameter_set():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    assert model.shared and model.denoiser is model.encoder
    assert _ids(model) == _ids(model.encoder) | _ids(model.decoder)


def test_separate_model_has_disjoint_sets_and_both_get_gradients():
    torch.manual_seed(0)
    cfg = tiny_config("model.weight_sharing=false")
    model = build_model(cfg)
    assert not model.shared
    enc, den, dec = _ids(model.encoder), _ids(model.denoiser), _ids(model.decoder)
    assert not (enc & den) and not (enc & dec) and not (den & dec)
    x, y = _batch(cfg)
    loss, _ = JointObjective(model, cfg)(x, y)
    loss.backward()
    for net in (model.encoder, model.denoiser, model.decoder):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)


def _flow_grad_on_patch_embed(stop_gradient: bool) -> torch.Tensor:
    torch.manual_seed(0)
    cfg = tiny_config(f"train.stop_gradient={str(stop_gradient).lower()}", "train.l1_weight=0")
    model = build_model(cfg)
    # open the adaLN gates so that registers actually read the patches
    for block in model.encoder.blocks:
        torch.nn.init.normal_(block.adaLN[-1].weight, std=0.05)
    x, y = _batch(cfg)
    loss, parts = JointObjective(model, cfg)(x, y)  # l1_weight 0: loss = L_flow only
    assert torch.allclose(loss.detach(), parts["flow"])
    loss.backward()
    return model.encoder.input_embed.proj.weight.grad


def test_stop_gradient_blocks_flow_gradient_into_tokenization_pass():
    grad = _flow_grad_on_patch_embed(True)
    assert grad is None or torch.count_nonzero(grad) == 0


def test_without_stop_gradient_flow_loss_reaches_tokenization_pass():
    grad = _flow_grad_on_patch_embed(False)
    assert grad is not None and grad.abs().sum() > 0


def test_final_layernorm_applies_to_tokenizer_and_denoiser_outputs():
    torch.manual_seed(0)
    cfg = tiny_config()
    model = build_model(cfg).eval()
    norm = model.encoder.latent_norm
    with torch.no_grad():
        norm.weight.fill_(2.5)
        norm.bias.fill_(0.75)
    x, y = _batch(cfg)
    with torch.no_grad():
        z0 = model.encode(x)
        z_hat = model.denoise(torch.randn_like(z0), torch.full((4,), 0.3), y)
    for z in (z0, z_hat):
        assert torch.allclose(z.mean(-1), torch.full(z.shape[:-1], 0.75), atol=1e-5)
        assert torch.allclose(z.std(-1, unbiased=False), torch.full(z.shape[:-1], 2.5), atol=1e-3)


def test_label_dropout_uses_the_null_class():
    torch.manual_seed(0)
    y = torch.arange(10).repeat(100)
    dropped = drop_labels(y, 0.3, null=10)
    frac = (dropped == 10).float().mean().item()
    assert 0.25 < frac < 0.35
    kept = dropped != 10
    assert torch.equal(dropped[kept], y[kept])
    assert torch.equal(drop_labels(y, 0.0, null=10), y)


@pytest.mark.parametrize("mode", ["gaussian", "interp", "none"])
def test_recon_noise_modes(mode):
    torch.manual_seed(0)
    cfg = tiny_config(f"train.recon_noise.mode={mode}", "train.recon_noise.fraction=0.5")
    z0 = torch.randn(8, 4, 4)
    z = add_recon_noise(z0, cfg)
    changed = (z != z0).flatten(1).any(1)
    expected = {"gaussian": 8, "interp": 4, "none": 0}[mode]
    assert int(changed.sum()) == expected


def test_flow_draws_are_split_into_chunks():
    assert chunk_sizes(14, 4) == [4, 4, 4, 2]
    assert chunk_sizes(3, 8) == [3]


def test_muon_gets_block_matrices_and_adamw_the_rest():
    torch.manual_seed(0)
    cfg = tiny_config()
    model = build_model(cfg)
    muon, adamw = split_params(model)
    assert {n for n, _ in muon} | {n for n, _ in adamw} == {n for n, _ in model.named_parameters()}
    assert all(p.ndim == 2 and ".blocks." in f".{n}" for n, p in muon)
    adamw_names = {n for n, _ in adamw}
    for must in ("encoder.input_embed.proj.weight", "encoder.register_embed",
                 "encoder.latent_norm.weight", "encoder.final.linear.weight",
                 "encoder.y_embed.table.weight", "decoder.head.weight"):
        assert must in adamw_names
    assert "encoder.blocks.0.attn.qkv.weight" in {n for n, _ in muon}
    opts = build_optimizers(model, cfg)
    assert [type(o).__name__ for o in opts] == ["Muon", "AdamW"]
    assert opts[0].defaults["adjust_lr_fn"] == "match_rms_adamw"
    assert opts[0].defaults["momentum"] == 0.95
    only_adamw = build_optimizers(model, tiny_config("train.muon=false"))
    assert [type(o).__name__ for o in only_adamw] == ["AdamW"]


def test_flow_schedule_is_off_then_ramps_to_full_weight():
    from unite.objective import flow_weight_at

    cfg = tiny_config("train.flow_start=10", "train.flow_ramp=4", "train.flow_weight=2.0")
    assert [flow_weight_at(s, cfg) for s in (0, 9, 10, 11, 13, 100)] == [0, 0, 0.5, 1.0, 2.0, 2.0]
    assert flow_weight_at(0, tiny_config()) == 1.0  # default: the paper, full weight from step 0


def test_flow_term_enters_the_loss_only_once_the_schedule_starts():
    torch.manual_seed(0)
    cfg = tiny_config("train.flow_start=5")
    model = build_model(cfg)
    objective = JointObjective(model, cfg)
    x, y = _batch(cfg)
    torch.manual_seed(1)
    before, parts = objective(x, y)
    assert torch.allclose(before.detach(), parts["recon"]) and parts["flow"] > 0
    objective.step = 5
    torch.manual_seed(1)
    after, parts = objective(x, y)
    assert torch.allclose(after.detach(), parts["recon"] + parts["flow"])


def test_a_negative_flow_start_is_refused_naming_the_key():
    from unite.errors import UserError

    with pytest.raises(UserError, match="train.flow_start"):
        tiny_config("train.flow_start=-1")
