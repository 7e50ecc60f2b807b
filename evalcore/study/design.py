"""The study design, decided before anyone rates (no Django).

- ``williams_orders(s)``: panel orders of a Williams design - every source appears in every panel position
  equally often and (for carry-over) follows every other source equally often.
- ``assign(...)``: which raters rate which items, in which panel order and in which sequence. Each item
  gets ``raters_per_item`` raters with load spread evenly over raters; the rows of the Williams design
  rotate over an item's raters so positions are balanced per item and across the study; each rater sees
  their items in their own seeded order. The result depends only on the inputs and the seed, never on who
  arrives first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def williams_orders(n_sources: int) -> list[list[int]]:
    """Rows of a Williams (balanced Latin) square: ``n`` rows if n is even, ``2n`` if odd."""
    if n_sources < 1:
        raise ValueError("at least one source is needed")
    n = n_sources
    # The first row zig-zags 0, 1, n-1, 2, n-2, ...; the others add a constant modulo n.
    first, lo, hi = [0], 1, n - 1
    for k in range(1, n):
        if k % 2 == 1:
            first.append(lo)
            lo += 1
        else:
            first.append(hi)
            hi -= 1
    rows = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2 == 1:
        rows += [list(reversed(row)) for row in rows]
    return rows


@dataclass(frozen=True)
class Slot:
    rater: int  # index into the raters list
    item: int  # index into the items list
    order: tuple[int, ...]  # source indices, left to right
    position: int  # place in the rater's own sequence (0-based)


def assign(n_items: int, n_raters: int, raters_per_item: int, n_sources: int, seed: int) -> list[Slot]:
    """The full assignment. Raises ValueError when the design cannot be met."""
    if n_items < 1 or n_raters < 1:
        raise ValueError("a study needs at least one item and one rater")
    if not 1 <= raters_per_item <= n_raters:
        raise ValueError(f"each item needs {raters_per_item} raters but the study has {n_raters}")
    rng = np.random.default_rng(seed)
    orders = williams_orders(n_sources)
    rater_perm = rng.permutation(n_raters)
    per_rater: dict[int, list[tuple[int, tuple[int, ...]]]] = {r: [] for r in range(n_raters)}
    for item in range(n_items):
        for j in range(raters_per_item):
            # Consecutive blocks of raters per item: every rater gets n_items * k / n_raters items (+-1).
            rater = int(rater_perm[(item * raters_per_item + j) % n_raters])
            order = tuple(orders[(item + j) % len(orders)])
            per_rater[rater].append((item, order))
    slots = []
    for rater, entries in per_rater.items():
        sequence = np.random.default_rng([seed, rater]).permutation(len(entries))
        for position, idx in enumerate(sequence):
            item, order = entries[idx]
            slots.append(Slot(rater=rater, item=item, order=order, position=position))
    return sorted(slots, key=lambda s: (s.rater, s.position))


def position_balance(slots: list[Slot], n_sources: int) -> np.ndarray:
    """Counts[source, panel position] over all slots - equal counts mean a balanced design."""
    counts = np.zeros((n_sources, n_sources), int)
    for s in slots:
        for pos, src in enumerate(s.order):
            counts[src, pos] += 1
    return counts


# --- which (galaxy, structure, source) may be a candidate ------------------------------------------------
NOT_ASKED_REASON = "its source was not asked for this structure (not asked)"
TOO_FEW_REASON = "fewer than two asked sources remain"


@dataclass(frozen=True)
class Dropped:
    """A (galaxy, structure, source) that is not a candidate, or a (galaxy, structure) that is not an item
    (``source`` empty), and why."""
    galaxy: str
    structure: str
    source: str
    reason: str


@dataclass
class CandidatePlan:
    """The study's items: ``items[(galaxy, structure)]`` lists the sources that are candidates (their mask
    was asked for; a missing mask is kept, so the pre-opening check names it); what was dropped and why."""
    items: dict[tuple[str, str], list[str]]
    dropped: list[Dropped]

    @property
    def dropped_candidates(self) -> list[Dropped]:
        return [d for d in self.dropped if d.source]

    @property
    def dropped_items(self) -> list[Dropped]:
        return [d for d in self.dropped if not d.source]

    def message(self, limit: int = 6) -> str:
        """What was dropped, counted per source and structure with example galaxies; empty if nothing."""
        return dropped_message(self.dropped, limit=limit)


def plan_candidates(states: dict[tuple[str, str, str], str | None], galaxies: list[str], structures: list[str],
                    sources: list[str], *, min_sources: int = 2) -> CandidatePlan:
    """Decide the candidates of a study from the state of each (galaxy, structure, source)'s current mask
    (``vocabulary.NOT_ASKED`` / ``EMPTY`` / ``MARKED``, or None when there is no mask).

    A source whose mask is "not asked" is never a candidate (a panel of a mask that does not exist would
    be rated as if it did). A (galaxy, structure) left with fewer than ``min_sources`` sources that were
    asked is not an item. Missing masks are kept as candidates-to-be: the pre-opening check blocks on them.
    """
    from evalcore.vocabulary import NOT_ASKED

    items: dict[tuple[str, str], list[str]] = {}
    dropped: list[Dropped] = []
    for galaxy in galaxies:
        for structure in structures:
            keep = []
            for source in sources:
                if states.get((galaxy, structure, source)) == NOT_ASKED:
                    dropped.append(Dropped(galaxy, structure, source, NOT_ASKED_REASON))
                else:
                    keep.append(source)
            if len(keep) < min_sources:
                dropped.append(Dropped(galaxy, structure, "", TOO_FEW_REASON))
            else:
                items[(galaxy, structure)] = keep
    return CandidatePlan(items, dropped)


def dropped_message(dropped: list[Dropped], *, limit: int = 6) -> str:
    """``"Not candidates: 12 (galaxy, structure, source) whose source was not asked - sparcfire bar: 12
    (g1, g2, ...). Not items: ..."``: how many, why, per source and structure, naming galaxies."""
    if not dropped:
        return ""
    parts = []
    candidates = [d for d in dropped if d.source]
    items = [d for d in dropped if not d.source]
    if candidates:
        groups: dict[tuple[str, str, str], list[str]] = {}
        for d in candidates:
            groups.setdefault((d.source, d.structure, d.reason), []).append(d.galaxy)
        detail = "; ".join(f"{source} {structure}: {len(names)} ({_names(names, limit)}) - {reason}"
                           for (source, structure, reason), names in sorted(groups.items()))
        parts.append(f"Dropped {len(candidates)} candidate(s) - {detail}.")
    if items:
        groups2: dict[tuple[str, str], list[str]] = {}
        for d in items:
            groups2.setdefault((d.structure, d.reason), []).append(d.galaxy)
        detail = "; ".join(f"{structure}: {len(names)} ({_names(names, limit)}) - {reason}"
                           for (structure, reason), names in sorted(groups2.items()))
        parts.append(f"Dropped {len(items)} item(s) - {detail}.")
    return " ".join(parts)


def _names(names: list[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "")
