"""An article page's main text: trafilatura's extraction, or the editors' CSS selector.

The one home of ``trafilatura`` and of ``lxml.html``. Chosen over readability-lxml on the
annotated article pages of trafilatura's evaluation set (bench/fulltext_extract.py,
docs/fulltext.md). What comes out is sanitized here (``safety.sanitize``), links made absolute
against the page's URL, so nothing downstream ever sees the page's own markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.safety.sanitize import clean_html, html_to_text, scrub_text

# Stored and published as one item's content: a longer extraction is cut here, and the
# sanitizer closes whatever the cut left open.
MAX_HTML_CHARS = 500_000


class ExtractError(Exception):
    """The page could not be read, or the selector found nothing; the message says which."""


@dataclass(frozen=True)
class Extracted:
    """Sanitized main text as HTML, and as plain text (for rules, matching and the model)."""

    html: str
    text: str


def extract_main(page: bytes, url: str, *, selector: str | None = None) -> Extracted | None:
    """The main text of ``page`` (served from ``url``), or None when there is none.

    With ``selector``, the elements it matches, in page order, are the text (an empty match
    raises ``ExtractError``: the site's layout changed); otherwise trafilatura decides.
    """
    fragment: str | None
    if selector is not None:
        fragment = _selected(page, selector)
    else:
        # Imported on the first page: a `poll` with no page due never pays for them.
        import lxml.etree  # noqa: PLC0415
        import trafilatura  # noqa: PLC0415

        try:
            fragment = trafilatura.extract(
                page,
                url=url,
                output_format="html",
                include_comments=False,
                include_tables=True,
                include_links=True,
                include_images=True,
            )
        except (ValueError, TypeError, lxml.etree.LxmlError) as exc:
            raise ExtractError(f"could not read the page: {exc}") from exc
    if not fragment:
        return None
    html = clean_html(scrub_text(fragment[:MAX_HTML_CHARS]), url).strip()
    text = html_to_text(html)
    if not text:
        return None
    return Extracted(html=html, text=text)


def _selected(page: bytes, selector: str) -> str:
    import lxml.etree  # noqa: PLC0415
    import lxml.html  # noqa: PLC0415

    from aggregator.safety.selector import selector_xpath  # noqa: PLC0415

    try:
        tree = lxml.html.document_fromstring(page)
    except (ValueError, lxml.etree.LxmlError) as exc:
        raise ExtractError(f"could not read the page: {exc}") from exc
    found = [
        node
        for node in tree.xpath(selector_xpath(selector))
        if isinstance(node, lxml.html.HtmlElement)
    ]
    if not found:
        raise ExtractError(f"the selector {selector!r} matched nothing on the page")
    return "\n".join(lxml.html.tostring(node, encoding="unicode") for node in found)
