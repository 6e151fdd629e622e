"""``batchkit`` on the command line: reconcile, kill, demo, the emulator, doctor.

One parser tree: this module builds the root parser and its ``reconcile``, ``kill`` and
``demo`` subcommands; ``doctor`` (batchkit.doctor), ``sim serve`` (batchkit.sim.localbatch)
and ``sim run`` (batchkit.sim.nextflow) register themselves on it through their own
``register_cli`` functions, next to the code they run. Every subcommand's handler is set
with ``set_defaults(run=...)`` and ``main`` calls it.

Exit statuses are listed in batchkit._cli_args (and in ``batchkit --help``); every failure
is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

from batchkit import _cli_args as cli_args
from batchkit._cli_args import (
    EXIT_ERROR_FINDING,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_KILLS_PENDING,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_STATUS_HELP,
    EXIT_USAGE,
    Parser,
    SubParsers,
    UsageError,
)
from batchkit.errors import AwsError, BatchkitError, InputError

if TYPE_CHECKING:
    import pandas as pd

    from batchkit.client import BatchClient
    from batchkit.kills import KillStatus
    from batchkit.nextflow import NextflowRun
    from batchkit.schema import KillJob
    from batchkit.tracker import KillReport, Tracker

__all__ = [
    "EXIT_AWS",
    "EXIT_ERROR_FINDING",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_KILLS_PENDING",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

#: AWS refused or failed: the runtime-failure status (kept under its old name too).
EXIT_AWS = EXIT_FAILURE

NOTEBOOK = Path("notebooks") / "01-incident-replay.ipynb"

#: Columns of the verdict table, in order (constants from the schema, resolved lazily).
_TABLE_WIDTH_REASON = 70

#: The longest --deadline: a day. Longer is surely a typo, and a timer that far out
#: overflows threading's wait() ("timeout value is too large").
_MAX_DEADLINE_S = 86400.0


# --- argument parsing ------------------------------------------------------------------------


def _add_selection(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("which run")
    where.add_argument(
        "launch_dir",
        nargs="?",
        type=cli_args.path,
        help="directory where `nextflow run` was started",
    )
    where.add_argument("--trace", type=cli_args.file_path, help="trace file (instead of LAUNCH_DIR)")
    where.add_argument("--log", type=cli_args.file_path, help=".nextflow.log (instead of LAUNCH_DIR)")
    where.add_argument(
        "--queue",
        action="append",
        default=None,
        help="job queue the run used (repeatable; default: the queues in the log)",
    )
    where.add_argument(
        "--ledger", type=cli_args.file_path, help="ledger file (default: .batchkit/ in the launch dir)"
    )
    where.add_argument(
        "--tz",
        type=cli_args.time_zone,
        help="time zone the trace and log were written in, e.g. Europe/Paris (they carry "
        "no zone marker; default: this machine's zone)",
    )
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--region", type=cli_args.region, help="AWS region (default: the profile's or AWS_REGION)")
    aws.add_argument("--profile", help="AWS named profile")
    aws.add_argument(
        "--endpoint-url",
        type=cli_args.endpoint_url,
        help="Batch endpoint, e.g. a local emulator from `batchkit sim serve`",
    )
    aws.add_argument(
        "--deadline",
        type=cli_args.number(0, _MAX_DEADLINE_S, unit="seconds"),
        default=300.0,
        help="seconds the whole command may take, reading the run and every AWS call included, "
        "before it gives up with what it has (default 300)",
    )
    parser.add_argument(
        "--price",
        type=cli_args.number(0, 1e6),
        default=0.05,
        help="price per vCPU-hour for the waste (default 0.05)",
    )


def _register_reconcile(sub: SubParsers) -> None:
    p = sub.add_parser(
        "reconcile",
        help="show every task beside its Batch job, with a verdict",
        description="Show every task beside its Batch job, with a verdict. Exit 0: they "
        "agree; 3: at least one mismatch.",
        epilog=EXIT_STATUS_HELP,
    )
    _add_selection(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    from batchkit.inspect import add_witness_arguments

    add_witness_arguments(p)
    p.set_defaults(run=cmd_reconcile)


def _register_kill(sub: SubParsers) -> None:
    from batchkit.schema import VERDICTS

    p = sub.add_parser(
        "kill",
        help="terminate orphan/untracked jobs of a run (dry run by default)",
        description="Terminate the run's orphan/untracked jobs (dry run unless --yes).",
        epilog=EXIT_STATUS_HELP,
    )
    _add_selection(p)
    p.add_argument("--yes", action="store_true", help="really terminate (default: dry run)")
    p.add_argument(
        "--force", action="store_true", help="also kill jobs Nextflow still tracks as alive"
    )
    p.add_argument(
        "--verdict",
        action="append",
        default=None,
        type=cli_args.choice_of(VERDICTS, "verdict"),
        metavar="VERDICT",
        help=f"only these verdicts (repeatable; one of {', '.join(VERDICTS)})",
    )
    p.add_argument("--job", action="append", default=None, help="only these job ids (repeatable)")
    p.set_defaults(run=cmd_kill)


def _register_demo(sub: SubParsers) -> None:
    p = sub.add_parser(
        "demo",
        help="replay the incident on the embedded local Batch",
        description="Replay the #5516 incident on the embedded local Batch.",
        epilog=EXIT_STATUS_HELP,
    )
    p.add_argument("--headless", action="store_true", help="print instead of opening JupyterLab")
    p.add_argument(
        "--tasks",
        # The replayed pipeline has three processes, one task each at least.
        type=cli_args.whole(3, 100_000),
        default=40,
        help="tasks in the replayed run, 3-100000 (default 40)",
    )
    p.add_argument("--seed", type=cli_args.whole(0, 2**63 - 1), default=0)
    p.add_argument(
        "--launch-dir",
        type=cli_args.writable_dir,
        help="keep the replayed run here (default: a temp dir)",
    )
    p.set_defaults(run=cmd_demo)


def _register_sim(sub: SubParsers) -> None:
    from batchkit.sim.localbatch import register_cli as register_serve
    from batchkit.sim.nextflow import register_cli as register_run

    sim = sub.add_parser(
        "sim",
        help="the local AWS Batch emulator and a simulated Nextflow",
        description="The local AWS Batch emulator (serve) and a simulated `nextflow run` (run).",
        epilog=EXIT_STATUS_HELP,
    )
    simsub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)
    register_serve(simsub)
    register_run(simsub)


#: Every command, in the order ``--help`` lists them: its name, its one-line help, and the
#: ``module:function`` that registers its parser (arguments and handler) beside the code
#: it runs. A command's module is imported only when that command is parsed, as click's
#: "lazily loading subcommands" does: ``batchkit --help`` or a usage error of ``kill``
#: need not import pandas through ``inspect``. tests/test_cli.py checks that the help
#: here is the help each command registers.
COMMANDS: Final[tuple[tuple[str, str, str], ...]] = (
    ("reconcile", "show every task beside its Batch job, with a verdict", "batchkit.cli:_register_reconcile"),
    ("kill", "terminate orphan/untracked jobs of a run (dry run by default)", "batchkit.cli:_register_kill"),
    ("inspect", "one task or job: Nextflow's lines, Batch attempts, its CloudWatch log, its work dir",
     "batchkit.inspect:register_cli"),
    ("demo", "replay the incident on the embedded local Batch", "batchkit.cli:_register_demo"),
    ("sim", "the local AWS Batch emulator and a simulated Nextflow", "batchkit.cli:_register_sim"),
    ("doctor", "check credentials, queues and Nextflow settings", "batchkit.doctor:register_cli"),
)  # fmt: skip


def _registrar(where: str) -> Callable[[SubParsers], None]:
    import importlib

    module, _, name = where.partition(":")
    register: Callable[[SubParsers], None] = getattr(importlib.import_module(module), name)
    return register


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command tree: ``batchkit COMMAND [SUBCOMMAND] ...``.

    Without ``argv`` every command's parser is built (for tests and docs); with it, only
    the command ``argv`` names, the others being one-line entries for ``--help``.
    """
    parser: argparse.ArgumentParser = Parser(
        prog="batchkit",
        description="Compare what Nextflow believes with what AWS Batch holds; kill orphans safely.",
        epilog=EXIT_STATUS_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else next(iter(argv), None)
    for name, help_text, where in COMMANDS:
        if argv is None or name == chosen:
            _registrar(where)(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, started: float | None = None) -> int:
    """Run ``batchkit ARGV``; return the exit status (see ``EXIT_STATUS_HELP``).

    ``started``: when the command started, on ``time.monotonic()`` (default: now). The
    process entry point (``batchkit.__main__``) takes it before importing this module, so
    that ``--deadline`` also bounds the imports, which take seconds on a loaded machine.

    The one place where errors become a line on stderr: batchkit's own errors keep their
    message; what the operating system refuses (a full disk, a read-only or immutable
    file) and what SQLite refuses (a ledger that is not a database) are named with their
    file. Anything else is a bug: one line saying so (BATCHKIT_TRACEBACK=1 shows it).
    """
    started = time.monotonic() if started is None else started
    args_list = list(sys.argv[1:] if argv is None else argv)
    args: argparse.Namespace | None = None
    with _warnings_as_lines():
        try:
            args = _parse(args_list)
            if args is None:  # --help printed its text
                return EXIT_OK
            setattr(args, cli_args.COMMAND_STARTED, started)
            run: Callable[[argparse.Namespace], int] = args.run
            return int(run(args))
        except UsageError as exc:
            return _fail(str(exc), EXIT_USAGE, prog=exc.prog)
        except InputError as exc:
            # A ledger SQLite or the OS could not write (full, read-only) is the machine
            # failing at run time, though the ledger reports it as input it cannot use.
            cause = exc.__cause__
            refused = isinstance(cause, sqlite3.OperationalError) or (
                isinstance(cause, OSError) and cause.errno in _WRITE_REFUSED
            )
            return _fail(str(exc), EXIT_FAILURE if refused else EXIT_USAGE)
        except AwsError as exc:
            return _fail(str(exc), EXIT_FAILURE)
        except BatchkitError as exc:
            return _fail(str(exc), EXIT_FAILURE)
        except KeyboardInterrupt:
            return _fail("interrupted; the ledger keeps every kill sent so far", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # `batchkit reconcile … | head` closed the pipe: not an error. Point stdout at
            # devnull so the interpreter's flush at exit does not complain again.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        except OSError as exc:
            return _fail(_os_error_text(exc, args), EXIT_FAILURE)
        except sqlite3.DatabaseError as exc:
            return _fail(_sqlite_error_text(exc, args), _sqlite_error_status(exc))
        except Exception as exc:
            if os.environ.get("BATCHKIT_TRACEBACK"):
                raise
            if _is_sdk_error(exc):
                # The AWS SDK refused its configuration (e.g. a region named in the run's
                # log or the AWS config that is not a region): the machine's setup, not a bug.
                return _fail(f"the AWS SDK: {exc}", EXIT_FAILURE)
            return _fail(
                f"unexpected {type(exc).__name__}: {exc} — this is a bug in batchkit; "
                "run again with BATCHKIT_TRACEBACK=1 and report the traceback",
                EXIT_FAILURE,
            )


def _is_sdk_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:  # pragma: no cover - botocore is a dependency
        return False
    return isinstance(exc, BotoCoreError)


def _parse(argv: list[str]) -> argparse.Namespace | None:
    """The parsed arguments, or None when ``--help`` printed and exited."""
    try:
        return build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # only --help exits: usage errors raise UsageError
        if exc.code not in (0, None):
            raise UsageError(f"exit {exc.code}") from None
        return None


def _written_path(args: argparse.Namespace | None) -> str | None:
    """Where the command writes (for an OS error that names no file, e.g. ENOSPC on write)."""
    if args is None:
        return None
    ledger = getattr(args, "ledger", None)
    if ledger is not None:
        return str(ledger)
    launch_dir = getattr(args, "launch_dir", None)
    if launch_dir is not None:
        if getattr(args, "command", None) in ("reconcile", "kill"):
            return str(Path(launch_dir) / ".batchkit" / "ledger.sqlite")
        return str(launch_dir)
    return None


#: What a full or read-only disk answers a write: the machine, not the input, is at fault.
_WRITE_REFUSED: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

_ERRNO_HINTS: Final[dict[int, str]] = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EPERM: "not permitted (an immutable file, or not yours): fix it or write elsewhere",
    errno.EACCES: "permission denied: fix the permissions or write elsewhere",
}


def _os_error_text(exc: OSError, args: argparse.Namespace | None) -> str:
    where = exc.filename if exc.filename is not None else _written_path(args)
    what = _ERRNO_HINTS.get(exc.errno or 0) or exc.strerror or str(exc)
    return f"{where}: {what}" if where else what


def _sqlite_error_text(exc: sqlite3.DatabaseError, args: argparse.Namespace | None) -> str:
    where = _written_path(args) or "the ledger"
    text = str(exc)
    if "readonly" in text:
        return f"{where}: the ledger is read-only (or immutable): make it writable or pass another --ledger"
    if "full" in text:
        return f"{where}: the disk is full: free some space or pass another --ledger"
    return f"{where}: the ledger cannot be used ({text}): pass another --ledger, or move the file aside"


def _sqlite_error_status(exc: sqlite3.DatabaseError) -> int:
    # A file that is not a database is broken input (usage); a full disk, a read-only or
    # locked file is the machine failing at run time.
    return EXIT_FAILURE if isinstance(exc, sqlite3.OperationalError) else EXIT_USAGE


def _fail(message: str, code: int, *, prog: str = "batchkit") -> int:
    print(f"{prog}: error: {cli_args.message(message)}", file=sys.stderr)
    return code


class _OneLineWarnings(logging.Handler):
    """batchkit's log warnings as ``batchkit: warning: ...`` lines on stderr.

    Without a handler Python's last-resort one prints them raw (and with tracebacks).
    The tracker's are dropped: it logs a failed refresh for a dashboard, and the CLI
    reports the same failure itself, once.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "batchkit.tracker":
            return
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        with contextlib.suppress(Exception):
            print(f"batchkit: warning: {cli_args.message(text)}", file=sys.stderr)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.warn`` as one line (Python's own shows the file, line and source line)."""
    with contextlib.suppress(Exception):
        print(f"batchkit: warning: {cli_args.message(str(message))}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """For one command: batchkit's log records and Python warnings (e.g. a ledger readable
    by other users) as ``batchkit: warning: ...`` lines; restored afterwards."""
    logger = logging.getLogger("batchkit")
    handler = _OneLineWarnings(logging.WARNING)
    logger.addHandler(handler)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        yield
    finally:
        warnings.showwarning = shown
        logger.removeHandler(handler)


# --- building the parts from arguments --------------------------------------------------------


def load_run(args: argparse.Namespace) -> NextflowRun:
    """The run named on the command line, or one clear InputError."""
    from batchkit.nextflow import NextflowRun

    if args.launch_dir is not None and (args.trace is not None or args.log is not None):
        raise InputError("give either LAUNCH_DIR or --trace/--log, not both")
    if args.launch_dir is not None:
        path: Path = args.launch_dir
        if not path.exists():
            raise InputError(
                "no such launch directory; pass the directory where `nextflow run` was "
                "started (it holds .nextflow.log)",
                path=str(path),
            )
        if not path.is_dir():
            raise InputError(
                "not a directory; pass the launch directory, or a trace file with --trace",
                path=str(path),
            )
        return _said(NextflowRun.from_dir(path, tz=_checked_tz(args), year=getattr(args, "year", None)))
    if args.trace is None and args.log is None:
        raise InputError("which run? pass LAUNCH_DIR, or --trace FILE and/or --log FILE")
    for name, file in (("--trace", args.trace), ("--log", args.log)):
        if file is not None and not file.is_file():
            raise InputError(f"{name}: no such file", path=str(file))
    return _said(NextflowRun.from_files(trace=args.trace, log=args.log, tz=_checked_tz(args), year=getattr(args, "year", None)))


def _said(run: NextflowRun) -> NextflowRun:
    """Say on stderr what the run view cannot prove (the log's year), once, as it is loaded."""
    if run.year_note:
        print(f"batchkit: note: {run.year_note}", file=sys.stderr)
    return run


def not_on_aws_batch(run: NextflowRun) -> int | None:
    """For a run that did not use AWS Batch: say so, show Nextflow's side, ask AWS nothing (exit 0).

    None for an AWS Batch run (or one whose executor is unknown): carry on.
    """
    if run.on_aws_batch is not False:
        return None
    from batchkit.schema import TaskCol

    counts = run.tasks[TaskCol.STATUS].value_counts().to_dict() if len(run.tasks) else {}
    shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no task"
    used = ", ".join(e for e in run.executors if e != "not awsbatch") or "not AWS Batch"
    name = f"'{cli_args.message(run.name)}'" if run.name else "(unnamed)"
    print(
        f"run {name} did not use AWS Batch (executor: {used}; from {run.executor_source}): its jobs "
        f"are not Batch jobs, so nothing was asked of AWS. Nextflow's side: {len(run.tasks)} task(s) "
        f"({shown}); the run is {run.state}{f' ({cli_args.message(run.abort_cause)})' if run.abort_cause else ''}."
    )
    return EXIT_OK


def _checked_tz(args: argparse.Namespace) -> str | None:
    zone: str | None = getattr(args, "tz", None)
    if zone is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--tz {zone!r} is not a time zone name (e.g. UTC, Europe/Paris)") from None
    return zone


def make_client(args: argparse.Namespace, run: NextflowRun | None = None) -> BatchClient:
    """The Batch client; the region is ``--region``, else the one the run used (log or
    config, said on stderr), else the AWS configuration's."""
    from batchkit.client import BatchClient

    region = args.region
    if region is None and run is not None and run.region:
        region = run.region
        print(f"batchkit: region {region} (from {run.region_source})", file=sys.stderr)
    if run is not None and not args.queue and run.queue_sources:
        shown = "; ".join(f"{q} (from {where})" for q, where in run.queue_sources.items())
        print(f"batchkit: queues {cli_args.message(shown)}", file=sys.stderr)
    # --endpoint-url was validated by its type. Its userinfo is dropped: botocore signs
    # with SigV4 and sends no credentials from the URL, but it quotes the URL in its
    # errors ("Could not connect to the endpoint URL"), which would show a password.
    endpoint = args.endpoint_url
    return BatchClient(
        region=region,
        profile=args.profile,
        endpoint_url=cli_args.redact_url(endpoint) if endpoint is not None else None,
        deadline=args.deadline,
    )


def make_tracker(
    args: argparse.Namespace, run: NextflowRun, client: BatchClient, *, write: bool = True
) -> Tracker:
    from batchkit.tracker import Tracker

    ledger: Path | Literal[False] | None = args.ledger
    if ledger is None and not write:
        ledger = False  # reconcile only reads: it writes nothing into the launch dir
    elif ledger is None and getattr(run, "launch_dir", None) is None:
        anchor = args.trace or args.log
        if anchor is not None:
            ledger = Path(anchor).resolve().parent / ".batchkit" / "ledger.sqlite"
    queues = args.queue or None
    known = queues or [str(q) for q in (getattr(run, "queues", None) or [])]
    # Ask Batch about every queue up front: an unknown queue or missing credentials is
    # one clear line now, not a degraded snapshot later.
    for queue in known:
        client.check_queue(queue)
    return Tracker(
        run,
        client,
        queues=queues,
        ledger=ledger,
        price_per_vcpu_hour=args.price,
        reload_run=False,
    )


def first_snapshot(tracker: Tracker) -> Any:
    """The tracker's first snapshot, or one error: a CLI asks once and does not poll again,
    so a refresh that got no answer is a failure (exit 1), not "retrying on the next poll"."""
    snapshot = tracker.refresh()
    if not snapshot.has_result:
        error = tracker.last_error
        if isinstance(error, InputError | AwsError):
            raise error
        raise AwsError(
            f"could not read the run's jobs from Batch: {_without_poll_promise(snapshot.error)}; "
            "check --endpoint-url/--region and the network, or pass a longer --deadline"
        )
    if snapshot.degraded:
        print(f"batchkit: warning: {cli_args.message(str(snapshot.error))}", file=sys.stderr)
    if not (tracker.queues or getattr(tracker.run, "queues", None)):
        # After the answer, not before: a failure stays one line.
        print(
            "batchkit: note: no job queue named in the log or with --queue; jobs Nextflow "
            "never recorded (untracked) cannot be looked for — pass --queue QUEUE",
            file=sys.stderr,
        )
    return snapshot


def _without_poll_promise(text: str | None) -> str:
    """The tracker's message without the clause a dashboard needs and a CLI does not."""
    text = text or "no answer"
    for clause in ("; showing the last good result, retrying on the next poll", "retrying on the next poll"):
        text = text.replace(clause, "")
    return text


# --- rendering ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return "-"
    try:
        if pd.isna(value):
            return "-"
    except (TypeError, ValueError):
        pass
    if isinstance(value, float):
        return f"{value:.2f}"
    # Task names and statusReasons come from files and from Batch: shown, never obeyed.
    return cli_args.printable(str(value))


def table_columns() -> list[tuple[str, str]]:
    from batchkit.schema import JobCol, RecCol, TaskCol

    return [
        (RecCol.VERDICT, "VERDICT"),
        (TaskCol.NAME, "TASK"),
        (JobCol.JOB_ID, "JOB"),
        (RecCol.NF_STATUS, "NEXTFLOW"),
        (RecCol.BATCH_STATUS, "BATCH"),
        (RecCol.BATCH_RETRIES, "RETRIES"),
        (RecCol.WASTE_VCPU_H, "WASTE_VCPU_H"),
        (RecCol.REASON, "REASON"),
    ]


def render_table(frame: pd.DataFrame, out: TextIO) -> None:
    columns = [(c, h) for c, h in table_columns() if c in frame.columns]
    rows = [[_cell(row[c]) for c, _ in columns] for _, row in frame.iterrows()]
    heads = [h for _, h in columns]
    rows = [
        [
            cell if len(cell) <= _TABLE_WIDTH_REASON else cell[: _TABLE_WIDTH_REASON - 1] + "…"
            for cell in row
        ]
        for row in rows
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(heads)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip(), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def render_summary(summary: dict[str, Any], frame: pd.DataFrame, out: TextIO) -> None:
    from batchkit.schema import RecCol

    counts = frame[RecCol.VERDICT].value_counts() if RecCol.VERDICT in frame else {}
    parts = [f"{cli_args.printable(str(verdict))} {int(n)}" for verdict, n in dict(counts).items()]
    retries = (
        int(frame[RecCol.BATCH_RETRIES].fillna(0).sum()) if RecCol.BATCH_RETRIES in frame else 0
    )
    hours = (
        float(frame[RecCol.WASTE_VCPU_H].fillna(0).sum()) if RecCol.WASTE_VCPU_H in frame else 0.0
    )
    cost = float(frame[RecCol.WASTE_COST].fillna(0).sum()) if RecCol.WASTE_COST in frame else 0.0
    print(
        f"{len(frame)} pair(s): {', '.join(parts) or 'none'}; batch retries {retries}; "
        f"waste {hours:.2f} vCPU-h (${cost:.2f})",
        file=out,
    )


def render_frame(frame: pd.DataFrame, fmt: str, out: TextIO) -> None:
    if fmt == "csv":
        csv_safe(frame).to_csv(out, index=False)
    elif fmt == "json":
        out.write(frame.to_json(orient="records", date_format="iso"))
        out.write("\n")
    else:
        render_table(frame, out)


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text cells made safe for a spreadsheet (``cli_args.csv_cell``):
    numbers stay numbers, a text cell such as ``=HYPERLINK(...)`` starts with ``'``."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    safe = frame.copy()
    for column in safe.columns:
        if is_object_dtype(safe[column].dtype) or is_string_dtype(safe[column].dtype):
            safe[column] = safe[column].map(
                lambda v: cli_args.csv_cell(v) if isinstance(v, str) else v, na_action="ignore"
            )
    safe.columns = [cli_args.csv_cell(str(c)) for c in safe.columns]
    return safe


def mismatches(frame: pd.DataFrame) -> int:
    from batchkit.schema import MISMATCH_VERDICTS, RecCol

    if frame.empty or RecCol.VERDICT not in frame:
        return 0
    return int(frame[RecCol.VERDICT].isin(sorted(MISMATCH_VERDICTS)).sum())


def render_plan(plan: Sequence[KillJob], out: TextIO) -> None:
    width = max([3, *(len(job.job_id) for job in plan)])
    print(f"{'JOB'.ljust(width)}  {'VERDICT':9}  {'VCPU_H':>7}  TASK / REASON", file=out)
    for job in plan:
        print(
            f"{job.job_id.ljust(width)}  {job.verdict:9}  {job.vcpu_hours:7.2f}  "
            + cli_args.printable(f"{job.task_name or '-'} — {job.reason}"),
            file=out,
        )
        if job.proof:
            # Which proof of ownership holds, so a person can check it before --yes.
            print(f"{''.ljust(width)}  proof: {cli_args.printable(job.proof)}", file=out)


class ProgressBar:
    """A kill's progress on stderr: a bar and the executor's line, e.g. ``killing
    [######........] 27/120 — 27 killed, 93 waiting: Batch API failing since 12:04:10,
    14 retries, AuthorizerConfigurationException``. Redrawn in place on a terminal; on a
    pipe one line per change, at most one a second (and always the last)."""

    def __init__(self, out: TextIO, width: int = 30, *, every: float = 1.0) -> None:
        self.out = out
        self.width = width
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._every = every
        self._clock = time.monotonic
        self._last = ""
        self._at = -every

    def __call__(self, status: KillStatus) -> None:
        done, total = status.done, status.total
        filled = self.width if total == 0 else self.width * done // total
        bar = "#" * filled + "." * (self.width - filled)
        text = f"killing [{bar}] {done}/{total} — {status.line()}"
        now = self._clock()
        final = status.stage in {"done", "stopped", "cancelled"}
        if text == self._last or (not final and not self.tty and now - self._at < self._every):
            return
        self._last, self._at = text, now
        if self.tty:
            self.out.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def render_report(report: KillReport, out: TextIO) -> None:
    """Each job's outcome, the pending ones with why, and the counts."""
    for job, outcome, status in report.outcomes:
        detail = f" ({outcome.error_code}: {outcome.message})" if not outcome.ok else ""
        print(f"{job.job_id}  {outcome.outcome}  now {status or 'unknown'}{detail}", file=out)
    for job in report.skipped:
        print(f"{job.job_id}  skipped  already killed (see the ledger)", file=out)
    for job, why in report.pending:
        print(f"{job.job_id}  pending  {cli_args.message(why)}", file=out)
    print(report.summary(), file=out)
    if report.pending:
        print(
            f"{len(report.pending)} kill(s) stay pending in the ledger: run the same "
            "`batchkit kill --yes` again to finish them (each job is audited once)",
            file=out,
        )


# --- commands -----------------------------------------------------------------------------


def _whole_command(args: argparse.Namespace, client: BatchClient) -> None:
    """--deadline is the whole command's, counted from its start (the imports and reading
    the run too): past it, calls fail at once, however many DescribeJobs chunks the run needs."""
    client.give_up_after(cli_args.deadline_left(args))


def cmd_reconcile(args: argparse.Namespace) -> int:
    run = load_run(args)
    if (done := not_on_aws_batch(run)) is not None:
        return done
    client = make_client(args, run)
    _whole_command(args, client)
    tracker = make_tracker(args, run, client, write=False)
    from batchkit.inspect import witness_from_args

    tracker.witness = witness_from_args(args, client)
    try:
        snapshot = first_snapshot(tracker)
    finally:
        tracker.close()
    frame = snapshot.frame
    render_frame(frame, args.format, sys.stdout)
    if args.format == "table":
        render_summary(snapshot.summary, frame, sys.stdout)
    return EXIT_MISMATCH if mismatches(frame) else EXIT_OK


def execute_kill(
    tracker: Tracker,
    *,
    yes: bool,
    force: bool = False,
    verdicts: Sequence[str] | None = None,
    job_ids: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    deadline: Callable[[], float | None] | None = None,
) -> int:
    """Plan, then (with ``yes``) kill; the exit status says how it ended.

    ``deadline()``: seconds left of the command's deadline when the kill starts (the
    kill as a whole returns by then). Exit: 0 all killed; ``EXIT_KILLS_PENDING`` some
    kills pending (Batch kept failing until the deadline: run again to finish them);
    ``EXIT_FAILURE`` a refusal, or credentials that stopped the kill (one line on stderr
    naming how to renew them).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    first_snapshot(tracker)
    plan = tracker.plan(force=force, verdicts=verdicts, job_ids=job_ids)
    pending = tracker.pending_for(plan)  # interrupted kills this plan would finish too
    if not plan and not pending:
        print("nothing to kill: no active orphan or untracked job in the run's scope", file=out)
        return EXIT_OK
    if not yes:
        render_plan(plan, out)
        hours = sum(job.vcpu_hours for job in plan)
        print(
            f"dry run: would terminate {len(plan)} job(s) ({hours:.2f} vCPU-h so far); "
            "run again with --yes to terminate them",
            file=out,
        )
        if pending:
            print(
                f"{len(pending)} interrupted kill(s) in the ledger will be finished too", file=out
            )
        return EXIT_OK
    left = deadline() if deadline is not None else None
    if left is not None:
        tracker.kill_deadline = left
    report = tracker.kill(plan, on_status=ProgressBar(err))
    render_report(report, out)
    if report.error is not None:
        print(f"batchkit: error: {cli_args.message(str(report.error))}", file=err)
        return EXIT_FAILURE
    if report.pending:
        return EXIT_KILLS_PENDING
    return EXIT_OK if report.ok else EXIT_FAILURE


def cmd_kill(args: argparse.Namespace) -> int:
    run = load_run(args)
    if (done := not_on_aws_batch(run)) is not None:
        return done
    client = make_client(args, run)
    _whole_command(args, client)  # the kill gets what is left of it
    tracker = make_tracker(args, run, client)
    try:
        return execute_kill(
            tracker, yes=args.yes, force=args.force, verdicts=args.verdict, job_ids=args.job,
            deadline=client.remaining,
        )
    finally:
        tracker.close()


def find_notebook() -> Path | None:
    """The demo notebook, looked for from the working dir, then from the source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd() / NOTEBOOK, here / NOTEBOOK):
        if candidate.is_file():
            return candidate
    return None


def jupyter_command(
    root: Path,
    *,
    port: int,
    token: str,
    as_root: bool | None = None,
) -> list[str]:
    """JupyterLab serving ``root`` on 127.0.0.1:``port`` with ``token``, quietly.

    Its own workspace and settings folders inside ``root``: JupyterLab would otherwise
    reopen the tabs of an earlier demo (files that no longer exist) and keep its theme. IPC sockets to the kernel: over TCP
    ipykernel warns that the traffic is unencrypted (it is loopback-only, but the
    warning scares people and IPC avoids it). No news feed: nothing is fetched.
    """
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        f"--LabApp.workspaces_dir={root / '.workspaces'}",
        f"--LabApp.user_settings_dir={root / '.settings'}", "--LabApp.news_url=",
        # Notebook 7 (/notebooks/...) is served too, with the same settings.
        f"--JupyterNotebookApp.workspaces_dir={root / '.workspaces'}",
        f"--JupyterNotebookApp.user_settings_dir={root / '.settings'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--KernelManager.transport=ipc",
    ]
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root:
        # JupyterLab refuses to start as root without it (containers, CI machines).
        command.append("--allow-root")
    return command


def scratch_copy(notebook: Path) -> Path:
    """A fresh temporary folder holding a copy of the notebooks next to ``notebook``.

    JupyterLab autosaves what it opens: served from the checkout, the next demo would
    open stale outputs (and "model not found" widgets) and ``git status`` would show
    every notebook modified. A copy per demo starts clean and leaves the checkout clean.
    """
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="batchkit-demo-"))
    for path in sorted(notebook.parent.glob("*.ipynb")):
        shutil.copyfile(path, scratch / path.name)
    # JupyterLab's settings for this demo (see jupyter_command): no "get Jupyter news?"
    # toast over the dashboard, no update check; nothing is fetched from the internet.
    # And the notebook's own kernel (python3) starts without a "Select Kernel" question.
    settings = scratch / ".settings" / "@jupyterlab"
    for plugin, values in (
        ("apputils-extension/notification", '{"fetchNews": "false", "checkForUpdates": false}'),
        ("notebook-extension/tracker", '{"autoStartDefaultKernel": true}'),
    ):
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(values + "\n", encoding="utf-8")
    return scratch


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_demo(command: list[str], *, url: str, scratch: Path, out: TextIO | None = None) -> int:
    """Run JupyterLab until Ctrl-C (or it exits), print the one URL once it answers, clean up.

    Jupyter's own output (several URLs, extension notes) goes to a log file: the one
    line a newcomer needs is the URL that opens the notebook.
    """
    import shutil
    import signal

    out = out or sys.stdout
    log_path = scratch / ".jupyter.log"  # hidden from JupyterLab's file browser
    code = 0

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # A closed terminal (SIGHUP) or a `kill` (SIGTERM) stops the demo as Ctrl-C does:
    # Jupyter runs in its own session, so it would otherwise outlive this process.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = _serve(command, url=url, scratch=scratch, log_path=log_path, out=out)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(scratch, ignore_errors=True)
    return code


