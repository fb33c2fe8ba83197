"""``python -m unite analyze {alignment,entropy,trajectory,curves}``: the paper's Sec. 4 analyses.

Each sub-command writes one JSON file (``kind`` = the sub-command) and, with ``--png``, a
figure (records: :mod:`unite.artifacts`). Checkpoints are read with
``unite.checkpoint.load_for_inference`` (EMA weights unless ``--no-ema`` or the run's
``sample.use_ema: false``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unite.cliargs import add_device
from unite.errors import UserError

DEFAULT_TRAJECTORY_T = [0.1, 0.3, 0.5, 0.7, 0.9]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")

    def model_args(p, *, data: bool):
        p.add_argument("--ckpt", required=True, help="checkpoint (RUN/checkpoints/last.pt)")
        p.add_argument("--out", required=True, help="output JSON")
        p.add_argument("--png", help="output figure (PNG)")
        p.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
        p.add_argument("--seed", type=int, default=0)
        if data:
            p.add_argument("--split", default="val", choices=("train", "val", "test"))
            p.add_argument("--limit", type=int, default=64, help="number of inputs (default 64)")
            p.add_argument("--batch-size", type=int, default=16)
            add_device(p)

    p = sub.add_parser("alignment", help="CKA/CKNNA/cosine between tokenization and denoising "
                       "activations, per layer (Fig. 6)")
    model_args(p, data=True)
    p.add_argument("--t", type=float, nargs="+", default=[0.5],
                   help="noise level(s) of the denoising pass (1 = clean; default 0.5)")
    p.add_argument("--knn-rows", type=int, default=1024,
                   help="rows (registers) used for the n x n CKNNA / mutual-kNN kernels")
    p.add_argument("--knn-k", type=int, default=10, help="neighbours for CKNNA / mutual kNN")

    p = sub.add_parser("entropy", help="per-tensor histogram entropy (MB) of trained vs "
                       "freshly initialised weights, by parameter category")
    model_args(p, data=False)
    p.add_argument("--bins", type=int, default=256,
                   help="equal-width bins over each tensor's [min, max] (default 256)")

    p = sub.add_parser("trajectory", help="decode one-step x-predictions at several noise "
                       "levels; PSNR to the input (Fig. 7)")
    model_args(p, data=True)
    p.add_argument("--t", type=float, nargs="+", default=DEFAULT_TRAJECTORY_T,
                   help="noise levels (1 = clean; default 0.1 0.3 0.5 0.7 0.9)")
    p.add_argument("--show", type=int, default=8, help="inputs (rows) in the PNG strip")

    p = sub.add_parser("curves", help="recon/flow losses and validation metrics vs step (Fig. 4)")
    p.add_argument("--metrics", required=True, help="RUN/metrics.jsonl")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--png", help="output figure (PNG)")
    p.add_argument("--smooth", type=float, default=0.0,
                   help="EMA smoothing factor in [0, 1) for the plotted lines (default 0)")


def run(args: argparse.Namespace) -> None:
    {
        "alignment": run_alignment,
        "entropy": run_entropy,
        "trajectory": run_trajectory,
        "curves": run_curves,
    }[args.analysis](args)


# -- helpers --------------------------------------------------------------------------------
def _load(args):
    """-> (model, cfg, meta); ``args.use_ema`` records whether the EMA weights were used."""
    import torch

    from unite.checkpoint import load_for_inference, resolve_device

    device = resolve_device(getattr(args, "device", "cpu"))
    try:
        device = torch.device(device)
        model, cfg, meta, args.use_ema = load_for_inference(args.ckpt, args.no_ema, device)
    except RuntimeError as exc:  # e.g. an unknown or unavailable --device
        raise UserError(f"cannot load {args.ckpt} on device {device!s}: {exc}") from None
    if hasattr(args, "device"):
        args.device = device
    return model, cfg, meta


def _describe(cfg, model, meta) -> str:
    sharing = "shared weights" if model.shared else "separate encoder/denoiser"
    sg = "stop-gradient" if cfg.train.stop_gradient else "no stop-gradient"
    return f"{cfg.name} ({cfg.model.size}, {sharing}, {sg}, step {meta.get('step', 0)})"


def _common_flags(meta, num_inputs: int | None = None, min_inputs: int = 32) -> list[str]:
    flags = []
    if int(meta.get("step", 0)) == 0:
        flags.append("checkpoint at step 0: an untrained model")
    if num_inputs is not None and num_inputs < min_inputs:
        flags.append(f"only {num_inputs} inputs (< {min_inputs}): noisy estimate")
    return flags


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="input", file=sys.stderr, leave=False)


def _check_batch(args) -> None:
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be > 0, got {args.batch_size}")


def _done(args, what: str) -> None:
    extra = f" and {args.png}" if getattr(args, "png", None) else ""
    print(f"{what}: wrote {args.out}{extra}")


# -- sub-commands ---------------------------------------------------------------------------
def run_alignment(args) -> None:
    from unite import artifacts
    from unite.analysis import check_times, scale_of, validation_batches
    from unite.analysis.alignment import plot_alignment, summarize, tokenization_denoising_alignment

    ts = check_times(args.t)
    _check_batch(args)
    if args.knn_rows < 3 or args.knn_k < 1:
        raise UserError("--knn-rows must be >= 3 and --knn-k >= 1")
    model, cfg, meta = _load(args)
    batches = validation_batches(cfg, args.split, args.limit, args.batch_size)
    with _progress(args.limit, "alignment") as bar:
        result = tokenization_denoising_alignment(
            model, batches, ts, seed=args.seed, knn_rows=args.knn_rows, knn_k=args.knn_k,
            rows_per_input=-(-args.knn_rows // args.limit),  # spread the kNN rows over inputs
            device=args.device, progress=bar,
        )
    metrics = {**result, "summary": summarize(result)}
    flags = _common_flags(meta, result["num_inputs"])
    scale = scale_of(cfg, meta, num_samples=result["num_inputs"], split=args.split,
                     use_ema=args.use_ema)
    record = artifacts.result(experiment=cfg.name, kind="alignment", metrics=metrics, scale=scale, flags=flags)
    artifacts.write_result(args.out, record)
    if args.png:
        plot_alignment(result, f"tokenization vs denoising alignment: {_describe(cfg, model, meta)}",
                       args.png)
    _done(args, "alignment")


def run_entropy(args) -> None:
    import torch

    from unite import artifacts
    from unite.analysis import scale_of
    from unite.analysis.entropy import gaussian_reference, plot_entropy, weight_entropy
    from unite.models import build_model

    if args.bins < 2:
        raise UserError(f"--bins must be >= 2, got {args.bins}")
    model, cfg, meta = _load(args)
    trained = weight_entropy(model, args.bins)
    torch.manual_seed(args.seed)
    fresh = weight_entropy(build_model(cfg), args.bins)
    gaussian = gaussian_reference(model, args.bins, args.seed)
    constant = [t["name"] for t in fresh["tensors"] if t["bits_per_param"] == 0.0]
    flags = _common_flags(meta)
    flags.append(f"bin rule: {args.bins} equal-width bins over each tensor's [min, max]; "
                 "absolute MB depend on it (the paper does not state its rule)")
    if constant:
        flags.append(f"random-init reference: {len(constant)} tensor(s) are constant at "
                     "initialisation (adaLN-Zero modulation, zero biases, unit norm scales) "
                     "and cost 0 bits; 'random_gaussian' (every tensor i.i.d. N(0,1)) is the "
                     "structure-free reference")
    by_name = {t["name"]: t for t in fresh["tensors"]}
    tensors = [
        {**{k: t[k] for k in ("name", "group", "category", "numel")},
         "bits_per_param_trained": t["bits_per_param"],
         "bits_per_param_random_init": by_name[t["name"]]["bits_per_param"]}
        for t in trained["tensors"]
    ]
    metrics = {
        "bins": args.bins,
        "bin_rule": "equal-width histogram over each tensor's [min, max]; "
                    "MB = entropy_bits * numel / 8 / 1e6",
        "weight_sharing": bool(model.shared),
        "trained": trained["groups"],
        "random_init": fresh["groups"],
        "random_gaussian": gaussian["groups"],
        "tensors": tensors,
    }
    scale = scale_of(cfg, meta, use_ema=args.use_ema,
                     num_params=sum(p.numel() for p in model.parameters()))
    record = artifacts.result(experiment=cfg.name, kind="entropy", metrics=metrics, scale=scale, flags=flags)
    artifacts.write_result(args.out, record)
    if args.png:
        plot_entropy({"random init": fresh, "i.i.d. Gaussian": gaussian, "trained": trained},
                     f"weight entropy ({args.bins} bins): "
                     f"{_describe(cfg, model, meta)}", args.png)
    _done(args, "entropy")


def run_trajectory(args) -> None:
    from unite import artifacts
    from unite.analysis import check_times, scale_of, validation_batches
    from unite.analysis.trajectory import denoising_trajectory, plot_strip
    from unite.modality import is_image

    ts = check_times(args.t)
    _check_batch(args)
    if args.show < 1:
        raise UserError(f"--show must be >= 1, got {args.show}")
    model, cfg, meta = _load(args)
    batches = validation_batches(cfg, args.split, args.limit, args.batch_size)
    with _progress(args.limit, "trajectory") as bar:
        result = denoising_trajectory(model, cfg, batches, ts, seed=args.seed, keep=args.show,
                                      device=args.device, progress=bar)
    strip = result.pop("strip", None)
    flags = _common_flags(meta, result["num_inputs"])
    if not is_image(cfg):
        flags.append("atom model: latent MSE only (no pixels, no PSNR, no figure)")
    scale = scale_of(cfg, meta, num_samples=result["num_inputs"], split=args.split,
                     use_ema=args.use_ema)
    record = artifacts.result(experiment=cfg.name, kind="trajectory", metrics=result, scale=scale, flags=flags)
    artifacts.write_result(args.out, record)
    if args.png and strip is not None:
        plot_strip({**result, "strip": strip}, _describe(cfg, model, meta), args.png)
    elif args.png:
        print(f"trajectory: {cfg.data.kind} has no images: no figure written to {args.png}")
        args.png = None
    _done(args, "trajectory")


def run_curves(args) -> None:
    import yaml

    from unite import artifacts
    from unite.analysis.curves import plot_curves, read_metrics, series, summarize

    if not 0.0 <= args.smooth < 1.0:
        raise UserError(f"--smooth must lie in [0, 1), got {args.smooth}")
    records, flags = read_metrics(args.metrics)
    curves = series(records)
    run_dir = Path(args.metrics).resolve().parent
    # the run folder as given (relative in the workflow): a results file must not depend on
    # where the clone sits, or two identical runs would differ (`python -m unite compare`)
    name, scale = run_dir.name, {"run": str(Path(args.metrics).parent)}
    cfg_file = run_dir / "config.yaml"
    if cfg_file.is_file():  # informative only: never fail a plot on the run's config
        try:
            raw = yaml.safe_load(cfg_file.read_text()) or {}
            name = raw.get("name", name)
            scale["dataset"] = (raw.get("data") or {}).get("kind")
            scale["model_size"] = (raw.get("model") or {}).get("size")
        except (yaml.YAMLError, AttributeError):
            flags.append(f"{cfg_file} could not be read")
    steps = list(records)
    scale.update(train_steps=steps[-1], num_records=len(records))
    for field in ("recon", "flow"):
        if field not in curves:
            flags.append(f"no '{field}' values in the log")
    metrics = {"fields": sorted(curves), "final": summarize(curves)}
    record = artifacts.result(experiment=name, kind="curves", metrics=metrics, scale=scale, flags=flags)
    artifacts.write_result(args.out, record)
    if args.png:
        plot_curves(curves, f"training dynamics: {name}", args.png, smooth=args.smooth)
    _done(args, "curves")
