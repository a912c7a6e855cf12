"""``Problem``: one thing wrong (or worth knowing) about one dataset file, with its fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Problem:
    """One finding of ``verify_dataset`` or a lenient ``discover``.

    ``path`` is the file (or folder) concerned; ``kind`` a stable identifier for machines
    (e.g. ``"mask-without-image"``); ``message`` says what is wrong in terms of the file,
    ``fix`` what to do. Errors stop training; warnings and notes do not.
    """

    path: Path | None
    kind: str
    message: str
    fix: str = ""
    severity: Severity = "error"

    def line(self) -> str:
        """One self-contained line: ``error  path: message; fix: …``."""
        where = f"{self.path}: " if self.path is not None else ""
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.severity:<7} {where}{self.message}{fix}"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": None if self.path is None else str(self.path),
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }
