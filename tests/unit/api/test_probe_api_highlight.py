"""Highlighting in the result snippets (issue 21, item 9): a query term never matches inside an HTML
entity the escaping made, and the text stays escaped."""

from __future__ import annotations

import re

import pytest
from markupsafe import Markup, escape

from api.pages import highlight, templates

TEXT = "a < b it's & co"
ENTITIES = re.compile(r"&(?:[a-z]+|#[0-9]+);")


def unmarked(html: str) -> str:
    return html.replace("<mark>", "").replace("</mark>", "")


@pytest.mark.parametrize("terms", [["lt"], ["amp"], ["39"], ["lt", "amp", "39", "x27", "quot"]])
def test_terms_that_only_an_entity_contains_mark_nothing(terms):
    html = highlight(TEXT, terms)
    assert isinstance(html, Markup)
    assert "<mark>" not in html
    assert html == escape(TEXT)  # the escaped text, intact


def test_no_mark_ever_lands_inside_an_entity():
    html = str(highlight(TEXT, ["lt", "amp", "39", "it", "co", "b"]))
    for entity in ENTITIES.finditer(html):
        assert "<mark>" not in entity.group(0) and "</mark>" not in entity.group(0)
    assert unmarked(html) == str(escape(TEXT))
    assert "&lt;" in html and ("&#39;" in html or "&#x27;" in html) and "&amp;" in html


def test_matching_words_are_still_marked():
    html = str(highlight(TEXT, ["co", "it"]))
    assert "<mark>co</mark>" in html and "<mark>it</mark>" in html
    assert unmarked(html) == str(escape(TEXT))
    assert str(highlight("Cheeseburger deal", ["burger"])) == "<mark>Cheeseburger</mark> deal"
    assert str(highlight("a b", ["a"])) == "a b"  # one-letter terms mark nothing, as before


def test_markup_in_the_text_stays_escaped():
    text = '<script>alert("x")</script> sale & <b>deal</b>'
    html = str(highlight(text, ["script", "sale", "deal", "alert"]))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;<mark>script</mark>&gt;" in html and "<mark>sale</mark>" in html
    assert unmarked(html) == str(escape(text))
    assert str(highlight(text, [])) == str(escape(text))


def test_the_results_template_uses_it():
    rendered = templates.env.from_string("{{ s|highlight(t) }}").render(s=TEXT, t=["lt", "co"])
    assert rendered == str(escape(TEXT)).replace("co", "<mark>co</mark>")
