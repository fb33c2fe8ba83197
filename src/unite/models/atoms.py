"""Atom side of the model (QM9 molecules, crystals): atom tokens in, atom slots out.

A structure is ``max_atoms`` slots; slot i holds an atomic number (0 = no atom) and
coordinates. The GE reads one token per slot in place of image patches; the decoder reads the
K latent registers and answers one query per slot (plus one lattice query for crystals).

Units and normalisation (data files and sample files hold physical units; only the model
sees normalised values, and this module is the one place that converts):

* molecules: positions in Angstrom, centred at the centroid of the atoms; the model sees
  ``positions / data.coord_scale`` (QM9 coordinates have a standard deviation of about
  1.3 Angstrom per axis, so the default 2.0 gives values of order 1).
* crystals: fractional coordinates in [0, 1) as they are (periodic: the input embedding uses
  integer-frequency Fourier features; the decoder predicts each coordinate as a point
  ``(cos, sin)(2 pi f)`` on the circle, read back with atan2, trained with the squared chord
  / (2 pi)^2, which equals the minimum-image MSE ``(d - round(d))^2`` for small errors;
  ``coord_mse`` reports that wrapped MSE).
* lattice: ``log(length / n_atoms^(1/3))`` (ADiT also scales lengths by n^(1/3); the log keeps
  decoded lengths positive) and ``(angle - 90 deg) / 30 deg`` (Niggli angles lie in about
  60..120 deg, i.e. -1..1).

Atom types are atomic numbers 0..MAX_Z used directly as class indices (class 0 = empty slot),
so the same modules serve QM9 (H, C, N, O, F) and MP20 (89 elements).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unite import kinds
from unite.config import Config
from unite.models.blocks import ViTBlock

MAX_Z = 100
NUM_TYPES = MAX_Z + 1  # class 0 = no atom
NUM_FREQS = 8  # Fourier frequencies per coordinate axis
LATTICE_DIM = 6  # 3 lengths + 3 angles
ANGLE_CENTRE, ANGLE_SCALE = 90.0, 30.0


def is_periodic(cfg: Config) -> bool:
    return kinds.modality(cfg.data.kind) == "crystals"


# -- normalisation (physical <-> model units) ----------------------------------------------
def atom_counts(atom_types: torch.Tensor) -> torch.Tensor:
    """Number of occupied slots per structure, at least 1 (a lattice needs a volume per atom)."""
    return (atom_types > 0).sum(-1).clamp(min=1)


def lattice_to_model(lengths: torch.Tensor, angles: torch.Tensor, n_atoms: torch.Tensor):
    """(B,3) Angstrom + (B,3) degrees -> (B,6) normalised lattice."""
    per_atom = n_atoms.to(lengths.dtype).unsqueeze(-1) ** (1.0 / 3.0)
    log_len = torch.log(lengths.clamp(min=1e-3) / per_atom)
    return torch.cat([log_len, (angles - ANGLE_CENTRE) / ANGLE_SCALE], dim=-1)


def lattice_from_model(lattice: torch.Tensor, n_atoms: torch.Tensor):
    """(B,6) normalised lattice -> lengths (Angstrom), angles (degrees)."""
    per_atom = n_atoms.to(lattice.dtype).unsqueeze(-1) ** (1.0 / 3.0)
    lengths = torch.exp(lattice[..., :3].clamp(max=10.0)) * per_atom
    angles = lattice[..., 3:] * ANGLE_SCALE + ANGLE_CENTRE
    return lengths, angles


def model_coords(cfg: Config, x: dict) -> torch.Tensor:
    """The coordinates the model sees: normalised positions, or fractional coordinates."""
    if is_periodic(cfg):
        return x["frac_coords"].float()
    return x["positions"].float() / cfg.data.coord_scale


def frac_to_vec(frac: torch.Tensor) -> torch.Tensor:
    """(..., 3) fractional coordinates -> (..., 3, 2) points (cos, sin)(2*pi*f) on the circle."""
    angle = 2 * math.pi * frac
    return torch.stack([angle.cos(), angle.sin()], dim=-1)


def decode_frac(vec: torch.Tensor) -> torch.Tensor:
    """(..., 3, 2) (cos, sin) predictions -> fractional coordinates in [0, 1)."""
    angle = torch.atan2(vec[..., 1].float(), vec[..., 0].float())
    return torch.remainder(angle / (2 * math.pi), 1.0)


# -- modules --------------------------------------------------------------------------------
class CoordFeatures(nn.Module):
    """Fixed Fourier features of coordinates.

    Periodic (fractional) coordinates use integer frequencies 2*pi*k, so f and f + 1 give
    the same features; Cartesian coordinates use octave frequencies plus the raw value."""

    def __init__(self, periodic: bool, num_freqs: int = NUM_FREQS):
        super().__init__()
        self.periodic = periodic
        k = torch.arange(num_freqs, dtype=torch.float32)
        freqs = 2 * math.pi * (k + 1) if periodic else math.pi * 2.0 ** (k - 3)
        self.register_buffer("freqs", freqs, persistent=False)
        self.out_dim = 3 * 2 * num_freqs + (0 if periodic else 3)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        angles = coords.unsqueeze(-1) * self.freqs.to(coords.dtype)  # (B, N, 3, F)
        feats = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)
        return feats if self.periodic else torch.cat([coords, feats], dim=-1)


class AtomEmbed(nn.Module):
    """GE input: one token per atom slot = type embedding + coordinate embedding + slot
    embedding; crystals append one lattice token (normalised lengths/angles)."""

    def __init__(self, cfg: Config, width: int):
        super().__init__()
        self.cfg = cfg
        self.periodic = is_periodic(cfg)
        self.type_embed = nn.Embedding(NUM_TYPES, width)
        self.coord_features = CoordFeatures(self.periodic)
        self.coord_proj = nn.Linear(self.coord_features.out_dim, width)
        self.slot_embed = nn.Parameter(torch.zeros(1, cfg.data.max_atoms, width))
        if self.periodic:
            self.lattice_proj = nn.Linear(LATTICE_DIM, width)
            self.lattice_token = nn.Parameter(torch.zeros(1, 1, width))

    def initialize_weights(self) -> None:
        nn.init.normal_(self.type_embed.weight, std=0.02)
        nn.init.normal_(self.slot_embed, std=0.02)
        if self.periodic:
            nn.init.normal_(self.lattice_token, std=0.02)

    def forward(self, x: dict) -> torch.Tensor:
        types = x["atom_types"].long()
        coords = model_coords(self.cfg, x)
        feats = self.coord_features(coords).to(self.coord_proj.weight.dtype)
        tokens = self.type_embed(types) + self.coord_proj(feats) + self.slot_embed
        if self.periodic:
            lat = lattice_to_model(x["lengths"].float(), x["angles"].float(), atom_counts(types))
            lat_tok = self.lattice_proj(lat.to(self.lattice_proj.weight.dtype))[:, None]
            tokens = torch.cat([tokens, lat_tok + self.lattice_token], dim=1)
        return tokens


class AtomDecoder(nn.Module):
    """Latent registers -> per-slot type logits and coordinates (+ lattice for crystals).

    A pre-LN transformer over [K registers | max_atoms slot queries | lattice query]; the
    heads read the query tokens, so K need not equal the number of slots. With K equal to the
    number of slots the decoder is *aligned*: slot query i also receives register i (a
    residual path), so register i is a natural home for atom i's latent, like ADiT's per-atom
    latents, while attention still lets every register inform every slot. On the tiny CPU
    configs this alignment cut the coordinate error of a plain autoencoder after 300 steps
    from ~1.0 to ~0.2 Angstrom."""

    def __init__(self, cfg: Config, depth: int, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.periodic = is_periodic(cfg)
        self.num_slots = cfg.data.max_atoms
        k = cfg.model.num_registers
        self.latent_in = nn.Linear(cfg.model.latent_dim, width)
        self.register_pos = nn.Parameter(torch.zeros(1, k, width))
        n_queries = self.num_slots + (1 if self.periodic else 0)
        self.aligned = k == self.num_slots
        self.queries = nn.Parameter(torch.zeros(1, n_queries, width))
        self.blocks = nn.ModuleList(ViTBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.type_head = nn.Linear(width, NUM_TYPES)
        # periodic: (cos, sin) of 2*pi*f per axis, read back with atan2 (see decode_frac)
        self.coord_head = nn.Linear(width, 6 if self.periodic else 3)
        if self.periodic:
            self.lattice_head = nn.Linear(width, LATTICE_DIM)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.register_pos, std=0.02)
        nn.init.normal_(self.queries, std=0.02)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        b = z.shape[0]
        regs = self.latent_in(z) + self.register_pos.to(z.dtype)
        queries = self.queries.to(regs.dtype).expand(b, -1, -1)
        if self.aligned:
            slot_q = queries[:, : self.num_slots] + regs
            queries = torch.cat([slot_q, queries[:, self.num_slots :]], dim=1)
        x = torch.cat([regs, queries], dim=1)
        for block in self.blocks:
            x = block(x)
        q = self.norm(x[:, z.shape[1] :])
        slots = q[:, : self.num_slots]
        coords = self.coord_head(slots)
        out = {"type_logits": self.type_head(slots)}
        if self.periodic:
            vec = coords.unflatten(-1, (3, 2))  # (B, N, 3, [cos, sin])
            out["coord_vec"] = vec
            out["coords"] = decode_frac(vec)
        else:
            out["coords"] = coords
        if self.periodic:
            out["lattice"] = self.lattice_head(q[:, self.num_slots])
        return out


def build_atom_modules(cfg: Config, width: int, dec_size) -> tuple[nn.Module, nn.Module]:
    """(GE input embedding, decoder) for data.kind qm9 / crystals."""
    decoder = AtomDecoder(cfg, dec_size.depth, dec_size.width, dec_size.heads)
    return AtomEmbed(cfg, width), decoder


# -- loss -----------------------------------------------------------------------------------
def recon_loss(cfg: Config, pred: dict, batch_x: dict):
    """Cross-entropy on slot types (all slots, class 0 = no atom) + MSE on coordinates of the
    occupied slots (wrapped difference for fractional coordinates) + lattice MSE (crystals).

    Returns ``(loss, {name: float})``."""
    t = cfg.train
    types = batch_x["atom_types"].long()
    mask = (types > 0).float()
    logits = pred["type_logits"].float()
    ce = F.cross_entropy(logits.flatten(0, 1), types.flatten())
    target = model_coords(cfg, batch_x)
    diff = pred["coords"].float() - target
    if is_periodic(cfg):
        diff = diff - torch.round(diff)  # minimum-image difference in fractional space
    per_slot = diff.pow(2).mean(-1)
    coord_mse = (per_slot * mask).sum() / mask.sum().clamp(min=1.0)
    coord_loss = coord_mse
    if is_periodic(cfg):
        # trained on the circle: squared chord between the predicted (cos, sin) vector and the
        # target point, / (2 pi)^2 so that it equals the wrapped MSE for small errors. The
        # wrapped MSE on a raw coordinate has a saddle at the marginal answer (0.25 between
        # targets 0 and 0.5, perovskites' usual values) and a kink at half a cell; the chord is
        # smooth, and the input's first Fourier pair is its target, a linear copy.
        vec = pred.get("coord_vec")
        vec = frac_to_vec(pred["coords"].float()) if vec is None else vec.float()
        chord = (vec - frac_to_vec(target)).pow(2).sum(-1).mean(-1) / (2 * math.pi) ** 2
        coord_loss = (chord * mask).sum() / mask.sum().clamp(min=1.0)
    loss = t.atom_type_weight * ce + t.atom_coord_weight * coord_loss
    with torch.no_grad():
        acc = (logits.argmax(-1) == types).float().mean()
    parts = {"type_ce": float(ce.detach()), "coord_mse": float(coord_mse.detach()),
             "slot_acc": float(acc)}
    if is_periodic(cfg):
        target = lattice_to_model(
            batch_x["lengths"].float(), batch_x["angles"].float(), atom_counts(types)
        )
        lat_mse = F.mse_loss(pred["lattice"].float(), target)
        loss = loss + t.lattice_weight * lat_mse
        parts["lattice_mse"] = float(lat_mse.detach())
    else:
        parts["coord_rmse_A"] = float(coord_mse.detach().sqrt() * cfg.data.coord_scale)
    return loss, parts


# -- sample-file arrays -------------------------------------------------------------------------
def _np(t: torch.Tensor, dtype) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(dtype) if t.is_floating_point() else \
        t.detach().cpu().numpy().astype(dtype)


def to_sample_arrays(cfg: Config, pred: dict) -> dict[str, np.ndarray]:
    """Decoder output -> sample-file fields (argmax types; physical units; empty slots zeroed).

    Molecules are re-centred on the centroid of the predicted atoms, as the data are."""
    types = pred["type_logits"].float().argmax(-1)
    mask = (types > 0).unsqueeze(-1).float()
    coords = pred["coords"].float()
    if is_periodic(cfg):
        lengths, angles = lattice_from_model(pred["lattice"].float(), atom_counts(types))
        return {
            "atom_types": _np(types, np.int64),
            "frac_coords": _np(torch.remainder(coords, 1.0) * mask, np.float32),
            "lengths": _np(lengths, np.float32),
            "angles": _np(angles, np.float32),
        }
    pos = coords * cfg.data.coord_scale
    centre = (pos * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1.0)
    return {"atom_types": _np(types, np.int64), "positions": _np((pos - centre) * mask, np.float32)}


def batch_to_sample_arrays(cfg: Config, batch_x: dict) -> dict[str, np.ndarray]:
    """A data batch (ground truth, physical units) -> the same sample-file fields."""
    out = {"atom_types": _np(batch_x["atom_types"], np.int64)}
    if is_periodic(cfg):
        for key in ("frac_coords", "lengths", "angles"):
            out[key] = _np(batch_x[key], np.float32)
    else:
        out["positions"] = _np(batch_x["positions"], np.float32)
    return out
