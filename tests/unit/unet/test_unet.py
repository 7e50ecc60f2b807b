"""The U-Net package: learning, exact resume, loss masking, augmentation alignment, output contract."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evalcore.unet.augment import Geometry, apply_geometry, random_geometry
from evalcore.unet.data import (
    EMPTY,
    MARKED,
    NOT_ASKED,
    FractionDataset,
    Sample,
    field_box,
    labels_outside_field,
    loss_weights,
    postprocess,
    postprocess_batch,
    preprocess,
    preprocess_batch,
)
from evalcore.unet.infer import Predictor, calibration_images, fraction_difference
from evalcore.unet.losses import masked_loss
from evalcore.unet.model import UNetConfig, build_model, load_model, model_bytes
from evalcore.unet.toy import toy_samples
from evalcore.unet.train import TrainingDiverged, load_checkpoint, train

# the smallest encoder that builds offline; keeps every test to seconds on a shared 2-core machine
TINY = dict(encoder="tu-mobilenetv3_small_050", image_size=32, decoder_channels=(16, 16, 8, 8, 8), batch_size=4)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**changes) -> UNetConfig:
    return UNetConfig(**{**TINY, **changes})


def test_config_round_trips_and_refuses_bad_values():
    cfg = tiny_config(loss="bce", crop_area=(0.5, 0.9))
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown U-Net configuration key"):
        UNetConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="loss must be one of"):
        tiny_config(loss="hinge")
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_config(image_size=100)


def test_sample_states_and_bad_input():
    img = np.zeros((20, 20, 3), np.uint8)
    s = Sample(img, spiral=np.zeros((20, 20)), bar=None)
    assert (s.state("spiral"), s.state("bar")) == (EMPTY, NOT_ASKED)
    s.spiral[3, 4] = 0.4
    assert s.state("spiral") == MARKED
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        Sample(img.astype(np.float32))
    with pytest.raises(ValueError, match="bar map of sample 'g1' has shape"):
        Sample(img, bar=np.zeros((10, 20)), key="g1")
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\]"):
        Sample(img, spiral=np.full((20, 20), 1.5))


def test_loss_weights_follow_the_masking_rules():
    img = np.zeros((8, 8, 3), np.uint8)
    marked = np.zeros((8, 8), np.float32)
    marked[2, 2] = 0.5
    empty = np.zeros((8, 8), np.float32)
    study = tiny_config(empty_bar_teaches_no_bar=False)
    assert loss_weights(Sample(img, spiral=marked, bar=None), study).tolist() == [1, 0]
    assert loss_weights(Sample(img, spiral=empty, bar=empty), study).tolist() == [1, 0]  # study: empty bar out
    assert loss_weights(Sample(img, spiral=empty, bar=empty), tiny_config()).tolist() == [1, 1]  # our default
    teach = tiny_config(empty_bar_teaches_no_bar=True, empty_spiral_teaches_no_spiral=False)
    assert loss_weights(Sample(img, spiral=empty, bar=empty), teach).tolist() == [0, 1]
    assert loss_weights(Sample(img, spiral=None, bar=marked), teach).tolist() == [0, 1]


@pytest.mark.parametrize("kind", ["l1", "mse", "bce"])
def test_not_asked_maps_contribute_nothing_to_loss_or_gradient(kind):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 6, 6, generator=gen, requires_grad=True)
    target = torch.rand(3, 2, 6, 6, generator=gen)
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    loss = masked_loss(logits, target, weight, kind)
    loss.backward()
    grad = logits.grad
    assert torch.count_nonzero(grad[0, 1]) == 0 and torch.count_nonzero(grad[1, 0]) == 0
    assert torch.count_nonzero(grad[0, 0]) > 0 and torch.count_nonzero(grad[2, 1]) > 0
    # whatever an ignored map holds - even NaN - the loss is the same
    other = target.clone()
    other[0, 1] = float("nan")
    other[1, 0] = 1.0 - other[1, 0]
    assert torch.equal(masked_loss(logits.detach(), other, weight, kind), loss.detach())


def test_tiny_model_loss_falls_over_a_few_steps():
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_model(cfg)
    ds = FractionDataset(toy_samples(8, 48, seed=3), cfg, augment=False)
    images, target, weight = (torch.stack(t) for t in zip(*[ds[i] for i in range(len(ds))]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = masked_loss(model(images), target, weight, "l1")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_restores_the_exact_state(tmp_path):
    cfg = tiny_config(epochs=3, patience=5, seed=7)
    train_set, val_set = toy_samples(8, 40, seed=1), toy_samples(4, 40, seed=2)
    straight = train(cfg, train_set, val_set, checkpoint_dir=tmp_path / "a", threads=1)
    assert straight.stopped == "completed" and straight.epochs_run == 3

    seen = []
    cut = train(cfg, train_set, val_set, checkpoint_dir=tmp_path / "b", threads=1,
                progress=lambda r: seen.append(r.epoch), should_stop=lambda: seen == [1])
    assert cut.stopped == "cancelled" and cut.epochs_run == 1 and seen == [1]
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1

    resumed = train(cfg, train_set, val_set, checkpoint_dir=tmp_path / "b", threads=1,
                    progress=lambda r: seen.append(r.epoch))
    assert seen == [1, 2, 3]
    last_a = load_checkpoint(tmp_path / "a" / "last.pt")
    last_b = load_checkpoint(tmp_path / "b" / "last.pt")
    for k, v in last_a["model"].items():
        assert torch.equal(v, last_b["model"][k]), k
    assert [h["val_loss"] for h in last_a["history"]] == [h["val_loss"] for h in last_b["history"]]
    assert [h["train_loss"] for h in last_a["history"]] == [h["train_loss"] for h in last_b["history"]]
    assert last_a["optimizer"]["state"][0]["exp_avg"].equal(last_b["optimizer"]["state"][0]["exp_avg"])
    for k, v in _state(straight.model).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.best_epoch == straight.best_epoch


def test_training_reports_the_labels_its_field_of_view_cuts_off():
    lines = []
    train_set = toy_samples(6, 40, seed=1)
    result = train(tiny_config(epochs=1, field_of_view=0.5), train_set, toy_samples(2, 40, seed=2), threads=1,
                   log=lines.append)
    expected = labels_outside_field(train_set, 0.5)
    assert expected["fraction"] > 0  # the toy galaxies reach beyond the central half
    said = [line for line in lines if line.startswith("field of view 0.5 of the frame")]
    assert said and f"{expected['fraction']:.2%} of the training labels" in said[0]
    assert result.config.field_of_view == 0.5


def test_resume_refuses_another_configuration(tmp_path):
    cfg = tiny_config(epochs=1)
    data = toy_samples(4, 32, seed=1)
    train(cfg, data, data, checkpoint_dir=tmp_path, threads=1)
    with pytest.raises(ValueError, match="different configuration"):
        train(cfg.replace(learning_rate=0.5), data, data, checkpoint_dir=tmp_path, threads=1)


def _asymmetric_pattern(size=32):
    m = np.zeros((size, size), np.float32)
    m[6:26, 8:12] = 1.0  # an L: no rotation or mirror maps it onto itself
    m[22:26, 8:22] = 1.0
    return m


def test_augmentation_keeps_image_and_masks_aligned():
    pattern = _asymmetric_pattern()
    image = torch.from_numpy(np.stack([pattern, 1 - pattern, pattern * 0.5]))
    maps = torch.from_numpy(np.stack([pattern, pattern[::-1].copy()]))
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(10):
        g = random_geometry(rng)
        img2, maps2 = apply_geometry(g, image, maps)
        assert torch.allclose(img2[0], maps2[0], atol=1e-6)
        assert torch.allclose(img2[2], 0.5 * maps2[0], atol=1e-6)
        changed += not torch.allclose(maps2[0], maps[0], atol=0.05)
    assert changed == 10


def test_geometry_means_what_it_says():
    pattern = torch.from_numpy(_asymmetric_pattern())[None]
    (half_turn,) = apply_geometry(Geometry(angle_deg=180.0), pattern)
    assert torch.allclose(half_turn, torch.flip(pattern, dims=(1, 2)), atol=1e-5)
    (mirrored,) = apply_geometry(Geometry(mirror=True), pattern)
    assert torch.allclose(mirrored, torch.flip(pattern, dims=(2,)), atol=1e-5)
    (zoomed,) = apply_geometry(Geometry(half_width=0.5, half_height=0.5, centre_x=-0.5, centre_y=-0.5), pattern)
    # the top-left quadrant, magnified 2x: four times its mass, none of the rest
    assert zoomed[0].sum().item() == pytest.approx(4 * pattern[0, :16, :16].sum().item(), rel=0.15)
    assert pattern[0, :16, :16].sum() < pattern[0].sum() / 2


def test_dataset_augments_deterministically_per_epoch():
    cfg = tiny_config()
    ds = FractionDataset(toy_samples(2, 40, seed=5), cfg, augment=True, seed=3)
    a = ds[1][0]
    assert torch.equal(a, ds[1][0])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[1][0])


def test_preprocess_and_postprocess_contract():
    cfg = tiny_config()
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    x = preprocess(img, cfg)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    back = postprocess(torch.full((2, 32, 32), 0.25), img.shape)
    assert back.shape == (2, 50, 70) and np.allclose(back, 0.25)
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(img.astype(np.float32), cfg)


def test_percentile_input_norm_makes_the_display_stretch_irrelevant_and_old_models_keep_theirs():
    cfg = tiny_config()
    assert cfg.input_norm == "percentile"
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:48, 0:48]
    light = 60 * np.exp(-np.hypot(rows - 24, cols - 24) / 6)
    dark = np.clip(light[..., None] * [1.0, 0.9, 0.8] + rng.normal(8, 2, (48, 48, 3)), 0, 255).astype(np.uint8)
    bright = np.clip(dark.astype(np.float32) * 3, 0, 255).astype(np.uint8)  # the same galaxy, stretched
    a, b = preprocess(dark, cfg), preprocess(bright, cfg)
    assert float(a.max()) == 1.0 and float(a.min()) == 0.0
    assert float((a - b).abs().max()) < 0.03  # the network sees (almost) the same picture
    none = tiny_config(input_norm="none")
    assert float((preprocess(dark, none) - preprocess(bright, none)).abs().max()) > 0.3
    # colours keep their ratios: one stretch for all channels
    centre = a[:, 12:20, 12:20].mean(dim=(1, 2))
    assert centre[0] > centre[1] > centre[2]
    # a flat image has no range to stretch: divided by 255 only
    assert torch.allclose(preprocess(np.full((40, 40, 3), 77, np.uint8), cfg), torch.full((3, 32, 32), 77 / 255))
    # a configuration stored before the option existed was trained without it, and is applied without it
    stored = {k: v for k, v in cfg.to_dict().items() if k != "input_norm"}
    assert UNetConfig.from_dict(stored).input_norm == "none"
    assert UNetConfig.from_dict(cfg.to_dict()).input_norm == "percentile"
    with pytest.raises(ValueError, match="input_norm must be one of"):
        tiny_config(input_norm="zscore")


def test_percentile_stretch_from_a_pixel_sample_matches_the_whole_image_within_a_grey_level():
    from evalcore.unet.data import NORM_PERCENTILES, NORM_SAMPLE, normalise

    cfg = tiny_config()
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:256, 0:256]
    light = 200 * np.exp(-np.hypot(rows - 128, cols - 110) / 20)
    image = np.clip(light[None] * np.array([1.0, 0.8, 0.6])[:, None, None] + rng.normal(15, 4, (3, 256, 256)),
                    0, 255)
    t = torch.from_numpy(image).float()[None]
    assert t[0].numel() > 10 * NORM_SAMPLE  # the sample is a small part of the image
    lo, hi = torch.quantile(t.flatten(1), torch.tensor(NORM_PERCENTILES) / 100.0, dim=1)
    whole = ((t - lo) / (hi - lo)).clamp(0.0, 1.0)
    assert float((normalise(t.clone(), cfg) - whole).abs().max()) < 1 / 255


def test_non_square_images_are_padded_not_stretched_and_masks_come_back_in_their_frame():
    """A round galaxy in a wide frame stays round on the network grid; the padding is its sky's colour; a map
    drawn on the network grid comes back on the image's own pixels, at the same place."""
    cfg = tiny_config(input_norm="none")  # pixel values as stored, to see the padding's colour
    rows, cols = np.mgrid[0:40, 0:80]
    disc = np.hypot(rows - 19.5, cols - 49.5) < 8
    img = np.full((40, 80, 3), 20, np.uint8)
    img[disc] = 230
    x = preprocess(img, cfg)[0]  # 80 px wide -> 32 px: 0.4 network px per image px, both ways
    bright = (x > 0.5).numpy()
    r, c = np.nonzero(bright)
    assert (r.max() - r.min()) == pytest.approx(c.max() - c.min(), abs=1)  # round, not squashed
    assert abs(x[:8].mean() - 20 / 255) < 0.01  # the rows added above are the sky's colour
    labels = Sample(img, spiral=disc.astype(np.float32))
    target = FractionDataset([labels], cfg, augment=False)[0][1][0].numpy()
    assert np.array_equal(target > 0.5, bright)  # the label is padded (with 0) exactly like the image
    back = postprocess(torch.from_numpy(np.stack([target, target])), img.shape)
    assert back.shape == (2, 40, 80)
    assert ((back[0] > 0.5) & disc).sum() >= 0.9 * disc.sum() and ((back[0] > 0.5) & ~disc).sum() <= 0.1 * disc.sum()


