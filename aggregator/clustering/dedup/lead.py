"""What text the model reads for an entry: its title and a lead that skips page boilerplate.

Feed bodies and extracted pages often open with consent notices, subscription prompts,
share-button rows, bylines, date lines and captions; those words name no event and make
unrelated entries of one site look alike. The text is cut into segments and each is judged by
its shape (a run of interface words, a short digit-heavy line, a short "by" line, site talk
addressed to the reader) before the model's characters are taken from what is left.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Title plus this much of the cleaned text: what the model embeds (see embed.LEAD_CHARS).
LEAD_CHARS = 300
# An entry whose title is missing or this short gets a second chunk of its body as well.
SHORT_TITLE_CHARS = 30
SECOND_CHUNK_CHARS = 300
# Only this much of a body is examined: a lead never needs more, and a hostile body of
# megabytes must not cost more than a normal one.
SCAN_CHARS = 6000

_TAG = re.compile(r"<[^<>]{0,400}>")
_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
# Sentence ends in the scripts of the dev data (Latin, Cyrillic, Arabic, Devanagari, CJK),
# and the separators of navigation runs.
_SPLIT = re.compile(r"(?<=[.!?;。！？؟।])\s+|(?<=[。！？])|\s*[\n|•]+\s*|\s+[/–—-]\s+(?=\S)")
_CJK_END = ("。", "！", "？")
_WORD = re.compile(r"\w+(?:['’-]\w+)*", re.UNICODE)
_DIGITS = re.compile(r"\d")
# A clock time or a numeric date; or a year beside another number ("Dec 31, 2019").
_DATE = re.compile(
    r"\b\d{1,2}[:h]\d\d\b|\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b"
    r"|\b\d{1,2}\b\D{1,20}\b(?:1[89]|20)\d\d\b|\b(?:1[89]|20)\d\d\b\D{1,20}\b\d{1,2}\b"
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words of page furniture: buttons, menus, ad labels, share targets. Alone they decide
# nothing; a segment made mostly of them is furniture.
_INTERFACE = _wordset(
    """
    share shares teilen partager compartir condividi udostępnij поделиться paylaş
    tweet tweets email e-mail mail print comment comments comentarios kommentare
    commentaires commenti komentarze facebook twitter whatsapp telegram pinterest linkedin
    tumblr reddit instagram youtube messenger vk ok flipboard pocket copy link links
    menu home inicio startseite accueil navigation search suche buscar rechercher cerca
    login logout register anmelden registrieren abmelden close schließen cerrar fermer chiudi
    advertisement advertising ad ads anzeige werbung publicidad publicité pubblicità reklama
    реклама publicidade sponsored gesponsert patrocinado
    video videos foto fotos photo photos image images bild bilder caption galería gallery
    galerie galleria zdjęcia audio play listen escuchar
    more mehr más plus più więcej ещё next previous weiter zurück back top
    a a+ a- font size text
    """
)
_AD_LABELS = _wordset(
    "anzeige werbung advertisement publicidad publicité pubblicità reklama реклама sponsored"
    " gesponsert patrocinado"
)
# What may be cut from the front of a segment: ad labels and share targets ("Back home they
# …", "More than …" start reports).
_PREFIX_FURNITURE = _AD_LABELS | _wordset(
    "share teilen partager compartir condividi udostępnij tweet email e-mail print facebook"
    " twitter whatsapp telegram pinterest linkedin tumblr reddit messenger flipboard"
)
# Reader-facing site talk: consent, accounts, subscriptions, scripts, blockers, follow us.
# One cue alone does not condemn a sentence (news reports on Facebook or on subscriptions);
# a cue in a sentence that also addresses the reader, or in a short one, does.
_SITE_CUE = re.compile(
    r"cookie|javascript|browser|navegador|newsletter|subscri|suscri|abonn|abbonat|iscriv|"
    r"e-?mail alerts?|sign[ -]?(?:up|in)\b|log[ -]?in\b|regístr|registrier|anmeld|inscriv|privacy|"
    r"datenschutz|privacidad|confidentialité|ad[ -]?block|werbeblocker|bloqueador|"
    r"accept (?:all|cookies)|aceptar|akzeptier|einwillig|zustimm|"
    r"terms of (?:use|service)|user agreement|nutzungsbedingungen|"
    r"read more|read also|leer más|lea también|lesen sie auch|weiterlesen|lire (?:la suite|aussi)|"
    r"leggi anche|czytaj (?:więcej|też|także)|читайте также|подписывайтесь|devamı|"
    r"follow us|folgen sie uns|síguenos|suivez-nous|seguici|obserwuj|"
    r"\bour (?:services|site|website|newsletter)|unser(?:e|em|en)? (?:angebot|webseite)|"
    r"website|webseite|web site|sitio web|site (?:web|internet)|sito web|serwis|"
    r"all rights reserved|alle rechte vorbehalten|todos los derechos|tous droits|©|copyright|"
    r"订阅|隐私|注册|登录|点击|阅读更多|下载|"
    r"اشترك|سياسة الخصوصية|ملفات تعريف الارتباط|"
    r"pliki cookie|polityk[aię] prywatności",
    re.IGNORECASE,
)
_READER = re.compile(
    r"(?i:\b(?:you|your|you're|usted|ustedes|tu|tus|vous|votre|vos|voi|vostro|ty|twój|twoje|"
    r"ci|państwa|вы|ваш|sen|siz|please|bitte|por favor|veuillez|per favore|prosimy|"
    r"пожалуйста|lütfen|dear (?:reader|user)|liebe[r]? (?:leser|nutzer)|"
    r"querido (?:lector|usuario)|cher lecteur|drogi użytkowniku|szanown\w+ czytelni\w+|"
    # The site speaking of itself: "our website", "unserer Website", "notre site".
    r"our|unser\w*|notre|nos|nuestr\w+|nostr\w+|nasz\w*|we use|utilizamos|usamos|"
    r"nous utilisons|utilizziamo|używamy|wir (?:verwenden|nutzen|setzen))\b)"
    # German addresses the reader only in capitals: "ihre Website" is someone else's.
    r"|\b(?:Sie|Ihre?[mnrs]?|Ihnen)\b|您|你|请"
)
# "By Jane Doe", "Por Guillermo …", "Von …", "作者：…": a short line naming the author.
_BYLINE = re.compile(
    r"^(?i:by|por|von|par|di|door|av|af|przez|autor(?:a|in)?|author|автор|yazan|bởi)"
    r":?\s+(?:[A-ZÀ-ÞĀ-ŽА-Я][\w.'’-]*\s*){1,4}(?:[,&/]|$)|^(?:作者|记者|文)[:：]|^بقلم"
)
_CAPTION = re.compile(
    r"^\(?(?:photo|foto|image|imagen|bild|picture|credit|crédit|file photo|archive|archivo|"
    r"quelle|source|fuente)s?\b[\s:(]|\((?:photo|foto|image|imagen|bild)\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Lead:
    """The text the model embeds for one entry, and a second chunk when the first is thin."""

    text: str
    second: str
    skipped: int

    @property
    def has_second(self) -> bool:
        return bool(self.second)


def plain(text: str) -> str:
    """Markup remnants out: tags, entities, non-breaking and zero-width spaces."""
    text = html.unescape(_TAG.sub(" ", text[: SCAN_CHARS * 2]))
    return text.replace("\u00a0", " ").replace("\u200b", "")


def segments(text: str) -> list[str]:
    """Sentences and lines, whitespace collapsed, empty ones dropped."""
    return [segment for segment, _ in _pieces(text)]


def _pieces(text: str) -> Iterator[tuple[str, str]]:
    """Each segment with the separator that followed it in the text ("" between CJK
    sentences, " - " or " | " between navigation parts, " " otherwise), so a text that
    loses nothing reads as it was written; one at a time, so a reader that stops early
    splits no further."""
    held: tuple[str, str] | None = None
    start = 0
    for match in _matches(text):
        end = match.start() if match else len(text)
        segment = " ".join(text[start:end].split())
        raw = match.group() if match else ""
        core = " ".join(raw.split())
        separator = f" {core} " if core else (" " if raw else "")
        if segment:
            if held is not None:
                yield held
            held = (segment, separator)
        elif held is not None and core:
            held = (held[0], separator)
        if match:
            start = match.end()
    if held is not None:
        yield held


def _matches(text: str) -> Iterator[re.Match[str] | None]:
    yield from _SPLIT.finditer(text)
    yield None


def _words(segment: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(segment)]


def _strip_furniture_prefix(segment: str) -> str:
    """A segment glued to its furniture ("Anzeige Karlsruhe (OTS) - …", "WhatsApp Facebook
    Twitter Desde el …"): a leading run of interface words goes when it is an ad label or at
    least two words long (one word, "Home Secretary …", may be the report's own)."""
    words = segment.split()
    start = 0
    while start < len(words) - 1 and words[start].lower().strip(":!.,") in _PREFIX_FURNITURE:
        start += 1
    if start >= 2 or (start == 1 and words[0].lower().strip(":!.,") in _AD_LABELS):
        return " ".join(words[start:])
    return segment


def _site_talk(segment: str, words: list[str], after_site_talk: bool) -> bool:
    cues = len(_SITE_CUE.findall(segment))
    reader = _READER.search(segment) is not None
    # A one-word lower-case remnant ("gen.") inside a consent run is part of it.
    fragment = len(words) == 1 and segment[:1].islower()
    if after_site_talk and (cues or reader or fragment):
        # Consent notices and paywalls come in runs of sentences; the later ones often drop
        # the cue words ("This includes … from third parties", "Do tego są nam potrzebne …").
        return True
    return bool(cues) and (reader or len(words) <= 6 or cues >= 2)


def is_boilerplate(segment: str, after_site_talk: bool = False) -> bool:
    """Whether a segment is page furniture rather than the report, by its shape."""
    words = _words(segment)
    if not words:
        return True
    if not _URL.sub("", segment).strip(" .,:;-"):
        return True
    furniture = sum(1 for w in words if w in _INTERFACE)
    if furniture * 2 >= len(words) and len(words) <= 12:
        return True
    short = len(words) <= 8 and len(segment) <= 80
    if short and _BYLINE.search(segment):
        return True
    if _CAPTION.search(segment) and len(words) <= 25:
        return True
    digits = len(_DIGITS.findall(segment))
    # A CJK character carries about a word's meaning: weigh it as three Latin letters.
    letters = sum(3 if c >= "\u2e80" else 1 for c in segment if c.isalpha())
    if short and _DATE.search(segment) and digits * 3 >= letters:
        return True
    return _site_talk(segment, words, after_site_talk)


def _salvage(segment: str) -> str:
    """The report's words before site talk glued to them (an untitled item's headline run
    into "Bitte registrieren!"): kept when they are four words or more."""
    starts = [m.start() for m in (_SITE_CUE.search(segment), _READER.search(segment)) if m]
    if not starts:
        return ""
    head = segment[: min(starts)].rstrip(" .,:;-–—")
    # The cue may sit inside the word that opens the site talk ("Regístrese", "Subscribe").
    head = head.rsplit(" ", 1)[0] if head and not segment[min(starts) - 1].isspace() else head
    # Site talk whose cue is a lower-case word opened a few words before it ("… ein Um die
    # Funktion unserer Website"): a capitalised word after a lower-case one among the last
    # three starts it.
    words = head.split() if segment[min(starts)].islower() else []
    for index in range(max(1, len(words) - 3), len(words)):
        if words[index][:1].isupper() and words[index - 1][:1].islower() and index >= 4:
            head = " ".join(words[:index])
            break
    return head if len(_words(head)) >= 4 and not is_boilerplate(head) else ""


def clean_segments(text: str) -> tuple[list[str], int]:
    """The report's segments in order, repeats dropped; and how many were skipped."""
    kept, skipped = _clean(text)
    return [segment for segment, _ in kept], skipped


def _clean(
    text: str, enough: Callable[[list[tuple[str, str]]], bool] | None = None
) -> tuple[list[tuple[str, str]], int]:
    """The kept segments with their separators, and how many were skipped; with ``enough``,
    the segments after the first kept one for which ``enough(kept)`` holds are not read (the
    kept ones stay as they are, but for the last one's separator)."""
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    skipped = 0
    after_site_talk = False
    for raw, separator in _pieces(plain(text)[:SCAN_CHARS]):
        if enough is not None and kept and enough(kept):
            break
        furniture = is_boilerplate(raw, after_site_talk)
        segment = raw if furniture else _strip_furniture_prefix(raw)
        key = segment.casefold().rstrip(".!?。")
        # An unchanged segment was judged just above.
        dropped = key in seen or (
            furniture if segment == raw else is_boilerplate(segment, after_site_talk)
        )
        if dropped:
            skipped += 1
            if key not in seen:
                after_site_talk = _SITE_CUE.search(segment) is not None or after_site_talk
                # Only an untitled item's first segment carries a headline glued to site talk.
                head = "" if kept or skipped > 1 else _salvage(segment)
                if head and head.casefold().rstrip(".!?。") not in seen:
                    seen.add(head.casefold().rstrip(".!?。"))
                    kept.append((head, " "))
                    continue
            if kept:
                # What joined the last kept segment to the dropped one joins nothing now.
                kept[-1] = (kept[-1][0], "" if kept[-1][0].endswith(_CJK_END) else " ")
            continue
        after_site_talk = False
        seen.add(key)
        kept.append((segment, separator))
    return kept, skipped


def _join(parts: list[tuple[str, str]]) -> str:
    """Segments back into one text, each with the separator it had."""
    return "".join(f"{segment}{separator}" for segment, separator in parts).strip()


def lead(
    title: str,
    body: str,
    full_text: str | None = None,
    chars: int = LEAD_CHARS,
    second_chars: int = SECOND_CHUNK_CHARS,
) -> Lead:
    """Title and the start of the report, cut to ``chars``; for an untitled or short-titled
    entry also the next ``second_chars`` of it. An extracted article page (``full_text``)
    is read instead of the feed's body when it holds more."""
    return _lead(title, body, full_text, chars, second_chars, whole=True)


def lead_text(title: str, body: str, full_text: str | None = None, chars: int = LEAD_CHARS) -> str:
    """``lead(title, body, full_text, chars).text``, reading the body only as far as that text
    needs: judging every segment of a long body was most of the lead's cost."""
    return _lead(title, body, full_text, chars, 0, whole=False).text


def _lead(
    title: str, body: str, full_text: str | None, chars: int, second_chars: int, *, whole: bool
) -> Lead:
    if chars <= 0 or second_chars < 0:
        raise ValueError(f"lead lengths must be positive, got {chars} and {second_chars}")
    title = " ".join(plain(title).split())
    source = full_text if full_text and len(full_text) > len(body) else body
    folded = title.casefold()
    wanted = chars + (second_chars if len(title) < SHORT_TITLE_CHARS else 0)

    def enough(kept: list[tuple[str, str]]) -> bool:
        # Later segments only follow these, and a later dropped one changes only the last
        # one's separator: once the rest fills the wanted characters, nothing later shows.
        settled = [*kept[:-1], (kept[-1][0], "")]
        report = _join([p for p in _without_title(settled, title, folded) if p[0]])
        return bool(report) and len(f"{title}. " if title else "") + len(report) >= wanted

    kept, skipped = _clean(source, None if whole else enough)
    kept = _without_title(kept, title, folded)
    report = _join([p for p in kept if p[0]])
    if not report and not title:
        # Nothing but furniture: the raw start is all there is, and copies of one notice
        # still match each other by it.
        report = " ".join(plain(source).split())
    text = f"{title}. {report}" if title and report else title or report
    first = text[:chars]
    second = ""
    if len(title) < SHORT_TITLE_CHARS and second_chars:
        second = text[chars : chars + second_chars].strip()
    return Lead(text=first, second=second, skipped=skipped)


def _without_title(kept: list[tuple[str, str]], title: str, folded: str) -> list[tuple[str, str]]:
    """The kept segments without the title the body often repeats, whole or as its first
    sentence."""
    if not title:
        return kept
    kept = [p for p in kept if p[0].casefold() not in (folded, folded.rstrip("."))]
    if kept and kept[0][0].casefold().startswith(folded):
        kept[0] = (kept[0][0][len(title) :].lstrip(" .:-–—"), kept[0][1])
    return kept
