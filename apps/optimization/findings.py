"""A diagnosed finding before it is stored: what the detectors return and the command prints."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.optimization.models import SYSTEM_ROUTE


@dataclass
class Candidate:
    kind: str
    route: str
    tenant_id: int | None
    summary: str
    recommendation: str
    method: str = ""
    subject: str = ""
    severity: str = "warning"
    evidence: dict[str, Any] = field(default_factory=dict)
    impact: str = ""
    fix: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.tenant_id, self.kind, self.method, self.route, self.subject)

    @property
    def printed_route(self) -> str:
        if self.route == SYSTEM_ROUTE or not self.method:
            return self.route
        return f"{self.method} {self.route}"

    def line(self) -> str:
        """`kind<TAB>route<TAB>evidence`, one line (tabs and newlines in the evidence become spaces)."""
        evidence = " ".join(self.summary.split())
        return f"{self.kind}\t{self.printed_route}\t{evidence}"


def fold(into: Candidate, symptom: Candidate) -> None:
    """One finding per root cause: `symptom` is explained by `into` and becomes part of its evidence."""
    into.evidence.setdefault("also", []).append({"kind": symptom.kind, "summary": symptom.summary})
