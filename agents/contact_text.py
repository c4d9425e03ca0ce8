"""Reading contact details and deal changes out of what the operator typed, offline.

"Ana Lopez's email is ana@lopez.example, she works at Acme" → ("Ana Lopez", {email, company});
"what's Bob's number" → ("Bob", "phone"); "move the Acme deal to won" → ("Acme", {"stage": "won"})."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from memory.deals import STAGES

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
# words that may open a sentence without being part of a name
_LEAD = {"please", "save", "update", "add", "new", "store", "keep", "change", "set", "contact", "remember", "put", "yes",
         "ok", "so", "and", "also", "hey", "btw", "note", "the", "my", "what", "whats", "what's", "find", "get", "give", "me",
         "is", "tell", "do", "you", "have", "look", "up", "show", "who", "where", "how", "reach", "email", "number", "phone",
         "it", "he", "she", "that", "there", "let", "move", "mark", "put", "i", "we", "they", "this"}
_POSSESSIVE = re.compile(r"((?:[A-Z][\w-]*\s+)*[A-Za-z][\w-]*)['’]s\b")
_LEADING_NAME = re.compile(r"^([A-Za-z][\w-]*(?:\s+[A-Z][\w-]*)?)\s+(?:now\s+|has\s+)?(?:works|is|moved|switched|changed|joined|has|got)\b")
_AFTER_COLON = re.compile(r"contact\s*:\s*([^,@\d]+?)\s*(?:,|$)", re.I)
_ADD_NAME = re.compile(r"\b(?:add|save)\s+(?:a\s+contact\s+for\s+|contact\s+|this\s+contact\s+)?([A-Za-z][\w-]*(?:\s+[A-Za-z][\w-]*)?)"
                       r"(?=\s+(?:to|in|from|at|,)|\s*,|\s+\+?\d|\s+[\w.+-]+@)", re.I)
_COMPANY = re.compile(r"\b(?:works at|working at|works for|is at|now at|is with|joined|moved to|switched to|is from|from|"
                      r"company is(?: now)?|company to|at)\s+([A-Za-z0-9][^,;!?\n]*?)(?=\s*(?:[,;!?]|\.(?:\s|$)|$|\s+now\b|\s+as\b|"
                      r"\s+and\b|\s+so\b|\s+update|\s+change|\s+to\s+my))", re.I)
_NOT_COMPANY = {"my contacts", "the moment", "all", "home", "work", "the office"}

ATTRIBUTE_WORDS = {
    "email": ("email", "e-mail", "mail", "address"),
    "phone": ("phone", "number", "mobile", "cell", "tel", "telephone", "whatsapp"),
    "company": ("company", "works", "employer", "firm", "work for", "at which"),
    "title": ("title", "role", "job", "position"),
}


@dataclass(frozen=True)
class ContactText:
    name: str
    details: dict[str, str] = field(default_factory=dict)


def _clean_name(name: str) -> str:
    words = name.split()
    while words and words[0].lower() in _LEAD:
        words = words[1:]
    return " ".join(w[:1].upper() + w[1:] for w in words)


def name_in(text: str, people: list[str] | tuple[str, ...] = ()) -> str:
    for pattern in (_AFTER_COLON, _POSSESSIVE, _ADD_NAME, _LEADING_NAME):
        for match in pattern.finditer(text):
            name = _clean_name(match.group(1))
            if name and "@" not in name:
                return name
    return _clean_name(people[0]) if people else ""


def phone_in(text: str) -> str:
    for match in PHONE.finditer(EMAIL.sub(" ", text)):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= 7:
            return " ".join(match.group(0).split())
    return ""


def company_in(text: str) -> str:
    for match in _COMPANY.finditer(EMAIL.sub(" ", text)):
        company = match.group(1).strip(" .")
        if company and company.lower() not in _NOT_COMPANY and not PHONE.fullmatch(company) and not attribute_asked(company):
            return company
    return ""


def parse_contact(text: str, people: list[str] | tuple[str, ...] = ()) -> ContactText:
    email = EMAIL.search(text)
    details = {"email": email.group(0).lower() if email else "", "phone": phone_in(text), "company": company_in(text)}
    return ContactText(name_in(text, people), {k: v for k, v in details.items() if v})


def parse_fields(text: str) -> ContactText:
    """"/contact Ana Lopez, ana@lopez.example, +34 600 000 001, Acme": the name first, then details in any order."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return ContactText("")
    rest = ", ".join(parts[1:])
    head = EMAIL.sub(" ", PHONE.sub(" ", parts[0])).strip()
    parsed = parse_contact(text)
    details = dict(parsed.details)
    plain = [p for p in parts[1:] if not EMAIL.search(p) and not phone_in(p)]
    if "company" not in details and plain:
        details["company"] = plain[0]
    return ContactText(" ".join(head.split()) or parsed.name, details) if head or rest else parsed


