"""Wordings that address a model rather than a person: in untrusted text they mark an injection attempt.

Each family is named for what the text tries to do. Matching one only flags the text; whether a step may
act is decided by provenance (agents/provenance.py), so a family is kept only while it stays quiet on the
benign corpus (`deputy eval injection-fp`)."""
from __future__ import annotations

import re

# "any", "all the", "of your", "previous and following": the words people put between the verb and its object
_FILLER = r"(?:(?:any|all|each|every|the|your|my|these|those|of|and|or|&|earlier|prior|previous)\s+)*"
_BEFORE = r"(?:previous|prior|above|earlier|preceding|following|other|every|original|initial|system|developer)"
_ORDERS = r"(?:instructions?|directions?|rules|prompts?|messages|content|context|info(?:rmation)?|guidelines|commands|orders)"
# what an injected order asks the model to do, right after addressing it
_ACTS = (r"email|e-mail|send|forward|pay|refund|transfer|delete|erase|wipe|cancel|move|post|invite|create|add|store|"
         r"update|set|remember|apply|approve|issue|complete|reply|share|export|list|print|reveal|when(?:ever)? you|"
         r"before (?:this|you)|as part of|you (?:must|should|will)|ignore|disregard|forget")
_WHO = r"(?:the|your|this)\s+(?:user|operator|owner|human|admin(?:istrator)?|principal)"

