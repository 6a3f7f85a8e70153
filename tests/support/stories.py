"""News items written for the clustering tests: one event told in several languages, and
different events of the same day. Fictional; worded independently per language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.support.shared import require_shared

# Relative to the real clock, so normalize never takes them for future dates; the stage is
# given ``STAGE_NOW`` as its clock.
DAY0 = (datetime.now(UTC) - timedelta(days=8)).replace(hour=9, minute=0, second=0, microsecond=0)
STAGE_NOW = DAY0 + timedelta(days=5)


def rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def item(key: str, title: str, body: str, *, day: float = 4, site: str = "news") -> dict[str, str]:
    return {
        "guid": key,
        "title": title,
        "body": body,
        "link": f"https://{site}.example/{key}",
        "date": rfc822(DAY0 + timedelta(days=day)),
    }


AI_ACT_EN = item(
    "ai-act-en",
    "European Parliament approves landmark law regulating artificial intelligence",
    "Lawmakers in Strasbourg voted 523 to 46 on Wednesday to adopt the Artificial "
    "Intelligence Act, the first comprehensive rules for AI. Thierry Breton, the EU "
    "commissioner, welcomed the vote. The rules ban social scoring and apply from 2026.",
    site="wire",
)
AI_ACT_FR = item(
    "ai-act-fr",
    "Le Parlement européen adopte une loi historique pour encadrer l'intelligence artificielle",
    "Les députés réunis à Strasbourg ont adopté mercredi par 523 voix contre 46 le règlement "
    "sur l'intelligence artificielle, premier cadre complet au monde. Le commissaire Thierry "
    "Breton a salué le vote. Le texte interdit la notation sociale et s'appliquera dès 2026.",
    site="journal",
)
AI_ACT_DE = item(
    "ai-act-de",
    "EU-Parlament beschließt als erstes weltweit umfassende Regeln für künstliche Intelligenz",
    "Mit 523 zu 46 Stimmen hat das Europäische Parlament in Straßburg am Mittwoch das "
    "KI-Gesetz verabschiedet. EU-Kommissar Thierry Breton sprach von einem historischen Tag. "
    "Das Gesetz verbietet unter anderem Sozialkredit-Systeme und gilt ab 2026.",
    site="zeitung",
)

FERRY_EN = item(
    "ferry-en",
    "Ferry runs aground off Greek island, all 300 passengers rescued",
    "A passenger ferry ran aground near the island of Paros early on Wednesday. The coast "
    "guard said all 300 passengers and 40 crew were taken off safely by smaller boats and "
    "that the cause of the accident was being investigated.",
)
FERRY_FR = item(
    "ferry-fr",
    "Grèce : un ferry s'échoue près de Paros, les 300 passagers évacués sains et saufs",
    "Un navire transportant 300 passagers et 40 membres d'équipage s'est échoué mercredi à "
    "l'aube au large de l'île de Paros. Selon les garde-côtes grecs, tous ont été évacués par "
    "des embarcations plus petites ; une enquête est ouverte pour établir les causes.",
    site="journal",
)
RAIL_EN = item(
    "rail-en",
    "Rail workers announce a 48-hour national strike over pay",
    "Unions representing train drivers said on Wednesday they will walk out for 48 hours "
    "next week after talks with the rail operator over wages broke down. Commuters were "
    "told to expect severe disruption on most lines.",
)

KOREA_EN = item(
    "korea-en",
    "South Korea announces trillion-dollar plan to become an AI powerhouse",
    "South Korea's government unveiled an artificial intelligence investment plan worth "
    "more than 1,000 billion euros, about $1.08 trillion, to build research centres, train "
    "skilled workers and support its semiconductor industry in the global AI race.",
    site="wire",
)


def seed_item() -> dict[str, str]:
    """The shared seed article as a French feed carries it: its French heading as the title,
    the English translation as the body."""
    path = require_shared("seed/korea-ai-plan-article.txt")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    heading = next(line for line in lines if line.startswith("Implications pour"))
    body = "\n".join(line for line in lines if line and line != heading)
    return item("seed-korea", heading, body, site="journal")
