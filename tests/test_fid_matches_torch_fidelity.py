"""The project's gFID / IS (reference stats cached in an .npz, then samples scored against them)
equal torch-fidelity's own ``calculate_metrics`` on the same images and Inception weights file.

The weights are torch-fidelity's InceptionV3 module with random Kaiming-normal weights (real
weights cannot be downloaded here); Kaiming init keeps the features image-dependent, so FID
between different image sets is far from 0 and the comparison can fail.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unite.metrics import features as ft
from unite.metrics import image_sets as sets
from unite.metrics import images as im
from unite.metrics import reference as rs

N = 6  # Inception at 299x299 costs ~0.2 s per image on a CPU core: keep the sets tiny


def blobs(seed: int, n: int, kind: str) -> np.ndarray:
    """Smooth random colour fields (kind 'a') or stripes (kind 'b'), uint8 (n, 32, 32, 3)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "a":
        x = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=32, mode="bilinear")
    else:
        phase = torch.rand(n, 3, 1, 1, generator=g) * 6.28
        freq = 0.2 + torch.rand(n, 1, 1, 1, generator=g)
        x = 0.5 + 0.5 * torch.sin(torch.arange(32.0).view(1, 1, 1, 32) * freq + phase)
        x = x.expand(n, 3, 32, 32)
    return (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return ft.write_random_inception_weights(tmp_path_factory.mktemp("w") / "inception.pth", seed=0)


@pytest.mark.parametrize(
    "layer",
    [
        # same code path on a smaller layer: a 2048x2048 FID eigen-decomposition alone takes
        # ~20 s on a busy 2-core CPU, and the comparison needs two of them
        "768",
        pytest.param("2048", marks=pytest.mark.slow),  # the paper's layer
    ],
)
def test_fid_and_is_equal_torch_fidelity(weights, tmp_path, layer):
    from torch_fidelity import calculate_metrics

    torch.set_num_threads(2)
    samples, reference = blobs(1, N, "a"), blobs(2, N, "b")
    spec = ft.feature_spec("inception", weights, fid_layer=layer)
    fid = spec.name("fid")
    assert fid == ("fid" if layer == "2048" else f"fid_{layer}")

    # the project's path: reference statistics cached to a file, samples scored against it
    ref_feats = ft.extract_features(sets.UInt8Images(reference), spec, device="cpu", verbose=False)
    meta = rs.stats_meta(spec, num_images=N)
    rs.save_ref_stats(tmp_path / "ref.npz", rs.fid_statistics(ref_feats[spec.fid_layer]), meta)
    ref_stats, ref_meta = rs.load_ref_stats(tmp_path / "ref.npz")
    assert rs.spec_for_ref(ref_meta, None, None, "ref.npz") == spec
    ours = im.generation_metrics(samples, None, ref_stats, spec, isc_splits=2, device="cpu", verbose=False)

    theirs = calculate_metrics(
        input1=sets.UInt8Images(samples),
        input2=sets.UInt8Images(reference),
        fid=True,
        isc=True,
        isc_splits=2,
        feature_extractor="inception-v3-compat",
        feature_layer_fid=layer,
        feature_extractor_weights_path=str(weights),
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    assert theirs["frechet_inception_distance"] > 1.0  # random features still tell the sets apart
    assert ours[fid] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours[spec.name("is")] == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert ours[spec.name("is_std")] == pytest.approx(theirs["inception_score_std"], rel=1e-5, abs=1e-9)
    assert ours[spec.name("is")] > 1.0 + 1e-6  # logits differ between images
    assert ours["num_samples"] == N


def test_random_weights_file_loads_into_torch_fidelity_module(weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    state = torch.load(weights, weights_only=False)
    assert set(state) == set(net.state_dict())
    assert state["fc.weight"].shape == (1008, 2048)
