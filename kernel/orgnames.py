"""Company names as sources write them, reduced to what identifies the company.

An RDAP registrant writes "Polder Servers B.V.", an AS-names file "Polder
Servers BV" or just "Polder Servers": one company. `org_name()` reduces a name
to its *base* (case, accents and punctuation dropped, spaces collapsed) and
its *legal form* (B.V., GmbH, Ltd, Inc, LLC, S.A., SAS... in one canonical
spelling, or None when the name gives none).

Two names may name the same company (`same_company`) when their bases are
equal and their legal forms agree or one of them gives none. Different legal
forms are different legal entities: "Example Hosting B.V." and "Example
Hosting GmbH" are two companies (a Dutch and a German one) and stay apart.
Nothing looser is tried (no substring or fuzzy matching): merging two
companies would put one company's cases in another's evidence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["LEGAL_FORMS", "OrgName", "org_name", "same_company"]

# Words that, at the end of a name, state its legal form, in the spelling
# kept (a missing entry maps a word to itself). Runs of single letters are
# joined first ("B.V." -> "b v" -> "bv", "S.A.R.L." -> "sarl"). Words that are
# also ordinary words at the end of a name ("AS", which AS names use for
# "autonomous system", "Group", "Holding") are not legal forms here.
LEGAL_FORMS: dict[str, str] = {
    "bv": "bv", "nv": "nv", "vof": "vof", "bvba": "bvba", "sprl": "sprl", "cv": "cv",
    "gmbh": "gmbh", "mbh": "mbh", "ag": "ag", "kg": "kg", "ug": "ug", "ev": "ev", "se": "se",
    "ltd": "ltd", "limited": "ltd", "plc": "plc", "llp": "llp", "lp": "lp",
    "inc": "inc", "incorporated": "inc", "llc": "llc", "corp": "corp",
    "corporation": "corp", "co": "co", "pte": "pte", "pty": "pty",
    "sa": "sa", "sas": "sas", "sasu": "sasu", "sarl": "sarl", "srl": "srl", "spa": "spa",
    "sl": "sl", "slu": "slu", "lda": "lda", "sro": "sro", "zoo": "zoo", "sp": "sp",
    "ab": "ab", "oy": "oy", "oyj": "oyj", "aps": "aps", "kft": "kft", "zrt": "zrt",
    "ooo": "ooo", "doo": "doo", "kk": "kk",
}

_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class OrgName:
    """A company name reduced: ``base`` and ``form`` (None: the name gives none)."""

    base: str
    form: str | None

    @property
    def full(self) -> str:
        """The reduced name with its legal form: "polder servers bv"."""
        return f"{self.base} {self.form}" if self.form else self.base


def _words(name: str) -> list[str]:
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NOT_WORD.sub(" ", text).split()


def org_name(name: str | None) -> OrgName | None:
    """``name`` reduced to base and legal form; None when nothing is left."""
    words = _words(name or "")
    # Join a trailing run of single letters when it spells a legal form.
    run = 0
    while run < len(words) and len(words[-1 - run]) == 1:
        run += 1
    for size in range(min(run, len(words) - 1), 1, -1):  # "company x s a": "sa"
        if "".join(words[-size:]) in LEGAL_FORMS:
            words = [*words[:-size], "".join(words[-size:])]
            break
    form: list[str] = []
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        form.insert(0, LEGAL_FORMS[words.pop()])
    if not words:
        return None
    return OrgName(" ".join(words), " ".join(form) or None)


def same_company(a: OrgName, b: OrgName) -> bool:
    """Whether two reduced names may name one company: one base, no conflicting form."""
    return a.base == b.base and (a.form is None or b.form is None or a.form == b.form)
