"""The argument parser: every command, subcommand and option with its help text (a test walks
it), and the handler each one runs."""

from __future__ import annotations

import argparse
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import __version__
from aggregator.cli.exitcodes import EPILOG
from aggregator.types import Role

if TYPE_CHECKING:
    from aggregator.cli.context import Context


class _Handler:
    """A command's handler, ``module.function`` under ``aggregator.cli``, imported when the
    command runs: ``--help`` and the poll worker processes (which import the main module)
    load none of the commands' modules."""

    def __init__(self, path: str) -> None:
        self.module, self.name = path.rsplit(".", 1)

    def __call__(self, ctx: Context) -> int:
        return int(getattr(import_module(f"aggregator.cli.{self.module}"), self.name)(ctx))

    def __repr__(self) -> str:
        return f"aggregator.cli.{self.module}.{self.name}"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    # Only --log-level: the demo runs on its own config and database, so it does not list
    # options it would ignore.
    logging_only = argparse.ArgumentParser(add_help=False)
    logging_only.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=argparse.SUPPRESS,
        help="log verbosity (default: $AGGREGATOR_LOG_LEVEL or INFO)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[logging_only])
    # SUPPRESS: an option given before the subcommand must not be reset by the subparser.
    common.add_argument(
        "--config",
        metavar="DIR",
        type=Path,
        default=argparse.SUPPRESS,
        help="editorial folder with sources.toml and categories.toml "
        "(default: $AGGREGATOR_CONFIG or ./config)",
    )
    common.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="database URL (default: $AGGREGATOR_DATABASE_URL or sqlite:///var/aggregator.db)",
    )

    parser = argparse.ArgumentParser(
        prog="aggregator",
        parents=[common],
        description="Poll feeds, cluster stories across sources and languages, republish.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, help_text: str, handler: str, parent: argparse.ArgumentParser = common
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[parent],
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=_Handler(handler))
        return sub

    def add_group(
        name: str, help_text: str, handler: str
    ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """A command whose work is in its subcommands: ``aggregator NAME SUBCOMMAND``."""
        return add(name, help_text, handler).add_subparsers(
            dest=f"{name}_command", required=True, metavar="SUBCOMMAND"
        )

    running = add(
        "run",
        "run the scheduler and the HTTP server until stopped (SIGINT/SIGTERM)",
        "commands.cmd_run",
    )
    running.add_argument(
        "--host",
        default=argparse.SUPPRESS,
        help="address to listen on (default: $AGGREGATOR_HOST or 127.0.0.1)",
    )
    running.add_argument(
        "--port",
        type=_port,
        default=argparse.SUPPRESS,
        help="port to listen on (default: $AGGREGATOR_PORT or 8080)",
    )
    poll = add(
        "poll",
        "poll due sources once, cluster what they brought, then exit; exits 1 "
        "when some sources failed, 4 when all did",
        "commands.cmd_poll",
    )
    poll.add_argument("--all", action="store_true", help="poll every active source, due or not")
    poll.add_argument(
        "--json",
        action="store_true",
        help="print one JSON summary object instead of text (no progress bar)",
    )
    clustering = add(
        "cluster",
        "cluster the entries stored but not yet clustered into stories",
        "commands.cmd_cluster",
    )
    clustering.add_argument(
        "--redo",
        action="store_true",
        help="forget every clustering decision and make them all again "
        "(after editors' corrections); stored features are reused",
    )
    publish = add("publish", "write every output feed as static files", "commands.cmd_publish")
    publish.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder to write feeds/ and feeds.opml into",
    )
    publish.add_argument(
        "--base-url",
        metavar="URL",
        help="public URL the files will be served from, written into every "
        "link (default: AGGREGATOR_BASE_URL; one of them is required)",
    )
    publish.add_argument("--json", action="store_true", help="one JSON summary object")
    checking = add(
        "check", "validate the configuration files; exit 3 on any problem", "commands.cmd_check"
    )
    checking.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: ok, the counts, or the error and where it is",
    )
    pruning = add(
        "prune",
        "remove entries published longer ago than the retention, and the "
        "stories they leave empty, leaving tombstones so feeds do not bring them back",
        "commands.cmd_prune",
    )
    pruning.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    pruning.add_argument(
        "--days",
        type=int,
        metavar="N",
        help="retention in days (default: $AGGREGATOR_RETENTION_DAYS)",
    )
    pruning.add_argument("--json", action="store_true", help="one JSON summary object")

    # Every edit writes an audit row naming who made it.
    attributed = argparse.ArgumentParser(add_help=False, parents=[common])
    attributed.add_argument(
        "--by", help="who makes the change, for the audit log (default: $USER, else cli)"
    )
    source_commands = add_group("sources", "inspect and edit sources", "sources.cmd_sources_list")
    listing = source_commands.add_parser("list", parents=[common], help="sources with their health")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_Handler("sources.cmd_sources_list"))
    adding = source_commands.add_parser(
        "add",
        parents=[attributed],
        help="add a feed, or find the feeds a web page links to, and append it to sources.toml",
    )
    adding.add_argument("url", help="the feed's URL or a page that links to it")
    adding.add_argument(
        "--category",
        action="append",
        required=True,
        metavar="ID",
        help="category to file it under (repeat for several)",
    )
    adding.add_argument("--id", help="source id (default: made from the feed's title)")
    adding.add_argument("--title", help="title (default: the feed's own)")
    adding.add_argument("--language", help="language hint such as en or fr")
    adding.add_argument("--interval", help="how often to check, e.g. 30m or 6h")
    adding.add_argument(
        "--pick", type=int, metavar="N", help="when the page links several feeds, take the N-th"
    )
    adding.set_defaults(handler=_Handler("sources.cmd_sources_add"))
    for verb, what in (
        ("pause", "stop polling a source (enabled = false); nothing is deleted"),
        ("resume", "poll a paused source again"),
        ("remove", "remove a source from sources.toml; its stored entries stay"),
    ):
        editing = source_commands.add_parser(verb, parents=[attributed], help=what)
        editing.add_argument("id", metavar="ID", help="the source's id")
        editing.set_defaults(handler=_Handler("sources.cmd_sources_edit"))
    importing = source_commands.add_parser(
        "import-opml",
        parents=[attributed],
        help="add the feeds of OPML subscription lists to sources.toml (no network access; "
        "already configured URLs are skipped, so it can be run again)",
    )
    importing.add_argument("files", nargs="+", type=Path, metavar="FILE", help="OPML file")
    importing.add_argument(
        "--category",
        metavar="ID",
        help="existing category for the feeds (with --folders-as-categories: "
        "for the feeds outside any folder)",
    )
    importing.add_argument(
        "--folders-as-categories",
        action="store_true",
        help="file each feed under the category named like its folder, "
        "creating missing ones (without rules: they take every entry)",
    )
    importing.add_argument(
        "--dry-run", action="store_true", help="report what would be added; write nothing"
    )
    importing.set_defaults(handler=_Handler("sources.cmd_sources_import_opml"))
    exporting = source_commands.add_parser(
        "export-opml",
        parents=[common],
        help="every configured source as OPML 2.0, one folder per category",
    )
    exporting.add_argument(
        "--out", type=Path, metavar="FILE", help="write to FILE (default: standard output)"
    )
    exporting.set_defaults(handler=_Handler("sources.cmd_sources_export_opml"))

    stories = add(
        "stories", "list stories and why their entries were merged", "stories.cmd_stories"
    )
    stories.add_argument("--json", action="store_true", help="one JSON object per story per line")
    stories.set_defaults(show=None)
    story_commands = stories.add_subparsers(dest="stories_command", metavar="SUBCOMMAND")
    show = story_commands.add_parser(
        "show", parents=[common], help="explain one story: why each entry is in it"
    )
    show.add_argument("show", type=int, metavar="ID")
    show.add_argument(
        "--json",
        dest="show_json",
        action="store_true",
        help="the story, its entries' evidence and its corrections as JSON",
    )
    stories.set_defaults(show_json=False)
    correcting = argparse.ArgumentParser(add_help=False, parents=[attributed])
    correcting.add_argument("--note", help="why, kept with the correction")
    for name, help_text, arguments in (
        (
            "merge",
            "merge two stories into one (the older keeps its id)",
            (("id", "ID"), ("other", "OTHER")),
        ),
        ("split", "take an entry out of its story into a new one", (("entry_id", "ENTRY_ID"),)),
        ("pin", "show a story first in a category, whatever its rules say", (("id", "ID"),)),
        ("hide", "keep a story out of one category (--category) or of all", (("id", "ID"),)),
        (
            "undo",
            "withdraw a correction; its effect ends at once",
            (("override_id", "OVERRIDE_ID"),),
        ),
    ):
        command = story_commands.add_parser(
            name, parents=[correcting], help=help_text, description=help_text
        )
        for dest, metavar in arguments:
            command.add_argument(dest, type=int, metavar=metavar)
        if name in {"pin", "hide"}:
            command.add_argument(
                "--category",
                required=name == "pin",
                metavar="ID",
                help="the category it applies to",
            )
        command.set_defaults(handler=_Handler("stories.cmd_stories_correct"))
    search = story_commands.add_parser(
        "search",
        parents=[common],
        help="find entries by words of their title or text, in any language, with their story",
    )
    search.add_argument(
        "words",
        nargs="+",
        metavar="WORD",
        help='every word must be found; "quote a phrase" to keep it whole',
    )
    search.add_argument(
        "--limit",
        type=int,
        default=20,
        choices=range(1, 501),
        metavar="N",
        help="at most N entries, newest first (default 20)",
    )
    search.add_argument("--json", action="store_true", help="one JSON object per entry")
    search.set_defaults(handler=_Handler("stories.cmd_stories_search"))
    corrections = story_commands.add_parser(
        "corrections", parents=[common], help="editors' corrections, who made them and when"
    )
    corrections.add_argument("--all", action="store_true", help="undone ones too")
    corrections.add_argument("--json", action="store_true", help="one JSON object per line")
    corrections.set_defaults(handler=_Handler("stories.cmd_stories_corrections"))

    editor_commands = add_group(
        "editors",
        "editors' accounts: their tokens, roles and the audit log of their edits",
        "editors.cmd_editors",
    )
    adding = editor_commands.add_parser(
        "add", parents=[common], help="add an editor; prints their token once"
    )
    adding.add_argument("name", metavar="NAME")
    adding.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=Role.EDITOR.value,
        help="viewer reads, editor also edits, admin also manages editors (default: editor)",
    )
    for name, help_text in (
        ("rotate", "a new token for an editor; the old one stops working"),
        ("revoke", "revoke an editor's token and sessions, at once"),
    ):
        command = editor_commands.add_parser(name, parents=[common], help=help_text)
        command.add_argument("name", metavar="NAME")
    listing = editor_commands.add_parser(
        "list", parents=[common], help="every account (never a token)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    auditing = editor_commands.add_parser(
        "audit", parents=[common], help="the newest edits: who changed what, and when"
    )
    auditing.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    auditing.add_argument("--json", action="store_true", help="one JSON object per line")
    for command in (adding, listing, auditing):
        command.set_defaults(handler=_Handler("editors.cmd_editors"))

    rule_commands = add_group(
        "rules", "try category rules on stored entries", "commands.cmd_rules_test"
    )
    rules_test = rule_commands.add_parser(
        "test",
        parents=[common],
        help="dry run: which stored entries changed rules would have added to or removed from "
        "a category (nothing is saved)",
    )
    rules_test.add_argument("category", metavar="CATEGORY", help="category id")
    rules_test.add_argument(
        "--since", default="7d", help="entries published this long ago or later (default 7d)"
    )
    rules_test.add_argument(
        "--include",
        action="append",
        metavar="RULE",
        help="replace the category's include rules (repeat for several)",
    )
    rules_test.add_argument(
        "--exclude",
        action="append",
        metavar="RULE",
        help="replace the category's exclude rules (repeat for several)",
    )
    rules_test.add_argument(
        "--add-include",
        action="append",
        metavar="RULE",
        help="add an include rule to the category's (repeatable)",
    )
    rules_test.add_argument(
        "--add-exclude",
        action="append",
        metavar="RULE",
        help="add an exclude rule to the category's (repeatable)",
    )
    rules_test.add_argument(
        "--min-score", type=float, metavar="SCORE", help="try another min_score (0 to 1)"
    )
    rules_test.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="an edited categories.toml to test before saving it over the real one",
    )
    rules_test.add_argument("--json", action="store_true", help="one JSON object")
    rules_test.set_defaults(handler=_Handler("commands.cmd_rules_test"))
    rules_apply = rule_commands.add_parser(
        "apply",
        parents=[correcting],
        help="apply the category's rules (as configured) to the entries stored over the last "
        "N days, as one correction per category (undo with `stories undo`)",
    )
    rules_apply.add_argument(
        "category", metavar="CATEGORY", nargs="?", help="category id (default: every category)"
    )
    rules_apply.add_argument(
        "--days",
        type=int,
        required=True,
        metavar="N",
        help="entries published in the last N days (1 to 366)",
    )
    rules_apply.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per category: the correction and the diff",
    )
    rules_apply.set_defaults(handler=_Handler("stories.cmd_rules_apply"))

    db_commands = add_group("db", "database maintenance", "commands.cmd_db_upgrade")
    db_upgrade = db_commands.add_parser("upgrade", parents=[common], help="apply schema migrations")
    db_upgrade.set_defaults(handler=_Handler("commands.cmd_db_upgrade"))

    eval_commands = add_group(
        "eval", "measure the machine's decisions on labelled data", "commands.cmd_eval_dedup"
    )
    dedup_eval = eval_commands.add_parser(
        "dedup",
        parents=[common],
        help="story clustering on a labelled JSONL file (articles with `cluster`, or scored "
        "pairs); prints precision, recall and F1 as JSON",
    )
    dedup_eval.add_argument("file", type=Path, help="labelled JSONL file")
    dedup_eval.set_defaults(handler=_Handler("commands.cmd_eval_dedup"))

    demo = add(
        "demo",
        "run the service offline against bundled sample feeds, its own "
        "config and a throwaway database",
        "commands.cmd_demo",
        parent=logging_only,
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="port for the aggregator's web server (0 picks a free one)",
    )
    demo.add_argument(
        "--once",
        action="store_true",
        help="poll and print the stories, then exit instead of serving",
    )
    return parser
