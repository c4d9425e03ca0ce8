from __future__ import annotations

import pytest

from kernel.text import EMAIL, STOPWORDS, find_emails
from memory.keyword_search import query_words
from memory.notes import terms


@pytest.mark.parametrize("text, found", [
    ("mail ana@acme.io.", ["ana@acme.io"]),
    ("(Ana <Ana.Smith+invoices@Mail.Acme.co.uk>)", ["ana.smith+invoices@mail.acme.co.uk"]),
    ("to ana@acme.io, bob@x-y.org; and ANA@ACME.IO", ["ana@acme.io", "bob@x-y.org"]),
    ("ask ana@acme.io?", ["ana@acme.io"]),
    ("meet@3pm, price@5.50, ana@localhost, @ana, a@b.c", []),
    ("ana@@acme.io", []),
])
def test_addresses_are_found_as_people_write_them(text: str, found: list[str]) -> None:
    assert find_emails(text) == found


def test_the_pattern_checks_a_whole_field() -> None:
    assert EMAIL.fullmatch("ana@acme.io")
    assert not EMAIL.fullmatch("Ana <ana@acme.io>") and not EMAIL.fullmatch("ana@acme")


def test_note_search_and_keyword_search_leave_out_the_same_function_words() -> None:
    question = "What did we agree with Ana about the invoice?"
    assert terms(question) == query_words(question) == ["agree", "ana", "invoice"]
    assert "whom" in STOPWORDS and "invoice" not in STOPWORDS
