"""``batchkit.inspect(target, run=..., batch=..., readers=...)``: why did this task fail or linger?

Gathers one task's or job's story from every witness and returns a pure
:class:`~batchkit.inspection.Inspection`: Nextflow's view (its row and the ``.nextflow.log``
lines naming its hash, job id or work dir), every Batch attempt (DescribeJobs), the tail of
the attempt's CloudWatch log, and the tails of its work-dir files in S3. Each network call
is an explicit step here; assembling and rendering live in :mod:`batchkit.inspection`.

A piece that cannot be read (a refused permission, a job Batch forgot) becomes a line in
``Inspection.problems`` naming what to do; the other pieces still show.

The module itself is callable — ``batchkit.inspect(...)`` is :func:`inspect` — because
importing a submodule binds its name on the package, which would otherwise hide the
function of the same name.
"""

from __future__ import annotations

import sys
import types
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from batchkit.errors import AccessDeniedError, AwsError, BatchkitError, InputError
from batchkit.inspection import (
    DEFAULT_LINES,
    DEFAULT_TAIL_BYTES,
    WORKDIR_FILES,
    Attempt,
    FileTail,
    Inspection,
    LogTail,
    WorkdirEvidence,
    attempts_of,
    evidence_from_files,
    explain_with_workdir,
    needles_for,
    workdir_targets,
)
from batchkit.schema import TaskCol

if TYPE_CHECKING:
    import pandas as pd

    from batchkit.aws_readers import AwsReaders, S3Reader
    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun

__all__ = [
    "Inspector",
    "WorkdirWitness",
    "add_witness_arguments",
    "find_task",
    "inspect",
    "load_earlier",
    "witness",
    "witness_from_args",
]

#: .nextflow.log lines kept per inspection (the newest).
NEXTFLOW_LINES: Final = 50


def find_task(tasks: pd.DataFrame, target: str) -> dict[str, Any] | None:
    """The task row ``target`` names: its name, Batch job id, hash (``ab/cdef12``) or task id."""
    if tasks is None or tasks.empty:
        return None
    t = target.strip()
    checks: list[Any] = []
    if TaskCol.NAME in tasks:
        checks.append(tasks[TaskCol.NAME] == t)
    if TaskCol.NATIVE_ID in tasks:
        checks.append(tasks[TaskCol.NATIVE_ID] == t)
    if TaskCol.HASH in tasks and "/" in t and len(t) >= 4:
        checks.append(tasks[TaskCol.HASH].fillna("").map(lambda h: bool(h) and (t.startswith(h) or h.startswith(t))))
    if TaskCol.TASK_ID in tasks and t.isdigit():
        checks.append(tasks[TaskCol.TASK_ID] == int(t))
    for mask in checks:
        hit = tasks[mask.fillna(False).astype(bool)]
        if len(hit):
            row = hit.iloc[-1]  # the newest attempt of a retried task
            return {k: row[k] for k in tasks.columns}
    return None


def _job_workdir(job: Mapping[str, Any]) -> str | None:
    import pandas as pd

    from batchkit.reconcile import extract_workdir

    container = job.get("container") if isinstance(job.get("container"), Mapping) else {}
    assert isinstance(container, Mapping)
    command = container.get("command")
    if not isinstance(command, list):
        return None
    found = extract_workdir(pd.Series([" ".join(str(c) for c in command)])).iloc[0]
    return None if pd.isna(found) else str(found)


def read_nextflow_lines(paths: list[str], needles: list[str], *, limit: int = NEXTFLOW_LINES) -> tuple[str, ...]:
    """The last ``limit`` lines of the logs (oldest file first) naming one of ``needles``.

    Reads in blocks and lets ``bytes.find`` look for the needles, so a long log costs
    about as much as reading it: a task is named on a handful of its many lines.
    """
    if not needles:
        return ()
    keys = [n.encode() for n in needles if n]
    kept: deque[str] = deque(maxlen=limit)
    for path in paths:
        try:
            with open(path, "rb") as fh:
                carry = b""
                while True:
                    block = fh.read(_BLOCK)
                    if not block:
                        break
                    data = carry + block
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        carry = data
                        continue
                    _matching_lines(data[:cut], keys, kept)
                    carry = data[cut:]
                if carry:
                    _matching_lines(carry, keys, kept)
        except OSError:
            continue
    return tuple(kept)


