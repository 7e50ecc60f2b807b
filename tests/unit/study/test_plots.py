"""The dashboard's figures: PNGs drawn from the statistics tables in colour-blind-safe colours."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
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


def _levels_table(percents: dict[str, list[float]]) -> pd.DataFrame:
    """A quality_levels table: per source the percent at levels 0-3 out of 200 rated answers."""
    from evalcore.study.stats import QUALITY_LABELS

    rows = [{"study": "s", "structure": "spiral", "source": source, "level": level,
             "label": QUALITY_LABELS[level], "n": round(2 * p), "n_rated": 200, "percent": p}
            for source, values in percents.items() for level, p in enumerate(values)]
    return pd.DataFrame(rows)


def test_every_segment_of_the_quality_bars_carries_its_number_without_overlaps():
    percents = {"model": [1.5, 3.0, 40.5, 55.0], "volunteers": [2.0, 2.5, 4.5, 91.0],
                "sparcfire": [0.0, 12.0, 33.0, 55.0]}
    fig = plots.quality_figure(_levels_table(percents))
    (ax,) = fig.axes
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for t in ax.texts if t.get_text().endswith("%")]
    want = sorted(f"{p:.0f}%" for values in percents.values() for p in values if p > 0)
    assert sorted(t.get_text() for t in texts) == want  # one number per drawn segment, none for 0%
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    bars = [p.get_window_extent(renderer) for p in ax.patches if p.get_width() > 0]
    for text, box in zip(texts, boxes):
        inside = [b for b in bars if b.contains(*box.get_points().mean(axis=0))]
        # a number sits on its own segment or clear of every bar, never half over a neighbour
        assert len(inside) <= 1
        if not inside:
            assert not any(box.overlaps(b) for b in bars), text.get_text()
    # the page's figure is this one as PNG
    assert plots.quality_bars(_levels_table(percents))[:8] == b"\x89PNG\r\n\x1a\n"
