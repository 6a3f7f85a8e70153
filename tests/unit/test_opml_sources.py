"""``aggregator.editorial.opml``: reading subscription lists (nested, sloppy or hostile), planning
an import without the network, exporting the configured sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.editorial.opml import (
    Configured,
    category_id_for,
    export_opml,
    plan_import,
    read_outlines,
)
from aggregator.errors import ConfigError

NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Mine</title></head><body>
  <outline text="Loose" xmlUrl="https://loose.example/feed" htmlUrl="https://loose.example/"/>
  <outline text="News">
    <outline text="Europe">
      <outline text="Le Monde" title="Le Monde" xmlUrl="https://lemonde.example/rss"
               language="fr"/>
    </outline>
    <outline title="BBC" xmlUrl="http://bbc.example/rss/"/>
  </outline>
  <outline text="Tech" title="Tech">
    <outline text="BBC again" xmlUrl="https://bbc.example/rss"/>
    <outline text="Empty" xmlUrl=""/>
    <outline text="FTP" xmlUrl="ftp://files.example/feed"/>
    <outline text="No host" xmlUrl="http://"/>
  </outline>
  <outline text="ニュース"><outline text="NHK" xmlUrl="https://nhk.example/rss"/></outline>
</body></opml>
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def configured(*categories: tuple[str, str], sources: dict[str, str] | None = None) -> Configured:
    return Configured(sources=sources or {}, categories=dict(categories))


def test_nested_outlines_with_their_folders(tmp_path: Path) -> None:
    outlines, note = read_outlines(write(tmp_path, "a.opml", NESTED))
    assert note is None
    assert [(o.title, o.folders) for o in outlines] == [
        ("Loose", ()),
        ("Le Monde", ("News", "Europe")),
        ("BBC", ("News",)),
        ("BBC again", ("Tech",)),
        ("Empty", ("Tech",)),
        ("FTP", ("Tech",)),
        ("No host", ("Tech",)),
        ("NHK", ("ニュース",)),
    ]
    assert outlines[1].language == "fr"
    assert outlines[0].site_url == "https://loose.example/"


def test_folders_as_categories(tmp_path: Path) -> None:
    path = write(tmp_path, "a.opml", NESTED)
    outlines, _ = read_outlines(path)
    plan = plan_import(
        [(path, outlines)],
        configured(("misc", "Misc"), ("tech", "Technology")),
        category="misc",
        folders_as_categories=True,
    )
    placed = {s.title: s.categories for s in plan.sources}
    assert placed == {
        "Loose": ("misc",),
        "Le Monde": ("europe",),
        "BBC": ("news", "tech"),
        "NHK": (category_id_for("ニュース"),),
    }
    # The folder "Tech" is the existing category of that id.
    assert [c.id for c in plan.categories] == ["europe", "news", category_id_for("ニュース")]
    assert category_id_for("ニュース").startswith("folder-")
    assert [(d.title, d.reason) for d in plan.duplicates] == [
        ("BBC again", "repeated in this import (as 'bbc')")
    ]
    assert [(b.title, b.reason) for b in plan.bad] == [
        ("Empty", "empty URL"),
        ("FTP", "not an http(s) URL"),
        ("No host", "not an http(s) URL"),
    ]
    assert plan.describe() == (
        "added 4 sources, 3 new categories; skipped 1 duplicates and 3 bad URLs"
    )


def test_a_folder_titled_like_a_category_is_that_category(tmp_path: Path) -> None:
    path = write(tmp_path, "a.opml", NESTED)
    outlines, _ = read_outlines(path)
    plan = plan_import(
        [(path, outlines)],
        configured(("misc", "Misc"), ("world", "News")),
        category="misc",
        folders_as_categories=True,
    )
    assert {s.title: s.categories for s in plan.sources}["BBC"] == ("world", "tech")


def test_everything_to_one_category_and_already_configured_urls(tmp_path: Path) -> None:
    path = write(tmp_path, "a.opml", NESTED)
    outlines, _ = read_outlines(path)
    plan = plan_import(
        [(path, outlines)],
        configured(("misc", "Misc"), sources={"le-monde": "http://LeMonde.example/rss/"}),
        category="misc",
        folders_as_categories=False,
    )
    assert {s.categories for s in plan.sources} == {("misc",)}
    assert plan.categories == []
    assert ("Le Monde", "already configured as 'le-monde'") in [
        (d.title, d.reason) for d in plan.duplicates
    ]
    ids = [s.id for s in plan.sources]
    assert len(ids) == len(set(ids))


def test_a_category_is_needed_for_feeds_outside_folders(tmp_path: Path) -> None:
    path = write(tmp_path, "a.opml", NESTED)
    outlines, _ = read_outlines(path)
    with pytest.raises(ConfigError) as missing:
        plan_import([(path, outlines)], configured(), category=None, folders_as_categories=True)
    assert missing.value.file == str(path)
    assert "'Loose'" in str(missing.value)
    with pytest.raises(ConfigError) as unknown:
        plan_import([(path, outlines)], configured(), category="nope", folders_as_categories=False)
    assert unknown.value.key == "--category"


def test_sloppy_exports_are_read_leniently(tmp_path: Path) -> None:
    sloppy = """<?xml version='1.0' encoding='UTF-8' ?>
