"""GAN decoder fine-tuning (`unite finetune`): the GE is frozen bit for bit, only the decoder
changes, the discriminator starts from the GE, an interrupted run resumes exactly, mistakes
are one-line user errors, and the same latents decode with the old or the new decoder."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from analysis_checkpoints import TINY, tiny_model
from training_helpers import SyntheticImages, one_thread
from unite import checkpoint, config
from unite.adversarial import Discriminator
from unite.checkpoint import save_atomic
from unite.cli import main
from unite.errors import UserError
from unite.finetune import finetune, scale_fields


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


BASE = ["train.lpips_weight=0", "train.batch_size=8", "train.eval_samples=8",
        "finetune.log_every=1", "finetune.ckpt_every=100", "finetune.lr=1e-3",
        "finetune.disc_lr=1e-3", "finetune.ema_decay=0.5"]


def _cfg(*extra: str):
    return config.from_dict(TINY, BASE + list(extra))


def _data():
    return SyntheticImages(24, 16), SyntheticImages(8, 16, seed=1)  # 3 batches of 8 per epoch


def _source(path, seed: int = 0):
    """A trained-looking checkpoint whose EMA differs from its raw weights."""
    model, cfg = tiny_model(["train.lpips_weight=0"], seed)
    raw = model.state_dict()
    g = torch.Generator().manual_seed(seed + 1)
    ema = {k: v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
           for k, v in raw.items()}
    save_atomic({"model": raw, "ema": ema, "optimizers": [], "scheduler": None, "step": 7,
                 "rng": {}, "config": config.to_dict(cfg), "meta": {"fine_tuned": False}}, path)
    return checkpoint.read(path)


def _run(tmp_path, cfg, name="ft", **kw):
    return finetune(cfg, tmp_path / "trained.pt", tmp_path / f"{name}.pt", tmp_path / f"{name}_run",
                    device="cpu", progress=False, datasets=_data(), **kw)


def test_ge_is_bit_identical_and_only_the_decoder_changes(tmp_path):
    src = _source(tmp_path / "trained.pt")
    result = _run(tmp_path, _cfg("finetune.steps=3", "finetune.disc_warmup_steps=1"))
    assert result == {"status": "done", "step": 3}
    out = checkpoint.read(tmp_path / "ft.pt")
    for key in ("model", "ema"):
        assert list(out[key]) == list(src[key])
        ge = [k for k in src[key] if not k.startswith("decoder.")]
        assert ge and all(torch.equal(out[key][k], src[key][k]) for k in ge)
        assert all(out[key][k].dtype == src[key][k].dtype for k in ge)
        dec = [k for k in src[key] if k.startswith("decoder.")]
        changed = [k for k in dec if not torch.equal(out[key][k], src[key][k])]
        assert len(changed) > len(dec) // 2, f"{key}: the decoder barely moved"
    meta = out["meta"]
    assert meta["fine_tuned"] is True and out["step"] == 7
    # the config keeps the trained model's sections and records the fine-tuning section used
    assert out["config"]["finetune"]["steps"] == 3 and src["config"]["finetune"]["steps"] == 0
    assert {k: v for k, v in out["config"].items() if k != "finetune"} == \
        {k: v for k, v in src["config"].items() if k != "finetune"}
    assert meta["finetune"]["steps"] == 3 and meta["finetune"]["epochs"] == 1.0
    assert meta["finetune"]["gan_loss"] == "hinge" and meta["finetune"]["ge_weights"] == "ema"
    fields = scale_fields(config.from_dict(out["config"]), {"step": 7, **meta})
    assert fields == {"fine_tuned": True, "finetune_steps": 3, "finetune_epochs": 1.0,
                      "finetune_loss": "hinge, adaptive weight x0.5"}
    # the run folder: metrics with the before (step 0) eval and GAN terms, the figure
    rows = [json.loads(x) for x in (tmp_path / "ft_run" / "metrics.jsonl").read_text().split("\n")
            if x]
    assert rows[0]["kind"] == "eval" and rows[0]["step"] == 0 and "val_psnr" in rows[0]
    ft_rows = [r for r in rows if r["kind"] == "finetune"]
    assert [r["step"] for r in ft_rows] == [1, 2, 3]
    assert "g_adv" not in ft_rows[0] and {"g_adv", "adv_weight", "d_loss"} <= set(ft_rows[1])
    assert (tmp_path / "ft_run" / "loss_curves.png").stat().st_size > 1000


def test_discriminator_starts_from_the_generative_encoder(tmp_path):
    model, _ = tiny_model(["train.lpips_weight=0"])
    disc = Discriminator(model.encoder)
    ge = model.encoder.state_dict()
    backbone = disc.backbone.state_dict()
    assert backbone.keys() == ge.keys()
    assert all(torch.equal(backbone[k], ge[k]) for k in ge)
    assert all(backbone[k].data_ptr() != ge[k].data_ptr() for k in ge)  # a copy, not shared
    assert all(p.requires_grad for p in disc.trainable())
    assert not any(p.requires_grad for p in disc.backbone.final.parameters())
    logits = disc(torch.rand(5, 3, 16, 16) * 2 - 1)
    assert logits.shape == (5, 2 * model.encoder.num_registers)  # registers + patches
    assert torch.all(logits == 0)

    # in a run: the discriminator starts from the GE evaluation uses (the EMA), and moves
    src = _source(tmp_path / "trained.pt")
    # (step 1 trains only the zero-initialised head; the backbone moves from step 2 on)
    _run(tmp_path, _cfg("finetune.steps=2", "finetune.disc_lr=1e-4"))
    saved = checkpoint.read(tmp_path / "ft_run" / "checkpoints" / "last.pt",
                            required=("discriminator",))["discriminator"]
    ema_ge = {k[len("encoder."):]: v for k, v in src["ema"].items() if k.startswith("encoder.")}
    raw_ge = {k[len("encoder."):]: v for k, v in src["model"].items() if k.startswith("encoder.")}
    moved = 0.0
    for k, v in ema_ge.items():
        d = saved[f"backbone.{k}"]
        # one AdamW step moves each entry by at most ~lr: within 1.5e-4 of the EMA GE ...
        assert (d - v).abs().max() <= 1.5e-4, k
        moved = max(moved, float((d - v).abs().max()))
    assert moved > 0  # ... but it did train
    far = max(float((saved[f"backbone.{k}"] - raw_ge[k]).abs().max()) for k in raw_ge)
    assert far > 0.01  # and it is not the raw (non-EMA) GE


def test_one_discriminator_backward_gives_the_adversarial_gradient():
    """The loop backpropagates ``(x_hat * d adv/d x_hat).sum()`` instead of ``adv`` (one pass
    through the discriminator instead of two); the decoder gradients must be the same."""
    from unite.adversarial import generator_loss

    model, _ = tiny_model(["train.lpips_weight=0"])
    disc = Discriminator(model.encoder)
    torch.nn.init.normal_(disc.head[1].weight, std=0.5)
    disc.requires_grad_(False)
    z = torch.randn(3, 16, 4)

    def decoder_grads(surrogate: bool):
        model.decoder.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # the same register noise in the discriminator's tokenization
        x_hat = model.decoder(z)
        adv = generator_loss("hinge", disc(x_hat))
        if surrogate:
            (g,) = torch.autograd.grad(adv, x_hat)
            adv = (x_hat * g).sum()
        adv.backward()
        return [p.grad.clone() for p in model.decoder.parameters()]

    for a, b in zip(decoder_grads(False), decoder_grads(True), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in decoder_grads(False))


def _sigterm_at(step_to_stop):
    def hook(step):
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


def test_interrupted_finetune_resumes_exactly(tmp_path):
    _source(tmp_path / "trained.pt")
    cfg = _cfg("finetune.steps=5", "finetune.grad_accum=2", "finetune.disc_warmup_steps=1",
               "train.recon_noise.mode=interp", "finetune.eval_every=2",
               "finetune.gan_loss=non_saturating")
    full = _run(tmp_path, cfg, "full")
    assert full["status"] == "done"
    first = _run(tmp_path, cfg, "resumed", after_step=_sigterm_at(2))
    assert first == {"status": "interrupted", "step": 2, "signal": int(signal.SIGTERM)}
    assert not (tmp_path / "resumed.pt").exists()  # no output before the run is complete
    second = _run(tmp_path, cfg, "resumed")
    assert second == {"status": "done", "step": 5}

    a, b = checkpoint.read(tmp_path / "full.pt"), checkpoint.read(tmp_path / "resumed.pt")
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    sa = checkpoint.read(tmp_path / "full_run/checkpoints/last.pt", required=("discriminator",))
    sb = checkpoint.read(tmp_path / "resumed_run/checkpoints/last.pt", required=("discriminator",))
    for name in sa["discriminator"]:
        assert torch.equal(sa["discriminator"][name], sb["discriminator"][name]), name

    def rows(run):
        return [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().split("\n")
                if x]

    ra, rb = rows("full_run"), rows("resumed_run")
    assert [(r["kind"], r["step"]) for r in ra] == [(r["kind"], r["step"]) for r in rb]
    for r, s in zip(ra, rb):
        assert {k: v for k, v in r.items() if k != "samples_per_s"} == \
            {k: v for k, v in s.items() if k != "samples_per_s"}

    # a finished run rerun rewrites the same output and trains nothing
    again = _run(tmp_path, cfg, "resumed")
    assert again == {"status": "done", "step": 5}
    c = checkpoint.read(tmp_path / "resumed.pt")
    assert all(torch.equal(b["ema"][k], c["ema"][k]) for k in b["ema"])


def test_resuming_under_another_finetune_config_is_refused(tmp_path):
    _source(tmp_path / "trained.pt")
    _run(tmp_path, _cfg("finetune.steps=2"))
    with pytest.raises(UserError, match="finetune.gan_loss"):
        _run(tmp_path, _cfg("finetune.steps=3", "finetune.gan_loss=non_saturating"))
    assert _run(tmp_path, _cfg("finetune.steps=3"))["step"] == 3  # a longer budget is fine


def _cli_error(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(["finetune", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_config_and_input_mistakes_are_one_line_user_errors(tmp_path, capsys):
    _source(tmp_path / "trained.pt")
    src, out = str(tmp_path / "trained.pt"), str(tmp_path / "o.pt")
    assert "checkpoint not found" in _cli_error(capsys, "--ckpt", str(tmp_path / "x.pt"),
                                                "--out", out)
    assert "finetune.epochs" in _cli_error(capsys, "--ckpt", src, "--out", out,
                                           "--set", "finetune.epochs=-1")
    err = _cli_error(capsys, "--ckpt", src, "--out", out, "--set", "finetune.epochs=16",
                     "--set", "finetune.steps=100")
    assert "not both" in err
    assert "hinge" in _cli_error(capsys, "--ckpt", src, "--out", out,
                                 "--set", "finetune.gan_loss=wgan")
    assert "finetune.ema_decay" in _cli_error(capsys, "--ckpt", src, "--out", out,
                                              "--set", "finetune.ema_decay=1.0")
    assert "nothing to fine-tune" in _cli_error(capsys, "--ckpt", src, "--out", out)
    with pytest.raises(UserError, match="lower finetune.batch_size"):
        _run(tmp_path, _cfg("finetune.steps=2", "finetune.batch_size=64"))
    err = _cli_error(capsys, "--ckpt", src, "--out", out, "--set", "finetune.steps=2",
                     "--set", "model.latent_dim=8", "--set", "model.num_registers=16")
    assert "another model" in err and "model.latent_dim" in err
    # molecules and crystals: the paper does not fine-tune them
    qm9 = config.from_dict({"data": {"kind": "qm9", "max_atoms": 29, "num_classes": 1},
                            "model": {"num_registers": 29, "latent_dim": 16}})
    save_atomic({"model": {}, "config": config.to_dict(qm9)}, tmp_path / "qm9.pt")
    err = _cli_error(capsys, "--ckpt", str(tmp_path / "qm9.pt"), "--out", out,
                     "--set", "finetune.steps=2")
    assert "only the image decoder" in err
    assert scale_fields(qm9, {}) == {"fine_tuned": False, "finetune": "not applicable"}
    assert not (tmp_path / "o.pt").exists()


def test_the_same_latents_decode_with_the_old_or_the_new_decoder(tmp_path, capsys):
    _source(tmp_path / "trained.pt")
    _run(tmp_path, _cfg("finetune.steps=2"))
    trained, tuned = str(tmp_path / "trained.pt"), str(tmp_path / "ft.pt")
    s = str(tmp_path / "s.npz")
    main(["sample", "--ckpt", tuned, "--out", s, "--per-class", "2", "--solver", "euler",
          "--steps", "4", "--save-latents", "--device", "cpu", "--batch-size", "8"])
    with np.load(s) as f:
        images, latents, meta = f["images"], f["latents"], json.loads(str(f["meta"]))
    assert latents.shape == (20, 16, 4) and latents.dtype == np.float32
    assert meta["fine_tuned"] is True and meta["finetune_steps"] == 2 and meta["ge_digest"]

    again, before = str(tmp_path / "again.npz"), str(tmp_path / "before.npz")
    main(["decode", "--samples", s, "--ckpt", tuned, "--out", again, "--device", "cpu",
          "--batch-size", "8"])
    main(["decode", "--samples", s, "--ckpt", trained, "--out", before, "--device", "cpu",
          "--batch-size", "8"])
    with np.load(again) as f:
        assert np.array_equal(f["images"], images)  # same decoder, same latents: same images
    with np.load(before) as f:
        assert not np.array_equal(f["images"], images)
        assert np.array_equal(f["labels"], np.repeat(np.arange(10), 2))
        bmeta = json.loads(str(f["meta"]))
    assert bmeta["fine_tuned"] is False and "finetune_steps" not in bmeta
    assert bmeta["ckpt"] == trained and bmeta["latents_ckpt"] == tuned
    assert bmeta["solver"] == "euler" and bmeta["steps"] == 4

    other = tmp_path / "other.pt"
    _source(other, seed=3)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["decode", "--samples", s, "--ckpt", str(other), "--out", before])
    assert exc.value.code == 2 and "not the ones that generated" in capsys.readouterr().err