def test_field_of_view_feeds_the_centre_and_puts_the_masks_back_in_place():
    cfg = tiny_config(field_of_view=0.5)
    assert field_box((64, 80, 3), 0.5) == (slice(16, 48), slice(20, 60))
    assert field_box((3, 3), 0.1) == (slice(0, 2), slice(0, 2))  # never below 2 px
    img = np.random.default_rng(4).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    assert torch.equal(preprocess(img, cfg), preprocess(np.ascontiguousarray(img[16:48, 20:60]), tiny_config()))
    back = postprocess(torch.full((2, 32, 32), 0.25), img.shape, cfg.field_of_view)
    assert back.shape == (2, 64, 80)
    assert np.allclose(back[:, 16:48, 20:60], 0.25) and back.sum() == pytest.approx(0.25 * 2 * 32 * 40)
    # the training target sees the same part of the frame as the image: a bar marked only near the corner is
    # outside the field of view, one at the centre lands at the centre of the network grid
    corner, centre = np.zeros((64, 80), np.float32), np.zeros((64, 80), np.float32)
    corner[2:8, 2:8] = 1.0
    centre[28:36, 36:44] = 1.0
    ds = FractionDataset([Sample(img, spiral=corner, bar=centre)], cfg, augment=False)
    _, target, _ = ds[0]
    assert target[0].max() == 0 and target[1, 13:19, 13:19].min() > 0.9 and target[1, :8].max() == 0
    with pytest.raises(ValueError, match="field_of_view must be a fraction"):
        tiny_config(field_of_view=1.5)
    # what the field of view cuts off the labels: the corner spiral (36 px) of 36 + 64 marked px
    cut = labels_outside_field([Sample(img, spiral=corner, bar=centre, key="g7"), Sample(img, bar=centre)], 0.5)
    assert cut == {"fraction": pytest.approx(36 / 164), "worst": pytest.approx(36 / 100), "worst_key": "g7"}
    assert labels_outside_field([Sample(img, bar=centre)], 0.5)["worst_key"] is None


