"""Two sampling details where the released code and this project could differ, measured on one
trained digits checkpoint with the digits FID (same noise, same labels, one seed):

* guidance at exactly t = 1.0: the code's open interval (lo, hi) skips it (our default); the
  closed [lo, hi] guides the final Heun/dopri5 evaluation too;
* uint8 conversion: rounding (ours) or truncation (the code's ``(x * 255).to(uint8)``).

    python bench/digits_sampling_details.py --ckpt RUN/checkpoints/last.pt \\
        --classifier REF/classifier.pt --stats REF/stats.npz [--w 3] [--per-class 20]

``bench/digits_defaults.py`` writes a classifier and reference statistics under OUT/reference.
Prints one JSON object per variant.
"""

from __future__ import annotations

import argparse
import json
from unittest import mock

import numpy as np
import torch

from unite import modality, sampling
from unite.checkpoint import load_model
from unite.metrics import images as im
from unite.metrics.cli import _ref


def truncating_uint8(x: torch.Tensor) -> np.ndarray:
    """The released code's conversion, on our [-1, 1] range: x01 * 255 truncated."""
    x01 = (x.float().clamp(-1, 1) + 1) / 2
    return (x01 * 255).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def closed_interval(self, t: float) -> bool:
    return self.w != 1.0 and self.lo <= t <= self.hi


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--classifier", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--w", type=float, default=3.0)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--steps", type=int, default=25)
    args = p.parse_args()
    torch.set_num_threads(1)
    model, cfg, _ = load_model(args.ckpt)
    ref_args = argparse.Namespace(ref=args.stats, weights=args.classifier, features="digits",
                                  fid_layer=None)
    stats, _, spec = _ref(ref_args)
    labels = sampling.class_balanced_labels(cfg.data.num_classes, args.per_class)

    def score(name: str) -> None:
        arrays, nfe = sampling.generate(model, cfg, labels, solver="heun", steps=args.steps,
                                        cfg_scale=args.w, interval=(0.1, 1.0), seed=0)
        m = im.generation_metrics(arrays["images"], arrays["labels"], stats, spec, verbose=False)
        print(json.dumps({"variant": name, "w": args.w, "num_samples": len(labels),
                          "fid_digits": round(m["fid_digits"], 3),
                          "class_accuracy": round(m["class_accuracy_digits"], 3),
                          "mean_grey_level": round(float(arrays["images"].mean()), 3)}),
              flush=True)

    score("open interval, rounding (ours)")
    with mock.patch.object(sampling.GuidedVelocity, "guided_at", closed_interval):
        score("closed interval (guided at t = 1.0), rounding")
    with mock.patch.object(modality, "images_to_uint8", truncating_uint8):
        score("open interval, truncation (the code's uint8)")


if __name__ == "__main__":
    main()
