"""The corpus of `deputy bench memory`: short, varied notes of the kind a one-person company keeps,
and questions about them asked the way an operator would ask.

Every slot of a note (person, client, topic, place, ...) is drawn from a fixed list with Zipf
weights (rank^-1), so a few clients and topics recur in many notes and most words are rare, as in
real notes; invoice numbers, amounts and dates make the long tail. `word_stats` reports the
resulting distribution, so a reader can judge how natural it is."""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

FIRST = (
    "Anna Bob Priya Chen Maria Omar Lena Kofi Yuki Sam Ines Tom Sofia Lucas Amara Diego Hana Ravi Elena Jonas Fatima "
    "Mateo Aiko Noah Zara Ivan Chloe Tariq Freya Mikhail Leila Pablo Greta Kwame Nadia Felix Mei Hugo Salma Oscar Ingrid "
    "Tobias Aisha Bruno Clara Dmitri Esther Farid Gina Henrik Isla Jamal Katja Luca Marta Nils Olga Pedro Rosa Stefan "
    "Tanya Umar Vera Wes Xenia Yara Zoltan Beatriz Carlos Daria Emil Flora Goran Helga Idris Jana Karim Liv Marco Nora"
).split()
LAST = (
    "Shah Novak Okafor Tanaka Garcia Muller Rossi Kowalski Nguyen Silva Jensen Haddad Petrov Costa Larsen Moreau Ito "
    "Fischer Mendes Dubois Ivanova Brennan Osei Lindqvist Romero Yilmaz Kaur Weber Santos Nakamura Berg Alvarez Kim"
).split()
COMPANY = (
    "Globex Initech Umbrella Hooli Stark Wayne Acme Soylent Vandelay Wonka Nimbus Bluebird Northwind Contoso Fabrikam "
    "Tailspin Litware Proseware Adatum Lucerne Margie Fourth Coffee Woodgrove Alpine Blackbird Copperleaf Driftwood "
    "Evergreen Foxglove Granite Harbor Ironbark Juniper Kestrel Lumen Meridian Nettle Oakridge Pinecone Quarry Riverbend "
    "Saltmarsh Thistle Upland Verdant Willow Yarrow Zephyr Aster Birch Cinder Dune Ember Fjord Glade Heath Inlet Jasper"
).split()
KIND = ["Ltd", "GmbH", "Studio", "Labs", "Consulting", "Bakery", "Logistics", "Media", "Design", "Partners", "Foods", "Clinic"]
TOPIC = (
    "invoice renewal contract launch budget website newsletter logo quote proposal refund deposit discount "
    "sample mockup prototype brochure podcast webinar workshop retainer sponsorship trademark insurance lease "
    "payroll pension mortgage audit forecast roadmap backlog migration backup domain hosting certificate license "
    "translation photoshoot catalogue packaging shipment warehouse inventory supplier pricing subscription "
    "onboarding offboarding testimonial referral partnership grant loan overdraft receipt timesheet estimate "
    "storyboard transcript manuscript illustration banner campaign survey interview recruitment apprenticeship"
).split()
ACTION = [
    "asked about", "will send", "is waiting for", "approved", "wants changes to", "complained about", "needs a reminder about",
    "signed off on", "has questions on", "rejected", "paid for", "forgot about", "loved", "is unhappy with", "wants a call about",
    "sent back", "delayed", "cancelled", "confirmed", "disputed", "asked for a copy of", "wants a cheaper", "suggested a new",
    "is drafting", "reviewed", "shared feedback on", "postponed", "double-checked", "mentioned", "praised",
]
WHEN = [
    "on Monday", "next week", "before Friday", "after lunch", "in March", "by the end of the month", "tomorrow", "this quarter",
    "after the holidays", "on Tuesday", "before the trade fair", "in two weeks", "tonight", "on Thursday morning",
    "before the summer", "in April", "next month", "by Wednesday", "at the weekend", "in September", "early January",
    "before the board meeting", "after the audit", "on the first of the month", "in the autumn",
]
PLACE = (
    "Berlin Lisbon Leeds Osaka Nairobi Austin Lyon Krakow Porto Ghent Bergen Seville Tartu Graz Malmo Bristol Utrecht "
    "Bologna Aarhus Valencia Cork Brno Turku Geneva Split Riga Basel Nantes Haarlem Dundee"
).split()
ITEM = (
    "mug poster tote hoodie notebook candle calendar sticker print cap apron lanyard badge keychain bottle scarf "
    "cushion planner postcard coaster blanket umbrella"
).split()
TOOL = (
    "Figma Notion Xero Stripe Shopify Mailchimp Slack Zoom Dropbox Trello Canva QuickBooks Calendly Hubspot Airtable "
    "WordPress Squarespace Zapier Asana Miro"
).split()
ADJ = (
    "matte glossy recycled premium minimal bold vintage pastel eco cheap custom limited seasonal bulk handmade "
    "bright cosy modern rustic compact"
).split()
RELATION = ["partner", "daughter", "son", "assistant", "accountant", "lawyer", "co-founder", "manager", "wife", "husband"]
CHANNEL = ["phone calls", "email", "WhatsApp", "video calls", "text messages", "a quick chat in person", "Slack"]
TIME_PREF = ["in the afternoon", "early in the morning", "never on Fridays", "after 10am", "before lunch", "on weekdays only"]
OUTCOME = [
    "she agreed to the new price", "he wants to think about it", "they need a written offer", "we split the cost",
    "the deadline moved", "they will pay in two instalments", "nothing decided yet", "follow up by email",
    "they asked for references", "it went well", "they want samples first", "we lost the deal", "they signed on the spot",
]
TODO = [
    "renew the domain", "file the VAT return", "back up the laptop", "update the price list", "chase the unpaid invoices",
    "order more packaging", "book the train to the fair", "reply to the bank", "send the newsletter", "pay the freelancers",
    "archive old projects", "update the privacy policy", "call the accountant", "check the insurance", "restock the shop",
]
ALL_LISTS: tuple[Sequence[str], ...] = (FIRST, LAST, COMPANY, KIND, TOPIC, ACTION, WHEN, PLACE, ITEM, TOOL, ADJ,
                                        RELATION, CHANNEL, TIME_PREF, OUTCOME, TODO)
