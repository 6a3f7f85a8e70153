"""What workers sharing one PostgreSQL database coordinate through it: source leases (claim,
renew, release), per-host exclusivity and Retry-After holds, the write-time story locks, and the
output change marks.

A claim is one short transaction: under an advisory lock (so two claims never both take one
host), due sources of hosts no other worker holds are picked in due order, locked with
``FOR UPDATE SKIP LOCKED`` (rows a concurrent save or sync holds are skipped, never waited for)
and stamped with the owner and lease end. SQLite has neither SKIP LOCKED nor several writers:
it keeps the single-process path and never comes here (``Store.supports_leases``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from aggregator.store.models import UTCDateTime
from aggregator.store.tables import HOLDS, MARKS, SOURCES
from aggregator.types import SourceState

# Advisory lock keys; any constants work as long as nothing else in the database uses them.
CLAIM_LOCK_KEY = 0x61676743_4C41494D  # "aggCLAIM"
SYNC_LOCK_KEY = 0x61676753_594E4300  # "aggSYNC"
# Two-int advisory locks (a key space of their own): one per URL or content hash an entry
# about to be stored carries, so two workers storing copies of one story serialize and the
# second joins the first one's story instead of founding a second.
STORY_LOCK_SPACE = 0x61676753  # "aggS"
# More distinct keys than this in one save are folded into this many buckets: a huge feed
# must not exhaust the server's lock table (64 per connection by default).
MAX_STORY_LOCKS = 256
# Due rows read per claim to find sources of free hosts; grouping by host over a window this
# wide lets a claim take a few hosts whole rather than one source of every host (which would
# leave other workers nothing: a host is one worker's at a time).
CLAIM_SCAN_ROWS = 4096
OWNER_MAX = 128


def make_owner(machine: str = "") -> str:
    """A lease owner id unique to this process: ``machine:pid:random`` (machine: the host
    name unless given)."""
    name = (machine or socket.gethostname() or "host").replace(":", "_")[:80]
    return f"{name}:{os.getpid()}:{secrets.token_hex(4)}"[:OWNER_MAX]


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def reap_dead(connection: Connection, *, owner: str, now: datetime) -> int:
    """Release the live leases of workers of this machine (same machine name in the owner)
    whose process is gone: a crashed worker's sources need not wait for its leases to run
    out when a worker beside it can tell. Other machines' leases wait for their end."""
    machine, _, _ = owner.partition(":")
    owners = connection.execute(
        sa.select(SOURCES.c.lease_owner)
        .distinct()
        .where(
            SOURCES.c.leased_until > _when("now"),
            SOURCES.c.lease_owner.startswith(f"{machine}:", autoescape=True),
            SOURCES.c.lease_owner != owner,
        ),
        {"now": now},
    ).scalars()
    released = 0
    for other in owners:
        pid = other.split(":")[1] if other.count(":") >= 2 else ""
        if pid.isdigit() and other.split(":")[0] == machine and not _is_running(int(pid)):
            released += release(connection, owner=other)
    return released


def host_of(url: str) -> str:
    """The host a URL's politeness is counted against (as ``HostGate`` keys it)."""
    return (urlsplit(url).hostname or "").lower().rstrip(".")


@dataclass(frozen=True)
class Lease:
    """Who this worker is to the others and how long its claims last without renewal."""

    owner: str
    seconds: float


@dataclass(frozen=True)
class Claimed:
    """Sources a claim leased, in due order, and how many due ones it left because another
    worker holds their host (not counting hosts a Retry-After holds)."""

    ids: list[str]
    waiting: int
    # Leases of dead workers of this machine that the claim released first.
    reaped: int = 0


def _when(name: str) -> sa.BindParameter[datetime]:
    return sa.bindparam(name, type_=UTCDateTime())


def claim(
    connection: Connection,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    limit: int,
    per_host: int,
    checked_before: datetime | None = None,
) -> Claimed:
    """Lease up to ``limit`` due sources to ``owner`` until ``until``; at most ``per_host`` of
    one host, and none of a host another live owner holds. With ``checked_before`` every active
    source not checked since then counts as due (``poll --all``). Caller commits."""
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
    reaped = reap_dead(connection, owner=owner, now=now)
    busy = {
        host_of(url)
        for url in connection.execute(
            sa.select(SOURCES.c.url)
            .distinct()
            .where(SOURCES.c.leased_until > _when("now"), SOURCES.c.lease_owner != owner),
            {"now": now},
        ).scalars()
    }
    held = set(
        connection.execute(
            sa.select(HOLDS.c.host).where(HOLDS.c.not_before > _when("now")), {"now": now}
        ).scalars()
    )
    due = _due(checked_before)
    rows = connection.execute(
        sa.select(SOURCES.c.id, SOURCES.c.url)
        .where(due)
        .order_by(SOURCES.c.next_check_at.asc().nulls_first(), SOURCES.c.id)
        .limit(CLAIM_SCAN_ROWS),
        {"now": now, "checked_before": checked_before},
    ).all()
    # Per host, its URLs in due order, each with the sources sharing it: a URL's sources are
    # claimed together (one fetch serves them all) and ``per_host`` counts URLs, not sources.
    by_host: dict[str, dict[str, list[str]]] = {}
    waiting = 0
    for source_id, url in rows:
        host = host_of(url)
        if host in held:
            continue
        if host in busy:
            waiting += 1
            continue
        by_host.setdefault(host, {}).setdefault(url, []).append(source_id)
    picked: list[str] = []
    for urls in by_host.values():  # hosts in the order of their most overdue source
        for ids in list(urls.values())[:per_host]:
            picked += ids
            if len(picked) >= limit:
                break
        if len(picked) >= limit:
            break
    if not picked:
        return Claimed([], waiting, reaped)
    locked = set(
        connection.execute(
            sa.select(SOURCES.c.id)
            .where(SOURCES.c.id.in_(picked), due)
            .with_for_update(skip_locked=True),
            {"now": now, "checked_before": checked_before},
        ).scalars()
    )
    taken = [source_id for source_id in picked if source_id in locked]
    if taken:
        connection.execute(
            SOURCES.update()
            .where(SOURCES.c.id.in_(taken))
            .values(lease_owner=owner, leased_until=_when("until")),
            {"until": until},
        )
    return Claimed(taken, waiting, reaped)


