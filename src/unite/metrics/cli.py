"""``python -m unite evaluate <what>``: metric commands, each writing one JSON result file.

images         gFID / IS (digits: + class accuracy) of a sample file against reference stats
ref-stats      feature mean/covariance of a training split, computed once and cached
recon-images   rFID (reconstructions vs originals), PSNR, L1, LPIPS of a reconstruction file
digits-classifier   train the CNN that stands in for Inception on the digits default
cfg-sweep      guidance-scale sweep on a checkpoint (FID per w, best w)
protocol       Table 4 analogue: Heun-50 balanced, dopri5 balanced, dopri5 random
random-inception    InceptionV3 with random weights (offline smoke runs only; meaningless values)
molecules / crystals   delegated to unite.metrics.molecules / unite.metrics.crystals
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from unite.errors import UserError
from unite.metrics import result, write_result
from unite.provenance import missing_flag

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
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
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

    p = sub.add_parser("protocol", help="Table 4: solver x class sampling")
    p.add_argument("--rows", nargs="+", default=None, metavar="ROW=JSON",
                   help="assemble from gen_images results instead of sampling (rows: "
                        "heun50_balanced, dopri5_balanced, dopri5_random); --ckpt/--ref unused")
    p.add_argument("--ckpt", default=None, help="checkpoint (RUN/checkpoints/last.pt)")
    p.add_argument("--ref", default=None, help="reference statistics (.npz from ref-stats)")
    p.add_argument("--out", required=True, help="output JSON")
    _features(p, "default: the one recorded in --ref")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: sample.cfg)")
    p.add_argument("--cfg-from", default=None, help="a cfg_sweep result: use its best scale")
    p.add_argument("--per-class", type=int, default=None,
                   help="balanced rows: samples per class (default: sample.per_class); the random "
                        "row draws the same total")
    p.add_argument("--heun-steps", type=int, default=50)
    p.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"), default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-batch-size", type=int, default=None)
    p.add_argument("--no-ema", action="store_true")
    p.add_argument("--isc-splits", type=int, default=10)
    _runtime(p)

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
    from unite.metrics import inputs

    arrays, meta = inputs.read_npz(path, "file")
    inputs.require(arrays, fields, path)
    for key in fields:
        inputs.check_images(arrays[key], path, key, image_size=ref_meta.get("image_size"),
                            ref_path=ref_path)
    if "labels" in arrays and "images" in fields:
        inputs.check_labels(arrays["labels"], len(arrays["images"]), path)
    return arrays, meta


def _ref(args):
    from unite.metrics import images as im

    stats, ref_meta = im.load_ref_stats(args.ref)
    spec = im.spec_for_ref(ref_meta, args.features, args.weights, args.ref)
    return stats, ref_meta, spec


def _report(out, obj) -> None:
    write_result(out, obj)
    print(json.dumps({"out": str(out), **{k: v for k, v in obj["metrics"].items()
                                          if not isinstance(v, (list, dict))}}))


# ----------------------------------------------------------------------------- commands


def run_images(args) -> None:
    from unite.metrics import images as im

    _positive(args, "batch_size", "isc_splits", "expect_samples")
    stats, ref_meta, spec = _ref(args)
    arrays, meta = _read_images(args.samples, ("images",), ref_meta, args.ref)
    ref_images = None
    if args.precision_recall:
        from unite.metrics import adm_reference

        if im.reference_protocol(ref_meta) != adm_reference.FORMAT:
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
    from unite.metrics import images as im

    _positive(args, "batch_size")
    cfg = _load_config(args.config, args.set)
    kind = args.features or ("digits" if cfg.data.kind == "digits" else "inception")
    spec = im.feature_spec(kind, args.weights, args.fid_layer)
    workers = cfg.data.num_workers if args.num_workers is None else args.num_workers
    meta, reused = im.reference_stats(
        cfg, args.out, spec, split=args.split, limit=args.limit, batch_size=args.batch_size,
        num_workers=workers, device=args.device, force=args.force, verbose=not args.quiet,
    )
    print(json.dumps({"out": str(args.out), "cached": reused, "features": spec.kind,
                      "num_images": meta["num_images"], "split": meta["split"]}))


def run_recon_images(args) -> None:
    from unite.metrics import images as im

    _positive(args, "batch_size")
    ref_stats, ref_meta = None, {}
    if args.ref:
        ref_stats, ref_meta, spec = _ref(args)
    else:
        spec = im.feature_spec(args.features or "inception", args.weights)
    arrays, meta = _read_images(args.recon, ("originals", "reconstructions"), ref_meta, args.ref)
    metrics, flags = im.recon_metrics(
        arrays["originals"], arrays["reconstructions"], spec, ref_stats=ref_stats,
        lpips_random=args.lpips_random, batch_size=args.batch_size, device=args.device,
        verbose=not args.quiet,
    )
    n = len(arrays["originals"])
    flags += im.sample_count_flags(n, meta.get("split_size"), spec.dim, "rFID")
    if spec.kind == im.INCEPTION and n < im.PAPER_NUM_SAMPLES:
        flags.append(f"rFID on {n} images; the paper uses the {im.PAPER_NUM_SAMPLES} ImageNet val images")
    flags += im.ref_flags(ref_meta)
    meta = {k: v for k, v in meta.items() if k != "psnr"}  # the metrics hold PSNR
    scale = {**meta, **im.ref_scale(ref_meta, spec), "num_images": n, "recon_file": str(args.recon)}
    prov = im.image_provenance("recon_images", spec, args.ref, ref_meta, meta=meta,
                               samples_path=args.recon)
    obj = result(experiment=meta.get("experiment", "unknown"), kind="recon_images",
                 metrics=metrics, scale=scale, flags=flags + missing_flag(prov), provenance=prov)
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
    """Checkpoint, reference and the metric function shared by cfg-sweep and protocol."""
    from unite.metrics import images as im
    from unite.sampling import checkpoint_meta, default_device, load_for_inference

    stats, ref_meta, spec = _ref(args)
    device = args.device or default_device()
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

    scale = {**checkpoint_meta(cfg, ckpt_meta, args.ckpt, use_ema), **im.ref_scale(ref_meta, spec)}
    return model, cfg, device, spec, stats, ref_meta, metric_fn, scale


def run_cfg_sweep(args) -> None:
    from unite.metrics import images as im
    from unite.metrics import protocol as pr
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
    scales = args.scales or list(pr.PAPER_SCALES)
    sampler = pr.checkpoint_sampler(model, cfg, interval=interval, seed=args.seed,
                                    batch_size=args.sample_batch_size or s.batch_size,
                                    device=device, steps=steps)
    metrics = pr.cfg_sweep(
        lambda w: sampler(solver, labels, w), metric_fn, scales=scales,
        fid_key=spec.name("fid"), patience=args.patience, verbose=not args.quiet,
    )
    metrics["is_key"] = spec.name("is")
    n = len(labels)
    flags = im.sample_count_flags(n, None, len(stats["mu"]), "FID per scale")
    if spec.kind == im.INCEPTION and n < im.PAPER_NUM_SAMPLES:
        flags.append(f"sweep FIDs on {n} samples per scale (final numbers: sample 50K at best_cfg)")
    if metrics["early_stopped"]:
        flags.append(f"sweep stopped early after w={metrics['scales_evaluated'][-1]}: {metrics['stop_rule']}")
    flags += im.ref_flags(ref_meta)
    scale |= {"solver": solver, "steps": None if solver == "dopri5" else steps, "interval": interval,
              "seed": args.seed, "label_mode": mode, "num_samples": n}
    prov = im.image_provenance("cfg_sweep", spec, args.ref, ref_meta, meta=scale,
                               cfg_scales=scales)
    obj = result(experiment=cfg.name, kind="cfg_sweep", metrics=metrics, scale=scale,
                 flags=flags + missing_flag(prov), provenance=prov)
    _report(args.out, obj)


def run_protocol(args) -> None:
    from unite.guidance import choose
    from unite.metrics import images as im
    from unite.metrics import protocol as pr
    from unite.sampling import class_balanced_labels, random_labels

    if args.rows:
        return _assemble_protocol(args)
    if not (args.ckpt and args.ref):
        raise UserError("protocol needs --ckpt and --ref (or --rows ROW=JSON ... to assemble results)")
    _positive(args, "per_class", "heun_steps", "batch_size", "sample_batch_size", "isc_splits")
    model, cfg, device, spec, stats, ref_meta, metric_fn, scale = _model_and_metric_fn(args)
    s = cfg.sample
    guidance = choose(args.cfg_from, args.cfg, s.cfg)
    w = guidance.w
    interval = list(args.interval) if args.interval else list(s.interval)
    balanced = class_balanced_labels(model.num_classes, args.per_class or s.per_class)
    labels = {"balanced": balanced, "random": random_labels(model.num_classes, len(balanced), args.seed)}
    sampler = pr.checkpoint_sampler(model, cfg, interval=interval, seed=args.seed,
                                    batch_size=args.sample_batch_size or s.batch_size,
                                    device=device, steps=args.heun_steps)
    rows = pr.table4(lambda solver, y: sampler(solver, y, w), metric_fn, labels,
                     heun_steps=args.heun_steps, verbose=not args.quiet)
    for row in rows:
        row |= {"cfg": w, "interval": interval}
    n = len(balanced)
    flags = im.sample_count_flags(n, None, len(stats["mu"]), "FID per row")
    if spec.kind == im.INCEPTION and n < im.PAPER_NUM_SAMPLES:
        flags.append(f"rows on {n} samples; the paper's Table 4 uses {im.PAPER_NUM_SAMPLES}")
    flags += im.ref_flags(ref_meta)
    metrics = {"rows": rows, "fid_key": spec.name("fid"), "is_key": spec.name("is"), "cfg": w,
               "cfg_source": args.cfg_from or guidance.source, "cfg_selection": guidance.selection}
    scale |= {"interval": interval, "seed": args.seed, "num_samples": n, "heun_steps": args.heun_steps,
              "atol": s.atol, "rtol": s.rtol}
    prov = im.image_provenance("protocol", spec, args.ref, ref_meta, meta=scale, cfg_scale=w)
    _report(args.out, result(experiment=cfg.name, kind="protocol", metrics=metrics, scale=scale,
                             flags=flags + missing_flag(prov), provenance=prov))


def _assemble_protocol(args) -> None:
    from unite.metrics import protocol as pr

    named, flags, experiment, scale = {}, [], None, {}
    for item in args.rows:
        if "=" not in item:
            raise UserError(f"--rows expects ROW=JSON, got {item!r}")
        key, path = item.split("=", 1)
        try:
            res = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UserError(f"result file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not JSON: {exc}") from None
        if res.get("kind") != "gen_images":
            raise UserError(f"{path} is a {res.get('kind')!r} result, expected gen_images")
        named[key] = res
        flags += [f"{key}: {f}" for f in res.get("flags", [])]
        experiment = experiment or res.get("experiment")
        scale = scale or {k: v for k, v in res.get("scale", {}).items()
                          if k in ("experiment", "dataset", "model_size", "train_steps", "fine_tuned",
                                   "feature_network", "ref_num_images", "num_samples")}
    rows = pr.rows_from_results(named)
    first = next(iter(named.values()))["metrics"]
    fid_key = "fid_digits" if "fid_digits" in first else "fid"
    metrics = {"rows": rows, "fid_key": fid_key, "is_key": fid_key.replace("fid", "is"),
               "cfg": rows[0].get("cfg"), "cfg_source": "gen_images results"}
    # each row keeps its own provenance; the block names the files the rows came from
    prov = {**(next(iter(named.values())).get("provenance") or {}),
            "rows": {key: res.get("provenance") for key, res in named.items()},
            "assembled_from": {item.split("=", 1)[0]: item.split("=", 1)[1] for item in args.rows}}
    _report(args.out, result(experiment=experiment or "unknown", kind="protocol",
                             metrics=metrics, scale=scale, flags=flags, provenance=prov))


def run_random_inception(args) -> None:
    from unite.metrics import images as im

    path = im.write_random_inception_weights(args.out, seed=args.seed)
    print(json.dumps({"out": str(path), "note": "random weights: for smoke runs only"}))


RUNNERS = {
    "images": run_images,
    "ref-stats": run_ref_stats,
    "recon-images": run_recon_images,
    "digits-classifier": run_digits_classifier,
    "cfg-sweep": run_cfg_sweep,
    "protocol": run_protocol,
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
