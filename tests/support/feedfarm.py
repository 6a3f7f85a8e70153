"""Many loopback feed hosts at once, for the tests where several workers share the polling.

A host is one worker's at a time (per-host politeness across workers), so sources that all live
on 127.0.0.1 would be polled by one worker while the others wait. The farm runs one
``FeedServer`` per loopback address (127.0.0.2, 127.0.0.3, …: all of 127/8 is loopback on
Linux) and spreads sources over them; it counts requests per source path across all hosts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import rss

FIRST_ADDRESS = 2


@dataclass(frozen=True)
class FarmSource:
    id: str
    url: str
    path: str


class FeedFarm:
    def __init__(self, servers: list[FeedServer]) -> None:
        self.servers = servers

    def place(self, number: int) -> tuple[FeedServer, str]:
        server = self.servers[number % len(self.servers)]
        return server, f"/s{number}.xml"

    def add_sources(
        self,
        count: int,
        items: int,
        *,
        delay: float = 0.0,
        share: int = 0,
        date: str = "Tue, 17 Nov 2026 09:00:00 GMT",
    ) -> list[FarmSource]:
        """``count`` sources s0…, each a feed of ``items`` entries of its own (distinct links
        and text: one story each). With ``share``, the first entry of each run of ``share``
        consecutive sources (on different hosts) links to one shared URL: one story told by
        ``share`` sources."""
        sources = []
        for number in range(count):
            server, path = self.place(number)
            entries = [
                {
                    "guid": f"s{number}-{i}",
                    "title": f"Source {number} story {i}",
                    "link": f"https://s{number}.example/{i}",
                    "body": f"Body {i} of source {number}.",
                    "date": date,
                }
                for i in range(items)
            ]
            if share:
                entries[0]["link"] = f"https://shared.example/{number // share}"
            server.set(path, Resource(body=rss(f"S{number}", entries), delay=delay))
            sources.append(FarmSource(f"s{number}", server.url(path), path))
        return sources

    def counts(self) -> Counter[str]:
        """Requests per source path, over every host."""
        found: Counter[str] = Counter()
        for server in self.servers:
            found.update(urlsplit(r.path).path for r in server.requests)
        return found

    def total(self) -> int:
        return sum(len(server.requests) for server in self.servers)


def sources_toml(sources: list[FarmSource], category: str = "all") -> str:
    return "\n".join(
        f'[[source]]\nid = "{s.id}"\nurl = "{s.url}"\ncategories = ["{category}"]\n'
        for s in sources
    )


@contextmanager
def feed_farm(hosts: int) -> Iterator[FeedFarm]:
    with ExitStack() as stack:
        servers = [
            stack.enter_context(FeedServer(host=f"127.0.0.{FIRST_ADDRESS + n}"))
            for n in range(hosts)
        ]
        yield FeedFarm(servers)
