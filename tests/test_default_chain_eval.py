"""The default-chain benchmark's pieces: sdist loaders (an in-memory tarball, no network), calibration
metrics on known values, and the top-1 / TF-IDF helpers on tiny tables."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pandas as pd
import pytest

from evals import calibration as cal
from evals import entity_matching as em
from evals.datasets import LinkTask


def _tarball(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(em.PREFIX + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def sdist() -> io.BytesIO:
    return _tarball({
        "end-to-end/restaurants/fodors.csv": "id,name,addr,city,phone,type\n"
        "1,arts delicatessen,12224 ventura blvd.,studio city,818/762-1221,american\n"
        "2,hotel bel-air,701 stone canyon rd.,bel air,310/472-1211,californian\n"
        "3,nowhere cafe ,1 main st.,la,000,cafe\n",
        "end-to-end/restaurants/zagats.csv": "id,name,addr,city,phone,type\n"
        "10,arts deli,12224 ventura blvd.,studio city,818-762-1221,delis\n"
        "11,bel-air hotel,701 stone canyon rd.,bel air,310-472-1211,californian\n",
        "end-to-end/restaurants/matches_fodors_zagats.csv": "fodors_id,zagats_id\n1,10\n2,11\n",
        "DBLP.csv": "id,title,authors,venue,year\nconf/a,Query   Optimisation,A. B,VLDB,1999.0\n"
        "conf/b,Unlabelled,C. D,VLDB,2000.0\n",
        "ACM.csv": "id,title,authors,venue,year\n501,Query optimisation,A. B,Very Large Data Bases,1999\n"
        "502,Other,E. F,SIGMOD,2001\n",
        "dblp_acm_demo_labels.csv": "#key=_id\n_id,ltable.id,rtable.id,gold\n0,conf/a,501,1\n1,conf/b,502,0\n",
    })


def test_restaurants_from_tarball(sdist: io.BytesIO) -> None:
    task = em.restaurants(sdist)
    assert task.text_columns == ["name", "addr", "city", "type"]  # phone withheld by default
    assert set(task.left["id"]) == {"f1", "f2", "f3"} and set(task.right["id"]) == {"z10", "z11"}
    assert sorted(zip(task.gold["id_l"], task.gold["id_r"])) == [("f1", "z10"), ("f2", "z11")]
    assert task.meta["gold_complete"] is True
    assert task.left.loc[task.left["id"] == "f3", "name"].item() == "nowhere cafe"  # stripped
    assert "phone" in em.restaurants(sdist, phone=True).text_columns


def test_dblp_acm_from_tarball(sdist: io.BytesIO) -> None:
    task = em.dblp_acm(sdist)
    assert list(task.left["id"]) == ["conf/a"]  # only positively labelled DBLP records are queries
    assert set(task.right["id"]) == {"501", "502"}
    assert list(zip(task.gold["id_l"], task.gold["id_r"])) == [("conf/a", "501")]
    assert task.left["year"].item() == "1999" and task.left["title"].item() == "Query Optimisation"
    assert task.meta["gold_complete"] is False


def test_read_member_names_missing_file(sdist: io.BytesIO) -> None:
    with pytest.raises(KeyError):
        em.read_member(sdist, "nope.csv")


def test_sdist_checksum_mismatch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_EVAL_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download=True"):
        em.sdist_path(download=False)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / em.SDIST_NAME).write_bytes(b"not the sdist")
    with pytest.raises(ValueError, match="SHA-256"):
        em.sdist_path(download=False)


def test_cldr_cjk_same_codes() -> None:
    task = em.cldr_cjk("zh", "zh_Hant")
    codes = lambda ids: {i.split(":", 1)[1] for i in ids}
    assert codes(task.left["id"]) == codes(task.right["id"]) and len(task.gold) == len(task.left) > 200
    assert {a.split(":")[1] for a in task.gold["id_l"]} == {b.split(":")[1] for b in task.gold["id_r"]}


# -- calibration metrics -------------------------------------------------------------------------------
def test_equal_mass_bins_sizes_and_order() -> None:
    p = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8])
    bins = cal.equal_mass_bins(p, 3)
    assert [len(b) for b in bins] == [3, 2, 2]
    assert [list(p[b]) for b in bins] == [[0.1, 0.2, 0.3], [0.5, 0.7], [0.8, 0.9]]
    assert len(cal.equal_mass_bins(p, 10)) == 7  # never an empty bin
    assert cal.equal_mass_bins([0.5, 0.5, 0.5, 0.5], 2)[0].tolist() == [0, 1]  # ties: input order


def test_ece_known_values() -> None:
    # bin 1: p = 0.1, 0.1 with labels 0, 0 -> |0 - 0.1| = 0.1; bin 2: p = 0.9, 0.9 with labels 1, 0 -> 0.4
    assert cal.expected_calibration_error([0.1, 0.9, 0.1, 0.9], [0, 1, 0, 0], n_bins=2) == pytest.approx(0.25)
    assert cal.expected_calibration_error([0.0, 1.0], [0, 1], n_bins=2) == 0.0
    assert cal.expected_calibration_error([0.5] * 4, [1, 0, 1, 0], n_bins=1) == 0.0
    assert np.isnan(cal.expected_calibration_error([], []))


def test_brier_and_auc_known_values() -> None:
    assert cal.brier([1.0, 0.0, 0.5], [1, 0, 1]) == pytest.approx(0.25 / 3)
    assert cal.auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert cal.auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert cal.auc([0.5, 0.5], [1, 0]) == 0.5  # a tie counts one half
    assert cal.auc([0.3, 0.6, 0.6, 0.9], [0, 1, 0, 1]) == pytest.approx(0.875)
    assert np.isnan(cal.auc([0.2, 0.4], [1, 1]))


def test_metric_input_checks() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        cal.brier([0.1, 0.2], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cal.expected_calibration_error([1.5], [1])


def test_summary_and_reliability_plot(tmp_path) -> None:
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)  # calibrated by construction
    summary = cal.calibration_summary(p, y)
    assert summary["n"] == 1000 and len(summary["bins"]) == 10 and summary["ece"] < 0.06
    assert 0.7 < summary["auc"] < 0.9
    png = cal.reliability_plot({"a": summary["bins"], "b": summary["bins"]}, tmp_path / "r.png", "t")
    assert png.read_bytes()[:4] == b"\x89PNG"


# -- the benchmark's helpers ---------------------------------------------------------------------------
def _toy() -> LinkTask:
    left = pd.DataFrame({"id": ["l1", "l2", "l3"], "name": ["Springfield", "Shelbyville", "Ogdenville"]})
    right = pd.DataFrame({"id": ["r1", "r2", "r3", "r4"], "name": ["Springfield", "Springfield", "Shelbyvile", "Capital"]})
    gold = pd.DataFrame({"id_l": ["l1", "l2"], "id_r": ["r1", "r3"]})
    return LinkTask(left, right, gold, "toy")


def test_acceptable_top1_and_tfidf() -> None:
    from evals import default_chain as dc

    task = _toy()
    truth = dc.acceptable(task, ["name"])
    assert truth == {"l1": {"r1", "r2"}, "l2": {"r3"}}  # a right row with the same text counts
    assert dc.top1({"l1": "r2", "l2": "r4"}, truth) == 0.5
    assert dc.top1({}, truth) == 0.0
    picks = dc.tfidf_top1(task, ["name"], truth)
    assert set(picks) == {"l1", "l2"} and picks["l2"] == "r3" and picks["l1"] in {"r1", "r2"}
    assert list(dc.raw_text(pd.DataFrame({"a": ["x", None], "b": ["y", "z"]}), ["a", "b"])) == ["x y", "z"]


def test_calibration_labels() -> None:
    from evals import default_chain as dc

    knn = pd.DataFrame({"id_l": ["l1", "l1", "l9", "l9"], "id_r": ["r2", "r4", "r1", "r3"],
                        "match_probability": [0.9, 0.1, 0.2, np.nan]})
    truth = {"l1": {"r1", "r2"}}
    assert dc.calibration_labels(knn, truth, gold_complete=False)["label"].tolist() == [1, 0]
    assert dc.calibration_labels(knn, truth, gold_complete=True)["label"].tolist() == [1, 0, 0]


def test_registered() -> None:
    from evals.benchmarks import BENCHMARKS

    assert "default_chain" in BENCHMARKS


def test_result_tables_and_flags(tmp_path) -> None:
    from evals import default_chain as dc

    base = {"family": "f", "n_left": 3, "n_right": 3, "n_gold": 3, "default_mode": "semantic", "semantic": 0.9,
            "lexical": 0.95, "hybrid": 0.96, "tfidf": 0.5, "best": 0.95, "best_component": "lexical",
            "seconds_default": 1.0}
    rows = [dict(base, model="fast", set="a", default=0.9, gap_pts=-5.0, flag=True, vs_hybrid_pts=-6.0,
                 calibration=cal.calibration_summary([0.1, 0.9, 0.8], [0, 1, 1])),
            dict(base, model="fast", set="b", default=0.95, gap_pts=0.0, flag=False, vs_hybrid_pts=-1.0)]
    dedup = {"records": 4, "pairwise_f1": 0.5, "singletons_kept": 1.0}
    res = dc.result("quick", rows, "abc", dedup, results=tmp_path)
    assert res["flagged"] == ["fast:a"] and len(res["tables"]) == 2
    assert res["tables"][1]["rows"] == [[4, 0.5, 1.0]] and res["febrl3_cluster_rows"] == dedup
    table = res["tables"][0]
    assert table["rows"][0][table["columns"].index("ece")] == rows[0]["calibration"]["ece"]
    assert table["rows"][1][table["columns"].index("ece")] is None
    assert "| fast | a |" in res["markdown"] and "⚠" in res["markdown"]
    assert (tmp_path / "plots" / "default_chain-reliability-fast.png").exists()
