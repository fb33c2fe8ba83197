"""Tiny configs and a synthetic image dataset for the training tests (fast on 2 CPU cores)."""

import torch
from torch.utils.data import Dataset

from unite import config

TINY = [
    "data.kind=digits",
    "data.image_size=8",
    "model.patch_size=4",
    "model.num_registers=4",
    "model.latent_dim=4",
    "model.depth=2",
    "model.width=32",
    "model.heads=2",
    "model.decoder_depth=1",
    "model.decoder_width=32",
    "model.decoder_heads=2",
    "train.batch_size=8",
    "train.flow_steps_per_recon=3",
    "train.flow_chunk=2",
    "train.lpips_weight=0",
    "train.lr=1e-3",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.eval_samples=8",
]


def tiny_config(*overrides: str) -> config.Config:
    return config.from_dict({}, TINY + list(overrides))


class SyntheticImages(Dataset):
    """Deterministic random images in [-1, 1] with class labels."""

    def __init__(self, n: int = 24, size: int = 8, classes: int = 10, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.y = torch.randint(0, classes, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def one_thread():
    """Context for heavy tests: one intra-op thread (OpenMP threads spin badly on a busy 2-core
    machine) restored afterwards."""
    import contextlib

    @contextlib.contextmanager
    def ctx():
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return ctx()


def tiny_image_dict(name: str) -> dict:
    """Config dict of the smallest image UNITE the CLI tests build (16x16, one block each)."""
    return {
        "name": name,
        "data": {"image_size": 16},
        "model": {"depth": 1, "width": 32, "heads": 2, "decoder_depth": 1, "decoder_width": 32,
                  "decoder_heads": 2, "patch_size": 4, "num_registers": 16, "latent_dim": 4},
    }
