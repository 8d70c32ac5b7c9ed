"""benchmarks/downstream.py: the baselines have the architectures its docstring and the thesis describe."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import REPO, SHARED_DATA

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


# ----------------------------------------------------------------------------
# the thesis' own audio network and protocol (--model thesis)

#: CentralUnimodalAudio (with its head) as wardvdnb/Multimodal-SSL-AVMNIST, AVMNIST_Experiments/models/
#: unimodal.py defines it: four (in, out) 5x5 convolutions with padding 2 and bias, each followed by
#: batch norm, ReLU and a 2x2 max-pool; then Linear(64 * 7 * 7, 1024), ReLU, Dropout(0.5), Linear(1024, 10).
THESIS_CONVS = [(1, 8), (8, 16), (16, 32), (32, 64)]
THESIS_LINEARS = [(64 * 7 * 7, 1024), (1024, 10)]


def _thesis_parameter_count() -> int:
    convs = sum(o * i * 5 * 5 + o for i, o in THESIS_CONVS)
    norms = sum(2 * o for _, o in THESIS_CONVS)  # weight and bias of each BatchNorm2d
    linears = sum(i * o + o for i, o in THESIS_LINEARS)
    return convs + norms + linears


def test_thesis_audio_network_has_the_thesis_architecture():
    model = downstream.ThesisAudioNet()
    convs = _convs(model)
    assert [(c.in_channels, c.out_channels) for c in convs] == THESIS_CONVS
    assert all(c.kernel_size == (5, 5) and c.padding == (2, 2) and c.bias is not None for c in convs)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [n.num_features for n in norms] == [o for _, o in THESIS_CONVS]
    assert sum(isinstance(m, nn.MaxPool2d) and m.kernel_size == 2 for m in model.modules()) == 4
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == THESIS_LINEARS
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 1 and dropouts[0].p == 0.5
    assert sum(p.numel() for p in model.parameters()) == _thesis_parameter_count() == 3_290_298
    # the blocks halve 112 four times, to the 64 x 7 x 7 the hidden layer reads
    model.eval()
    assert model.blocks(torch.zeros(2, 1, 112, 112)).shape == (2, 64, 7, 7)
    assert model(torch.zeros(2, 1, 112, 112)).shape == (2, 10)


def test_thesis_dropout_sits_between_the_hidden_and_the_output_layer():
    model = downstream.ThesisAudioNet()
    x = torch.rand(4, 1, 112, 112)
    model.eval()
    with torch.no_grad():
        hidden = torch.relu(model.hidden(model.blocks(x).flatten(1)))
        assert torch.allclose(model(x), model.out(hidden), atol=1e-5)
        model.train()
        torch.manual_seed(0)
        a = model(x)
        torch.manual_seed(1)
        b = model(x)
    assert not torch.allclose(a, b)  # dropout is active while training


def test_thesis_split_is_a_random_55000_5000_cut_of_the_train_split():
    train, val = downstream.thesis_split(55_000, 5_000)
    assert len(train) == 55_000 and len(val) == 5_000
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(60_000))
    assert not set(val.tolist()) <= set(range(55_000, 60_000))  # random, not the last 5,000
    again_train, again_val = downstream.thesis_split(1_000, 100)
    assert (again_train == train[:1_000]).all() and (again_val == val[:100]).all()


def test_per_epoch_draws_need_a_dataset_with_draws(monkeypatch):
    class Old:
        def __init__(self, root=None, split="train", scheme="burst_noise", seed=0):
            pass

    monkeypatch.setattr(downstream, "AVMNISTAudioDataset", Old)
    with pytest.raises(SystemExit) as err:
        downstream.per_epoch_reader({"root": None}, "burst_noise", np.arange(3), None)
    assert "draws" in str(err.value) and "--draws fixed" in str(err.value)


@pytest.mark.realdata
def test_esc50_ranks_agree_with_the_512_clip_metadata():
    csv = SHARED_DATA / "esc50_512" / "meta" / "esc50.csv"
    if not csv.is_file():
        pytest.skip(f"{csv} not found: needs ../shared/data beside the checkout")
    import pandas as pd

    table = pd.read_csv(csv)
    held_out = table[table["category"].isin(downstream.TEST_CATEGORIES)]
    assert sorted(held_out["filename"]) == sorted(downstream.ESC50_TEST_RANK)
    for category, rows in held_out.groupby("category"):
        ranks = [downstream.ESC50_TEST_RANK[name] for name in rows["filename"]]  # csv order
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks), category
        for name, fold, rank in zip(rows["filename"], rows["fold"], ranks):
            assert 8 * (fold - 1) <= rank < 8 * fold, (name, rank)  # 8 clips of a category per fold


@pytest.mark.realdata
def test_thesis_logged_rows_are_aligned_with_the_real_test_labels():
    labels_path = SHARED_DATA / "mnist" / "test_labels.npy"
    if not labels_path.is_file():
        pytest.skip(f"{labels_path} not found: needs ../shared/data beside the checkout")
    labels = np.load(labels_path)
    for first, (true, predicted) in downstream.THESIS_TEST_ROWS.items():
        assert len(true) == len(predicted)
        assert "".join(map(str, labels[first:first + len(true)])) == true, first


@pytest.mark.slow  # two training runs
def test_a_thesis_run_resumed_from_its_checkpoint_gives_the_uninterrupted_runs_figures(tmp_path):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(48) % 10

    def part(n):
        return (torch.randint(0, 256, (n, 112, 112), dtype=torch.uint8, generator=g), labels[:n].clone())

    data = {"train": part(48), "val": part(16), "test": part(16)}
    straight = downstream.thesis_train(data, 2, seed=1, device="cpu")
    checkpoint = tmp_path / "run.pt"
    first = downstream.thesis_train(data, 1, seed=1, device="cpu", checkpoint=checkpoint)
    assert checkpoint.exists() and len(first["history"]) == 1
    resumed = downstream.thesis_train(data, 2, seed=1, device="cpu", checkpoint=checkpoint)
    keys = ("epoch", "train_loss", "val_loss", "val_acc", "test_acc")
    assert [{k: r[k] for k in keys} for r in resumed["history"]] == [{k: r[k] for k in keys} for r in straight["history"]]
    assert np.array_equal(resumed["last_predicted"], straight["last_predicted"])


def test_the_draws_table_pairs_fixed_and_per_epoch_runs_of_the_same_size(capsys):
    def run(vals, tests):
        return {"history": [dict(epoch=k + 1, val_acc=v, test_acc=t) for k, (v, t) in enumerate(zip(vals, tests))]}

    fixed = {"sizes": [6000, 1000, 2000], "draws": "fixed"}
    per_epoch = {"sizes": [6000, 1000, 2000], "draws": "per_epoch"}
    other_size = {"sizes": [4000, 1000, 2000], "draws": "per_epoch"}
    downstream.draws_table([
        ("burst_noise", 1, run([20.0, 60.0, 55.0], [19.0, 57.0, 58.0]), fixed),
        ("burst_noise", 1, run([25.0, 50.0, 64.0], [24.0, 49.0, 61.5]), per_epoch),
        ("aliased", 1, run([30.0], [29.0]), other_size),
    ])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| burst_noise")]
    # best-validation checkpoint: epoch 2 for fixed (57.0), epoch 3 for per-epoch (61.5)
    assert rows == ["| burst_noise | 1 | 6,000 / 1,000 / 2,000 | 3 | 20.0, 60.0, 55.0 | 25.0, 50.0, 64.0 | 57.0 | 61.5 | +4.5 |"]


def test_the_epoch_tables_set_each_full_run_beside_the_thesis_log(capsys):
    history = [dict(epoch=1, val_acc=87.64, test_acc=83.46, train_loss=1.0827),
               dict(epoch=2, val_acc=91.84, test_acc=88.22, train_loss=0.3660)]
    downstream.epoch_tables([
        ("extreme_noise", 1, {"history": history}, {"sizes": [55_000, 5_000, 10_000], "draws": "fixed"}),
        ("extreme_noise", 2, {"history": history}, {"sizes": [6_000, 1_000, 2_000], "draws": "fixed"}),  # not full
        ("aliased", 1, {"history": history}, {"sizes": [55_000, 5_000, 10_000], "draws": "per_epoch"}),
    ])
    out = capsys.readouterr().out
    assert "extreme_noise, seed 1 (thesis' test accuracy after 10 epochs: 93.3%)" in out
    assert "seed 2" not in out and "aliased" not in out
    # the thesis' log: extreme_noise validation 87.28, 93.3; training loss 0.9943, 0.3325
    assert "| 1 | 87.6 | 87.3 | 83.5 | 1.083 / 0.994 |" in out
    assert "| 2 | 91.8 | 93.3 | 88.2 | 0.366 / 0.333 |" in out


def test_per_clip_accuracy_is_each_clips_items_lowest_first():
    predicted = np.array([1, 2, 3, 4, 5, 6])
    labels = np.array([1, 0, 3, 4, 0, 0])
    clips = np.array(["a.wav", "b.wav", "a.wav", "b.wav", "c.wav", "c.wav"], dtype=object)
    assert downstream.per_clip(predicted, labels, clips) == {"c.wav": 0.0, "b.wav": 50.0, "a.wav": 100.0}
    # predictions may cover only the first items
    assert downstream.per_clip(predicted[:2], labels, clips) == {"b.wav": 0.0, "a.wav": 100.0}


def test_noise_swap_gives_each_split_the_other_splits_noise_clips(synthetic_root):
    import noise_swap
    from avmnist_torch import AVMNISTAudioDataset

    def noises(split):
        return AVMNISTAudioDataset(synthetic_root, split, "burst_noise", clip_tables=None).index.noises

    train, test = noises("train"), noises("test")
    assert set(train).isdisjoint(test)
    with noise_swap.swapped_noise_lists():
        assert noises("test") == train and noises("train") == test
    assert noises("test") == test  # and only inside the block
