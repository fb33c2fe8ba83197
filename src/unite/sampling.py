"""Generation: the probability-flow ODE from noise (t = 0) to data (t = 1), REFERENCE section 3.

Velocity from the GE's x-prediction: ``v = (z0_hat - z_t) / max(1 - t, velocity_clamp)``.
Solvers:
  * ``euler``: fixed steps on the shifted grid, S steps = S function evaluations (NFE).
  * ``heun``: fixed-step 2nd order (predictor-corrector on every step, the last one included),
    S steps = exactly 2S NFE (the paper: "exactly 100 NFEs for Heun with 50 steps").
  * ``dopri5``: adaptive Dormand-Prince (torchdiffeq) on t in [0, 1] with ``sample.atol/rtol``;
    NFE is counted by the ODE function itself (the paper reports ~108 for UNITE-B).
The fixed-step grid is a uniform grid pushed through the training shift
``t = a*s / (1 + (a - 1)*s)`` with a = ``train.time_shift`` (a < 1: denser near noise).

Classifier-free guidance acts on the x-prediction, ``uncond + w*(cond - uncond)``, only for t
strictly inside the guidance interval (lo, hi) (``--interval``, default ``sample.interval`` =
[0.1, 1.0], the paper's interval), as the released code does: no guidance at t = hi (so not at
the final t = 1.0 evaluation of Heun or dopri5) nor at t = lo, except that lo = 0 includes t = 0.
Outside it, or when w == 1, only the conditional pass runs. Conditional and
unconditional passes of a guided evaluation run as one doubled batch. Two counts are reported
per sample: ``nfe`` = ODE function evaluations, ``network_passes`` = GE evaluations (a guided
evaluation costs 2, an unguided one 1).

Noise and shards: the starting noise of the sample at position i of the run's label list comes
from its own generator seeded by ``SeedSequence((seed, i))``. A sample's noise therefore depends
only on (seed, i): shard k (a contiguous slice of the label list) draws noise no other shard
draws, and gathering all shards gives the unsharded run's labels and noise exactly (fixed-step
solvers then give the same samples up to batch-size-dependent float rounding; dopri5 picks its
steps per batch, so its samples depend slightly on batch composition).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

import numpy as np
import torch

from unite.acceleration import inference_autocast_for, inference_uses_bf16
from unite.artifacts import checkpoint_meta, write_sample_file
from unite.checkpoint import load_for_inference, resolve_device
from unite.cliargs import add_device
from unite.config import Config
from unite.errors import UserError
from unite.flow import shift_time, velocity

SOLVERS = ("euler", "heun", "dopri5")


# -- labels, shards, noise ------------------------------------------------------------------
def class_balanced_labels(num_classes: int, per_class: int) -> np.ndarray:
    """``per_class`` copies of each class, in class order: [0,0,..,1,1,..,C-1]."""
    return np.repeat(np.arange(num_classes, dtype=np.int64), per_class)


def random_labels(num_classes: int, n: int, seed: int) -> np.ndarray:
    """Uniform random labels (Table 4 'random' row); one list per seed, shared by all shards."""
    return np.random.default_rng([seed, 0x1ABE1]).integers(0, num_classes, size=n, dtype=np.int64)


def label_list(
    num_classes: int,
    *,
    per_class: int,
    num_samples: int | None = None,
    random: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """The whole run's labels and their mode (balanced | random | unconditional)."""
    if num_classes == 1:
        n = num_samples if num_samples is not None else per_class
        return np.zeros(n, dtype=np.int64), "unconditional"
    if random:
        n = num_samples if num_samples is not None else per_class * num_classes
        return random_labels(num_classes, n, seed), "random"
    if num_samples is not None:
        if num_samples % num_classes:
            raise UserError(
                f"--num-samples {num_samples} is not a multiple of the {num_classes} classes; "
                "use --per-class for class-balanced sampling or add --random-labels"
            )
        per_class = num_samples // num_classes
    return class_balanced_labels(num_classes, per_class), "balanced"