_BLOCK: Final = 4 << 20


def _matching_lines(data: bytes, keys: list[bytes], kept: deque[str]) -> None:
    starts: set[int] = set()
    for key in keys:
        at = data.find(key)
        while at >= 0:
            starts.add(data.rfind(b"\n", 0, at) + 1)
            at = data.find(key, at + len(key))
    for start in sorted(starts):
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        kept.append(line.decode("utf-8", errors="replace").rstrip("\r"))


def read_workdir(s3: S3Reader, workdir: str, *, max_bytes: int = DEFAULT_TAIL_BYTES) -> tuple[dict[str, FileTail], list[str]]:
    """Tails of the wrapper's files in ``workdir``; one listing, then one ranged GET per file there.

    Without s3:ListBucket every file is asked for directly (a missing one then also reads as
    AccessDenied, which S3 does on purpose).
    """
    problems: list[str] = []
    base = workdir.rstrip("/")
    listing: dict[str, Any] | None
    try:
        listing = s3.list_workdir(base)
    except AccessDeniedError as error:
        problems.append(str(error))
        listing = None
    except AwsError as error:
        problems.append(str(error))
        listing = None
    files: dict[str, FileTail] = {}
    for name in WORKDIR_FILES:
        url = f"{base}/{name}"
        if listing is not None and name not in listing:
            files[name] = FileTail(name, url, exists=False)
            continue
        # .exitcode and .command.begin hold a line; the rest are read as tails.
        files[name] = s3.tail(url, max_bytes=max_bytes)
    return files, problems


def inspect(
    target: str,
    *,
    run: NextflowRun | str | Path | None = None,
    batch: BatchClient | None = None,
    readers: AwsReaders | None = None,
    lines: int = DEFAULT_LINES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    attempt: int | None = None,
) -> Inspection:
    """Inspect one task (by name, hash or task id) or Batch job (by id).

    The log shown is the latest attempt's that has a stream, or attempt number ``attempt``
    (1-based, as listed) — a spot-reclaimed try keeps its own stream.

    ``run`` is a :class:`~batchkit.nextflow.NextflowRun` or its launch dir; ``batch`` a
    :class:`~batchkit.client.BatchClient`; ``readers`` the logs/S3 readers
    (:meth:`AwsReaders.create <batchkit.aws_readers.AwsReaders.create>`). Any of them may be
    None: that side is then left out.

    The steps, in order: read the run, find the task, DescribeJobs, the attempt's
    CloudWatch log tail, the work dir's S3 tails, the ``.nextflow.log`` lines naming them.
    """
    if not isinstance(target, str) or not target.strip():
        raise InputError("inspect: give a task name (e.g. 'ALIGN (sample_01)'), a hash (ab/cdef12) or a Batch job id")
    target = target.strip()
    problems: list[str] = []
    nf_run = _open_run(run)
    task, job_id = _resolve_target(nf_run, target, problems)
    job = _describe_job(batch, job_id, problems) if job_id is not None and batch is not None else None
    attempts = tuple(attempts_of(job)) if job is not None else ()
    workdir = _workdir_of(task, job)
    log = _tail_attempt_log(readers, job, job_id, attempts, attempt, lines=lines, problems=problems)
    files, evidence = _read_workdir_tails(readers, workdir, tail_bytes=tail_bytes, problems=problems)
    nf_lines: tuple[str, ...] = ()
    if nf_run is not None:
        nf_lines = read_nextflow_lines(list(nf_run.log_paths), needles_for(task, job_id, workdir))
    return Inspection(
        query=target, task=task, nextflow_lines=nf_lines, job_id=job_id, **_job_fields(job),
        attempts=attempts, log=log, workdir=workdir, files=files, evidence=evidence, problems=tuple(problems),
    )  # fmt: skip


