"""Exact shortcuts for three of feedparser's per-element costs: its result dictionary's key
lookups, the copy of the content parameters it keeps for each text element, and the
cp1252 translation of each element's text; and which of its preferred XML drivers exist.

Builders only: ``polling.parse``, feedparser's one home, hands them feedparser's own objects
and installs what they return. Each returns what feedparser's code returns for every input
and hands anything it does not cover to that code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

# Code points the translation table lists one by one: up to CJK (Latin, Greek, Cyrillic,
# Hebrew, Arabic, Indic scripts, punctuation), 98% of the non-ASCII characters of the shared
# corpora, in 0.5 MB; the whole BMP would take 2.6 MB. A character past it is a miss, as in
# a dictionary: str.translate keeps it.
TABLE_SIZE: Final = 0x3000

_ATOMIC_TYPES: Final = frozenset({str, int, float, bool, type(None)})


def dict_methods(cls: type[dict[Any, Any]], slow_keys: Iterable[str]) -> dict[str, Any]:
    """``__getitem__``, ``get``, ``__contains__``, ``__setitem__`` and ``setdefault`` for
    ``cls`` (feedparser's ``FeedParserDict``) that act as ``dict``'s own for a key outside
    ``slow_keys`` on an instance of ``cls`` itself, and call ``cls``'s methods otherwise.

    ``slow_keys`` are the keys ``cls`` treats specially (its key map and its computed keys):
    for any other key each of its methods does what ``dict``'s does, only through several
    comparisons and a second lookup. An instance of a subclass keeps ``cls``'s methods, in
    case it overrides one that the others call.
    """
    slow: frozenset[str] = frozenset(slow_keys)
    own_getitem = cls.__getitem__
    own_get = cls.get
    own_contains = cls.__contains__
    own_setitem = cls.__setitem__
    own_setdefault = cls.setdefault

    def __getitem__(self: dict[Any, Any], key: Any) -> Any:
        if key in slow or type(self) is not cls:
            return own_getitem(self, key)
        return dict.__getitem__(self, key)

    def get(self: dict[Any, Any], key: Any, default: Any = None) -> Any:
        if key in slow or type(self) is not cls:
            return own_get(self, key, default)
        return dict.get(self, key, default)

    def __contains__(self: dict[Any, Any], key: Any) -> bool:
        if key in slow or type(self) is not cls:
            return own_contains(self, key)
        return dict.__contains__(self, key)

    def __setitem__(self: dict[Any, Any], key: Any, value: Any) -> None:
        if key in slow or type(self) is not cls:
            own_setitem(self, key, value)
            return
        dict.__setitem__(self, key, value)

    # No default for ``default``: feedparser's setdefault takes none either.
    def setdefault(self: dict[Any, Any], key: Any, default: Any) -> Any:
        if key in slow or type(self) is not cls:
            return own_setdefault(self, key, default)
        return dict.setdefault(self, key, default)

    return {
        "__getitem__": __getitem__,
        "get": get,
        "__contains__": __contains__,
        "__setitem__": __setitem__,
        "setdefault": setdefault,
    }


class FlatDeepcopy:
    """Stands in for the ``copy`` module where feedparser deep-copies its content parameters
    (a few strings and numbers, for every text element with a type): a flat ``cls`` of
    atomic values is copied key by key, as ``copy.deepcopy`` ends up doing (a new empty
    instance, then each key set through ``__setitem__``); everything else goes to it."""

    def __init__(self, cls: type[dict[Any, Any]]) -> None:
        self._cls = cls

    def deepcopy(self, x: Any, memo: dict[int, Any] | None = None) -> Any:
        cls = self._cls
        # deepcopy would call a ``__deepcopy__`` key (feedparser's dict reads missing
        # attributes as keys) and copy an instance __dict__.
        if (
            memo is None
            and type(x) is cls
            and not x.__dict__
            and not dict.__contains__(x, "__deepcopy__")
            and _flat(x)
        ):
            new = cls()
            for key, value in dict.items(x):
                new[key] = value
            return new
        return copy.deepcopy(x, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _flat(mapping: dict[Any, Any]) -> bool:
    atomic = _ATOMIC_TYPES
    for key, value in dict.items(mapping):
        if type(key) is not str or type(value) not in atomic:
            return False
    return True


def translation_table(mapping: Mapping[int, str]) -> list[int | str]:
    """``mapping`` (code point -> replacement) as a list over the first ``TABLE_SIZE`` code
    points, every other one mapped to itself.

    ``str.translate`` gives the same string with either; with a dictionary it raises and
    clears a KeyError inside for each character of non-ASCII text that is not mapped, with
    the list it indexes.
    """
    if any(not 0 <= code_point < TABLE_SIZE for code_point in mapping):
        raise ValueError("a mapped code point is outside the table")
    table: list[int | str] = list(range(TABLE_SIZE))
    for code_point, replacement in mapping.items():
        table[code_point] = replacement
    return table


def findable_modules(find_spec: Callable[[str], object], names: Iterable[str]) -> list[str]:
    """``names`` without the top-level modules ``find_spec`` says are not installed (kept
    when it cannot tell)."""
    kept: list[str] = []
    for name in names:
        try:
            found = find_spec(name)
        except (ImportError, ValueError):
            found = True
        if found is not None:
            kept.append(name)
    return kept
