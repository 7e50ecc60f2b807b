"""The machine blinding audit: can a classifier name a panel's source from the bytes a rater receives? (no Django)

Input: one ``Panel`` per candidate - the source (the label to guess), the galaxy (the group: every panel
of a galaxy stays in the same fold), the PNG bytes of every variant served for it and its HTML fragment.

Two sets of features are computed from those bytes alone:

- **presentation** (how a region is drawn; raters must not be able to use it): PNG structure (chunks,
  bit depth, colour type, size, IDAT count, metadata), the encoder's fingerprint (bytes against the same
  pixels re-encoded by the one panel encoder), distinct colour levels and alpha levels among drawn pixels,
  entropy of their colour histogram, share at the most common colour, share of low values (dark colours),
  anti-aliasing at the region's edges (edge pixels not at the main colour, partial alpha), and the panel's
  HTML fragment
  (its length and words, the "Nothing marked" label where the picture is not blank);
- **content** (what is drawn; what raters are meant to judge): marked area, number of pieces, edge
  roughness (edge pixels per square root of area), blank or not, and the byte size (which, once the
  drawing is matched, follows from the region alone).

A classifier (scikit-learn random forest) is cross-validated with galaxies grouped (GroupKFold); accuracy
comes with a 95% interval from a galaxy-clustered bootstrap and is compared with chance (the share of the
most common source: the accuracy of always naming it). The features that leak most are ranked by the
forests' impurity importance, averaged over the folds.
"""
from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass, field

import numpy as np

STANDARD_CHUNKS = {"IHDR", "IDAT", "IEND"}
LOW_LUMA = 96  # of 255: a drawn pixel darker than this is a "low value"
LABEL = "nothing marked"
N_BOOT = 2000
CONFIDENCE = 0.95
N_TREES = 60


@dataclass
class Panel:
    source: str
    galaxy: str
    pictures: dict[str, bytes]  # variant -> PNG bytes as served
    fragment: str = ""  # the panel's HTML as served (tokens are blanked before use)
    structure: str = ""


@dataclass
class ClassifierResult:
    accuracy: float
    low: float
    high: float
    chance: float
    n: int
    n_groups: int
    classes: list[str]
    leaking: list[tuple[str, float]] = field(default_factory=list)  # (feature, share of the forest's splits)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def above_chance(self) -> bool:
        return self.low > self.chance

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "low": self.low, "high": self.high, "chance": self.chance,
                "n": self.n, "galaxies": self.n_groups, "classes": self.classes, "above_chance": self.above_chance,
                "leaking": [[f, v] for f, v in self.leaking], "confusion": self.confusion}


