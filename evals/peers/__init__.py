"""Runners of one ``merge`` per process, for side-by-side timing (ltengine and its peers), and helpers.

Standard library only: the runners import it from the peers' own interpreters too."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def code_version() -> str:
    """The git commit of the working tree, with ``+dirty`` when files differ from it ("unknown" outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def key_columns(spec: str) -> str | list[str]:
    """A runner's ``--left-on``/``--right-on`` value: one column name, or a list when comma separated."""
    parts = [c.strip() for c in spec.split(",") if c.strip()]
    return parts[0] if len(parts) == 1 else parts


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` on Linux (``ru_maxrss`` there would also count
    the parent's memory at fork, as Linux keeps it across exec), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024.0 if sys.platform != "darwin" else kb / 2**20, 1)
