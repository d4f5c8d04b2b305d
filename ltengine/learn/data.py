"""Training input, normalised: every learner reads one canonical frame.

:func:`training_pairs` turns what users label into a frame with the columns ``left_text``,
``right_text`` (records serialised exactly as :func:`ltengine.merge` serialises them), ``label``
(int 0/1) and ``entity`` (an id: rows that share a text, directly or through other rows, share an
entity).  Accepted inputs, as LinkTransformer accepts them:

- positive pairs: one row per linked pair, ``left_on`` / ``right_on`` columns;
- labelled pairs: the same with a ``label`` column of 1/0 (0 = a known non-match);
- a clustered frame: ``cluster`` column + ``on`` columns; every two rows of a cluster are a positive pair.

:func:`entity_split` splits such a frame by entity, never by row, so that a held-out half shares
no entity (and no text of a linked group) with the training half.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import Columns, as_columns
from ltengine.engine.text import check_columns, check_frame, serialize
from ltengine.errors import FileFormatError, LinkInputError

#: The canonical columns, in order.
COLUMNS = ("left_text", "right_text", "label", "entity")
#: Clusters up to this size give every pair of their rows; larger ones give each row this many
#: partners (seeded), so that one big cluster does not drown the others.
ALL_PAIRS_UP_TO = 10


def _as_list(columns: Columns, field: str = "columns") -> list[str]:
    return list(as_columns(columns, field))


def read_training_table(data: Any, what: str = "data") -> pd.DataFrame:
    """A DataFrame as is; a CSV, TSV, Excel or Parquet path read into one (FileFormatError otherwise)."""
    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, (str, Path)):
        raise LinkInputError(f"{what} must be a pandas DataFrame or a CSV/Excel/Parquet path; got {type(data).__name__}")
    path = Path(data).expanduser()
    if not path.is_file():
        raise FileFormatError(f"{what}: {str(path)!r} does not exist or is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
        if suffix in (".xlsx", ".xls"):
            return pd.read_excel(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, ImportError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise FileFormatError(f"cannot read {what} {str(path)!r}: {type(exc).__name__}: {exc}") from None
    raise FileFormatError(f"{what}: {str(path)!r} is not a .csv, .tsv, .xlsx or .parquet file")


#: Side suffixes stripped from pair columns to name a multi-column record's fields as ``merge`` does.
SIDE_SUFFIXES = (("_x", "_y"), ("_left", "_right"), ("_l", "_r"), ("_a", "_b"), ("_1", "_2"), ("1", "2"))


def field_names(left_cols: list[str], right_cols: list[str]) -> tuple[list[str], list[str]]:
    """The field labels of multi-column records: ``merge`` writes ``name: … | city: …`` with the
    linked tables' own column names, so pair columns named per side (``name_x``/``name_y``,
    ``name_left``/``name_right``, ``name_a``/``name_b``, ``name_1``/``name_2``) are labelled without
    the side suffix (``name``); other names are kept as they are."""
    if len(left_cols) != len(right_cols) or len(left_cols) < 2:
        return left_cols, right_cols
    left_out, right_out = list(left_cols), list(right_cols)
    for i, (a, b) in enumerate(zip(left_cols, right_cols)):
        for sl, sr in SIDE_SUFFIXES:
            if a.endswith(sl) and b.endswith(sr) and a[: -len(sl)] == b[: -len(sr)] and a[: -len(sl)]:
                left_out[i] = right_out[i] = a[: -len(sl)]
                break
    return left_out, right_out


def _serialized(df: pd.DataFrame, columns: list[str], labels: list[str], side: str) -> np.ndarray:
    frame = df[columns].set_axis(labels, axis=1) if labels != columns else df
    return serialize(frame, labels, side).to_numpy(dtype=object)


def _labels(values: pd.Series, column: str) -> np.ndarray:
    """A label column as int 0/1: accepts 0/1 numbers, booleans and the strings "0"/"1"/"true"/"false"."""
    mapping = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0}
    text = values.map(lambda v: None if pd.isna(v) else str(v).strip().lower())
    bad = text[~text.isin(list(mapping))]
    if len(bad):
        row, value = bad.index[0], values.loc[bad.index[0]]
        row, value = (x.item() if isinstance(x, np.generic) else x for x in (row, value))
        raise LinkInputError(
            f"the label column {column!r} must hold 1 (same entity) or 0 (different entities); row {row!r} has "
            f"{value!r} ({len(bad)} such rows). Map it first, e.g. df[{column!r}] = (df[{column!r}] == 'match').astype(int)."
        )
    return text.map(mapping).to_numpy(dtype=np.int64)


def _components(pairs: list[tuple[str, str]], edges: np.ndarray) -> np.ndarray:
    """Connected-component id of each pair over the graph whose nodes are texts (either side) and
    whose edges are the pairs where ``edges`` is True."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    codes, _ = pd.factorize(pd.Series([t for pair in pairs for t in pair], dtype=object))
    left, right = codes[0::2], codes[1::2]
    n = int(codes.max()) + 1 if len(codes) else 0
    graph = coo_matrix((np.ones(int(edges.sum())), (left[edges], right[edges])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    return component[left]


def _cluster_pairs(df: pd.DataFrame, cluster: str, on: list[str], seed: int) -> pd.DataFrame:
    check_columns(df, [cluster, *on], "training", "cluster/text")
    texts = serialize(df, on, "left").to_numpy(dtype=object)
    ids = df[cluster].to_numpy(dtype=object)
    keep = pd.notna(df[cluster]).to_numpy() & (texts != "")
    rng = np.random.default_rng(seed)
    left, right, entity = [], [], []
    groups = pd.Series(np.arange(len(df)))[keep].groupby(pd.Series(ids)[keep].astype(str).to_numpy())
    for key, rows in groups:
        members = list(dict.fromkeys(texts[rows.to_numpy()]))  # distinct texts of the cluster
        if len(members) < 2:
            continue
        if len(members) <= ALL_PAIRS_UP_TO:
            chosen = [(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
        else:
            chosen = []
            for i, a in enumerate(members):
                partners = rng.choice([j for j in range(len(members)) if j != i], ALL_PAIRS_UP_TO - 1, replace=False)
                chosen += [(a, members[j]) for j in partners]
        left += [a for a, _ in chosen]
        right += [b for _, b in chosen]
        entity += [key] * len(chosen)
    if not left:
        raise LinkInputError(
            f"the cluster column {cluster!r} has no cluster with two or more distinct non-empty records "
            f"({len(df)} rows, all singletons): nothing to learn from. Each cluster id must be shared by the "
            "rows that are the same entity."
        )
    frame = pd.DataFrame({"left_text": left, "right_text": right, "label": 1})
    frame["entity"] = pd.factorize(pd.Series(entity, dtype=object).astype(str))[0]
    return frame


def training_pairs(
    data: Any,
    *,
    left_on: Columns = None,
    right_on: Columns = None,
    on: Columns = None,
    label: str | None = None,
    cluster: str | None = None,
    left_id: str | None = None,
    right_id: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The canonical training frame (:data:`COLUMNS`) of ``data`` (a frame or a file path).

    Pairs: ``left_on``/``right_on`` (or ``on`` for both), optional ``label`` (1/0).  Clusters:
    ``cluster`` + ``on``.  ``left_id``/``right_id`` (optional) link pairs into entities by id as
    well as by text.  Raises :class:`LinkInputError` for missing columns, labels other than 0/1,
    records whose text is empty, no positive pair, or clusters that are all singletons.
    """
    df = check_frame(read_training_table(data), "training")
    if len(df) == 0:
        raise LinkInputError("the training data has no rows")
    if cluster is not None:
        columns = _as_list(on) or _as_list(left_on)
        if not columns:
            raise LinkInputError(f"with cluster={cluster!r}, name the text column(s) with on=")
        return _cluster_pairs(df, cluster, columns, seed)
    left_cols, right_cols = _as_list(left_on) or _as_list(on), _as_list(right_on) or _as_list(on)
    if not left_cols or not right_cols:
        raise LinkInputError("name the text columns: left_on= and right_on= (one row per pair), or on= for both, "
                             "or cluster= with on= for a clustered frame")
    check_columns(df, left_cols, "training", "left text")
    check_columns(df, right_cols, "training", "right text")
    left_labels, right_labels = field_names(left_cols, right_cols)
    left = _serialized(df, left_cols, left_labels, "left")
    right = _serialized(df, right_cols, right_labels, "right")
    empty = np.flatnonzero((left == "") | (right == ""))
    if len(empty):
        rows = df.index[empty[:5]].tolist()
        raise LinkInputError(
            f"{len(empty)} training pair(s) have an empty left or right record (rows {rows}"
            f"{', ...' if len(empty) > 5 else ''}): drop them first, e.g. df = df.dropna(subset=[...])"
        )
    if label is not None:
        check_columns(df, [label], "training", "label")
        labels = _labels(df[label], label)
    else:
        labels = np.ones(len(df), dtype=np.int64)
    if not (labels == 1).any():
        raise LinkInputError(
            f"the training data has no positive pair (label {label!r} is 0 on all {len(df)} rows): "
            "contrastive training needs pairs that are the same entity"
        )
    nodes = [(str(a), str(b)) for a, b in zip(left, right)]
    if left_id is not None or right_id is not None:
        check_columns(df, [c for c in (left_id, right_id) if c], "training", "id")
        lid = df[left_id].astype(str).to_numpy() if left_id else left
        rid = df[right_id].astype(str).to_numpy() if right_id else right
        nodes = [("L\0" + str(a), "R\0" + str(b)) for a, b in zip(lid, rid)]
    entity = _components(nodes, labels == 1)
    return pd.DataFrame({"left_text": left, "right_text": right, "label": labels, "entity": entity})


def entity_split(frame: pd.DataFrame, val_share: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a canonical frame into (train, held out) by entity: about ``val_share`` of the positive
    pairs go to the held-out part, whole entities at a time (connected pairs stay on one side)."""
    if not 0.0 <= val_share < 1.0:
        raise LinkInputError(f"the validation share must be in [0, 1); got {val_share!r}")
    if val_share == 0.0 or frame.empty:
        return frame.reset_index(drop=True), frame.iloc[:0].reset_index(drop=True)
    positives = frame[frame["label"] == 1].groupby("entity").size()
    order = np.random.default_rng(seed).permutation(positives.index.to_numpy())
    sizes = positives.loc[order].to_numpy()
    target = val_share * sizes.sum()
    held = set(order[: int(np.searchsorted(np.cumsum(sizes), target, side="left")) + 1].tolist())
    if len(held) >= len(order):  # always leave something to train on
        held = set(order[: max(0, len(order) - 1)].tolist())
    mask = frame["entity"].isin(held).to_numpy()
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
