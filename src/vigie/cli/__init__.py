"""The `vigie` command: a thin shell that parses, calls the library, and turns errors into exit codes.

One module per command group (hash, bank, scan, review, intake, share, admin, audit, demo); what they share
(consoles, options, the JSON error shape) is in :mod:`vigie.cli.common`. This module only assembles the groups
and runs them.

Exit status: 0 when everything succeeded, 1 when any item failed (each failure is a
record in the output), 2 for bad usage. No traceback reaches the user; with `--json` every error is one
JSON object with a `code` on stdout.
"""

from __future__ import annotations

import sys
import traceback

import typer

from vigie import __version__
from vigie.cli import admin, audit, bank, demo, exchange, intake, review, scan, share
from vigie.cli import hash as hash_cmds
from vigie.cli.common import emit_json, err, out, report_error
from vigie.errors import VigieError

app = typer.Typer(help="Vigie: recognise known material by its hashes so no analyst sees it twice.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        out.print(f"vigie {__version__}")
        raise typer.Exit(0)


app.command("hash")(hash_cmds.hash_cmd)
app.add_typer(demo.demo_app, name="demo")
app.add_typer(bank.bank_app, name="bank")
app.command("match")(hash_cmds.match_cmd)
app.command("scan")(scan.scan_cmd)
app.add_typer(audit.audit_app, name="audit")
app.command("repair")(audit.repair_command)
app.command("serve")(admin.serve_cmd)
app.add_typer(admin.user_app, name="user")
app.add_typer(admin.apikey_app, name="apikey")
app.add_typer(review.review_app, name="review")
app.add_typer(share.share_app, name="share")
app.add_typer(exchange.exchange_app, name="exchange")
app.command("sync")(share.sync_cmd)
app.command("stats")(admin.stats_cmd)
app.add_typer(intake.provider_app, name="provider")
app.add_typer(intake.notices_app, name="notices")
app.command("escalate")(intake.escalate)
app.command("doctor")(admin.doctor_cmd)
app.add_typer(intake.report_app, name="report")
app.command("crawl")(intake.crawl_cmd)


def _json_mode(argv: list[str]) -> bool:
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors become a message and an exit code, never a traceback.

    With `--json` the usage errors that click would print as text (a missing file, an unknown option) are
    caught too and written as JSON on stdout, so a script never has to read stderr.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = _json_mode(args)
    try:
        if json_mode:
            rv = app(args=args, standalone_mode=False)
            sys.exit(rv if isinstance(rv, int) else 0)
        app(args=args, standalone_mode=True)
    except typer.Abort:  # only in JSON mode: standalone mode prints and exits itself
        emit_json({"error": {"code": "interrupted", "message": "interrupted"}})
        sys.exit(130)
    except typer.TyperException as exc:  # a usage error (bad option, missing file), as above
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        emit_json({"error": {"code": "bad_usage", "message": message}})
        sys.exit(getattr(exc, "exit_code", 2))
    except VigieError as exc:
        report_error(exc, json_mode)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        report_error(VigieError("interrupted", code="interrupted"), json_mode)
        sys.exit(130)
    except Exception as exc:
        if not json_mode:
            raise
        traceback.print_exc(file=sys.stderr)
        report_error(exc, json_mode)
        err.print("this is a bug: please report it with the lines above")
        sys.exit(1)


if __name__ == "__main__":
    main()
