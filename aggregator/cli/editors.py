"""``aggregator editors add|list|rotate|revoke|audit``: editors' accounts from the command line,
through the same operations (and refusals) as the API and the admin pages. A new token is
printed once, on its own line, and kept only as a hash.
"""

from __future__ import annotations

import sys

from aggregator.cli.context import Context, when_text
from aggregator.safety.terminal import terminal_json, terminal_text


def cmd_editors(ctx: Context) -> int:
    from aggregator.editorial.operations import Workbench

    args = ctx.args
    store = ctx.store(auto_upgrade=False)
    bench = Workbench(store=store, catalog=ctx.catalog, config_dir=ctx.settings.config_dir)
    try:
        command = args.editors_command
        if command == "list":
            for editor in bench.editors():
                if args.json:
                    print(terminal_json(editor.as_json()))
                    continue
                state = (
                    "active"
                    if editor.active
                    else f"revoked by {editor.revoked_by} at {when_text(editor.revoked_at)}"
                )
                print(
                    terminal_text(
                        f"{editor.name} {editor.role.value} {state} (added by "
                        f"{editor.created_by} at {when_text(editor.created_at)})"
                    )
                )
            return 0
        if command == "audit":
            for row in bench.audit_log(args.limit):
                print(
                    terminal_json(row.as_json())
                    if args.json
                    else terminal_text(
                        f"#{row.id} {when_text(row.at)} {row.editor}: {row.kind} {row.action} "
                        f"{row.target} {row.detail}"
                    )
                )
            return 0
        if command == "revoke":
            print(bench.revoke_editor(args.name, by=ctx.editor).message, file=sys.stderr)
            return 0
        if command == "add":
            done, token = bench.add_editor(args.name, args.role, by=ctx.editor)
        else:
            done, token = bench.rotate_editor(args.name, by=ctx.editor)
    finally:
        store.close()
    print(
        f"{done.message}; the token below is shown once (only its hash is kept):", file=sys.stderr
    )
    print(token)
    return 0
