"""A run's summary: what was scored and rejected, and whether the run passes."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Summary:
    model_name: str
    model_version: str
    engine: str
    input: str
    output: str
    rejects: str
    max_rejected_share: float
    rows: int = 0
    scored: int = 0
    rejected: int = 0  # rows with at least one broken rule
    broken_rules: Counter[tuple[str, str]] = field(default_factory=Counter)  # (field, rule)
    seconds: float = 0.0
    published: bool = False

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        return self.rejected_share <= self.max_rejected_share

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["broken_rules"] = [{"field": f, "rule": r, "count": n}
                                for (f, r), n in self.broken_rules.most_common()]
        return data | {"rejected_share": self.rejected_share, "passed": self.passed,
                       "rows_per_s": round(self.rows_per_s, 1)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def show(self, console: Console) -> None:
        table = Table(title=f"{self.model_name} {self.model_version} ({self.engine})")
        table.add_column("")
        table.add_column("", justify="right")
        table.add_row("input rows", f"{self.rows:,}")
        table.add_row("scored", f"{self.scored:,}")
        table.add_row("rejected", f"{self.rejected:,} ({self.rejected_share:.2%}, "
                      f"limit {self.max_rejected_share:.2%})")
        for (name, rule), count in self.broken_rules.most_common(10):
            table.add_row(f"  {name}: {rule}", f"{count:,}")
        table.add_row("time", f"{self.seconds:.1f} s ({self.rows_per_s:,.0f} rows/s)")
        table.add_row("output", self.output if self.published else "not published")
        table.add_row("rejects", self.rejects)
        console.print(table)
        if not self.passed:
            console.print(f"[red]rejected share {self.rejected_share:.2%} is over the limit "
                          f"{self.max_rejected_share:.2%}: the output is not published; see "
                          f"{self.rejects}[/red]")