def test_predictor_masks_are_zero_outside_the_field_of_view():
    cfg = tiny_config(field_of_view=0.5)
    torch.manual_seed(1)
    img = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = Predictor(model_bytes(build_model(cfg), cfg), device="cpu", mode="fp32").predict_one(img)
    inside = np.zeros((64, 64), bool)
    inside[16:48, 16:48] = True
    assert out.shape == (2, 64, 64) and (out[:, ~inside] == 0).all() and (out[:, inside] > 0).all()


@pytest.mark.parametrize("field_of_view", [1.0, 0.6])
def test_batched_pre_and_postprocessing_equal_the_one_image_functions(field_of_view):
    """Inference resizes a batch in one call; it must be bit for bit what training's per-image function gives."""
    cfg = tiny_config(field_of_view=field_of_view)
    rng = np.random.default_rng(2)
    same = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    mixed = same[:2] + [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)]
    for images in (same, mixed):
        assert torch.equal(preprocess_batch(images, cfg), torch.stack([preprocess(im, cfg) for im in images]))
        preds = torch.rand(len(images), 2, 32, 32)
        batched = postprocess_batch(preds, [im.shape for im in images], field_of_view)
        single = [postprocess(p, im.shape, field_of_view) for p, im in zip(preds, images)]
        assert all(np.array_equal(b, s) for b, s in zip(batched, single))
        assert [b.shape for b in batched] == [(2, *im.shape[:2]) for im in images]
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess_batch([same[0], same[1][..., :2]], cfg)
    with pytest.raises(ValueError, match="2 predictions for 3"):
        postprocess_batch(torch.rand(2, 2, 32, 32), [im.shape for im in mixed])


