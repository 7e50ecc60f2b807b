"""The dashboard's figures: PNGs drawn from the statistics tables in colour-blind-safe colours."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from evalcore.study import plots
from evalcore.study.stats import summary_tables
from tests.unit.stats_records import reference_study


@pytest.fixture(scope="module")
def tables():
    answers = reference_study()
    guesses = pd.DataFrame({
        "study": "s", "rater": [f"r{i % 4}" for i in range(40)], "item": [f"g{i:03d}:spiral" for i in range(40)],
        "structure": "spiral", "panel_position": 1, "true_source": ["model", "volunteers"] * 20,
        "guessed_source": ["model", "volunteers", "model", "model"] * 10, "n_choices": 3,
    })
    return summary_tables(answers, guesses, n_boot=20)


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _has_colour(pixels: np.ndarray, hex_colour: str, min_pixels: int = 50) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(int) - rgb).sum(axis=2) <= 6).sum()) >= min_pixels


def test_every_figure_is_a_png_drawn_from_its_table(tables):
    figures = plots.all_plots(tables)
    assert set(figures) == set(plots.PLOTS)
    for name, png in figures.items():
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.width >= 400 and image.height >= 150, name


def test_quality_bars_use_the_four_level_colours_and_one_panel_per_structure(tables):
    pixels = _rgb(plots.quality_bars(tables["quality_levels"]))
    for colour in plots.LEVEL_COLOURS:
        assert _has_colour(pixels, colour), colour
    one_structure = tables["quality_levels"][tables["quality_levels"]["structure"] == "spiral"]
    assert _rgb(plots.quality_bars(one_structure)).shape[0] < pixels.shape[0]


def test_level_colours_are_okabe_ito_and_separable_in_lightness():
    assert set(plots.LEVEL_COLOURS) <= set(plots.OKABE_ITO.values())
    # a reader without colour vision still tells the levels apart: distinct luminance, dark-light-light-dark
    lum = [0.2126 * int(c[1:3], 16) + 0.7152 * int(c[3:5], 16) + 0.0722 * int(c[5:7], 16) for c in plots.LEVEL_COLOURS]
    assert len({round(v) for v in lum}) == 4


def test_source_colours_are_stable_and_distinct():
    first = plots.source_colours(["volunteers", "model", "sparcfire"])
    assert first == plots.source_colours(["sparcfire", "model", "volunteers", "model"])
    assert len(set(first.values())) == 3


def test_blinding_plot_marks_chance(tables):
    pixels = _rgb(plots.blinding_plot(tables["blinding_audit"]))
    assert _has_colour(pixels, plots.OKABE_ITO["vermillion"], min_pixels=20)


@pytest.mark.parametrize("name", list(plots.PLOTS))
def test_empty_tables_draw_nothing(tables, name):
    table, draw = plots.PLOTS[name]
    assert draw(tables[table].iloc[0:0]) is None
