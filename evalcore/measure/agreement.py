"""Agreement between measured values and reference values (a catalogue or a synthetic truth), no Django.

Per quantity and mask source: bias, scatter (standard deviation and a robust 1.4826 x MAD version), mean
and median absolute error, Pearson r, a robust (Huber) linear fit, the number of pairs, the sources left
out with their reasons, and a scatter plot with the 1:1 line as PNG bytes.
"""
from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evalcore.sky.crossmatch import AMBIGUOUS, NO_MATCH, NO_POSITION, crossmatch

from . import MEASUREMENT_CODE_VERSION
from .results import plain

# Okabe & Ito (2008) colour-blind-safe palette, and markers so the sources differ without colour too.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class Pair:
    """One source: its measured and reference values (same unit), or why one of them is missing."""

    key: str
    measured: float | None = None
    reference: float | None = None
    measured_err: float | None = None
    reference_err: float | None = None
    reason: str | None = None  # why the pair cannot be used; None when both values are there
    reference_key: str | None = None  # the catalogue row it matched
    separation_arcsec: float | None = None

    @property
    def usable(self) -> bool:
        return self.reason is None and _finite(self.measured) and _finite(self.reference)


def _finite(x) -> bool:
    return x is not None and isinstance(x, int | float | np.floating | np.integer) and math.isfinite(x)


@dataclass
class AgreementReport:
    """Statistics of measured - reference over the usable pairs (units of the quantity unless relative)."""

    quantity: str
    unit: str
    source: str = ""
    code_version: str = MEASUREMENT_CODE_VERSION
    n: int = 0
    bias: float | None = None  # mean(measured - reference)
    scatter: float | None = None  # standard deviation of the differences (ddof = 1)
    scatter_robust: float | None = None  # 1.4826 x median absolute deviation of the differences
    mean_abs_error: float | None = None
    median_abs_error: float | None = None
    relative_bias: float | None = None  # mean((measured - reference) / reference), pairs with reference != 0
    relative_scatter: float | None = None  # std of the same ratios (ddof = 1)
    pearson_r: float | None = None
    pearson_p: float | None = None
    robust_slope: float | None = None  # Huber RLM: measured = intercept + slope x reference
    robust_slope_err: float | None = None
    robust_intercept: float | None = None
    robust_intercept_err: float | None = None
    points: list[dict] = field(default_factory=list)  # the usable pairs
    excluded: list[dict] = field(default_factory=list)  # {"key", "reason"}
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return plain(self)


def agreement_report(pairs: Sequence[Pair], *, quantity: str, unit: str, source: str = "") -> AgreementReport:
    """Agreement statistics of ``pairs``; unusable pairs are listed in ``excluded`` with their reasons."""
    report = AgreementReport(quantity=quantity, unit=unit, source=source)
    used = []
    for p in pairs:
        if p.usable:
            used.append(p)
            continue
        reason = p.reason
        if reason is None:
            reason = "no measured value" if not _finite(p.measured) else "no reference value"
        report.excluded.append({"key": p.key, "reason": reason})
    report.points = [{"key": p.key, "measured": p.measured, "reference": p.reference,
                      "measured_err": p.measured_err, "reference_err": p.reference_err,
                      "reference_key": p.reference_key, "separation_arcsec": p.separation_arcsec} for p in used]
    report.n = len(used)
    if not used:
        report.notes.append("no usable pair: no statistics")
        return report
    m = np.array([p.measured for p in used], float)
    r = np.array([p.reference for p in used], float)
    d = m - r
    report.bias = float(d.mean())
    report.mean_abs_error = float(np.abs(d).mean())
    report.median_abs_error = float(np.median(np.abs(d)))
    report.scatter_robust = float(MAD_TO_SIGMA * np.median(np.abs(d - np.median(d))))
    nonzero = r != 0
    if nonzero.any():
        ratio = d[nonzero] / r[nonzero]
        report.relative_bias = float(ratio.mean())
        if len(ratio) > 1:
            report.relative_scatter = float(ratio.std(ddof=1))
    if len(used) < 2:
        report.notes.append("one pair: no scatter, correlation or fit")
        return report
    report.scatter = float(d.std(ddof=1))
    if len(used) < 3:
        report.notes.append("two pairs: no correlation or fit")
        return report
    if np.ptp(m) == 0 or np.ptp(r) == 0:
        report.notes.append("measured or reference values are all equal: no correlation or fit")
        return report
    from scipy.stats import pearsonr

    res = pearsonr(m, r)
    report.pearson_r, report.pearson_p = float(res.statistic), float(res.pvalue)
    _robust_fit(report, r, m)
    return report