WORD = re.compile(r"\w+")
STOP = frozenset("a an the and or of to in on at for with by from is are was were be it its this that we they he she".split())


@dataclass(frozen=True)
class Note:
    text: str
    # the slot values a question about this note may name
    slots: dict[str, str]
    kind: str


class Zipf:
    """Draws from ranked lists with weights rank^-s: the first entries are common, the rest a long tail."""

    def __init__(self, rng: random.Random, s: float = 1.0) -> None:
        self.rng, self.s = rng, s
        self._weights: dict[int, list[float]] = {}

    def pick(self, options: Sequence[str]) -> str:
        weights = self._weights.get(len(options))
        if weights is None:
            weights = self._weights[len(options)] = [1.0 / (rank ** self.s) for rank in range(1, len(options) + 1)]
        return self.rng.choices(options, weights=weights)[0]


def _note(z: Zipf, rng: random.Random, i: int) -> Note:
    person = f"{z.pick(FIRST)} {z.pick(LAST)}" if rng.random() < 0.4 else z.pick(FIRST)
    company = z.pick(COMPANY) if rng.random() < 0.7 else f"{z.pick(COMPANY)} {z.pick(KIND)}"
    topic, place, item, tool, adj = z.pick(TOPIC), z.pick(PLACE), z.pick(ITEM), z.pick(TOOL), z.pick(ADJ)
    amount = f"{rng.choice(['€', '$', '£'])}{rng.randint(1, 400) * 5 * 10 ** rng.randint(0, 2)}"
    ref = f"{rng.choice(['INV', 'PO', 'Q', 'ORD'])}-{rng.randint(100, 99_999)}"
    day = f"{rng.randint(1, 28)} {rng.choice(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'])}"
    kind = rng.choices(
        ["client", "call", "paid", "quote", "meeting", "prefers", "todo", "invoice", "family", "tool", "idea", "recommend"],
        weights=[8, 5, 4, 3, 4, 2, 4, 4, 1, 2, 2, 1],
    )[0]
    slots = {"person": person, "company": company, "topic": topic, "place": place, "item": item, "tool": tool}
    if kind == "client":
        text = f"{person} from {company} {z.pick(ACTION)} the {topic} {z.pick(WHEN)}"
    elif kind == "call":
        text = f"Call {person} about the {topic}; {z.pick(OUTCOME)}"
    elif kind == "paid":
        text = f"Paid {amount} to {company} for the {topic} ({ref})"
    elif kind == "quote":
        text = f"{company} wants a quote for {rng.randint(2, 40) * 25} {adj} {item}s, delivered to {place} {z.pick(WHEN)}"
    elif kind == "meeting":
        text = f"Met {person} in {place} about the {topic}: {z.pick(OUTCOME)}"
    elif kind == "prefers":
        text = f"{person} at {company} prefers {z.pick(CHANNEL)} {z.pick(TIME_PREF)}"
    elif kind == "todo":
        text = f"Remember to {z.pick(TODO)} {z.pick(WHEN)}"
    elif kind == "invoice":
        text = f"Invoice {ref} to {company}: {amount} for the {topic}, due {day}"
    elif kind == "family":
        slots["relation"] = relation = z.pick(RELATION)
        text = f"{person}'s {relation} is called {z.pick(FIRST)}; ask about {z.pick(PLACE)} next time"
    elif kind == "tool":
        text = f"The {tool} subscription renews on {day} at {amount} a month; {person} has the login"
    elif kind == "idea":
        text = f"Idea: a {adj} {item} bundle for {company}, maybe launch it in {place} {z.pick(WHEN)}"
    else:
        text = f"{person} recommended {tool} for the {topic}: {adj} and {z.pick(ADJ)}"
    return Note(text=text, slots=slots, kind=kind)


