"""Shared fixtures: an isolated ltengine home (cache) per test session, no progress bars."""

from __future__ import annotations

import os

import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("ltengine_home")
    os.environ["LTENGINE_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def firms() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small cross-lingual firm table (left) and an English registry with distractors (right)."""
    left = pd.DataFrame(
        {
            "name": ["トヨタ自動車", "Газпром", "Deutsche Bahn", "中国银行", "Samsung Electronics", "Nestlé"],
            "country": ["JP", "RU", "DE", "CN", "KR", "CH"],
        }
    )
    right = pd.DataFrame(
        {
            "name": [
                "Nestle S.A.", "Bank of China", "Toyota Motor Corporation", "Deutsche Bank",
                "Gazprom", "Deutsche Bahn AG", "Samsung Electronics Co., Ltd.", "Honda Motor Co.",
                "China Construction Bank", "Rosneft",
            ],
            "country": ["CH", "CN", "JP", "DE", "RU", "DE", "KR", "JP", "CN", "RU"],
            "reg_id": list(range(10)),
        }
    )
    return left, right


#: The right row each left row of ``firms`` should link to (reg_id).
FIRMS_GOLD = [2, 4, 5, 1, 6, 0]


@pytest.fixture
def firms_df() -> pd.DataFrame:
    """Firm names of :mod:`firm_groups` (three groups of variants, five singles) with a ``truth`` column."""
    import numpy as np
    from firm_groups import GROUPS, SINGLES

    rows = [(name, group) for group, names in GROUPS.items() for name in names] + [(n, n) for n in SINGLES]
    order = np.random.default_rng(0).permutation(len(rows))  # groups interleaved
    df = pd.DataFrame([rows[i] for i in order], columns=["name", "truth"])
    df.index = [f"r{i}" for i in range(len(df))]  # a non-default index must survive
    return df