def attribute_asked(text: str) -> str:
    lowered = text.lower()
    for attribute, words in ATTRIBUTE_WORDS.items():
        if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
            return attribute
    return ""


def wants_details(text: str) -> bool:
    return bool(EMAIL.search(text) or phone_in(text) or company_in(text))


# --- deals

_DEAL_NAME = re.compile(r"\b([A-Za-z0-9][\w&.'-]*(?:\s+[A-Z][\w&.'-]*)*)\s+(?i:deal|opportunity|account)\b")
_DEAL_FOR = re.compile(r"\b(?i:deal|opportunity|next step)\s+(?i:with|for)\s+([A-Za-z0-9][\w&.'-]*(?:\s+[A-Z][\w&.'-]*)*)")
_STAGE_WORDS = {"won": ("won", "win", "closed won", "signed", "closed"), "lost": ("lost", "dead", "closed lost"),
                "proposal": ("proposal", "quote sent"), "negotiation": ("negotiation", "negotiating"),
                "qualified": ("qualified",), "lead": ("lead",)}
_VALUE = re.compile(r"(?:(?P<cur1>[$€£])\s?(?P<num1>\d[\d,.]*)\s?(?P<k1>k\b)?|(?P<num2>\d[\d,.]*)\s?(?P<k2>k\b)?\s?"
                    r"(?P<cur2>eur|usd|gbp|euros?|dollars?|pounds?)\b)", re.I)
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "eur": "EUR", "euro": "EUR", "euros": "EUR", "usd": "USD", "dollar": "USD",
             "dollars": "USD", "gbp": "GBP", "pound": "GBP", "pounds": "GBP"}
_NEXT = re.compile(r"\bnext step(?:\s+is|\s*:|\s+for\s+\S+\s*(?:is|:))?\s+(.+)$", re.I)


def parse_deal(text: str) -> tuple[str, dict[str, str]]:
    name = ""
    for match in [*_DEAL_FOR.finditer(text), *_DEAL_NAME.finditer(text)]:
        name = _clean_name(match.group(1))
        if name:
            break
    changes: dict[str, str] = {}
    lowered = text.lower()
    for stage, words in _STAGE_WORDS.items():
        if any(re.search(rf"\b(?:to|as|is|now|marked?|deal)\s+(?:\w+\s+)?{re.escape(w)}\b", lowered) for w in words):
            changes["stage"] = stage
            break
    money = _VALUE.search(text)
    if money:
        number = (money.group("num1") or money.group("num2")).replace(",", "")
        if money.group("k1") or money.group("k2"):
            number = str(int(float(number) * 1000))
        changes["value"] = number
        changes["currency"] = _CURRENCY[(money.group("cur1") or money.group("cur2")).lower()]
    step = _NEXT.search(text)
    if step:
        changes["next_step"] = step.group(1).strip(" .")
    return name, changes


_SPAN = re.compile(r"\b(a|an|one|two|three|four|five|six|\d+)\s+(day|week|month)s?\b", re.I)
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def days_in(text: str, default: int = 14) -> int:
    match = _SPAN.search(text)
    if not match:
        return default
    count = _NUMBERS.get(match.group(1).lower()) or int(match.group(1))
    return count * {"day": 1, "week": 7, "month": 30}[match.group(2).lower()]
