"""Data for the clustering benchmark (``cluster_bench.py``): a fixed batch of new entries from the
dev files, and a background of already-clustered entries written through the store's own API.

The batch is real: 300 WMT articles (whole stories, six languages, translations of each other)
and 200 SemEval articles (pairs, ten languages), dated within the last hours before ``NOW`` and
stored through ``normalize_feed`` and ``Store.save_poll`` as a poll would store them.

The background is synthetic, because embedding 200,000 real texts would take hours here. It is
derived from a pool of a few hundred other real dev texts, embedded once with the real model:

- a story's direction is a random mixture of three pool texts' residuals (embedding minus its
  language's mean), so background vectors lie in the subspace real news occupies, not in random
  directions; a member's vector is its language's mean plus that direction with noise (more for
  a member in another language), so same-story members score like real coverage and unrelated
  stories like unrelated articles;
- a member's text is made of real sentences of its language from the pool: syndicated copies
  repeat the story's sentences (MinHash near-duplicates), rewrites draw other ones; every member
  of a story carries the story's number (cross-language evidence);
- MinHash and evidence are computed from that text by the project's own code; the language is
  the member's (not detected, which would add ~1 ms an entry to the build and nothing to the
  measurement).

Story sizes, languages, sources and times follow ``BackgroundPlan``: one fixed rate of entries
per day, so a larger store is the same deployment, older; the most recent stories are the same
in every store, so every size offers the batch the same window.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.clustering.dedup import evidence
from aggregator.clustering.dedup.embed import DIM, LanguageCentering
from aggregator.clustering.dedup.evaluate import load
from aggregator.clustering.dedup.features import EntryFeatures, EntryInput
from aggregator.clustering.dedup.language import LanguageGuess
from aggregator.clustering.dedup.shingles import MinHasher, Signature
from aggregator.clustering.stage import MODEL_NAME
from aggregator.polling.normalize import normalize_feed
from aggregator.store import Store
from aggregator.types import CategoryMatch, FetchResult, NormalizedEntry, ParsedEntry, ParsedFeed

# The stores' present: the background ends here and the batch arrives just before it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WMT_FILE = "wmt14-xling-clusters-dev.jsonl"
SEMEVAL_FILE = "semeval22-pairs-dev.jsonl"
# The batch: whole WMT stories up to this many articles, SemEval pairs up to this many.
BATCH_WMT = 300
BATCH_SEMEVAL = 200
# New entries are published within this many hours before NOW (WMT translations of one story
# within one hour of each other).
BATCH_HOURS = 6.0
BATCH_SOURCES_PER_LANGUAGE = 3
# The pool the background is derived from: real texts not in the batch, per language.
POOL_PER_LANGUAGE = 40
MIN_POOL_CHARS = 400
# Languages of background stories (a European-heavy deployment with some Asian and Arabic news).
LANGUAGE_MIX = {
    "en": 0.40,
    "de": 0.12,
    "fr": 0.10,
    "es": 0.08,
    "ru": 0.06,
    "it": 0.05,
    "pl": 0.04,
    "tr": 0.04,
    "zh": 0.04,
    "ar": 0.03,
    "cs": 0.02,
    "hi": 0.02,
}
BACKGROUND_SOURCES = 300
# Story sizes: this share are single entries; the others have 2 + a geometric number more, up
# to MAX_STORY (mean ≈ 2.3 entries per story).
SINGLETON_SHARE = 0.55
TAIL_P = 0.35
MAX_STORY = 40
# A member after the first is in another language with this probability, and (in the story's
# language) a syndicated copy of the story's text with COPY_SHARE, else a rewrite.
CROSS_LANGUAGE_SHARE = 0.25
COPY_SHARE = 0.2
# Members follow the story's first entry by an exponential delay (mean, cap), in hours.
MEMBER_DELAY_HOURS = 8.0
MAX_MEMBER_DELAY_HOURS = 60.0
# A story's direction mixes this many pool residuals; members add noise of this relative size
# (expected pairwise cosine of members ≈ 1 / (1 + noise²): 0.61 same language, 0.5 across).
COMPONENTS = 3
NOISE_SAME = 0.8
NOISE_CROSS = 1.0
SENTENCES = (5, 9)
COPY_KEEPS_SENTENCE = 0.85
REWRITE_KEEPS_TITLE = 0.3
MAX_TITLE_CHARS = 110
# Entries made and written together while building (eight days' worth at the default rate).
CHUNK_ENTRIES = 10_000
CATEGORY = CategoryConfig(id="world", title="World news")
MATCHES = (CategoryMatch("world", 1.0, "all entries"),)
# Stored as every background entry's decision evidence: the size of a real one, and honest.
BACKGROUND_EVIDENCE: dict[str, Any] = {
    "reason": "benchmark_background",
    "decision": "join",
    "parts": {
        "score": 0.61,
        "cosine": 0.52,
        "jaccard": 0.03,
        "names_overlap": 0.0,
        "shared_names": 1.0,
        "numbers_overlap": 1.0,
        "shared_links": 0.0,
        "cross_language": 0.0,
        "days_apart": 0.12,
    },
    "language": {"lang": "en", "title": "en", "body": "en", "confidence": 0.97},
}
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*|\n+")

Vectors = npt.NDArray[np.float32]


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()


# -- the dev files: batch and pool ---------------------------------------------------------


@dataclass(frozen=True)
class DevSplit:
    """The batch's articles and the pool's, disjoint; ``wmt_story`` gives the story of every
    WMT article (of the batch and of the pool)."""

    batch: list[EntryInput]
    wmt_story: dict[str, str]
    pool: list[EntryInput]


def split_dev(data_dir: Path) -> DevSplit:
    """Whole WMT stories and SemEval pairs for the batch (by a hash, so always the same); the
    rest, per language, for the pool."""
    wmt = load(data_dir / WMT_FILE)
    semeval = load(data_dir / SEMEVAL_FILE)
    stories: dict[str, list[str]] = defaultdict(list)
    for key in sorted(wmt.articles):
        stories[wmt.clusters[key]].append(key)
    batch: list[EntryInput] = []
    for story in sorted(stories, key=_digest):
        if len(batch) >= BATCH_WMT:
            break
        batch.extend(wmt.articles[key] for key in stories[story])
    taken = {a.entry_id for a in batch}
    semeval_batch: list[str] = []
    for first, second, _score in sorted(semeval.pairs, key=lambda p: _digest(p[0], p[1])):
        if len(semeval_batch) >= BATCH_SEMEVAL:
            break
        for key in (first, second):
            if key not in taken:
                taken.add(key)
                semeval_batch.append(key)
    batch += [semeval.articles[key] for key in semeval_batch]
    candidates = [
        a
        for a in (*wmt.articles.values(), *semeval.articles.values())
        if a.entry_id not in taken and len(a.body) >= MIN_POOL_CHARS
    ]
    per_language: dict[str, list[EntryInput]] = defaultdict(list)
    for article in sorted(candidates, key=lambda a: _digest(a.entry_id)):
        lang = article.declared_lang or "und"
        if len(per_language[lang]) < POOL_PER_LANGUAGE:
            per_language[lang].append(article)
    pool = [a for lang in sorted(per_language) for a in per_language[lang]]
    return DevSplit(batch=batch, wmt_story=dict(wmt.clusters), pool=pool)


@dataclass(frozen=True)
class BatchPoll:
    """One new entry as one poll of its source (the batch is stored entry by entry)."""

    source_id: str
    entry: NormalizedEntry


def batch_sources(split: DevSplit) -> list[SourceConfig]:
    langs = sorted({a.declared_lang or "und" for a in split.batch})
    return [
        SourceConfig(
            id=f"live-{lang}-{k}",
            url=f"https://live-{lang}-{k}.example/feed",
            categories=(CATEGORY.id,),
            language=lang,
        )
        for lang in langs
        for k in range(BATCH_SOURCES_PER_LANGUAGE)
    ]


def batch_polls(split: DevSplit, now: datetime = NOW) -> list[BatchPoll]:
    """The batch normalized as the refresher would store it, in publication order."""
    rng = np.random.default_rng(11)
    story_time: dict[str, datetime] = {}
    polls: list[tuple[datetime, str, BatchPoll]] = []
    for article in split.batch:
        story = split.wmt_story.get(article.entry_id)
        if story is not None:
            if story not in story_time:
                story_time[story] = now - timedelta(hours=float(rng.uniform(1.0, BATCH_HOURS)))
            published = story_time[story] + timedelta(hours=float(rng.uniform(0.0, 1.0)))
        else:
            published = now - timedelta(hours=float(rng.uniform(5 / 60, BATCH_HOURS)))
        published = min(published, now - timedelta(minutes=1))
        lang = article.declared_lang or "und"
        k = int(_digest(article.entry_id), 16) % BATCH_SOURCES_PER_LANGUAGE
        source_id = f"live-{lang}-{k}"
        feed_url = f"https://live-{lang}-{k}.example/feed"
        paragraphs = [p for p in article.body.split("\n") if p.strip()]
        item = ParsedEntry(
            guid=article.entry_id,
            link=f"https://live-{lang}-{k}.example/a/{article.entry_id}",
            title=article.title or None,
            content="".join(f"<p>{html.escape(p)}</p>" for p in paragraphs) or None,
            published=published,
            language=lang,
        )
        for entry in normalize_feed(
            ParsedFeed(entries=(item,)), feed_url=feed_url, source_language=lang, now=now
        ):
            polls.append((published, article.entry_id, BatchPoll(source_id, entry)))
    polls.sort(key=lambda p: (p[0], p[1]))
    return [poll for _, _, poll in polls]


def store_polls(store: Store, polls: Sequence[BatchPoll], now: datetime = NOW) -> None:
    for poll in polls:
        store.save_poll(
            poll.source_id,
            _fetch(poll.source_id),
            body_hash=None,
            feed_title=None,
            feed_link=None,
            entries=[(poll.entry, MATCHES)],
            next_check_at=now,
            now=now,
        )


def _fetch(source_id: str) -> FetchResult:
    return FetchResult(url=f"https://{source_id}.example/feed", status=200, content=b"", headers={})


# -- the pool ------------------------------------------------------------------------------


@dataclass
class Pool:
    """Real embedded texts the background is derived from, and what is derived once."""

    langs: list[str]
    vectors: Vectors
    means: dict[str, Vectors] = field(default_factory=dict)
    residuals: Vectors = field(default_factory=lambda: np.zeros((0, DIM), dtype=np.float32))
    scale: float = 0.0
    sentences: dict[str, list[str]] = field(default_factory=dict)
    titles: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, articles: Sequence[EntryInput], vectors: Vectors) -> Pool:
        langs = [a.declared_lang or "und" for a in articles]
        pool = cls(langs=langs, vectors=vectors)
        for lang in sorted(set(langs)):
            rows = vectors[[i for i, x in enumerate(langs) if x == lang]]
            pool.means[lang] = rows.mean(axis=0).astype(np.float32)
        raw = vectors - np.vstack([pool.means[lang] for lang in langs])
        norms = np.linalg.norm(raw, axis=1)
        pool.scale = float(np.median(norms))
        pool.residuals = (raw / np.maximum(norms[:, None], 1e-9)).astype(np.float32)
        for article, lang in zip(articles, langs, strict=True):
            parts = [s.strip() for s in _SENTENCE_END.split(article.body)]
            pool.sentences.setdefault(lang, []).extend(p for p in parts if 20 <= len(p) <= 300)
            title = article.title or (parts[0] if parts else "")
            if title:
                pool.titles.setdefault(lang, []).append(_cut(title, MAX_TITLE_CHARS))
        return pool

    def languages(self) -> dict[str, float]:
        """LANGUAGE_MIX restricted to languages the pool has sentences for, renormalized."""
        mix = {k: v for k, v in LANGUAGE_MIX.items() if self.sentences.get(k)}
        total = sum(mix.values())
        return {k: v / total for k, v in mix.items()}


def similarity_check(pool: Pool, split: DevSplit, made: Sequence[Made]) -> dict[str, Any]:
    """Centered cosines of background pairs against those of real pool pairs (WMT
    translations for "same story"), all centered as the store's centering would: quantiles
    5, 25, 50, 75 and 95%."""
    centering = LanguageCentering()
    for item in made:
        centering.update(item.member.lang, item.vector)
    rows = np.vstack([centering.center(m.member.lang, m.vector) for m in made])
    stories = np.array([m.member.story for m in made])
    langs = [m.member.lang for m in made]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, story in enumerate(stories):
        groups[int(story)].append(i)
    same: list[float] = []
    cross: list[float] = []
    for members in groups.values():
        for a in members:
            for b in members:
                if a < b:
                    (same if langs[a] == langs[b] else cross).append(float(rows[a] @ rows[b]))
    rng = np.random.default_rng(0)
    pairs = rng.integers(len(made), size=(20_000, 2))
    unrelated = [float(rows[a] @ rows[b]) for a, b in pairs if stories[a] != stories[b]]
    real = np.vstack(
        [centering.center(lang, v) for lang, v in zip(pool.langs, pool.vectors, strict=True)]
    )
    ids = [a.entry_id for a in split.pool]
    real_same: list[float] = []
    real_other: list[float] = []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            story = split.wmt_story.get(ids[i])
            target = real_same if story and story == split.wmt_story.get(ids[j]) else real_other
            target.append(float(real[i] @ real[j]))

    def quantiles(values: list[float]) -> list[float]:
        return [round(float(x), 3) for x in np.percentile(values, [5, 25, 50, 75, 95])]

    return {
        "background same story, same language": (len(same), quantiles(same)),
        "background same story, across languages": (len(cross), quantiles(cross)),
        "background, different stories": (len(unrelated), quantiles(unrelated)),
        "real: WMT translations of one story (pool)": (len(real_same), quantiles(real_same)),
        "real: different articles (pool)": (len(real_other), quantiles(real_other)),
    }


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    return text[: space if space > limit // 2 else limit].rstrip(" ,;:")


# -- the background's plan -----------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One background entry as planned: its story (0 = the most recent story), language,
    source and time."""

    story: int
    index: int
    lang: str
    source: str
    published: datetime


