"""Continuing a finished schedule for more epochs (the demo's rounds until the quality gate passes)."""
from __future__ import annotations

import pytest
import torch

from evalcore.unet.model import UNetConfig
from evalcore.unet.toy import toy_samples
from evalcore.unet.train import load_checkpoint, train

TINY = dict(encoder="tu-mobilenetv3_small_050", image_size=32, decoder_channels=(16, 16, 8, 8, 8), batch_size=4)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_more_epochs_continue_a_finished_run_with_a_warm_restart(tmp_path):
    data = toy_samples(8, 40, seed=2)
    cfg = UNetConfig(**TINY, epochs=2, patience=5, precision="fp32")
    lines = []
    first = train(cfg, data, data, checkpoint_dir=tmp_path, threads=1, log=lines.append)
    assert first.epochs_run == 2
    longer = cfg.replace(epochs=4)
    second = train(longer, data, data, checkpoint_dir=tmp_path, threads=1, log=lines.append)
    assert second.epochs_run == 4 and [h["epoch"] for h in second.history] == [1, 2, 3, 4]
    assert any("extending from 2 to 4 epochs" in line for line in lines)
    # the restart: epoch 3 learns at a fresh rate, not the finished schedule's ~0
    assert second.history[2]["learning_rate"] > 10 * second.history[1]["learning_rate"]
    assert load_checkpoint(tmp_path / "last.pt")["config"]["epochs"] == 4
    # anything but more epochs is still refused
    with pytest.raises(ValueError, match="only more epochs may differ"):
        train(longer.replace(epochs=6, learning_rate=5e-4), data, data, checkpoint_dir=tmp_path, threads=1)