PATTERNS: dict[str, str] = {
    # "ignore any previous and following instructions", "disregard the above directions"
    "override earlier orders": rf"\b(?:ignore|disregard|forget|skip|override|bypass)\s+{_FILLER}{_BEFORE}\s+(?:\w+\s+)?{_ORDERS}\b",
    # "ignore all the instructions you got before", "disregard all info except ...", "forget your rules"
    "override given orders": rf"\b(?:ignore|disregard|forget|override|bypass)\s+{_FILLER}{_ORDERS}\s+"
                             r"(?:you(?:'ve| have)?\s+(?:got|gotten|received|been given|were given)|given to you|so far|"
                             r"before|above|except|but\b|up to now)"
                             rf"|\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+)?(?:of\s+)?your\s+(?:\w+\s+)?"
                             r"(?:instructions|rules|guidelines|programming|restrictions|directives|prompts?)\b",
    "forget everything": r"\b(?:forget|ignore|disregard)\s+(?:everything|all)\s+(?:you(?:'ve| have)?\s+(?:were|been)\s+told|"
                         r"(?:that\s+)?(?:came\s+)?(?:before|above)|you know)",
    "new orders": rf"\bnew\s+{_ORDERS}\s*:|\b(?:updated|real|actual|true)\s+instructions\s*:|\byour\s+(?:new\s+|real\s+)?instructions\s+(?:are|now)\b",
    "system prompt": r"\b(?:reveal|print|show|repeat|output|leak|ignore|override|disregard|your|new)\s+(?:the\s+|your\s+)?system\s+prompt"
                     r"|\bsystem\s+prompt\s*(?:update|override|change)?\s*:",
    # a header that pretends the next words come from the system, a tool or the assistant; "System message:" and
    # "Admin note:" head ordinary IT mail and wikis too, so they count only when an order to the model follows
    "fake role header": r"<\|\s*im_start\s*\|>|<\|\s*(?:system|assistant|user)\s*\|>|\[/?(?:system|assistant|INST|SYS)\]|<</?SYS>>"
                        r"|^\s*#{2,}\s*(?:system|assistant|instruction|response)s?\s*:"
                        r"|\b(?:system|admin|developer)\s+(?:message|note|prompt|instruction|override)s?\s*:[^\n]{0,40}?"
                        r"\b(?:ignore|disregard|forget|override|assistant|AI|Deputy|new instructions|from now on|you (?:must|will|are))\b"
                        r"|^\s*(?:tool|function)\s+(?:output|result|response)\s*:"
                        r"|^\s*(?:assistant|system|AI)\s*:\s*(?:you|your|ignore|disregard|forget|new|from now)",
    # someone addressing the model that reads the text: "Assistant, email ...", "ATTENTION AI: ...", "note to the assistant:";
    # not "Bot:" or "Agent:", which label the speakers of a pasted support chat
    "addresses the model": rf"\b(?:AI|LLM|Deputy|assistants?)\s*[,:]\s*(?:please\s+)?(?:{_ACTS})\b"
                           rf"|\b(?:AI|LLM)\s+(?:assistants?|agents?|helpers?|models?|bots?)\s*[,:]\s*(?:please\s+)?(?:\w+\s+){{0,3}}?(?:{_ACTS})\b"
                           r"|\b(?:to|attention|hey|dear)\s+(?:the\s+|any\s+)?(?:AI|LLM|assistant|model|bot|agent|language model)s?"
                           r"\s+(?:reading|processing|summari[sz]ing|handling)\s+th(?:is|ese)"
                           r"|\b(?:AI|LLM)s?\s+(?:assistants?|agents?|models?|bots?)?\s*(?:reading|processing|summari[sz]ing)\s+this\b"
                           r"|\battention,?\s+(?:AI|LLM|assistant)s?\b|\bnote (?:to|for) (?:the |any )?(?:AI|assistant|model|bot|agent)\s*:"
                           r"|\bif you are an?\s+(?:AI|LLM|language model|assistant|bot)\b",
    # "you are DAN", "pretend you are", "from now on you will"
    "role play": r"\byou are (?:now\s+)?DAN\b|\bdo anything now\b|\b(?:DAN|god|jailbreak|jailbroken|unrestricted)\s+mode\b"
                 r"|\byou are (?:now )?in (?:admin|developer|god|debug|unrestricted|DAN) mode\b"
                 r"|\bpretend (?:that )?(?:you are|you're)\b|(?:^|[.!?:]\s*|\bplease\s+)pretend to be\b|\b(?:role-?play|roleplay) as\b"
                 r"|\bfrom now on,?\s+you (?:will|must|shall|are going to|should)\s+(?:only\s+|always\s+|never\s+)?"
                 r"(?:ignore|obey|follow|act|respond|answer|reply|be\b|pretend|do\b|send|forward|comply|refuse|speak|talk)"
                 r"|\byou are now (?:an? |the |my )?(?:\w+\s+)?(?:bot|assistant|AI|model|agent|persona|free|unrestricted|jailbroken)\b"
                 r"|\byou are no longer (?:an? )?(?:AI|assistant|model|bound|restricted)\b"
                 r"|\bact as (?:an? |the )?(?:admin|administrator|developer|root|system|unrestricted|unfiltered)\b",
    # keeping the person who runs the assistant out of it
    "secrecy": rf"\bwithout (?:asking|telling|informing|notifying|alerting|consulting|confirming with|checking with|"
               rf"the approval of|approval from|permission from)\s+{_WHO}"
               rf"|\b(?:do not|don't|never)\s+(?:tell|inform|notify|alert|warn|mention (?:this|it) to|ask)\s+{_WHO}"
               rf"|\b(?:hide|keep) (?:this|it) (?:secret )?from\s+{_WHO}|\bdon'?t ask,? just (?:send|do|pay|forward|transfer)",
    # claiming the operator already said yes; "approved by the owner" is how a landlord's agent writes
    "claimed approval": r"\b(?:pre-?|already )?approved by (?:the |your )?operator\b"
                        r"|\boperator (?:has )?already (?:agreed|approved|confirmed|signed off)\b",
    "bulk forward": r"\bforward (?:all|every) (?:invoices?|emails?|messages?|files?)",
}

INJECTION = re.compile("|".join(f"(?:{p})" for p in PATTERNS.values()), re.IGNORECASE | re.MULTILINE)
_NAMED = {name: re.compile(p, re.IGNORECASE | re.MULTILINE) for name, p in PATTERNS.items()}


def families(text: str) -> list[str]:
    """The named families a text matches: for reports and tests, the inspector needs only INJECTION."""
    return [name for name, pattern in _NAMED.items() if pattern.search(text)]
