"""Running a deployment: `vigie serve`, `doctor`, `stats`, and the `user` and `apikey` groups."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    open_store,
    out,
    settings_from,
)


def serve_cmd(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
              port: int = typer.Option(8000, "--port", min=1, max=65535),
              proxy_headers: bool = typer.Option(False, "--proxy-headers", help="Trust X-Forwarded-* from a proxy."),
              workers: int = typer.Option(1, "--workers", min=1, help="Server processes (one per core for a busy "
                                          "match API)."),
              intake_worker: bool = typer.Option(True, "--intake-worker/--no-intake-worker",
                                                 help="Run the crawler and takedown worker in this process "
                                                 "(turn off where `vigie crawl --loop` runs elsewhere)."),
              data_dir: Path = DataDirOpt) -> None:
    """Start the analysts' web app (and the intake worker). The first start creates an admin whose one-time
    password is printed once."""
    from vigie.web import serve

    settings = settings_from(data_dir)
    serve(settings, host, port, proxy_headers=proxy_headers, workers=workers, intake_worker=intake_worker)


user_app = typer.Typer(help="Accounts of the web app: analysts, supervisors, admins.", no_args_is_help=True)


def _user_dict(u) -> dict:
    return {"username": u.username, "role": u.role, "active": u.active}


@user_app.command("add")
def user_add(name: str, role: str = typer.Option("analyst", "--role", help="analyst, supervisor or admin."),
             password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin "
                                                 "(otherwise a one-time password is generated and printed once)."),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Create an account."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    pw = sys.stdin.readline().rstrip("\n") if password_stdin else None
    user, otp = accounts.create_user(store, name, role, pw, actor="cli")
    if json_out:
        emit_json({**_user_dict(user), "one_time_password": otp})
    else:
        out.print(f"created {user.role} [bold]{user.username}[/]")
        if otp:
            out.print(f"one-time password (shown once, change it at first login): [bold]{otp}[/]")


@user_app.command("list")
def user_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List accounts."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    for u in accounts.list_users(store):
        emit_json(_user_dict(u)) if json_out else out.print(f"{u.username}\t{u.role}\t"
                                                           f"{'active' if u.active else 'inactive'}")


@user_app.command("role")
def user_role(name: str, role: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Change an account's role."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    u = accounts.set_role(store, name, role, actor="cli")
    emit_json(_user_dict(u)) if json_out else out.print(f"{u.username} is now {u.role}")


@user_app.command("deactivate")
def user_deactivate(name: str, enable: bool = typer.Option(False, "--reactivate", help="Reactivate instead."),
                    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Deactivate (or --reactivate) an account; a deactivated account's sessions end."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    u = (accounts.reactivate if enable else accounts.deactivate)(store, name, actor="cli")
    emit_json(_user_dict(u)) if json_out else out.print(f"{u.username}: {'active' if u.active else 'inactive'}")


@user_app.command("reset-password")
def user_reset_password(name: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Give an account a new one-time password (printed once)."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    pw = accounts.generate_password()
    accounts.set_password(store, name, pw, actor="cli")
    emit_json({"username": name, "one_time_password": pw}) if json_out else \
        out.print(f"new one-time password for {name}: [bold]{pw}[/]")


@user_app.command("logout-everywhere")
def user_logout_everywhere(name: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """End every session of an account."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    n = accounts.logout_everywhere(store, name, actor="cli")
    emit_json({"username": name, "sessions_ended": n}) if json_out else out.print(f"ended {n} session(s)")


apikey_app = typer.Typer(help="API keys for platforms and partners (shown once, stored hashed).",
                         no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(name: str, scope: list[str] = typer.Option(["match"], "--scope",
                                                              help="match, banks:NAME, ... (repeat)."),
                  rate_limit: int = typer.Option(None, "--rate-limit", min=1, help="Requests a minute."),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Create an API key; its secret is printed once and only its hash is kept."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    key, secret = accounts.create_api_key(store, name, list(scope), "cli", rate_limit_per_minute=rate_limit)
    if json_out:
        emit_json({"id": key.id, "name": key.name, "scopes": key.scopes, "secret": secret})
    else:
        out.print(f"API key {key.id} ({key.name}, scopes {', '.join(key.scopes)}): [bold]{secret}[/]")
        out.print("Keep it now: Vigie stores only its hash and cannot show it again.")


@apikey_app.command("list")
def apikey_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List API keys (by prefix; secrets are never shown)."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    for k in accounts.list_api_keys(store):
        d = {"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes,
             "revoked": k.revoked_at is not None}
        state = "revoked" if d["revoked"] else "active"
        emit_json(d) if json_out else out.print(f"{k.id}\t{k.prefix}\t{k.name}\t{','.join(k.scopes)}\t{state}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: int, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Revoke an API key at once."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    k = accounts.revoke_api_key(store, key_id, actor="cli")
    emit_json({"id": k.id, "revoked": True}) if json_out else out.print(f"revoked key {k.id}")


def stats_cmd(since: str = typer.Option(None, "--since", help="First day included, YYYY-MM-DD (UTC)."),
              until: str = typer.Option(None, "--until", help="Last day included, YYYY-MM-DD (UTC)."),
              csv_file: Path = typer.Option(None, "--csv", help="Also write the per-month table to this CSV file."),
              data_dir: Path = DataDirOpt, json_out: bool = typer.Option(False, "--json", help="One JSON object.")
              ) -> None:
    """Reports, media, notices and removal times per month, provider and country (see docs/statistics.md)."""
    from vigie import stats

    store, _ = open_store(data_dir)
    data = stats.compute(store, since=stats.parse_date(since, "--since"), until=stats.parse_date(until, "--until"))
    if csv_file is not None:
        csv_file.write_text(stats.to_csv(data), encoding="utf-8", newline="")
    if json_out:
        emit_json(data)
        return
    t = Table(title="Per month", show_edge=False)
    cols = ("month", "reports", "founded", "unfounded", "in_review", "media_seen", "known", "new", "notices_sent",
            "removals", "median_hours", "p90_hours", "reports_yoy_pct")
    for c in cols:
        t.add_column(c, justify="left" if c == "month" else "right")
    for m in [*data["months"], {**data["totals"], "month": "total", "reports_yoy_pct": None}]:
        t.add_row(*["-" if m.get(c) is None else str(m[c]) for c in cols])
    out.print(t)
    for name, key, first in (("Per provider", "providers", "provider"), ("Per country", "countries", "country")):
        t = Table(title=name, show_edge=False)
        keys = (first, "notices", "removed", "still_online", "median_hours", "p90_hours")
        for c in keys:
            t.add_column(c, justify="left" if c == first else "right")
        for r in data[key]:
            t.add_row(*["-" if r.get(c) is None else str(r[c]) for c in keys])
        out.print(t)


def doctor_cmd(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Check this deployment (settings, database, migrations, index, keys) and say what is wrong."""
    from vigie import doctor

    checks = doctor.run(settings_from(data_dir))
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        emit_json(c.as_dict()) if json_out else out.print(f"[{colour[c.status]}]{c.status:>4}[/]  {c.name}: "
                                                           f"{c.message}")
    raise typer.Exit(1 if any(c.status == "fail" for c in checks) else 0)
