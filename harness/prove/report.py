"""What a proof scenario found, and the one table (and JSON object) every scenario adds a row to."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# the columns of the table, in order; every row has them all
COLUMNS = ("scenario", "attempts", "lost", "duplicated", "5xx", "503→retried", "unapproved", "max recovery s", "result")
# totals that must be zero for the proof to pass
MUST_BE_ZERO = ("lost", "duplicated", "errors_5xx", "unapproved_effects")


@dataclass(frozen=True)
class Row:
    """One scenario's outcome. `errors_5xx` counts 5xx that should not have happened; a 503 while
    Redis is down is the intended answer (the platform retries) and is counted in `retried_503`."""

    scenario: str
    attempts: int
    lost: int = 0
    duplicated: int = 0
    errors_5xx: int = 0
    retried_503: int = 0
    unapproved_effects: int = 0
    max_recovery_s: float | None = None
    # a check of its own the scenario failed (say which in notes), beyond the four counts
    failed_checks: tuple[str, ...] = ()
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicated or self.errors_5xx or self.unapproved_effects or self.failed_checks)

    def cells(self) -> tuple[str, ...]:
        recovery = "-" if self.max_recovery_s is None else f"{self.max_recovery_s:.2f}"
        return (self.scenario, str(self.attempts), str(self.lost), str(self.duplicated), str(self.errors_5xx),
                str(self.retried_503), str(self.unapproved_effects), recovery, "pass" if self.passed else "FAIL")


@dataclass
class Report:
    mode: str
    rows: list[Row] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def totals(self) -> dict[str, Any]:
        return {
            "scenarios": len(self.rows),
            "passed": sum(r.passed for r in self.rows),
            "failed": sum(not r.passed for r in self.rows),
            "attempts": sum(r.attempts for r in self.rows),
            "lost": sum(r.lost for r in self.rows),
            "duplicated": sum(r.duplicated for r in self.rows),
            "errors_5xx": sum(r.errors_5xx for r in self.rows),
            "retried_503": sum(r.retried_503 for r in self.rows),
            "unapproved_effects": sum(r.unapproved_effects for r in self.rows),
            "max_recovery_s": max((r.max_recovery_s for r in self.rows if r.max_recovery_s is not None), default=None),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "passed": self.passed,
            "seconds": round((self.finished_at or time.time()) - self.started_at, 1),
            "totals": self.totals(),
            "scenarios": [{**asdict(r), "passed": r.passed} for r in self.rows],
        }

    def table(self) -> str:
        rows = [COLUMNS, *(r.cells() for r in self.rows)]
        totals = self.totals()
        recovery = "-" if totals["max_recovery_s"] is None else f"{totals['max_recovery_s']:.2f}"
        rows.append(("total", str(totals["attempts"]), str(totals["lost"]), str(totals["duplicated"]), str(totals["errors_5xx"]),
                     str(totals["retried_503"]), str(totals["unapproved_effects"]), recovery, "pass" if self.passed else "FAIL"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = "-" * len(line(rows[0]))
        out = [f"deputy prove --{self.mode}", rule, line(rows[0]), rule, *(line(r) for r in rows[1:-1]), rule, line(rows[-1])]
        notes = [f"  {r.scenario}: {r.notes}" + (f" [failed: {'; '.join(r.failed_checks)}]" if r.failed_checks else "")
                 for r in self.rows if r.notes or r.failed_checks]
        if notes:
            out += ["", "notes:", *notes]
        return "\n".join(out)

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Keep the table and the JSON of this run (last.txt / last.json) beside a timestamped copy."""
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.started_at))
        text, data = self.table() + "\n", json.dumps(self.as_json(), indent=2, default=str) + "\n"
        for name in (f"prove-{stamp}", "last"):
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
            (folder / f"{name}.json").write_text(data, encoding="utf-8")
        return folder / "last.txt", folder / "last.json"