# --- PNG bytes ------------------------------------------------------------------------------------------
def png_chunks(data: bytes) -> list[tuple[str, bytes]]:
    """[(chunk type, payload)] of a PNG file; raises ValueError for anything that is not one."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    out, i = [], 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        out.append((data[i + 4:i + 8].decode("latin-1"), data[i + 8:i + 8 + length]))
        i += 12 + length
    return out


def decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def _reencoded_size(pixels: np.ndarray) -> int:
    from evalcore.pixels import matched

    return len(matched.encode(np.ascontiguousarray(pixels)))


def drawn_region(pixels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels a rater sees as part of the mask (opaque on a layer, not black on a mask picture)."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return pixels[..., 3] > 0
    if pixels.ndim == 3:
        return pixels[..., :3].any(axis=2)
    return pixels > 0


def edge_pixels(region: np.ndarray) -> np.ndarray:
    """Drawn pixels with at least one undrawn 4-neighbour (or on the border)."""
    padded = np.pad(region, 1, constant_values=False)
    inner = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return region & ~inner


def count_pieces(region: np.ndarray) -> int:
    """Number of 8-connected pieces of a region."""
    from scipy import ndimage

    return int(ndimage.label(region, structure=np.ones((3, 3), bool))[1])


def picture_presentation(data: bytes, prefix: str) -> dict[str, float]:
    """Presentation features of one PNG (names start with ``prefix``)."""
    chunks = png_chunks(data)
    names = [n for n, _ in chunks]
    ihdr = chunks[0][1] if chunks and names[0] == "IHDR" else b"\0" * 13
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr[:13])
    pixels = decode(data)
    region = drawn_region(pixels)
    f = {
        "chunks": len(chunks), "idat_chunks": names.count("IDAT"),
        "metadata_chunks": sum(1 for n in names if n not in STANDARD_CHUNKS),
        "bit_depth": depth, "colour_type": colour, "interlace": interlace, "width": width, "height": height,
        "encoder_ratio": len(data) / max(_reencoded_size(pixels), 1),
        "zlib_level_flag": _zlib_flag(chunks),
    }
    n = int(region.sum())
    if n == 0:  # nothing drawn: how it would be drawn is unknown; neutral values (emptiness is content)
        f.update(levels=1, alpha_levels=1, hist_entropy=0.0, top_share=1.0, low_share=0.0, edge_aa=0.0,
                 alpha_partial=0.0)
        return {f"{prefix}_{k}": float(v) for k, v in f.items()}
    rgb = pixels[..., :3] if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
    drawn = rgb[region].astype(np.int64)
    codes = (drawn[:, 0] << 16) | (drawn[:, 1] << 8) | drawn[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    top = values[np.argmax(counts)]
    luma = drawn @ np.array([0.2126, 0.7152, 0.0722])
    edges = edge_pixels(region)
    edge_codes = ((rgb[edges].astype(np.int64)[:, 0] << 16) | (rgb[edges].astype(np.int64)[:, 1] << 8)
                  | rgb[edges].astype(np.int64)[:, 2])
    alpha = pixels[..., 3][region] if pixels.ndim == 3 and pixels.shape[2] == 4 else np.full(n, 255)
    f.update(levels=len(values), alpha_levels=len(np.unique(alpha)),
             hist_entropy=float(-(p * np.log2(p)).sum()), top_share=float(p.max()),
             low_share=float((luma < LOW_LUMA).mean()),
             edge_aa=float((edge_codes != top).mean()) if edge_codes.size else 0.0,
             alpha_partial=float(((alpha > 0) & (alpha < 255)).mean()))
    return {f"{prefix}_{k}": float(v) for k, v in f.items()}


def _zlib_flag(chunks) -> int:
    """The zlib header's compression-level flag of the first IDAT chunk (an encoder fingerprint)."""
    for name, payload in chunks:
        if name == "IDAT" and len(payload) >= 2:
            return payload[1] >> 6
    return -1


_TOKENS = re.compile(r"[\w-]{20,}|/rate/[^\"'\s]*|\d+")
_TAGS = re.compile(r"<[^>]+>")


def fragment_presentation(fragment: str, blank: bool) -> dict[str, float]:
    """Features of a panel's HTML: its length and visible words once tokens and numbers are blanked, and a
    "Nothing marked" label that disagrees with the picture. The label on a blank picture is content."""
    text = _TOKENS.sub("T", fragment or "")
    visible = " ".join(_TAGS.sub(" ", text).split()).lower()
    has_label = LABEL in visible
    without = visible.replace(LABEL, "")
    html_without = re.sub(r"<p class=\"nothing-marked\">.*?</p>", "", text, flags=re.S | re.I)
    return {"html_length": float(len(html_without)), "html_words": float(len(without.split())),
            "html_label_disagrees": float(has_label != blank)}


def content_features(data: bytes) -> dict[str, float]:
    """What the mask picture shows: marked area, pieces, edge roughness, blank, byte size."""
    pixels = decode(data)
    region = drawn_region(pixels)
    area = int(region.sum())
    pieces = count_pieces(region)
    edges = int(edge_pixels(region).sum())
    return {"marked_share": area / region.size, "pieces": float(pieces),
            "edge_roughness": edges / math.sqrt(area) if area else 0.0, "blank": float(area == 0),
            "bytes": float(len(data))}


def panel_features(panel: Panel) -> tuple[dict[str, float], dict[str, float]]:
    """(presentation features, content features) of one panel."""
    presentation: dict[str, float] = {}
    for variant in sorted(panel.pictures):
        presentation.update(picture_presentation(panel.pictures[variant], variant))
    main = panel.pictures.get("mask") or next(iter(panel.pictures.values()))
    content = content_features(main)
    presentation.update(fragment_presentation(panel.fragment, blank=bool(content["blank"])))
    return presentation, content