def notes(n: int, seed: int = 7) -> list[Note]:
    rng = random.Random(seed)
    z = Zipf(rng)
    return [_note(z, rng, i) for i in range(n)]


QUESTIONS: dict[str, tuple[str, ...]] = {
    "client": ("what did {person} say about the {topic}", "anything from {company} on the {topic}?", "who is handling the {topic} at {company}"),
    "call": ("did I talk to {person} about the {topic}", "what came out of the call with {person}"),
    "paid": ("how much did we pay {company}", "what did the {topic} cost us"),
    "quote": ("how many {item}s did {company} want", "quote for {item}s to {place}?"),
    "meeting": ("what happened when I met {person} in {place}", "meeting notes {place} {topic}"),
    "prefers": ("how does {person} like to be contacted", "best way to reach {person}"),
    "todo": ("what do I need to remember", "my to-do list"),
    "invoice": ("when is the {company} invoice due", "open invoices for {company}"),
    "family": ("what is the name of {person}'s {relation}", "{person} family"),
    "tool": ("when does {tool} renew", "who has the {tool} password"),
    "idea": ("ideas for {item}s", "that bundle idea for {company}"),
    "recommend": ("who recommended {tool}", "tool tips for the {topic}"),
}


def questions(corpus: Sequence[Note], n: int, seed: int = 13) -> list[tuple[str, int]]:
    """`n` questions, each about one note drawn uniformly (its index is the answer sought)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = rng.randrange(len(corpus))
        note = corpus[target]
        out.append((rng.choice(QUESTIONS[note.kind]).format(**note.slots), target))
    return out


def word_stats(texts: Sequence[str], top: int = 8) -> dict[str, Any]:
    """How the corpus's words are spread: vocabulary, words per note, and the most common words'
    share of notes (what decides the cost of a keyword search)."""
    docs: Counter[str] = Counter()
    words = 0
    for text in texts:
        found = [w.lower() for w in WORD.findall(text)]
        words += len(found)
        docs.update(set(found) - STOP)
    n = max(len(texts), 1)
    ranked = docs.most_common()
    return {
        "notes": len(texts),
        "words_per_note": round(words / n, 1),
        "vocabulary": len(docs),
        "words_in_one_note_only": sum(1 for _, c in ranked if c == 1),
        "top_words_share_of_notes": {w: round(c / n, 3) for w, c in ranked[:top]},
        "words_in_over_1pct_of_notes": sum(1 for _, c in ranked if c > n / 100),
    }
