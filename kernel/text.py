"""Words and addresses in free text: the one email pattern and the one stopword list, shared by every layer."""
from __future__ import annotations

import re

# An address as people write one in a sentence. The domain needs a dot and a top-level name of letters, so
# "meet@3pm", "price@5.50" and "ana@localhost" are not addresses; the full stop ending a sentence is not part of one.
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)

# Words too common to say what a text is about: left out of searches and of the words two texts share.
STOPWORDS = frozenset(
    "a an the and or but if of to in on at for with by from is are was were be been am do does did "
    "what which who whom when where why how i me my we our you your it its this that these those "
    "there their they them he she his her about as into than then so not no can could should would "
    "will shall may might must have has had any some".split()
)


def find_emails(text: str) -> list[str]:
    """The addresses in `text`, lowercased, each once, in the order they first appear."""
    return list(dict.fromkeys(m.group(0).lower() for m in EMAIL.finditer(text)))
