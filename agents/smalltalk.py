"""Greetings, thanks and acknowledgements: a short human reply, never the help text."""
from __future__ import annotations

import re

from kernel.messages import Intent, Outcome
from agents.skill_context import SkillContext

GREETING_REPLY = "Hi! What can I do for you?"
HOW_ARE_YOU_REPLY = "All good here, thanks! What can I do for you?"
THANKS_REPLY = "You're welcome."
FAREWELL_REPLY = "Bye for now."
ACK_REPLY = "👍"

# checked in this order: "ok thanks" is thanks, "hi, how are you" asks how I am
_KINDS = (
    (re.compile(r"\b(?:thanks?|thank\s*(?:you|u)|thx|ty|cheers|ta|appreciate|grateful|lifesaver)\b|🙏", re.IGNORECASE), THANKS_REPLY),
    (re.compile(r"\bhow(?:'s| is| are)\s+(?:you|u|it going|things|your day)\b", re.IGNORECASE), HOW_ARE_YOU_REPLY),
    (re.compile(r"\b(?:h(?:i+|ey+|ello+|iya|owdy)|yo|morning|afternoon|evening|greetings|good day)\b|👋", re.IGNORECASE), GREETING_REPLY),
    (re.compile(r"\b(?:bye|goodbye|see (?:you|ya)|later|good ?night|ttyl)\b", re.IGNORECASE), FAREWELL_REPLY),
)


def reply_to(text: str) -> str:
    """The reply a person would give: a greeting back, "you're welcome", or a nod."""
    for pattern, reply in _KINDS:
        if pattern.search(text):
            return reply
    return ACK_REPLY


def smalltalk(ctx: SkillContext, intent: Intent) -> Outcome:
    return Outcome(text=reply_to(intent.text))
