"""`vigie audit`: the audit trail's hash chain and its signed checkpoints; `vigie repair`."""

from __future__ import annotations

from pathlib import Path

import typer

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    err,
    open_store,
    out,
)

audit_app = typer.Typer(help="The audit trail: verify the hash chain and its checkpoints, sign one, export.",
                        no_args_is_help=True)

WitnessOpt = typer.Option(None, "--witness", help="A witness file of signed checkpoints (JSON lines); default: "
                          "the instance's (VIGIE_AUDIT_WITNESS or data_dir/audit/witness.jsonl).")


@audit_app.command("verify")
def audit_verify(data_dir: Path = DataDirOpt, witness: Path = WitnessOpt,
                 public_key: str = typer.Option(None, "--public-key", help="Check the checkpoints with this "
                                                "Ed25519 public key (base64), e.g. a partner's copy of ours."),
                 json_out: bool = JsonOpt) -> None:
    """Check the chain and that it still reaches every signed checkpoint; exit status 1 when a record was edited,
    deleted, inserted or reordered, or the trail was truncated, emptied or rewritten (each named)."""
    from vigie import audit

    store, settings = open_store(data_dir)
    v = audit.verify(store, settings, witness=witness, public_key=public_key)
    if json_out:
        emit_json(v.as_dict())
    elif v.ok:
        out.print(f"[green]audit trail intact[/]: {v.records:,} records, last hash {v.last_hash}, "
                  f"{v.checkpoints} checkpoint(s) reached")
    else:
        err.print(f"[red]audit trail broken[/] ({v.code}) at record {v.first_bad_seq}: {v.reason}")
        for p in v.problems[1:20]:
            err.print(f"  {p.code} at {p.seq}: {p.message}")
    raise typer.Exit(0 if v.ok else 1)


@audit_app.command("checkpoint")
def audit_checkpoint(data_dir: Path = DataDirOpt, witness: Path = WitnessOpt, json_out: bool = JsonOpt) -> None:
    """Sign the chain's head now with the instance's key, store it, and append it to the witness file."""
    from vigie import audit

    store, settings = open_store(data_dir)
    doc = audit.checkpoint(store, settings, witness=witness)
    if json_out:
        emit_json(doc)
    else:
        out.print(f"checkpoint: record {doc['seq']} ({doc['records']:,} records), hash {doc['hash']}, "
                  f"key {doc['key_id']}; written to {witness or audit.witness_path(settings)}")


@audit_app.command("export")
def audit_export(file: Path, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Write the audit trail as JSON lines (each record with its hashes)."""
    from vigie import audit

    store, _ = open_store(data_dir)
    with open(file, "w") as f:
        n = audit.export(store, f)
    emit_json({"file": str(file), "records": n}) if json_out else out.print(f"wrote {n:,} records to {file}")


def repair_command(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Finish what a crash left half-done: bank decided clusters, run pending re-matches, retry interrupted
    notices, delete orphaned media files, sign a due checkpoint (`vigie serve` does it at start)."""
    from vigie import repair

    store, settings = open_store(data_dir)
    res = repair.run(store, settings)
    failed = any(isinstance(v, dict) and "error" in v for v in res.values())
    if json_out:
        emit_json(res)
    else:
        for k, v in res.items():
            out.print(f"{k}: {v}")
    raise typer.Exit(1 if failed else 0)
