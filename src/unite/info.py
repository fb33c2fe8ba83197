"""``python -m unite info``: parameter counts and training FLOPs of a config, without weights.

The model is built on ``torch.device("meta")`` (no memory, no initialisation cost), so even
UNITE-XL is counted instantly on a laptop.

What ``train_flops_per_sample`` counts (FLOPs = 2 x multiply-accumulates):

* every matrix multiply of the trainable passes: patch/input embedding, register input,
  timestep MLP, the adaLN linears, q/k/v/out projections, the MLPs, the final layers, and the
  attention score and value products (``4 * n^2 * width`` per block for n tokens);
* one tokenization pass over K registers + N input tokens (+ in-context class tokens from block
  ``in_context_start`` on), F denoising passes over K registers (+ in-context tokens) and one
  decoder pass over the K registers;
* training = 3 x forward for those passes (backward = weight gradients + activation gradients
  = 2 x forward); activation recomputation of gradient checkpointing is *not* included
  (reported separately as ``recompute_flops_per_sample`` for the passes that
  ``model.grad_checkpointing`` recomputes in full);
* the frozen LPIPS VGG16 (convolutions up to conv5_3 plus the five 1x1 LPIPS heads) at the
  training image size, when ``train.lpips_weight > 0``: forward on x and on x_hat plus the
  input-gradient backward through x_hat (no weight gradients) = 3 x one VGG forward.
  (VGG16 conv layers at 224x224: 30.7 GFLOPs; at 256x256: 40.1 GFLOPs.)

Not counted: norms, softmax, activations and other elementwise operations, the optimiser.
"""

from __future__ import annotations

import json

import torch

from unite import config as config_mod
from unite import kinds
from unite.cliargs import add_set
from unite.modality import is_image
from unite.models import build_model
from unite.models.checkpointing import plan_for

VGG16_CONVS = [  # (in, out) channels of conv1_1 .. conv5_3, a 2x2 pool after each block but the last
    [(3, 64), (64, 64)],
    [(64, 128), (128, 128)],
    [(128, 256), (256, 256), (256, 256)],
    [(256, 512), (512, 512), (512, 512)],
    [(512, 512), (512, 512), (512, 512)],
]
LPIPS_HEAD_CHANNELS = (64, 128, 256, 512, 512)


def vgg16_lpips_flops(height: int, width: int) -> int:
    """One forward of LPIPS's VGG16 trunk (3x3 convs, padding 1) plus its 1x1 heads."""
    flops, h, w = 0, height, width
    for block, head in zip(VGG16_CONVS, LPIPS_HEAD_CHANNELS):
        for cin, cout in block:
            flops += 2 * h * w * cin * cout * 9
        flops += 2 * h * w * head  # LPIPS linear head on this block's features
        h, w = h // 2, w // 2
    return flops


def ge_block_flops(ge, n_inputs: int) -> int:
    """Forward matmul FLOPs of the transformer blocks of one GE pass, per sample."""
    d, k = ge.width, ge.num_registers
    hidden = ge.blocks[0].mlp.w3.in_features if len(ge.blocks) else 0
    flops = 0
    for i in range(len(ge.blocks)):
        ctx = ge.in_context_tokens if ge.in_context_tokens and i >= ge.in_context_start else 0
        n = k + n_inputs + ctx
        flops += 2 * d * 6 * d  # adaLN (once per sample)
        flops += 2 * n * d * 3 * d + 2 * n * d * d  # qkv + out projection
        flops += 4 * n * n * d  # attention scores QK^T and the weighted sum AV
        flops += 2 * n * d * 2 * hidden + 2 * n * hidden * d  # SwiGLU
    return flops


def ge_other_flops(ge, input_embed_flops: int = 0) -> int:
    """The rest of a GE pass: input embedding, register input, timestep MLP, final layer."""
    d, k, lat = ge.width, ge.num_registers, ge.latent_dim
    t_in = ge.t_embed.mlp[0].in_features
    return input_embed_flops + 2 * k * lat * d + 2 * (t_in * d + d * d) + 2 * d * 2 * d + 2 * k * d * lat


