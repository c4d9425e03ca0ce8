"""Third-party text as a model sees it: inside one pair of <untrusted> tags that it cannot close or reopen.

The planner and memory recall both fence text this way, so a model is told once what the tags mean."""
from __future__ import annotations

import re

OPEN = "<untrusted>"
CLOSE = "</untrusted>"
# anything a model could read as either tag: any case, spaces around the slash, attributes, no '>'
TAG = re.compile(r"<(\s*/?\s*untrusted)", re.IGNORECASE)


def defused(text: str) -> str:
    """`text` with every untrusted tag inside it turned into plain characters (`&lt;/untrusted>`)."""
    return TAG.sub(r"&lt;\1", text)


def fenced(text: str) -> str:
    """`text` between one opening and one closing untrusted tag, whatever it contains."""
    return f"{OPEN}\n{defused(text)}\n{CLOSE}"
