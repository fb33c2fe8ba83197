"""Each default that follows the released code, measured against the setting it replaced, on
the embedded digits config: short training runs, one seed, one at a time.

    python bench/digits_defaults.py --out /tmp/digits_defaults [--steps 600] [--only NAME ...]

Every variant starts from ``OLD`` (the settings before the switch, pinned explicitly so that the
script keeps measuring the same thing after the config files change) and changes one group of
keys; ``code`` changes all of them at once; the ``collapse-*`` variants switch the delayed
flow-loss start off (``train.flow_start=0``), the setting in which the tiny shared GE collapses
every latent to one constant.

Per variant: wall time of the training command (the machine may be shared: say so when quoting
it), EMA validation PSNR at each evaluation, the spread of the latent across validation images
(std over images, averaged over latent entries; ~0 means collapsed) and, unless ``--no-fid``,
digits FID / IS / class accuracy of ``--samples-per-class`` x 10 class-balanced samples
(Heun 25 steps, w = 1) against the training split, with the digits classifier as the feature
network (trained once under ``OUT/reference``). Prints one JSON object per variant and writes
``OUT/summary.json`` and ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "experiments" / "digits.yaml"

# the digits settings before the switch to the released code's defaults
OLD = [
    "model.time_embed=sinusoid",
    "train.adam_eps=1e-8",
    "train.recon_noise.mode=gaussian",
    "train.recon_noise.sigma=0.7",
    "train.flow_loss=x",
    "train.lr_hold_steps=0",
    "train.lr_decay_steps=0",
    "train.min_lr=1e-5",
]
FOURIER = ["model.time_embed=fourier"]
INTERP = ["train.recon_noise.mode=interp", "train.recon_noise.s_min=0.7",
          "train.recon_noise.fraction=0.5"]
VELOCITY = ["train.flow_loss=velocity"]
EPS = ["train.adam_eps=1e-6"]
# the code's LR shape (warm-up 20 : hold 10 : cosine 20 epochs to half the peak, then flat),
# in proportion to the digits warm-up of 50 steps; the batch/384 factor is 1 at batch 64
LR_CODE = ["train.lr_hold_steps=25", "train.lr_decay_steps=50", "train.min_lr=5e-4"]
NO_DELAY = ["train.flow_start=0", "train.flow_ramp=0"]

VARIANTS: dict[str, list[str]] = {
    "old": OLD,
    "fourier": OLD + FOURIER,
    "interp": OLD + INTERP,
    "velocity": OLD + VELOCITY,
    "adam-eps-1e-6": OLD + EPS,
    "lr-code-shape": OLD + LR_CODE,
    "code": OLD + FOURIER + INTERP + VELOCITY + EPS,
    # what digits.yaml runs now: the library's new defaults, its own noise / loss / LR
    "library-defaults": OLD + FOURIER + EPS,
    "collapse-old": OLD + NO_DELAY,
    "collapse-fourier": OLD + FOURIER + NO_DELAY,
    "collapse-code": OLD + FOURIER + INTERP + VELOCITY + EPS + NO_DELAY,
}


def unite(*args: str) -> float:
    """Run ``python -m unite ARGS``; -> wall seconds. Output goes to the caller's terminal."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unite", *map(str, args)], cwd=ROOT, check=True)
    return time.perf_counter() - start


def eval_lines(run: Path) -> list[dict]:
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if s.strip()]
    return [ln for ln in lines if ln.get("kind") == "eval"]


@torch.no_grad()
def latent_spread(ckpt: Path) -> float:
    """Std of z0 across the validation images, averaged over registers and dims."""
    from unite.checkpoint import load_model
    from unite.data import build_dataset

    model, cfg, _ = load_model(ckpt)
    val = build_dataset(cfg, "val")
    x = torch.stack([val[i][0] for i in range(len(val))])
    torch.manual_seed(0)
    z = model.encode(x)
    return float(z.std(dim=0).mean())


def reference(out: Path) -> tuple[Path, Path]:
    ref = out / "reference"
    clf, stats = ref / "classifier.pt", ref / "stats.npz"
    if not clf.exists():
        unite("evaluate", "digits-classifier", "--config", CONFIG, "--out", clf, "--quiet")
    if not stats.exists():
        unite("evaluate", "ref-stats", "--config", CONFIG, "--features", "digits",
              "--weights", clf, "--out", stats, "--quiet")
    return clf, stats


def measure(name: str, overrides: list[str], args, ref) -> dict:
    run = args.out / name
    steps = args.collapse_steps if name.startswith("collapse") else args.steps
    sets = overrides + [f"train.steps={steps}", f"train.eval_every={args.eval_every}",
                        f"train.ckpt_every={steps}", f"train.seed={args.seed}"]
    train_s = unite("train", "--config", CONFIG, "--out", run,
                    *[a for s in sets for a in ("--set", s)])
    ckpt = run / "checkpoints" / "last.pt"
    row = {
        "variant": name,
        "steps": steps,
        "seed": args.seed,
        "overrides": [s for s in overrides if s not in OLD or name == "old"],
        "train_wall_s": round(train_s, 1),
        "val_psnr_ema": {int(e["step"]): round(e["val_psnr"], 2) for e in eval_lines(run)},
        "latent_std": round(latent_spread(ckpt), 4),
    }
    if ref is not None:
        clf, stats = ref
        samples, result = run / "samples.npz", run / "gen.json"
        unite("sample", "--ckpt", ckpt, "--out", samples, "--per-class", args.samples_per_class,
              "--solver", "heun", "--steps", 25, "--cfg", 1.0)
        unite("evaluate", "images", "--samples", samples, "--ref", stats, "--weights", clf,
              "--out", result, "--quiet")
        m = json.loads(result.read_text())["metrics"]
        row |= {"fid_digits": round(m["fid_digits"], 2), "is_digits": round(m["is_digits"], 2),
                "class_accuracy": round(m["class_accuracy_digits"], 3),
                "num_samples": 10 * args.samples_per_class}
    return row


def write_summary(rows: list[dict], out: Path) -> None:
    (out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    head = ["variant", "steps", "EMA val PSNR (dB) by step", "latent std", "digits FID",
            "class acc.", "train wall s"]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        psnr = ", ".join(f"{v} @{k}" for k, v in r["val_psnr_ema"].items())
        md.append(f"| {r['variant']} | {r['steps']} | {psnr} | {r['latent_std']} | "
                  f"{r.get('fid_digits', '-')} | {r.get('class_accuracy', '-')} | "
                  f"{r['train_wall_s']} |")
    (out / "summary.md").write_text("\n".join(md) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--collapse-steps", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples-per-class", type=int, default=20)
    p.add_argument("--no-fid", action="store_true")
    p.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ref = None if args.no_fid else reference(args.out)
    summary = args.out / "summary.json"
    rows = json.loads(summary.read_text()) if summary.exists() else []
    for name in args.only:
        rows = [r for r in rows if r["variant"] != name]
        row = measure(name, VARIANTS[name], args, ref)
        print(json.dumps(row), flush=True)
        rows.append(row)
        write_summary(rows, args.out)


if __name__ == "__main__":
    main()
