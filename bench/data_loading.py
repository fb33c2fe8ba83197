"""ImageNet loader throughput on CPU: JPEG decode + ADM center crop + flip + tensor, per core
and through a DataLoader with worker processes, beside what a GPU step would consume.

    python bench/data_loading.py [--images 512] [--workers 0,1,2] [--batch 64]

The images are generated once into a temporary ImageNet-style folder (``train/<wnid>/*.JPEG``)
at real ImageNet sizes (500x375, 375x500, 500x333, 333x500, 500x500 and a few large ones),
with smooth content plus grain so that the files are about ImageNet's ~110 KB at JPEG
quality 90 (random-noise pixels would make decoding unrealistically slow). The loader is the
training one (``unite.data.images.ImageFolderDataset``). Prints one JSON object per line; the
last line sets the measured per-core rate against the GPU demand estimated from the counted
FLOPs, an MFU and a device peak (all printed, all flags).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SIZES = [(500, 375)] * 6 + [(375, 500)] * 2 + [(500, 333), (333, 500), (500, 500), (1024, 768)]


def make_images(root: Path, n: int, classes: int, seed: int = 0) -> float:
    """Write ``n`` JPEGs under ``root/train/<class>/``; returns the mean file size in KB."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    total = 0
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        coarse = rng.uniform(0, 255, size=(h // 32 + 2, w // 32 + 2, 3)).astype(np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        arr = np.asarray(img, dtype=np.int16) + rng.normal(0, 6, size=(h, w, 3)).astype(np.int16)
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i:06d}.JPEG"
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        total += path.stat().st_size
    return total / n / 1024


def main() -> None:
    import torch
    from torch.utils.data import DataLoader

    from unite import config
    from unite.data.images import ImageFolderDataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", default="0,1,2", help="DataLoader worker counts to time")
    parser.add_argument("--dir", default="", help="reuse/keep this folder instead of a temp one")
    parser.add_argument("--gpu-mfu", type=float, default=0.4, help="assumed MFU for the demand")
    parser.add_argument("--gpu-peak-tflops", type=float, default=989.4, help="H100/H200 bf16 dense")
    args = parser.parse_args()
    torch.set_num_threads(1)

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="unite-jpegs-"))
    try:
        if not (root / "train").is_dir():
            t = time.perf_counter()
            kb = make_images(root, args.images, args.classes)
            print(json.dumps({"bench": "jpeg_folder", "images": args.images, "mean_kb": round(kb, 1),
                              "generate_s": round(time.perf_counter() - t, 1)}), flush=True)
        cfg = config.from_dict({"data": {"kind": "imagefolder", "root": str(root),
                                         "image_size": args.size, "num_classes": args.classes,
                                         "hflip": True},
                                "model": {"patch_size": 16, "num_registers": (args.size // 16) ** 2}})
        ds = ImageFolderDataset(cfg, "train")

        # one core, no DataLoader: the per-image cost of decode + crop + flip + to-tensor
        for i in range(min(16, len(ds))):
            ds[i]
        t, c = time.perf_counter(), time.process_time()
        for i in range(len(ds)):
            ds[i]
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        per_core = len(ds) / cpu
        print(json.dumps({"bench": "decode_one_core", "images": len(ds), "images_per_s": len(ds) / wall,
                          "images_per_cpu_s": per_core, "ms_per_image_cpu": 1e3 * cpu / len(ds)}),
              flush=True)

        for w in (int(v) for v in args.workers.split(",")):
            loader = DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=w,
                                drop_last=True, persistent_workers=w > 0,
                                generator=torch.Generator().manual_seed(0))
            for _ in loader:  # warm-up epoch (worker start-up, file cache)
                pass
            t = time.perf_counter()
            n = 0
            for _ in range(2):
                for xb, _ in loader:
                    n += xb.shape[0]
            wall = time.perf_counter() - t
            print(json.dumps({"bench": "dataloader", "num_workers": w, "batch": args.batch,
                              "images_per_s": n / wall}), flush=True)

        from unite.info import describe

        b = config.load(ROOT / "config" / "experiments" / "unite-b.yaml")
        info = describe(b)
        flops = info["train_flops_per_sample"] + info.get("recompute_flops_per_sample", 0)
        need = args.gpu_mfu * args.gpu_peak_tflops * 1e12 / flops
        print(json.dumps({
            "bench": "loader_vs_gpu_demand",
            "unite_b_tflops_per_sample_incl_recompute": round(flops / 1e12, 3),
            "assumed_gpu": {"peak_tflops": args.gpu_peak_tflops, "mfu": args.gpu_mfu},
            "gpu_samples_per_s": round(need, 1),
            "loader_images_per_core_s": round(per_core, 1),
            "cores_needed_per_gpu": round(need / per_core, 2),
        }), flush=True)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
