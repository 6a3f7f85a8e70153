"""Editors' CSS selectors (``full_text_selector`` in sources.toml) checked and translated.

The one home of ``cssselect``: a selector becomes the XPath expression the full-text stage runs
on an article page; a selector cssselect cannot read, or one naming a pseudo-element
(``::before``) no page's tree holds, is refused with the reason.
"""

from __future__ import annotations

from cssselect import GenericTranslator, SelectorError


def selector_xpath(selector: str) -> str:
    """The XPath of a CSS selector; raises ``ValueError`` naming the problem."""
    try:
        return str(GenericTranslator().css_to_xpath(selector))
    except SelectorError as exc:
        raise ValueError(f"{selector!r} is not a CSS selector this service can use: {exc}") from exc


def selector_problem(selector: str) -> str | None:
    """Why ``selector`` cannot pick the article's element, or None."""
    try:
        selector_xpath(selector)
    except ValueError as exc:
        return str(exc)
    return None
