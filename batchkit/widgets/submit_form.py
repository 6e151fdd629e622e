"""A form to submit AWS Batch jobs from the notebook, and a live table of what it started.

Thin over pure parts: :func:`batchkit.submit.validate_submission` checks every field
before anything is sent (a bad value never reaches the API), ``preview_html`` shows
the exact SubmitJob request, and the submission goes through
``BatchClient.submit_job`` (tagged with a unique id, so a retry after an ambiguous
failure never creates a second job — SubmitJob has no idempotency token, docs/ARCHITECTURE.md §4).

Every submission and kill is written to the ledger before and after the call, and the
form reloads its submissions from the ledger, so they are still tracked after a
kernel restart. A kill goes through ``batchkit.kills.KillExecutor``, the one kill
executor: it claims the job in the ledger before sending, so this form, another form or
kernel, and ``batchkit kill`` never both send it nor write two final audit rows.

After an ambiguous failure (ApiUnavailableError: "it may have been applied") the
ledger intent stays pending and the form keeps that submission id for the same
request: the next click first looks for a job carrying the id's tag and only sends
SubmitJob again if there is none. A definite refusal gets a final "error" row and
the next click a fresh id. Widgets are only changed under the form's lock, and no
network call is made while holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import ipywidgets as widgets

from batchkit._time import from_epoch_ms
from batchkit.errors import ApiUnavailableError, BatchkitError
from batchkit.kills import KillExecutor, KillStatus
from batchkit.ledger import fingerprint_matches
from batchkit.schema import JOB_ACTIVE, SUBMISSION_TAG, JobOutcome, KillJob
from batchkit.submit import FIELDS, SubmitRequest, Validation, validate_submission

log = logging.getLogger(__name__)

#: The ledger's run name for jobs started from the form.
FORM_RUN: Final = "submit-form"
#: Seconds a kill from the form may take as a whole when the client names no deadline.
DEFAULT_KILL_DEADLINE: Final = 300.0
KILL_REASON: Final = "batchkit: killed from the submit form"

_LABELS: Final[dict[str, str]] = {
    "job_name": "Job name",
    "job_queue": "Job queue",
    "job_definition": "Job definition",
    "command": "Command",
    "vcpus": "vCPUs",
    "memory": "Memory (MiB)",
    "environment": "Environment (KEY=VALUE per line)",
    "array_size": "Array size",
    "retry_attempts": "Retry attempts",
    "timeout": "Timeout (s)",
    "tags": "Tags (KEY=VALUE per line)",
}

FORM_CSS: Final = """
<style>
.bk-submit-form .bk-field-error { color: #b42318; font-size: 12px; min-height: 0; }
.bk-submit-form .bk-preview pre { background: #f5f7fa; border: 1px solid #dfe3e8; border-radius: 6px;
  padding: 8px; font-size: 12px; max-height: 260px; overflow: auto; }
.bk-submit-form table.bk-subs { border-collapse: collapse; font-size: 12px; }
.bk-submit-form table.bk-subs td, .bk-submit-form table.bk-subs th { padding: 3px 8px;
  border-bottom: 1px solid #e4e7eb; text-align: left; }
.bk-submit-form .bk-state-FAILED { color: #b42318; font-weight: 600; }
.bk-submit-form .bk-state-SUCCEEDED { color: #067647; font-weight: 600; }
.bk-submit-form .bk-state-RUNNING { color: #175cd3; font-weight: 600; }
</style>
"""


# --- pure rendering ----------------------------------------------------------------------


def preview_html(request: SubmitRequest | None, submission_id: str, errors: Mapping[str, str]) -> str:
    """The exact SubmitJob request as JSON (with batchkit's tag), or what is wrong."""
    if request is None:
        # Each message names its field already ("vCPUs must be ..."): no label in front.
        items = "".join(f"<li>{html.escape(v)}</li>" for v in errors.values())
        return f"<div class='bk-preview'><b>Not ready to submit:</b><ul>{items}</ul></div>"
    kwargs = request.to_kwargs()
    kwargs["tags"] = {**kwargs.get("tags", {}), SUBMISSION_TAG: submission_id}
    text = json.dumps(kwargs, indent=2)
    return f"<div class='bk-preview'><b>SubmitJob request</b><pre>{html.escape(text)}</pre></div>"


def request_key(params: Mapping[str, Any]) -> str:
    """A SubmitJob request (``to_kwargs()``, without the submission id) as a stable key.

    Environment values are masked as the ledger stores them (names only), so a request
    read back from the ledger after a restart has the key the form computes now; the
    values are told apart by the ledger's salted fingerprint (``fingerprint_matches``).
    """
    from batchkit.ledger import mask_environment

    return json.dumps(
        mask_environment({k: v for k, v in params.items() if k != "submissionId"}), sort_keys=True, default=str
    )


def unknown_row(job_name: str, submission_id: str) -> dict[str, str]:
    """A table row for a submission whose outcome is unknown (ambiguous failure, pending)."""
    return {
        "job_id": "",
        "job_name": job_name,
        "status": f"UNKNOWN (check tag {SUBMISSION_TAG}={submission_id})",
        "attempts": "",
        "created": "",
        "started": "",
        "stopped": "",
        "log_stream": "",
        "reason": "may have been applied: Submit the same request again to re-drive it (not sent twice)",
    }


def _clock_text(epoch_ms: Any) -> str:
    """``HH:MM:SS`` UTC of one of Batch's epoch-millisecond times; blank when unset."""
    when = from_epoch_ms(epoch_ms)
    return "" if when is None else when.strftime("%H:%M:%S")


def job_row(submission: Mapping[str, Any], job: Mapping[str, Any] | None) -> dict[str, str]:
    """One live-table row from a submission and its last DescribeJobs answer (pure)."""
    job = job or {}
    attempts = job.get("attempts") or []
    status = str(job.get("status") or submission.get("status") or "SUBMITTED")
    tries = len(attempts) + (1 if status in {"STARTING", "RUNNING"} else 0)
    container = job.get("container") or {}
    return {
        "job_id": str(submission.get("job_id") or ""),
        "job_name": str(submission.get("job_name") or job.get("jobName") or ""),
        "status": status,
        "attempts": str(tries),
        "created": _clock_text(job.get("createdAt")),
        "started": _clock_text(job.get("startedAt")),
        "stopped": _clock_text(job.get("stoppedAt")),
        "log_stream": str(container.get("logStreamName") or ""),
        "reason": str(job.get("statusReason") or ""),
    }


def table_html(rows: Sequence[Mapping[str, str]]) -> str:
    if not rows:
        return "<i>No jobs submitted from this form yet.</i>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("job", "job id", "state", "attempts", "created", "started", "stopped", "log stream", "reason")
    )
    body = []
    for r in rows:
        e = {k: html.escape(v) for k, v in r.items()}
        state_class = html.escape(r["status"].split(" ", 1)[0])
        body.append(
            f"<tr class='bk-sub-row' data-job-id='{e['job_id']}'><td>{e['job_name']}</td><td><code>{e['job_id']}</code></td>"
            f"<td class='bk-state-{state_class}'>{e['status']}</td><td>{e['attempts']}</td><td>{e['created']}</td>"
            f"<td>{e['started']}</td><td>{e['stopped']}</td><td>{e['log_stream']}</td><td>{e['reason']}</td></tr>"
        )
    return f"<table class='bk-subs'><tr>{head}</tr>{''.join(body)}</table>"


# --- the widget ----------------------------------------------------------------------------


class SubmitForm(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Submit Batch jobs, validated first; track them live; kill them with one click.

    >>> form = SubmitForm(BatchClient(region="eu-west-1"))   # loads queues and job definitions
    >>> form                                                   # fill in, Submit
    >>> form.refresh()                                         # or let it refresh itself
    """

    def __init__(
        self,
        client: Any,
        *,
        ledger: Any = None,
        interval: float = 5.0,
        autostart: bool = True,
        defaults: Mapping[str, str] | None = None,
        kill_deadline: float | None = None,
        **kwargs: Any,
    ) -> None:
        from batchkit.ledger import Ledger

        self.client = client
        if ledger is None:
            ledger = Path(".batchkit") / "ledger.sqlite"
        self.ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self.interval = interval
        #: seconds a kill may take as a whole (None: the client's ``deadline``)
        self.kill_deadline = kill_deadline
        self.queues: list[str] = []
        self.job_definitions: list[str] = []
        #: job id -> {"job_id", "job_name", "submission_id", "status"}
        self.submissions: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # job id -> last DescribeJobs answer
        self.last_error: str | None = None
        #: The id a request not seen before gets; rotated once it has a final result.
        self._next_id = str(uuid.uuid4())
        #: The id the preview shows (the one the next click takes).
        self._submission_id = self._next_id
        #: submission id -> (request_key, environment fingerprint) of intents without a
        #: result (they may have been applied): the same request re-drives that id.
        self._pending: dict[str, tuple[str, str | None]] = {}
        #: submission id -> job name of those intents, shown as UNKNOWN rows.
        self._unknown: dict[str, str] = {}
        #: Jobs whose kill has a final good result in the ledger / kills in flight.
        self._killed: set[str] = set()
        self._killing: set[str] = set()
        self._submitting = False
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

        rows = self._field_rows()
        self._build_controls()
        W = widgets
        super().__init__(
            children=[
                W.HTML(FORM_CSS, layout=W.Layout(display="none")),
                W.HTML("<h3>Submit an AWS Batch job</h3>"),
                *rows,
                self.preview,
                W.HBox([self.submit_button, self.status]),
                W.HTML("<h4>Jobs started here</h4>"),
                self.table,
                self.kill_buttons,
            ],
            **kwargs,
        )
        self.add_class("bk-submit-form")
        self._first_load(defaults or {})
        if autostart:
            self.start()

    def _field_rows(self) -> list[Any]:
        """One labelled input per submission field, each with its error line below it."""
        W = widgets
        self.inputs: dict[str, Any] = {
            "job_name": W.Text(placeholder="my-debug-job"),
            "job_queue": W.Dropdown(options=[]),
            "job_definition": W.Dropdown(options=[]),
            "command": W.Text(placeholder="bash -c 'echo hello; sleep 60'"),
            "vcpus": W.Text(value="1"),
            "memory": W.Text(value="2048"),
            "environment": W.Textarea(rows=2),
            "array_size": W.Text(placeholder="blank: a single job"),
            "retry_attempts": W.Text(placeholder="1-10"),
            "timeout": W.Text(placeholder="seconds, >= 60"),
            "tags": W.Textarea(rows=2),
        }
        # Plain-text labels: a message is text, not markup (no entities to show, nothing to escape).
        self.messages: dict[str, Any] = {name: W.Label() for name in FIELDS}
        rows = []
        for name in FIELDS:
            widget = self.inputs[name]
            widget.add_class(f"bk-input-{name}")
            widget.observe(self._changed, names="value")
            self.messages[name].add_class("bk-field-error")
            label = W.HTML(f"<b>{html.escape(_LABELS[name])}</b>", layout=W.Layout(width="230px"))
            rows.append(W.HBox([label, W.VBox([widget, self.messages[name]])]))
        return rows

    def _build_controls(self) -> None:
        """The preview, the Submit button with its status line, and the table of jobs."""
        W = widgets
        self.preview = W.HTML()
        self.submit_button = W.Button(description="Submit", button_style="primary", icon="paper-plane")
        self.submit_button.add_class("bk-submit")
        self.submit_button.on_click(self._submit_clicked)
        self.status = W.HTML()
        self.status.add_class("bk-submit-status")
        self.table = W.HTML()
        self.kill_buttons = W.VBox()

    def _first_load(self, defaults: Mapping[str, str]) -> None:
        """The ledger's earlier submissions, the account's choices, then the defaults."""
        self._load_ledger()
        try:
            self.load_choices()
        except BatchkitError as exc:
            self._say(f"Could not list queues/job definitions: {exc}", error=True)
        for name, value in defaults.items():
            if name in self.inputs:
                self.inputs[name].value = value
        self._changed()
        self._render_table()

    # --- explicit network calls ---------------------------------------------------------------

    def load_choices(self) -> None:
        """Fill the queue and job-definition pickers from the account (calls AWS)."""
        queues = self.client.describe_job_queues()
        defs = self.client.describe_job_definitions()
        self.queues = sorted({q["jobQueueName"] for q in queues if q.get("state", "ENABLED") == "ENABLED"})
        self.job_definitions = sorted({d["jobDefinitionName"] for d in defs})
        for name, options in (("job_queue", self.queues), ("job_definition", self.job_definitions)):
            picker = self.inputs[name]
            current = picker.value
            picker.options = options
            # ipywidgets leaves the value empty when the options change: pick one.
            picker.value = current if current in options else (options[0] if options else None)

    def submit(self) -> dict[str, Any] | None:
        """Validate and submit (blocking); the answer, or None with messages shown."""
        claimed = self._claim()
        if claimed is None:
            return None
        return self._send_submission(*claimed)

    def _claim(self) -> tuple[SubmitRequest, str] | None:
        """Under the lock: validate, take the submission id, mark a submit in flight.

        None when the form is invalid or a submission is already in flight (a double
        click: the second click is queued before the front end sees the button disabled).
        """
        with self._lock:
            if self._submitting:
                return None
            validation = self.validate()
            if validation.request is None:
                self._say("Fix the fields marked in red; nothing was sent.", error=True)
                return None
            self._submitting = True
            self.submit_button.disabled = True
            return validation.request, self._id_for(validation.request)

    def _send_submission(self, request: SubmitRequest, sid: str) -> dict[str, Any] | None:
        """SubmitJob for a claimed (request, id); the network calls run without the lock."""
        try:
            return self._send_claimed(request, sid)
        finally:
            with self._lock:
                self._submitting = False
                self._changed()

    def _send_claimed(self, request: SubmitRequest, sid: str) -> dict[str, Any] | None:
        params = request.to_kwargs()
        key = request_key(params)
        with self._lock:
            redrive = sid in self._pending
        fingerprint = self.ledger.record_submission_intent(sid, {**params, "submissionId": sid})
        try:
            found = self._find_applied(request, sid) if redrive else None
            answer: dict[str, Any] = found if found is not None else self.client.submit_job(
                job_name=params.pop("jobName"),
                job_queue=params.pop("jobQueue"),
                job_definition=params.pop("jobDefinition"),
                submission_id=sid,
                **params,
            )
        except BatchkitError as exc:
            if isinstance(exc, ApiUnavailableError):
                self._ambiguous(request, (key, fingerprint), sid, exc)
                return None
            # A definite refusal (ClientException, access denied...): nothing was created.
            # Final "error" row; the next click gets a fresh id (a used id cannot be reused).
            self.ledger.record_submission_result(sid, None, "error", str(exc))
            with self._lock:
                self._forget_pending(sid)
                self._say(f"Submission of {request.job_name} failed, nothing was created: {exc}", error=True)
            return None
        except Exception as exc:
            # Not ours (a bug, a dropped socket botocore did not wrap): the request may have
            # been sent, so it is treated as ambiguous rather than risking a second job.
            log.exception("batchkit submit form: submission %s failed unexpectedly", sid)
            self._ambiguous(request, (key, fingerprint), sid, exc)
            return None
        job_id = str(answer["jobId"])
        self.ledger.record_submission_result(sid, job_id, "submitted", None)
        with self._lock:
            self._forget_pending(sid)
            self.submissions[job_id] = {
                "job_id": job_id,
                "job_name": request.job_name,
                "submission_id": sid,
                "status": "SUBMITTED",
            }
            extra = " (found after an ambiguous failure: not sent twice)" if answer.get("deduplicated") else ""
            self._say(f"Submitted {html.escape(request.job_name)} as <code>{html.escape(job_id)}</code>{extra}")
            self._render_table()
        return answer

    def _ambiguous(self, request: SubmitRequest, key: tuple[str, str | None], sid: str, exc: Exception) -> None:
        """The job may exist: leave the ledger intent pending and keep the id for this request."""
        with self._lock:
            self._pending[sid] = key
            if sid == self._next_id:
                # The id now belongs to this request (a re-click re-drives it); any other
                # request gets a fresh one, or two requests would share one job's tag.
                self._next_id = str(uuid.uuid4())
            self._unknown[sid] = request.job_name
            self._say(
                f"Submission of {request.job_name} may or may not have been applied ({exc}). "
                f"Click Submit again to re-drive it: batchkit looks for tag {SUBMISSION_TAG}={sid} "
                "first, so it is not sent twice.",
                error=True,
            )
            self._render_table()

    def _forget_pending(self, sid: str) -> None:
        self._pending.pop(sid, None)
        self._unknown.pop(sid, None)
        if sid == self._next_id:
            # A new id for the next submission: the same id again would be deduplicated.
            self._next_id = str(uuid.uuid4())

    def _find_applied(self, request: SubmitRequest, sid: str) -> dict[str, Any] | None:
        """The job an earlier, ambiguous try of ``sid`` created, if any (calls AWS).

        ``BatchClient.submit_job`` only looks for its tag after an ambiguous failure
        within the same call, so a re-drive from a later click looks here first: ListJobs
        by exact name, then DescribeJobs for the tag (ListJobs summaries carry no tags).
        """
        summaries = self.client.list_jobs(request.job_queue, name_prefix=request.job_name)
        ids = [str(s["jobId"]) for s in summaries if s.get("jobName") == request.job_name and s.get("jobId")]
        if not ids:
            return None
        for job_id, job in self.client.describe_jobs(ids).jobs.items():
            if (job.get("tags") or {}).get(SUBMISSION_TAG) == sid:
                return {"jobId": job_id, "jobName": request.job_name, "jobArn": job.get("jobArn"),
                        "submissionId": sid, "attempts": 0, "deduplicated": True}
        return None

    def refresh(self) -> None:
        """Describe the jobs started here (calls AWS) and redraw the table."""
        with self._lock:  # a submit thread may add to self.submissions meanwhile
            ids = [i for i in self.submissions if self._status(i) not in {"SUCCEEDED", "FAILED"}]
        if ids:
            result = self.client.describe_jobs(ids)
            with self._lock:
                self.jobs.update(result.jobs)
                for jid in result.jobs:
                    self.submissions[jid]["status"] = result.jobs[jid].get("status")
        with self._lock:
            self._render_table()

    def kill(self, job_id: str) -> JobOutcome:
        """Terminate one job started here through the kill executor (``batchkit.kills``), once.

        The executor claims the job in the ledger before it sends anything, so a double
        click, a second form or kernel, or a concurrent ``batchkit kill`` of the same job
        sends one TerminateJob(s) between them and leaves one final audit row: a job
        already killed comes back ``already_done`` without a call; a job another kill holds
        is waited for and its result adopted. What is not final by the deadline (the
        client's ``deadline``, or ``kill_deadline``) stays pending in the ledger, and the
        next click finishes the same audit row.
        """
        with self._lock:
            sub = self.submissions.get(job_id)
            if sub is None:
                raise BatchkitError(f"job {job_id} was not submitted from this form")
            if job_id in self._killing:
                return JobOutcome(job_id, "already_done", self._status(job_id) or None,
                                  message="a kill of this job is already in flight")
            if job_id in self._killed:
                return JobOutcome(job_id, "already_done", self._status(job_id) or None,
                                  message=f"already killed (see the kill audit in {self.ledger.path})")
            self._killing.add(job_id)
            self._render_table()
        try:
            refused = self._not_ours(job_id, sub.get("submission_id"))
            outcome = refused or self._run_kill(KillJob(job_id=job_id, verdict="manual", reason=KILL_REASON,
                                                        task_name=sub["job_name"]))
        finally:
            with self._lock:
                self._killing.discard(job_id)
        with self._lock:
            if outcome.ok:
                self._killed.add(job_id)
                self._say(f"Kill of <code>{html.escape(job_id)}</code>: {html.escape(outcome.outcome)}"
                          + (f" ({html.escape(outcome.message)})" if outcome.outcome == "already_done" else ""))
            else:
                # The ledger keeps the row pending: the next click completes the same audit row.
                detail = f"{outcome.error_code}: {outcome.message}" if outcome.error_code else outcome.message
                self._say(f"Kill of {job_id} failed ({detail}); click Kill again to retry", error=True)
            self._render_table()  # a failed kill gets its Kill button back (re-drives the row)
        self.refresh()
        return outcome

    def _not_ours(self, job_id: str, submission_id: Any) -> JobOutcome | None:
        """An error outcome when the job does not carry this form's submission tag (calls AWS).

        The form's list comes from the ledger, a file anyone can edit: every job the form
        submits carries ``SUBMISSION_TAG`` = its submission id, so a job without it was not
        submitted here and is not killed from here (issue #15). A job Batch no longer has
        goes on to the kill, which records it ``not_found``.
        """
        answer = self.client.describe_jobs([job_id])
        job = answer.jobs.get(job_id)
        if job is None and job_id not in set(answer.missing):
            return JobOutcome(job_id, "error", message="could not describe the job to check it is this form's; try again")
        if job is None:
            return None
        tag = (job.get("tags") or {}).get(SUBMISSION_TAG)
        if submission_id and tag == submission_id:
            return None
        return JobOutcome(
            job_id, "error", error_code="NotThisFormsJob",
            message=f"job {job_id} does not carry this form's tag {SUBMISSION_TAG}={submission_id}: "
            "the ledger's record of it is not this form's submission, so it is not killed from here",
        )

    def _run_kill(self, job: KillJob) -> JobOutcome:
        """One ``KillExecutor`` run for ``job`` (calls AWS); its outcome for this job."""
        deadline = self.kill_deadline
        if deadline is None:
            deadline = float(getattr(self.client, "deadline", DEFAULT_KILL_DEADLINE))
        remaining = getattr(self.client, "remaining", None)
        left = remaining() if callable(remaining) else None
        if left is not None:
            deadline = min(deadline, left)  # the client's whole-command deadline (give_up_after)

        def progress(status: KillStatus) -> None:
            if status.stage in ("backing off", "following"):
                self._say(f"Killing {job.task_name or job.job_id}: {status.line()}")

        executor = KillExecutor(
            self.client, self.ledger, run_name=FORM_RUN, deadline=deadline,
            clock=getattr(self.client, "clock", None), sleep=getattr(self.client, "sleep", None),
            on_status=progress,
        )
        report = executor.run([job])
        for done, outcome, _status in report.outcomes:
            if done.job_id == job.job_id:
                return outcome
        if any(skipped.job_id == job.job_id for skipped in report.skipped):
            return JobOutcome(job.job_id, "already_done", self._status(job.job_id) or None,
                              message=f"already killed (see the kill audit in {self.ledger.path})")
        if report.error is not None:  # credentials died: the row stays pending, the hint is shown
            return JobOutcome(job.job_id, "error", error_code=getattr(report.error, "code", None), message=str(report.error))
        why = next((w for pending, w in report.pending if pending.job_id == job.job_id), "no answer")
        return JobOutcome(job.job_id, "error", message=why)

    # --- pure-ish helpers ---------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        return {name: str(self.inputs[name].value or "") for name in FIELDS}

    def validate(self) -> Validation:
        validation = validate_submission(
            self.values(),
            queues=self.queues or None,
            job_definitions=self.job_definitions or None,
        )
        for name in FIELDS:
            message = validation.errors.get(name, "")
            self.messages[name].value = message
        return validation

    def _id_for(self, request: SubmitRequest) -> str:
        """A pending (maybe applied) id for this exact request, else the next fresh id."""
        params = request.to_kwargs()
        key = request_key(params)
        for sid, (pending_key, fingerprint) in self._pending.items():
            # Same request with the environment masked; then the same values, by their
            # salted digest (the ledger never holds the values themselves).
            if pending_key == key and fingerprint_matches(params, fingerprint):
                return sid
        return self._next_id

    def _changed(self, _change: Any = None) -> None:
        with self._lock:
            validation = self.validate()
            if validation.request is not None:
                self._submission_id = self._id_for(validation.request)
            self.preview.value = preview_html(validation.request, self._submission_id, validation.errors)
            self.submit_button.disabled = validation.request is None or self._submitting

    def _status(self, job_id: str) -> str:
        return str(self.submissions.get(job_id, {}).get("status") or "")

    def _say(self, text: str, *, error: bool = False) -> None:
        with self._lock:
            self.last_error = text if error else None
            colour = "#b42318" if error else "#1f2933"
            self.status.value = f"<span style='color:{colour}'>{text if not error else html.escape(text)}</span>"

    def _load_ledger(self) -> None:
        """Jobs submitted before a kernel restart come back from the ledger."""
        for sub in self.ledger.submissions():
            job_id = sub.get("job_id")
            request = sub.get("request") or {}
            if isinstance(request, str):
                with contextlib.suppress(ValueError):
                    request = json.loads(request)
            name = request.get("jobName", "") if isinstance(request, dict) else ""
            if sub.get("finished_at") is None and sub.get("submission_id"):
                # Pending: the kernel died (or the API was down) mid-SubmitJob; it may exist.
                # Submitting the same request again re-drives this id (looked up first).
                sid = str(sub["submission_id"])
                self._unknown[sid] = name
                if isinstance(request, dict):
                    fingerprint = sub.get("env_fingerprint")
                    self._pending[sid] = (request_key(request), str(fingerprint) if fingerprint else None)
                continue
            if not job_id:
                continue
            self.submissions[str(job_id)] = {
                "job_id": str(job_id),
                "job_name": name,
                "submission_id": sub.get("submission_id"),
                "status": "SUBMITTED",
            }
        self._killed = self.ledger.killed_job_ids() & set(self.submissions)

    def _render_table(self) -> None:
        with self._lock:
            rows = [job_row(sub, self.jobs.get(jid)) for jid, sub in self.submissions.items()]
            rows += [unknown_row(name, sid) for sid, name in self._unknown.items()]
            self.table.value = table_html(rows)
            buttons = []
            for row in rows:
                if row["status"] not in JOB_ACTIVE:
                    continue
                job_id = row["job_id"]
                # Batch may still say RUNNING for a while after TerminateJob: a killed job
                # keeps a disabled button instead of a fresh, clickable one.
                done = job_id in self._killed
                busy = job_id in self._killing
                label = "Killed" if done else "Killing" if busy else "Kill"
                button = widgets.Button(
                    description=f"{label} {row['job_name']}",
                    button_style="" if done else "danger",
                    icon="check" if done else "times",
                    disabled=done or busy,
                )
                button.add_class("bk-sub-kill")
                button.on_click(self._kill_clicked(job_id))
                buttons.append(button)
            self.kill_buttons.children = buttons

    # --- clicks and the refresh loop --------------------------------------------------------------

    def _kill_clicked(self, job_id: str) -> Any:
        def clicked(button: Any) -> None:
            with self._lock:
                button.disabled = True  # kill() itself skips a job killed or being killed
            self._in_thread(lambda: self.kill(job_id))

        return clicked

    def _submit_clicked(self, _button: Any) -> None:
        # The request and its submission id are taken now, at click time, and a click
        # while a submission is in flight is ignored: a double click queued before the
        # front end saw the button disabled must not send a second job under a new id.
        claimed = self._claim()
        if claimed is None:
            return
        self._say("Submitting…")
        self._in_thread(lambda: self._send_submission(*claimed))

    def _in_thread(self, work: Any) -> None:
        # The client may retry through an outage for minutes: never block the kernel.
        def run() -> None:
            try:
                work()
            except Exception as exc:  # shown, never raised into ipywidgets' callback machinery
                log.exception("batchkit submit form: action failed")
                self._say(f"{type(exc).__name__}: {exc}", error=True)
            finally:
                self._changed()

        thread = threading.Thread(target=run, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for clicks still being carried out (tests, scripts)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def start(self) -> None:
        """Refresh every ``interval`` seconds on the running event loop (a notebook)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a script): call refresh() yourself
        if self._task is None:
            self._task = loop.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._closed:
            try:
                await asyncio.to_thread(self.refresh)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Any failure (not only ours: a malformed answer, a bug) is shown and the
                # loop goes on; one bad refresh must not stop live tracking for good.
                if not isinstance(exc, BatchkitError):
                    log.exception("batchkit submit form: refresh failed")
                self._say(f"Refresh failed (will retry in {self.interval:g}s): {exc}", error=True)
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        super().close()