@dataclass
class BackgroundPlan:
    """Stories for the largest store, most recent first; a store of N entries holds the most
    recent stories up to N entries, so smaller stores are the newest part of larger ones."""

    members: list[Member]
    story_lang: list[str]
    story_sizes: list[int]
    sources: list[SourceConfig]
    per_day: float

    @classmethod
    def make(
        cls,
        entries: int,
        per_day: float,
        languages: dict[str, float],
        seed: int,
        now: datetime = NOW,
    ) -> BackgroundPlan:
        rng = np.random.default_rng(seed)
        langs = sorted(languages)
        weights = np.array([languages[k] for k in langs])
        sources = _sources(languages)
        by_lang: dict[str, list[str]] = defaultdict(list)
        for source in sources:
            by_lang[str(source.language)].append(source.id)
        sizes: list[int] = []
        while sum(sizes) < entries:
            if rng.random() < SINGLETON_SHARE:
                sizes.append(1)
            else:
                sizes.append(min(MAX_STORY, 1 + int(rng.geometric(TAIL_P))))
        span_days = sum(sizes) / per_day
        # Story starts: a Poisson process over the span, most recent first.
        ages = np.sort(rng.uniform(0.0, span_days, size=len(sizes)))
        members: list[Member] = []
        story_lang: list[str] = []
        latest = now - timedelta(minutes=10)
        for story, (size, age) in enumerate(zip(sizes, ages, strict=True)):
            primary = langs[int(rng.choice(len(langs), p=weights))]
            story_lang.append(primary)
            start = now - timedelta(days=float(age))
            for index in range(size):
                lang = primary
                delay = 0.0
                if index:
                    delay = min(float(rng.exponential(MEMBER_DELAY_HOURS)), MAX_MEMBER_DELAY_HOURS)
                    if rng.random() < CROSS_LANGUAGE_SHARE:
                        lang = langs[int(rng.choice(len(langs), p=weights))]
                choices = by_lang[lang]
                source_id = choices[int(rng.integers(len(choices)))]
                published = min(start + timedelta(hours=delay), latest)
                members.append(Member(story, index, lang, source_id, published))
        members.sort(key=lambda m: (m.published, m.story, m.index))
        return cls(
            members=members,
            story_lang=story_lang,
            story_sizes=sizes,
            sources=sources,
            per_day=per_day,
        )

    def stories_for(self, entries: int) -> int:
        """How many of the most recent stories a store of ``entries`` entries holds."""
        total = 0
        for count, size in enumerate(self.story_sizes):
            if total >= entries:
                return count
            total += size
        return len(self.story_sizes)


