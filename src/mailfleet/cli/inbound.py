"""``mailfleet inbound …``: received mail, as the classifier understands it.

``mailfleet inbound classify FILE.eml ... --json`` prints one JSON object per
file and line, with exactly the keys of :func:`json_record` — an interface
scripts rely on: add keys only at the end, never rename one. A file that cannot
be read is reported on stderr with its name; the others are still classified
and the exit code is 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mailfleet.inbound import DEFAULT_WARMUP_MARKER, MAX_MESSAGE_BYTES, Classification, classify

inbound_app = typer.Typer(
    help="Received mail: replies, bounces, auto-replies.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


def json_record(file: str, result: Classification) -> dict[str, object]:
    """The stable JSON shape of one classified file."""
    return {
        "file": file,
        "kind": result.kind.value,
        "recipients": [
            {
                "address": r.address,
                "status": r.status,
                "action": r.action.value,
                "hard": r.hard,
                "reason": r.reason.value if r.reason is not None else None,
            }
            for r in result.recipients
        ],
        "original_message_id": result.original_message_id,
        "return_date": result.return_date.isoformat() if result.return_date else None,
        "text": result.text,
    }


def _read(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    # Read no more than the classifier looks at: a huge file costs no memory.
    with path.open("rb") as handle:
        return handle.read(MAX_MESSAGE_BYTES + 1)


def _summary(result: Classification) -> str:
    if result.recipients:
        return "\n".join(
            f"{r.address}\n  {r.action.value} {r.status or '-'} "
            f"{'hard' if r.hard else 'soft'}{' ' + r.reason.value if r.reason else ''}"
            for r in result.recipients
        )
    if result.return_date is not None:
        return f"back {result.return_date.isoformat()}"
    return ""


@inbound_app.command("classify")
def classify_files(
    files: Annotated[list[Path], typer.Argument(help="Raw messages (.eml); - reads stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    warmup_marker: Annotated[
        str, typer.Option(help="Token that marks warmup mail; empty turns it off.")
    ] = DEFAULT_WARMUP_MARKER,
) -> None:
    """Classify messages: bounce, delivered, auto_reply, complaint, unsubscribe, reply, …"""
    marker = warmup_marker or None
    if marker is not None and len(marker.strip()) < 4:
        err_console.print("[bold red]mailfleet:[/] --warmup-marker needs at least 4 characters")
        raise typer.Exit(2)
    table = Table(title="Classified messages")
    table.add_column("file", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("recipients / return date", overflow="fold", min_width=24)
    table.add_column("text", overflow="ellipsis", no_wrap=True, max_width=20)
    failures = 0
    for path in files:
        try:
            raw = _read(path)
        except OSError as exc:
            failures += 1
            reason = exc.strerror or str(exc)
            err_console.print(f"[bold red]mailfleet:[/] {escape(str(path))}: cannot read: {reason}")
            continue
        result = classify(raw, warmup_marker=marker)
        if as_json:
            print(json.dumps(json_record(str(path), result), ensure_ascii=False), flush=True)
        else:
            table.add_row(
                escape(path.name),
                result.kind.value,
                escape(_summary(result)),
                escape(" ".join(result.text.split())[:120]),
            )
    if not as_json and table.row_count:
        console.print(table)
    if failures:
        raise typer.Exit(1)
