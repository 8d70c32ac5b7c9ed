"""benchmarks/downstream.py: the baselines have the architectures its docstring and the thesis describe."""

from __future__ import annotations

import sys

import torch
from torch import nn

from _helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import downstream  # noqa: E402


def _convs(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_audio_network_is_gp_lenet_deepened():
    model = downstream.Classifier(downstream.AUDIO_CHANNELS)
    convs = _convs(model)
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256]
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 4
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 5
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 10)]
    model.eval()
    assert model(torch.zeros(3, 1, 112, 112)).shape == (3, 10)


def test_image_network_and_late_fusion():
    image = downstream.Classifier(downstream.IMAGE_CHANNELS)
    assert [c.out_channels for c in _convs(image)] == [16, 32, 64]
    fusion = downstream.LateFusion().eval()
    assert [(m.in_features, m.out_features) for m in fusion.modules() if isinstance(m, nn.Linear)] == [(320, 10)]
    assert fusion(torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 112, 112)).shape == (2, 10)


def test_protocols_never_overlap():
    for name in ("standard", "test-only"):
        plan = downstream.protocol(name, (55_000, 5_000, 10_000))
        seen = {}
        for part, (split, indices) in plan.items():
            for other, (other_split, other_indices) in seen.items():
                if split == other_split:
                    assert not set(indices) & set(other_indices), (name, part, other)
            seen[part] = (split, indices)
    standard = downstream.protocol("standard", (55_000, 5_000, 10_000))
    assert standard["val"] == ("train", range(55_000, 60_000)) and len(standard["test"][1]) == 10_000
