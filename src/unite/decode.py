"""``python -m unite decode``: decode the latents stored in a sample file with another
checkpoint's decoder.

Why it exists: the paper says GAN decoder fine-tuning leaves gFID unchanged (App. A). The
fair test decodes the *same* generated latents with the decoder before and after fine-tuning:
fine-tuning freezes the GE, so the ODE and its latents are the same, and only the decoder
differs. ``unite sample --save-latents`` stores the final latents and a digest of the GE
weights that produced them; this command refuses a checkpoint whose GE has another digest,
and writes an ordinary sample file (images + labels, the sampling meta, and the decoding
checkpoint's meta) that ``unite evaluate images`` reads like any other.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
import torch

from unite.cliargs import add_device
from unite.errors import UserError


def ge_digest(model: torch.nn.Module) -> str:
    """sha256 over every non-decoder tensor of a UNITE model (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if name.startswith("decoder."):
            continue
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def decode_latents(model, cfg, latents: np.ndarray, *, device, batch_size: int) -> dict:
    """Latents (N, K, D) -> sample-file arrays, in the batches (and precision) sampling uses."""
    from unite.acceleration import inference_autocast_for
    from unite.modality import decoded_to_arrays

    device = torch.device(device)
    model = model.to(device).eval()
    autocast = inference_autocast_for(cfg, device)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(latents), batch_size):
        z = torch.from_numpy(np.ascontiguousarray(latents[start : start + batch_size])).to(device)
        with autocast():
            decoded = model.decode(z)
        decoded = ({k: v.float() for k, v in decoded.items()} if isinstance(decoded, dict)
                   else decoded.float())
        for key, arr in decoded_to_arrays(cfg, decoded).items():
            parts.setdefault(key, []).append(arr)
    return {k: np.concatenate(v) for k, v in parts.items()}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, help="sample file written with --save-latents")
    p.add_argument("--ckpt", required=True, help="checkpoint whose decoder decodes the latents")
    p.add_argument("--out", required=True, help="output sample file (.npz)")
    p.add_argument("--batch-size", type=int, default=None, help="default: sample.batch_size")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    add_device(p)


def run(args: argparse.Namespace) -> None:
    from unite.artifacts import checkpoint_meta, read_sample_file, write_sample_file
    from unite.checkpoint import load_for_inference, resolve_device

    if args.batch_size is not None and args.batch_size <= 0:
        raise UserError(f"--batch-size must be > 0, got {args.batch_size}")
    arrays, meta = read_sample_file(args.samples)
    if "latents" not in arrays:
        raise UserError(f"{args.samples} holds no latents: sample with `unite sample "
                        "--save-latents`")
    device = resolve_device(args.device)
    model, cfg, ckpt_meta, use_ema = load_for_inference(args.ckpt, args.no_ema, device)
    digest = ge_digest(model)
    if meta.get("ge_digest") != digest:
        raise UserError(f"{args.ckpt}: its GE weights are not the ones that generated the "
                        f"latents of {args.samples} (GE digest {digest[:12]} vs "
                        f"{str(meta.get('ge_digest'))[:12]})")
    decoded = decode_latents(model, cfg, arrays["latents"], device=device,
                             batch_size=args.batch_size or cfg.sample.batch_size)
    # the sampling fields stay; the model fields are the decoding checkpoint's (the optional
    # fine-tuning fields of the sampling checkpoint must not leak through)
    sampling = {k: v for k, v in meta.items() if not k.startswith(("fine_tuned", "finetune"))}
    out_meta = {**sampling, **checkpoint_meta(cfg, ckpt_meta, args.ckpt, use_ema),
                "decoded_from": str(args.samples), "latents_ckpt": meta.get("ckpt")}
    write_sample_file(args.out, {**decoded, "labels": arrays["labels"]}, out_meta)
    print(json.dumps({"out": str(args.out), "num_samples": len(arrays["labels"]),
                      "decoder": str(args.ckpt), "fine_tuned": out_meta["fine_tuned"]}))
