"""Romanisation, name normalisation, legal forms and script detection (real anyascii, pykakasi, pypinyin)."""

from __future__ import annotations

import csv

import pytest

import ltengine as lt
from evals.legal_forms_elf import candidates_from_elf_csv
from ltengine.lexical.names import fold, normalize_names, strip_legal_forms
from ltengine.lexical.scripts import char_script, dominant_script, profile_distance, script_profile, scripts_differ
from ltengine.lexical.transliterate import chinese, japanese, romanize


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Газпром", "gazprom"), ("Київ", "kiiv"), ("Αθήνα", "athina"), ("서울", "seoul"), ("नई दिल्ली", "ni dilli"),
     ("São Paulo", "sao paulo"), ("ホワイトホース", "howaitohosu"), ("北京", "beijing"), ("Zürich!", "zurich")],
)
def test_romanised_keys(text: str, expected: str) -> None:
    assert lt.normalize_name(text) == expected


def test_vowel_signs_and_voicing_survive_normalisation() -> None:
    # combining marks are vowels (Devanagari) and voicing (kana): dropping them before romanising loses letters
    assert normalize_names(["हैदराबाद"]) == ["haidrabad"]  # ै and ा kept (stripped: "hdrbd")
    assert normalize_names(["ガスプロム"]) == ["gasupuromu"]  # ガ, not カ
    assert fold("Crème brûlée") == "creme brulee"


def test_japanese_romaji_shortens_long_vowels_like_english_spellings() -> None:
    assert japanese("東京") == "tokyo"
    assert japanese("東京", long_vowels=True) == "toukyou"


def test_han_texts_read_as_japanese_only_in_a_japanese_batch() -> None:
    assert romanize(["東京"]) == ["DongJing"]  # alone: Chinese reading (anyascii pinyin)
    assert romanize(["東京", "ストックホルム"])[0] == "tokyo"  # kana around: Japanese
    assert romanize(["東京"], han="japanese") == ["tokyo"]
    # characters Japanese does not use fall back to the Chinese reading even in a Japanese batch
    assert romanize(["中国银行", "トヨタ"])[0].casefold() == "zhongguoyinxing"


def test_pypinyin_option() -> None:
    assert chinese("北京市") == "beijingshi"
    assert romanize(["北京"], use_pypinyin=True) == ["beijing"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ООО «Газпром»", "gazprom"), ("Gazprom PJSC", "gazprom"), ("Nestlé S.A.", "nestle"),
     ("Deutsche Bahn AG", "deutsche bahn"), ("Siemens Aktiengesellschaft", "siemens"),
     ("Samsung Electronics Co., Ltd.", "samsung electronics"), ("トヨタ自動車株式会社", "toyota jidosha"),
     ("株式会社トヨタ", "toyota"), ("Toyota Motor Corporation", "toyota motor"),
     ("Ελληνικά Πετρέλαια Α.Ε.", "ellinika petrelaia"), ("Bank of China Limited", "bank of china")],
)
def test_legal_forms_are_stripped_across_languages(name: str, expected: str) -> None:
    assert lt.normalize_name(name, legal_forms=True) == expected


def test_legal_forms_only_at_the_edges_and_never_to_nothing() -> None:
    assert strip_legal_forms("ltd") == "ltd"
    assert strip_legal_forms("co ltd") == "co"  # one word always stays
    assert strip_legal_forms("inc magazine group") == "magazine group"
    assert strip_legal_forms("first gmbh services") == "first gmbh services"
    assert lt.normalize_name("Газпром ООО", legal_forms=False) == "gazprom ooo"


def test_legal_form_candidates_from_an_elf_csv(tmp_path) -> None:
    path = tmp_path / "elf.csv"
    header = ["ELF Code", "Abbreviations Local language", "Abbreviations transliterated", "ELF Status ACTV/INAC"]
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow(["2HBR", "GmbH;Ges.m.b.H.", "", "ACTV"])
        writer.writerow(["XXXX", "OLD", "", "INAC"])
    assert candidates_from_elf_csv(str(path)) == ["gesmbh", "gmbh"]


def test_script_detection() -> None:
    assert [char_script(c) for c in "aЖΩא١ก한中カひＡ1 "] == [
        "Latin", "Cyrillic", "Greek", "Hebrew", None, "Thai", "Hangul", "Han", "Kana", "Kana", "Latin", None, None]
    assert dominant_script("トヨタ自動車株式会社") == "Han"
    assert dominant_script("123") is None
    left = script_profile(["Газпром", "Лукойл", "Deutsche Bahn"])
    right = script_profile(["Gazprom", "Lukoil", "Deutsche Bahn AG"])
    assert set(left) == {"Cyrillic", "Latin"} and right == {"Latin": 1.0}
    assert profile_distance(left, right) == pytest.approx(left["Cyrillic"])
    assert scripts_differ(left, right) and not scripts_differ(right, right)
    assert not scripts_differ({}, right)  # no letters: never "different"
