"""`medvault guard …` commands: a thin Typer layer over the filter engine and the runner.

`test-filter` mirrors `fail2ban-regex` so operators can check a filter against a log before
enabling a jail; `run` starts the standalone daemon.  Bad input is reported on stderr with exit
code 2 (usage error), never as a traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from medvault.guard.errors import GuardError
from medvault.guard.filterfile import load_filter, resolve_filter_path
from medvault.guard.matcher import Filter
from medvault.guard.parallel import tally_file


class _GuardApp(typer.Typer):
    """`typer.Typer` whose `test-filter` with plain arguments skips Typer's argument coercion.

    This Typer builds a Pydantic `TypeAdapter` per parameter on every call: importing Pydantic for
    that costs `test-filter` about 14 MB of peak memory and 0.1 s of CPU, more than matching a
    100,000-line log.  Arguments of the documented forms (`FILTER LOGFILE`, `--json`, `--print-matched`,
    `--jobs N` with N >= 1, each at most once, in any order) are parsed here and `test_filter` is
    called with the values Typer would pass; anything else (`--help`, an unknown or repeated option,
    a bad value) goes to Typer, which answers it as before.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        argv = kwargs.get("args") if not args else None
        plain = _plain_test_filter(argv) if isinstance(argv, list) else None
        if plain is None:
            return super().__call__(*args, **kwargs)
        try:
            test_filter(**plain)
        except typer.Exit as exc:
            raise SystemExit(exc.exit_code) from None
        raise SystemExit(0)  # as Typer ends a command in standalone mode


def _plain_test_filter(argv: list[str]) -> dict[str, Any] | None:
    """`test_filter`'s keyword arguments for `test-filter` arguments of the documented forms, else None."""
    if not argv or argv[0] != "test-filter":
        return None
    positional: list[str] = []
    options: dict[str, Any] = {}
    tokens = iter(argv[1:])
    for token in tokens:
        if not token.startswith("-"):
            positional.append(token)
            continue
        name, value = token, None
        if token.startswith("--jobs="):
            name, value = "--jobs", token[len("--jobs=") :]
        key = {"--json": "as_json", "--print-matched": "print_matched", "--jobs": "jobs"}.get(name)
        if key is None or key in options:
            return None  # `--help`, `--`, an unknown or repeated option: Typer's to answer
        if key != "jobs":
            options[key] = True
            continue
        if value is None:
            value = next(tokens, None)
        if value is None or not (value.isascii() and value.isdigit()) or int(value) < 1:
            return None
        options[key] = int(value)
    if len(positional) != 2:
        return None
    return {"filter_spec": positional[0], "logfile": Path(positional[1]), **options}


guard_app = _GuardApp(
    help="Log-based intrusion prevention (fail2ban-compatible filters).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


TEST_FILTER_HELP = (
    "Run FILTER over LOGFILE and count failures per address, like `fail2ban-regex --usedns=no -o ip`.\n\n"
    "The same hosts with the same counts as fail2ban-regex: no DNS look-ups (a failure that names only a host "
    "name counts for nobody), comments, empty lines and a last line without its newline are not tested, and "
    "100 sshd connections are remembered, as fail2ban remembers them.\n\n"
    "Inside `medvault serve` the guard differs by design: failed logins are refused in the application, per "
    "account and per address (403 or 429), instead of banning the address for everyone behind it; and a "
    "connection is not forgotten after 5 minutes of wall-clock time, as fail2ban's daemon forgets it."
)


@guard_app.command("test-filter", help=TEST_FILTER_HELP)
def test_filter(
    filter_spec: Annotated[
        str,
        typer.Argument(
            metavar="FILTER", help="Filter file, or a name in /etc/fail2ban/filter.d, e.g. 'sshd[mode=aggressive]'."
        ),
    ],
    logfile: Annotated[Path, typer.Argument(metavar="LOGFILE", help="Log file to match.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    print_matched: Annotated[bool, typer.Option("--print-matched", help="Print matched lines.")] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", min=1, help="Processes to match a large file with: less wall time, a little more CPU time."
        ),
    ] = 1,
) -> None:
    try:
        path, opts = resolve_filter_path(filter_spec)
        flt = Filter(load_filter(path, opts))
        logfile.open(encoding="utf-8", errors="replace").close()
    except GuardError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot read {logfile}: {exc.strerror}") from None
    keep = print_matched and not as_json
    try:
        tally = tally_file(flt, logfile, time.time(), jobs=jobs, keep_lines=keep)
    except OSError as exc:
        raise _fail(f"cannot read {logfile}: {exc.strerror}") from None
    for line in tally.matched_lines or ():
        typer.echo(line)
    summary = {"lines": tally.lines, "matched": tally.matched, "ignored": tally.ignored, "missed": tally.missed}
    hosts = tally.hosts
    if as_json:
        typer.echo(json.dumps({**summary, "hosts": dict(hosts.most_common())}))
        return
    typer.echo(
        f"Lines: {summary['lines']}, {summary['matched']} matched, "
        f"{summary['ignored']} ignored, {summary['missed']} missed"
    )
    for host, n in hosts.most_common():
        typer.echo(f"  {host}: {n}")


@guard_app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", help="Guard TOML configuration.")],
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Process what the logs hold now, then exit.")] = False,
) -> None:
    """Tail the configured logs, ban offenders with the jails' actions, persist state."""
    from medvault.guard.runner import Guard, load_config  # the daemon's modules; test-filter needs none

    try:
        guard = Guard(load_config(config))
        guard.run(duration, once=once)
    except GuardError as exc:
        raise _fail(str(exc)) from None
