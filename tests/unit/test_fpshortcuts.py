"""The shortcuts ``polling.parse`` installs in feedparser give feedparser's own answers.

Each shortcut is compared with the feedparser code it stands in for (``parse`` keeps the
originals) on inputs chosen to reach every branch of that code: FeedParserDict's mapped and
computed keys, the deep copies feedparser makes, and every code point through the cp1252
translation.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import feedparser.html
import feedparser.mixin
import pytest
from feedparser.util import FeedParserDict

from aggregator.polling import fpshortcuts, parse

OWN = parse._fp_dict_methods
KEYS: tuple[Any, ...] = (
    *FeedParserDict.keymap,
    *parse.FP_DICT_COMPUTED_KEYS,
    "summary",
    "subtitle",
    "href",
    "published",
    "published_parsed",
    "tags",
    "links",
    "title",
    "type",
    "value",
    "missing",
    "",
    "__deepcopy__",
    1,
    None,
    ("a",),
)


def samples() -> list[dict[Any, Any]]:
    """Plain contents for FeedParserDicts: each computed key's cases, mapped keys present
    or not."""
    link = {"rel": "enclosure", "href": "https://e.example/a.mp3", "type": "audio/mpeg"}
    return [
        {},
        {"title": "t", "summary": "s", "subtitle": "st", "href": "h", "type": "text/html"},
        {"tags": [FeedParserDict(term="news", scheme=None, label=None)], "links": []},
        {"tags": []},
        {"links": [FeedParserDict(link), FeedParserDict(rel="license", href="https://l/")]},
        {"links": [FeedParserDict(rel="alternate", href="https://a/")]},
        {"published": "p", "published_parsed": (2024, 1, 2, 3, 4, 5, 1, 2, 0)},
        {"published": "p", "updated": "u", "updated_parsed": None},
        {"id": "i", "guid": "g", "rights": "r", "feed": {}, "entries": []},
        {"__deepcopy__": "not a method", 1: "one"},
    ]


@contextmanager
def feedparser_own_dict() -> Iterator[None]:
    installed = {name: FeedParserDict.__dict__[name] for name in OWN}
    for name, method in OWN.items():
        setattr(FeedParserDict, name, method)
    try:
        yield
    finally:
        for name, method in installed.items():
            setattr(FeedParserDict, name, method)


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = call()
            # getattr of "items" is a bound method, a new object each time
            result: tuple[Any, ...] = ("value", value.__name__ if callable(value) else value)
        except Exception as exc:  # compared, not judged
            result = ("raised", type(exc), str(exc))
    return (*result, [(w.category, str(w.message)) for w in caught])


def dict_calls(contents: dict[Any, Any], key: Any) -> list[tuple[Any, ...]]:
    """Every shortcut method called with ``key`` on a fresh FeedParserDict, with what it
    returned or raised, what it warned, and the dictionary after."""
    results = []
    calls: list[Callable[[FeedParserDict], Any]] = [
        lambda d: d[key],
        lambda d: d.get(key),
        lambda d: d.get(key, "default"),
        lambda d: key in d,
        lambda d: d.setdefault(key, "new"),
        lambda d: d.__setitem__(key, "set"),
        lambda d: getattr(d, str(key)),
    ]
    for call in calls:
        data = FeedParserDict(contents)
        results.append((*outcome(functools.partial(call, data)), dict(data)))
    return results


def test_the_shortcuts_are_installed() -> None:
    for name, own in OWN.items():
        assert FeedParserDict.__dict__[name] is not own, name
    assert isinstance(feedparser.mixin.copy, fpshortcuts.FlatDeepcopy)
    assert isinstance(feedparser.mixin._cp1252, list)


def test_feedparser_dict_answers_as_its_own_methods_for_every_key_and_case() -> None:
    for contents in samples():
        for key in KEYS:
            ours = dict_calls(contents, key)
            with feedparser_own_dict():
                own = dict_calls(contents, key)
            assert ours == own, (contents, key)


def test_the_computed_keys_are_the_keys_feedparser_s_methods_test_for() -> None:
    # A feedparser release that treats another key apart would need it among the slow keys:
    # the comparison above only tries the keys it lists.
    tested: set[str] = set()
    for method in OWN.values():
        source = inspect.getsource(method)
        tested.update(re.findall(r"key == '([^']+)'", source))
        for group in re.findall(r"key in \(([^)]*)\)", source):
            tested.update(re.findall(r"'([^']+)'", group))
    assert tested == set(parse.FP_DICT_COMPUTED_KEYS)


def test_feedparser_dict_shortcuts_are_not_plain_dict_for_mapped_keys() -> None:
    # The comparison above must be able to fail: a mapped key reads and writes its target.
    data = FeedParserDict(summary="s")
    assert data["description"] == "s"
    data["guid"] = "g"
    assert dict(data) == {"summary": "s", "id": "g"}


def test_a_subclass_keeps_feedparser_dict_methods() -> None:
    class Upper(FeedParserDict):  # type: ignore[misc]
        def __getitem__(self, key: Any) -> Any:
            return str(FeedParserDict.__getitem__(self, key)).upper()

    data = Upper(title="t")
    assert data.get("title") == "T"
    assert ("title" in data) is True


def deep_copy_cases() -> list[Any]:
    with_attribute = FeedParserDict(type="text/html")
    with_attribute.note = "an attribute"
    return [
        FeedParserDict(type="text/plain", language=None, base="https://b/", base64=0),
        FeedParserDict(type="text/html", language="en", base="", value="<p>x</p>"),
        FeedParserDict(description="mapped on the way in", flag=True, ratio=0.5),
        FeedParserDict(),
        FeedParserDict(type="text/html", nested=FeedParserDict(a="b")),
        FeedParserDict(type="text/html", items=["a"]),
        FeedParserDict({1: "an int key"}),
        FeedParserDict({"__deepcopy__": "a key, not a method"}),
        with_attribute,
        {"type": "a plain dict"},
        ["a", FeedParserDict(type="x")],
    ]


def shape(value: Any) -> Any:
    """``value`` with the type of every container spelled out, for an exact comparison."""
    if isinstance(value, dict):
        return (
            type(value),
            [(k, shape(v)) for k, v in dict.items(value)],
            sorted(vars(value).items()) if hasattr(value, "__dict__") else None,
        )
    if isinstance(value, list | tuple):
        return (type(value), [shape(v) for v in value])
    return (type(value), value)


def copied_shape(deepcopy: Callable[[Any], Any], value: Any) -> Any:
    return shape(deepcopy(value))


def test_flat_deepcopy_copies_as_copy_deepcopy_does() -> None:
    fast = fpshortcuts.FlatDeepcopy(FeedParserDict)
    for case in deep_copy_cases():
        own = outcome(functools.partial(copied_shape, copy.deepcopy, case))
        assert outcome(functools.partial(copied_shape, fast.deepcopy, case)) == own, case
        with_memo = functools.partial(fast.deepcopy, memo={})
        assert outcome(functools.partial(copied_shape, with_memo, case)) == own, case
    flat = deep_copy_cases()[0]
    copied = fast.deepcopy(flat)
    copied["type"] = "changed"
    assert flat["type"] == "text/plain"


def test_flat_deepcopy_leaves_the_rest_of_copy_alone() -> None:
    assert fpshortcuts.FlatDeepcopy(FeedParserDict).copy is copy.copy


def test_the_translation_table_translates_every_code_point_as_feedparser_s_mapping() -> None:
    every = "".join(map(chr, range(0x110000)))
    translated = every.translate(feedparser.mixin._cp1252)
    assert translated == every.translate(parse._fp_cp1252)
    assert translated != every  # the mapping does something: the comparison can fail
    mixed = "Ça coûte 5\x80 – \x93quoted\x94 \U0001f600 \x9d end"
    assert mixed.translate(feedparser.mixin._cp1252) == mixed.translate(parse._fp_cp1252)


def test_a_translation_table_refuses_code_points_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="outside the table"):
        fpshortcuts.translation_table({fpshortcuts.TABLE_SIZE: "x"})


def test_findable_modules_drops_only_modules_known_to_be_absent() -> None:
    def find_spec(name: str) -> object:
        if name == "broken":
            raise ValueError("no spec")
        return object() if name == "present" else None

    assert fpshortcuts.findable_modules(find_spec, ["absent", "present", "broken"]) == [
        "present",
        "broken",
    ]