def _sources(languages: dict[str, float]) -> list[SourceConfig]:
    counts = {k: max(2, round(v * BACKGROUND_SOURCES)) for k, v in languages.items()}
    return [
        SourceConfig(
            id=f"bg-{lang}-{k:03d}",
            url=f"https://bg-{lang}-{k:03d}.example/feed",
            categories=(CATEGORY.id,),
            language=lang,
        )
        for lang in sorted(counts)
        for k in range(counts[lang])
    ]


# -- the background's content --------------------------------------------------------------


@dataclass
class _Story:
    direction: Vectors
    number: int
    texts: dict[str, tuple[str, list[str]]]
    remaining: int


@dataclass(frozen=True)
class Made:
    """A planned member made concrete: the entry to store and its features (id-less)."""

    member: Member
    entry: NormalizedEntry
    vector: Vectors
    minhash: Signature
    evidence: evidence.Evidence

    def features(self, entry_id: int) -> EntryFeatures:
        lang = self.member.lang
        return EntryFeatures(
            entry_id=str(entry_id),
            language=LanguageGuess(lang, lang, lang, 0.9),
            published=self.member.published,
            embedding=self.vector,
            minhash=self.minhash,
            evidence=self.evidence,
        )


class Maker:
    """Vectors, texts, MinHash and evidence of planned members, deterministic per story and
    member (so a member is the same in every store that holds it)."""

    def __init__(self, plan: BackgroundPlan, pool: Pool, seed: int) -> None:
        self.plan = plan
        self.pool = pool
        self.seed = seed
        self.minhasher = MinHasher()
        self._stories: dict[int, _Story] = {}

    def make(self, member: Member) -> Made:
        story = self._story(member.story)
        rng = np.random.default_rng([self.seed, member.story, member.index, 1])
        lang = member.lang
        primary = self.plan.story_lang[member.story]
        if lang not in story.texts:
            story.texts[lang] = self._text(rng, lang)
        base_title, base_sentences = story.texts[lang]
        if member.index == 0 or (lang == primary and rng.random() < COPY_SHARE):
            title = base_title
            sentences = [s for s in base_sentences if rng.random() < COPY_KEEPS_SENTENCE]
        else:
            title, sentences = self._text(rng, lang)
            if lang == primary and rng.random() < REWRITE_KEEPS_TITLE:
                title = base_title
        sentences.append(f"({story.number})")
        body = " ".join(sentences)
        noise = NOISE_SAME if lang == primary else NOISE_CROSS
        jitter = rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
        direction = story.direction + noise * jitter
        direction /= np.linalg.norm(direction)
        vector = self.pool.means[lang] + self.pool.scale * direction
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)
        url = (
            f"https://{member.source}.example/{member.published:%Y/%m/%d}/"
            f"s{member.story}-m{member.index}"
        )
        text = f"{title}\n{body}"
        entry = NormalizedEntry(
            identity_key=f"guid:{url}",
            guid=url,
            url=url,
            link=url,
            title=title,
            summary_html=f"<p>{html.escape(body[:300])}</p>",
            content_html="".join(f"<p>{html.escape(s)}</p>" for s in sentences),
            text=text,
            language=lang,
            published_at=member.published,
            updated_at=member.published,
            author=None,
            tags=(),
            enclosures=(),
            content_hash=_digest(text)[:32],
        )
        made = Made(
            member,
            entry,
            vector,
            self.minhasher.of_text(text),
            evidence.extract(title, body, (url,)),
        )
        story.remaining -= 1
        if story.remaining <= 0:
            del self._stories[member.story]
        return made

    def _story(self, index: int) -> _Story:
        found = self._stories.get(index)
        if found is None:
            rng = np.random.default_rng([self.seed, index, 0])
            parts = rng.choice(len(self.pool.langs), size=COMPONENTS, replace=False)
            weights = rng.dirichlet(np.ones(COMPONENTS)).astype(np.float32)
            direction = (weights[:, None] * self.pool.residuals[parts]).sum(axis=0)
            direction /= np.linalg.norm(direction)
            found = _Story(
                direction.astype(np.float32), 100_000 + index, {}, self.plan.story_sizes[index]
            )
            self._stories[index] = found
        return found

    def _text(self, rng: np.random.Generator, lang: str) -> tuple[str, list[str]]:
        bank, titles = self.pool.sentences[lang], self.pool.titles.get(lang) or [""]
        count = int(rng.integers(SENTENCES[0], SENTENCES[1] + 1))
        picks = rng.choice(len(bank), size=min(count, len(bank)), replace=False)
        return titles[int(rng.integers(len(titles)))], [bank[int(i)] for i in picks]


