"""The command line's exit codes, one meaning each, so scripts and cron can tell a broken
configuration from a bad command line or a feed that failed. Documented in the README and in
``aggregator --help``."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # The command ran but found problems: some sources failed, a store or network error.
    PROBLEMS = 1
    # argparse's own code for a bad command line; our usage checks use it too.
    USAGE = 2
    # The editorial files, a setting or a named file is wrong (the message says where).
    CONFIG = 3
    # A poll in which every source tried failed.
    ALL_FAILED = 4
    INTERRUPTED = 130


EPILOG = """exit codes:
  0    success
  1    the command ran and found problems (some sources failed, a database or network error)
  2    usage error (unknown command or option, options that do not go together)
  3    configuration error (sources.toml, categories.toml, a setting, a named file,
       or a port that is taken)
  4    every source polled failed
  130  interrupted (Ctrl-C)"""
