"""The monitor's callbacks with the real trainers on tiny models: Lightning's Trainer (logging to a CSV logger) and
Hugging Face's Trainer (a tiny randomly initialised BERT); nothing is downloaded."""

from __future__ import annotations

import csv

import pytest
import torch
from conftest import import_torchvision
from torch import nn

import_torchvision()  # Lightning (through torchmetrics) and transformers import it where installed


def _data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, 0] > 0).long()


def test_lightning_callback_logs_through_the_trainers_logger(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import CSVLogger

    from actlab.integrations.lightning import ActivationMonitor

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))

        def training_step(self, batch, _):  # calls a submodule, never self(): the callback marks the steps
            x, y = batch
            return nn.functional.cross_entropy(self.body(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    callback = ActivationMonitor(log_every_n_steps=4, every=1)
    trainer = pl.Trainer(max_epochs=2, logger=CSVLogger(str(tmp_path), name="run"), callbacks=[callback],
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         accelerator="cpu", log_every_n_steps=1)
    trainer.fit(Net(), loader)
    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    logged = [r for r in rows if r.get("actlab/body.1/dead")]
    assert [int(r["step"]) for r in logged] == [4, 8, 12, 16]  # 16 batches, a window of 4 each
    assert {"actlab/body.1/saturated", "actlab/body.3/grad_norm"} <= set(rows[0])
    assert all(0.0 <= float(r["actlab/body.1/dead"]) <= 1.0 for r in logged)
    assert float(logged[0]["actlab/body.3/grad_norm"]) > 0  # backward ran inside each marked step
    assert callback.monitor is not None and not callback.monitor.running
    assert callback.monitor.steps == 16
    with pytest.raises(ValueError, match="window="):
        ActivationMonitor(window=5)
    with pytest.raises(ValueError, match="log_every_n_steps=0"):
        ActivationMonitor(log_every_n_steps=0)


def _tiny_bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    return transformers, transformers.BertForSequenceClassification(config)


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 64, (n, 12), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": int(self.ids[i, 0] % 2)}


def test_transformers_callback_joins_the_trainers_log(tmp_path):
    transformers, model = _tiny_bert()
    pytest.importorskip("accelerate")
    from actlab.integrations.transformers import ActivationMonitorCallback

    callback = ActivationMonitorCallback(every=1)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=6,
                                          logging_steps=3, report_to=[], save_strategy="no", use_cpu=True,
                                          gradient_accumulation_steps=2, learning_rate=1e-3)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens(), callbacks=[callback])
    trainer.train()
    entries = [e for e in trainer.state.log_history if any(k.startswith("actlab/") for k in e)]
    assert [e["step"] for e in entries] == [3, 6]
    site = "bert.encoder.layer.0.intermediate.intermediate_act_fn"
    assert all("loss" in e for e in entries)  # joined the trainer's own entries
    assert entries[0][f"actlab/{site}/dead"] >= 0.0 and entries[0][f"actlab/{site}/grad_norm"] > 0
    assert callback.monitor.steps == 6  # optimizer steps, two micro-batches each
    assert callback.monitor.summary()["observations"].max() == 3 * 2  # forward calls in the last window
    assert not callback.monitor.running

    own = ActivationMonitorCallback(log_every_n_steps=2, every=2)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens(), callbacks=[own])
    trainer.train()
    steps = [e["step"] for e in trainer.state.log_history if f"actlab/{site}/dead" in e]
    assert steps == [2, 4, 6]
    with pytest.raises(ValueError, match="log_every_n_steps=-1"):
        ActivationMonitorCallback(log_every_n_steps=-1)


def test_from_pretrained_registers_actlab_first(tmp_path):
    transformers, model = _tiny_bert()
    import actlab
    from actlab.integrations import transformers as hf

    actlab.swap(model, "swish(beta=1.5)")
    model.save_pretrained(tmp_path)
    loaded = hf.from_pretrained(transformers.BertForSequenceClassification, tmp_path)
    assert loaded.config.hidden_act == "actlab:swish(beta=1.5)"
    with pytest.raises(TypeError, match="from_pretrained"):
        hf.from_pretrained(object, tmp_path)


def test_lightning_windows_count_optimizer_steps_under_gradient_accumulation(tmp_path):
    """With accumulate_grad_batches=4 the windows counted batches and logged at repeated global steps."""
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import CSVLogger

    from actlab.integrations.lightning import ActivationMonitor

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.body(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)  # 16 batches
    callback = ActivationMonitor(log_every_n_steps=2, every=1)
    trainer = pl.Trainer(max_epochs=1, logger=CSVLogger(str(tmp_path), name="run"), callbacks=[callback],
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         accelerator="cpu", log_every_n_steps=1, accumulate_grad_batches=4)
    trainer.fit(Net(), loader)
    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    assert [int(r["step"]) for r in rows if r.get("actlab/body.1/dead")] == [2, 4]  # 4 optimizer steps
    assert callback.monitor.steps == 4
    assert callback.monitor.summary()["observations"][0] == 2 * 4  # two steps of four batches each


def test_transformers_callback_with_epoch_and_no_logging(tmp_path):
    """logging_strategy="epoch" or "no" logged nothing and the window grew for the whole run."""
    transformers, model = _tiny_bert()
    pytest.importorskip("accelerate")
    from actlab.integrations.transformers import ActivationMonitorCallback

    site = "bert.encoder.layer.0.intermediate.intermediate_act_fn"
    for strategy, expected in (("epoch", [8, 16]), ("no", [16])):
        callback = ActivationMonitorCallback(every=1)
        args = transformers.TrainingArguments(output_dir=str(tmp_path / strategy), per_device_train_batch_size=4,
                                              num_train_epochs=2, logging_strategy=strategy, report_to=[],
                                              save_strategy="no", use_cpu=True, learning_rate=1e-3)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens(), callbacks=[callback])
        trainer.train()
        steps = [e["step"] for e in trainer.state.log_history if f"actlab/{site}/dead" in e]
        assert steps == expected, (strategy, trainer.state.log_history)