# --- the classifier -------------------------------------------------------------------------------------
def classify(rows: list[dict[str, float]], labels: list[str], groups: list[str], *, seed: int = 0,
             n_boot: int = N_BOOT, top: int = 5) -> ClassifierResult:
    """Cross-validated accuracy of naming ``labels`` from ``rows`` (galaxies grouped), its 95% interval
    (galaxy-clustered bootstrap), chance (the most common label's share) and the most leaking features."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GroupKFold

    names = sorted({k for r in rows for k in r})
    X = np.array([[r.get(k, 0.0) for k in names] for r in rows], dtype=np.float64)
    X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)
    y = np.asarray(labels)
    g = np.asarray(groups)
    classes = sorted(set(labels))
    chance = max(np.mean(y == c) for c in classes) if len(y) else 0.0
    n_groups = len(set(groups))
    if len(classes) < 2 or n_groups < 2:
        return ClassifierResult(float("nan"), float("nan"), float("nan"), float(chance), len(y), n_groups, classes)
    folds = GroupKFold(n_splits=min(5, n_groups))
    predicted = np.empty(len(y), dtype=object)
    importance = np.zeros(len(names))
    for train, test in folds.split(X, y, g):
        model = RandomForestClassifier(n_estimators=N_TREES, min_samples_leaf=2, random_state=seed, n_jobs=1)
        model.fit(X[train], y[train])
        predicted[test] = model.predict(X[test])
        fold_importance = np.nan_to_num(model.feature_importances_)
        importance += fold_importance * len(test) / len(y)
    correct = (predicted == y).astype(float)
    accuracy = float(correct.mean())
    low, high = clustered_interval(correct, g, n_boot=n_boot, seed=seed)
    order = np.argsort(-importance)
    leaking = [(names[j], round(float(importance[j]), 4)) for j in order[:top] if importance[j] > 0]
    confusion = {c: {d: int(np.sum((y == c) & (predicted == d))) for d in classes} for c in classes}
    return ClassifierResult(accuracy, low, high, float(chance), len(y), n_groups, classes, leaking, confusion)


def clustered_interval(correct: np.ndarray, groups: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the accuracy, resampling whole galaxies (their panels are not independent)."""
    keys, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=correct, minlength=len(keys))
    counts = np.bincount(inverse, minlength=len(keys)).astype(float)
    rng = np.random.default_rng(seed + 1)
    pick = rng.integers(0, len(keys), size=(n_boot, len(keys)))
    boot = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))


def audit(panels: list[Panel], *, seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """The whole audit of a set of panels: presentation and content classifiers, as a JSON-able dict."""
    pres, cont = [], []
    for p in panels:
        a, b = panel_features(p)
        pres.append(a)
        cont.append(b)
    labels = [p.source for p in panels]
    groups = [p.galaxy for p in panels]
    presentation = classify(pres, labels, groups, seed=seed, n_boot=n_boot)
    content = classify(cont, labels, groups, seed=seed, n_boot=n_boot)
    by_source: dict[str, dict[str, float]] = {}
    for label in sorted(set(labels)):
        rows = [c for c, lab in zip(cont, labels, strict=True) if lab == label]
        by_source[label] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return {"panels": len(panels), "presentation": presentation.as_dict(), "content": content.as_dict(),
            "content_means": by_source}


def verdict(result: dict) -> str:
    """One line for people: does the presentation give the source away?"""
    p = result.get("presentation") or {}
    if not p or p.get("accuracy") is None or p["accuracy"] != p["accuracy"]:
        return "not enough panels or sources to audit"
    line = (f"a classifier named the source of {100 * p['accuracy']:.0f}% of {p['n']} panels "
            f"(95% interval {100 * p['low']:.0f}-{100 * p['high']:.0f}%; chance {100 * p['chance']:.0f}%)")
    if p["above_chance"]:
        leaks = ", ".join(f for f, _ in p.get("leaking", [])[:3])
        return f"LEAKS: {line}; most leaking: {leaks or 'several features together'}"
    return f"holds: {line}"
