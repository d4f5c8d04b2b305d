"""The ``ltengine`` command line: ``main`` (the console script) and the click group ``cli``.

- :mod:`ltengine.cli.commands`: the group, ``link`` and ``plugins``; plugins add commands through ``register_commands``
- :mod:`ltengine.cli.dedup`: ``dedup`` and ``cluster``
- :mod:`ltengine.cli.io`: reading and writing tables (CSV/TSV as text, Parquet, JSON lines), atomic writes
- :mod:`ltengine.cli.output`: checks on ``--out`` before any work
"""

from ltengine.cli.commands import cli, main

__all__ = ["cli", "main"]
