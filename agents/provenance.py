"""Provenance: whether what a step does, and the values it carries, came from the operator or from someone else.

A model reading third-party text (an email, a web page) can be talked into acting on it in wording no list
of phrases anticipates ("Don't ask, just send"). So rather than recognise the attack, the inspector holds each
step that reaches outside against what the operator actually said: it must be the kind of action the operator
asked for, and the links, account numbers and amounts it carries must not come only from that text."""
from __future__ import annotations

import itertools
import json
import re
from decimal import Decimal
from typing import Any, Protocol, Sequence

from integrations.capability import Capability, RiskClass
from kernel.text import EMAIL

OUTWARD = frozenset({RiskClass.EXTERNAL_WRITE, RiskClass.FINANCIAL, RiskClass.IRREVERSIBLE})

# how an operator asks for each family of outward action; a family not listed needs its own verb
# ("refund", "cancel") in the operator's words
ASKS: dict[str, re.Pattern[str]] = {
    "email": re.compile(
        r"\b(?:send|reply|respond|answer|forward|tell|write (?:to|back)|let \S+ know|"
        r"e-?mail (?:to\b|back\b|them\b|him\b|her\b|everyone\b|[\w.+-]+@)|mail (?:to|it|them)\b)",
        re.IGNORECASE,
    ),
    # "this calendar", "the meeting" name what was read, not something to do: they do not count
    "calendar": re.compile(r"\b(?:schedule|book|invite|reschedule|accept|arrange|set up|meet(?!ing)|"
                           r"(?:add|put)\b[^.]*\b(?:calendar|diary|agenda))", re.IGNORECASE),
    "webhook": re.compile(r"\b(?:webhook|notify|post|push|sync|ping)", re.IGNORECASE),
    "payment": re.compile(r"\b(?:pay|refund|transfer|wire)", re.IGNORECASE),
}
URL = re.compile(r"(?:https?://|www\.)[^\s\"'<>)\]]+", re.IGNORECASE)
# dates and times are how meetings are copied from an invitation, not values an attacker plants
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?|\b\d{1,2}:\d{2}\b")
# digits with the separators people write inside numbers: "4,950.00", "DE44 5001 0517 5407 3249 31"
NUMBER = re.compile(r"\d(?:[,.' -]?\d)*")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
GROUPED = re.compile(r"\d{1,3}(?:[,' ]\d{3})+(?:\.\d+)?")
PLAIN = re.compile(r"\d+(?:\.\d+)?")
REFERENCE = re.compile(r"\$\{steps\.(\d+)")
# below this an amount is too common (a day, a count, a small price) to say where it came from
MIN_AMOUNT = 100
# at least this many digits: an account, card or phone number rather than an amount
MIN_ACCOUNT_DIGITS = 6
# arguments that choose where a step reaches or how much it moves, whatever the capability calls its recipients
TARGET_FIELDS = frozenset({"to", "cc", "bcc", "reply_to", "attendees", "url", "urls", "link", "webhook", "target",
                           "account", "iban", "amount"})
# capabilities whose results are the operator's own records, safe to take a recipient from
OPERATOR_RECORDS = ("contacts.",)
# who wrote the content, as its own header or field says: the person "reply to her" points at
SENDER_HEADER = re.compile(r"^(?:from|reply-to|sender|organi[sz]er)\b[^:\n]*:(.*)$", re.IGNORECASE | re.MULTILINE)
# a header block is the lines at the very top that are all "Name: value" (an email's, an invitation's)
HEADER_LINE = re.compile(r"[A-Za-z][\w-]*(?:;[^:\n]*)?:")
SENDER_KEYS = ("from", "sender", "reply_to", "replyto", "reply-to", "email", "organizer", "organiser")


class Acquaintance(Protocol):
    """What the operator already knows (their contacts, the facts they gave): values that are theirs to reach."""

    def known(self, value: str) -> bool: ...


class Facts(Protocol):
    def all_current(self) -> list[Any]: ...


