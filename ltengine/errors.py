"""Every error ltengine raises on purpose.

Exception tree::

    LTEngineError                 base of everything below; catch this to catch all of ltengine
    ├── LinkInputError            bad data or arguments (also a ValueError)
    │   ├── ColumnError           a missing, duplicated or clashing column (also a KeyError)
    │   └── FileFormatError       a CLI input/output file that cannot be read or written
    ├── ConfigError               an invalid LinkConfig / TOML file / component option (also a ValueError)
    ├── ComponentError            an unknown or failing component
    │   ├── UnknownComponentError no component with that name (lists the available ones)
    │   ├── DuplicateComponentError the same name registered by two plugins (names both)
    │   └── ModelUnavailableError model weights cannot be found or downloaded (says what is offline)
    └── PluginError               a plugin that cannot be loaded or breaks a hook contract

Warnings (the run goes on)::

    UserWarning
    ├── LinkWarning               something to know about a run (blocks on one side only, a judge deadline)
    ├── CacheWarning              the disk cache could not be used as asked; what it can't read is recomputed
    └── PluginLoadWarning         a plugin is broken and skipped
        └── PluginSettingWarning  LTENGINE_DISABLE_PLUGINS/LTENGINE_LOAD_PLUGINS name an unknown or essential plugin

Every message names the offending column, row, value or component and says what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LTEngineError(Exception):
    """Base class of all ltengine errors."""


class LinkInputError(LTEngineError, ValueError):
    """The data or arguments given to a linking function are invalid."""


class ColumnError(LinkInputError, KeyError):
    """A column is missing, duplicated, or clashes with an output column."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FileFormatError(LinkInputError):
    """A file given to the CLI cannot be read or written."""


class ConfigError(LTEngineError, ValueError):
    """A configuration value, TOML file or component option is invalid."""


class ComponentError(LTEngineError):
    """A component (blocker, encoder, retriever, reranker) is unknown or failed."""


class UnknownComponentError(ComponentError, LinkInputError):
    """No component is registered under the requested name."""


class DuplicateComponentError(ComponentError):
    """Two plugins registered a component under the same name."""


class ModelUnavailableError(ComponentError):
    """Model weights cannot be found locally or downloaded."""


class PluginError(LTEngineError):
    """A plugin failed to load or broke a hook contract."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class LinkWarning(UserWarning):
    """Something the user should know about a link run (e.g. blocks present on one side only)."""


class CacheWarning(UserWarning):
    """The disk cache could not be used as asked (corrupt entries or database, a read-only folder);
    the run goes on, recomputing what it cannot read or store."""


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; ltengine continues without it."""


class PluginSettingWarning(PluginLoadWarning):
    """``LTENGINE_DISABLE_PLUGINS``/``LTENGINE_LOAD_PLUGINS`` names a plugin that is unknown or essential."""
