"""Diagnostics of IVR flow files: stable codes, severity, position, message and a hint.

Printed compiler-style and sorted by file, line, column::

    ivr_flows/inbound_main.yaml:58:12: error[E101]: 'lookup.on_error' -> 'to_suport_queue': no such node
       help: did you mean 'to_support_queue'? (defined at ivr_flows/inbound_main.yaml:67:3)

The code catalogue is in `dialer.ivr.validate` (CODES).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dialer.ivr.model import Pos

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str  # E101, W103, ...
    message: str
    pos: Pos
    help: str | None = None

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.pos.file, self.pos.line, self.pos.col, self.code, self.message)

    def format_text(self) -> str:
        where = f"{self.pos.file}:{self.pos.line}:{self.pos.col}: " if self.pos.file else ""
        text = f"{where}{self.severity}[{self.code}]: {self.message}"
        if self.help:
            text += f"\n   help: {self.help}"
        return text

    def format_github(self) -> str:
        """A GitHub Actions workflow command (an annotation on the pull request)."""
        kind = "error" if self.is_error else "warning"
        message = self.message + (f" (help: {self.help})" if self.help else "")
        message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return (f"::{kind} file={self.pos.file},line={self.pos.line},col={self.pos.col},"
                f"title={self.code}::{message}")

    def to_json(self) -> dict[str, object]:
        return {"file": self.pos.file, "line": self.pos.line, "col": self.pos.col,
                "severity": self.severity, "code": self.code, "message": self.message,
                "help": self.help}


def sorted_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by position, with exact repeats removed."""
    return sorted(set(diags), key=Diagnostic.sort_key)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """`did you mean 'x'?` for the closest choice, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def closest(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return close[0] if close else None