def _robust_fit(report: AgreementReport, x: np.ndarray, y: np.ndarray) -> None:
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a perfect fit makes the scale estimate warn; the slope is fine
        fit = sm.RLM(y, sm.add_constant(x), M=sm.robust.norms.HuberT()).fit()
    report.robust_intercept, report.robust_slope = (float(v) for v in fit.params)
    report.robust_intercept_err, report.robust_slope_err = (float(v) for v in fit.bse)


def pairs_from_table(table, *, key: str, measured: str, reference: str, measured_err: str | None = None,
                     reference_err: str | None = None, reason: str | None = None) -> list[Pair]:
    """Pairs from a table (a pandas DataFrame or a list of dicts) given its column names."""
    records = table.to_dict("records") if hasattr(table, "to_dict") and not isinstance(table, dict) else table
    pairs = []
    for row in records:
        missing = [c for c in (key, measured, reference, measured_err, reference_err, reason)
                   if c is not None and c not in row]
        if missing:
            raise ValueError(f"the table has no column(s) {missing}; it has {sorted(row)}")

        def num(col, row=row):
            value = row.get(col) if col else None
            if value is None:
                return None
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"row {row[key]!r}, column {col!r}: {value!r} is not a number") from None
            return value if math.isfinite(value) else None

        text = row.get(reason) if reason else None
        pairs.append(Pair(key=str(row[key]), measured=num(measured), reference=num(reference),
                          measured_err=num(measured_err), reference_err=num(reference_err),
                          reason=text if isinstance(text, str) and text else None))
    return pairs


@dataclass
class MeasuredSource:
    """A measured galaxy to compare with a catalogue: position in deg, value or the reason it has none."""

    key: str
    ra: float | None
    dec: float | None
    value: float | None = None
    err: float | None = None
    reason: str | None = None  # why value is None (not measured, no redshift, ...)


@dataclass
class CatalogueRow:
    key: str
    ra: float | None
    dec: float | None
    value: float | None = None
    err: float | None = None


def _nan(x) -> float:
    return float(x) if _finite(x) else float("nan")


def pair_with_catalogue(sources: Sequence[MeasuredSource], catalogue: Sequence[CatalogueRow], *,
                        radius_arcsec: float = 10.0, ambiguous_ratio: float = 0.0) -> list[Pair]:
    """Pair each measured source with the catalogue row at its sky position (``radius_arcsec``, arcsec).

    Every source comes back once, with a reason when it cannot be used: no position, no catalogue row
    within the radius, several rows within it (see ``evalcore.sky.crossmatch``), the row has no value,
    or the source has no measurement (its own reason, e.g. no redshift).
    """
    matches = crossmatch([_nan(s.ra) for s in sources], [_nan(s.dec) for s in sources],
                         [_nan(c.ra) for c in catalogue], [_nan(c.dec) for c in catalogue],
                         radius_arcsec=radius_arcsec, ambiguous_ratio=ambiguous_ratio)
    pairs = []
    for src, match in zip(sources, matches):
        pair = Pair(key=src.key, measured=src.value, measured_err=src.err)
        if match.status == NO_POSITION:
            pair.reason = "no sky position for this galaxy"
        elif match.status == NO_MATCH:
            pair.reason = f"no catalogue row within {radius_arcsec:g} arcsec"
        elif match.status == AMBIGUOUS:
            keys = ", ".join(str(catalogue[i].key) for i in match.candidates)
            pair.reason = f"{len(match.candidates)} catalogue rows within {radius_arcsec:g} arcsec ({keys})"
        else:
            row = catalogue[match.other]
            pair.reference, pair.reference_err = row.value, row.err
            pair.reference_key, pair.separation_arcsec = str(row.key), match.separation_arcsec
            if not _finite(src.value):
                pair.reason = f"not measured: {src.reason or 'no value'}"
            elif not _finite(row.value):
                pair.reason = f"catalogue row {row.key} has no value"
        pairs.append(pair)
    return pairs


