"""The matched display and the machine blinding audit on three simulated sources (no Django).

The sources are simulated with the traits that gave them away: volunteers in steps of 1/N, a model with a
faint low-value wash over the whole frame, an arc finder with one flat value and hard edges."""
from __future__ import annotations

import numpy as np
import pytest

from evalcore.pixels import matched, rendering
from evalcore.study import blinding_audit as ba

SIZE = 64
N_GALAXIES = 24
PANEL = 128  # a smaller panel grid than the site's keeps the unit tier fast; the rule is the same


def arms(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    r = np.hypot(x, y) + 1e-6
    theta = np.arctan2(y, x) + rng.uniform(0, np.pi)
    a = np.clip(np.cos(2 * (theta - rng.uniform(1.5, 3) * np.log(r))), 0, 1) ** 3 * np.exp(-r / (SIZE * 0.3))
    a[r < SIZE * 0.08] = 0
    return a / a.max()


def source_maps(seed: int) -> dict[str, np.ndarray]:
    a = arms(seed)
    rng = np.random.default_rng(seed + 7)
    n = 7
    volunteers = np.round(np.clip(a * 1.3 + rng.normal(0, 0.05, a.shape), 0, 1) * n) / n
    model = np.clip(0.03 + 0.9 * a + rng.normal(0, 0.02, a.shape), 0.02, 1)
    model = np.round(model * 255) / 255
    arcs = (a > 0.45).astype(np.float32)
    if seed % 5 == 0:
        arcs[:] = 0  # the arc finder found nothing here
    return {"volunteers": volunteers, "model": model, "sparcfire": arcs}


LEVELS = {"volunteers": 0.5, "model": 0.4, "sparcfire": 0.5}


def raw_soft(fractions: np.ndarray, variant: str) -> np.ndarray:
    from PIL import Image

    f = np.asarray(Image.fromarray((fractions * 255).astype(np.uint8)).resize((PANEL, PANEL),
                                                                              Image.Resampling.BILINEAR))
    rgba = rendering.overlay_rgba(f / 255.0)
    if variant == "mask":
        return np.where(rgba[..., 3:] > 0, rgba[..., :3], 0).astype(np.uint8)
    return rgba


def panels(display: str, n: int = 40) -> list[ba.Panel]:
    out = []
    for g in range(n):
        for source, f in source_maps(g).items():
            pictures = {}
            for variant in matched.VARIANTS:
                if display == "matched":
                    px = matched.matched_pixels(f, LEVELS[source], variant, size=PANEL)
                elif display == "matched_soft":
                    px = matched.matched_soft_pixels(f, variant, size=PANEL)
                else:
                    px = raw_soft(f, variant)
                pictures[variant] = matched.encode(px)
            blank = not ba.decode(pictures["mask"]).any()
            fragment = '<fieldset class="panel"><legend>Mask A</legend>' + (
                '<p class="nothing-marked">Nothing marked</p>' if blank else "") + "</fieldset>"
            out.append(ba.Panel(source=source, galaxy=f"g{g}", pictures=pictures, fragment=fragment))
    return out


def test_matched_panels_share_structure_and_levels():
    by_source: dict[str, list] = {}
    for p in panels("matched", n=10):
        for variant, data in p.pictures.items():
            chunks = [name for name, _ in ba.png_chunks(data)]
            assert chunks == ["IHDR", "IDAT", "IEND"]
            px = ba.decode(data)
            assert matched.encode(px) == data  # the bytes follow from the pixels alone
            colours = {tuple(c) for c in px.reshape(-1, px.shape[-1])}
            by_source.setdefault(p.source, set()).update((variant, c) for c in colours)
    assert by_source["volunteers"] == by_source["model"] == by_source["sparcfire"]
    assert by_source["model"] == {("mask", (0, 0, 0)), ("mask", matched.MASK_COLOUR),
                                  ("layer", (0, 0, 0, 0)), ("layer", (*matched.MASK_COLOUR, 255))}


def test_empty_panels_are_identical_whatever_the_source():
    empty = np.zeros((SIZE, SIZE), np.float32)
    wash = np.full((SIZE, SIZE), 0.1, np.float32)  # a model's faint wash below its level
    for variant in matched.VARIANTS:
        expected = matched.encode(matched.blank_pixels(variant))
        assert matched.encode(matched.matched_pixels(empty, 0.5, variant)) == expected
        assert matched.encode(matched.matched_pixels(wash, 0.3, variant)) == expected
        assert matched.encode(matched.matched_soft_pixels(wash, variant)) == expected  # below the floor


def test_soft_option_uses_the_common_level_set_only():
    for p in panels("matched_soft", n=6):
        px = ba.decode(p.pictures["mask"])
        colours = {tuple(c) for c in px.reshape(-1, 3)} - {(0, 0, 0)}
        assert colours <= set(matched.SOFT_COLOURS)


@pytest.fixture(scope="module")
def audits():
    return {d: ba.audit(panels(d, n=N_GALAXIES), n_boot=500) for d in ("matched", "soft")}


def test_audit_holds_on_the_matched_display(audits):
    p = audits["matched"]["presentation"]
    assert p["n"] == 3 * N_GALAXIES and p["galaxies"] == N_GALAXIES
    assert p["low"] <= p["chance"], p  # the 95% interval includes chance
    assert not p["above_chance"]
    assert ba.verdict(audits["matched"]).startswith("holds")


def test_audit_names_the_source_on_the_raw_soft_display(audits):
    p = audits["soft"]["presentation"]
    assert p["accuracy"] > 0.8 and p["above_chance"], p
    assert p["leaking"]
    assert ba.verdict(audits["soft"]).startswith("LEAKS")


def test_content_differences_are_reported_separately(audits):
    content = audits["matched"]["content"]
    assert set(audits["matched"]["content_means"]) == {"volunteers", "model", "sparcfire"}
    assert content["accuracy"] > content["chance"]  # the masks do differ in what they mark
