"""The end-of-import report every importer prints: imported, updated, skipped, failed (with reasons)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportSummary:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file or row, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # e.g. dropped polygons

    @property
    def failed(self) -> int:
        return len(self.failures)

    def fail(self, where: str, reason: str) -> None:
        self.failures.append((str(where), reason))

    def warn(self, where: str, reason: str) -> None:
        self.warnings.append((str(where), reason))

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def as_dict(self) -> dict:
        return {
            "imported": self.imported, "updated": self.updated, "unchanged": self.unchanged,
            "skipped": self.skipped, "failed": self.failed,
            "failures": [{"where": w, "reason": r} for w, r in self.failures],
            "warnings": [{"where": w, "reason": r} for w, r in self.warnings],
            "counters": self.counters,
        }

    def lines(self) -> list[str]:
        out = [f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, "
               f"skipped {self.skipped}, failed {self.failed}"]
        out += [f"  {k}: {v}" for k, v in sorted(self.counters.items())]
        out += [f"  FAILED {w}: {r}" for w, r in self.failures]
        out += [f"  warning {w}: {r}" for w, r in self.warnings]
        return out
