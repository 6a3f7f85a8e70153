"""The buffered expat driver reports what the standard one does, with each run of text in one
``characters`` call, and it is what feedparser gets while the standard reader is its choice."""

from __future__ import annotations

import importlib.util
import io
import xml.sax
import xml.sax.handler
from typing import Any

import feedparser.api
import pytest

from aggregator.polling import parse, saxbuffered

LONG_TEXT = "\n".join(f"line {n} &amp; caf&#233; <![CDATA[<b>{n}</b>]]>" for n in range(800))
DOCUMENTS = [
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:x="urn:x">\n'
    "  <title>one\ntwo &amp; &lt;three&gt; &#233;&#x1F600;</title>\n"
    "  <!-- a comment -->\n  <?pi data?>\n"
    '  <x:item x:attr="v" plain="w">t<![CDATA[ <cdata> ]]>u</x:item>\n'
    f"  <content type='html'>{LONG_TEXT}</content>\n"
    "</feed>\n",
    "<rss><channel>\r\n<title>crlf\r\ntext</title>\r\n</channel></rss>",
    "<a><b>text\nbefore the error</a>",
    "<a>unfinished\ntext",
]


class Recorder(xml.sax.handler.ContentHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []

    def startPrefixMapping(self, prefix: Any, uri: Any) -> None:
        self.events.append(("prefix", prefix, uri))

    def endPrefixMapping(self, prefix: Any) -> None:
        self.events.append(("end prefix", prefix))

    def startElementNS(self, name: Any, qname: Any, attrs: Any) -> None:
        self.events.append(("start", name, qname, list(attrs.items()), attrs.getQNames()))

    def endElementNS(self, name: Any, qname: Any) -> None:
        self.events.append(("end", name, qname))

    def characters(self, content: str) -> None:
        self.events.append(("text", content))

    def processingInstruction(self, target: str, data: str) -> None:
        self.events.append(("pi", target, data))


def read(parser_names: list[str], document: str) -> tuple[list[tuple[Any, ...]], Any]:
    reader = xml.sax.make_parser(parser_names)
    reader.setFeature(xml.sax.handler.feature_namespaces, 1)
    reader.setFeature(xml.sax.handler.feature_external_ges, 0)
    recorder = Recorder()
    reader.setContentHandler(recorder)
    source = xml.sax.xmlreader.InputSource()
    source.setByteStream(io.BytesIO(document.encode()))
    try:
        reader.parse(source)
    except xml.sax.SAXParseException as exc:
        return recorder.events, (exc.getMessage(), exc.getLineNumber(), exc.getColumnNumber())
    return recorder.events, None


def merged(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for event in events:
        if event[0] == "text" and out and out[-1][0] == "text":
            out[-1] = ("text", out[-1][1] + event[1])
        else:
            out.append(event)
    return out


def without_trailing_text(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    while events and events[-1][0] == "text":
        events = events[:-1]
    return events


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_buffered_reader_reports_the_same_events_with_text_runs_joined(document: str) -> None:
    plain_events, plain_error = read(["xml.sax.expatreader"], document)
    buffered_events, buffered_error = read([saxbuffered.__name__], document)
    assert buffered_error == plain_error
    if plain_error is None:
        # A run longer than expat's buffer (8 KiB) comes in more than one piece.
        assert merged(buffered_events) == merged(plain_events)
    else:
        # Text still buffered when expat stops is not reported; feedparser throws the
        # strict parse away on a fatal error and reads the document again with its loose
        # parser, so only the error matters there.
        assert without_trailing_text(merged(buffered_events)) == without_trailing_text(
            merged(plain_events)
        )


def test_text_runs_arrive_in_fewer_calls() -> None:
    plain_events, _ = read(["xml.sax.expatreader"], DOCUMENTS[0])
    buffered_events, _ = read([saxbuffered.__name__], DOCUMENTS[0])
    plain_texts = sum(1 for event in plain_events if event[0] == "text")
    buffered_texts = sum(1 for event in buffered_events if event[0] == "text")
    assert buffered_texts < plain_texts / 10


def test_feedparser_gets_the_buffered_reader_when_it_would_get_the_standard_one() -> None:
    reader = xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS)
    standard = xml.sax.make_parser(parse._fp_xml_parsers)
    if type(standard).__module__ == "xml.sax.expatreader":
        assert isinstance(reader, saxbuffered.BufferedExpatParser)
    else:
        assert type(reader) is type(standard)


def test_feedparser_s_preference_keeps_what_can_be_imported() -> None:
    findable = [name for name in parse._fp_xml_parsers if importlib.util.find_spec(name)]
    if findable or xml.sax.default_parser_list != ["xml.sax.expatreader"]:
        assert findable == feedparser.api.PREFERRED_XML_PARSERS
    else:
        assert [saxbuffered.__name__] == feedparser.api.PREFERRED_XML_PARSERS
