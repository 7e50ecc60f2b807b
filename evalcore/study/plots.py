"""Figures of a rating study's outcome tables (Django-free; matplotlib's Agg canvas, PNG bytes out).

Every function takes one table of ``evalcore.study.stats.summary_tables`` and returns PNG bytes, or None when
the table has nothing to draw. Colours are the Okabe-Ito palette (distinguishable with the common
colour-vision deficiencies), and every bar and every segment of a stacked bar carries its number, so
nothing depends on colour alone.
"""
from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color universal design"
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
# the four quality levels, worst to best: warm for failure, cool for success, ordered in lightness
LEVEL_COLOURS = ("#D55E00", "#E69F00", "#56B4E9", "#0072B2")
LEVEL_TEXT = ("white", "black", "black", "white")
SOURCE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
TIE_COLOUR = "#999999"
DPI = 100
FONT = 10


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _figure(n_panels: int, *, width: float = 8.0, panel_height: float = 2.0) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, 0.8 + panel_height * n_panels), layout="constrained")
    axes = fig.subplots(n_panels, 1, squeeze=False)[:, 0]
    for ax in axes:
        ax.tick_params(labelsize=FONT)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, list(axes)


def _panels(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (study, structure); the study name only shows when a table mixes several."""
    table = table.copy()
    for col in ("study", "structure"):
        table[col] = table[col].astype(str)
    several = table["study"].nunique() > 1
    return [(f"{study}: {structure}" if several else str(structure), part)
            for (study, structure), part in table.groupby(["study", "structure"], sort=True, observed=True)]


def source_colours(sources) -> dict[str, str]:
    """A fixed colour per source name (alphabetical order), the same in every figure of a study."""
    names = sorted({str(s) for s in sources})
    return {name: SOURCE_COLOURS[i % len(SOURCE_COLOURS)] for i, name in enumerate(names)}


INSIDE_MIN_PERCENT = 6  # a quality segment narrower than this carries its number outside the bar
BAR_HEIGHT = 0.6  # of the 1.0 between bars; the gap holds the numbers of narrow segments


def quality_figure(quality_levels: pd.DataFrame) -> Figure | None:
    """The figure of ``quality_bars``, before it becomes PNG bytes (tests read its labels)."""
    if quality_levels.empty:
        return None
    panels = _panels(quality_levels)
    n_sources = max(part["source"].nunique() for _, part in panels)
    fig, axes = _figure(len(panels), panel_height=0.62 * n_sources + 0.7)
    labels = quality_levels.drop_duplicates("level").sort_values("level")["label"].astype(str).tolist()
    for ax, (title, part) in zip(axes, panels):
        wide = part.pivot_table(index="source", columns="level", values="percent", observed=True).fillna(0.0)
        wide = wide.reindex(columns=range(4), fill_value=0.0).sort_index(ascending=False)
        n_rated = part.groupby("source", observed=True)["n_rated"].first().reindex(wide.index)
        left = np.zeros(len(wide))
        y = np.arange(len(wide))
        outside_above = np.zeros(len(wide), bool)  # where the previous narrow segment's number went
        for level in range(4):
            width = wide[level].to_numpy()
            ax.barh(y, width, left=left, color=LEVEL_COLOURS[level], edgecolor="white", height=BAR_HEIGHT,
                    label=labels[level] if level < len(labels) else str(level))
            for yi, (x0, w) in enumerate(zip(left, width)):
                if w >= INSIDE_MIN_PERCENT:
                    ax.text(x0 + w / 2, yi, f"{w:.0f}%", ha="center", va="center", fontsize=FONT - 1,
                            color=LEVEL_TEXT[level])
                    outside_above[yi] = False
                elif w > 0:
                    # outside: above the bar, or below it when the narrow neighbour's number is above
                    above = not outside_above[yi]
                    ax.text(x0 + w / 2, yi + (1 if above else -1) * (BAR_HEIGHT / 2 + 0.04), f"{w:.0f}%",
                            ha="center", va="bottom" if above else "top", fontsize=FONT - 2, color="black")
                    outside_above[yi] = above
            left += width
        ax.set_yticks(y, [f"{s}\n(n={int(n)})" for s, n in zip(wide.index.astype(str), n_rated)])
        ax.set_ylim(-0.8, len(wide) - 0.2)
        ax.set_xlim(0, 100)
        ax.set_xlabel("percent of rated answers")
        ax.set_title(title, loc="left", fontsize=FONT + 1, fontweight="bold")
    axes[0].legend(ncols=4, loc="lower left", bbox_to_anchor=(0, 1.12), frameon=False, fontsize=FONT - 1)
    return fig


def quality_bars(quality_levels: pd.DataFrame) -> bytes | None:
    """Stacked horizontal bars: percent of rated answers at each quality level, per structure and source
    (the layout of the reference study's figure). Every segment carries its percent: inside when it is at
    least INSIDE_MIN_PERCENT wide, else just above the bar (below, when the narrow segment before it put its
    number above). A level nobody chose has no segment and no number. Input: the ``quality_levels`` table."""
    fig = quality_figure(quality_levels)
    return None if fig is None else _png(fig)


def _interval_bars(ax, names, values, low, high, colours, *, percent: bool = True) -> None:
    y = np.arange(len(names))
    scale = 100.0 if percent else 1.0
    values, low, high = (np.asarray(v, float) * scale for v in (values, low, high))
    err = np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
    ax.barh(y, values, color=colours, height=0.65, xerr=err, ecolor="#333333", capsize=3)
    for yi, v, h in zip(y, values, high):
        if np.isfinite(v):
            ax.text((h if np.isfinite(h) else v) + 1.0 * scale / 100, yi,
                    f"{v:.1f}%" if percent else f"{v:.2f}", va="center", fontsize=FONT - 1)
    ax.set_yticks(y, names)


def first_choice_bars(first_choice: pd.DataFrame) -> bytes | None:
    """Share of ranked evaluations in which each source (or a tie) came first, with its interval.
    Input: the ``first_choice`` table."""
    if first_choice.empty:
        return None
    panels = _panels(first_choice)
    colours = source_colours(o for o in first_choice["outcome"].astype(str) if not o.startswith("("))
    n_rows = max(len(part) for _, part in panels)
    fig, axes = _figure(len(panels), panel_height=0.45 * n_rows + 0.6)
    for ax, (title, part) in zip(axes, panels):
        part = part.assign(outcome=part["outcome"].astype(str)).sort_values("share")
        _interval_bars(ax, part["outcome"], part["share"], part["share_ci_low"], part["share_ci_high"],
                       [colours.get(o, TIE_COLOUR) for o in part["outcome"]])
        ax.set_xlim(0, 112)
        ax.set_xlabel(f"percent of ranked evaluations ranked first (n={int(part['n_ranked'].max())})")
        ax.set_title(title, loc="left", fontsize=FONT + 1, fontweight="bold")
    return _png(fig)


def pairwise_heatmap(pairwise_wins: pd.DataFrame) -> bytes | None:
    """Matrix of "row source ranked above column source" (ties in the denominator), per structure.
    Input: the ``pairwise_wins`` table."""
    if pairwise_wins.empty:
        return None
    panels = _panels(pairwise_wins)
    n = max(len(set(part["source"].astype(str)) | set(part["other"].astype(str))) for _, part in panels)
    fig = Figure(figsize=(min(4.2 * len(panels), 12.0) + 1.0, 1.0 + 0.9 * n), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, (title, part) in zip(axes, panels):
        names = sorted(set(part["source"].astype(str)) | set(part["other"].astype(str)))
        grid = np.full((len(names), len(names)), np.nan)
        text = {}
        for row in part.itertuples():
            i, j = names.index(str(row.source)), names.index(str(row.other))
            grid[i, j] = row.share_above
            text[i, j] = (f"{100 * row.share_above:.1f}%\n[{100 * row.share_above_ci_low:.0f}-"
                          f"{100 * row.share_above_ci_high:.0f}]\nn={row.n}")
        image = ax.imshow(grid, cmap="cividis", vmin=0, vmax=1)
        for (i, j), label in text.items():
            ax.text(j, i, label, ha="center", va="center", fontsize=FONT - 2,
                    color="white" if grid[i, j] < 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=FONT - 1)
        ax.set_yticks(range(len(names)), names, fontsize=FONT - 1)
        ax.set_xlabel("... above this source")
        ax.set_ylabel("this source ranked ...")
        ax.set_title(title, loc="left", fontsize=FONT + 1, fontweight="bold")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="share ranked above")
    return _png(fig)


def alpha_points(krippendorff_alpha: pd.DataFrame) -> bytes | None:
    """Krippendorff's alpha (ordinal) with its interval, per structure and source. Input: the
    ``krippendorff_alpha`` table."""
    table = krippendorff_alpha.dropna(subset=["alpha_ordinal"])
    if table.empty:
        return None
    table = table.assign(label=table["structure"].astype(str) + " / " + table["source"].astype(str))
    fig, (ax,) = _figure(1, panel_height=0.35 * len(table) + 0.6)
    y = np.arange(len(table))[::-1]
    values = table["alpha_ordinal"].to_numpy(float)
    err = np.vstack([np.clip(values - table["ci_low"].to_numpy(float), 0, None),
                     np.clip(table["ci_high"].to_numpy(float) - values, 0, None)])
    ax.errorbar(values, y, xerr=np.nan_to_num(err), fmt="o", color=OKABE_ITO["blue"], ecolor="#333333",
                capsize=3)
    for yi, v in zip(y, values):
        ax.text(v, yi + 0.25, f"{v:.2f}", ha="center", fontsize=FONT - 1)
    ax.axvline(0.667, color=OKABE_ITO["vermillion"], linestyle=":", linewidth=1)
    ax.axvline(0.8, color=OKABE_ITO["bluish_green"], linestyle="--", linewidth=1)
    ax.text(0.667, y.max() + 0.7, "0.667", color=OKABE_ITO["vermillion"], ha="center", fontsize=FONT - 2)
    ax.text(0.8, y.max() + 0.7, "0.8", color=OKABE_ITO["bluish_green"], ha="center", fontsize=FONT - 2)
    ax.set_yticks(y, table["label"])
    ax.set_xlim(min(-0.1, float(np.nanmin(table["ci_low"].fillna(0)))) - 0.05, 1.02)
    ax.set_ylim(-0.7, y.max() + 1.2)
    ax.set_xlabel("Krippendorff's alpha, ordinal (1 = perfect agreement, 0 = chance)")
    return _png(fig)


def position_contrast_plot(position_contrast: pd.DataFrame) -> bytes | None:
    """Each panel position's paired effect with its interval, per structure: on the quality level (levels)
    and on being ranked first (percentage points), against the other positions of the same evaluation and
    source; a line marks 0 (no position bias). Input: the ``position_contrast`` table."""
    table = position_contrast
    if table.empty:
        return None
    panels = _panels(table)
    n_positions = max(part["panel_position"].nunique() for _, part in panels)
    fig = Figure(figsize=(9.0, 0.9 + (0.45 * n_positions + 0.7) * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for (ax_level, ax_first), (title, part) in zip(axes, panels):
        for ax, outcome, scale, label, colour in (
            (ax_level, "quality_level", 1.0, "effect on the quality level (levels)", OKABE_ITO["blue"]),
            (ax_first, "ranked_first", 100.0, "effect on being ranked first (percentage points)",
             OKABE_ITO["orange"]),
        ):
            rows = part[part["outcome"] == outcome].sort_values("panel_position", ascending=False)
            ax.spines[["top", "right"]].set_visible(False)
            if rows["effect"].isna().all():  # e.g. a fixed panel order: position and source confounded
                note = rows["note"].astype(str).iloc[0] if len(rows) else "no data"
                ax.text(0.5, 0.5, "\n".join(textwrap.wrap(note, 40)), ha="center", va="center",
                        transform=ax.transAxes, fontsize=FONT - 1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel(label, fontsize=FONT - 1)
                continue
            y = np.arange(len(rows))
            v = rows["effect"].to_numpy(float) * scale
            lo, hi = rows["ci_low"].to_numpy(float) * scale, rows["ci_high"].to_numpy(float) * scale
            ax.axvline(0, color="#333333", linewidth=1)
            ax.errorbar(v, y, xerr=np.nan_to_num(np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])),
                        fmt="o", color=colour, ecolor=colour, capsize=3, markersize=6)
            for yi, vi, p in zip(y, v, rows["p_value"].to_numpy(float)):
                number = f"{vi:+.2f}" if scale == 1 else f"{vi:+.1f}"
                ax.text(vi, yi + 0.22, number + (f" (p={p:.2g})" if np.isfinite(p) else ""), ha="center",
                        va="bottom", fontsize=FONT - 2)
            ax.set_yticks(y, [f"panel {int(p)}" for p in rows["panel_position"]])
            ax.set_ylim(-0.6, len(rows) - 0.2)
            reach = np.nanmax(np.abs(np.concatenate([lo, hi, [0.1 * scale]])))
            ax.set_xlim(-1.15 * reach, 1.15 * reach)
            ax.set_xlabel(label, fontsize=FONT - 1)
            ax.spines[["top", "right"]].set_visible(False)
        ax_level.set_title(title, loc="left", fontsize=FONT + 1, fontweight="bold")
    return _png(fig)


def blinding_plot(blinding_audit: pd.DataFrame) -> bytes | None:
    """Accuracy of the raters' source guesses with its interval against chance, per structure.
    Input: the ``blinding_audit`` table."""
    table = blinding_audit.dropna(subset=["accuracy"])
    if table.empty:
        return None
    names = table["structure"].astype(str).tolist()
    fig, (ax,) = _figure(1, panel_height=0.5 * len(table) + 0.6)
    _interval_bars(ax, names, table["accuracy"], table["ci_low"], table["ci_high"],
                   [OKABE_ITO["sky_blue"]] * len(table))
    for yi, chance in enumerate(table["chance"].to_numpy(float)):
        ax.plot([100 * chance] * 2, [yi - 0.4, yi + 0.4], color=OKABE_ITO["vermillion"], linewidth=2.5,
                label="chance" if yi == 0 else None)
    ax.set_xlim(0, 112)
    ax.set_xlabel("percent of source guesses that were right")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=FONT - 1)
    return _png(fig)


PLOTS = {
    "quality": ("quality_levels", quality_bars),
    "first_choice": ("first_choice", first_choice_bars),
    "pairwise": ("pairwise_wins", pairwise_heatmap),
    "alpha": ("krippendorff_alpha", alpha_points),
    "position": ("position_contrast", position_contrast_plot),
    "blinding": ("blinding_audit", blinding_plot),
}


def all_plots(tables: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """Every figure that has data: plot name -> PNG bytes (names as in ``PLOTS``)."""
    out = {}
    for name, (table, draw) in PLOTS.items():
        if table in tables:
            png = draw(tables[table])
            if png is not None:
                out[name] = png
    return out