def shard_range(total: int, shard: int, num_shards: int) -> tuple[int, int]:
    """Contiguous [start, stop) of shard ``shard``; sizes differ by at most one."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise UserError(f"--shard must lie in [0, --num-shards), got {shard} of {num_shards}")
    if num_shards > total:
        raise UserError(f"{num_shards} shards for only {total} samples: some would be empty")
    base, extra = divmod(total, num_shards)
    start = shard * base + min(shard, extra)
    return start, start + base + (1 if shard < extra else 0)


def initial_noise(indices: Sequence[int], shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """z ~ N(0, I) per sample, from a generator seeded by (seed, global sample index)."""
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    out = torch.empty(len(indices), *shape)
    gen = torch.Generator()
    for row, i in enumerate(indices):
        state = np.random.SeedSequence([seed, int(i)]).generate_state(2, dtype=np.uint32)
        gen.manual_seed(int(state[0]) << 32 | int(state[1]))
        out[row] = torch.randn(shape, generator=gen)
    return out


def time_grid(steps: int, shift: float, device=None) -> torch.Tensor:
    """steps + 1 times from 0 (noise) to 1 (clean): a uniform grid pushed through the shift."""
    s = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    t = shift_time(s, shift)
    t[0], t[-1] = 0.0, 1.0
    return t.to(device=device, dtype=torch.float32)


# -- the ODE right-hand side ----------------------------------------------------------------
class GuidedVelocity:
    """``f(t, z)`` of the probability-flow ODE for one batch, with CFG on the x-prediction.

    Counts ``nfe`` (calls) and ``network_passes`` (per-sample GE evaluations: 2 when guided).
    """

    def __init__(self, model, y: torch.Tensor, *, cfg_scale: float, interval, clamp: float,
                 autocast=contextlib.nullcontext):
        self.model = model
        self.y = y
        self.null = torch.full_like(y, model.num_classes)
        self.w = float(cfg_scale)
        self.lo, self.hi = float(interval[0]), float(interval[1])
        self.clamp = float(clamp)
        self.autocast = autocast
        self.nfe = 0
        self.network_passes = 0

    def guided_at(self, t: float) -> bool:
        """Open interval (lo, hi) as in the released code; lo = 0 also covers t = 0."""
        return self.w != 1.0 and t < self.hi and (self.lo == 0.0 or t > self.lo)

    def x_prediction(self, z: torch.Tensor, t: float) -> torch.Tensor:
        b = z.shape[0]
        tt = torch.full((b,), t, device=z.device, dtype=torch.float32)
        with self.autocast():
            if self.guided_at(t):
                both = self.model.denoise(torch.cat([z, z]), torch.cat([tt, tt]),
                                          torch.cat([self.y, self.null]))
                cond, uncond = both.float().chunk(2)
                self.network_passes += 2
                return uncond + self.w * (cond - uncond)
            self.network_passes += 1
            return self.model.denoise(z, tt, self.y).float()

    def __call__(self, t, z: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        t = float(t)
        z0_hat = self.x_prediction(z, t)
        tt = torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype)
        return velocity(z0_hat, z, tt, self.clamp)


def integrate(f, z: torch.Tensor, *, solver: str, steps: int, shift: float,
              atol: float = 1e-6, rtol: float = 1e-3) -> torch.Tensor:
    """Solve dz/dt = f(t, z) from t = 0 to t = 1; returns z at t = 1."""
    if solver == "dopri5":
        from torchdiffeq import odeint

        ts = torch.tensor([0.0, 1.0], device=z.device, dtype=z.dtype)
        return odeint(f, z, ts, method="dopri5", atol=atol, rtol=rtol)[-1]
    if solver not in ("euler", "heun"):
        raise UserError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    grid = time_grid(steps, shift).tolist()
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        k1 = f(t0, z)
        if solver == "euler":
            z = z + h * k1
        else:
            k2 = f(t1, z + h * k1)
            z = z + 0.5 * h * (k1 + k2)
    return z


# -- generation -----------------------------------------------------------------------------
def per_sample(total: float, n: int) -> int | float:
    """A per-sample average as an int when whole (fixed-step solvers), else 2 decimals."""
    mean = total / n
    return int(mean) if float(mean).is_integer() else round(mean, 2)


@torch.no_grad()
def generate_with_stats(
    model, cfg: Config, labels, *, solver: str, steps: int, cfg_scale: float, interval,
    seed: int, device="cpu", batch_size: int = 64, index_offset: int = 0, progress: bool = True,
    keep_latents: bool = False,
) -> tuple[dict[str, np.ndarray], dict]:
    """Like :func:`generate`, returning ``{"nfe": .., "network_passes": ..}`` per sample.

    ``index_offset``: position of ``labels[0]`` in the whole run's label list (shards).
    ``keep_latents``: also return the ODE's final latents (``"latents"``, float32), which
    ``unite decode`` can decode with another decoder (before/after decoder fine-tuning)."""
    from tqdm import tqdm

    from unite.modality import decoded_to_arrays

    if solver not in SOLVERS:
        raise UserError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) == 0:
        raise UserError("nothing to sample: the label list is empty")
    if labels.min() < 0 or labels.max() >= model.num_classes:
        raise UserError(f"labels must lie in [0, {model.num_classes}), got {labels.min()}..{labels.max()}")
    lo, hi = interval
    if not 0.0 <= lo <= hi <= 1.0:
        raise UserError(f"--interval expects 0 <= LO <= HI <= 1, got {lo} {hi}")
    device = torch.device(device)
    model = model.to(device).eval()
    shape = tuple(model.latent_shape)
    autocast = inference_autocast_for(cfg, device)
    parts: dict[str, list[np.ndarray]] = {}
    nfe_total = passes_total = 0.0
    starts = range(0, len(labels), batch_size)
    for start in tqdm(starts, desc=f"sample {solver}", unit="batch", disable=not progress):
        y_np = labels[start : start + batch_size]
        idx = range(index_offset + start, index_offset + start + len(y_np))
        z = initial_noise(idx, shape, seed).to(device)
        y = torch.from_numpy(y_np).to(device)
        f = GuidedVelocity(model, y, cfg_scale=cfg_scale, interval=(lo, hi),
                           clamp=cfg.train.velocity_clamp, autocast=autocast)
        z1 = integrate(f, z, solver=solver, steps=steps, shift=cfg.train.time_shift,
                       atol=cfg.sample.atol, rtol=cfg.sample.rtol)
        nfe_total += f.nfe * len(y_np)
        passes_total += f.network_passes * len(y_np)
        if keep_latents:
            parts.setdefault("latents", []).append(z1.float().cpu().numpy())
        with autocast():
            decoded = model.decode(z1)
        decoded = {k: v.float() for k, v in decoded.items()} if isinstance(decoded, dict) else decoded.float()
        for key, arr in decoded_to_arrays(cfg, decoded).items():
            parts.setdefault(key, []).append(arr)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    arrays["labels"] = labels.copy()
    n = len(labels)
    stats = {"nfe": per_sample(nfe_total, n), "network_passes": per_sample(passes_total, n)}
    return arrays, stats


def generate(model, cfg: Config, labels, *, solver: str, steps: int, cfg_scale: float, interval,
             seed: int, device="cpu", batch_size: int = 64) -> tuple[dict[str, np.ndarray], float]:
    """Sample one output per label -> (sample-file arrays incl. "labels", NFE per sample)."""
    arrays, stats = generate_with_stats(
        model, cfg, labels, solver=solver, steps=steps, cfg_scale=cfg_scale, interval=interval,
        seed=seed, device=device, batch_size=batch_size,
    )
    return arrays, stats["nfe"]


# -- CLI ------------------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint file (RUN/checkpoints/last.pt)")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--per-class", type=int, default=None, help="samples per class (default: sample.per_class)")
    p.add_argument("--num-samples", type=int, default=None,
                   help="total samples (unconditional data, or with --random-labels)")
    p.add_argument("--solver", choices=SOLVERS, default=None, help="default: sample.solver")
    p.add_argument("--steps", type=int, default=None, help="fixed-step solvers (default: sample.steps)")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale w (default: sample.cfg)")
    p.add_argument("--cfg-from", default=None, metavar="SWEEP_JSON",
                   help="use the best w of a cfg_sweep result (read when this command runs)")
    p.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="guidance interval in t (default: sample.interval)")
    p.add_argument("--atol", type=float, default=None, help="dopri5 (default: sample.atol)")
    p.add_argument("--rtol", type=float, default=None, help="dopri5 (default: sample.rtol)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--random-labels", action="store_true", help="uniform random class labels")
    p.add_argument("--grid", default=None, help="also write a PNG grid (rows = classes)")
    p.add_argument("--batch-size", type=int, default=None, help="default: sample.batch_size")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    add_device(p)
    p.add_argument("--save-latents", action="store_true",
                   help="also store the final latents (float32), so that `unite decode` can "
                   "decode the same samples with another checkpoint's decoder")


def _positive(name: str, value) -> None:
    if value is not None and value <= 0:
        raise UserError(f"{name} must be > 0, got {value}")


def run(args) -> None:
    from unite.guidance import choose
    from unite.modality import is_image

    for name in ("per_class", "num_samples", "steps", "batch_size", "atol", "rtol"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    if args.cfg_from and args.cfg is not None:  # before loading the model: fail fast
        raise UserError("give --cfg or --cfg-from, not both")
    device = resolve_device(args.device)
    model, cfg, ckpt_meta, use_ema = load_for_inference(args.ckpt, args.no_ema, device)
    if args.atol is not None:
        cfg.sample.atol = args.atol
    if args.rtol is not None:
        cfg.sample.rtol = args.rtol
    s = cfg.sample
    solver = args.solver or s.solver
    steps = args.steps or s.steps
    guidance = choose(args.cfg_from, args.cfg, s.cfg)
    w = guidance.w
    interval = list(args.interval) if args.interval is not None else list(s.interval)
    per_class = args.per_class or s.per_class
    batch_size = args.batch_size or s.batch_size

    labels, mode = label_list(model.num_classes, per_class=per_class, num_samples=args.num_samples,
                              random=args.random_labels, seed=args.seed)
    start, stop = shard_range(len(labels), args.shard, args.num_shards)
    arrays, stats = generate_with_stats(
        model, cfg, labels[start:stop], solver=solver, steps=steps, cfg_scale=w,
        interval=interval, seed=args.seed, device=device, batch_size=batch_size, index_offset=start,
        keep_latents=args.save_latents,
    )
    meta = checkpoint_meta(cfg, ckpt_meta, args.ckpt, use_ema) | {
        "kind": "samples",
        "solver": solver,
        "steps": None if solver == "dopri5" else steps,
        "atol": s.atol if solver == "dopri5" else None,
        "rtol": s.rtol if solver == "dopri5" else None,
        "nfe": stats["nfe"],
        "network_passes": stats["network_passes"],
        **guidance.meta(),
        "interval": interval,
        "precision": "bf16" if inference_uses_bf16(cfg, torch.device(device)) else "fp32",
        "time_shift": cfg.train.time_shift,
        "velocity_clamp": cfg.train.velocity_clamp,
        "seed": args.seed,
        "noise_seeding": "SeedSequence((seed, sample_index))",
        "label_mode": mode,
        "per_class": per_class if mode == "balanced" else None,
        "shard": args.shard,
        "num_shards": args.num_shards,
        "shard_start": start,
        "shard_stop": stop,
        "num_samples": stop - start,
        "total_samples": len(labels),
    }
    if args.save_latents:
        from unite.decode import ge_digest

        meta["ge_digest"] = ge_digest(model)  # which GE made the latents (checked by decode)
    write_sample_file(args.out, arrays, meta)
    if args.grid:
        if not is_image(cfg):
            raise UserError("--grid draws images; this checkpoint generates atoms")
        from unite.plots import sample_grid

        sample_grid(arrays["images"], arrays["labels"], args.grid)
    print(json.dumps({"out": str(args.out), "num_samples": stop - start, "solver": solver,
                      "nfe": stats["nfe"], "network_passes": stats["network_passes"],
                      "cfg": w, "interval": interval, "shard": args.shard}))

