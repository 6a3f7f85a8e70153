"""The ``aggregator`` command line: run, poll, cluster, publish, check, sources, stories, rules,
db, eval, demo.

Every command takes ``--config DIR`` and ``--database URL`` over the environment settings
(``demo`` refuses them: it runs on its own). Exit codes are ``exitcodes.ExitCode``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aggregator.cli.exitcodes import ExitCode
from aggregator.cli.parser import build_parser
from aggregator.errors import AggregatorError, ConfigError, EditRefused, Refusal, UsageError
from aggregator.safety.terminal import terminal_text

__all__ = ["ExitCode", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Imported once the command line is parsed: `--help` needs no settings, catalog or logging.
    from aggregator.cli.context import Context
    from aggregator.logs import configure as configure_logging
    from aggregator.settings import Settings

    try:
        settings = Settings.from_env().with_overrides(
            config_dir=getattr(args, "config", None),
            database_url=getattr(args, "database", None),
            log_level=getattr(args, "log_level", None),
        )
        configure_logging(settings.log_level, settings.log_format)
        handler = args.handler
        return int(handler(Context(settings=settings, args=args)))
    except UsageError as exc:
        # argparse's format, so both kinds of usage error read alike.
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ConfigError as exc:
        print(terminal_text(f"configuration error: {exc}"), file=sys.stderr)
        return ExitCode.CONFIG
    except EditRefused as exc:
        # Asked for what does not exist: a problem, like any other failure; asked wrongly: a
        # usage error.
        print(terminal_text(f"error: {exc}"), file=sys.stderr)
        return ExitCode.PROBLEMS if exc.refusal is Refusal.NOT_FOUND else ExitCode.USAGE
    except AggregatorError as exc:
        print(terminal_text(f"error: {exc}"), file=sys.stderr)
        return ExitCode.PROBLEMS
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
