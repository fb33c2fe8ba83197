"""Experiment configuration: typed sections, YAML loading, ``--set`` overrides, validation.

The dataclasses below *are* the schema: an unknown key, a wrong type or an out-of-range value
raises :class:`unite.errors.UserError` naming the dotted key, so a typo in a config file
never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unite import kinds
from unite.errors import UserError

# Keys that may change between a checkpoint and its resumption: they leave the maths alone or
# only extend the run (unite.resume.check_resumable). Kept here, not in unite.resume, so
# the workflow can read them without importing torch.
RESUMABLE_CHANGES = (
    "train.steps",
    "train.log_every",
    "train.ckpt_every",
    "train.eval_every",
    "train.eval_samples",
    "data.num_workers",
    "data.root",
    "model.grad_checkpointing",
    "train.compile",
    "sample.",
    "finetune.",  # read only by `unite finetune`, after training
)


@dataclass
class DataConfig:
    """Where samples come from and how they are shaped."""

    kind: str = "digits"  # a row of unite.kinds.DATA_KINDS: digits | imagefolder | qm9 | crystals
    root: str = ""  # imagefolder root / prepared array file / crystal CSV folder
    image_size: int = 32
    num_classes: int = 10
    hflip: bool = True
    num_workers: int = 0
    on_corrupt: str = "error"  # error | skip
    max_atoms: int = 29  # atom slots per structure (QM9 29, MP20 20); empty slots are type 0
    coord_scale: float = 2.0  # molecules: Angstrom per normalised coordinate unit (model side)
    random_rotation: bool = False  # molecules: random 3D rotation of each training example
    subset: int = 0  # 0 = all training examples; >0 = first N (embedded default)
    seed: int = 0


@dataclass
class ModelConfig:
    """Generative Encoder and decoder sizes (REFERENCE section 1)."""

    size: str = "tiny"  # tiny | S | B | L | XL (GE)
    decoder_size: str = "tiny"  # tiny | S | B
    patch_size: int = 4
    num_registers: int = 64
    latent_dim: int = 8
    weight_sharing: bool = True  # False = separate encoder and denoiser networks
    in_context_tokens: int = 0  # class tokens prepended from block `in_context_start` on
    in_context_start: int = 4
    # time embedding of the GE: "fourier" = the authors' code (sin/cos(2 pi W t) with fixed
    # W ~ N(0, 1), low frequency); "sinusoid" = DiT's sin/cos of 1000 t over periods up to 1e4
    # (this project's first version; checkpoints written before this key existed use it)
    time_embed: str = "fourier"
    # activation checkpointing policy (unite.models.checkpointing): none | all | auto | selective;
    # auto = the authors' rule (recompute the denoising passes only when F > 4); the old
    # booleans still load (true = all, false = none)
    grad_checkpointing: str = "none"
    # override the registry (0 = use the named size)
    depth: int = 0
    width: int = 0
    heads: int = 0
    decoder_depth: int = 0
    decoder_width: int = 0
    decoder_heads: int = 0


@dataclass
class ReconNoiseConfig:
    """Noise added to z0 before decoding (paper: gaussian sigma 0.7; authors' code: interp)."""

    mode: str = "gaussian"  # gaussian | interp | none
    sigma: float = 0.7  # gaussian: z0 + sigma * eps
    s_min: float = 0.7  # interp: s*z0 + (1-s)*eps, s ~ U[s_min, 1], on `fraction` of the batch
    fraction: float = 0.5


@dataclass
class TrainConfig:
    """Single-stage joint training (REFERENCE section 2)."""

    steps: int = 1000  # optimizer steps
    batch_size: int = 64  # global batch (summed over ranks and accumulation)
    grad_accum: int = 1
    lr: float = 1e-4
    min_lr: float = 1e-6
    warmup_steps: int = 100
    # LR shape after warm-up: hold `lr` for `lr_hold_steps`, then a cosine down to `min_lr` over
    # `lr_decay_steps` (0 = until train.steps), then flat at `min_lr`. 0, 0 = the paper's
    # warm-up + cosine; the released code holds, decays over 20 epochs and stays flat.
    lr_hold_steps: int = 0
    lr_decay_steps: int = 0
    weight_decay: float = 0.0
    # AdamW eps: 1e-6 as in the released code (PyTorch's default 1e-8). Muon keeps PyTorch's
    # Newton-Schulz eps 1e-7 (the code passes 1e-6 there too: a norm floor, no effect in practice)
    adam_eps: float = 1e-6
    muon: bool = True  # Muon for matrix weights, AdamW for the rest
    grad_clip: float = 3.0
    ema_decay: float = 0.9978
    flow_steps_per_recon: int = 14  # F
    flow_chunk: int = 4  # draws per forward chunk (memory knob; same maths)
    flow_loss: str = "x"  # x (paper: MSE on x-prediction) | velocity (authors' code)
    velocity_clamp: float = 0.05
    time_shift: float = 0.5  # a; 1.0 = no shift
    stop_gradient: bool = True
    recon_noise: ReconNoiseConfig = field(default_factory=ReconNoiseConfig)
    l1_weight: float = 1.0
    lpips_weight: float = 1.0
    lpips_pretrained: bool = True  # False: random VGG backbone (tests; offline)
    flow_weight: float = 1.0
    # Flow-loss schedule in optimizer steps (0, 0 = the paper: full weight from step 0). The
    # flow term is off before `flow_start` and ramps linearly to `flow_weight` over
    # `flow_ramp` steps. Tiny CPU models need it: with the flow loss on from step 0 the shared
    # GE learns "ignore the registers at t ~ 0" for denoising before the tokenizer (also run at
    # t ~ 0) has learnt to read the patches, and every latent collapses to one constant.
    flow_start: int = 0
    flow_ramp: int = 0
    atom_type_weight: float = 1.0  # atoms: cross-entropy on slot types (class 0 = no atom)
    atom_coord_weight: float = 10.0  # atoms: MSE on normalised positions / wrapped frac coords
    lattice_weight: float = 10.0  # crystals: MSE on normalised lattice (log lengths, angles)
    label_dropout: float = 0.1
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16
    # torch.compile the GE and decoder blocks (unite.acceleration); same maths, GPU speed
    compile: bool = False
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    eval_every: int = 0  # 0 = only at the end
    eval_samples: int = 256  # held-out (val) examples for the periodic EMA reconstruction eval


@dataclass
class SampleConfig:
    """Defaults for ``unite sample`` (REFERENCE section 3)."""

    solver: str = "heun"  # euler | heun | dopri5
    steps: int = 50
    cfg: float = 1.0
    interval: list[float] = field(default_factory=lambda: [0.1, 1.0])
    per_class: int = 10
    batch_size: int = 64
    atol: float = 1e-6
    rtol: float = 1e-3
    use_ema: bool = True
    # ODE sampling and decoding: fp32 (the released code samples in full precision) or bf16
    # autocast on CUDA (faster; training keeps train.precision either way)
    precision: str = "fp32"


@dataclass
class FinetuneConfig:
    """GAN decoder fine-tuning after joint training (paper App. A / REFERENCE section 6).

    The GE is frozen; only the decoder trains, on L1 (+ LPIPS) plus an adversarial loss from
    a discriminator initialised from the trained GE. The paper gives only "16 epochs, decoder
    only, discriminator from the GE"; every other value here is our choice (docs/finetune.md).
    The budget is ``epochs`` (over the training split) or ``steps``; both 0 = no fine-tuning.
    """

    epochs: int = 0  # decoder-only adversarial epochs (paper: 16)
    steps: int = 0  # alternative budget in optimizer steps (tiny CPU configs); not with epochs
    batch_size: int = 0  # global batch; 0 = train.batch_size (the paper's batch)
    grad_accum: int = 1
    lr: float = 1e-4  # decoder LR, constant after `warmup_steps` (not stated in the paper)
    warmup_steps: int = 0  # linear LR warm-up of the decoder, counted from its first update
    disc_lr: float = 1e-4  # discriminator AdamW LR, betas (0.5, 0.9) as in VQGAN/StyleGAN
    gan_loss: str = "hinge"  # hinge (VQGAN) | non_saturating (StyleGAN's softplus form)
    adaptive_weight: bool = True  # VQGAN: |grad recon| / |grad adv| at the decoder's last layer
    disc_weight: float = 0.5  # multiplies the adaptive weight (or is the fixed weight if off)
    max_adaptive_weight: float = 1.0e4  # VQGAN's clamp of the ratio
    disc_warmup_steps: int = 0  # discriminator-only steps before the decoder moves
    recon_noise: bool = True  # decode train.recon_noise-corrupted z0, as in joint training
    ema_decay: float = 0.9978  # EMA of the decoder (the EMA GE stays as trained)
    grad_clip: float = 3.0  # decoder and discriminator, each over its own parameters
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    eval_every: int = 0  # 0 = before the first and after the last step only


@dataclass
class Config:
    """One experiment."""

    name: str = "digits"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


CHOICES: dict[str, tuple[str, ...]] = {
    "data.kind": kinds.NAMES,
    "data.on_corrupt": ("error", "skip"),
    "model.size": ("tiny", "S", "B", "L", "XL"),
    "model.decoder_size": ("tiny", "S", "B"),
    "model.time_embed": ("fourier", "sinusoid"),
    "model.grad_checkpointing": ("none", "all", "auto", "selective"),
    "train.recon_noise.mode": ("gaussian", "interp", "none"),
    "train.flow_loss": ("x", "velocity"),
    "train.precision": ("auto", "fp32", "bf16"),
    "sample.solver": ("euler", "heun", "dopri5"),
    "finetune.gan_loss": ("hinge", "non_saturating"),
    "sample.precision": ("fp32", "bf16"),
}

# Keys added after checkpoints were already being written, with the value that those older
# checkpoints were trained with. A stored config that lacks one of them gets this value, not
# today's default, so an old checkpoint is rebuilt as it was trained (see `upgrade_saved`).
LEGACY_VALUES: dict[str, Any] = {
    "model.time_embed": "sinusoid",
    "train.adam_eps": 1e-8,
}

POSITIVE: tuple[str, ...] = (
    "data.image_size",
    "data.max_atoms",
    "data.coord_scale",
    "model.patch_size",
    "model.num_registers",
    "model.latent_dim",
    "train.steps",
    "train.batch_size",
    "train.grad_accum",
    "train.flow_steps_per_recon",
    "train.flow_chunk",
    "train.time_shift",
    "sample.steps",
    "sample.per_class",
    "sample.batch_size",
    "sample.atol",
    "sample.rtol",
    "data.num_classes",
    "train.lr",
    "train.log_every",
    "train.eval_samples",
    "train.velocity_clamp",
)

# counts, seeds, intervals (0 = off), weights and rates that a negative value would break
# deep inside torch/numpy (seed -1: numpy ValueError; num_workers -1: DataLoader ValueError)
NON_NEGATIVE: tuple[str, ...] = (
    "data.num_workers",
    "data.subset",
    "data.seed",
    "model.in_context_tokens",
    "model.in_context_start",
    "model.depth",
    "model.width",
    "model.heads",
    "model.decoder_depth",
    "model.decoder_width",
    "model.decoder_heads",
    "train.seed",
    "train.min_lr",
    "train.warmup_steps",
    "train.weight_decay",
    "train.grad_clip",
    "train.ckpt_every",
    "train.eval_every",
    "train.l1_weight",
    "train.lpips_weight",
    "train.flow_weight",
    "train.atom_type_weight",
    "train.atom_coord_weight",
    "train.lattice_weight",
    "train.recon_noise.sigma",
    "sample.cfg",
    "finetune.epochs",
)


def _fail(key: str, msg: str) -> typing.NoReturn:
    raise UserError(f"config key '{key}': {msg}")


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Check/convert one leaf value against its annotated type."""
    origin = typing.get_origin(typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        _fail(key, f"expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            _fail(key, f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value)) if float(value).is_integer() else _fail(key, "")
            except (ValueError, UserError):
                pass
        _fail(key, f"expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, bool):
            _fail(key, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        _fail(key, f"expected a number, got {value!r}")
    if typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        _fail(key, f"expected a string, got {value!r}")
    if origin is list:
        (item_type,) = typing.get_args(typ)
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, (list, tuple)):
            _fail(key, f"expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
    raise TypeError(f"unsupported config type {typ} for {key}")  # programming error


# keys that used to be booleans: the old values still load (older configs and checkpoints)
BOOL_ALIASES: dict[str, dict[bool, str]] = {
    "model.grad_checkpointing": {True: "all", False: "none"},
}


def _merge(obj: Any, updates: dict, prefix: str = "") -> None:
    """Merge a nested dict into a dataclass instance, validating keys and types."""
    if not isinstance(updates, dict):
        _fail(prefix.rstrip(".") or "<root>", f"expected a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            _fail(dotted, f"unknown key{hint}; valid keys here: {', '.join(names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, dotted + ".")
        else:
            if isinstance(value, bool) and dotted in BOOL_ALIASES:
                value = BOOL_ALIASES[dotted][value]
            setattr(obj, key, _coerce(dotted, value, hints[key]))


def get_key(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def validate(cfg: Config) -> Config:
    """Range and choice checks that types alone cannot express."""
    for key, allowed in CHOICES.items():
        value = get_key(cfg, key)
        if value not in allowed:
            _fail(key, f"{value!r} is not one of {', '.join(allowed)}")
    for key in POSITIVE:
        if not get_key(cfg, key) > 0:  # `not >`: NaN fails too
            _fail(key, f"must be > 0, got {get_key(cfg, key)}")
    for key in NON_NEGATIVE:
        if not get_key(cfg, key) >= 0:
            _fail(key, f"must be >= 0, got {get_key(cfg, key)}")
    ft = cfg.finetune
    for key in ("finetune.steps", "finetune.batch_size",
                "finetune.warmup_steps", "finetune.disc_warmup_steps", "finetune.ckpt_every",
                "finetune.eval_every", "finetune.grad_clip", "finetune.disc_weight"):
        if not get_key(cfg, key) >= 0:  # NaN fails too
            _fail(key, f"must be >= 0, got {get_key(cfg, key)}")
    if ft.epochs and ft.steps:
        _fail("finetune.steps", f"set either finetune.epochs ({ft.epochs}) or finetune.steps "
              f"({ft.steps}) as the budget, not both")
    for key in ("finetune.grad_accum", "finetune.lr", "finetune.disc_lr", "finetune.log_every",
                "finetune.max_adaptive_weight"):
        if not get_key(cfg, key) > 0:
            _fail(key, f"must be > 0, got {get_key(cfg, key)}")
    if ft.batch_size and ft.batch_size % ft.grad_accum:
        _fail("finetune.grad_accum", f"must divide finetune.batch_size ({ft.batch_size})")
    if not 0.0 <= ft.ema_decay < 1.0:
        _fail("finetune.ema_decay", "must lie in [0, 1)")
    t = cfg.train
    if t.batch_size % t.grad_accum:
        _fail("train.grad_accum", f"must divide train.batch_size ({t.batch_size})")
    for key in ("train.label_dropout", "train.recon_noise.fraction"):
        if not 0.0 <= get_key(cfg, key) <= 1.0:
            _fail(key, "must lie in [0, 1]")
    if not 0.0 <= t.recon_noise.s_min <= 1.0:
        _fail("train.recon_noise.s_min", "must lie in [0, 1]")
    for key in ("train.flow_start", "train.flow_ramp", "train.lr_hold_steps", "train.lr_decay_steps"):
        if get_key(cfg, key) < 0:
            _fail(key, "must be >= 0 (optimizer steps)")
    if t.adam_eps <= 0:
        _fail("train.adam_eps", f"must be > 0, got {t.adam_eps}")
    if not 0.0 <= t.ema_decay < 1.0:
        _fail("train.ema_decay", "must lie in [0, 1)")
    lo_hi = cfg.sample.interval
    if len(lo_hi) != 2 or not 0.0 <= lo_hi[0] <= lo_hi[1] <= 1.0:
        _fail("sample.interval", f"expected [lo, hi] with 0 <= lo <= hi <= 1, got {lo_hi}")
    m = cfg.model
    if kinds.is_images(cfg.data.kind):
        if cfg.data.image_size % m.patch_size:
            _fail("model.patch_size", f"must divide data.image_size ({cfg.data.image_size})")
        grid = (cfg.data.image_size // m.patch_size) ** 2
        if m.num_registers != grid:
            _fail(
                "model.num_registers",
                f"the image decoder maps one register to one patch, so it must equal "
                f"(image_size / patch_size)^2 = {grid}, got {m.num_registers}",
            )
    return cfg


def parse_set(assignments: list[str] | None) -> dict:
    """Turn ``["train.lr=3e-4", "model.size=B"]`` into a nested dict."""
    nested: dict = {}
    for item in assignments or []:
        if "=" not in item:
            raise UserError(f"--set expects key.sub=value, got {item!r}")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def upgrade_saved(data: dict) -> dict:
    """A config stored in a checkpoint, with :data:`LEGACY_VALUES` filled in where it predates
    a key: the model and optimizer are rebuilt as they were trained, not with today's default."""
    out = copy.deepcopy(data)
    for dotted, value in LEGACY_VALUES.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(leaf, value)
    return out


def from_dict(data: dict | None, overrides: list[str] | None = None) -> Config:
    cfg = Config()
    _merge(cfg, data or {})
    _merge(cfg, parse_set(overrides))
    return validate(cfg)


def load(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (``inherit:`` may name a base file), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        data = _read_yaml(Path(path))
    return from_dict(data, overrides)


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.exists():
        raise UserError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise UserError(f"config inheritance loop at {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(yaml_error(path, exc)) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: top level must be a mapping")
    base = data.pop("inherit", None)
    if base:
        parent = _read_yaml((path.parent / base), seen + (path.resolve(),))
        data = deep_update(parent, data)
    return data


def config_files(path: str | Path) -> list[Path]:
    """The config file and every file it inherits from, nearest first: editing any of them
    changes the experiment (the workflow's training rule lists them all as inputs)."""
    files: list[Path] = []
    current = Path(path)
    while True:
        if not current.exists():
            raise UserError(f"config file not found: {current}")
        if current.resolve() in {f.resolve() for f in files}:
            raise UserError(f"config inheritance loop at {current}")
        files.append(current)
        data = yaml.safe_load(current.read_text()) or {}
        base = data.get("inherit") if isinstance(data, dict) else None
        if not base:
            return files
        current = current.parent / base


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_digest(path: str | Path, overrides: list[str] | None = None) -> str:
    """A short hash of the settings a resumed run may not change, from the config files as
    written plus the overrides. The workflow trains each such setting in its own run folder:
    an edited setting starts a fresh run, while a re-submitted job with unchanged settings
    (or a longer ``train.steps``) resumes from the folder's checkpoint."""
    data = deep_update(_read_yaml(Path(path)), parse_set(overrides))
    kept = {k: v for k, v in flatten(data).items()
            if not any(k.startswith(p) for p in RESUMABLE_CHANGES)}
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# fine-tuning keys that may change between a fine-tuning state file and its resumption (the
# budget and logging); every other `finetune.` key names a separate fine-tuning run
FINETUNE_RESUMABLE = ("finetune.steps", "finetune.epochs", "finetune.log_every",
                      "finetune.ckpt_every", "finetune.eval_every")


def finetune_run_name(cfg: Config) -> str:
    """``finetune-<digest>``: one fine-tuning run folder per setting of the ``finetune``
    section (budget and logging keys left out, so a longer budget resumes the same folder)."""
    section = {k: v for k, v in to_dict(cfg)["finetune"].items()
               if f"finetune.{k}" not in FINETUNE_RESUMABLE}
    text = json.dumps(section, sort_keys=True, default=str)
    return "finetune-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def yaml_error(path: str | Path, exc: yaml.YAMLError) -> str:
    """A YAML syntax error as one line: ``FILE line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{path}{where}: invalid YAML: {detail}"


def deep_update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def dump(cfg: Config | dict, path: str | Path) -> None:
    """Write a config (or its ``to_dict`` form) as YAML, atomically."""
    from unite.atomic import atomic_write

    data = cfg if isinstance(cfg, dict) else to_dict(cfg)
    with atomic_write(path, "w") as fh:
        fh.write(yaml.safe_dump(data, sort_keys=False))
