"""A simulated Nextflow: runs a synthetic pipeline on (local) AWS Batch like Nextflow does.

It talks to Batch through a real boto3 client the way ``AwsBatchTaskHandler`` does —
SubmitJob with Nextflow's job name rule and container command, resourceLabels as
tags, DescribeJobs polling in batches of 100, TerminateJob with the reason
``Job killed by NF`` — and writes the three artefacts Nextflow writes, in Nextflow's
exact formats: the trace file, ``.nextflow.log`` and weblog POSTs (docs/ARCHITECTURE.md §3).

Behaviours, by name (each the way a real Nextflow version behaves):

``healthy``
    Nextflow 24.10.4: every task is polled to the end; the run completes.
``24.02``
    Nextflow 24.02.0-edge when DescribeJobs keeps answering HTTP 500
    ``AuthorizerConfigurationException``: the SDK retries 3 times, then the status
    check throws; ``TaskPollingMonitor.checkAllTasks`` evicts the task and aborts the
    session — without killing the job (nextflow-io/nextflow#5516). Every task whose
    check fails in that poll is dropped the same way; the trace keeps saying RUNNING.
``24.12``
    Nextflow 24.12.0-edge: the same failure, but the task's job is killed before the
    task is dropped (the #5516 fix), then the session aborts.
``crash``
    Nextflow dies hard (``kill -9``, an OOM-killed head node) part way through: no
    in-flight trace rows, no ``Execution complete -- Goodbye``, no final weblog event.
``post-abort-submit``
    Nextflow 25.10.2: a task fails under ``errorStrategy 'terminate'``; the session
    aborts and kills the running tasks, but submissions already queued in
    ``ParallelPollingMonitor``'s pool still reach Batch afterwards and nothing ever
    records, polls or kills them (nextflow-io/nextflow#7445).
``spot-retries``
    Nextflow 24.04.4 with ``aws.batch.maxSpotAttempts = 5`` (the default before 24.08):
    jobs carry a retryStrategy and some spot hosts are reclaimed; Batch re-runs those
    jobs under the same id and Nextflow never notices.

The 500s themselves are not part of a behaviour: they come from the emulator's fault
plan (``LocalBatch.faults``), as they came from AWS. :func:`replay_incident` wires the
two together.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, Final, Literal, TextIO, get_args

from batchkit import _cli_args as cli_args
from batchkit._cli_args import SubParsers

from ._nf_artefacts import LogWriter, TraceWriter, Weblog
from ._nf_control import AdminControl, Control, LocalControl, WallControl
from ._nf_format import (
    EXIT_UNKNOWN,
    TRACE_DEFAULT_FIELDS,
    TRACE_FIELD_TYPES,
    aws_sdk_v1_message,
    console_line,
    fmt_duration,
    launch_command,
    normalize_job_name,
    random_run_name,
    short_hash,
    task_workdir,
    trace_file_timestamp,
    utc_iso,
    version_tuple,
)
from ._nf_pipeline import Pipeline, TaskTemplate, plan
from ._nf_workdir import WorkdirWriter, task_output

__all__ = [
    "BEHAVIORS",
    "GroundTruth",
    "Incident",
    "Pipeline",
    "SimulatedNextflow",
    "main",
    "replay_incident",
]

Behavior = Literal["healthy", "24.02", "24.12", "crash", "post-abort-submit", "spot-retries"]
BEHAVIORS: Final[tuple[str, ...]] = get_args(Behavior)

#: The Nextflow release each behaviour reproduces.
DEFAULT_VERSIONS: Final[Mapping[str, str]] = {
    "healthy": "24.10.4",
    "24.02": "24.02.0-edge",
    "24.12": "24.12.0-edge",
    "crash": "24.10.4",
    "post-abort-submit": "25.10.2",
    "spot-retries": "24.04.4",
}

KILL_REASON: Final = "Job killed by NF"
#: DescribeJobs takes at most 100 ids (AwsBatchTaskHandler: context.getBatchFor(jobId, 100)).
DESCRIBE_BATCH: Final = 100
#: TaskPollingMonitor dumps its running queue this often (dumpInterval, 5 min).
DUMP_INTERVAL: Final = 300.0
_RETRYABLE_CODES: Final = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)

_WORKDIR_IN_COMMAND: Final = re.compile(r"(\S+/[0-9a-f]{2}/[0-9a-f]{30})/\.command\.run")

_TM: Final = "Task monitor"
_TS: Final = "Task submitter"
#: Environment variable the simulated Nextflow reads its weblog Basic token from.
WEBLOG_TOKEN_ENV: Final = "BATCHKIT_WEBLOG_TOKEN"
_MAIN: Final = "main"
_REAPER: Final = "AWSBatch-reaper"
_L_SESSION: Final = "nextflow.Session"
_L_HANDLER: Final = "nextflow.cloud.aws.batch.AwsBatchTaskHandler"
_L_MONITOR: Final = "nextflow.processor.TaskPollingMonitor"
_L_PROCESSOR: Final = "nextflow.processor.TaskProcessor"
_L_CMDRUN: Final = "nextflow.cli.CmdRun"


class AwsCallFailed(Exception):
    """A Batch call that still failed after the SDK's retries; ``str()`` is the SDK's text."""

    def __init__(self, message: str, *, java_class: str = "com.amazonaws.services.batch.model.AWSBatchException") -> None:
        super().__init__(message)
        #: the exception class the AWS SDK for Java would have thrown (quoted in the log)
        self.java_class = java_class


@dataclass
class _Task:
    tpl: TaskTemplate
    task_id: int
    workdir: str
    status: str = "NEW"  # Nextflow's own view: NEW, SUBMITTED, RUNNING, COMPLETED, FAILED, ABORTED
    job_id: str | None = None
    submit_ms: int | None = None
    start_ms: int | None = None
    complete_ms: int | None = None
    realtime_ms: int | None = None
    exit: int | None = None
    error: str | None = None
    trace_status: str | None = None  # what the trace file says (None: no row)
    nf_status: str | None = None  # the last status Nextflow notified its observers of
    killed: bool = False
    abandoned: bool = False
    spot_retried: bool = False
    post_abort: bool = False

    @property
    def name(self) -> str:
        return self.tpl.name

    @property
    def hash(self) -> str:
        return short_hash(self.tpl.hash32)


@dataclass
class _RunState:
    """What a run has done so far (the settings are on :class:`SimulatedNextflow`)."""

    tasks: dict[str, _Task] = field(default_factory=dict)  # by template key
    ready: list[_Task] = field(default_factory=list)  # created, waiting for the submitter
    running: list[_Task] = field(default_factory=list)  # Nextflow's runningQueue, in submission order
    next_task_id: int = 1
    aborted: bool = False
    abort_cause: str | None = None
    error_shown: bool = False
    crashed: bool = False
    t0: float = 0.0  # emulator time the run started; 0 until run()
    end: float | None = None
    last_dump: float = 0.0
    untracked: set[str] = field(default_factory=set)  # submitted after the abort (#7445)
    killed: set[str] = field(default_factory=set)
    signal: str | None = None  # recorded by signal_abort, acted on by the run loop


def _check_arguments(behavior: str, fields: Sequence[str], poll_interval: float) -> None:
    """A ValueError naming the first argument no Nextflow run could have."""
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behavior {behavior!r}: use one of {', '.join(BEHAVIORS)}")
    bad = [f for f in fields if f not in TRACE_FIELD_TYPES]
    if bad:
        raise ValueError(f"not Nextflow trace fields: {', '.join(bad)} (see TraceRecord.FIELDS)")
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}")


def _identity(run_name: str | None, seed: int | None) -> tuple[str, str]:
    """(run name, session id): per launch like Nextflow's, random unless a seed is given,
    so two runs of one pipeline on one queue never share a session id or a run name."""
    ident = Random(seed) if seed is not None else Random()
    return run_name or random_run_name(ident), str(uuid.UUID(int=ident.getrandbits(128), version=4))


def _control_for(batch: Any, *, clock: Callable[[], float] | None, sleep: Callable[[float], None] | None) -> Control:
    """The emulator's clock and job steering when ``batch`` is a LocalBatch here, else the wall clock."""
    if batch is not None:
        return LocalControl(batch, clock=clock, sleep=sleep)
    return WallControl(clock=clock, sleep=sleep)


