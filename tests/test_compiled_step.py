"""``train.compile`` compiles the GE and decoder blocks; the compiled step must equal the eager one.

The fast test uses the ``aot_eager`` backend: Dynamo capture and AOTAutograd, the parts that see
the custom kernels, checkpointing and the model's control flow, without C++ code generation. The
slow one runs the default Inductor backend (needs a C++ compiler, minutes on 2 cores).
"""

import pytest
import torch

from training_helpers import one_thread, tiny_config
from unite.acceleration import compile_model, transformer_blocks
from unite.models import build_model
from unite.objective import JointObjective


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def _step(cfg, backend):
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adaLN" in name:
                p.normal_(std=0.05)
    if backend:
        assert compile_model(cfg, model, backend=backend) == len(transformer_blocks(model))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    y = torch.randint(0, 10, (4,), generator=g)
    torch.manual_seed(3)
    loss, _ = JointObjective(model, cfg).train()(x, y)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def _compare(backend, *overrides):
    torch._dynamo.reset()
    cfg = tiny_config("train.compile=true", "model.in_context_tokens=2", "model.in_context_start=1",
                      *overrides)
    eager = _step(tiny_config("model.in_context_tokens=2", "model.in_context_start=1", *overrides), None)
    compiled = _step(cfg, backend)
    assert torch.allclose(compiled[0], eager[0], rtol=1e-5, atol=1e-6) or backend != "aot_eager"
    assert torch.allclose(compiled[0], eager[0], rtol=1e-4, atol=1e-5)
    assert compiled[1].keys() == eager[1].keys()
    for name, g in eager[1].items():
        assert torch.allclose(compiled[1][name], g, rtol=1e-4, atol=1e-5), name


def test_compile_switch_off_leaves_blocks_eager():
    cfg = tiny_config()
    model = build_model(cfg)
    assert compile_model(cfg, model) == 0


def test_compiled_step_equals_eager_step_aot_eager():
    pytest.importorskip("torch._dynamo")
    _compare("aot_eager")


@pytest.mark.slow
def test_compiled_step_equals_eager_step_inductor():
    _compare("inductor")
