"""``python -m unite finetune``: the GAN decoder fine-tuning stage's place in the pipeline.

The paper (App. A, REFERENCE section 6) freezes the GE after joint training and trains only
the decoder for 16 epochs with an added adversarial loss, the discriminator initialised from
the trained GE (rFID 1.01 -> 0.51, gFID unchanged). That stage is NOT implemented yet. Until
it is, this command copies the checkpoint unchanged except for its ``meta``:
``fine_tuned`` stays false and ``finetune`` says "not implemented: passthrough", so every
downstream sample file and table reports the model as not fine-tuned. It never pretends to
have fine-tuned: the weights written are bit-for-bit the weights read.
"""

from __future__ import annotations

import argparse

PASSTHROUGH = "not implemented: passthrough"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="jointly trained checkpoint")
    parser.add_argument("--out", required=True, help="output checkpoint")
    parser.add_argument("--config", help="config whose 'finetune' section is requested "
                        "(default: the checkpoint's own config)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. finetune.epochs=16 (repeatable)")


def passthrough(ckpt: dict, requested_epochs: int) -> dict:
    """The checkpoint with its meta marked as passed through (weights untouched)."""
    meta = dict(ckpt.get("meta") or {})
    meta["fine_tuned"] = bool(meta.get("fine_tuned", False))  # an earlier real run stays true
    meta["finetune"] = PASSTHROUGH
    meta["finetune_requested_epochs"] = int(requested_epochs)
    return {**ckpt, "meta": meta}


def run(args: argparse.Namespace) -> None:
    from unite import checkpoint, config

    ckpt = checkpoint.read(args.ckpt)
    if args.config:
        cfg = config.load(args.config, args.set)
    else:
        cfg = config.from_dict(ckpt["config"], args.set)
    epochs = cfg.finetune.epochs
    out = passthrough(ckpt, epochs)
    checkpoint.save_atomic(out, args.out)

    print("finetune: GAN decoder fine-tuning is not implemented; this is a PASSTHROUGH.")
    if epochs > 0:
        print(f"finetune: the config asks for finetune.epochs = {epochs}; no epochs were run.")
    if out["meta"]["fine_tuned"]:
        print("finetune: the input checkpoint was already marked fine_tuned = true; kept.")
    else:
        print("finetune: meta.fine_tuned = false (downstream results say 'not fine-tuned').")
    print(f"finetune: copied {args.ckpt} -> {args.out} with unchanged weights.")
