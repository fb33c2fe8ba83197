"""One module owns both precision policies: training follows ``train.precision``, inference
(sampling, reconstruction, decoding) follows ``sample.precision`` and stays fp32 unless asked."""

import torch

from training_helpers import tiny_config
from unite.acceleration import autocast_for, inference_autocast_for, inference_uses_bf16

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # only inspected, never allocated on


def _autocast_inside(factory, device_type="cpu") -> bool:
    with factory():
        return torch.is_autocast_enabled(device_type)


def test_training_bf16_on_cpu_is_cpu_autocast_and_fp32_is_none():
    assert _autocast_inside(autocast_for(tiny_config("train.precision=bf16"), CPU))
    assert not _autocast_inside(autocast_for(tiny_config("train.precision=fp32"), CPU))
    assert not _autocast_inside(autocast_for(tiny_config("train.precision=auto"), CPU))


def test_inference_is_fp32_unless_sample_precision_asks_on_cuda():
    bf16 = tiny_config("sample.precision=bf16", "train.precision=bf16")
    fp32 = tiny_config("sample.precision=fp32", "train.precision=bf16")
    # training in bf16 does not make sampling bf16, and CPU inference is always fp32
    assert not inference_uses_bf16(fp32, CUDA)
    assert not inference_uses_bf16(bf16, CPU)
    assert not _autocast_inside(inference_autocast_for(bf16, CPU))
    assert inference_uses_bf16(bf16, CUDA)