def _open_run(run: NextflowRun | str | Path | None) -> NextflowRun | None:
    """The run itself: a NextflowRun as given, a launch dir read from its files."""
    if run is None or not isinstance(run, str | Path):
        return run
    from batchkit.nextflow import NextflowRun

    return NextflowRun.from_dir(run)


def _resolve_target(nf_run: NextflowRun | None, target: str, problems: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """(the run's task ``target`` names, the Batch job id to describe). Pure.

    A target no task of the run claims is taken for a Batch job id when it looks like
    one (no space, no slash).
    """
    task = find_task(nf_run.tasks, target) if nf_run is not None else None
    job_id: str | None = None
    if task is not None:
        nid = task.get(TaskCol.NATIVE_ID)
        if isinstance(nid, str) and nid and not nid.isdigit():
            job_id = nid
    elif " " not in target and "/" not in target:
        job_id = target  # not a task of this run: take it for a Batch job id
    if nf_run is not None and task is None:
        problems.append(f"no task of run '{nf_run.name or '?'}' is named, hashed or numbered {target!r}")
    return task, job_id


def _describe_job(batch: BatchClient, job_id: str, problems: list[str]) -> Mapping[str, Any] | None:
    """DescribeJobs for the one job: Batch's answer, or None with the reason in ``problems``."""
    try:
        found = batch.describe_jobs([job_id])
    except AwsError as error:
        problems.append(str(error))
        return None
    job = found.jobs.get(job_id)
    if job_id in found.failed:
        problems.append(f"DescribeJobs for {job_id} kept failing: Batch's answer is not shown; try again")
    elif job is None:
        problems.append(f"Batch has no job {job_id}: it aged out (about a week after it ended), "
                        "or it is in another region/account (nextflow-io/nextflow#7301)")
    return job


def _workdir_of(task: Mapping[str, Any] | None, job: Mapping[str, Any] | None) -> str | None:
    """The task's work dir (its trace row), else the one in the job's command. Pure."""
    if task is not None and isinstance(task.get(TaskCol.WORKDIR), str):
        return str(task[TaskCol.WORKDIR]).rstrip("/")
    return _job_workdir(job) if job is not None else None


def _tail_attempt_log(
    readers: AwsReaders | None, job: Mapping[str, Any] | None, job_id: str | None, attempts: Sequence[Attempt],
    attempt: int | None, *, lines: int, problems: list[str],
) -> LogTail | None:
    """GetLogEvents: the tail of the chosen attempt's CloudWatch log stream (the latest
    attempt that has one, or number ``attempt``)."""
    if attempt is not None:
        chosen = [a for a in attempts if a.index == attempt]
        if not chosen:
            problems.append(f"job {job_id} has no attempt {attempt} (it has {len(attempts)})")
        stream = chosen[0].log_stream if chosen else None
    else:
        stream = next((a.log_stream for a in reversed(attempts) if a.log_stream), None)
    if stream is not None and readers is not None:
        return readers.logs.tail(stream, lines=lines)
    if job is not None and attempt is None:
        problems.append(f"no CloudWatch log yet: Batch names an attempt's log stream when it reaches "
                        f"RUNNING (job {job_id} is {job.get('status')})")
    return None


def _read_workdir_tails(
    readers: AwsReaders | None, workdir: str | None, *, tail_bytes: int, problems: list[str]
) -> tuple[dict[str, FileTail], WorkdirEvidence | None]:
    """ListObjectsV2 and ranged GETs: the work dir's file tails and what they witness."""
    if workdir is None or readers is None:
        return {}, None
    if not workdir.startswith("s3://"):
        problems.append(f"work dir {workdir} is not in S3: the inspector reads S3 work dirs only")
        return {}, None
    files, more = read_workdir(readers.s3, workdir, max_bytes=tail_bytes)
    problems += more
    return files, evidence_from_files(workdir, files.values())


def _job_fields(job: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The job's status, status reason, name and queue as the Inspection shows them. Pure."""
    if job is None:
        return {"job_status": None, "job_reason": None, "job_name": None, "job_queue": None}
    return {
        "job_status": str(job.get("status")),
        "job_reason": str(job["statusReason"]) if job.get("statusReason") else None,
        "job_name": str(job.get("jobName")),
        "job_queue": str(job.get("jobQueue")),
    }


def load_earlier(insp: Inspection, readers: AwsReaders, *, lines: int = DEFAULT_LINES) -> Inspection:
    """``insp`` with the ``lines`` log events before its tail put in front ("load earlier")."""
    if insp.log is None or insp.log.earlier_token is None:
        return insp
    earlier = readers.logs.tail(insp.log.stream, group=insp.log.group, lines=lines, before=insp.log.earlier_token)
    return replace(insp, log=insp.log.with_earlier(earlier))


def witness(
    frame: pd.DataFrame,
    s3: S3Reader,
    *,
    tasks: pd.DataFrame | None = None,
    limit: int = 50,
) -> pd.DataFrame:
    """The reconcile frame with the work dir's evidence in the reasons it explains.

    At most ``limit`` work dirs (two ranged GETs each) through the readers' rate budget and
    retry policy. Only reasons change: never a verdict, never ``killable``.
    """
    targets = workdir_targets(frame, tasks, limit=limit)
    if not targets:
        return frame
    return explain_with_workdir(frame, s3.evidence_for(targets, limit=limit))


@dataclass(eq=False, repr=False)
class Inspector:
    """One run's inspector: what a dashboard row click or ``Dashboard.inspect`` calls.

    Holds the run, the Batch client and the logs/S3 readers; every method is an explicit
    network call (the panel runs them off the event loop).
    """

    run: NextflowRun | None
    batch: BatchClient | None
    readers: AwsReaders | None
    _: KW_ONLY
    lines: int = DEFAULT_LINES
    tail_bytes: int = DEFAULT_TAIL_BYTES

    def inspect(self, target: str, attempt: int | None = None) -> Inspection:
        return inspect(target, run=self.run, batch=self.batch, readers=self.readers, lines=self.lines,
                       tail_bytes=self.tail_bytes, attempt=attempt)

    def load_earlier(self, insp: Inspection) -> Inspection:
        if self.readers is None:
            return insp
        return load_earlier(insp, self.readers, lines=self.lines)


class WorkdirWitness:
    """The work-dir witness for a tracker's refreshes: bounded S3 reads, remembered answers.

    Each call looks up at most ``per_refresh`` work dirs not seen yet (or seen without an
    ``.exitcode`` more than ``recheck_after`` seconds ago — a running task may finish); an
    ``.exitcode`` once read is final and never read again. So a refresh of a 10,000-task
    run costs at most ``2 * per_refresh`` GETs, paid from the readers' rate budget.
    ``witness(frame, tasks) -> frame`` only amends reasons (see ``explain_with_workdir``).
    """

    def __init__(
        self,
        s3: S3Reader,
        *,
        per_refresh: int = 10,
        recheck_after: float = 300.0,
        clock: Any = None,
    ) -> None:
        import time

        self.s3 = s3
        self.per_refresh = per_refresh
        self.recheck_after = recheck_after
        self._clock = clock or time.monotonic
        self._seen: dict[str, tuple[float, WorkdirEvidence]] = {}

    def __call__(self, frame: pd.DataFrame, tasks: pd.DataFrame | None = None) -> pd.DataFrame:
        targets = workdir_targets(frame, tasks, limit=len(frame))
        if not targets:
            return frame
        now = self._clock()
        stale = [
            wd for wd in targets
            if wd not in self._seen
            or (not self._seen[wd][1].exited and now - self._seen[wd][0] >= self.recheck_after)
        ]
        for wd in stale[: self.per_refresh]:
            try:
                found = self.s3.evidence(wd)
            except BatchkitError as exc:  # no credentials, a bad URL: explain, never break a refresh
                found = WorkdirEvidence(wd, error=str(exc))
            self._seen[wd] = (now, found)
        known = {wd: self._seen[wd][1] for wd in targets if wd in self._seen}
        return explain_with_workdir(frame, known)


# --- command line ---------------------------------------------------------------------------


def register_cli(sub: Any) -> None:
    """Register ``batchkit inspect LAUNCH_DIR TASK_NAME|JOB_ID`` on the CLI's parser tree."""
    from batchkit import _cli_args as cli_args

    p = sub.add_parser(
        "inspect",
        help="one task or job: Nextflow's lines, Batch attempts, its CloudWatch log, its work dir",
        description="Why did this task fail or linger? Nextflow's view, every Batch attempt, the tail of "
        "the attempt's CloudWatch log and the tails of the task's work-dir files in S3. Endpoints: "
        "--endpoint-url (Batch), --logs-endpoint-url, --s3-endpoint-url, or the SDK's own "
        "AWS_ENDPOINT_URL_BATCH, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, AWS_ENDPOINT_URL_S3.",
        epilog=cli_args.EXIT_STATUS_HELP,
    )
    p.add_argument("launch_dir", metavar="LAUNCH_DIR", type=cli_args.path,
                   help="directory where `nextflow run` was started")
    p.add_argument("target", metavar="TASK_NAME|JOB_ID", help="task name ('ALIGN (s1)'), hash (ab/cdef12), task id or Batch job id")
    p.add_argument("--lines", type=cli_args.whole(1, 10_000), default=DEFAULT_LINES,
                   help=f"log lines and file lines to show (default {DEFAULT_LINES})")
    p.add_argument("--bytes", dest="tail_bytes", type=cli_args.whole(1, 64 << 20), default=DEFAULT_TAIL_BYTES,
                   help=f"bytes read from the end of each work-dir file (default {DEFAULT_TAIL_BYTES})")
    p.add_argument("--attempt", type=cli_args.whole(1, 10), help="show this attempt's log (default: the latest)")
    p.add_argument("--format", choices=("text", "json", "html"), default="text")
    p.add_argument("--tz", type=cli_args.time_zone, help="time zone of the trace and log (default: this machine's)")
    aws = p.add_argument_group("AWS")
    aws.add_argument("--region", type=cli_args.region, help="AWS region")
    aws.add_argument("--profile", help="AWS named profile")
    aws.add_argument("--endpoint-url", type=cli_args.endpoint_url, help="Batch endpoint, e.g. a local emulator")
    aws.add_argument("--logs-endpoint-url", type=cli_args.endpoint_url, help="CloudWatch Logs endpoint")
    aws.add_argument("--s3-endpoint-url", type=cli_args.endpoint_url, help="S3 endpoint")
    aws.add_argument("--deadline", type=cli_args.number(0, 86400.0, unit="seconds"), default=60.0,
                     help="seconds the whole command may take, reading the run and every AWS call included, "
                     "before it gives up and shows what it read (default 60)")
    p.set_defaults(run=run_cli)


def add_witness_arguments(parser: Any) -> None:
    """``--workdir`` (and its S3 endpoint) for a command that reconciles (``batchkit reconcile``)."""
    from batchkit import _cli_args as cli_args

    group = parser.add_argument_group("work dir as a witness")
    group.add_argument("--workdir", action="store_true",
                       help="read the S3 work dirs (.exitcode, .command.begin) of stale, vanished and "
                       "disagree rows and of tasks with an unknown exit into their reasons "
                       "(at most 2 reads per row, 50 rows; never changes a verdict)")
    group.add_argument("--s3-endpoint-url", type=cli_args.endpoint_url, help="S3 endpoint for --workdir")


def witness_from_args(args: Any, client: Any) -> WorkdirWitness | None:
    """The witness ``--workdir`` asks for, on the Batch client's region and profile.

    Its reads share the command's deadline: what the client has left of ``give_up_after``
    (``--deadline`` is the whole command's), not ``--deadline`` again for each read.
    """
    if not getattr(args, "workdir", False):
        return None
    from batchkit.aws_readers import S3Reader, make_service_client

    s3 = make_service_client("s3", region=getattr(client, "region", None) or args.region,
                             profile=args.profile, endpoint_url=args.s3_endpoint_url)
    reader = S3Reader(s3, deadline=args.deadline)
    left = client.remaining()
    if left is not None:
        reader.give_up_after(left)
    return WorkdirWitness(reader, per_refresh=50)


def run_cli(args: Any) -> int:
    """``batchkit inspect``: the inspection on stdout (text, JSON, or a standalone HTML page).

    ``--deadline`` is the whole command's, counted from its start (reading the run too), as
    for reconcile, kill and doctor: past it every AWS call fails at once. When it passed
    with a piece not read, what was read is still printed, one line on stderr says so and
    the exit status is 1 (AWS did not answer before --deadline).
    """
    from batchkit import _cli_args as cli_args
    from batchkit.aws_readers import AwsReaders
    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun

    folder = Path(args.launch_dir)
    if not folder.is_dir():
        raise InputError("no such launch directory; pass the directory where `nextflow run` was started",
                         path=str(folder))
    run = NextflowRun.from_dir(folder, tz=args.tz)
    urls = {k: v for k, v in (("logs", args.logs_endpoint_url), ("s3", args.s3_endpoint_url)) if v}
    with BatchClient(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url,
                     deadline=args.deadline) as batch:
        region = args.region or batch.region
        with AwsReaders.create(region=region, profile=args.profile, endpoint_urls=urls,
                               deadline=args.deadline) as readers:
            left = cli_args.deadline_left(args)  # the whole command's, from its start
            batch.give_up_after(left)
            readers.give_up_after(left)
            insp = inspect(args.target, run=run, batch=batch, readers=readers, lines=args.lines,
                           tail_bytes=args.tail_bytes, attempt=args.attempt)
            stopped = batch.remaining() == 0 and _something_unread(insp)
    if insp.task is None and insp.job_status is None and not stopped:
        raise InputError(f"no task or Batch job {args.target!r} in this run; give a task name, hash or job id "
                         "(`batchkit reconcile` lists them)", path=str(folder))
    _print_inspection(insp, args.format, lines=args.lines)
    if stopped:
        print(f"batchkit inspect: error: stopped at the {args.deadline:g} s deadline with AWS not answering; "
              "shown is what was read before it, each piece not read named there", file=sys.stderr)
        return cli_args.EXIT_FAILURE
    return cli_args.EXIT_OK


def _something_unread(insp: Inspection) -> bool:
    """Whether the inspection names a piece it could not read. Pure."""
    log_failed = insp.log is not None and insp.log.error is not None
    return bool(insp.problems) or log_failed or any(f.error for f in insp.files.values())


def _print_inspection(insp: Inspection, form: str, *, lines: int) -> None:
    from batchkit import _cli_args as cli_args
    from batchkit.inspection import render_html, render_text

    if form == "json":
        print(insp.to_json())
    elif form == "html":
        print(render_html(insp, standalone=True))
    else:
        # Log lines and file contents may hold escape sequences: show them, never run them.
        print("\n".join(cli_args.printable(line) for line in render_text(insp, lines=lines).splitlines()))


class _CallableModule(types.ModuleType):
    def __call__(self, target: str, **kwargs: Any) -> Inspection:
        return inspect(target, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