def _spot_attempts(given: int | None, vt: tuple[int, ...], behavior: str) -> int:
    """``aws.batch.maxSpotAttempts``: as given, else the version's default (5 until 24.08, then 0)."""
    if given is not None:
        return given
    return 5 if (vt < (24, 8, 0) or behavior == "spot-retries") else 0


@dataclass
class GroundTruth:
    """What really happened in a simulated run, to check readers and reconcile against.

    ``tasks`` holds one dict per task Nextflow knows (``task_id``, ``hash``, ``name``,
    ``process``, ``tag``, ``job_id``, ``workdir``, ``status`` — the final status as
    Nextflow recorded it: the trace row, or for a task without one the last status it
    notified (weblog) —, ``trace_status``, ``nf_status``, ``exit``, ``abandoned``,
    ``killed``, ``spot_retried``). Jobs Nextflow has no record of at all are only in
    ``untracked_job_ids``.
    """

    run_name: str
    session_id: str
    behavior: str
    version: str
    launch_dir: Path
    work_dir: str
    queue: str
    trace_file: Path
    log_file: Path
    tasks: list[dict[str, Any]]
    abandoned_job_ids: set[str]
    untracked_job_ids: set[str]
    killed_by_nf: set[str]
    spot_retried_job_ids: set[str]
    run_state: str  # "completed" | "aborted" | "alive"
    abort_cause: str | None
    start_time: float
    end_time: float | None
    weblog_url: str | None = None

    def task(self, name: str) -> dict[str, Any]:
        """The task called ``name`` (e.g. ``"ALIGN (sample_01:2)"``)."""
        for t in self.tasks:
            if t["name"] == name:
                return t
        raise KeyError(f"no task named {name!r} in run {self.run_name!r} ({len(self.tasks)} tasks)")

    def tasks_frame(self) -> Any:
        """``tasks`` as a pandas DataFrame (one row per task, sorted by task_id)."""
        import pandas as pd

        return pd.DataFrame(self.tasks).sort_values("task_id").reset_index(drop=True)

    @property
    def job_ids(self) -> set[str]:
        """Every job id Nextflow recorded."""
        return {t["job_id"] for t in self.tasks if t["job_id"]}


