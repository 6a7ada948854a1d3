"""Detectors of sensitive values: PII, payment data, national IDs, secrets.

Regexes find candidates; checksums (Luhn for cards, ISO 7064 mod 97 for
IBANs) drop look-alikes.  Hand-written rather than Presidio: Presidio needs a
spaCy model download, and flagman must run offline with a scan of a few
microseconds per prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Match:
    kind: str
    start: int
    end: int


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
# International numbers need their +country code; national ones the US shapes
# (415) 555-2671 or 415-555-2671.  Bare digit runs are too often not phones.
PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b"
    r"|\(\d{3}\) ?\d{3}[-. ]\d{4}\b"
    r"|\b\d{3}[-.]\d{3}[-.]\d{4}\b"
)
SECRET = re.compile(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"
    r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}\b"
)


def _find(rx: re.Pattern[str], kind: str, check: Callable[[str], bool] | None = None,
          ) -> Callable[[str], list[Match]]:
    def run(text: str) -> list[Match]:
        out = []
        for m in rx.finditer(text):
            if check is None or check(m.group(0)):
                out.append(Match(kind, m.start(), m.end()))
        return out
    return run


def _card_check(s: str) -> bool:
    digits = re.sub(r"\D", "", s)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _phone_check(s: str) -> bool:
    return 9 <= sum(c.isdigit() for c in s) <= 15


BUILTIN: dict[str, Callable[[str], list[Match]]] = {
    "email": _find(EMAIL, "email"),
    "card": _find(CARD, "card", _card_check),
    "iban": _find(IBAN, "iban", iban_ok),
    "ssn": _find(SSN, "ssn"),
    "secret": _find(SECRET, "secret"),
    "phone": _find(PHONE, "phone", _phone_check),
}


def custom(name: str, pattern: str) -> Callable[[str], list[Match]]:
    return _find(re.compile(pattern), name)


def scan(text: str, detectors: list[Callable[[str], list[Match]]]) -> list[Match]:
    """All matches, earlier detectors winning where spans overlap (cards before phones)."""
    taken: list[Match] = []
    for det in detectors:
        for m in det(text):
            if not any(m.start < t.end and t.start < m.end for t in taken):
                taken.append(m)
    return sorted(taken, key=lambda m: m.start)


def redact(text: str, matches: list[Match]) -> str:
    out, pos = [], 0
    for m in matches:
        out.append(text[pos:m.start])
        out.append(f"[REDACTED:{m.kind}]")
        pos = m.end
    out.append(text[pos:])
    return "".join(out)