# -- writing a background store ------------------------------------------------------------


class BackgroundStore:
    """One store being filled with background entries, oldest first, through the store API:
    ``save_poll`` per source and chunk (the write path founds one story per entry), then, in
    one ``Store.clustering`` transaction per chunk, ``ClusterWriter.merge`` of each member's
    founded story into its story's first one (what a stage "join" does), ``keep`` (clustered,
    with evidence), ``save_features`` and ``recount``; the language centering last."""

    def __init__(self, store: Store, stories: int) -> None:
        self.store = store
        self.stories = stories
        self.story_ids: dict[int, int] = {}
        self.centering = LanguageCentering()
        self.entries = 0
        self.seconds = 0.0

    def wants(self, member: Member) -> bool:
        return member.story < self.stories

    def write(self, chunk: Sequence[Made], now: datetime) -> None:
        by_source: dict[str, list[tuple[NormalizedEntry, tuple[CategoryMatch, ...]]]] = defaultdict(
            list
        )
        for made in chunk:
            by_source[made.member.source].append((made.entry, MATCHES))
        for source_id in sorted(by_source):
            self.store.save_poll(
                source_id,
                _fetch(source_id),
                body_hash=None,
                feed_title=None,
                feed_link=None,
                entries=by_source[source_id],
                next_check_at=now,
                now=now,
            )
        pending = self.store.pending_entries(len(chunk) + 1)
        # The write path may take two synthetic entries of one source for one republished item
        # (``store.republication``): one stored entry then stands for both, nothing more.
        if not pending or len(pending) > len(chunk):
            raise RuntimeError(f"{len(pending)} pending entries after writing {len(chunk)}")
        by_url = {made.entry.url: made for made in chunk}
        with self.store.clustering() as writer:
            placements = writer.placements([row.id for row in pending])
            records = []
            for row in pending:  # in id order: the first member written founds the story
                made = by_url[str(row.url)]
                own = placements[row.id].story_id
                assert own is not None
                target = self.story_ids.setdefault(made.member.story, own)
                if target != own:
                    writer.merge(own, target, now)
                records.append(made.features(row.id).to_record())
                self.centering.update(made.member.lang, made.vector)
            writer.keep([row.id for row in pending], BACKGROUND_EVIDENCE, now)
            writer.save_features(records, MODEL_NAME, now)
            writer.recount(now)
        self.entries += len(pending)

    def finish(self, now: datetime) -> None:
        with self.store.clustering() as writer:
            writer.save_centering(self.centering.to_state(), now)
            writer.bump(now)


def catalog(split: DevSplit, plan: BackgroundPlan) -> Catalog:
    return Catalog(sources=(*plan.sources, *batch_sources(split)), categories=(CATEGORY,))


def chunks(plan: BackgroundPlan, size: int = CHUNK_ENTRIES) -> Iterator[list[Member]]:
    """The plan's members oldest first, in chunks (a chunk's entries are stored together)."""
    for start in range(0, len(plan.members), size):
        yield plan.members[start : start + size]