class SimulatedNextflow:
    """One Nextflow run of a synthetic :class:`Pipeline` on AWS Batch, through ``client``.

    ``client`` is a boto3 ``batch`` client; give it no retries of its own
    (``lb.client(retries={"total_max_attempts": 1})``) so the simulated SDK retry
    policy of the chosen Nextflow version decides — botocore's retries would add
    real-time sleeps on top. ``batch`` (a LocalBatch in this process) gives the run
    the emulator's clock (``advance`` on a manual clock: a run takes milliseconds)
    and lets it set each job's duration/exit code; without it, ``clock``/``sleep``
    are wall-clock time and the duration/exit travel in the command (see
    ``batchkit.sim._nf_control``).
    """

    def __init__(
        self,
        client: Any,
        *,
        launch_dir: str | Path,
        work_dir: str = "s3://batchkit-demo/work",
        queue: str = "demo-queue",
        job_definition: str = "nf-demo",
        pipeline: Pipeline | None = None,
        behavior: str = "healthy",
        run_name: str | None = None,
        version: str | None = None,
        weblog_url: str | None = None,
        trace_file: str | Path | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_interval: float = 5.0,
        tz: str = "UTC",
        resource_labels: Mapping[str, str] | None = None,
        batch: Any = None,
        control: Control | None = None,
        fields: Sequence[str] = TRACE_DEFAULT_FIELDS,
        trace_raw: bool = False,
        script_name: str = "main.nf",
        crash_after: float = 0.3,
        max_spot_attempts: int | None = None,
        spot_fraction: float = 0.3,
        max_run_seconds: float = 14 * 86400.0,
        seed: int | None = None,
        s3: Any = None,
        console: TextIO | None = None,
    ) -> None:
        """See the class docstring; ``seed`` also fixes the run name and session id.

        ``console``: where Nextflow's console output goes (INFO lines bare, ``WARN: …``,
        ``ERROR ~ …``), a line at a time as it happens; None keeps it to the log file.

        ``s3``: a boto3 ``s3`` client; when given, each task's work dir files (``.command.sh``,
        ``.command.run``, ``.command.begin``, ``.command.out/.err/.log``, ``.exitcode``) are
        written to ``work_dir`` in S3 as Nextflow and its task wrapper write them.
        """
        _check_arguments(behavior, fields, poll_interval)
        self.client = client
        self.launch_dir = Path(launch_dir)
        self.work_dir = work_dir.rstrip("/")
        self.queue = queue
        self.job_definition = job_definition
        self.pipeline = pipeline or Pipeline()
        self.behavior = behavior
        self.version = version or DEFAULT_VERSIONS[behavior]
        self.run_name, self.session_id = _identity(run_name, seed)
        self.weblog_url = weblog_url
        self.poll_interval = float(poll_interval)
        self.tz = tz
        self.resource_labels = dict(resource_labels or {})
        self.fields = tuple(fields)
        self.trace_raw = trace_raw
        self.script_name = script_name
        self.crash_after = crash_after
        self.spot_fraction = spot_fraction
        self.max_run_seconds = max_run_seconds
        self.control = control if control is not None else _control_for(batch, clock=clock, sleep=sleep)
        self._vt = version_tuple(self.version)
        self.max_spot_attempts = _spot_attempts(max_spot_attempts, self._vt, behavior)
        # Timing (SDK backoff jitter) is always seeded, so a behaviour replays the same way.
        self._rng = Random(self.pipeline.seed if seed is None else seed)
        self._trace_path = Path(trace_file) if trace_file is not None else None
        self._templates = self._plan()
        self._by_key = {t.key: t for t in self._templates}
        self._spot_keys = self._pick_spot_targets()
        self._state = _RunState()
        self._console = console
        self._log: LogWriter | None = None
        self._trace: TraceWriter | None = None
        # The launcher hands the weblog token over in the environment, never on the command
        # line (where `ps` shows it) — the stand-in for nf-weblog's weblog.basicToken.
        self._weblog = Weblog(
            weblog_url, run_name=self.run_name, run_id=self.session_id, token=os.environ.get(WEBLOG_TOKEN_ENV)
        )
        self._workdirs = WorkdirWriter(s3, self.work_dir, threads=4) if s3 is not None else None

    # --- planning --------------------------------------------------------------------

    def _plan(self) -> list[TaskTemplate]:
        templates = plan(self.pipeline)
        if self.behavior != "post-abort-submit":
            return templates
        # #7445 needs submissions queued when the abort lands: the 2nd scatter task fails
        # in the same poll in which the 1st completes and releases its fan-out tasks.
        scatter = [t for t in templates if t.process == self.pipeline.processes[0]]
        if len(scatter) < 2:
            raise ValueError(
                "behavior 'post-abort-submit' needs at least 2 samples: use Pipeline(n_tasks=9) or more"
            )
        first, second = scatter[0], scatter[1]
        out = []
        for t in templates:
            if t.key == second.key:
                t = dataclasses.replace(t, exit_code=1, duration=first.duration)
            elif t.exit_code != 0:
                t = dataclasses.replace(t, exit_code=0)
            out.append(t)
        return out

    def _pick_spot_targets(self) -> set[str]:
        if self.behavior != "spot-retries":
            return set()
        fanout = [t.key for t in self._templates if t.process == self.pipeline.processes[1]]
        n = max(1, round(len(fanout) * self.spot_fraction))
        return set(Random(self.pipeline.seed + 7).sample(fanout, min(n, len(fanout))))

    @property
    def error_strategy(self) -> str:
        return "terminate" if self.behavior == "post-abort-submit" else self.pipeline.error_strategy

    # --- small helpers ------------------------------------------------------------------

    def _now(self) -> float:
        return self.control.now()

    def _now_ms(self) -> int:
        return round(self._now() * 1000)

    def _logw(self, thread: str, level: str, logger: str, message: str) -> None:
        if self._log is not None and not self._state.crashed:
            self._log.write(self._now(), thread, level, logger, message)
            shown = console_line(level, message) if self._console is not None else None
            if shown is not None and self._console is not None:
                # Flushed per line: a launcher streams this console while the run goes on.
                print(shown, file=self._console, flush=True)

    def _post(self, event: str, *, trace: Mapping[str, Any] | None = None,
              metadata: Mapping[str, Any] | None = None) -> None:
        if self._state.crashed or not self.weblog_url:
            return
        err = self._weblog.send(event, self._now(), trace=trace, metadata=metadata)
        if err is not None:
            self._logw("Actor Thread 1", "DEBUG", "nextflow.trace.WebLogObserver", err)

    # --- AWS calls with the simulated SDK's retries ----------------------------------

    def _sdk_attempts(self) -> tuple[int, float]:
        """(attempts, base backoff seconds) of the Batch client of this Nextflow version."""
        if self._vt < (24, 3, 0):
            return 4, 0.1  # AWS SDK for Java v1 defaults: 3 retries, 100 ms full-jitter backoff
        # 24.03 added retries on 429/500/502/503/504 on top of the SDK's own.
        return 10, 0.5

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        attempts, base = self._sdk_attempts()
        for attempt in range(1, attempts + 1):
            try:
                answer: dict[str, Any] = getattr(self.client, operation)(**params)
                return answer
            except ClientError as e:
                meta = e.response.get("ResponseMetadata", {})
                status = int(meta.get("HTTPStatusCode") or 0)
                err = e.response.get("Error", {})
                code = str(err.get("Code", "Unknown"))
                text = aws_sdk_v1_message(
                    _sdk_v1_text(code, status, str(err.get("Message", ""))), status, code,
                    str(meta.get("RequestId") or uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                )
                if not (status >= 500 or status == 429 or code in _RETRYABLE_CODES) or attempt == attempts:
                    raise AwsCallFailed(text) from e
            except BotoCoreError as e:
                if attempt == attempts:
                    raise AwsCallFailed(
                        f"Unable to execute HTTP request: {e}", java_class="com.amazonaws.SdkClientException"
                    ) from e
            cap = min(20.0, base * (2**attempt))
            self.control.sleep(self._rng.uniform(0, cap))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the run --------------------------------------------------------------------------

    def run(self) -> GroundTruth:
        """Run the pipeline to its end (completed, aborted, or crashed); return the truth."""
        if self._state.t0:
            raise RuntimeError(
                f"run {self.run_name!r} already ran: a SimulatedNextflow is one launch, create another"
            )
        self._start()
        try:
            while True:
                self._submit_ready()
                if self._take_signal():
                    break
                if not self._state.running and not self._state.ready:
                    break
                self.control.sleep(self.poll_interval)
                if self._take_signal():
                    break
                self._check_all_tasks()
                if self._state.aborted:
                    break
                if self._should_crash():
                    self._crash()
                    return self._truth()
                self._dump_queue()
                if self._now() - self._state.t0 > self.max_run_seconds:
                    raise RuntimeError(
                        f"simulated run {self.run_name!r} still has {len(self._state.running)} tasks running after "
                        f"{self.max_run_seconds:.0f} s of emulator time: check the queue {self.queue!r} has capacity"
                    )
            self._shutdown()
        finally:
            self._close_files()
        return self._truth()

    def _close_files(self) -> None:
        if self._workdirs is not None:
            self._workdirs.close()  # every work-dir file is in S3 when run() returns
        now = self._now()
        if self._log is not None:
            self._log.close(mtime=now)
        if self._trace is not None:
            self._trace.close(mtime=now)

    def _start(self) -> None:
        self.launch_dir.mkdir(parents=True, exist_ok=True)
        self._state.t0 = self._now()
        self._state.last_dump = self._state.t0
        if self._trace_path is None:
            self._trace_path = self.launch_dir / f"trace-{trace_file_timestamp(self._state.t0, self.tz)}.txt"
        elif not self._trace_path.is_absolute():
            self._trace_path = self.launch_dir / self._trace_path
        self._log = LogWriter(self.launch_dir / ".nextflow.log", tz=self.tz)
        cmdline = f"nextflow run {self.script_name} -name {self.run_name} -with-trace {self._trace_path}"
        if self.weblog_url:
            cmdline += f" -with-weblog {self.weblog_url}"
        cmdline += f" -work-dir {self.work_dir}"
        revision = f"{self._rng.getrandbits(40):010x}"
        self._logw(_MAIN, "DEBUG", "nextflow.cli.Launcher", f"$> {cmdline}")
        self._logw(_MAIN, "INFO", _L_CMDRUN, f"N E X T F L O W  ~  version {self.version}")
        self._logw(_MAIN, "INFO", _L_CMDRUN,
                   f"Launching `{self.script_name}` [{self.run_name}] DSL2 - revision: {revision}")
        uuid_label = "Session UUID" if self._vt >= (22, 8, 0) else "Session uuid"
        self._logw(_MAIN, "DEBUG", _L_SESSION, f"{uuid_label}: {self.session_id}")
        self._logw(_MAIN, "DEBUG", _L_SESSION, f"Run name: {self.run_name}")
        self._logw(_MAIN, "DEBUG", _L_SESSION, "Executor pool size: 2")
        # FileHelper.getPathFsType runs `stat -f -c %T` on the path; for s3:// it fails -> null.
        self._logw(_MAIN, "DEBUG", _L_SESSION, f"Work-dir: {self.work_dir} [null]")
        self._logw(_MAIN, "DEBUG", "nextflow.trace.TraceFileObserver",
                   f"Workflow started -- trace file: {self._trace_path}")
        self._logw(_MAIN, "DEBUG", "nextflow.script.ScriptRunner", "> Launching execution")
        self._logw(_MAIN, "DEBUG", "nextflow.executor.Executor", "[warm up] executor > awsbatch")
        self._logw(_MAIN, "DEBUG", _L_MONITOR,
                   f"Creating task monitor for executor 'awsbatch' > capacity: 1000; "
                   f"pollInterval: {fmt_duration(self.poll_interval * 1000)}; dumpInterval: 5m ")
        if self.resource_labels:
            self._logw(_MAIN, "DEBUG", _L_PROCESSOR, f"Resource labels: {self.resource_labels}")
        self._logw(_MAIN, "DEBUG", _L_SESSION, "Session await")
        self._trace = TraceWriter(self._trace_path, self.fields, raw=self.trace_raw, tz=self.tz)
        self._post("started", metadata=self._metadata(final=False))
        for tpl in self._templates:
            if not tpl.depends_on:
                self._create(tpl)

    def _create(self, tpl: TaskTemplate) -> None:
        task = _Task(tpl=tpl, task_id=self._state.next_task_id, workdir=task_workdir(self.work_dir, tpl.hash32))
        self._state.next_task_id += 1
        self._state.tasks[tpl.key] = task
        self._state.ready.append(task)

    # --- submission ------------------------------------------------------------------------

    def _submit_request(self, task: _Task) -> dict[str, Any]:
        tpl = task.tpl
        command = launch_command(task.workdir)
        if not self.control.steers_jobs:
            # Nothing can tell the emulator how long the job runs: say it in a comment bash ignores.
            command[-1] += f" # batchkit-sim: sleep {tpl.duration}; exit {tpl.exit_code}"
        resources = [{"type": "MEMORY", "value": str(tpl.memory_mib)}]
        if tpl.cpus > 1:
            # Nextflow only overrides vCPUs above the job definition's 1.
            resources.append({"type": "VCPU", "value": str(tpl.cpus)})
        req: dict[str, Any] = {
            "jobName": normalize_job_name(task.name, keep_hyphen=self._vt >= (24, 10, 0)),
            "jobQueue": self.queue,
            "jobDefinition": self.job_definition,
            "containerOverrides": {"command": command, "resourceRequirements": resources},
        }
        if self.resource_labels:
            req["tags"] = dict(self.resource_labels)
            req["propagateTags"] = True
        if self.max_spot_attempts > 0:
            # Retry on a spot reclaim only; any other failure goes back to Nextflow's errorStrategy.
            req["retryStrategy"] = {
                "attempts": self.max_spot_attempts,
                "evaluateOnExit": [
                    {"action": "RETRY", "onStatusReason": "Host EC2*"},
                    {"action": "EXIT", "onReason": "*"},
                ],
            }
        return req

    def _submit_ready(self) -> None:
        ready, self._state.ready = self._state.ready, []
        for task in ready:
            if self._take_signal():
                self._state.ready.append(task)
                continue
            self._submit(task)

    def _submit(self, task: _Task, *, record: bool = True) -> None:
        if self._workdirs is not None:
            # Nextflow uploads the script and its wrapper before it submits the job.
            self._workdirs.staged(task.workdir, name=task.name, process=task.tpl.process, tag=task.tpl.tag)
        try:
            answer = self._call("submit_job", **self._submit_request(task))
        except AwsCallFailed as e:
            if not record:
                return
            task.status = "FAILED"
            task.error = f"Failed to submit job: {normalize_job_name(task.name)} - Reason: {e}"
            self._notify_complete(task)
            self._fault(task, task.error, exc="nextflow.exception.ProcessSubmitException")
            return
        task.job_id = str(answer["jobId"])
        tpl = task.tpl
        out, err = task_output(task.name, tpl.process, tpl.tag, tpl.exit_code)
        self.control.set_behavior(task.job_id, float(tpl.duration), tpl.exit_code, out + err)
        if self._vt >= (24, 4, 0):
            line = f"[AWS BATCH] Process `{task.name}` submitted > job={task.job_id}; work-dir={task.workdir}"
        else:
            # Before job arrays (24.04) the submit line did not name the task.
            line = f"[AWS BATCH] submitted > job={task.job_id}; work-dir={task.workdir}"
        # The handler logs the submission even after an abort: nextflow-io/nextflow#7445's
        # log shows "[AWS BATCH] Process `…` submitted > job=…" lines after "Session aborted".
        self._logw(_TS, "DEBUG", _L_HANDLER, line)
        self._logw(_TS, "INFO", _L_SESSION, f"[{task.hash}] Submitted process > {task.name}")
        if not record:
            # ... but the task never reaches the running queue: nothing kills or polls it.
            task.post_abort = True
            self._state.untracked.add(task.job_id)
            return
        task.status = "SUBMITTED"
        task.submit_ms = self._now_ms()
        self._state.running.append(task)
        task.nf_status = "SUBMITTED"
        self._post("process_submitted", trace=self._weblog_trace(task))

    # --- polling -------------------------------------------------------------------------------

    def _check_all_tasks(self) -> None:
        """TaskPollingMonitor.checkAllTasks: every running task, DescribeJobs 100 ids at a time."""
        cache: dict[str, dict[str, Any]] = {}
        for task in list(self._state.running):
            try:
                job = self._describe(task, cache)
            except AwsCallFailed as e:
                self._status_check_failed(task, str(e), e.java_class)
                continue
            self._update(task, job)

    def _describe(self, task: _Task, cache: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        assert task.job_id is not None
        if task.job_id in cache:
            return cache[task.job_id]
        start = self._state.running.index(task)
        ids = [t.job_id for t in self._state.running[start:] if t.job_id and t.job_id not in cache][:DESCRIBE_BATCH]
        answer = self._call("describe_jobs", jobs=ids)
        for job in answer.get("jobs") or []:
            cache[str(job["jobId"])] = job
        if task.job_id not in cache:
            # AwsBatchTaskHandler: "cannot find running status" -> null; polled again next time (#7301).
            self._logw(_TM, "DEBUG", _L_HANDLER, f"[AWS BATCH] cannot find running status for job={task.job_id}")
            return None
        return cache[task.job_id]

    def _update(self, task: _Task, job: dict[str, Any] | None) -> None:
        if job is None:
            return
        status = str(job.get("status"))
        if task.status == "SUBMITTED" and status in ("RUNNING", "SUCCEEDED", "FAILED"):
            task.status = "RUNNING"
            task.start_ms = self._now_ms()
            task.nf_status = "RUNNING"
            if self._workdirs is not None:
                self._workdirs.began(task.workdir)
            self._post("process_started", trace=self._weblog_trace(task))
            if task.tpl.key in self._spot_keys and not task.spot_retried and status == "RUNNING":
                # The spot host goes away; Batch retries the job under the same id (retryStrategy).
                task.spot_retried = self.control.interrupt(task.job_id or "")
        if task.status == "RUNNING" and status in ("SUCCEEDED", "FAILED"):
            self._completed(task, job)

    def _completed(self, task: _Task, job: dict[str, Any]) -> None:
        self._state.running.remove(task)
        task.complete_ms = self._now_ms()
        started, stopped = job.get("startedAt"), job.get("stoppedAt")
        task.realtime_ms = int(stopped) - int(started) if started and stopped else None
        code = (job.get("container") or {}).get("exitCode")
        if self._workdirs is not None:
            # The wrapper's on_exit wrote these as the container ended (no .exitcode when the
            # host went away before the script finished).
            tpl = task.tpl
            self._workdirs.finished(task.workdir, name=task.name, exit_code=None if code is None else int(code),
                                    output=task_output(task.name, tpl.process, tpl.tag, tpl.exit_code))
        # `job.container.exitCode ?: readExitFile()`: a missing code reads .exitcode; none -> MAX_VALUE
        task.exit = int(code) if code is not None else (0 if job.get("status") == "SUCCEEDED" else EXIT_UNKNOWN)
        failed = job.get("status") == "FAILED" or task.exit != 0
        if failed:
            reason = " - ".join(x for x in (job.get("statusReason"), _last_attempt_reason(job)) if x)
            task.error = f"nextflow.exception.ProcessException: {reason or '(unknown)'}"
        exit_text = "-" if task.exit == EXIT_UNKNOWN else str(task.exit)
        self._logw(_TM, "DEBUG", _L_MONITOR,
                   f"Task completed > TaskHandler[id: {task.task_id}; name: {task.name}; status: COMPLETED; "
                   f"exit: {exit_text}; error: {task.error or '-'}; workDir: {task.workdir}]")
        task.status = "FAILED" if failed else "COMPLETED"
        self._notify_complete(task)
        if not failed:
            self._release_dependents()
            return
        message = f"Process `{task.name}` terminated with an error exit status ({exit_text})"
        if self.error_strategy == "ignore":
            self._logw(_TM, "INFO", _L_PROCESSOR, f"[{task.hash}] NOTE: {message} -- Error is ignored")
            self._release_dependents()
        else:
            self._fault(task, message, exc="nextflow.exception.ProcessFailedException")

    def _release_dependents(self) -> None:
        """Create the tasks whose inputs are now all there (a gather waits for every chunk)."""
        if self._state.aborted:
            return
        for tpl in self._templates:
            if tpl.key in self._state.tasks or not tpl.depends_on:
                continue
            states = [self._state_of(k) for k in tpl.depends_on]
            if tpl.gather:
                # collect(): runs once nothing upstream can still produce, if anything did
                if any(s in ("pending", "active") for s in states) or "COMPLETED" not in states:
                    continue
            elif any(s != "COMPLETED" for s in states):
                continue
            self._create(tpl)

    def _state_of(self, key: str) -> str:
        """COMPLETED/FAILED/ABORTED, "active", "pending" (can still run) or "dropped"."""
        task = self._state.tasks.get(key)
        if task is not None:
            return task.status if task.status in ("COMPLETED", "FAILED", "ABORTED") else "active"
        tpl = self._by_key[key]
        deps = [self._state_of(k) for k in tpl.depends_on]
        if tpl.gather:
            return "pending" if any(s in ("pending", "active", "COMPLETED") for s in deps) else "dropped"
        return "dropped" if any(s in ("FAILED", "ABORTED", "dropped") for s in deps) else "pending"

    def _status_check_failed(self, task: _Task, message: str, java_class: str) -> None:
        """A DescribeJobs that kept failing: the task is dropped from the running queue."""
        if self._vt >= (24, 12, 0):
            # nextflow-io/nextflow#5516 fix: kill the job first, it may well still be running.
            self._kill(task, thread=_TM)
        self._state.running.remove(task)
        task.abandoned = not task.killed
        self._logw(_TM, "DEBUG", _L_PROCESSOR,
                   f"Handling unexpected condition for\n  task: name={task.name}; work-dir={task.workdir}\n"
                   f"  error [{java_class}]: {message}")
        self._fault(task, message, exc=None)

    def _fault(self, task: _Task, message: str, *, exc: str | None) -> None:
        """TaskProcessor.resumeOrDie + Session.fault: report once, then abort the session."""
        if self._state.error_shown or self._state.aborted:
            return
        self._state.error_shown = True
        lines = [f"Error executing process > '{task.name}'", "", "Caused by:", f"  {message}", ""]
        if exc is not None:
            lines += [
                "Command executed:", "", f"  {task.tpl.process.lower()}.sh {task.tpl.tag or ''}".rstrip(), "",
                "Command exit status:", f"  {'-' if task.exit in (None, EXIT_UNKNOWN) else task.exit}", "",
                "Work dir:", f"  {task.workdir}", "",
                "Tip: view the complete command output by changing to the process work dir and entering the "
                "command `cat .command.out`",
            ]
        self._logw(_TM, "ERROR", _L_PROCESSOR, "\n".join(lines))
        self._abort(message)

    def signal_abort(self, name: str) -> None:
        """A signal arrived (``SIGTERM``, ``SIGHUP``, a first ``SIGINT``): abort the session.

        Nextflow's ``Session.registerSignalHandlers`` aborts on TERM, HUP and the first
        Ctrl-C with ``AbortSignalException(sig)``: the log says ``Session aborted --
        Cause: SIGTERM``, running tasks are killed (``Killing running tasks (N)``) and the
        trace gets their ABORTED rows. Safe to call from a signal handler: it only records
        the signal; the run loop acts on it between submissions and after each poll wait.
        """
        if self._state.signal is None:
            self._state.signal = name

    def _take_signal(self) -> bool:
        """True once the session is aborted (by a recorded signal or earlier)."""
        if self._state.signal is not None and not self._state.aborted:
            self._abort(self._state.signal)
        return self._state.aborted

    def _abort(self, cause: str) -> None:
        self._state.aborted = True
        self._state.abort_cause = cause
        self._state.end = self._now()
        self._logw(_TM, "DEBUG", _L_SESSION, f"Session aborted -- Cause: {cause}")
        # Session.abort -> notifyError(null): the weblog gets an `error` event without a trace.
        self._post("error")

    def _kill(self, task: _Task, *, thread: str) -> None:
        if task.job_id is None:
            return
        if self._vt >= (25, 4, 0):
            self._logw(thread, "DEBUG", _L_HANDLER, f"[AWS BATCH] cleanup = terminating job {task.job_id}")
        try:
            answer = self._call("terminate_job", jobId=task.job_id, reason=KILL_REASON)
        except AwsCallFailed:
            return  # the reaper swallows it: the job keeps running, nobody says so
        task.killed = True
        self._state.killed.add(task.job_id)
        if self._vt >= (25, 4, 0):
            self._logw(_REAPER, "DEBUG", _L_HANDLER, f"[AWS BATCH] cleanup = killing job {task.job_id}")
        else:
            resp = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
            self._logw(_REAPER, "DEBUG", _L_HANDLER, f"[AWS BATCH] killing job={task.job_id}; response={resp}")

    def _dump_queue(self) -> None:
        now = self._now()
        if now - self._state.last_dump < DUMP_INTERVAL:
            return
        self._state.last_dump = now
        if not self._state.running:
            return
        lines = [f"!! executor awsbatch > tasks to be completed: {len(self._state.running)} -- submitted tasks are shown below"]
        for task in self._state.running[:10]:
            lines.append(f"~> TaskHandler[id: {task.task_id}; name: {task.name}; status: {task.status}; exit: -; "
                         f"error: -; workDir: {task.workdir}]")
        if len(self._state.running) > 10:
            lines.append(".. remaining tasks omitted.")
        self._logw(_TM, "DEBUG", _L_MONITOR, "\n".join(lines))

    # --- the end ------------------------------------------------------------------------------

    def _should_crash(self) -> bool:
        if self.behavior != "crash" or not self._state.running:
            return False
        done = sum(1 for t in self._state.tasks.values() if t.status in ("COMPLETED", "FAILED"))
        return done >= max(1, round(self.crash_after * len(self._templates)))

    def _crash(self) -> None:
        """kill -9: nothing more is written anywhere; in-flight jobs run on unwatched."""
        self._state.crashed = True
        for task in self._state.running:
            task.abandoned = True
        self._close_files()

    def _shutdown(self) -> None:
        self._logw(_MAIN, "DEBUG", _L_SESSION, "Session await > all process finished")
        self._logw(_MAIN, "DEBUG", _L_SESSION, "Session await > all barriers passed")
        if self._state.aborted:
            self._cleanup()
            if self.behavior == "post-abort-submit":
                # nextflow-io/nextflow#7445: queued submissions run after the kill sweep.
                queued, self._state.ready = self._state.ready, []
                for task in queued:
                    self._submit(task, record=False)
        if self._state.end is None:
            self._state.end = self._now()
        counts = {s: sum(1 for t in self._state.tasks.values() if t.status == s) for s in ("COMPLETED", "FAILED", "ABORTED")}
        ignored = counts["FAILED"] if self.error_strategy == "ignore" else 0
        self._logw(_MAIN, "DEBUG", "nextflow.trace.WorkflowStatsObserver",
                   f"Workflow completed > WorkflowStats[succeededCount={counts['COMPLETED']}; "
                   f"failedCount={counts['FAILED'] - ignored}; ignoredCount={ignored}; cachedCount=0; "
                   f"pendingCount=0; submittedCount=0; runningCount=0; retriesCount=0; "
                   f"abortedCount={counts['ABORTED']}]")
        self._logw(_MAIN, "DEBUG", "nextflow.trace.TraceFileObserver", "Workflow completed -- saving trace file")
        # TraceFileObserver.onFlowComplete: tasks still in `current` get their last record.
        for task in sorted(self._state.tasks.values(), key=lambda t: t.task_id):
            if task.trace_status is None and task.nf_status in ("SUBMITTED", "RUNNING") and not task.post_abort:
                self._write_trace(task, task.nf_status)
        self._post("completed", metadata=self._metadata(final=True))
        self._logw(_MAIN, "DEBUG", "nextflow.cache.CacheDB", "Closing CacheDB done")
        self._logw(_MAIN, "DEBUG", "nextflow.script.ScriptRunner", "> Execution complete -- Goodbye")

    def _cleanup(self) -> None:
        """TaskPollingMonitor.cleanup: kill every task still in the running queue."""
        if not self._state.running:
            return
        word = "running" if self._vt >= (21, 12, 0) else "pending"
        self._logw(_MAIN, "WARN", _L_MONITOR, f"Killing {word} tasks ({len(self._state.running)})")
        running, self._state.running = self._state.running, []
        for task in running:
            self._kill(task, thread=_MAIN)
            task.status = "ABORTED"
            self._notify_complete(task)

    # --- observers: trace rows and weblog events ---------------------------------------------------

    def _notify_complete(self, task: _Task) -> None:
        task.nf_status = task.status
        self._write_trace(task, task.status)
        self._post("process_completed", trace=self._weblog_trace(task))

    def _record(self, task: _Task, status: str) -> dict[str, Any]:
        """A TraceRecord's raw values (epoch ms, bytes, ms) for ``status``."""
        tpl = task.tpl
        rec: dict[str, Any] = {
            "task_id": task.task_id,
            "hash": task.hash,
            "native_id": task.job_id,
            "process": tpl.process,
            "tag": tpl.tag,
            "name": task.name,
            "status": status,
            "exit": EXIT_UNKNOWN,
            "submit": task.submit_ms,
            "attempt": 1,
            "workdir": task.workdir,
            "queue": self.queue,
            "cpus": tpl.cpus,
            "memory": tpl.memory_mib * 1024 * 1024,
            "container": f"job-definition://{self.job_definition}",
            "script": f"\n    {tpl.process.lower()}.sh {tpl.tag or ''}\n    ",
            "env": None,
        }
        if status == "ABORTED":
            return rec  # killed before it could report: only identity and submit time (cf. a real ABORTED row)
        if task.start_ms is not None and status != "SUBMITTED":
            rec["start"] = task.start_ms
        if status in ("COMPLETED", "FAILED"):
            rec.update(
                exit=task.exit,
                complete=task.complete_ms,
                duration=(task.complete_ms or 0) - (task.submit_ms or 0),
                realtime=task.realtime_ms,
                **{"%cpu": tpl.pct_cpu},
                peak_rss=tpl.peak_rss,
                peak_vmem=tpl.peak_vmem,
                rchar=tpl.rchar,
                wchar=tpl.wchar,
                error_action="IGNORE" if status == "FAILED" and self.error_strategy == "ignore" else None,
            )
        return rec

    def _write_trace(self, task: _Task, status: str) -> None:
        if self._trace is None or self._state.crashed:
            return
        self._trace.write(self._record(task, status))
        task.trace_status = status

    def _weblog_trace(self, task: _Task) -> dict[str, Any]:
        rec = self._record(task, task.status)
        rec.setdefault("start", 0)  # WebLogObserver sends 0 before the task starts
        rec["module"] = []
        rec.setdefault("scratch", None)
        rec.setdefault("disk", None)
        rec.setdefault("time", None)
        return {k: v for k, v in rec.items()}

    def _metadata(self, *, final: bool) -> dict[str, Any]:
        """The ``metadata`` of the ``started``/``completed`` events (``WorkflowMetadata``)."""
        counts = {s: sum(1 for t in self._state.tasks.values() if t.status == s) for s in ("COMPLETED", "FAILED", "ABORTED")}
        success = final and not self._state.aborted
        workflow: dict[str, Any] = {
            "runName": self.run_name,
            "sessionId": self.session_id,
            "start": utc_iso(self._state.t0),
            "complete": utc_iso(self._now()) if final else None,
            "duration": int((self._now() - self._state.t0) * 1000) if final else None,
            "success": success,
            "exitStatus": (0 if success else 1) if final else None,
            "errorMessage": self._state.abort_cause if final else None,
            "errorReport": self._state.abort_cause if final else None,
            "workDir": self.work_dir,
            "launchDir": str(self.launch_dir),
            "projectDir": str(self.launch_dir),
            "scriptName": self.script_name,
            "scriptFile": str(self.launch_dir / self.script_name),
            "commandLine": f"nextflow run {self.script_name} -name {self.run_name}",
            "profile": "standard",
            "resume": False,
            "container": {},
            "manifest": {"mainScript": self.script_name, "defaultBranch": "master"},
            "nextflow": {"version": self.version, "build": 5900, "timestamp": utc_iso(self._state.t0)},
            "stats": {
                "succeedCount": counts["COMPLETED"],
                "failedCount": counts["FAILED"],
                "ignoredCount": counts["FAILED"] if self.error_strategy == "ignore" else 0,
                "cachedCount": 0,
                "abortedCount": counts["ABORTED"],
            },
        }
        return {"parameters": {}, "workflow": workflow}

    # --- ground truth ----------------------------------------------------------------------------

    def _unrecorded_jobs(self, recorded: set[str | None]) -> set[str]:
        """Jobs of this run's tasks that Nextflow never learnt about (needs the emulator).

        A SubmitJob whose answer was lost (dropped connection, 5xx after the job was
        created) is retried by the SDK and creates a second job: SubmitJob has no
        idempotency token (docs/ARCHITECTURE.md §4). The first job runs with the task's work dir in its
        command and no record anywhere. Found by that work dir, among jobs created since
        this run started.
        """
        batch = getattr(self.control, "batch", None)
        if batch is None:
            return set()
        ours = {t.workdir for t in self._state.tasks.values()}
        since = self._state.t0 * 1000 - 1
        found: set[str] = set()
        for job in batch.jobs():
            if job["jobId"] in recorded or float(job.get("createdAt") or 0) < since:
                continue
            m = _WORKDIR_IN_COMMAND.search(" ".join((job.get("container") or {}).get("command") or ()))
            if m is not None and m.group(1) in ours:
                found.add(str(job["jobId"]))
        return found

    def _truth(self) -> GroundTruth:
        tasks: list[dict[str, Any]] = []
        for task in sorted(self._state.tasks.values(), key=lambda t: t.task_id):
            if task.post_abort or (task.job_id is None and task.status == "NEW"):
                continue
            tasks.append(
                {
                    "task_id": task.task_id,
                    "hash": task.hash,
                    "name": task.name,
                    "process": task.tpl.process,
                    "tag": task.tpl.tag,
                    "job_id": task.job_id,
                    "workdir": task.workdir,
                    "status": task.trace_status or task.nf_status,
                    "trace_status": task.trace_status,
                    "nf_status": task.nf_status,
                    "exit": None if task.exit in (None, EXIT_UNKNOWN) else task.exit,
                    "abandoned": task.abandoned,
                    "killed": task.killed,
                    "spot_retried": task.spot_retried,
                }
            )
        state = "alive" if self._state.crashed else ("aborted" if self._state.aborted else "completed")
        assert self._trace_path is not None
        return GroundTruth(
            run_name=self.run_name,
            session_id=self.session_id,
            behavior=self.behavior,
            version=self.version,
            launch_dir=self.launch_dir,
            work_dir=self.work_dir,
            queue=self.queue,
            trace_file=self._trace_path,
            log_file=self.launch_dir / ".nextflow.log",
            tasks=tasks,
            abandoned_job_ids={t["job_id"] for t in tasks if t["abandoned"] and t["job_id"]},
            untracked_job_ids=self._state.untracked | self._unrecorded_jobs({t["job_id"] for t in tasks}),
            killed_by_nf=set(self._state.killed),
            spot_retried_job_ids={t["job_id"] for t in tasks if t["spot_retried"] and t["job_id"]},
            run_state=state,
            abort_cause=self._state.abort_cause,
            start_time=self._state.t0,
            end_time=None if self._state.crashed else self._state.end,
            weblog_url=self.weblog_url,
        )


def _sdk_v1_text(code: str, status: int, message: str) -> str:
    """The error message part of the SDK v1 text.

    API Gateway's AuthorizerConfigurationException reached Nextflow as ``Internal server
    error`` (nextflow-io/nextflow#5516); other errors carry the service's message.
    """
    if code == "AuthorizerConfigurationException":
        return "Internal server error"
    return message or f"HTTP {status}"


def _last_attempt_reason(job: Mapping[str, Any]) -> str | None:
    attempts = job.get("attempts") or []
    if not attempts:
        return None
    reason = (attempts[-1].get("container") or {}).get("reason")
    return str(reason) if reason else None


# --- replaying the incident ------------------------------------------------------------------


@dataclass
class Incident:
    """A replayed nextflow-io/nextflow#5516: the artefacts, the emulator (still running), the truth.

    Use as a context manager (or call :meth:`close`) to stop the emulator.
    """

    launch_dir: Path
    batch: Any  # LocalBatch
    truth: GroundTruth
    endpoint_url: str
    _tmp: Any = field(default=None, repr=False)
    #: every AWS endpoint of the replay: {"batch": LocalBatch, "logs": ..., "s3": ...} (moto on loopback)
    endpoint_urls: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.batch.stop()  # and its moto backdrop
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Incident:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Emulator seconds after launch when the 500 burst starts, and how long it lasts.
INCIDENT_BURST_AT: Final = 300.0
INCIDENT_BURST_FOR: Final = 900.0


def replay_incident(
    *,
    launch_dir: str | Path | None = None,
    n_tasks: int = 40,
    speed: float | None = None,
    seed: int = 0,
    keep_running: bool = True,
    weblog_url: str | None = None,
    queue: str = "demo-queue",
    work_dir: str = "s3://batchkit-demo/work",
    start_time: float | None = None,
) -> Incident:
    """Replay the #5516 incident on a fresh LocalBatch and return it with the ground truth.

    ``start_time`` (epoch seconds, default now) is when the run starts on the emulator's
    clock: the demo starts it hours ago, so a replay on the manual clock can be brought
    to the present and then run in real time (``LocalBatch.clock.run``).

    Nextflow 24.02 runs a FASTQC -> ALIGN -> MERGE pipeline of ``n_tasks`` tasks whose
    ALIGN tasks run for hours; five minutes in, DescribeJobs answers HTTP 500
    ``AuthorizerConfigurationException`` for fifteen minutes. Nextflow aborts and
    abandons every running job: after the call those jobs are still active in the
    emulator (``incident.truth.abandoned_job_ids``), and the outage is over (the fault
    rule is removed), so a client sees them.

    ``speed=None`` uses a manual clock (deterministic, milliseconds of real time);
    a number runs the emulator that many times faster than the wall clock. With
    ``keep_running=False`` the emulator is stopped before returning (the truth and
    the artefacts stay). ``launch_dir=None`` uses a temporary directory, removed by
    ``Incident.close()``.
    """
    tmp = None
    if launch_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="batchkit-incident-")
        launch_dir = tmp.name
    from .localbatch import LocalBatch

    # The backdrop: moto serves CloudWatch Logs (the jobs' output) and S3 (the work dirs).
    lb = LocalBatch(manual_clock=speed is None, speed=speed or 1.0, seed=seed, backdrop=True, start_time=start_time)
    lb.start()
    assert lb.backdrop is not None
    aws_url = lb.backdrop.endpoint_url
    try:
        truth = _run_through_the_outage(
            lb, Path(launch_dir), n_tasks=n_tasks, seed=seed, weblog_url=weblog_url, queue=queue, work_dir=work_dir
        )
    except BaseException:
        lb.stop()
        if tmp is not None:
            tmp.cleanup()
        raise
    urls = {"batch": lb.endpoint_url, "logs": aws_url, "s3": aws_url}
    incident = Incident(Path(launch_dir), lb, truth, lb.endpoint_url, tmp, endpoint_urls=urls)
    if not keep_running:
        lb.stop()
    return incident


def _run_through_the_outage(
    lb: Any, launch_dir: Path, *, n_tasks: int, seed: int, weblog_url: str | None, queue: str, work_dir: str
) -> GroundTruth:
    """Nextflow 24.02 runs the pipeline on ``lb`` (a started LocalBatch with its backdrop)
    while DescribeJobs answers HTTP 500 for a while; returns once the run has aborted."""
    lb.create_environment(queue, vcpus=512, job_definition="nf-demo")
    t0 = lb.clock.now()
    burst = lb.faults.add(
        "DescribeJobs", "authorizer-500", window=(t0 + INCIDENT_BURST_AT, t0 + INCIDENT_BURST_AT + INCIDENT_BURST_FOR)
    )
    pipeline = Pipeline(
        n_tasks=n_tasks,
        durations={"FASTQC": 90.0, "ALIGN": 4 * 3600.0, "MERGE": 600.0},
        seed=seed,
    )
    nf = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}), launch_dir=launch_dir, work_dir=work_dir, queue=queue,
        pipeline=pipeline, behavior="24.02", weblog_url=weblog_url, batch=lb, poll_interval=10.0,
        resource_labels={"project": "incident-5516"}, seed=seed, s3=lb.backdrop.client("s3"),
    )  # fmt: skip
    truth = nf.run()
    # The outage is over by the time someone looks: Batch answers again, the orphans run on.
    lb.faults.remove(burst)
    return truth


