"""Third-party text as the model reads it: every character it can see, whether or not a person can.

Invisible characters, lookalike letters and encodings hide instructions from the operator and from
patterns, not from the model. `reveal` gives the inspector the text to match and the operator the text to read."""
from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from confusable_homoglyphs.confusables import confusables_data

from kernel.text import STOPWORDS

Hiding = Literal["tag characters", "variation selectors", "zero-width characters", "fullwidth letters",
                 "lookalike letters", "base64", "hex", "rot13"]

# Unicode tags (U+E0000–E007F) each encode one ASCII character and render as nothing
TAGS = re.compile("[\U000e0000-\U000e007f]+")
# each selector carries one byte: U+FE00–FE0F are 0–15, U+E0100–E01EF are 16–255
SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]+")
# zero-width, joining, bidirectional-control and soft-hyphen characters: invisible, but split words for a pattern
INVISIBLE_CLASS = "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
INVISIBLE = re.compile(INVISIBLE_CLASS)
IN_WORD = re.compile(f"(?<=[^\\W_]){INVISIBLE_CLASS}+(?=[^\\W_])")
# fullwidth ASCII and mathematical alphanumerics: letters NFKC folds back to plain ones
STYLED = re.compile("[\uff01-\uff5e\U0001d400-\U0001d7ff]")
HIDDEN = re.compile(f"(?P<tags>{TAGS.pattern})|(?P<selectors>{SELECTORS.pattern})")
FLAG, CANCEL_TAG = "\U0001f3f4", "\U000e007f"
BASE64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{16,}={0,2}")
HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Za-z])")
WORD = re.compile(r"[^\W\d_]+")
# words the hidden instructions we meet are written in, beyond the stopwords
COMMON = frozenset(
    "all also just now new please send forward reply email emails mail message messages instructions instruction "
    "ignore previous prior above earlier system prompt password secret key invoice invoices pay payment account "
    "bank transfer money delete file files user admin assistant model data tell say write make take give keep "
    "one two first last every each other only more most very well good time day today here out up down over "
    "after before again back know see get go come want need like use work call find".split()
)
ENGLISH = STOPWORDS | COMMON
MIN_DECODED = 6
# English words a line must gain by undoing rot13; two is what "or"/"be" and "an"/"na" swap by chance
MIN_WORDS = 3


@dataclass(frozen=True)
class Revealed:
    inspect: str  # what patterns run on: folded, joined, decoded
    display: str  # what a person is shown: the visible text with its hidden parts written out
    hidden: tuple[str, ...]  # each hidden or encoded part, decoded
    found: tuple[Hiding, ...]  # how it was hidden


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.strip()
    if len(text) < MIN_DECODED or not all(c.isprintable() or c in "\n\t" for c in text):
        return None
    # an identifier's bytes that happen to be text are rarely mostly letters and spaces
    letters = sum(c.isalpha() or c == " " for c in text)
    return text if letters / len(text) >= 0.6 else None


def _tags(run: str) -> str:
    return "".join(chr(ord(c) - 0xE0000) for c in run if 0x20 <= ord(c) - 0xE0000 < 0x7F)


def _selected_bytes(run: str) -> bytes:
    return bytes(ord(c) - 0xFE00 if ord(c) <= 0xFE0F else ord(c) - 0xE0100 + 16 for c in run)


def _english(text: str) -> int:
    return sum(w in ENGLISH for w in WORD.findall(text.lower()))


def _to_latin(text: str) -> tuple[str, bool]:
    """Each letter that only looks Latin mapped to the Latin one; and whether a word mixed them with Latin ones."""
    out, mixed = [], False
    for word in re.split(r"(\W+)", text):
        mapped = "".join(_latin(c) for c in word)
        # a Latin alphabet's own letters (Turkish ı) are spelling, not disguise: only another script's count
        foreign = any(m != c and not unicodedata.name(c, "").startswith("LATIN") for c, m in zip(word, mapped))
        if foreign and any(c.isascii() and c.isalpha() for c in word):
            mixed = True
        out.append(mapped)
    return "".join(out), mixed


def _latin(c: str) -> str:
    if c.isascii() or not c.isalpha():
        return c
    for glyph in confusables_data.get(c, ()):
        if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isalpha():
            return str(glyph["c"])
    return c


def _invisible(text: str) -> tuple[str, str, list[str], list[Hiding]]:
    """Inspection and display text with tag and selector runs decoded in place, and what they said."""
    inspect, display, hidden, found = [], [], [], []
    end = 0
    for match in HIDDEN.finditer(text):
        inspect.append(text[end:match.start()])
        display.append(text[end:match.start()])
        end = match.end()
        # an emoji's flag tags and presentation selector stay as they were for a person to see
        display.append(match.group(0))
        if match.lastgroup == "tags":
            said: str | None = _tags(match.group(0)).strip() or None
            # a flag emoji spells its region in tags (black flag, "gbsct", cancel tag): that is not text
            if match.start() and text[match.start() - 1] == FLAG and match.group(0)[-1] == CANCEL_TAG:
                said = None
            how: Hiding = "tag characters"
        else:
            # an emoji's presentation selector is one byte that is not text, and stays unflagged
            said, how = _printable(_selected_bytes(match.group(0))), "variation selectors"
        if said:
            hidden.append(said)
            found.append(how)
            inspect.append(f" {said} ")
            display[-1] = f"[hidden text: {said}]"
    inspect.append(text[end:])
    display.append(text[end:])
    return "".join(inspect), "".join(display), hidden, found


def _decoded(text: str) -> list[tuple[Hiding, str]]:
    """Base64 and hex runs that decode to text, and lines that read as English once rot13 is undone."""
    out: list[tuple[Hiding, str]] = []
    for match in HEX.finditer(text):
        said = _printable(bytes.fromhex(match.group(0)))
        if said:
            out.append(("hex", said))
    for match in BASE64.finditer(text):
        run = match.group(0).rstrip("=")
        if HEX.fullmatch(run) or len(run) % 4 == 1:
            continue
        try:
            raw = base64.b64decode(run.replace("-", "+").replace("_", "/") + "=" * (-len(run) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        said = _printable(raw)
        if said:
            out.append(("base64", said))
    for line in text.splitlines():
        turned = codecs.decode(line, "rot13")
        if _english(turned) >= MIN_WORDS and _english(turned) > _english(line):
            out.append(("rot13", turned.strip()))
    return out


def reveal(text: str) -> Revealed:
    """`text` with whatever was hidden in it made visible: decoded for patterns, written out for a person."""
    inspect, display, hidden, found = _invisible(text)
    if IN_WORD.search(inspect):
        found.append("zero-width characters")
    inspect = INVISIBLE.sub("", inspect)
    # those inside a word are what split it; the joiners inside an emoji are not
    display = IN_WORD.sub("", display)
    if STYLED.search(inspect):
        found.append("fullwidth letters")
    inspect, mixed = _to_latin(unicodedata.normalize("NFKC", inspect))
    if mixed:
        found.append("lookalike letters")
    for how, said in _decoded(inspect):
        hidden.append(said)
        found.append(how)
        inspect += f"\n{said}"
        display += f"\n[decoded {how}: {said}]"
    return Revealed(inspect, display, tuple(dict.fromkeys(hidden)), tuple(dict.fromkeys(found)))

