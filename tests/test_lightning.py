"""``AVMNISTDataModule`` under a real ``lightning.Trainer`` on CPU, the epoch sampler, and the optional import.

The protocol is the thesis' ``AVMNISTDataModule`` (``AVMNIST_Experiments/utils/get_data.py`` in
wardvdnb/Multimodal-SSL-AVMNIST): ``random_split`` of the train split into train and validation,
the whole test split, batches of 128, ``x / 255`` floats and long labels. Here on a synthetic
tree of 120 train and 40 test items, with ``val_size=20``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avmnist_torch import AVMNISTAudioDataset, AVMNISTDataset, ParameterError, DivideBy255
from avmnist_torch.sampling import EpochSampler

lightning = pytest.importorskip("lightning", reason="Lightning is not installed: pip install -e '.[test]'")

from avmnist_torch.lightning import AVMNISTDataModule, train_validation_split  # noqa: E402
from _helpers import Recorder


def test_split_is_the_thesis_random_split():
    """Ours with split_seed=s is what the thesis' random_split draws after torch.manual_seed(s)."""
    for seed in (0, 1, 1234):
        train, val = train_validation_split(60_000, 5_000, seed=seed)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            theirs_train, theirs_val = torch.utils.data.random_split(range(60_000), [55_000, 5_000])
        finally:
            torch.random.set_rng_state(state)
        assert train.tolist() == list(theirs_train.indices) and val.tolist() == list(theirs_val.indices)
        assert len(train) == 55_000 and len(val) == 5_000
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(60_000))
    assert not np.array_equal(train_validation_split(60_000, seed=0)[1], train_validation_split(60_000, seed=1)[1])
    # MultiBench's get_dataloader: trainlist[0:55000] and trainlist[55000:60000]
    train, val = train_validation_split(60_000, 5_000, how="last")
    assert train.tolist() == list(range(55_000)) and val.tolist() == list(range(55_000, 60_000))
    for bad in (0, 60_000, 2.5):
        with pytest.raises(ParameterError, match="val_size"):
            train_validation_split(60_000, bad)
    with pytest.raises(ParameterError, match="validation split"):
        train_validation_split(60_000, how="first")


# ----------------------------------------------------------------------------
# the DataModule under a real Trainer

@pytest.fixture(scope="module")
def tree(synthetic_tree):
    return synthetic_tree(n_train=120, n_test=40, mnist_images=True)


