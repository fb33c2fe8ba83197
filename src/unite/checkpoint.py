"""Checkpoints: atomic writes and the one loader every downstream command uses.

A checkpoint is a ``torch.save`` dict with keys ``model``, ``ema`` (UNITE state dicts),
``optimizers`` (list of optimizer state dicts), ``scheduler``, ``step``, ``rng``, ``config``
(``config.to_dict``) and ``meta`` (e.g. ``{"fine_tuned": False}``).

Writes go to a temporary file in the destination folder followed by ``os.replace``: a run
killed mid-save leaves either the previous complete file or the new complete file, never a
truncated one (``os.replace`` is atomic within one file system).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unite import config as config_mod
from unite.atomic import atomic_write
from unite.errors import UserError

REQUIRED_KEYS = ("model", "config")


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    with atomic_write(path, "wb", fsync=True) as f:
        torch.save(obj, f)


def read(path: str | Path, map_location: str | torch.device = "cpu",
         required: tuple[str, ...] = REQUIRED_KEYS) -> dict:
    """Read a checkpoint dict; a missing or unreadable file is a :class:`UserError`.
    ``required``: keys the file must hold (a model checkpoint by default)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        # weights_only=False: the dict holds RNG states and plain Python config values
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # any unpickling failure means a bad file
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in required):
        raise UserError(f"{path} is not a UNITE checkpoint (needs keys {required})")
    return ckpt


def load_weights(module: torch.nn.Module, state: dict, path: str | Path, what: str = "weights") -> None:
    """``module.load_state_dict(state)``; weights that do not fit the model the checkpoint's
    config describes (edited config, file from another run) are a one-line UserError."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:3] if len(lines) > 1 else lines)
        if len(detail) > 300:
            detail = detail[:300] + " ..."
        raise UserError(
            f"{path}: its {what} do not fit the model its config describes ({detail}); "
            "the file was not written by this config"
        ) from None


def load_model(path: str | Path, use_ema: bool = True, device: str | torch.device = "cpu"):
    """Rebuild the model of a checkpoint -> ``(model.eval(), cfg, meta)``.

    ``use_ema`` picks the EMA weights (what evaluation uses) when the file has them.
    ``meta`` is ``{"step": int, **ckpt["meta"]}``.
    """
    from unite.models import build_model

    ckpt = read(path, map_location="cpu")
    cfg = config_mod.from_dict(config_mod.upgrade_saved(ckpt["config"]))
    model = build_model(cfg)
    ema = use_ema and ckpt.get("ema") is not None
    load_weights(model, ckpt["ema"] if ema else ckpt["model"], path, "EMA weights" if ema else "weights")
    meta = {"step": int(ckpt.get("step", 0)), **(ckpt.get("meta") or {})}
    return model.to(device).eval(), cfg, meta


# ----------------------------------------------------------------------------- inference


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | torch.device | None) -> str | torch.device:
    """``None`` or ``"auto"`` -> cuda if available, else cpu; anything else as given."""
    return default_device() if device in (None, "auto") else device


def load_for_inference(ckpt_path, no_ema: bool, device):
    """The model of a checkpoint for sampling, reconstruction, metrics and analyses ->
    ``(model, cfg, meta, use_ema)``: the EMA weights unless ``--no-ema`` (``no_ema``) or the
    run's ``sample.use_ema: false`` (then reloaded with the raw weights)."""
    model, cfg, ckpt_meta = load_model(ckpt_path, use_ema=not no_ema, device=device)
    if not no_ema and not cfg.sample.use_ema:
        model, cfg, ckpt_meta = load_model(ckpt_path, use_ema=False, device=device)
    return model, cfg, ckpt_meta, (not no_ema) and cfg.sample.use_ema
