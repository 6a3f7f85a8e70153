"""An ``xml.sax`` driver: the standard expat reader with expat's text buffering on, so that a
run of text reaches the content handler in one ``characters`` call instead of one per line
and per entity reference.

``polling.parse`` names it as feedparser's preferred XML parser (``xml.sax.make_parser``
imports a driver by module name and calls its ``create_parser``); feedparser joins the pieces
of an element's text, so it reads the same text either way.
"""

from __future__ import annotations

from typing import Any
from xml.sax import expatreader


class BufferedExpatParser(expatreader.ExpatParser):
    def reset(self) -> None:
        super().reset()
        self._parser.buffer_text = True  # type: ignore[attr-defined]


def create_parser(*args: Any, **kwargs: Any) -> BufferedExpatParser:
    return BufferedExpatParser(*args, **kwargs)
