"""``python -m unite evaluate <what>``: metric commands, each writing one JSON result file.

images         gFID / IS (digits: + class accuracy) of a sample file against reference stats
ref-stats      feature mean/covariance of a training split, computed once and cached
recon-images   rFID (reconstructions vs originals), PSNR, L1, LPIPS of a reconstruction file
digits-classifier   train the CNN that stands in for Inception on the digits default
cfg-sweep      guidance-scale sweep on a checkpoint (FID per w, best w)
random-inception    InceptionV3 with random weights (offline smoke runs only; meaningless values)
molecules / crystals   delegated to unite.metrics.molecules / unite.metrics.crystals
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from unite import kinds
from unite.artifacts import write_result
from unite.cliargs import add_device, add_set
from unite.errors import UserError

DELEGATED = {
    "molecules": ("unite.metrics.molecules", "QM9 metrics: reconstruction match/RMSD or validity/uniqueness"),
    "crystals": ("unite.metrics.crystals", "MP-20 metrics: match rate/RMSE or validity"),
}


# ----------------------------------------------------------------------------- arguments


def _features(p: argparse.ArgumentParser, default_help: str) -> None:
    p.add_argument("--features", choices=("inception", "digits"), default=None,
                   help=f"feature network ({default_help})")
    p.add_argument("--weights", default=None,
                   help="feature network weights: InceptionV3 .pth (inception-v3-compat) or the "
                        "digits classifier file (default: the file recorded in --ref)")


def _runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=64, help="feature-extraction batch size")
    add_device(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint (RUN/checkpoints/last.pt)")
    p.add_argument("--ref", required=True, help="reference statistics (.npz from ref-stats)")
    p.add_argument("--out", required=True, help="output JSON")
    _features(p, "default: the one recorded in --ref")
    p.add_argument("--per-class", type=int, default=None,
                   help="class-balanced samples per class (default: sample.per_class)")
    p.add_argument("--num-samples", type=int, default=None,
                   help="total samples (a multiple of the classes unless --random-labels)")
    p.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="guidance interval (default: sample.interval; the paper: 0.1 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-batch-size", type=int, default=None, help="default: sample.batch_size")
    p.add_argument("--no-ema", action="store_true", help="raw weights instead of the EMA")
    p.add_argument("--isc-splits", type=int, default=10)
    _runtime(p)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")

    p = sub.add_parser("images", help="gFID / IS of a sample file")
    p.add_argument("--samples", required=True, help="sample .npz (images, labels, meta)")
    p.add_argument("--ref", required=True,
                   help="reference statistics: an .npz from ref-stats (UNITE protocol) or ADM's "
                        "reference batch, e.g. VIRTUAL_imagenet256_labeled.npz (ADM protocol: "
                        "metrics named fid_adm, is_adm, ...)")
    p.add_argument("--precision-recall", action="store_true",
                   help="ADM protocol: also precision/recall (k=3) against the batch's images")
    p.add_argument("--out", required=True, help="output JSON")
    _features(p, "default: the one recorded in --ref")
    p.add_argument("--expect-samples", type=int, default=None,
                   help="configured sample count; fewer is flagged (default: the file's total_samples)")
    p.add_argument("--isc-splits", type=int, default=10)
    _runtime(p)

    p = sub.add_parser("ref-stats", help="reference feature statistics of a split (cached)")
    p.add_argument("--config", default=None, help="experiment YAML (default: the digits default)")
    add_set(p, "data.root=results/data/digits.npz")
    p.add_argument("--out", required=True, help="output .npz")
    _features(p, "default: digits for the digits dataset, else inception")
    p.add_argument("--fid-layer", default=None,
                   help="FID feature layer other than the network's default (Inception: 64, 192, "
                        "768; results are then named e.g. fid_768); evaluations follow the file")
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, default=0, help="first N images only (0 = all; flagged)")
    p.add_argument("--num-workers", type=int, default=None, help="0 = decode images in the main process, else torch-fidelity's loader "
                        "workers (it uses up to 4; default: data.num_workers)")
    p.add_argument("--force", action="store_true", help="recompute even if the cached file matches")
    _runtime(p)

    p = sub.add_parser("recon-images", help="rFID, PSNR, L1, LPIPS of a reconstruction file")
    p.add_argument("--recon", required=True, help="reconstruction .npz (originals, reconstructions)")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--ref", default=None,
                   help="reference statistics: its feature network is used, and FID of the "
                        "reconstructions against it is reported too")
    _features(p, "default: the one recorded in --ref, else inception")
    p.add_argument("--lpips-random", action="store_true",
                   help="LPIPS with a random VGG trunk when the ImageNet VGG weights are missing "
                        "(reported as lpips_random_backbone, not comparable)")
    _runtime(p)

    p = sub.add_parser("digits-classifier", help="train the digits feature network (cached)")
    p.add_argument("--config", default=None, help="digits YAML (default: the built-in defaults)")
    add_set(p, "data.root=results/data/digits.npz")
    p.add_argument("--out", required=True, help="output classifier file (.pt)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain even if --out exists")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("cfg-sweep", help="FID per guidance scale, best scale")
    _sampling(p)
    p.add_argument("--scales", type=float, nargs="+", default=None,
                   help="guidance scales in sweep order (default: 1.0 1.2 ... 4.0)")
    p.add_argument("--solver", choices=("euler", "heun", "dopri5"), default=None,
                   help="default: sample.solver")
    p.add_argument("--steps", type=int, default=None, help="fixed-step solvers (default: sample.steps)")
    p.add_argument("--random-labels", action="store_true", help="uniform random classes")
    p.add_argument("--patience", type=int, default=2,
                   help="stop after this many scales in a row without a better FID (0 = full sweep)")

    p = sub.add_parser("random-inception", help="InceptionV3 weights file with random weights (smoke runs)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)

    for name, (module_name, help_text) in DELEGATED.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # missing module or missing chemistry extras
            p.set_defaults(_unavailable=f"{module_name} cannot be imported ({exc})")
            p.add_argument("rest", nargs=argparse.REMAINDER)
            continue
        module.add_arguments(p)


# ----------------------------------------------------------------------------- helpers


def _load_config(path, overrides):
    from unite import config

    return config.load(path, overrides)


def _positive(args, *names) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be > 0, got {value}")


def _read_images(path: str, fields: tuple[str, ...], ref_meta: dict, ref_path) -> tuple[dict, dict]:
    """The image arrays of a sample/recon file, checked against the reference statistics."""
    from unite.artifacts import read_npz
    from unite.metrics import inputs

    arrays, meta = read_npz(path, "file")
    inputs.require(arrays, fields, path)
    for key in fields:
        inputs.check_images(arrays[key], path, key, image_size=ref_meta.get("image_size"),
                            ref_path=ref_path)
    if "labels" in arrays and "images" in fields:
        inputs.check_labels(arrays["labels"], len(arrays["images"]), path)
    return arrays, meta


def _ref(args):
    from unite.metrics import reference as rs

    stats, ref_meta = rs.load_ref_stats(args.ref)
    spec = rs.spec_for_ref(ref_meta, args.features, args.weights, args.ref)
    return stats, ref_meta, spec


def _report(out, obj) -> None:
    write_result(out, obj)
    print(json.dumps({"out": str(out), **{k: v for k, v in obj["metrics"].items()
                                          if not isinstance(v, (list, dict))}}))


# ----------------------------------------------------------------------------- commands


def run_images(args) -> None:
    from unite.metrics import images as im
    from unite.metrics import reference as rs

    _positive(args, "batch_size", "isc_splits", "expect_samples")
    stats, ref_meta, spec = _ref(args)
    arrays, meta = _read_images(args.samples, ("images",), ref_meta, args.ref)
    ref_images = None
    if args.precision_recall:
        from unite.metrics import adm_reference

        if rs.reference_protocol(ref_meta) != adm_reference.FORMAT:
            raise UserError("--precision-recall needs an ADM reference batch (its arr_0 images) "
                            f"as --ref; {args.ref} holds statistics only")
        ref_images = adm_reference.read_images(args.ref)
    obj = im.samples_result(
        arrays["images"], arrays.get("labels"), meta, stats, ref_meta, spec,
        expect_samples=args.expect_samples, isc_splits=args.isc_splits,
        batch_size=args.batch_size, device=args.device, verbose=not args.quiet,
        source=str(args.samples), ref_path=args.ref, samples_path=args.samples,
        ref_images=ref_images,
    )
    obj["scale"]["samples_file"] = str(args.samples)
    _report(args.out, obj)


def run_ref_stats(args) -> None:
    from unite.metrics import features as ft
    from unite.metrics import reference as rs

    _positive(args, "batch_size")
    cfg = _load_config(args.config, args.set)
    kind = args.features or kinds.get(cfg.data.kind).features or ft.INCEPTION
    spec = ft.feature_spec(kind, args.weights, args.fid_layer)
    workers = cfg.data.num_workers if args.num_workers is None else args.num_workers
    meta, reused = rs.reference_stats(
        cfg, args.out, spec, split=args.split, limit=args.limit, batch_size=args.batch_size,
        num_workers=workers, device=args.device, force=args.force, verbose=not args.quiet,
    )
    print(json.dumps({"out": str(args.out), "cached": reused, "features": spec.kind,
                      "num_images": meta["num_images"], "split": meta["split"]}))


def run_recon_images(args) -> None:
    from unite.metrics import features as ft
    from unite.metrics import images as im

    _positive(args, "batch_size")
    ref_stats, ref_meta = None, {}
    if args.ref:
        ref_stats, ref_meta, spec = _ref(args)
    else:
        spec = ft.feature_spec(args.features or "inception", args.weights)
    arrays, meta = _read_images(args.recon, ("originals", "reconstructions"), ref_meta, args.ref)
    obj = im.recon_result(
        arrays["originals"], arrays["reconstructions"], meta, spec, ref_stats=ref_stats,
        ref_meta=ref_meta, ref_path=args.ref, recon_path=args.recon,
        lpips_random=args.lpips_random, batch_size=args.batch_size, device=args.device,
        verbose=not args.quiet,
    )
    _report(args.out, obj)


def run_digits_classifier(args) -> None:
    from unite.metrics import digits_classifier as dc

    _positive(args, "epochs")
    out = Path(args.out)
    if out.is_file() and not args.force:
        _, info = dc.load_classifier(out)
        print(json.dumps({"out": str(out), "cached": True, **info}))
        return
    cfg = _load_config(args.config, args.set)
    info = dc.train_classifier(cfg, out, epochs=args.epochs, seed=args.seed, verbose=not args.quiet)
    print(json.dumps({"out": str(out), "cached": False, **info}))


def _model_and_metric_fn(args):
    """Checkpoint, reference and the metric function of cfg-sweep."""
    from unite.artifacts import checkpoint_meta
    from unite.checkpoint import load_for_inference, resolve_device
    from unite.metrics import images as im
    from unite.metrics import reference as rs

    stats, ref_meta, spec = _ref(args)
    device = resolve_device(args.device)
    model, cfg, ckpt_meta, use_ema = load_for_inference(args.ckpt, args.no_ema, device)
    size = ref_meta.get("image_size")
    if size and cfg.data.image_size != size:
        raise UserError(f"{args.ckpt} generates {cfg.data.image_size}x{cfg.data.image_size} images "
                        f"but the reference statistics {args.ref} were computed on {size}x{size}")

    def metric_fn(images, labels):
        return im.generation_metrics(
            images, labels, stats, spec, isc_splits=args.isc_splits,
            batch_size=args.batch_size, device=device, verbose=False,
        )

    scale = {**checkpoint_meta(cfg, ckpt_meta, args.ckpt, use_ema), **rs.ref_scale(ref_meta, spec)}
    return model, cfg, device, spec, stats, ref_meta, metric_fn, scale


def run_cfg_sweep(args) -> None:
    from unite.metrics import sweep
    from unite.sampling import label_list

    _positive(args, "per_class", "num_samples", "steps", "batch_size", "sample_batch_size", "isc_splits")
    if args.patience < 0:
        raise UserError(f"--patience must be >= 0, got {args.patience}")
    model, cfg, device, spec, stats, ref_meta, metric_fn, scale = _model_and_metric_fn(args)
    s = cfg.sample
    solver, steps = args.solver or s.solver, args.steps or s.steps
    interval = list(args.interval) if args.interval else list(s.interval)
    labels, mode = label_list(model.num_classes, per_class=args.per_class or s.per_class,
                              num_samples=args.num_samples, random=args.random_labels, seed=args.seed)
    scales = args.scales or list(sweep.PAPER_SCALES)
    sampler = sweep.checkpoint_sampler(model, cfg, interval=interval, seed=args.seed,
                                       batch_size=args.sample_batch_size or s.batch_size,
                                       device=device, steps=steps)
    metrics = sweep.cfg_sweep(
        lambda w: sampler(solver, labels, w), metric_fn, scales=scales,
        fid_key=spec.name("fid"), patience=args.patience, verbose=not args.quiet,
    )
    n = len(labels)
    scale |= {"solver": solver, "steps": None if solver == "dopri5" else steps, "interval": interval,
              "seed": args.seed, "label_mode": mode, "num_samples": n}
    _report(args.out, sweep.sweep_result(
        metrics, experiment=cfg.name, spec=spec, ref_stats=stats, ref_meta=ref_meta,
        ref_path=args.ref, scale=scale, scales=scales, num_samples=n,
    ))


def run_random_inception(args) -> None:
    from unite.metrics import features as ft

    path = ft.write_random_inception_weights(args.out, seed=args.seed)
    print(json.dumps({"out": str(path), "note": "random weights: for smoke runs only"}))


RUNNERS = {
    "images": run_images,
    "ref-stats": run_ref_stats,
    "recon-images": run_recon_images,
    "digits-classifier": run_digits_classifier,
    "cfg-sweep": run_cfg_sweep,
    "random-inception": run_random_inception,
}


def run(args) -> None:
    if args.what in DELEGATED:
        if getattr(args, "_unavailable", None):
            raise UserError(f"evaluate {args.what} is not available: {args._unavailable}")
        importlib.import_module(DELEGATED[args.what][0]).run(args)
        return
    RUNNERS[args.what](args)


if __name__ == "__main__":  # pragma: no cover
    from unite.cli import main

    main(["evaluate", *sys.argv[1:]])