def image_decoder_flops(decoder, k: int) -> tuple[int, int]:
    """(blocks, rest) forward FLOPs of the ViT image decoder per sample."""
    d = decoder.latent_in.out_features
    lat = decoder.latent_in.in_features
    blocks = 0
    for block in decoder.blocks:
        hidden = block.mlp[0].out_features
        blocks += 2 * k * d * 4 * d + 4 * k * k * d + 2 * k * d * hidden * 2
    return blocks, 2 * k * lat * d + 2 * k * d * decoder.head.out_features


def _counted(fn) -> int:
    """FLOPs of ``fn()`` on meta tensors via torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def describe(cfg) -> dict:
    """Parameter counts and the FLOPs breakdown (see module docstring)."""
    with torch.device("meta"):
        model = build_model(cfg)
    ge, t = model.encoder, cfg.train
    k = ge.num_registers
    if is_image(cfg):
        p = cfg.model.patch_size
        n_in = (cfg.data.image_size // p) ** 2
        embed = 2 * n_in * 3 * p * p * ge.width  # the patch Conv2d
        dec_blocks, dec_rest = image_decoder_flops(model.decoder, k)
    else:
        # atoms: one token per atom slot (+ a lattice token for crystals); the embedding's
        # small coordinate projection is left out; the decoder is counted by FlopCounterMode
        n_in = cfg.data.max_atoms + (1 if kinds.modality(cfg.data.kind) == "crystals" else 0)
        embed = 0
        z = torch.empty(1, *model.latent_shape, device="meta")
        dec_blocks, dec_rest = _counted(lambda: model.decoder(z)), 0
    tokenize_blocks = ge_block_flops(ge, n_in)
    tokenize = tokenize_blocks + ge_other_flops(ge, embed)
    denoise_blocks = ge_block_flops(model.denoiser, 0)
    denoise = denoise_blocks + ge_other_flops(model.denoiser)
    dec = dec_blocks + dec_rest
    flow_passes = t.flow_steps_per_recon
    forward = tokenize + flow_passes * denoise + dec
    vgg = vgg16_lpips_flops(cfg.data.image_size, cfg.data.image_size) if (
        is_image(cfg) and t.lpips_weight > 0) else 0
    train_flops = 3 * forward + 3 * vgg
    out = {
        "experiment": cfg.name,
        "ge_size": cfg.model.size,
        "weight_sharing": model.shared,
        "ge_params": _numel(ge),
        "denoiser_params": _numel(model.separate_denoiser),  # 0 = shared with the GE
        "decoder_params": _numel(model.decoder),
        "total_params": _numel(model),
        "train_flops_per_sample": train_flops,
        "train_tflops_per_sample": round(train_flops / 1e12, 4),
        "breakdown": {
            "tokens": {"registers": k, "inputs": n_in, "in_context": ge.in_context_tokens},
            "tokenize_forward_flops": tokenize,
            "denoise_forward_flops_per_pass": denoise,
            "flow_passes": flow_passes,
            "decoder_forward_flops": dec,
            "trainable_forward_flops": forward,
            "backward_factor": 3,
            "lpips_vgg16_forward_flops": vgg,
            "lpips_vgg16_passes": 3 if vgg else 0,
        },
        "counted": "matmuls incl. attention scores; training = 3x forward; LPIPS VGG16 "
        "fwd(x) + fwd(x_hat) + input-gradient bwd; no norms/elementwise/optimizer/recompute",
    }
    # fully recomputed passes run their block forwards twice (selective recompute redoes only
    # pointwise ops, which are not counted)
    recompute = plan_for(cfg)
    extra = (tokenize_blocks * (recompute.tokenize == "full")
             + flow_passes * denoise_blocks * (recompute.denoise == "full")
             + dec_blocks * (recompute.decode == "full"))
    if extra:
        out["recompute_flops_per_sample"] = extra
    return out


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=None, help="experiment YAML (default: digits)")
    add_set(parser)


def run(args) -> None:
    from unite.training import DEFAULT_CONFIG

    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    cfg = config_mod.load(path, args.set)
    print(json.dumps(describe(cfg)))
