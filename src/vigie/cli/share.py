"""`vigie share` and `vigie sync`: signed change feeds between partner Vigie instances."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    open_store,
    out,
)
from vigie.errors import UsageError

share_app = typer.Typer(help="Share banks with partner Vigie instances (signed change feeds).",
                        no_args_is_help=True)


@share_app.command("key")
def share_key(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """This instance's public signing key: give it to partners who subscribe to your banks."""
    from vigie.sharing import feed, keys

    _, settings = open_store(data_dir)
    k = keys.public_key_b64(settings)
    emit_json({"publisher": feed.publisher_name(settings), "public_key": k, "key_id": keys.key_id(k)}) if json_out \
        else out.print(k)


@share_app.command("publish")
def share_publish(bank: str, stop: bool = typer.Option(False, "--stop", help="Stop publishing it."),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Publish a bank's change feed to partners whose API key holds the scope banks:BANK."""
    from vigie.sharing import feed

    store, _ = open_store(data_dir)
    if stop:
        res = {"bank": bank, "published": False, "was_published": feed.unpublish(store, bank, by="cli")}
    else:
        res = feed.publish(store, bank, by="cli")
    emit_json(res) if json_out else out.print(res)


@share_app.command("subscribe")
def share_subscribe(name: str, url: str = typer.Option(..., "--url", help="The partner's Vigie, e.g. https://..."),
                    remote_bank: str = typer.Option(..., "--remote-bank"),
                    local_bank: str = typer.Option(..., "--local-bank"),
                    publisher_key: str = typer.Option(..., "--publisher-key", help="Their public key (base64)."),
                    api_key_stdin: bool = typer.Option(True, "--api-key-stdin/--no-api-key-stdin",
                                                       help="Read the partner's API key from stdin."),
                    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Subscribe to a partner's published bank."""
    from vigie.sharing import subscriber

    store, _ = open_store(data_dir)
    api_key = sys.stdin.readline().strip() if api_key_stdin else ""
    if not api_key:
        raise UsageError("give the partner's API key on stdin")
    subscriber.subscribe(store, name, url, remote_bank, local_bank, api_key, publisher_key, by="cli")
    emit_json({"subscription": name}) if json_out else out.print(f"subscribed {name}: {url} {remote_bank} -> "
                                                                    f"{local_bank}")


@share_app.command("list")
def share_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Published banks and subscriptions."""
    from vigie.sharing import feed, subscriber

    store, _ = open_store(data_dir)
    pubs, subs = feed.published_banks(store), subscriber.list_subscriptions(store)
    if json_out:
        emit_json({"published": pubs, "subscriptions": subs})
    else:
        out.print(f"published: {', '.join(pubs) or '-'}")
        for x in subs:
            out.print(x)


def sync_cmd(name: str = typer.Argument(None, help="One subscription (default: all)."),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Pull partners' signed changes; a batch that fails verification is refused whole."""
    from vigie.sharing import subscriber

    store, settings = open_store(data_dir)
    results = [subscriber.sync(store, settings, name)] if name else subscriber.sync_all(store, settings)
    for r in results:
        emit_json(r.as_dict()) if json_out else out.print(r.as_dict())
    raise typer.Exit(0 if all(r.ok for r in results) else 1)
