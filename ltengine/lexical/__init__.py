"""The name toolkit: text cleaning, scripts, transliteration, legal forms, name normalisation and
string similarities.  Pure functions over strings; it imports nothing else from ltengine, so the
engine and plugins (the lexical retriever, the fusers) can both use it.

- :mod:`~ltengine.lexical.cleaning`: invisible characters, lone surrogates, symbol-only values
- :mod:`~ltengine.lexical.scripts`: which script a text is written in
- :mod:`~ltengine.lexical.transliterate`: romanisation (pinyin, kana, Cyrillic, ...)
- :mod:`~ltengine.lexical.legal_forms`: legal-form tables (ISO 20275 and curated)
- :mod:`~ltengine.lexical.names`: name normalisation (fold, strip legal forms, romanise)
- :mod:`~ltengine.lexical.string_features`: Jaro-Winkler and other pair similarities
"""