def pair_with_truth(measured: Mapping[str, tuple[float | None, float | None, str | None]],
                    truth: Mapping[str, float | None]) -> list[Pair]:
    """Pairs from {key: (value, err, reason)} and {key: true value}: synthetic truth as the reference."""
    pairs = []
    for key, (value, err, reason) in measured.items():
        true = truth.get(key)
        pair = Pair(key=key, measured=value, measured_err=err, reference=true, reference_key=key)
        if not _finite(value):
            pair.reason = f"not measured: {reason or 'no value'}"
        elif not _finite(true):
            pair.reason = "no true value for this galaxy"
        pairs.append(pair)
    return pairs


def measured_value(result, attribute: str) -> tuple[float | None, float | None, str | None]:
    """(value, uncertainty, reason) of ``attribute`` of a Bar/SpiralMeasurement (or its dict).

    The uncertainty is ``attribute + "_err"`` when the result has one. The reason says why the value is
    missing: the measurement's own reason, or its notes (e.g. "no redshift: lengths in arcsec only").
    """
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    if attribute not in data:
        raise ValueError(f"measurements have no {attribute!r}; known: {sorted(data)}")
    value, err = data.get(attribute), data.get(attribute + "_err")
    if not data.get("measured"):  # no bar (or spiral) measured: no length of any kind, and why
        return None, None, data.get("reason") or "not measured"
    if attribute.startswith("profile_") and data.get("profile_reason"):
        return None, None, data["profile_reason"]
    if value is None:
        return None, None, "; ".join(data.get("notes") or []) or f"no {attribute}"
    return value, err, None


def scatter_plot_png(reports: AgreementReport | Mapping[str, AgreementReport], *, title: str = "",
                     dpi: int = 100) -> bytes:
    """PNG of measured against reference values, one colour and marker per source, with the 1:1 line
    and each source's robust fit. Colours are the Okabe-Ito colour-blind-safe palette."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(reports, AgreementReport):
        reports = {reports.source or "measured": reports}
    fig = Figure(figsize=(5, 5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    values = []
    first = next(iter(reports.values()), None)
    for i, (name, rep) in enumerate(reports.items()):
        colour, marker = OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]
        x = np.array([p["reference"] for p in rep.points], float)
        y = np.array([p["measured"] for p in rep.points], float)
        xe = np.array([_nan(p["reference_err"]) for p in rep.points], float)
        ye = np.array([_nan(p["measured_err"]) for p in rep.points], float)
        values.extend(x.tolist() + y.tolist())
        label = f"{name} (n={rep.n}"
        label += f", r={rep.pearson_r:.3f})" if rep.pearson_r is not None else ")"
        ax.errorbar(x, y, xerr=np.where(np.isfinite(xe), xe, 0), yerr=np.where(np.isfinite(ye), ye, 0),
                    fmt=marker, color=colour, ms=4, lw=0.8, alpha=0.85, label=label)
        if rep.robust_slope is not None and len(x):
            xs = np.array([x.min(), x.max()])
            ax.plot(xs, rep.robust_intercept + rep.robust_slope * xs, color=colour, lw=1.5,
                    label=f"{name} robust fit: slope {rep.robust_slope:.2f}")
    if values:
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", ls="--", lw=1, label="1:1")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
    else:
        ax.text(0.5, 0.5, "no usable pair", ha="center", va="center", transform=ax.transAxes)
    unit = f" [{first.unit}]" if first is not None and first.unit else ""
    quantity = first.quantity if first is not None else ""
    ax.set_xlabel(f"reference {quantity}{unit}")
    ax.set_ylabel(f"measured {quantity}{unit}")
    ax.set_aspect("equal", adjustable="box")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
