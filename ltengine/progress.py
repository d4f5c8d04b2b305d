"""Progress bars (tqdm), switchable with ``LinkConfig.progress``."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int, desc: str, enabled: bool | None, unit: str = "rec") -> Any:
    """A tqdm bar; ``enabled=None`` shows it only on a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=(None if enabled is None else not enabled), leave=False)
