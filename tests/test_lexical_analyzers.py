"""The ``char-ngram`` retriever's analyzers: the ``auto`` choice, raw vs romanised keys, word weighting,
and ``score_pairs``/``pair_features`` agreeing with ``search``."""

from __future__ import annotations

import numpy as np
import pytest
from ltengine_plugins._lexical_analyzers import parse_analyzer, row_weights

from ltengine import get_host
from ltengine.errors import ConfigError
from ltengine.lexical.names import raw_key


def _retriever(right: list[str], **options):
    retriever = get_host().registry.get("retriever", "char-ngram").create(options=options)
    retriever.build(right, np.arange(len(right)))
    return retriever


LATIN_SHORT = ["Athens", "Oslo", "Madrid", "Lisbon", "Seville", "Bilbao"]
LONG = ["fresh whole milk in glass bottles of one litre", "skimmed milk powder in bags of twenty five kilograms",
        "frozen boneless beef cuts for industrial processing", "fresh chilled atlantic salmon fillets with skin",
        "dried pasta of durum wheat not stuffed nor cooked", "olive oil extra virgin in bottles of one litre"]
KANJI = ["東京都千代田区丸の内", "大阪府大阪市北区梅田", "京都府京都市中京区", "東京都港区六本木", "北海道札幌市中央区"]


def test_auto_chooses_from_the_right_hand_texts() -> None:
    assert _retriever(LATIN_SHORT, analyzer="auto").index_type == "char-ngram:romanised+raw"
    long = _retriever(LONG, analyzer="auto")
    assert long.index_type == "char-ngram:romanised+raw+words"
    assert long.analysis["median_words"] >= 4 and long.analysis["script_groups"] == ["Latin"]
    assert _retriever(LATIN_SHORT).index_type == "char-ngram:romanised+raw"  # the shipped default
    assert _retriever(LONG, analyzer="raw+words").index_type == "char-ngram:raw+words"


def test_auto_weighs_each_query_text_by_its_script() -> None:
    parts, latin = ("romanised", "raw"), frozenset({"Latin"})
    assert row_weights("Madrid", parts, True, latin) == (0.0, 1.0)  # same script: raw
    assert row_weights("Мадрид", parts, True, latin) == (1.0, 0.0)  # cross-script: romanised, as before
    assert row_weights("12345", parts, True, latin) == (0.0, 1.0)  # no letters: raw
    mixed = row_weights("Мадрид", parts, True, frozenset({"Latin", "Cyrillic"}))
    assert mixed == (0.5, 0.5)  # a column that mixes scripts: both
    assert row_weights("x", ("raw", "words"), False, latin) == (0.5, 0.5)  # explicit: equal split
    retriever = _retriever(LATIN_SHORT, analyzer="auto")
    hits = retriever.search(["Мадрид", "Madrid"], np.arange(2), 1)  # both kinds in one batch
    assert list(hits.id_r) == [LATIN_SHORT.index("Madrid")] * 2


def test_raw_keeps_kanji_that_romanising_merges() -> None:
    assert raw_key("Café ＡＢＣ") == "cafe abc"
    assert raw_key("ガスプロム") == "ガスプロム"  # kana voicing marks stay
    # 東京 and 投狂 share sounds when romanised but no character
    right = ["東京", "投狂"]
    romanised = _retriever(right, analyzer="romanised")
    raw = _retriever(right, analyzer="raw")
    shared_sound = romanised.score_pairs(["東京"], np.array([1]))[0]
    assert raw.score_pairs(["東京"], np.array([1]))[0] < shared_sound  # raw: only the word-boundary n-gram
    assert raw.search(["東京都"], np.array([0]), 1).id_r.tolist() == [0]
    auto = _retriever(KANJI, analyzer="auto")
    assert auto.analysis["script_groups"] == ["Han"]
    top = auto.search(["東京都港区"], np.array([0]), 1)
    assert top.id_r.tolist() == [3]


def test_words_weigh_shared_rare_words_in_long_records() -> None:
    words = _retriever(LONG, analyzer="words")
    query = "milk bottles glass fresh whole"  # the words of record 0, reordered
    assert words.search([query], np.array([0]), 1).id_r.tolist() == [0]
    scores = words.score_pairs([query] * len(LONG), np.arange(len(LONG)))
    assert scores[0] > 0.7 and (scores[1:] < 0.3).all()
    auto = _retriever(LONG, analyzer="auto")
    assert auto.search([query], np.array([0]), 1).id_r.tolist() == [0]


@pytest.mark.parametrize("analyzer", ["auto", "romanised", "raw", "words", "raw+words", "raw+romanised+words"])
@pytest.mark.parametrize("right", [LATIN_SHORT, LONG, KANJI])
def test_score_pairs_and_pair_features_agree_with_search(analyzer: str, right: list[str]) -> None:
    retriever = _retriever(right, analyzer=analyzer)
    queries = [*right[:3], "Мадрид", "東京都", "whole milk"]
    hits = retriever.search(queries, np.arange(len(queries)), 3)
    texts = [queries[i] for i in hits.id_l]
    scores = retriever.score_pairs(texts, hits.id_r.to_numpy())
    np.testing.assert_allclose(scores, hits.retrieval_score.to_numpy(), rtol=1e-5, atol=1e-6)
    features = retriever.pair_features(texts, hits.id_r.to_numpy())
    np.testing.assert_allclose(features["score_lexical"], scores, rtol=1e-6)
    assert set(features) > {"score_lexical"}
    assert ((0 <= scores) & (scores <= 1 + 1e-5)).all()
    # a row's scores do not depend on the rest of its batch
    alone = retriever.search(queries[:1], np.arange(1), 3)
    np.testing.assert_allclose(alone.retrieval_score, hits[hits.id_l == 0].retrieval_score, rtol=1e-6)


def test_bad_analyzer_names_the_value() -> None:
    assert parse_analyzer("words+raw") == ("raw", "words")
    assert parse_analyzer("auto") == ()
    for bad in ("stems", "raw+raw", ""):
        with pytest.raises(ConfigError, match="analyzer"):
            get_host().registry.get("retriever", "char-ngram").create(options={"analyzer": bad})
    with pytest.raises(ConfigError, match="raw_ngram_kind"):
        get_host().registry.get("retriever", "char-ngram").create(options={"raw_ngram_kind": "word"})
