"""``batchkit`` on the command line: reconcile, kill, demo, the emulator, doctor.

Exit codes: 0 consistent / done; 3 ``reconcile`` found mismatches; 2 bad usage or input
(a path that is not a launch dir, an unreadable trace); 1 AWS refused or failed (no
credentials, unknown queue, the API down past the deadline). Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import urlsplit

from batchkit.errors import AwsError, BatchkitError, InputError

if TYPE_CHECKING:
    import pandas as pd

    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun
    from batchkit.schema import KillJob
    from batchkit.tracker import KillReport, Tracker

EXIT_OK = 0
EXIT_AWS = 1
EXIT_USAGE = 2
EXIT_MISMATCH = 3

NOTEBOOK = Path("notebooks") / "01-incident-replay.ipynb"

#: Columns of the verdict table, in order (constants from the schema, resolved lazily).
_TABLE_WIDTH_REASON = 70


# --- argument parsing ------------------------------------------------------------------------


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _add_selection(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("which run")
    where.add_argument(
        "launch_dir", nargs="?", type=Path, help="directory where `nextflow run` was started"
    )
    where.add_argument("--trace", type=Path, help="trace file (instead of LAUNCH_DIR)")
    where.add_argument("--log", type=Path, help=".nextflow.log (instead of LAUNCH_DIR)")
    where.add_argument(
        "--queue",
        action="append",
        default=None,
        help="job queue the run used (repeatable; default: the queues in the log)",
    )
    where.add_argument(
        "--ledger", type=Path, help="ledger file (default: .batchkit/ in the launch dir)"
    )
    where.add_argument(
        "--tz",
        help="time zone the trace and log were written in, e.g. Europe/Paris (they carry "
        "no zone marker; default: this machine's zone)",
    )
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--region", help="AWS region (default: the profile's or AWS_REGION)")
    aws.add_argument("--profile", help="AWS named profile")
    aws.add_argument(
        "--endpoint-url",
        help="Batch endpoint, e.g. a local emulator from `batchkit sim serve`",
    )
    aws.add_argument(
        "--deadline",
        type=_non_negative,
        default=300.0,
        help="seconds to keep retrying a failing Batch API before giving up (default 300)",
    )
    parser.add_argument(
        "--price", type=_non_negative, default=0.05, help="price per vCPU-hour for the waste (default 0.05)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchkit",
        description="Compare what Nextflow believes with what AWS Batch holds; kill orphans safely.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("reconcile", help="show every task beside its Batch job, with a verdict")
    _add_selection(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")

    p = sub.add_parser("kill", help="terminate orphan/untracked jobs of a run (dry run by default)")
    _add_selection(p)
    p.add_argument("--yes", action="store_true", help="really terminate (default: dry run)")
    p.add_argument(
        "--force", action="store_true", help="also kill jobs Nextflow still tracks as alive"
    )
    p.add_argument(
        "--verdict", action="append", default=None, help="only these verdicts (repeatable)"
    )
    p.add_argument("--job", action="append", default=None, help="only these job ids (repeatable)")

    p = sub.add_parser("demo", help="replay the incident on the embedded local Batch")
    p.add_argument("--headless", action="store_true", help="print instead of opening JupyterLab")
    p.add_argument("--tasks", type=int, default=40, help="tasks in the replayed run (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--launch-dir", type=Path, help="keep the replayed run here (default: a temp dir)"
    )

    sim = sub.add_parser("sim", help="the local AWS Batch emulator")
    simsub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    simsub.add_parser("serve", help="serve the emulator over HTTP (see `batchkit sim serve -h`)")

    sub.add_parser("doctor", help="check credentials, queues and Nextflow settings")
    return parser


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args_list)
    except InputError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except AwsError as exc:
        return _fail(str(exc), EXIT_AWS)
    except BatchkitError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted; the ledger keeps every kill sent so far", 130)
    except BrokenPipeError:
        return EXIT_OK  # `batchkit reconcile … | head` closed the pipe: not an error


def _delegate(entry: Callable[[list[str]], int | None], argv: list[str]) -> int:
    try:
        return int(entry(argv) or 0)
    except SystemExit as exc:  # their argparse (--help, a usage error) exits
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE


def _fail(message: str, code: int) -> int:
    print(f"batchkit: error: {message}", file=sys.stderr)
    return code


def _main(argv: list[str]) -> int:
    # The emulator and doctor own their arguments; hand them over untouched, and import
    # them only here so this CLI works whatever else is installed.
    if argv[:2] == ["sim", "serve"]:
        from batchkit.sim.localbatch import serve_main

        return _delegate(serve_main, argv[2:])
    if argv[:1] == ["doctor"]:
        from batchkit.doctor import main as doctor_main

        return _delegate(doctor_main, argv[1:])

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "reconcile":
        return cmd_reconcile(args)
    if args.command == "kill":
        return cmd_kill(args)
    if args.command == "demo":
        return cmd_demo(args)
    parser.print_help(sys.stderr)
    return EXIT_USAGE


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
        return NextflowRun.from_dir(path, tz=_tz(args))
    if args.trace is None and args.log is None:
        raise InputError("which run? pass LAUNCH_DIR, or --trace FILE and/or --log FILE")
    for name, file in (("--trace", args.trace), ("--log", args.log)):
        if file is not None and not file.is_file():
            raise InputError(f"{name}: no such file", path=str(file))
    return NextflowRun.from_files(trace=args.trace, log=args.log, tz=_tz(args))


def _tz(args: argparse.Namespace) -> str | None:
    zone: str | None = getattr(args, "tz", None)
    if zone is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--tz {zone!r} is not a time zone name (e.g. UTC, Europe/Paris)") from None
    return zone


def make_client(args: argparse.Namespace) -> BatchClient:
    from batchkit.client import BatchClient

    if args.endpoint_url is not None:
        parts = urlsplit(args.endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise InputError(
                f"--endpoint-url {args.endpoint_url!r} is not a URL: give e.g. http://127.0.0.1:4566"
            )
    return BatchClient(
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
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
    if not known:
        print(
            "batchkit: note: no job queue named in the log or with --queue; jobs Nextflow "
            "never recorded (untracked) cannot be looked for — pass --queue QUEUE",
            file=sys.stderr,
        )
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
    snapshot = tracker.refresh()
    if not snapshot.has_result:
        error = tracker.last_error
        if isinstance(error, BatchkitError):
            raise error
        raise AwsError(f"could not read the run's jobs from Batch: {snapshot.error}")
    if snapshot.degraded:
        print(f"batchkit: warning: {snapshot.error}", file=sys.stderr)
    return snapshot


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
    return str(value)


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
    parts = [f"{verdict} {int(n)}" for verdict, n in dict(counts).items()]
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
        frame.to_csv(out, index=False)
    elif fmt == "json":
        out.write(frame.to_json(orient="records", date_format="iso"))
        out.write("\n")
    else:
        render_table(frame, out)


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
            f"{job.task_name or '-'} — {job.reason}",
            file=out,
        )


class ProgressBar:
    """A plain-text progress bar on stderr (redrawn in place on a terminal)."""

    def __init__(self, out: TextIO, width: int = 30) -> None:
        self.out = out
        self.width = width
        self.tty = bool(getattr(out, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        filled = self.width if total == 0 else self.width * done // total
        bar = "#" * filled + "." * (self.width - filled)
        text = f"killing [{bar}] {done}/{total}"
        if self.tty:
            self.out.write("\r" + text + ("\n" if done >= total else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def render_report(report: KillReport, out: TextIO) -> None:
    for job, outcome, status in report.outcomes:
        detail = f" ({outcome.error_code}: {outcome.message})" if not outcome.ok else ""
        print(f"{job.job_id}  {outcome.outcome}  now {status or 'unknown'}{detail}", file=out)
    for job in report.skipped:
        print(f"{job.job_id}  skipped  already killed (see the ledger)", file=out)
    print(report.summary(), file=out)


# --- commands -----------------------------------------------------------------------------


def cmd_reconcile(args: argparse.Namespace) -> int:
    run = load_run(args)
    client = make_client(args)
    tracker = make_tracker(args, run, client, write=False)
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
) -> int:
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
    report = tracker.kill(plan, progress=ProgressBar(err))
    render_report(report, out)
    return EXIT_OK if report.ok else EXIT_AWS


def cmd_kill(args: argparse.Namespace) -> int:
    run = load_run(args)
    client = make_client(args)
    tracker = make_tracker(args, run, client)
    try:
        return execute_kill(
            tracker, yes=args.yes, force=args.force, verdicts=args.verdict, job_ids=args.job
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


def jupyter_command(notebook: Path, *, as_root: bool | None = None) -> list[str]:
    command = [sys.executable, "-m", "jupyterlab", "--ip", "127.0.0.1", "--no-browser"]
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root:
        # JupyterLab refuses to start as root without it (containers, CI machines).
        command.append("--allow-root")
    return [*command, str(notebook)]


def cmd_demo(
    args: argparse.Namespace, *, launcher: Callable[[list[str]], int] | None = None
) -> int:
    if not args.headless:
        notebook = find_notebook()
        if notebook is not None:
            command = jupyter_command(notebook)
            print(
                f"opening {notebook} in JupyterLab on 127.0.0.1 (Ctrl-C to stop)", file=sys.stderr
            )
            run = launcher or (lambda cmd: subprocess.call(cmd))
            return run(command)
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
