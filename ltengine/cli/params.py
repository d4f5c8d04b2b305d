"""Click parameter types shared by the commands."""

from __future__ import annotations

from typing import Any

import click


class ThresholdType(click.ParamType):
    """A number, or ``auto`` (keep pairs whose match_probability is at least 0.5)."""

    name = "NUMBER|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        if isinstance(value, (int, float)) or str(value).strip().lower() == "auto":
            return value if isinstance(value, (int, float)) else "auto"
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)
