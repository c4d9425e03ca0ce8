"""Deputy's reply markup, as each channel that renders it sees it."""
from __future__ import annotations

from kernel.markup import plain, spans, to_html


def test_bold_italic_and_code_become_telegram_html_and_everything_else_is_escaped():
    assert to_html("*Today* _3 items_ `/task list` <b>x</b> & co") == (
        "<b>Today</b> <i>3 items</i> <code>/task list</code> &lt;b&gt;x&lt;/b&gt; &amp; co"
    )


def test_identifiers_sums_and_stray_marks_stay_text():
    for text in ("task_id and snake_case_name", "2*3*4", "a * b * c", "**", "_", "price: 5 * 3", "file_1_2.txt"):
        assert spans(text) == [("text", text)], text


def test_spans_never_nest_so_the_html_is_always_well_formed():
    assert to_html("*a _b* c_") == "<b>a _b</b> c_"
    assert to_html("`*not bold*`") == "<code>*not bold*</code>"


def test_plain_drops_only_the_markup():
    assert plain("*Digest*: _two_ `items`, 2*3") == "Digest: two items, 2*3"
