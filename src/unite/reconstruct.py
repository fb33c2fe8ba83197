"""``unite reconstruct``: tokenize a data split with the GE and decode it again (rFID, PSNR, and
the molecule/crystal reconstruction metrics all start from this file).

The tokenization pass draws register noise and a t in [0, 0.01); both are seeded (noise per
sample from ``SeedSequence((seed, index))`` as in sampling), so a file is reproducible and does
not depend on the batch size. Latents are decoded clean (no training-time recon noise), with
the EMA weights unless ``--no-ema``.

Output: images -> ``originals``, ``reconstructions`` (uint8 N,H,W,3) + ``labels``; atoms -> every
sample-file field twice, prefixed ``orig_`` and ``recon_``, + ``labels``; ``meta`` JSON.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from unite.cliargs import add_device
from unite.errors import UserError


@torch.no_grad()
def reconstruct(model, cfg, dataset, *, seed: int = 0, device="cpu", batch_size: int = 64,
                progress: bool = True) -> dict[str, np.ndarray]:
    """Encode + decode every item of ``dataset`` -> the reconstruction-file arrays."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from unite.acceleration import inference_autocast_for
    from unite.modality import batch_to_arrays, decoded_to_arrays, is_image, to_device
    from unite.sampling import initial_noise

    device = torch.device(device)
    model = model.to(device).eval()
    base = getattr(dataset, "dataset", dataset)  # a Subset keeps the collate of its dataset
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        num_workers=cfg.data.num_workers,
                        collate_fn=getattr(base, "collate_fn", None))
    autocast = inference_autocast_for(cfg, device)
    shape = tuple(model.latent_shape)
    torch.manual_seed(seed)  # the tokenizer's t ~ U[0, 0.01)
    parts: dict[str, list[np.ndarray]] = {}
    done = 0
    for x, y in tqdm(loader, desc="reconstruct", unit="batch", disable=not progress):
        x = to_device(x, device)
        n = len(y)
        noise = initial_noise(range(done, done + n), shape, seed).to(device)
        with autocast():
            z0 = model.encode(x, noise=noise)
            decoded = model.decode(z0)
        decoded = ({k: v.float() for k, v in decoded.items()} if isinstance(decoded, dict)
                   else decoded.float())
        orig, recon = batch_to_arrays(cfg, x), decoded_to_arrays(cfg, decoded)
        if is_image(cfg):
            fields = {"originals": orig["images"], "reconstructions": recon["images"]}
        else:
            fields = {**{f"orig_{k}": v for k, v in orig.items()},
                      **{f"recon_{k}": v for k, v in recon.items()}}
        fields["labels"] = torch.as_tensor(y).cpu().numpy().astype(np.int64)
        for key, arr in fields.items():
            parts.setdefault(key, []).append(arr)
        done += n
    if not done:
        raise UserError("the split is empty: nothing to reconstruct")
    return {k: np.concatenate(v) for k, v in parts.items()}


def add_arguments(p) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint file (RUN/checkpoints/last.pt)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--limit", type=int, default=None, help="only the first N items of the split")
    p.add_argument("--grid", default=None, help="also write a PNG of original/reconstruction pairs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None, help="override the checkpoint's data.root")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    add_device(p)


def run(args) -> None:
    from torch.utils.data import Subset

    from unite.artifacts import checkpoint_meta, write_sample_file
    from unite.checkpoint import load_for_inference, resolve_device
    from unite.data import build_dataset
    from unite.modality import is_image

    if args.limit is not None and args.limit <= 0:
        raise UserError(f"--limit must be > 0, got {args.limit}")
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be > 0, got {args.batch_size}")
    device = resolve_device(args.device)
    model, cfg, ckpt_meta, use_ema = load_for_inference(args.ckpt, args.no_ema, device)
    if args.data_root is not None:
        cfg.data.root = args.data_root
    dataset = build_dataset(cfg, args.split)
    total = len(dataset)
    if args.limit is not None and args.limit < total:
        dataset = Subset(dataset, range(args.limit))
    arrays = reconstruct(model, cfg, dataset, seed=args.seed, device=device,
                         batch_size=args.batch_size)
    n = len(arrays["labels"])
    meta = checkpoint_meta(cfg, ckpt_meta, args.ckpt, use_ema) | {
        "kind": "reconstructions",
        "split": args.split,
        "split_size": total,
        "limit": args.limit,
        "num_samples": n,
        "seed": args.seed,
        "solver": None, "steps": None, "nfe": 1, "cfg": None, "interval": None,
    }
    summary = {"out": str(args.out), "split": args.split, "num_samples": n}
    if is_image(cfg):
        from unite.metrics.psnr import mean_psnr_uint8

        psnr = mean_psnr_uint8(arrays["originals"], arrays["reconstructions"])
        meta["psnr"] = summary["psnr"] = round(psnr, 3) if psnr is not None else None
    write_sample_file(args.out, arrays, meta)
    if args.grid:
        if not is_image(cfg):
            raise UserError("--grid draws images; this checkpoint reconstructs atoms")
        from unite.plots import reconstruction_grid

        reconstruction_grid(arrays["originals"], arrays["reconstructions"], args.grid)
    print(json.dumps(summary))
