"""LinkConfig: every setting of a linking run, frozen, loadable from a dict or a TOML file."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from ltengine.errors import ConfigError, LinkInputError, did_you_mean
from ltengine.numeric import as_positive_int, is_real

#: Column argument of the public functions: one name, a list of names, or None (not given).
Columns = str | Sequence[str] | None
#: What ``config=`` accepts: a LinkConfig, a mapping of its fields, or the path of a TOML file.
ConfigLike = Union["LinkConfig", Mapping[str, Any], str, Path, None]


def as_columns(value: Any, field: str) -> tuple[str, ...]:
    """Column names from a name, a list of names or None (``()``); anything else is a ConfigError naming ``field``."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        cols = tuple(value)
        for c in cols:
            if not isinstance(c, str):
                raise ConfigError(f"{field} must list column names (strings); got {c!r}")
        return cols
    raise ConfigError(f"{field} must be a column name or a list of column names; got {value!r}")


def split_columns(value: str | None) -> list[str] | None:
    """A comma-separated command-line value as column names (None stays None: not given)."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def check_threshold(threshold: Any, name: str = "threshold", typical: str = "match thresholds are 0.5-0.9") -> float:
    """A similarity threshold in [-1, 1] as a float, else ConfigError (``typical`` ends the range message)."""
    if not is_real(threshold):
        raise ConfigError(f"{name} must be a number between -1 and 1 (cosine similarity); got {threshold!r}")
    value = float(threshold)
    if not -1.0 <= value <= 1.0:  # also rejects NaN
        raise ConfigError(
            f"{name} {threshold!r} is out of range: scores are cosine similarities in [-1, 1] (typical {typical})"
        )
    return value


def resolve_on(on: Columns, left_on: Columns, right_on: Columns) -> dict[str, Any]:
    """``left_on``/``right_on`` changes from the ``on``/``left_on``/``right_on`` arguments ({} when none is given).

    ``on`` names the same columns on both sides; it excludes the other two, which go together and
    must name as many columns each.
    """
    if on is not None and (left_on is not None or right_on is not None):
        raise LinkInputError("pass either on=... or left_on=/right_on=..., not both")
    if on is not None:
        return {"left_on": on, "right_on": on}
    if (left_on is None) != (right_on is None):
        missing = "right_on" if right_on is None else "left_on"
        raise LinkInputError(f"{missing} is missing: left_on and right_on go together (or use on=...)")
    if left_on is None:
        return {}
    n_left = 1 if isinstance(left_on, str) else len(left_on)
    n_right = 1 if isinstance(right_on, str) else len(right_on)  # type: ignore[arg-type]
    if n_left != n_right:
        raise LinkInputError(f"left_on has {n_left} columns but right_on has {n_right}; give the same number")
    return {"left_on": left_on, "right_on": right_on}


def as_config(config: ConfigLike) -> LinkConfig:
    """``config`` as a LinkConfig: None gives the defaults, a mapping its fields, a str or Path a TOML file."""
    if config is None:
        return LinkConfig()
    if isinstance(config, LinkConfig):
        return config
    if isinstance(config, (str, Path)):
        return LinkConfig.from_path(config)
    if isinstance(config, Mapping):
        return LinkConfig.from_dict(config)
    raise LinkInputError(f"config must be a LinkConfig, a dict or a TOML file path; got {type(config).__name__}")


#: Values of ``LinkConfig.mode``.
MODES = ("auto", "hybrid", "semantic", "lexical")
#: Values of ``LinkConfig.executor``.
EXECUTORS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class LinkConfig:
    """Settings of a linking run.  Unknown keys are errors; see the README for each field."""

    left_on: tuple[str, ...] = ()
    right_on: tuple[str, ...] = ()
    #: Model string: ``"fast"``/``"usem3"`` (default), ``"accurate"``, a Hub id or local path,
    #: ``"encoder-name:model"``, or an API model such as ``"openai/text-embedding-3-small"``.
    model: str | None = None
    #: Encoder component to use explicitly (else chosen from ``model``).
    encoder: str | None = None
    encoder_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    retriever: str = "faiss"
    retriever_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    blocker: str = "exact"
    blocker_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    block_on: tuple[str, ...] = ()
    #: Candidates retrieved per left row (merge keeps the best; merge_knn keeps all k).
    k: int = 1
    #: Minimum score (cosine, -1..1) for a pair to count as a match, or ``"auto"``: keep pairs whose
    #: ``match_probability`` is at least 0.5 (the model fitted on the run's own candidates).
    threshold: float | str | None = None
    one_to_one: bool = False
    keep_unmatched: bool = False
    suffixes: tuple[str, str] = ("_x", "_y")
    #: How candidates are found: ``"semantic"`` (encoder + retriever), ``"lexical"`` (character
    #: n-grams of romanised names), ``"hybrid"`` (both, scores fused), or ``"auto"``: hybrid when the
    #: left and right columns are written in different scripts (see :mod:`ltengine.lexical.scripts`), else
    #: semantic.  In hybrid mode ``score`` (and ``threshold``) is the fused score, 0..1.
    mode: str = "auto"
    #: Fuser combining the semantic and lexical scores in hybrid mode (``"weighted"``, ``"rrf"``, plugins).
    fuser: str = "weighted"
    fuser_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Lexical retriever (one with ``inputs = "texts"``) for the lexical and hybrid modes.
    lexical_retriever: str = "char-ngram"
    lexical_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Hybrid mode: candidates taken from each of the two retrievers per left row before fusion.
    hybrid_depth: int = 20
    #: Reranker specs, applied in order: ``"name"`` or ``"name:model"``.
    rerank: tuple[str, ...] = ()
    rerank_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Cache embeddings (and API answers) on disk.
    cache: bool = True
    #: Cache folder; default ``$LTENGINE_HOME/cache`` or the user cache dir.
    cache_dir: str | None = None
    #: Progress bars: True, False, or None = only on a terminal.
    progress: bool | None = None
    #: Texts per encoder call: the unit of caching and progress.
    encode_chunk_size: int = 4096
    #: Link records made only of symbols (e.g. a lone emoji); by default a value with no letter or
    #: digit counts as empty, and empty records never match.
    keep_symbol_records: bool = False
    #: Where the run executes: ``"local"`` (this process) or ``"ray"`` (Ray Data actors for encoding, the
    #: right-hand index sharded over actors; see :mod:`ltengine.execution`).
    executor: str = "local"
    #: Options of the executor (``"ray"``: address, num_cpus, encode_actors, shards, ...).
    executor_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("left_on", "right_on", "block_on"):
            set_(self, name, as_columns(getattr(self, name), name))
        set_(self, "rerank", (self.rerank,) if isinstance(self.rerank, str) else tuple(self.rerank or ()))
        for name in ("encoder_options", "retriever_options", "blocker_options", "rerank_options", "fuser_options",
                     "lexical_options", "executor_options"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name} must be a mapping of option names to values; got {value!r}")
            set_(self, name, dict(value))
        set_(self, "k", as_positive_int(self.k, "k", "candidates per left row", ConfigError))
        if self.threshold is not None and self.threshold != "auto":
            set_(self, "threshold", check_threshold(self.threshold))
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}.{did_you_mean(str(self.mode), MODES)} "
                              f"Valid modes: {', '.join(MODES)}.")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}.{did_you_mean(str(self.executor), EXECUTORS)} "
                              f"Valid executors: {', '.join(EXECUTORS)}.")
        set_(self, "hybrid_depth", as_positive_int(self.hybrid_depth, "hybrid_depth", "candidates per retriever",
                                                   ConfigError))
        suffixes = tuple(self.suffixes)
        if len(suffixes) != 2 or not all(isinstance(s, str) for s in suffixes) or suffixes[0] == suffixes[1]:
            raise ConfigError(f"suffixes must be two different strings, e.g. ('_x', '_y'); got {self.suffixes!r}")
        set_(self, "suffixes", suffixes)
        set_(self, "encode_chunk_size", as_positive_int(self.encode_chunk_size, "encode_chunk_size",
                                                        "texts per encoder call", ConfigError))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkConfig:
        """Build from a mapping; unknown keys raise ConfigError with a suggestion."""
        names = cls.field_names()
        for key in data:
            if key not in names:
                raise ConfigError(f"unknown config key {key!r}.{did_you_mean(key, names)} Valid keys: {', '.join(names)}.")
        return cls(**dict(data))

    @classmethod
    def from_path(cls, path: str | Path) -> LinkConfig:
        """Load a TOML file (top-level keys as in :class:`LinkConfig`, ``[encoder_options]`` tables)."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def resolve(cls, config: ConfigLike = None, /, *, defaults: Mapping[str, Any] | None = None,
                **arguments: Any) -> LinkConfig:
        """The configuration of one call: the one way every public function turns its arguments into a LinkConfig.

        ``config`` (see :func:`as_config`) is the base; every argument in ``arguments`` that is not
        None was passed by the caller and wins over ``config``, even when it equals the function's
        default.  ``on``/``left_on``/``right_on`` are checked by :func:`resolve_on`.  ``defaults``
        are the calling function's own defaults (e.g. ``merge_knn``'s ``k=5``), used for arguments not
        passed when there is no ``config``.  Unknown keys and invalid values raise ConfigError.
        """
        base = as_config(config)
        sides = {key: arguments.pop(key, None) for key in ("on", "left_on", "right_on")}
        changes = {key: value for key, value in arguments.items() if value is not None}
        changes.update(resolve_on(sides["on"], sides["left_on"], sides["right_on"]))
        if config is None:
            changes = {**dict(defaults or {}), **changes}
        return base.replace(**changes) if changes else base

    def replace(self, **changes: Any) -> LinkConfig:
        """A copy with ``changes`` applied (validated; unknown keys raise ConfigError)."""
        names = self.field_names()
        for key in changes:
            if key not in names:
                raise ConfigError(f"unknown config key {key!r}.{did_you_mean(key, names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