def test_predictor_outputs_fractions_at_each_image_size(tmp_path):
    cfg = tiny_config()
    torch.manual_seed(1)
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(40, 50, 3), (70, 70, 3), (33, 90, 3)]]
    plain = Predictor(model_bytes(model, cfg), device="cpu", mode="fp32", batch_size=3)
    for mode in ("auto", "int8"):
        calibration = calibration_images(images, cfg)
        predictor = Predictor(model_bytes(model, cfg, calibration=calibration), device="cpu", mode=mode, batch_size=2)
        out = predictor.predict(images)
        # with calibration images a CPU runs int8 once it passes its check, with or without native bf16
        assert predictor.describe()["mode"] == "int8" and predictor.int8_check["p99"] <= 0.02
        assert [o.shape for o in out] == [(2, 40, 50), (2, 70, 70), (2, 33, 90)]
        for o in out:
            assert o.dtype == np.float32 and o.min() >= 0.0 and o.max() <= 1.0 and np.ptp(o) > 0
        diff = fraction_difference(predictor, plain, images)
        assert diff["p99"] <= 0.02, (predictor.describe(), diff)
    no_calibration = Predictor(model_bytes(model, cfg), device="cpu")
    if not no_calibration.describe()["mode"] == "reduced":  # a CPU without native bf16
        assert no_calibration.describe()["mode"] == "channels_last"
        assert fraction_difference(no_calibration, plain, images)["max"] < 1e-4  # same arithmetic, reordered
    _, cfg2, metadata = load_model(model_bytes(model, cfg, {"run": 3}))
    assert cfg2 == cfg and metadata == {"run": 3}