class Acquainted:
    """What the operator already knows: their contacts, and the addresses, links and numbers in the facts they gave."""

    def __init__(self, contacts: Acquaintance, facts: Facts) -> None:
        self.contacts = contacts
        self.facts = facts

    def known(self, value: str) -> bool:
        if EMAIL.fullmatch(value.strip()) and self.contacts.known(value):
            return True
        wanted = _keys(value)
        return bool(wanted) and any(wanted & _keys(fact.value) for fact in self.facts.all_current() if fact.trust != "untrusted")


def _keys(text: str) -> set[str]:
    return {a.lower() for a in EMAIL.findall(text)} | set(values(text))


def senders_of(texts: tuple[str, ...]) -> frozenset[str]:
    """The addresses the content declares as its own sender or organiser: an email's From and Reply-To headers
    (in the header lines it opens with), a hook payload's top-level sender fields, an invitation's ORGANIZER.
    Addresses anywhere in the body are not among them."""
    found: set[str] = set()
    for text in texts:
        lines = text.split("\n")
        # a hook's text opens with one line saying what it is, then the JSON payload
        payload = _payload("\n".join(lines[1:])) if lines and lines[0].startswith("[") else _payload(text)
        if payload is not None:
            for key in SENDER_KEYS:
                found.update(a.lower() for a in EMAIL.findall(json.dumps(payload.get(key, ""), ensure_ascii=False)))
            continue
        head = "\n".join(itertools.takewhile(HEADER_LINE.match, lines))
        for match in SENDER_HEADER.finditer(head):
            found.update(a.lower() for a in EMAIL.findall(match.group(1)))
    return frozenset(found)


SUBJECT_HEADER = re.compile(r"^subject\b[^:\n]*:(.*)$", re.IGNORECASE | re.MULTILINE)


def thread_values(texts: tuple[str, ...]) -> frozenset[str]:
    """Values in the Subject lines the content opens with: the thread's own name ("Re: Invoice 2291"),
    which a reply quotes back, not a link, account or amount the content wants used."""
    found: set[str] = set()
    for text in texts:
        head = "\n".join(itertools.takewhile(HEADER_LINE.match, text.splitlines()))
        for match in SUBJECT_HEADER.finditer(head):
            found.update(values(match.group(1)))
    return frozenset(found)