<opml version="1.0"><body>
  <outline text="Folder" title="Folder">
    <outline text="Say "hi"" title="Say "hi"" description="<p>a <em class="x">b</em></p>"
             xmlUrl="https://a.example/feed?x=1&y=2" type="rss" />
    <outline text="B &amp; C" xmlUrl="https://b.example/feed" type="rss" />
  </outline>
  <outline text="Top" xmlUrl="https://c.example/feed" />
</body></opml>"""
    outlines, note = read_outlines(write(tmp_path, "sloppy.opml", sloppy))
    assert note is not None
    assert "read leniently" in note
    assert [(o.url, o.folders) for o in outlines] == [
        ("https://a.example/feed?x=1&y=2", ("Folder",)),
        ("https://b.example/feed", ("Folder",)),
        ("https://c.example/feed", ()),
    ]
    assert outlines[1].title == "B & C"


def test_entities_are_never_expanded(tmp_path: Path) -> None:
    laughs = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    hostile = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY lol0 "lol">{laughs}'
        '<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<opml version="2.0"><body>'
        '<outline text="&lol9;" xmlUrl="https://a.example/feed"/>'
        '<outline text="&xxe;" xmlUrl="https://b.example/feed"/>'
        "</body></opml>"
    )
    # Expanded, the first title would be a billion characters long.
    outlines, _ = read_outlines(write(tmp_path, "hostile.opml", hostile))
    assert [o.url for o in outlines] == ["https://a.example/feed", "https://b.example/feed"]
    assert all("lollol" not in o.title and "root:" not in o.title for o in outlines)


def test_what_is_not_opml_is_refused_with_the_file(tmp_path: Path) -> None:
    for name, content in (
        ("rss.opml", "<rss><channel/></rss>"),
        ("empty.opml", ""),
        ("nobody.opml", "<opml version='2.0'><head/></opml>"),
    ):
        path = write(tmp_path, name, content)
        with pytest.raises(ConfigError) as refused:
            read_outlines(path)
        assert refused.value.file == str(path)


def test_export_groups_sources_by_category_and_imports_back(tmp_path: Path) -> None:
    catalog = Catalog(
        sources=(
            SourceConfig(
                id="a",
                url="https://a.example/rss",
                categories=("x", "y"),
                title="A & B",
                site_url="https://a.example/",
                language="fr",
            ),
            SourceConfig(id="b", url="https://b.example/rss", categories=("y",), enabled=False),
        ),
        categories=(
            CategoryConfig(id="x", title="Ex", description="About <x>"),
            CategoryConfig(id="y", title="Why"),
        ),
    )
    document = export_opml(catalog)
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<opml version=\"2.0\">")
    path = write(tmp_path, "export.opml", document)
    outlines, note = read_outlines(path)
    assert note is None
    assert [(o.title, o.url, o.folders) for o in outlines] == [
        ("A & B", "https://a.example/rss", ("Ex",)),
        ("A & B", "https://a.example/rss", ("Why",)),
        ("b", "https://b.example/rss", ("Why",)),
    ]
    assert outlines[0].language == "fr"
    assert outlines[0].site_url == "https://a.example/"
    fresh = plan_import(
        [(path, outlines)],
        configured(("x", "Ex"), ("y", "Why")),
        category=None,
        folders_as_categories=True,
    )
    assert [(s.id, s.url, s.categories) for s in fresh.sources] == [
        ("a-b", "https://a.example/rss", ("x", "y")),
        ("b", "https://b.example/rss", ("y",)),
    ]
    again = plan_import(
        [(path, outlines)], Configured.of(catalog), category=None, folders_as_categories=True
    )
    assert again.sources == []
    assert len(again.duplicates) == 3