def _serve(command: list[str], *, url: str, scratch: Path, log_path: Path, out: TextIO) -> int:
    import signal
    import urllib.error
    import urllib.request

    code = 0
    with log_path.open("wb") as log:
        # Its own session: Ctrl-C reaches this process only, which stops Jupyter (and
        # its kernels) with SIGTERM instead of Jupyter's interactive "Shutdown? (y/n)".
        proc = subprocess.Popen(
            command, cwd=scratch, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = url.split("/lab/", 1)[0] + "/api/status?" + url.split("?", 1)[1]
            deadline = time.monotonic() + 120.0
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(status, timeout=2):
                        break
                except (urllib.error.URLError, OSError):
                    time.sleep(0.3)  # a server coming up: nothing to wait on but the port
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                print(f"batchkit demo: JupyterLab exited early ({proc.returncode}):\n{tail}", file=sys.stderr)
                return EXIT_USAGE
            start_notebook_kernel(url, scratch)
            print(
                "\nbatchkit demo: the incident replay is ready in JupyterLab. Open:\n\n"
                f"    {url}\n\n"
                "then Run > Run All Cells. A scratch copy of the notebooks is served "
                f"({scratch}; removed on stop).\nPress Ctrl-C to stop.",
                file=out,
                flush=True,
            )
            code = proc.wait()
        except KeyboardInterrupt:
            print("\nbatchkit demo: stopping JupyterLab…", file=out, flush=True)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    return code


def start_notebook_kernel(url: str, scratch: Path) -> None:
    """Start the kernel that the notebook at ``url`` names in its metadata, in a session for
    it on the server, so the page attaches to a running kernel when it opens.

    Left to the page, JupyterLab 4 starts the kernel after fetching the server's sessions but
    without waiting for its kernel list; when that list comes late (a loaded machine) it finds
    no default kernel and asks "Select Kernel" (SessionContext._initialize and getDefaultKernel,
    packages/apputils/src/sessioncontext.tsx). A session already running for the notebook's
    path is reused as it is (POST /api/sessions, Jupyter Server's REST API). If the kernel
    cannot be started here, one line says so and the page starts it as before.
    """
    import json
    import urllib.error
    import urllib.request

    base, token = url.split("/lab/tree/", 1)[0], url.split("?token=", 1)[1]
    name = url.split("/lab/tree/", 1)[1].split("?", 1)[0]
    try:
        spec = json.loads((scratch / name).read_text(encoding="utf-8"))["metadata"]["kernelspec"]["name"]
        body = {"path": name, "type": "notebook", "name": name, "kernel": {"name": spec}}
        request = urllib.request.Request(
            f"{base}/api/sessions", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120):
            return
    except (OSError, ValueError, KeyError) as exc:  # URLError and HTTPError are OSErrors
        print(f"batchkit demo: the notebook's kernel did not start ahead ({exc}); JupyterLab starts it "
              "when the notebook opens.", file=sys.stderr)


def cmd_demo(
    args: argparse.Namespace, *, launcher: Callable[[list[str], str, Path], int] | None = None
) -> int:
    if not args.headless:
        notebook = find_notebook()
        if notebook is not None:
            import secrets

            scratch = scratch_copy(notebook)
            port, token = _free_port(), secrets.token_hex(24)
            command = jupyter_command(scratch, port=port, token=token)
            url = f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}"
            if launcher is not None:
                return launcher(command, url, scratch)
            return serve_demo(command, url=url, scratch=scratch)
        print(f"note: {NOTEBOOK} is not here; running the headless demo instead", file=sys.stderr)
    return run_headless_demo(n_tasks=args.tasks, seed=args.seed, launch_dir=args.launch_dir)


