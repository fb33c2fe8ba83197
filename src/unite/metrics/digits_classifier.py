"""A small CNN trained on the digits training split, registered with torch-fidelity as a feature
extractor: the offline stand-in for InceptionV3 on the embedded default.

Inception weights cannot be had offline, and Inception features of 8x8 scans would say little
anyway. This network gives torch-fidelity what Inception gives it: pooled features for FID
(``pool64``) and class logits for IS and for the class accuracy of samples (is the sample the
digit it was asked for?). Numbers from it are named ``*_digits``: they are internal yardsticks,
not comparable with ImageNet FID/IS.

The network sees exactly what the metric path sees: uint8 RGB images, averaged to grey,
resized to the training resolution and scaled to [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from unite.errors import UserError

EXTRACTOR_NAME = "unite-digits-cnn"
FID_LAYER = "pool64"
ISC_LAYER = "logits"
FEATURE_DIM = 64
FORMAT = 1


class DigitsCNN(nn.Module):
    """Three 3x3 conv stages on a 16x16 grey input (the digits hold 8x8 of information), global
    average pool -> 64 features -> 10 logits. Small on purpose: it trains in seconds on a CPU."""

    def __init__(self, num_classes: int = 10, input_size: int = 16):
        super().__init__()
        self.input_size = input_size
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, FEATURE_DIM, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def preprocess(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> grey float (B, 1, input_size, input_size) in [-1, 1]."""
        x = x_uint8.float().mean(dim=1, keepdim=True) / 127.5 - 1.0
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return x

    def forward(self, x_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(self.preprocess(x_uint8))
        return features, self.head(self.dropout(features))


def load_classifier(path: str | Path) -> tuple[DigitsCNN, dict]:
    """-> (network in eval mode, the file's info dict)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"digits classifier not found: {path}. Make it with "
            f"`python -m unite evaluate digits-classifier --config C --out {path}`"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = DigitsCNN(blob["num_classes"], blob["input_size"])
        net.load_state_dict(blob["state_dict"])
    except Exception as exc:  # any unreadable/foreign file
        raise UserError(f"{path} is not a digits classifier file ({exc})") from None
    return net.eval().requires_grad_(False), {k: v for k, v in blob.items() if k != "state_dict"}


def _feature_extractor_class():
    """Defined lazily so that importing this module does not import torch-fidelity."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.helpers import vassert

    class DigitsFeatureExtractor(FeatureExtractorBase):
        """torch-fidelity feature extractor over :class:`DigitsCNN` (weights from a local file)."""

        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            if feature_extractor_weights_path is None:
                raise UserError(
                    "the digits feature extractor needs feature_extractor_weights_path (a file "
                    "made by `python -m unite evaluate digits-classifier`)"
                )
            self.net, _ = load_classifier(feature_extractor_weights_path)

        def forward(self, x):
            vassert(torch.is_tensor(x) and x.dtype == torch.uint8, "Expecting uint8 images")
            vassert(x.dim() == 4 and x.shape[1] == 3, f"Input is not Bx3xHxW: {x.shape}")
            features, logits = self.net(x)
            out = {FID_LAYER: features.float(), ISC_LAYER: logits.float()}
            return tuple(out[name] for name in self.features_list)

        @staticmethod
        def get_provided_features_list():
            return FID_LAYER, ISC_LAYER

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": ISC_LAYER, "fid": FID_LAYER, "kid": FID_LAYER, "prc": FID_LAYER}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    return DigitsFeatureExtractor


def register() -> None:
    """Register the extractor with torch-fidelity under EXTRACTOR_NAME (idempotent)."""
    import torch_fidelity
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(EXTRACTOR_NAME, _feature_extractor_class())


# ----------------------------------------------------------------------------- training


def _split_uint8(cfg, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A digits split as the metric path will see it: uint8 (N, 3, S, S) + labels."""
    from unite.metrics.image_sets import split_dataset
    from unite.modality import round_to_uint8

    ds = split_dataset(cfg, split)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack([round_to_uint8(x) for x in xs]), torch.tensor(ys, dtype=torch.long)


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to max_shift pixels; the digits background (grey level 0)
    is uint8 0, so zero padding extends it."""
    if max_shift == 0:
        return x
    pad = F.pad(x, (max_shift,) * 4, value=0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
    return pad[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]


@torch.no_grad()
def accuracy(net: DigitsCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    net.eval()
    pred = torch.cat([net(x[i : i + batch_size])[1].argmax(1) for i in range(0, len(x), batch_size)])
    return float((pred == y).float().mean())


def train_classifier(
    cfg, out: str | Path, *, epochs: int = 30, batch_size: int = 64, lr: float = 3e-3,
    seed: int = 0, verbose: bool = True,
) -> dict:
    """Train on the train split (val/test never seen), save to ``out``; returns the info dict."""
    from tqdm import tqdm

    from unite.checkpoint import save_atomic

    if cfg.data.kind != "digits":
        raise UserError(f"the digits classifier needs a digits config, got data.kind={cfg.data.kind}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x_tr, y_tr = _split_uint8(cfg, "train")
    x_va, y_va = _split_uint8(cfg, "val")
    x_te, y_te = _split_uint8(cfg, "test")
    net = DigitsCNN(cfg.data.num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x_tr) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    bar = tqdm(range(epochs), desc="digits classifier", disable=not verbose)
    for _ in bar:
        net.train()
        order = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            _, logits = net(_shift(x_tr[idx], max(1, x_tr.shape[-1] // 16), gen))
            loss = F.cross_entropy(logits, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    info = {
        "format": FORMAT,
        "num_classes": cfg.data.num_classes,
        "image_size": cfg.data.image_size,
        "input_size": net.input_size,
        "feature_dim": FEATURE_DIM,
        "epochs": epochs,
        "seed": seed,
        "train_size": len(x_tr),
        "train_accuracy": accuracy(net, x_tr, y_tr),
        "val_accuracy": accuracy(net, x_va, y_va),
        "test_accuracy": accuracy(net, x_te, y_te),
    }
    save_atomic({"state_dict": net.state_dict(), **info}, out)
    return info
