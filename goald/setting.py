"""`Setting`: one configurable value of goald, as the settings table (goald/settings.py) declares it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One configurable value. `type` is one of bool, int, float, str; `choices` limits a str."""

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    secret: bool = False
    legacy_env: tuple[str, ...] = ()
    # Legal but unusual: a value above warn_above starts with a warning that gives warn_reason.
    warn_above: float | None = None
    warn_reason: str = ""
    unit: str = ""

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def env(self) -> str:
        return "GOALD_" + self.name.replace(".", "_").upper()

    @property
    def env_names(self) -> tuple[str, ...]:
        """Variables that set this value, strongest first."""
        return (self.env, *self.legacy_env)

    def bounds_text(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{_num(self.minimum)}..{_num(self.maximum)}"
        if self.minimum is not None:
            return f">= {_num(self.minimum)}"
        if self.maximum is not None:
            return f"<= {_num(self.maximum)}"
        return ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)