class _Tiny(lightning.pytorch.LightningModule):
    """A linear classifier that keeps every batch it is given."""

    def __init__(self, modality):
        super().__init__()
        self.modality = modality
        size = {"both": 784 + 112 * 112, "audio": 112 * 112, "image": 784}[modality]
        self.net = torch.nn.Linear(size, 10)
        self.seen = {"train": [], "val": [], "test": []}

    def _step(self, batch, stage):
        self.seen[stage].append((self.current_epoch, [t.clone() for t in batch]))
        inputs, label = batch[:-1], batch[-1]
        flat = torch.cat([x.flatten(1) for x in inputs], dim=1)
        loss = torch.nn.functional.cross_entropy(self.net(flat), label)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._step(batch, "test"), batch_size=len(batch[-1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(**kwargs):
    options = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    options.update(kwargs)
    return lightning.Trainer(**options)


@pytest.mark.slow  # a real Trainer, fit then test, with DataLoader workers
def test_fit_and_test_with_a_real_trainer(tree):
    dm = AVMNISTDataModule(tree, "burst_noise", batch_size=16, val_size=20, num_workers=2, split_seed=3,
                           dataset_options={"image_cache": None, "check_mnist": False})
    model = _Tiny("both")
    trainer = _trainer(max_steps=8, val_check_interval=4, limit_val_batches=1.0)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 8
    assert len(dm.train_dataset) == 100 and len(dm.val_dataset) == 20 and dm.test_dataset is None
    train_idx, val_idx = train_validation_split(120, 20, seed=3)
    assert dm.train_dataset.indices == train_idx.tolist() and dm.val_dataset.indices == val_idx.tolist()

    plain = AVMNISTDataset(tree, "train", "burst_noise", image_cache=None, check_mnist=False)
    scale = DivideBy255()
    # the first training batch of epoch 0: the sampler's order over the train indices, scaled
    order = [train_idx[k] for k in EpochSampler(dm.train_dataset, seed=3).order(0)]
    epoch, (image, audio, label) = model.seen["train"][0]
    assert epoch == 0 and image.shape == (16, 1, 28, 28) and audio.shape == (16, 1, 112, 112)
    assert image.dtype == audio.dtype == torch.float32 and label.dtype == torch.int64
    for k, i in enumerate(order[:16]):
        ref_image, ref_audio, ref_label = plain[i]
        assert torch.equal(image[k], scale(ref_image)) and torch.equal(audio[k], scale(ref_audio))
        assert label[k] == ref_label
    assert float(audio.min()) >= 0 and float(audio.max()) <= 1
    # validation: the validation indices in order, 20 items (two checks in 8 steps of 100/16 a epoch)
    val_labels = torch.cat([batch[-1] for _, batch in model.seen["val"][:2]])
    assert val_labels.tolist() == plain.labels[val_idx].tolist()

    results = trainer.test(model, datamodule=dm, verbose=False)
    assert "test_loss" in results[0] and len(dm.test_dataset) == 40
    test_labels = torch.cat([batch[-1] for _, batch in model.seen["test"]])
    assert test_labels.tolist() == AVMNISTAudioDataset(tree, "test", "burst_noise").labels.tolist()


@pytest.mark.parametrize("modality", ["audio", "image"])
def test_one_modality(tree, modality):
    dm = AVMNISTDataModule(tree, "distorted", modality=modality, batch_size=8, val_size=20, num_workers=0,
                           shuffle=False, dataset_options={"image_cache": None, "check_mnist": False})
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    first = dm.train_dataset.indices[:8]
    if modality == "audio":
        ds = AVMNISTAudioDataset(tree, "train", "distorted")
        expected = torch.stack([ds[i][0] for i in first])
    else:
        ds = AVMNISTDataset(tree, "train", "distorted", image_cache=None, check_mnist=False)
        expected = torch.stack([ds[i][0] for i in first])
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, DivideBy255()(expected))
    assert y.tolist() == ds.labels[first].tolist()
    trainer = _trainer(max_steps=2, limit_val_batches=1)
    trainer.fit(_Tiny(modality), datamodule=dm)
    assert trainer.global_step == 2


def test_epoch_is_set_each_training_epoch_from_the_trainer(tree):
    """The training dataset's set_epoch gets 0, 1, 2 from the trainer, and each epoch reads the sampler's order for it."""
    recorders = {}

    class Recording(AVMNISTDataModule):
        def build_dataset(self, split, *, draws=None):
            recorders.setdefault(split, []).append(Recorder(len(super().build_dataset(split))))
            return recorders[split][-1]

    dm = Recording(tree, "distorted", modality="audio", batch_size=10, val_size=20, num_workers=0, split_seed=5)
    trainer = _trainer(max_epochs=3, limit_val_batches=1)
    model = _Tiny("audio")
    model.net = torch.nn.Linear(1, 10)
    trainer.fit(model, datamodule=dm)
    train = recorders["train"][0]
    assert train.epochs == [0, 1, 2]
    sampler = EpochSampler(dm.train_dataset, seed=5)
    expected = [dm.train_dataset.indices[k] for epoch in range(3) for k in sampler.order(epoch)]
    reads = [i for i in train.reads if i in set(dm.train_dataset.indices)]
    assert reads[:len(expected)] == expected


def test_options_reach_the_right_datasets(tree, monkeypatch):
    """draws= goes to the training dataset only, from_export= to each split's own, dataset_options to those that take them (a spy records them; the files are not read)."""
    import avmnist_torch.lightning as module

    made = []

    class Spy(AVMNISTAudioDataset):
        def __init__(self, root, split, scheme, *, seed=0, draws=None, from_export=None, **kwargs):
            made.append({"split": split, "draws": draws, "from_export": from_export, "seed": seed, **kwargs})
            super().__init__(root, split, scheme, seed=seed, **kwargs)
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

    monkeypatch.setattr(module, "AVMNISTAudioDataset", Spy)
    dm = AVMNISTDataModule(tree, "distorted", modality="audio", seed=4, draws="per_epoch", val_size=20,
                           from_export={"train": "train.npy", "test": "test.npy"}, num_workers=0,
                           dataset_options={"clip_tables": None, "image_cache": None})
    dm.setup(None)
    assert [(m["split"], m["draws"], m["from_export"], m["seed"]) for m in made] == [
        ("train", "per_epoch", "train.npy", 4), ("train", None, "train.npy", 4), ("test", None, "test.npy", 4)]
    assert all(m["clip_tables"] is None and "image_cache" not in m and m["transform"] == DivideBy255() for m in made)
    assert dm.train_dataset.dataset is not dm.val_dataset.dataset  # validation keeps fixed items
    list(dm.train_sampler())
    assert dm.train_dataset.dataset.epochs == [0] and dm.val_dataset.dataset.epochs == []
    made.clear()
    AVMNISTDataModule(tree, "distorted", modality="audio", from_export="auto", num_workers=0, val_size=20).setup("test")
    assert [(m["split"], m["draws"], m["from_export"]) for m in made] == [("test", None, "auto")]


def test_bad_options_are_refused(tree):
    with pytest.raises(ParameterError, match="modality"):
        AVMNISTDataModule(tree, modality="video")
    with pytest.raises(ParameterError, match="modality='image'"):
        AVMNISTDataModule(tree, modality="image", draws="per_epoch")
    with pytest.raises(ParameterError, match="one export per split"):
        AVMNISTDataModule(tree, from_export="some/file.npy")
    with pytest.raises(ParameterError, match="split"):
        AVMNISTDataModule(tree, from_export={"validation": "x.npy"})
    with pytest.raises(ParameterError, match="no dataset takes renderr"):
        AVMNISTDataModule(tree, dataset_options={"renderr": "fast"})
    with pytest.raises(ParameterError, match="no dataset takes seed"):
        AVMNISTDataModule(tree, dataset_options={"seed": 3})
    with pytest.raises(ParameterError, match="val_size"):
        AVMNISTDataModule(tree, val_size=120, num_workers=0, dataset_options={"check_mnist": False}).setup("fit")


@pytest.mark.slow  # two epochs with persistent spawned workers
def test_per_epoch_draws_reach_persistent_spawned_workers(tree):
    """Training items follow the epoch in persistent spawned workers; validation items stay fixed."""
    dm = AVMNISTDataModule(tree, "burst_noise", modality="audio", draws="per_epoch", batch_size=25, val_size=20,
                           num_workers=2, multiprocessing_context="spawn", split_seed=1)
    model = _Tiny("audio")
    trainer = _trainer(max_epochs=2)
    trainer.fit(model, datamodule=dm)
    scale = DivideBy255()
    sampler = EpochSampler(dm.train_dataset, seed=1)
    fixed = AVMNISTAudioDataset(tree, "train", "burst_noise")
    per_epoch = AVMNISTAudioDataset(tree, "train", "burst_noise", draws="per_epoch")
    seen = {}
    for epoch in (0, 1):
        batches = [batch for e, batch in model.seen["train"] if e == epoch]
        audio = torch.cat([b[0] for b in batches])
        order = [dm.train_dataset.indices[k] for k in sampler.order(epoch)]
        per_epoch.set_epoch(epoch)
        expected = torch.stack([scale(per_epoch[i][0]) for i in order])
        assert torch.equal(audio, expected), f"epoch {epoch}: training items are not the dataset's at that epoch"
        seen[epoch] = dict(zip(order, audio))
        val = torch.cat([b[0] for e, b in model.seen["val"] if e == epoch])
        assert torch.equal(val, torch.stack([scale(fixed[i][0]) for i in dm.val_dataset.indices]))
    changed = sum(not torch.equal(seen[0][i], seen[1][i]) for i in seen[0])
    assert changed > 0, "no training item changed between epochs 0 and 1"