# --- command line ---------------------------------------------------------------------------


_RUN_EXIT_HELP = """\
exit status (as Nextflow's):
  0    the run completed
  1    the run aborted, or the endpoint could not be reached
  2    usage: a bad argument
  137  a `-behavior crash` run (Nextflow killed with its jobs in flight)
  130  a second Ctrl-C (the first, like SIGTERM or SIGHUP, aborts the run as Nextflow
       does: running tasks killed, their trace rows ABORTED, exit 1)
"""


def register_cli(sub: SubParsers) -> None:
    """Register ``batchkit sim run`` (a stand-in for ``nextflow run``) on the CLI's tree."""
    run = sub.add_parser(
        "run",
        help="run a synthetic pipeline as `nextflow run` would (a simulated Nextflow)",
        description="A stand-in for `nextflow run` on (local) AWS Batch, with Nextflow's flags.",
        epilog=_RUN_EXIT_HELP,
    )
    run.add_argument("pipeline", help="pipeline (script) name, e.g. main.nf")
    run.add_argument("-name", dest="name", help="run name (default: adjective_scientist)")
    run.add_argument("-with-trace", dest="trace", nargs="?", type=cli_args.path, const=None, default=None,
                     help="trace file (default trace-<timestamp>.txt in the launch dir)")  # fmt: skip
    run.add_argument("-with-weblog", dest="weblog", type=cli_args.http_url, help="URL to POST weblog events to")
    run.add_argument("-work-dir", "-w", dest="work_dir", default="s3://batchkit-demo/work")
    run.add_argument("-behavior", dest="behavior", default="healthy", type=cli_args.choice_of(BEHAVIORS, "behavior"),
                     help=f"one of {', '.join(BEHAVIORS)} (default healthy)")  # fmt: skip
    run.add_argument("-queue", dest="queue", default="demo-queue")
    run.add_argument("-job-definition", dest="job_definition", default="nf-demo")
    run.add_argument("-n-tasks", dest="n_tasks", type=cli_args.whole(3, 100_000), default=12,
                     help="tasks of the synthetic pipeline, 3-100000: one per process at least (default 12)")
    run.add_argument("-seed", dest="seed", type=cli_args.whole(0, 2**63 - 1), default=0)
    run.add_argument("-poll-interval", dest="poll_interval", type=cli_args.number(0, 86400.0, above=True), default=5.0)
    run.add_argument("-nf-version", dest="nf_version", help="Nextflow version to imitate")
    run.add_argument("-launch-dir", dest="launch_dir", type=cli_args.writable_dir, default=Path("."),
                     help="where .nextflow.log goes (default .)")  # fmt: skip
    run.add_argument("--endpoint-url", dest="endpoint_url", type=cli_args.endpoint_url, help="Batch endpoint (a LocalBatch)")
    run.add_argument("--region", dest="region", default="us-east-1", type=cli_args.region)
    run.set_defaults(run=run_cli)