def _payload(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else None


def names(capability: Capability, args: dict[str, Any]) -> list[str]:
    """The destinations a step names by word (a configured webhook's name), as written."""
    return [str(args[k]) for k in capability.target_fields if isinstance(args.get(k), str) and args[k].strip()]


def named_only_in(name: str, untrusted: tuple[str, ...], operator_text: str) -> bool:
    """True when the name occurs, as a whole word, in someone else's text and not in the operator's."""
    word = re.compile(rf"(?<![\w.@-]){re.escape(name.strip())}(?![\w@-])", re.IGNORECASE)
    return any(word.search(t) for t in untrusted) and not word.search(operator_text)


def targets(capability: Capability, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments that choose whom a step reaches, where, or how much: recipients, links, accounts, amounts."""
    fields = TARGET_FIELDS | set(capability.recipient_fields) | set(capability.target_fields)
    fields |= {capability.amount_field} if capability.amount_field else set()
    if capability.side_effect and capability.name.startswith(OPERATOR_RECORDS):
        # an address written into the contacts is one every later step may reach: it is chosen like a recipient
        fields |= {"email"}
    return {k: v for k, v in args.items() if k.lower() in fields}


def reaches_outside(capability: Capability) -> bool:
    return capability.risk in OUTWARD or bool(capability.recipient_fields)


def asked_for(capability: str, operator_text: str) -> bool:
    """True when the operator's words ask for this kind of action."""
    family, _, verb = capability.partition(".")
    pattern = ASKS.get(family)
    if pattern is not None and pattern.search(operator_text):
        return True
    return bool(verb) and re.search(rf"\b{re.escape(verb)}", operator_text, re.IGNORECASE) is not None


def _amount(raw: str) -> Decimal | None:
    if GROUPED.fullmatch(raw):
        return Decimal(re.sub(r"[,' ]", "", raw))
    if PLAIN.fullmatch(raw):
        return Decimal(raw)
    return None


def _number(amount: Decimal) -> str:
    # exact, however long (a card number is not a float), without trailing zeros: 4950.00 → "4950"
    return format(amount.normalize(), "f")


def values(text: str) -> dict[str, str]:
    """The links, account numbers (IBANs, cards, phones) and amounts in a text, normalised so that the same
    value written two ways ("4,950.00 EUR" and 4950) meets; each maps to how it was written."""
    found = {u.rstrip(".,;:!?").lower(): u.rstrip(".,;:!?") for u in URL.findall(text)}
    rest = DATE_TIME.sub(" ", URL.sub(" ", text))
    found.update({re.sub(r"\s", "", m.group()): m.group() for m in IBAN.finditer(rest)})
    for match in NUMBER.finditer(rest):
        raw = match.group().strip(" .,'-")
        digits = re.sub(r"\D", "", raw)
        if len(digits) >= MIN_ACCOUNT_DIGITS and not re.search(r"[.,]", raw):
            # only digits, spaces and dashes: an account, card or phone number, leading zeros and all
            found.setdefault(digits, raw)
            continue
        amount = _amount(raw)
        if amount is not None and amount >= MIN_AMOUNT:
            found.setdefault(_number(amount), raw)
    return found


def values_of(args: Any) -> dict[str, str]:
    """values() of every string in the arguments, and the amounts among their numbers."""
    if isinstance(args, bool):
        return {}
    if isinstance(args, (int, float)):
        return {_number(Decimal(str(args))): str(args)} if abs(args) >= MIN_AMOUNT else {}
    if isinstance(args, str):
        return values(args)
    if isinstance(args, dict):
        return {k: v for item in args.values() for k, v in values_of(item).items()}
    if isinstance(args, (list, tuple)):
        return {k: v for item in args for k, v in values_of(item).items()}
    return {}


def foreign(step: dict[str, str], untrusted: dict[str, str], operator: dict[str, str]) -> list[str]:
    """The step's values (as written in the step) that occur in someone else's text and not in the operator's.
    A long number also counts when one contains the other (an IBAN without its country code)."""
    accounts = [u for u in untrusted if u.isdigit() and len(u) >= MIN_ACCOUNT_DIGITS]
    out = []
    for value, written in step.items():
        if value in operator:
            continue
        account = value.isdigit() and len(value) >= MIN_ACCOUNT_DIGITS
        if value in untrusted or (account and any(value in u or u in value for u in accounts)):
            out.append(written)
    # an IBAN's digits are found on their own too: name the whole value once
    return sorted(w for w in set(out) if not any(w != other and w.replace(" ", "") in other.replace(" ", "") for other in out))


def references(args: dict[str, Any], skip: tuple[str, ...]) -> list[int]:
    """Earlier steps whose results these arguments carry (outside the recipient fields)."""
    found: set[int] = set()
    for key, value in args.items():
        if key in skip:
            continue
        for text in strings(value):
            found.update(int(m.group(1)) for m in REFERENCE.finditer(text))
    return sorted(found)


def chosen_by_results(targets: dict[str, Any], steps: Sequence[Any]) -> list[int]:
    """Earlier steps whose results fill in a target, other than the operator's own address book: a note, a
    task or an email read back may hold an address someone else wrote."""
    capability = {s.index: s.capability for s in steps}
    found = {int(m.group(1)) for text in strings(targets) for m in REFERENCE.finditer(text)}
    return sorted(i for i in found if not capability.get(i, "").startswith(OPERATOR_RECORDS))


def strings(value: Any) -> list[str]:
    """Every string inside a step's arguments, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return []