def _due(checked_before: datetime | None) -> sa.ColumnElement[bool]:
    free = sa.or_(SOURCES.c.leased_until.is_(None), SOURCES.c.leased_until <= _when("now"))
    if checked_before is not None:
        when = sa.or_(
            SOURCES.c.last_checked_at.is_(None), SOURCES.c.last_checked_at < _when("checked_before")
        )
    else:
        when = sa.or_(SOURCES.c.next_check_at.is_(None), SOURCES.c.next_check_at <= _when("now"))
    return sa.and_(SOURCES.c.state == SourceState.ACTIVE, free, when)


def serialize_sync(connection: Connection) -> None:
    """Under PostgreSQL, one catalog sync at a time until commit: the second sees the rows
    the first inserted instead of inserting them again."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SYNC_LOCK_KEY)))


def renew(connection: Connection, *, owner: str, until: datetime) -> int:
    """Push the end of every lease ``owner`` still holds to ``until``."""
    result = connection.execute(
        SOURCES.update().where(SOURCES.c.lease_owner == owner).values(leased_until=_when("until")),
        {"until": until},
    )
    return int(result.rowcount or 0)


def release(connection: Connection, *, owner: str, ids: Sequence[str] | None = None) -> int:
    """Give back ``owner``'s leases (all of them, or those of ``ids``): due sources are due
    again for every worker at once."""
    query = SOURCES.update().where(SOURCES.c.lease_owner == owner)
    if ids is not None:
        query = query.where(SOURCES.c.id.in_(list(ids)))
    result = connection.execute(query.values(lease_owner=None, leased_until=None))
    return int(result.rowcount or 0)


def live_leases(connection: Connection, now: datetime) -> dict[str, int]:
    """owner → sources it holds now (diagnostics and tests)."""
    rows = connection.execute(
        sa.select(SOURCES.c.lease_owner, sa.func.count())
        .where(SOURCES.c.lease_owner.is_not(None), SOURCES.c.leased_until > _when("now"))
        .group_by(SOURCES.c.lease_owner),
        {"now": now},
    )
    return {str(owner): int(count) for owner, count in rows}


def hold_host(connection: Connection, host: str, until: datetime, reason: str) -> None:
    """No worker claims ``host``'s sources before ``until`` (a later hold wins)."""
    insert = _insert(connection)(HOLDS).values(
        host=host[:255], not_before=until, reason=reason[:500]
    )
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=[HOLDS.c.host],
            set_={
                "not_before": sa.case(
                    (HOLDS.c.not_before > insert.excluded.not_before, HOLDS.c.not_before),
                    else_=insert.excluded.not_before,
                ),
                "reason": insert.excluded.reason,
            },
        )
    )


def expire_holds(connection: Connection, now: datetime) -> int:
    result = connection.execute(
        HOLDS.delete().where(HOLDS.c.not_before <= _when("now")), {"now": now}
    )
    return int(result.rowcount or 0)


def lock_story_keys(
    connection: Connection, urls: Iterable[str | None], hashes: Iterable[str]
) -> None:
    """Serialize, until commit, with every other transaction storing an entry with one of these
    URLs or content hashes (PostgreSQL; SQLite has one writer at a time anyway)."""
    if connection.dialect.name != "postgresql":
        return
    keys = story_keys(urls, hashes)
    if len(keys) > MAX_STORY_LOCKS:
        keys = {key % MAX_STORY_LOCKS for key in keys}
    if not keys:
        return
    # Sorted, so two transactions wanting overlapping keys never wait on each other in a cycle
    # (volatile functions in the select list run after the ORDER BY).
    connection.execute(
        sa.text(
            "SELECT pg_advisory_xact_lock(:space, k) "
            "FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k"
        ),
        {"space": STORY_LOCK_SPACE, "keys": sorted(keys)},
    )


def story_keys(urls: Iterable[str | None], hashes: Iterable[str]) -> set[int]:
    """The advisory lock keys ``lock_story_keys`` takes for these URLs and content hashes,
    before folding."""
    values = {f"u:{u}" for u in urls if u} | {f"h:{h}" for h in hashes if h}
    return {_int32(value) for value in values}


def _int32(value: str) -> int:
    return int.from_bytes(
        hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()[:4], "big", signed=True
    )


def claim_output_change(
    connection: Connection, category_id: str, digest: str, now: datetime
) -> bool:
    """Record that ``category_id``'s outputs now have ``digest``; True for the first worker to
    record this change (it announces it), False when another already did."""
    # RETURNING, not rowcount: a skipped INSERT … ON CONFLICT does not report 0 everywhere.
    changed = connection.execute(
        MARKS.update()
        .where(MARKS.c.category_id == category_id, MARKS.c.digest != digest)
        .values(digest=digest, changed_at=_when("now"))
        .returning(MARKS.c.category_id),
        {"now": now},
    ).first()
    if changed is not None:
        return True
    inserted = connection.execute(
        _insert(connection)(MARKS)
        .values(category_id=category_id, digest=digest, changed_at=now)
        .on_conflict_do_nothing(index_elements=[MARKS.c.category_id])
        .returning(MARKS.c.category_id)
    ).first()
    return inserted is not None


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
