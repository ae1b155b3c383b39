"""Problems found in a bundle, each naming the file, the line and the key it concerns.

Every failure of the bundle reader is a :class:`BundleError`; nothing else may escape it, so a
server can show a stranger's broken upload as a message instead of a stack trace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding. ``code`` is stable (tests and tools match on it); ``message`` is for people."""

    code: str
    message: str
    file: str = "challenge_config.yaml"
    line: int | None = None
    key: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        key = f" [{self.key}]" if self.key else ""
        return f"{where}{key}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class BundleError(Exception):
    """The bundle cannot be used. ``problems`` holds every error found (and any warnings)."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    @classmethod
    def single(cls, code: str, message: str, **where) -> BundleError:
        return cls([Problem(code, message, **where)])

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def summary(self) -> str:
        errors = self.errors or self.problems
        if not errors:
            return "invalid bundle"
        head = str(errors[0])
        more = len(errors) - 1
        return head + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")

    def __str__(self) -> str:
        return self.summary()
