"""One picture of synthetic galaxies with their volunteer masks and their truth, to judge realism (no Django).

Each galaxy gets three panels: the subject image; the volunteers' fractions over it (spiral in purple,
bar in orange, darker where more volunteers agree); the true masks'
outlines (spiral green, bar red). Two galaxies per row, 16 galaxies by default.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GALLERY_SIZE = 16


@dataclass
class GalleryItem:
    title: str
    image: np.ndarray  # (H, W, 3) uint8, row 0 = north
    spiral_fraction: np.ndarray | None  # (H, W) in [0, 1]; None = not asked
    bar_fraction: np.ndarray | None
    truth_spiral: np.ndarray | None  # (H, W) 0/1
    truth_bar: np.ndarray | None


def items_from_survey(directory, n: int = GALLERY_SIZE) -> list[GalleryItem]:
    """The first ``n`` galaxies of a survey folder written by ``survey.make_survey``, read back through the
    GZ3D reader (fractions = volunteers covering a pixel / classifications)."""
    from evalcore.formats import gz3d

    files = sorted(Path(directory, "gz3d").glob("gz3d_*.fits.gz"))[:n]
    if not files:
        raise FileNotFoundError(f"no GZ3D files under {Path(directory, 'gz3d')}")
    items = []
    for path in files:
        f = gz3d.read_gz3d(path)
        fractions = {}
        for task, classifications in (("spiral", f.spiral), ("bar", f.bar)):
            fractions[task] = (gz3d.volunteer_counts(classifications, f.shape) / len(classifications)
                               if classifications else None)
        truth = f.truth
        params = truth.params if truth else {}
        title = f"{f.metadata.get('IAUNAME', path.name)}\n{params.get('morphology', '')}"
        if params.get("arm_count"):
            title += f", m={params['arm_count']}, pitch {params.get('pitch_angle_deg', 0):.0f} deg"
        items.append(GalleryItem(title=title, image=f.image, spiral_fraction=fractions["spiral"],
                                 bar_fraction=fractions["bar"], truth_spiral=truth.spiral if truth else None,
                                 truth_bar=truth.bar if truth else None))
    return items


def _overlay(ax, fraction, rgb):
    if fraction is None:
        return
    masked = np.ma.masked_where(fraction <= 0, fraction)
    ax.imshow(masked, cmap=rgb, vmin=0, vmax=1, alpha=0.55, interpolation="nearest")


def gallery_figure_png(items: list[GalleryItem], *, dpi: int = 72) -> bytes:
    """The gallery PNG of ``items`` (two galaxies per row, three panels each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(items) + 1) // 2
    fig, axes = plt.subplots(rows, 6, figsize=(15, 2.95 * rows), squeeze=False)
    fig.patch.set_facecolor("white")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    for i, item in enumerate(items):
        row, col = divmod(i, 2)
        a_img, a_vol, a_true = axes[row, 3 * col: 3 * col + 3]
        for ax in (a_img, a_vol, a_true):
            ax.imshow(item.image, interpolation="nearest")
        a_img.set_title(item.title, fontsize=7)
        _overlay(a_vol, item.spiral_fraction, "Purples")
        _overlay(a_vol, item.bar_fraction, "Oranges")
        asked = [s for s, f in (("spiral", item.spiral_fraction), ("bar", item.bar_fraction)) if f is not None]
        a_vol.set_title("volunteers: " + (", ".join(asked) if asked else "not asked"), fontsize=7)
        for mask, colour in ((item.truth_spiral, "lime"), (item.truth_bar, "red")):
            if mask is not None and mask.any():
                a_true.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=0.8)
        a_true.set_title("truth: spiral green, bar red", fontsize=7)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def gallery_png(directory, n: int = GALLERY_SIZE, *, dpi: int = 72) -> bytes:
    """PNG bytes of the gallery of the first ``n`` galaxies of a survey folder (for the admin or a file)."""
    return gallery_figure_png(items_from_survey(directory, n), dpi=dpi)
