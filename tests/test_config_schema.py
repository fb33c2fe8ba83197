"""A bad config value stops with a message naming the key; good files load and inherit."""

from pathlib import Path

import pytest

from unite import config
from unite.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "data, key",
    [
        ({"train": {"lrr": 1e-3}}, "train.lrr"),
        ({"train": {"lr": "fast"}}, "train.lr"),
        ({"model": {"size": "XXL"}}, "model.size"),
        ({"train": {"recon_noise": {"mode": "laplace"}}}, "train.recon_noise.mode"),
        ({"train": {"steps": 0}}, "train.steps"),
        ({"train": {"batch_size": 10, "grad_accum": 3}}, "train.grad_accum"),
        ({"sample": {"interval": [0.9, 0.1]}}, "sample.interval"),
        ({"model": {"num_registers": 10}}, "model.num_registers"),
        ({"train": {"stop_gradient": "maybe"}}, "train.stop_gradient"),
    ],
)
def test_bad_value_names_the_key(data, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        config.from_dict(data)


def test_typo_suggests_the_right_key():
    with pytest.raises(UserError, match="did you mean 'train.lr'"):
        config.from_dict({"train": {"lrr": 1e-3}})


def test_set_overrides_are_typed():
    cfg = config.from_dict({}, ["train.lr=3e-4", "model.weight_sharing=false", "sample.interval=[0.2,0.9]"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.model.weight_sharing is False
    assert cfg.sample.interval == [0.2, 0.9]


def test_every_shipped_experiment_config_validates():
    files = sorted((ROOT / "config" / "experiments").glob("*.yaml"))
    assert files, "no experiment configs shipped"
    for path in files:
        cfg = config.load(path)
        assert cfg.name


def test_inheritance_overrides_only_what_it_names():
    cfg = config.load(ROOT / "config" / "experiments" / "unite-l.yaml")
    assert cfg.model.size == "L"
    assert cfg.model.latent_dim == 32  # inherited from unite-b.yaml


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        config.load(tmp_path / "nope.yaml")