def test_model_file_errors_are_clear(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable model file"):
        Predictor(bad)
    with pytest.raises(FileNotFoundError):
        Predictor(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="needs its UNetConfig"):
        Predictor(build_model(tiny_config()))


def test_cuda_request_without_cuda_is_an_error():
    from evalcore.unet.device import pick_device

    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")
    assert pick_device("cpu").type == "cpu"
    assert math.isfinite(torch.ones(1).sum().item())


def test_train_refuses_empty_selections_and_early_stops(tmp_path):
    cfg = tiny_config(epochs=6, patience=1, min_delta=1.0)
    data = toy_samples(4, 32, seed=4)
    with pytest.raises(ValueError, match="no validation samples"):
        train(cfg, data, [], threads=1)
    with pytest.raises(ValueError, match="no training samples"):
        train(cfg, [], data, threads=1)
    reports = []
    result = train(cfg, data, data, threads=1, progress=reports.append)
    # no epoch can beat the first by min_delta = 1 (losses are < 1): patience 1 stops after epoch 2
    assert result.stopped == "early_stopping" and result.epochs_run == 2 and len(result.history) == 2
    assert result.best_epoch == 1 and result.best_val_loss == reports[0].val_loss
    assert reports[-1].eta_s >= 0 and reports[-1].elapsed_s > 0
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(cfg.replace(learning_rate=1e4, grad_clip=1e6, min_delta=0.0), data, data, threads=1)


def test_time_budget_stops_between_epochs():
    cfg = tiny_config(epochs=50, patience=50)
    data = toy_samples(4, 32, seed=6)
    result = train(cfg, data, data, threads=1, time_budget_s=0.001)
    assert result.stopped == "time_budget" and result.epochs_run == 1 and len(result.history) == 1
