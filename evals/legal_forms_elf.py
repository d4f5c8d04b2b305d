"""Regenerate the ISO 20275 part of :mod:`ltengine.lexical.legal_forms` from the GLEIF ELF code list.

    python -m evals.legal_forms_elf PATH_TO_ELF_CSV   # prints the candidates, for review

A build tool, not part of the package: the data module imports nothing.
"""

from __future__ import annotations

import csv
import re

from ltengine.lexical.names import fold


def candidates_from_elf_csv(path: str) -> list[str]:
    """Normalised abbreviations of the active legal forms in an ISO 20275 ELF CSV (for review)."""
    found: set[str] = set()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("ELF Status ACTV/INAC") != "ACTV":
                continue
            for column in ("Abbreviations Local language", "Abbreviations transliterated"):
                for abbreviation in re.split(r"[;,]", row.get(column) or ""):
                    folded = fold(abbreviation)
                    if folded and len(folded.split()) <= 4:
                        found.add(folded)
    return sorted(found)



if __name__ == "__main__":  # pragma: no cover
    import sys

    print(" | ".join(candidates_from_elf_csv(sys.argv[1])))