def main(argv: list[str] | None = None) -> int:
    """``python -m batchkit.sim.nextflow run NAME -name X -with-trace F -with-weblog URL -work-dir S3``.

    The same as ``batchkit sim run ...`` (the arguments are the CLI's, batchkit.cli).
    Exit status as Nextflow's: 0 completed, 1 aborted; a ``crash`` run exits 137 (killed).
    """
    from batchkit.cli import main as cli_main

    return cli_main(["sim", *(sys.argv[1:] if argv is None else argv)])


def run_cli(args: argparse.Namespace) -> int:
    """``batchkit sim run``: one simulated ``nextflow run`` against the endpoint."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=args.region)
    creds = {}
    if session.get_credentials() is None:
        creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    client = session.client("batch", endpoint_url=args.endpoint_url,
                            config=Config(retries={"total_max_attempts": 1}), **creds)
    control: Control | None = AdminControl.probe(args.endpoint_url) if args.endpoint_url else None
    try:
        nf = SimulatedNextflow(
            client,
            launch_dir=args.launch_dir,
            work_dir=args.work_dir,
            queue=args.queue,
            job_definition=args.job_definition,
            pipeline=Pipeline(n_tasks=args.n_tasks, seed=args.seed),
            behavior=args.behavior,
            run_name=args.name,
            version=args.nf_version,
            weblog_url=args.weblog,
            trace_file=args.trace,
            poll_interval=args.poll_interval,
            control=control,
            script_name=args.pipeline,
            seed=args.seed,
            console=sys.stdout,
        )
    except ValueError as e:
        print(f"batchkit sim run: error: {cli_args.message(str(e))}", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    with contextlib.suppress(KeyboardInterrupt), _abort_on_signals(nf):
        try:
            truth = nf.run()
        except (AwsCallFailed, BotoCoreError, ClientError) as e:
            print(f"batchkit sim run: error: {cli_args.message(str(e))}", file=sys.stderr)
            return 1
        print(f"{truth.run_name}: {truth.run_state}" + (f" -- {truth.abort_cause}" if truth.abort_cause else ""),
              flush=True)
        if truth.run_state == "alive":
            return 137
        return 0 if truth.run_state == "completed" else 1
    return 130


@contextlib.contextmanager
def _abort_on_signals(nf: SimulatedNextflow) -> Iterator[None]:
    """SIGTERM and SIGHUP abort the run, as does the first Ctrl-C; a second Ctrl-C stops at once.

    Nextflow's ``Session.registerSignalHandlers`` (nextflow-io/nextflow, ``Session.groovy``)
    does the same, so a launcher's ``stop()`` (SIGTERM) sees Nextflow kill its running jobs
    and write their ABORTED trace rows. Handlers are only installed on the main thread
    (Python allows no other) and are restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupts = 0

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            raise KeyboardInterrupt
        nf.signal_abort(signal.Signals(signum).name)

    def on_signal(signum: int, _frame: Any) -> None:
        nf.signal_abort(signal.Signals(signum).name)

    handlers = {signal.SIGTERM: on_signal, signal.SIGHUP: on_signal, signal.SIGINT: on_interrupt}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
