"""Multi-column records compared field by field (ltengine/lexical/fields.py) in the adaptive fusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.lexical.fields import field_similarity


def _columns(*rows: tuple[str, ...]) -> list[np.ndarray]:
    return [np.array(values, dtype=object) for values in zip(*rows)]


def test_each_filled_column_has_one_equal_say() -> None:
    left = ("Hector Garcia-Molina Speaks Out", "SIGMOD Record", "2002")
    gold = (("Hector Garcia-Molina speaks out: regarding startups, how life is getting harder, delta papers, "
            "CS in Mexico, life as a department chair, and more"), "ACM SIGMOD Record", "2002")
    other = ("Jim Gray speaks out", "ACM SIGMOD Record", "2003")
    scores = field_similarity(_columns(left, left), _columns(gold, other))
    assert scores[0] > scores[1]  # the long title does not drown the year
    same = field_similarity(_columns(left), _columns(left))
    assert same[0] == pytest.approx(1.0, abs=1e-6)


def test_a_column_empty_on_either_side_is_skipped_and_none_filled_is_nan() -> None:
    left = _columns(("Query processing techniques for arrays", ""), ("", ""), ("Arrays", "VLDB J."))
    right = _columns(("Query processing techniques for arrays", "The VLDB Journal"), ("x", "y"),
                     ("Arrays", ""))
    scores = field_similarity(left, right)
    assert scores[0] == pytest.approx(1.0, abs=1e-6)  # only the title is filled on both sides
    assert np.isnan(scores[1])
    assert scores[2] == pytest.approx(1.0, abs=1e-6)


def test_a_pairs_value_does_not_depend_on_the_other_pairs() -> None:
    rng = np.random.default_rng(0)
    words = np.array(["data", "base", "query", "vldb", "record", "1999", "2001", "müller", "mueller", "x"])
    left = [np.array([" ".join(rng.choice(words, 3)) for _ in range(40)], dtype=object) for _ in range(3)]
    right = [np.array([" ".join(rng.choice(words, 2)) for _ in range(40)], dtype=object) for _ in range(3)]
    whole = field_similarity(left, right)
    halves = np.concatenate([field_similarity([c[:17] for c in left], [c[:17] for c in right]),
                             field_similarity([c[17:] for c in left], [c[17:] for c in right])])
    assert np.array_equal(whole, halves)
    assert ((whole >= 0.0) & (whole <= 1.0)).all()


def test_mismatched_column_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="as many left as right columns"):
        field_similarity(_columns(("a", "b")), _columns(("a",)))


#: Papers in a journal, the first 8 also in a conference a year earlier with the same title.  The journal's record
#: gives the authors' initials, the conference's their full names, as the left table (citing the journal) does:
#: over the whole record the long author list makes the conference twin the closer one; venue and year disagree.
TITLES = [f"{a} {b} for {c}" for a in ("Adaptive", "Scalable", "Robust", "Incremental", "Approximate", "Parallel",
                                        "Secure", "Distributed")
          for b in ("query processing", "index structures", "join algorithms", "view maintenance")
          for c in ("sensor networks", "data streams")]
NAMES = ["Asuman Dogac", "Ugur Halici", "Ebru Kilic", "Gokhan Ozhan", "Fatma Ozcan", "Sena Nural", "Cevdet Dengi",
         "Sema Mancuhan", "Budak Arpinar", "Pinar Koksal", "Cem Evrendilek", "Nihan Kesim"]
AUTHORS = [", ".join(NAMES[(i + j) % len(NAMES)] for j in range(6)) for i in range(len(TITLES))]
INITIALS = [", ".join(f"{n[0]}. {n.split()[1]}" for n in a.split(", ")) for a in AUTHORS]
YEARS = [1995 + i % 8 for i in range(len(TITLES))]
TWINS = 8
PAPERS = pd.DataFrame({"title": TITLES[:TWINS] + TITLES, "authors": AUTHORS[:TWINS] + INITIALS,
                       "venue": ["SIGMOD Conference"] * TWINS + ["SIGMOD Record"] * len(TITLES),
                       "year": [str(y) for y in YEARS[:TWINS]] + [str(y + 1) for y in YEARS]})
CITED = pd.DataFrame({"title": TITLES, "authors": AUTHORS, "venue": "SIGMOD Rec.", "year": [str(y + 1) for y in YEARS]})
ON = ["title", "authors", "venue", "year"]


def test_auto_mode_compares_the_columns_one_by_one_and_keeps_it_across_calls() -> None:
    linker = lt.Linker(left_on=ON, right_on=ON, progress=False).fit(PAPERS)
    whole = linker.merge(CITED)
    fusion = whole.attrs["ltengine"]["report"]["fusion"]
    assert fusion["kind"] == "fusion:same-script"
    assert {"score_fields", "score_fields_margin", "score_fields_right_lead"} <= set(fusion["features"])
    assert "score_fields" not in whole.columns  # a fusion feature, not an output column
    # the cited journal papers find their journal version (whole records alone: 27 of 64 wrong, 8 of them twins)
    assert (whole["title_x"] == whole["title_y"]).all() and (whole["venue_y"] != "SIGMOD Record").sum() <= 8
    halves = pd.concat([linker.merge(CITED.iloc[:32]), linker.merge(CITED.iloc[32:].reset_index(drop=True))],
                       ignore_index=True)
    assert whole["title_y"].equals(halves["title_y"])
    assert whole["match_probability"].equals(halves["match_probability"])


def test_one_linked_column_has_no_field_feature() -> None:
    out = lt.merge(CITED[["title"]], PAPERS[["title"]], on="title", progress=False)
    assert not any(f.startswith("score_fields") for f in out.attrs["ltengine"]["report"]["fusion"]["features"])


def test_a_saved_linker_compares_the_fields_as_the_fitting_call_did(tmp_path) -> None:
    linker = lt.Linker(left_on=ON, right_on=ON, progress=False).fit(PAPERS)
    whole = linker.merge(CITED)
    linker.save(tmp_path / "index")
    part = lt.Linker.load(tmp_path / "index").merge(CITED.iloc[32:].reset_index(drop=True))  # too few rows to refit
    assert "score_fields" in part.attrs["ltengine"]["report"]["fusion"]["features"]
    assert part["title_y"].tolist() == whole["title_y"].tolist()[32:]
    assert np.allclose(part["match_probability"], whole["match_probability"].to_numpy()[32:], rtol=0, atol=1e-9)
