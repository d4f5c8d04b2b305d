"""lt.explain, lt.plot_scores and ``ltengine explain``, against stand-in calibrations with known parameters
(a logistic model and a Fellegi-Sunter binned model), and against a real merge once it carries one."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
from ltengine.cli.commands import cli
from ltengine.cli.explain import report_path
from ltengine.errors import ColumnError, LinkInputError, LinkWarning
from ltengine.evaluate.match_weights import contributions, find_calibration

LOGISTIC = {"method": "logistic", "features": ["score_semantic", "score_lexical", "gap_semantic"],
            "weights": [6.0, 3.0, 4.0], "intercept": -5.0}
FS = {"method": "fellegi-sunter", "prior": 0.2, "features": {
    "score_semantic": {"edges": [0.5, 0.8], "m": [0.05, 0.15, 0.8], "u": [0.6, 0.3, 0.1]},
    "score_lexical": {"edges": [0.3], "m": [0.2, 0.8], "u": [0.9, 0.1]},
}}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _output(calibration: dict) -> pd.DataFrame:
    out = pd.DataFrame({
        "text_l": ["Toyota", "Gazprom", "Nestle", "Bank of China"],
        "text_r": ["Toyota Motor", "Rosneft", "Nestlé S.A.", "China Construction Bank"],
        "score_semantic": [0.92, 0.41, 0.77, 0.66],
        "score_lexical": [0.71, 0.05, 0.52, 0.24],
        "gap_semantic": [0.0, -0.12, 0.0, -0.03],
    })
    out["score"] = out["score_semantic"]
    start, _, _ = contributions(calibration, lambda name: 0.0)
    log_odds = [start + sum(t.log_odds for t in contributions(calibration, lambda n, r=r: float(r[n]))[1])
                for _, r in out.iterrows()]
    out["match_probability"] = _sigmoid(np.asarray(log_odds))
    out.attrs["ltengine"] = {"report": {"calibration": calibration}}
    return out


def test_logistic_contributions_add_up_from_the_intercept() -> None:
    out = _output(LOGISTIC)
    why = lt.explain(out, 0)
    table = why.table
    assert list(table["step"]) == ["prior", "feature", "feature", "feature", "final"]
    assert list(table["feature"][1:4]) == LOGISTIC["features"]
    assert table["log_odds"].iloc[0] == -5.0
    assert table["log_odds"].iloc[1:4].tolist() == pytest.approx([6.0 * 0.92, 3.0 * 0.71, 0.0])
    assert table["log_odds"].iloc[-1] == pytest.approx(-5.0 + 6.0 * 0.92 + 3.0 * 0.71)
    assert table["match_weight"].tolist() == pytest.approx((table["log_odds"] / math.log(2)).tolist())
    # each step starts where the last one ended, and the last equals the stored probability
    assert table["probability_before"].iloc[2:4].tolist() == pytest.approx(table["probability_after"].iloc[1:3].tolist())
    assert why.match_probability == pytest.approx(out["match_probability"].iloc[0])
    assert why.reported_probability == pytest.approx(why.match_probability)
    assert why.method == "logistic"
    assert "Toyota" in str(why) and "score_lexical" in str(why)


def test_logistic_with_mapping_weights_and_standardisation() -> None:
    calibration = {"weights": {"score_semantic": 2.0}, "mean": {"score_semantic": 0.5},
                   "scale": {"score_semantic": 0.25}, "intercept": 0.0}
    start, terms, method = contributions(calibration, lambda name: 0.75)
    assert (start, method) == (0.0, "logistic")
    assert terms[0].log_odds == pytest.approx(2.0)


def test_fellegi_sunter_bins_give_log_m_over_u() -> None:
    out = _output(FS)
    table = lt.explain(out, 1).table  # semantic 0.41 -> first bin, lexical 0.05 -> first bin
    assert table["log_odds"].iloc[0] == pytest.approx(math.log(0.2 / 0.8))
    assert table["log_odds"].iloc[1] == pytest.approx(math.log(0.05 / 0.6))
    assert table["log_odds"].iloc[2] == pytest.approx(math.log(0.2 / 0.9))
    assert table["bin"].iloc[1:3].tolist() == ["[-inf, 0.5)", "[-inf, 0.3)"]
    high = lt.explain(out, 0).table
    assert high["bin"].iloc[1] == "[0.8, inf)" and high["log_odds"].iloc[1] == pytest.approx(math.log(8.0))


def test_fellegi_sunter_with_outer_edges_and_a_missing_value() -> None:
    spec = {"prior_log_odds": 0.0, "features": [{"name": "x", "edges": [0.0, 0.5, 1.0], "log_odds": [-1.0, 2.0]}]}
    assert contributions(spec, lambda name: 0.7)[1][0].log_odds == 2.0
    assert contributions(spec, lambda name: 1.5)[1][0].log_odds == 2.0  # beyond the outer edge: last bin
    missing = contributions(spec, lambda name: math.nan)[1][0]
    assert (missing.log_odds, missing.bin) == (0.0, "missing")


def test_waterfall_plot_returns_a_figure_and_saves(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    out = _output(LOGISTIC)
    why = lt.explain(out, 2, plot=True)
    assert isinstance(why.figure, Figure)
    target = tmp_path / "why.png"
    figure = lt.explain(out, 2, path=target).figure
    assert isinstance(figure, Figure) and target.stat().st_size > 1000
    assert isinstance(why.plot(tmp_path / "again.svg"), Figure) and (tmp_path / "again.svg").exists()


def test_plot_scores_draws_components_and_the_cut(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    out = _output(LOGISTIC)
    target = tmp_path / "scores.png"
    figure = lt.plot_scores(out, target)
    assert isinstance(figure, Figure) and target.stat().st_size > 1000
    assert len(figure.axes) == 2
    assert any("cut 0.5" in text.get_text() for text in figure.axes[1].get_legend().get_texts())
    only_probability = lt.plot_scores(out.drop(columns="score"))
    assert len(only_probability.axes) == 1
    binned = lt.plot_scores(_output(FS))
    assert len(binned.axes) == 3 and binned.axes[2].get_title() == "fitted match weight per bin"
    assert [t.get_text() for t in binned.axes[2].get_legend().get_texts()] == ["score_semantic", "score_lexical"]
    with pytest.raises(LinkInputError, match="no calibration"):
        lt.plot_scores(out, report={"calibration": {"nothing": 1}})
    with_unmatched = pd.concat([out, pd.DataFrame({"text_l": ["alone"]})], ignore_index=True)
    assert isinstance(lt.plot_scores(with_unmatched), Figure)


def test_errors_name_what_is_wrong() -> None:
    out = _output(LOGISTIC)
    with pytest.raises(LinkInputError, match="row 4 is out of range: the output has 4 rows"):
        lt.explain(out, 4)
    with pytest.raises(LinkInputError, match="row must be an output row position"):
        lt.explain(out, "0")  # type: ignore[arg-type]
    with pytest.raises(ColumnError, match="'gap_semantic'.*keep the feature columns"):
        lt.explain(out.drop(columns="gap_semantic"), 0)
    bare = out.copy()
    bare.attrs = {}
    with pytest.raises(LinkInputError, match="no calibration.*this output has no fitted match_probability"):
        lt.explain(bare, 0)
    with pytest.raises(ColumnError, match="no match_probability column"):
        lt.explain(out.drop(columns="match_probability").assign(), 0, report=None)
    with pytest.raises(ColumnError, match="no match_probability column"):
        lt.plot_scores(out.drop(columns="match_probability"))
    with pytest.raises(LinkInputError, match="prior must be a share"):
        contributions({"prior": 1.5, "features": FS["features"]}, lambda name: 0.5)
    with pytest.raises(LinkInputError, match="2 bins need 1 inner edges"):
        contributions({"prior": 0.5, "features": {"x": {"edges": [0.1, 0.2, 0.3, 0.4], "m": [0.5, 0.5],
                                                        "u": [0.5, 0.5]}}}, lambda name: 0.5)
    text = out.astype({"gap_semantic": object})
    text.loc[0, "gap_semantic"] = "high"
    with pytest.raises(ColumnError, match="'gap_semantic' holds 'high', not a number"):
        lt.explain(text, 0)


def test_a_report_that_did_not_score_the_output_warns() -> None:
    out = _output(LOGISTIC)
    other = dict(LOGISTIC, intercept=-1.0)
    with pytest.warns(LinkWarning, match="not the one that scored this output"):
        why = lt.explain(out, 0, report={"calibration": other})
    assert why.table["log_odds"].iloc[0] == -1.0


def test_report_forms_are_all_found(tmp_path: Path) -> None:
    out = _output(FS)
    for form in (FS, {"calibration": FS}, {"report": {"calibration": FS}}, {"ltengine": {"report": {"calibration": FS}}}):
        assert find_calibration(report=form)["prior"] == 0.2
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"calibration": FS}), encoding="utf-8")
    assert lt.explain(out, 0, report=path).match_probability == pytest.approx(out["match_probability"].iloc[0])
    with pytest.raises(LinkInputError, match="cannot read the run report"):
        find_calibration(report=tmp_path / "absent.json")


def test_cli_explains_a_csv_row_with_the_report_beside_it(tmp_path: Path) -> None:
    out = _output(LOGISTIC)
    linked = tmp_path / "linked.csv"
    out.to_csv(linked, index=False)
    runner = CliRunner()
    missing = runner.invoke(cli, ["explain", str(linked), "--row", "0"])
    assert missing.exit_code != 0 and "linked.csv.report.json" in missing.output and "not found" in missing.output
    report_path(linked).write_text(json.dumps(out.attrs["ltengine"]["report"]), encoding="utf-8")
    chart = tmp_path / "chart.png"
    result = runner.invoke(cli, ["explain", str(linked), "--row", "0", "--out", str(chart)])
    assert result.exit_code == 0, result.output
    assert "score_semantic" in result.output and "final" in result.output and chart.stat().st_size > 1000
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"calibration": LOGISTIC}), encoding="utf-8")
    assert runner.invoke(cli, ["explain", str(linked), "--row", "3", "--report", str(elsewhere)]).exit_code == 0
    bad_row = runner.invoke(cli, ["explain", str(linked), "--row", "9"])
    assert bad_row.exit_code != 0 and "row 9 is out of range" in bad_row.output


def test_a_real_merge_is_explained_from_the_features_it_keeps(firms) -> None:
    left, right = firms
    out = lt.merge(left, right, on="name", progress=False, keep_unmatched=True, threshold="auto")
    calibration = out.attrs["ltengine"]["report"]["calibration"]
    assert len(lt.plot_scores(out).axes) == 3  # scores, probabilities, fitted weights per bin
    assert "score_margin" in calibration["features"] and "score_margin" not in out.columns
    assert not any(str(c).startswith("__ltengine") for c in out.columns)  # the margin rides in attrs, not columns
    matched = np.flatnonzero(out["match_probability"].notna().to_numpy())
    assert len(matched) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinkWarning)  # the explained probability is the output's, exactly
        for row in matched:
            why = lt.explain(out, int(row))
            assert why.match_probability == pytest.approx(float(out["match_probability"].iloc[row]), abs=1e-3)
        subset = out.iloc[matched[-2:]]  # a subset keeps its index labels, so its rows are still found
        assert lt.explain(subset, 1).match_probability == pytest.approx(float(subset["match_probability"].iloc[1]),
                                                                        abs=1e-3)
    with pytest.raises(ColumnError, match="score_margin"):  # lost with the attrs (e.g. read from a CSV file)
        lt.explain(pd.DataFrame(out.iloc[[int(matched[0])]].to_dict("list")), 0,
                   report=out.attrs["ltengine"]["report"])


def test_explain_reproduces_the_engines_match_model_from_its_report() -> None:
    decide = pytest.importorskip("ltengine.engine.calibration")
    if "fit_match_model" not in vars(decide):
        pytest.skip("no MatchModel in ltengine.engine.calibration")
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(40), 5)
    score = np.round(np.where(np.arange(200) % 5 == 0, rng.uniform(0.6, 1.0, 200), rng.uniform(0.0, 0.7, 200)), 3)
    features = pd.DataFrame({"score": score, "score_margin": np.round(rng.uniform(-0.5, 0.5, 200), 3)})
    model = decide.fit_match_model(features, rows)
    out = features.assign(match_probability=model.predict(features))
    out.attrs["ltengine"] = {"report": {"calibration": model.describe()}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinkWarning)
        got = [lt.explain(out, row).match_probability for row in range(len(out))]
    assert got == pytest.approx(out["match_probability"].tolist(), abs=1e-3)


def test_margins_are_recomputed_from_a_knn_outputs_candidates(tmp_path: Path) -> None:
    from ltengine.evaluate.explain import derive_margin

    knn = pd.DataFrame({"score": [0.9, 0.6, 0.2, 0.5, 0.45], "rank": [1, 2, 3, 1, 2]})
    assert derive_margin(knn, 0, "score_margin") == pytest.approx(0.3)  # best: minus the second best
    assert derive_margin(knn, 2, "score_margin") == pytest.approx(-0.7)  # others: minus the best
    assert derive_margin(knn, 4, "score_margin") == pytest.approx(-0.05)
    assert derive_margin(knn.iloc[[0]], 0, "score_margin") is None  # no second candidate
    assert derive_margin(knn, 0, "other_margin") is None
    calibration = {"prior_logit": 0.0, "features": {"score_margin": {"edges": [0.0], "weights": [-1.0, 2.0]}}}
    knn["match_probability"] = _sigmoid(np.where(knn["score"].isin([0.9, 0.5]), 2.0, -1.0))
    knn.attrs["ltengine"] = {"report": {"calibration": calibration}}
    why = lt.explain(knn, 3)
    assert why.derived == ["score_margin"] and why.table["value"].iloc[1] == pytest.approx(0.05)
    assert why.match_probability == pytest.approx(_sigmoid(np.array(2.0)))
    assert "recomputed from the row's candidates" in str(why)
    linked = tmp_path / "knn.csv"  # read back as text: numbers and ranks are parsed
    knn.to_csv(linked, index=False)
    report_path(linked).write_text(json.dumps(knn.attrs["ltengine"]["report"]), encoding="utf-8")
    result = CliRunner().invoke(cli, ["explain", str(linked), "--row", "3"])
    assert result.exit_code == 0 and "recomputed from the row's candidates" in result.output, result.output
    with pytest.raises(ColumnError, match="'score_margin' \\(a pair's margin"):
        lt.explain(knn.drop(columns="rank").iloc[[0]], 0)


def test_a_real_knn_output_is_explained_row_by_row(firms) -> None:
    left, right = firms
    knn = lt.merge_knn(left, right, on="name", k=10, progress=False)
    calibration = knn.attrs["ltengine"]["report"].get("calibration")
    if calibration is None:
        pytest.skip("merge_knn does not write a calibration yet (issue 16 item 2)")
    edges = np.concatenate([np.asarray(spec["edges"], dtype=float) for spec in calibration["features"].values()])
    checked = 0
    for row in range(len(knn)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LinkWarning)
            why = lt.explain(knn, row)
        values = why.table["value"].dropna().to_numpy()
        if np.abs(values[:, None] - edges[None, :]).min() < 1e-6:
            continue  # on a bin edge the report rounds (6 decimals): either bin may be the engine's
        assert why.match_probability == pytest.approx(float(knn["match_probability"].iloc[row]), abs=1e-3), row
        checked += 1
    assert checked >= 5  # most values are edges here (equal-mass edges are data points)


def test_cli_link_writes_the_report_that_explain_reads(tmp_path: Path) -> None:
    """`ltengine link --knn` writes <out>.report.json beside the output; `ltengine explain` finds it alone."""
    pd.DataFrame({"name": ["Acme Inc", "Globex GmbH", "Initech"]}).to_csv(tmp_path / "l.csv", index=False)
    pd.DataFrame({"name": ["ACME Incorporated", "Globex", "Initech LLC", "Umbrella"]}).to_csv(tmp_path / "r.csv",
                                                                                             index=False)
    out = tmp_path / "linked.csv"
    runner = CliRunner()
    linked = runner.invoke(cli, ["link", str(tmp_path / "l.csv"), str(tmp_path / "r.csv"), "--on", "name", "--knn",
                                 "--k", "3", "--no-progress", "--out", str(out)])
    assert linked.exit_code == 0, linked.output
    report = json.loads(report_path(out).read_text(encoding="utf-8"))
    assert report["left_rows"] == 3 and "calibration" in report
    result = runner.invoke(cli, ["explain", str(out), "--row", "0", "--out", str(tmp_path / "why.png")])
    assert result.exit_code == 0, result.output
    assert "prior" in result.output and (tmp_path / "why.png").stat().st_size > 0
