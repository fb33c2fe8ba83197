"""Atom tokens in place of patches: the GE reads atoms, the decoder answers per slot; the loss
is zero for a perfect prediction (periodic for fractional coordinates); decoder output
converts to the sample-file formats; UNITE-S has about 33M parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unite import config
from unite.models import atoms, build_model

pytestmark = pytest.mark.usefixtures("single_thread")


def make_cfg(kind: str, **model):
    n = 29 if kind == "qm9" else 20
    return config.from_dict({
        "data": {"kind": kind, "max_atoms": n, "num_classes": 1},
        "model": {"num_registers": n, "latent_dim": 16, "size": "tiny", "decoder_size": "tiny",
                  "depth": 2, "width": 64, "heads": 2, "decoder_depth": 1, "decoder_width": 64,
                  "decoder_heads": 2, **model},
    })


def make_batch(kind: str, b: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = 29 if kind == "qm9" else 20
    counts = torch.randint(2, 9, (b,), generator=g)
    slots = torch.arange(n)[None] < counts[:, None]
    z = torch.tensor([1, 6, 7, 8, 9]) if kind == "qm9" else torch.arange(1, 84)
    types = z[torch.randint(len(z), (b, n), generator=g)] * slots
    if kind == "qm9":
        pos = torch.randn(b, n, 3, generator=g) * slots[..., None]
        pos = pos - pos.sum(1, keepdim=True) / counts[:, None, None]
        return {"atom_types": types, "positions": pos * slots[..., None]}
    return {
        "atom_types": types,
        "frac_coords": torch.rand(b, n, 3, generator=g) * slots[..., None],
        "lengths": 3 + 5 * torch.rand(b, 3, generator=g),
        "angles": 70 + 40 * torch.rand(b, 3, generator=g),
    }


def perfect_prediction(cfg, x: dict) -> dict:
    """What a perfect decoder would output for batch x, in model units."""
    logits = torch.full((*x["atom_types"].shape, atoms.NUM_TYPES), -30.0)
    logits.scatter_(-1, x["atom_types"].long()[..., None], 30.0)
    pred = {"type_logits": logits, "coords": atoms.model_coords(cfg, x)}
    if atoms.is_periodic(cfg):
        pred["lattice"] = atoms.lattice_to_model(x["lengths"], x["angles"],
                                                 atoms.atom_counts(x["atom_types"]))
    return pred


@pytest.mark.parametrize("kind", ["qm9", "crystals"])
def test_atom_tokens_through_ge_and_decoder(kind):
    cfg = make_cfg(kind, num_registers=7)  # K need not equal the number of slots
    model = build_model(cfg)
    x = make_batch(kind)
    z = model.encode(x)
    assert z.shape == (4, 7, 16)
    out = model.decode(z)
    n = cfg.data.max_atoms
    assert out["type_logits"].shape == (4, n, atoms.NUM_TYPES)
    assert out["coords"].shape == (4, n, 3)
    assert ("lattice" in out) == (kind == "crystals")
    loss, parts = atoms.recon_loss(cfg, out, x)
    loss.backward()
    # adaLN-Zero: at init every block is an identity on its token, so inputs reach the
    # registers only after the gates move; one SGD step is enough
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.zero_grad()
    atoms.recon_loss(cfg, model.decode(model.encode(x)), x)[0].backward()
    embed = model.encoder.input_embed
    assert embed.type_embed.weight.grad.abs().sum() > 0  # gradients reach the atom tokens
    assert embed.coord_proj.weight.grad.abs().sum() > 0
    assert all(isinstance(v, float) for v in parts.values())


@pytest.mark.parametrize("kind", ["qm9", "crystals"])
def test_perfect_prediction_has_zero_loss_and_round_trips(kind):
    cfg = make_cfg(kind)
    x = make_batch(kind)
    pred = perfect_prediction(cfg, x)
    loss, parts = atoms.recon_loss(cfg, pred, x)
    assert loss.item() < 1e-6 and parts["slot_acc"] == 1.0
    decoded = atoms.to_sample_arrays(cfg, pred)
    truth = atoms.batch_to_sample_arrays(cfg, x)
    assert decoded.keys() == truth.keys()
    for key in truth:
        np.testing.assert_allclose(decoded[key], truth[key], atol=1e-4, err_msg=key)
    # a wrong prediction is not free
    worse = dict(pred, coords=pred["coords"] + 0.1)
    assert atoms.recon_loss(cfg, worse, x)[0].item() > 1e-3


def test_fractional_coordinates_are_periodic():
    cfg = make_cfg("crystals")
    x = make_batch("crystals")
    pred = perfect_prediction(cfg, x)
    shifted = dict(pred, coords=pred["coords"] + torch.tensor([1.0, -1.0, 2.0]))
    assert atoms.recon_loss(cfg, shifted, x)[0].item() < 1e-6  # a lattice translation is free
    near_edge = {**x, "frac_coords": x["frac_coords"].clone()}
    near_edge["frac_coords"][:, 0, 0] = 0.999
    pred_edge = perfect_prediction(cfg, near_edge)
    pred_edge["coords"][:, 0, 0] = 0.001  # 0.002 apart through the cell boundary, not 0.998
    assert atoms.recon_loss(cfg, pred_edge, near_edge)[1]["coord_mse"] < 1e-4
    embed = build_model(cfg).encoder.input_embed
    wrapped = {**x, "frac_coords": x["frac_coords"] + 1.0}
    torch.testing.assert_close(embed(x), embed(wrapped), atol=1e-4, rtol=1e-4)


def test_sample_arrays_have_the_file_formats():
    qm9 = atoms.to_sample_arrays(make_cfg("qm9"), build_model(make_cfg("qm9")).decode(torch.randn(3, 29, 16)))
    assert qm9["atom_types"].shape == (3, 29) and qm9["positions"].shape == (3, 29, 3)
    cfg = make_cfg("crystals")
    crys = atoms.to_sample_arrays(cfg, build_model(cfg).decode(torch.randn(3, 20, 16)))
    assert crys["atom_types"].shape == (3, 20) and crys["frac_coords"].shape == (3, 20, 3)
    assert crys["lengths"].shape == (3, 3) and crys["angles"].shape == (3, 3)
    assert (crys["lengths"] > 0).all()
    assert (crys["frac_coords"] >= 0).all() and (crys["frac_coords"] < 1).all()
    empty = crys["atom_types"] == 0
    assert not crys["frac_coords"][empty].any()  # empty slots carry no coordinates


@pytest.mark.parametrize("kind", ["qm9", "crystals"])
def test_unite_s_has_about_33m_parameters(kind):
    n = 29 if kind == "qm9" else 20
    cfg = config.from_dict({
        "data": {"kind": kind, "max_atoms": n, "num_classes": 1},
        "model": {"size": "S", "decoder_size": "tiny", "num_registers": n, "latent_dim": 16},
    })
    with torch.device("meta"):
        model = build_model(cfg)
    total = sum(p.numel() for p in model.parameters())
    assert 32.3e6 < total < 33.7e6  # DiT-S backbone (~32.6M) + small atom decoder


def test_tiny_model_learns_to_reconstruct():
    torch.manual_seed(0)
    cfg = make_cfg("qm9")
    model = build_model(cfg)
    x = make_batch("qm9", b=4, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, _ = atoms.recon_loss(cfg, model.decode(model.encode(x)), x)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.4 * first


def test_decoder_aligns_registers_with_slots_only_when_counts_agree():
    assert build_model(make_cfg("qm9")).decoder.aligned  # K = 29 = slots: register i -> slot i
    assert not build_model(make_cfg("qm9", num_registers=7)).decoder.aligned



def test_fractional_coordinates_are_trained_on_the_circle():
    """Crystal coordinates come out as (cos, sin) pairs read back with atan2; the loss (squared
    chord / (2 pi)^2) is smooth, equals the wrapped MSE for small errors, and a raw wrapped
    coordinate head (which sat on the saddle between the perovskite values 0 and 0.5) is gone."""
    cfg = make_cfg("crystals")
    out = build_model(cfg).decode(torch.randn(2, 20, 16))
    assert out["coord_vec"].shape == (2, 20, 3, 2)
    assert ((out["coords"] >= 0) & (out["coords"] < 1)).all()
    x = make_batch("crystals")
    pred = perfect_prediction(cfg, x)
    small = dict(pred, coords=pred["coords"] + 0.01)
    small["coord_vec"] = atoms.frac_to_vec(small["coords"]) * 1.0
    loss, parts = atoms.recon_loss(cfg, small, x)
    assert parts["coord_mse"] == pytest.approx(1e-4, rel=1e-3)
    chord = (loss.item() - 0.0) / cfg.train.atom_coord_weight  # types and lattice are exact
    assert chord == pytest.approx(1e-4, rel=1e-2)
    torch.testing.assert_close(atoms.decode_frac(atoms.frac_to_vec(x["frac_coords"]) * 3.0),
                               torch.remainder(x["frac_coords"], 1.0), atol=1e-5, rtol=0)
