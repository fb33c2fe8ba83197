"""The GE's time embedding: the released code's low-frequency Gaussian Fourier features by
default, DiT's sinusoid as an option; checkpoints written before the option existed still load
as the sinusoid they were trained with."""

import pytest
import torch

from training_helpers import tiny_image_dict
from unite import checkpoint, config
from unite.models import build_model
from unite.models.blocks import TimestepEmbedder
from unite.models.time_embed import FourierTimeEmbedder, build_time_embedder


def relative_move(features, t0: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    a, b = features(t0), features(t1)
    return (a - b).norm(dim=-1) / a.norm(dim=-1)


def sinusoid_features(t: torch.Tensor) -> torch.Tensor:
    emb = TimestepEmbedder(8)
    half = emb.freq_dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(emb.max_period)) * torch.arange(half) / half)
    args = (t * 1000.0)[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


def test_tokenizer_jitter_barely_moves_fourier_features_but_moves_the_sinusoids():
    """t ~ U[0, 0.01) of the tokenization pass: the code's features move a few percent, the
    sinusoid as far as t = 0.1 would move it (REFERENCE section 10, issue 13)."""
    torch.manual_seed(0)
    fourier = FourierTimeEmbedder(8).features
    t0, jitter, far = torch.zeros(64), torch.rand(64) * 0.01, torch.full((64,), 0.1)
    assert relative_move(fourier, t0, jitter).max() < 0.1
    assert relative_move(sinusoid_features, t0, jitter).mean() > 0.5
    assert relative_move(sinusoid_features, t0, far).mean() > 0.5


def test_fourier_frequencies_are_a_saved_buffer_not_a_trained_parameter():
    emb = build_time_embedder("fourier", 16)
    assert "freqs" in emb.state_dict() and emb.freqs.shape == (256,)
    assert all(p is not emb.freqs for p in emb.parameters())
    assert emb(torch.rand(3)).shape == (3, 16)
    assert isinstance(build_time_embedder("sinusoid", 16), TimestepEmbedder)
    with pytest.raises(ValueError, match="unknown time embedding"):
        build_time_embedder("learned", 16)


def test_config_default_is_fourier_and_bad_values_name_the_key():
    assert config.from_dict(tiny_image_dict("t")).model.time_embed == "fourier"
    with pytest.raises(Exception, match="model.time_embed"):
        config.from_dict({**tiny_image_dict("t"), "model": {"time_embed": "rope"}})


def test_a_checkpoint_from_before_the_option_loads_as_the_sinusoid_it_was_trained_with(tmp_path):
    cfg = config.from_dict(tiny_image_dict("old"), ["model.time_embed=sinusoid",
                                                    "train.adam_eps=1e-8"])
    torch.manual_seed(0)
    model = build_model(cfg)
    stored = config.to_dict(cfg)
    del stored["model"]["time_embed"], stored["train"]["adam_eps"]  # as written back then
    path = tmp_path / "old.pt"
    checkpoint.save_atomic({"model": model.state_dict(), "config": stored, "step": 1}, path)
    loaded, loaded_cfg, _ = checkpoint.load_model(path, use_ema=False)
    assert loaded_cfg.model.time_embed == "sinusoid" and loaded_cfg.train.adam_eps == 1e-8
    assert isinstance(loaded.encoder.t_embed, TimestepEmbedder)
    z, t, y = torch.randn(2, 16, 4), torch.rand(2), torch.tensor([1, 2])
    torch.testing.assert_close(loaded.denoise(z, t, y), model.eval().denoise(z, t, y))
