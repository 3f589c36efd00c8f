"""`vigie exchange`: subscriptions to the hash exchanges python-threatexchange reads (NCMEC, StopNCII, Tech
Against Terrorism, Meta ThreatExchange), each into a bank, fetched from its stored checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from vigie.cli.common import DataDirOpt, JsonOpt, emit_json, open_store, out
from vigie.errors import UsageError

exchange_app = typer.Typer(help="Hash exchanges read through python-threatexchange (NCMEC, StopNCII, TAT, "
                                "ThreatExchange).", no_args_is_help=True)


def _json_object(text: str, message: str, code: str) -> dict:
    """`text` parsed as a JSON object; UsageError(`message`, `code`) for anything else."""
    try:
        d = json.loads(text)
    except ValueError:
        raise UsageError(message, code=code) from None
    if not isinstance(d, dict):
        raise UsageError(message, code=code)
    return d


def _read_credentials() -> dict:
    """Credentials from stdin (never the command line, which other users of the machine can see): a JSON
    object, or `key=value` lines."""
    text = sys.stdin.read().strip()
    if not text:
        raise UsageError("give the exchange's credentials on stdin (a JSON object or key=value lines)",
                         code="missing_credentials")
    if text.startswith("{"):
        d = _json_object(text, "the credentials on stdin are not a JSON object", "missing_credentials")
        return {str(k): str(v) for k, v in d.items()}
    out_: dict = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out_[k.strip()] = v.strip()
    return out_


@exchange_app.command("add")
def exchange_add(name: str, api: str = typer.Option(..., "--api", help="ncmec, stop_ncii, tat or fb_threat_exchange."),
                 bank: str = typer.Option(..., "--bank", help="The bank it fills (made when missing)."),
                 config: str = typer.Option("{}", "--config",
                                            help='The API\'s settings as JSON, e.g. \'{"environment": "NGO"}\'.'),
                 base_url: str = typer.Option(None, "--base-url", help="Another address for the API (a test server)."),
                 data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Subscribe to an exchange; its credentials are read from stdin and stored sealed."""
    from vigie.sharing import exchanges

    cfg = _json_object(config, "--config is a JSON object", "bad_config")
    store, _ = open_store(data_dir)
    info = exchanges.add(store, name, api, bank, _read_credentials(), config=cfg, base_url=base_url, by="cli")
    emit_json(info) if json_out else out.print(f"exchange {name}: {api} -> bank {bank}")


@exchange_app.command("list")
def exchange_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Exchange subscriptions with their checkpoints and last errors."""
    from vigie.sharing import exchanges

    store, _ = open_store(data_dir)
    items = exchanges.list_exchanges(store)
    if json_out:
        emit_json({"exchanges": items})
        return
    for x in items:
        err_ = f"  last error: {x['last_error']['code']}" if x["last_error"] else ""
        out.print(f"{x['name']}: {x['api']} -> {x['bank']}  last fetch: {x['last_fetch_at'] or '-'}{err_}")


@exchange_app.command("fetch")
def exchange_fetch(name: str = typer.Argument(None, help="One exchange (default: all)."),
                   python: str = typer.Option(None, "--python",
                                              help="The python of the python-threatexchange environment "
                                                   "(default: VIGIE_EXCHANGE_PYTHON)."),
                   data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Fetch what each exchange has since its checkpoint; exit 1 when one failed (its error is recorded)."""
    from vigie.sharing import exchanges

    store, _ = open_store(data_dir)
    names = [name] if name else [x["name"] for x in exchanges.list_exchanges(store)]
    results = [exchanges.fetch(store, n, python=python) for n in names]
    for r in results:
        emit_json(r.as_dict()) if json_out else out.print(r.as_dict())
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@exchange_app.command("remove")
def exchange_remove(name: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Forget a subscription and its checkpoint (the entries received stay in the bank)."""
    from vigie.sharing import exchanges

    store, _ = open_store(data_dir)
    exchanges.remove(store, name, by="cli")
    emit_json({"removed": name}) if json_out else out.print(f"removed exchange {name}")