def run_headless_demo(
    *, n_tasks: int = 40, seed: int = 0, launch_dir: Path | None = None, out: TextIO | None = None
) -> int:
    """Replay the incident, show the verdicts and the waste, kill the orphans, show none remain."""
    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun
    from batchkit.schema import JOB_ACTIVE, JobCol, RecCol
    from batchkit.sim.nextflow import replay_incident
    from batchkit.tracker import Tracker

    out = out or sys.stdout
    print("replaying the incident on the embedded local Batch (no AWS account needed)…", file=out)
    incident = replay_incident(launch_dir=launch_dir, n_tasks=n_tasks, seed=seed)
    with incident:
        lb = incident.batch
        # The orphans keep running after the abort; let an hour of emulator time pass so the
        # waste shows, and judge "now" by the emulator's clock, not this machine's.
        lb.advance(3600.0)

        def emulator_now() -> datetime:
            return datetime.fromtimestamp(lb.clock.now(), tz=UTC)

        run = NextflowRun.from_dir(incident.launch_dir)
        client = BatchClient(endpoint_url=incident.endpoint_url)
        with Tracker(
            run, client, queues=[incident.truth.queue], reload_run=False, clock=emulator_now
        ) as tracker:
            print("an hour after Nextflow aborted:", file=out)
            snapshot = first_snapshot(tracker)
            frame = snapshot.frame
            print(f"\nrun {run.name!r} ({run.state}) in {incident.launch_dir}", file=out)
            render_table(frame, out)
            render_summary(snapshot.summary, frame, out)

            print("\nkilling the orphans:", file=out)
            code = execute_kill(tracker, yes=True, out=out)

            after = tracker.refresh().frame
            active = after[
                after[RecCol.BATCH_STATUS].isin(sorted(JOB_ACTIVE))
                & after[RecCol.VERDICT].isin(["orphan", "untracked"])
            ]
            print(
                f"\nafter the kill: {len(active)} active orphan/untracked job(s) remain", file=out
            )
            if len(active):
                print(", ".join(active[JobCol.JOB_ID].astype(str)), file=out)
                return EXIT_AWS
            return code
