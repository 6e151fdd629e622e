"""LocalBatch: a local AWS Batch that real boto3 and the AWS CLI talk to over HTTP.

Use it from Python::

    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("demo-queue", vcpus=16)
        batch = lb.client()                       # a real boto3 "batch" client
        job = batch.submit_job(jobName="a", jobQueue="demo-queue", jobDefinition="nf-demo",
                               containerOverrides={"command": ["bash", "-c", "sleep 30"]})
        lb.advance(5)                             # emulator time; nothing sleeps
        batch.describe_jobs(jobs=[job["jobId"]])  # RUNNING

or standalone (``batchkit sim serve --port 4747 --speed 60``), then point any SDK at
it: ``AWS_ENDPOINT_URL_BATCH=http://127.0.0.1:4747`` (or ``--endpoint-url``) and dummy
credentials (``AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test``).

Laid out the way moto lays out a service: ``_emu_model`` (the REST-JSON wire protocol,
routed and validated with botocore's own service model), ``_emu_resources`` (compute
environments, queues, jobs, and the rules AWS applies to them), ``_emu_scheduler`` (the
lifecycle clock and placement), ``_emu_engine`` (one backend method per API operation),
``_emu_responses`` (a request in, an answer out, faults injected), ``_emu_http`` (the
transport: framing, AWS-style JSON for every malformed request), ``_emu_faults`` (the
fault plan), ``_emu_logs`` (job output to CloudWatch Logs served by moto).

Time: a manual clock moves only with ``advance``. A sped-up clock (``speed=N``) runs its
timestamps N times faster than the wall clock in-process (read "now" from
``lb.clock.now()``; every answer's ``Date`` header carries it); with
``wall_timestamps=True`` (what ``batchkit sim serve`` uses) timestamps stay on the wall
clock and every delay and job duration is N times shorter instead, so an outside client's
own "now" agrees with the emulator's.

Job output (``LocalBatch(backdrop=True)``, or ``logs_endpoint=URL`` of a CloudWatch Logs
service): when an attempt reaches RUNNING it gets the stream
``<jobDefinitionName>/default/<ecsTaskId>`` in the log group ``/aws/batch/job``, shown as
``container.logStreamName``, and the lines it prints are written there: the ``echo`` lines
of its command, or what ``set_job_behavior(id, output=[...])`` /
``POST /_admin/jobs/<id>/behavior {"output": [...]}`` gave. moto serves the logs (and S3) on
``lb.backdrop.endpoint_url``; ``lb.logs_client()`` reads them. The lifecycle runs lazily,
so a stream is written when the emulator next answers a call after the job started.

Test hooks beyond the API (all in-process, no HTTP): ``advance(s)`` on a manual clock,
``set_job_behavior(id, duration=, exit_code=)``, ``interrupt(id)`` (spot reclaim now),
``spot_interruption_rate``, ``submit_jobs(n, queue=...)`` (seed thousands of jobs fast),
``forget(id)`` and ``retention`` (jobs that vanish or age out, nextflow-io/nextflow#7301),
``unsupported_operations`` (answer 404 UnknownOperationException, e.g. for TerminateJobs),
``terminate_delay`` (a terminated STARTING/RUNNING job stays so for N s, as in real Batch),
``jobs(status)`` / ``describe_job(id)``, ``load_state`` / ``dump_state``, ``calls``.

Fault kinds (``lb.faults.add(operation, kind, rate=, count=, window=, latency=)``;
``operation`` is a Batch operation name such as ``"DescribeJobs"``, or None for all):
``authorizer-500`` (HTTP 500 ``AuthorizerConfigurationException``, nextflow-io/nextflow#4709),
``server-500`` (500 ``ServerException``), ``throttle-429`` (429 ``TooManyRequestsException``),
``latency`` (adds ``latency`` seconds of real time), ``drop`` (the connection is closed
without an answer; nothing applied), ``reset`` (likewise, with a TCP RST), ``empty`` (200 with an empty answer, alternately
``{}`` and ``{"jobs": []}``; ``empty-body`` / ``empty-list`` pick one), ``applied-lost``
(applied, then the connection is dropped), ``applied-500`` (applied, then 500),
``job-errors`` (TerminateJobs/CancelJobs answer 200 with each id in ``errors`` with
probability ``rate``, not applied). ``rate`` is a probability per matching call (seeded),
``count`` a burst of the next N matching calls, ``window=(t0, t1)`` an outage on the
emulator clock. ``lb.faults.counts[(operation, kind)]`` counts what fired.

Note for test clients: botocore's ``retries={"max_attempts": 1}`` still retries once;
``retries={"total_max_attempts": 1}`` turns retries off.

Simplifications, on purpose: TerminateJob moves a job to FAILED at once unless
``terminate_delay`` is set (real Batch takes a few seconds); a queue's RUNNABLE jobs start
in FIFO order (no fair-share scheduling policies, no ``schedulingPriority``), each on the
first of the queue's compute environments (in ``computeEnvironmentOrder``) with vCPUs
free, queues sharing an environment served by priority; capacity is vCPUs only (no memory,
GPUs or instance types); an array parent stays PENDING until its children end; spot
interruptions (``interrupt``, ``spot_interruption_rate``) apply to any compute environment.

Admin endpoint, on the same server (JSON in, JSON out; errors are
``{"error": "..."}`` with HTTP 400/404):

==========================================  ===================================================
``GET    /_admin/health``                   ``{"ok": true, "now": <emulator epoch s>}``
``GET    /_admin/clock``                    ``{"now", "manual", "speed", "wall"}``
``POST   /_admin/clock/advance``            ``{"seconds": 90}`` (manual clock only)
``GET    /_admin/faults``                   ``{"rules": [...], "counts": [...]}``
``POST   /_admin/faults``                   ``FaultPlan.add`` args: ``{"operation": "DescribeJobs",
                                            "kind": "authorizer-500", "rate": 0.3, "count": null,
                                            "window": [t0, t1], "latency": 0}`` -> ``{"id": ...}``
``DELETE /_admin/faults``                   remove every rule
``DELETE /_admin/faults/<id>``              remove one rule
``GET    /_admin/state``                    ``LocalBatch.dump_state()``
``POST   /_admin/state``                    ``LocalBatch.load_state(body)`` -> ``{"loaded": n}``
                                            (optional ``"duration"``: see ``load_state``)
``POST   /_admin/environment``              ``create_environment`` kwargs, e.g. ``{"queue": "q"}``
``POST   /_admin/jobs/<id>/interrupt``      spot reclaim now
``POST   /_admin/jobs/<id>/behavior``       ``{"duration": 30, "exit_code": 1}``
``POST   /_admin/jobs/<id>/forget``         the job vanishes from every answer
``POST   /_admin/spot``                     ``{"rate": 0.2}``: spot interruption rate per attempt
``POST   /_admin/jobs``                     ``submit_jobs``: ``{"count": 5000, "queue": "demo-queue",
                                            "command": [...], "tags": {...}}`` -> ``{"jobIds": [...]}``
``POST   /_admin/unsupported``              ``{"operations": ["TerminateJobs"]}`` (404 for those)
``POST   /_admin/retention``                ``{"seconds": 604800}`` (null: keep every job)
``POST   /_admin/terminate-delay``          ``{"seconds": 5}``: a terminated job stops after that
==========================================  ===================================================

e.g. a 90-second outage from now: ``curl -X POST $URL/_admin/faults -d '{"operation": null,
"kind": "authorizer-500", "window": [NOW, NOW+90]}'`` with NOW from ``GET /_admin/clock``.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import math
import os
import signal
import sys
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from batchkit import _cli_args as cli_args
from batchkit._cli_args import EXIT_FAILURE, EXIT_OK, EXIT_STATUS_HELP, EXIT_USAGE, SubParsers
from batchkit._net import is_loopback_host

from ._emu_engine import EmuClock, Engine
from ._emu_faults import FaultPlan
from ._emu_http import Answer, EmulatorServer, parse_json_body
from ._emu_logs import LogSink, MotoBackdrop, aws_client
from ._emu_model import ApiError, service_model
from ._emu_responses import answer_api

log = logging.getLogger("batchkit.sim")

__all__ = ["FaultPlan", "LocalBatch", "MotoBackdrop", "serve_main"]

DUMMY_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class LocalBatch:
    """A local AWS Batch over HTTP on loopback, with a lifecycle clock and injected faults."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        speed: float = 1.0,
        manual_clock: bool = False,
        start_time: float | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        seed: int = 0,
        logs_endpoint: str | None = None,
        backdrop: bool = False,
        wall_timestamps: bool = False,
        admin_token: str | None = None,
    ) -> None:
        """``logs_endpoint``: a CloudWatch Logs endpoint (e.g. a ``MotoBackdrop``'s URL) that
        receives each running attempt's output lines; ``backdrop=True`` starts moto on
        loopback for that (and for S3) with the emulator: ``lb.backdrop.endpoint_url``.
        ``wall_timestamps``: with ``speed`` != 1, keep timestamps on the wall clock and
        shorten durations instead (see ``EmuClock``)."""
        self.host = host
        #: When set, every /_admin/ call must carry ``Authorization: Bearer <token>``.
        #: Required to listen beyond loopback: the admin API rewrites state and injects faults.
        self.admin_token = admin_token
        self.port = port
        self.region = region
        self.account_id = account_id
        self.clock = EmuClock(speed=speed, manual=manual_clock, start_time=start_time, wall=wall_timestamps)
        self.logs_endpoint = logs_endpoint
        #: moto's CloudWatch Logs/S3 on loopback, started with the emulator when ``backdrop=True``
        self.backdrop: MotoBackdrop | None = MotoBackdrop(region=region) if backdrop else None
        self._log_sink: LogSink | None = None
        self._engine = Engine(self.clock, region=region, account_id=account_id, seed=seed)
        self.faults = FaultPlan(seed=seed, clock=self.clock.now)
        #: Operations answered with 404 UnknownOperationException, as a region or an
        #: older service without them would (e.g. {"TerminateJobs", "CancelJobs"} to
        #: exercise a client's fallback to TerminateJob).
        self.unsupported_operations: set[str] = set()
        self._lock = threading.RLock()
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""
        #: Calls answered, per operation (faults included), for tests and benchmarks.
        self.calls: dict[str, int] = {}

    # --- server ------------------------------------------------------------------------

    def start(self) -> LocalBatch:
        """Start the HTTP server thread; return self."""
        if self._server is not None:
            return self
        if not is_loopback_host(self.host) and not self.admin_token:
            raise ValueError(
                f"LocalBatch will not serve its admin API on {self.host} (not loopback) without "
                "admin_token: anyone who reaches it could rewrite jobs and inject faults"
            )
        service_model()  # load botocore's model now: a broken install fails here, not per request
        if self.backdrop is not None:
            self.logs_endpoint = self.backdrop.start().endpoint_url
        if self.logs_endpoint:
            self._log_sink = LogSink(self.logs_endpoint, self.region)
            with self._lock:
                if self._engine.log_outbox is None:
                    self._engine.log_outbox = []
        server = EmulatorServer((self.host, self.port), self)
        self._server = server
        self.port = server.server_address[1]
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"LocalBatch:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idle keep-alive ones too)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.backdrop is not None:
            self.backdrop.stop()

    def __enter__(self) -> LocalBatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, **config_kwargs: Any) -> Any:
        """A boto3 "batch" client bound to this emulator (dummy credentials).

        ``config_kwargs`` go to ``botocore.config.Config``, e.g.
        ``retries={"max_attempts": 1}`` to see every injected fault.
        """
        if not self.endpoint_url:
            raise RuntimeError("LocalBatch is not started: use `with LocalBatch() as lb:` or lb.start()")
        return aws_client("batch", self.endpoint_url, self.region, **config_kwargs)

    def logs_client(self, **config_kwargs: Any) -> Any:
        """A boto3 "logs" client for the CloudWatch Logs endpoint job output goes to."""
        if not self.logs_endpoint:
            raise RuntimeError("this LocalBatch writes no logs: give LocalBatch(backdrop=True) or logs_endpoint=URL")
        return aws_client("logs", self.logs_endpoint, self.region, **config_kwargs)

    def _catch_up(self) -> float:
        """Run the lifecycle up to now and write what the jobs printed meanwhile (lock held)."""
        now = self._engine.catch_up()
        self._flush_logs()
        return now

    def _flush_logs(self) -> None:
        outbox = self._engine.log_outbox
        if not outbox or self._log_sink is None:
            return
        writes = list(outbox)
        outbox.clear()
        try:
            self._log_sink.write(writes)
        except Exception as e:  # the logs service is a backdrop: Batch answers go on without it
            log.warning("LocalBatch: could not write job output to %s: %s", self.logs_endpoint, e)

    # --- time and lifecycle -----------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Step the manual clock and run the lifecycle up to the new time."""
        with self._lock:
            self.clock.advance(seconds)
            self._catch_up()

    @property
    def spot_interruption_rate(self) -> float:
        """Probability that a try is reclaimed while it runs (seeded RNG; every compute environment)."""
        return self._engine.spot_interruption_rate

    @spot_interruption_rate.setter
    def spot_interruption_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"spot_interruption_rate {rate!r} must be between 0 and 1")
        with self._lock:
            self._engine.spot_interruption_rate = float(rate)

    def create_environment(
        self,
        queue: str = "demo-queue",
        *,
        vcpus: int = 256,
        compute_environment: str | None = None,
        job_definition: str = "nf-demo",
        spot: bool = False,
    ) -> dict[str, Any]:
        """Create (or reuse) a compute environment, a queue on it and a job definition."""
        ce_name = compute_environment or f"{queue}-ce"
        e = self._engine
        with self._lock:
            self._catch_up()
            if ce_name not in e.ces:
                e.create_compute_environment(
                    {
                        "computeEnvironmentName": ce_name,
                        "type": "MANAGED",
                        "state": "ENABLED",
                        "computeResources": {
                            "type": "SPOT" if spot else "EC2",
                            "minvCpus": 0,
                            "maxvCpus": vcpus,
                            "instanceTypes": ["optimal"],
                            "subnets": ["subnet-0local"],
                            "securityGroupIds": ["sg-0local"],
                            "instanceRole": f"arn:aws:iam::{self.account_id}:instance-profile/ecsInstanceRole",
                        },
                    }
                )
            if queue not in e.queues:
                e.create_job_queue(
                    {
                        "jobQueueName": queue,
                        "state": "ENABLED",
                        "priority": 1,
                        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": ce_name}],
                    }
                )
            jd = e.find_jobdef(job_definition)
            if jd is None:
                e.register_job_definition(
                    {
                        "jobDefinitionName": job_definition,
                        "type": "container",
                        "containerProperties": {
                            "image": "quay.io/nextflow/bash",
                            "command": ["bash", "-c", "true"],
                            "resourceRequirements": [
                                {"type": "VCPU", "value": "1"},
                                {"type": "MEMORY", "value": "1024"},
                            ],
                        },
                    }
                )
                jd = e.find_jobdef(job_definition)
            assert jd is not None
            ce, q = e.ces[ce_name], e.queues[queue]
            return {
                "computeEnvironmentName": ce.name,
                "computeEnvironmentArn": ce.arn,
                "jobQueueName": q.name,
                "jobQueueArn": q.arn,
                "jobDefinitionName": jd["jobDefinitionName"],
                "jobDefinitionArn": jd["jobDefinitionArn"],
            }

    def submit_jobs(
        self,
        count: int,
        *,
        queue: str = "demo-queue",
        name: str = "job",
        job_definition: str = "nf-demo",
        command: list[str] | None = None,
        vcpus: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[str]:
        """Submit ``count`` jobs in-process (no HTTP; SubmitJob's checks); return their ids.

        For seeding thousands of jobs fast; names are ``<name>-<i>``.
        """
        overrides: dict[str, Any] = {}
        if command is not None:
            overrides["command"] = list(command)
        if vcpus is not None:
            overrides["vcpus"] = vcpus
        ids: list[str] = []
        model = service_model()
        with self._lock:
            self._catch_up()
            for i in range(count):
                params: dict[str, Any] = {
                    "jobName": f"{name}-{i}",
                    "jobQueue": queue,
                    "jobDefinition": job_definition,
                    "containerOverrides": overrides,
                    "tags": dict(tags or {}),
                }
                if i == 0:
                    model.validate_input("SubmitJob", params)
                try:
                    ids.append(self._engine.submit_job(params)["jobId"])
                except ApiError as e:
                    raise ValueError(e.message) from None
        return ids

    def set_job_behavior(
        self,
        job_id: str,
        *,
        duration: float | None = None,
        exit_code: int | None = None,
        output: list[str] | None = None,
    ) -> None:
        """Set how long a job's tries run (seconds, emulator time), their exit code, and the
        lines each try prints to its CloudWatch Logs stream (``output``; by default the
        ``echo`` lines of its command). A RUNNING try prints ``output`` at once."""
        with self._lock:
            self._catch_up()
            self._engine.set_behavior(self._job(job_id), duration, exit_code, output)
            self._flush_logs()

    def interrupt(self, job_id: str) -> None:
        """Reclaim the spot host of a STARTING/RUNNING job now; retryStrategy decides what follows."""
        with self._lock:
            now = self._catch_up()
            self._engine.interrupt(self._job(job_id), now)

    def forget(self, job_id: str) -> None:
        """Make a job vanish: DescribeJobs and ListJobs stop returning it, as when a job
        ages out or is looked up in the wrong region (nextflow-io/nextflow#7301)."""
        with self._lock:
            self._catch_up()
            self._engine.forget(self._job(job_id))

    @property
    def retention(self) -> float | None:
        """Seconds (emulator time) after which finished jobs age out; None (default) = never.
        Real Batch keeps finished jobs for about a week (604800 s)."""
        return self._engine.retention

    @retention.setter
    def retention(self, seconds: float | None) -> None:
        if seconds is not None and seconds < 0:
            raise ValueError(f"retention {seconds!r} must be >= 0 seconds, or None")
        with self._lock:
            self._engine.retention = seconds

    @property
    def terminate_delay(self) -> float:
        """Seconds (emulator time) a STARTING/RUNNING job keeps its state after TerminateJob
        before it is FAILED, as real Batch needs to stop the container; 0 (default) = at once.
        A second terminate in that window is a no-op success; CancelJob does nothing."""
        return self._engine.terminate_delay

    @terminate_delay.setter
    def terminate_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"terminate_delay {seconds!r} must be >= 0 seconds")
        with self._lock:
            self._engine.terminate_delay = float(seconds)

    def _job(self, job_id: str) -> Any:
        job = self._engine.find_job(job_id)
        if job is None:
            raise KeyError(f"job {job_id!r} does not exist in this LocalBatch ({len(self._engine.jobs)} jobs)")
        return job

    # --- state ---------------------------------------------------------------------------

    def load_state(self, state: dict[str, Any] | list[Any], *, duration: float | None = None) -> None:
        """Seed jobs from a saved ``aws batch describe-jobs`` JSON or ``dump_state()`` output.

        Missing queues are created (with a large compute environment); a job whose id
        exists is replaced. An active job from a describe-jobs JSON runs, from now, for
        the ``sleep N`` of its command, else ``duration`` seconds (default one hour), so
        a captured incident's orphans are still running when replayed. A ``dump_state()``
        restores every job's schedule exactly.
        """
        with self._lock:
            self._catch_up()
            self._engine.load(state, duration)

    def dump_state(self) -> dict[str, Any]:
        """The full state, JSON-serialisable; ``load_state`` of it restores it."""
        with self._lock:
            self._catch_up()
            return json.loads(json.dumps(self._engine.dump()))  # type: ignore[no-any-return]

    def jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every job (array children included) as DescribeJobs dicts, without HTTP."""
        with self._lock:
            self._catch_up()
            return [
                self._engine.describe(j) for j in self._engine.iter_jobs() if status is None or j.status == status
            ]

    def describe_job(self, job_id: str) -> dict[str, Any] | None:
        """One job as DescribeJobs shows it, or None; no HTTP."""
        with self._lock:
            self._catch_up()
            job = self._engine.find_job(job_id)
            return None if job is None else self._engine.describe(job)

    # --- request handling (called by the HTTP handler threads) ----------------------

    def now(self) -> float:
        """The emulator's time (epoch seconds): the HTTP ``Date`` header of every answer."""
        return self.clock.now()

    def answer(self, method: str, path: str, headers: Any, raw: bytes) -> Answer:
        """Answer one HTTP request: the Batch API, or ``/_admin/...``."""
        if path.startswith("/_admin/"):
            return self._admin(method, path, headers, raw)
        return answer_api(self, method, path, raw)

    def _admin(self, method: str, raw_path: str, headers: Any, raw: bytes) -> Answer:
        if self.admin_token and not hmac.compare_digest(
            (headers.get("Authorization") or "").encode(), f"Bearer {self.admin_token}".encode()
        ):
            return Answer(401, {"error": "the admin API needs the header Authorization: Bearer <token>"})
        path = urlsplit(raw_path).path.rstrip("/")
        parts = [unquote(p) for p in path.split("/")[2:]]  # after "/_admin"
        try:
            body = parse_json_body(raw) if raw else {}
            answer = self._admin_call(method, parts, body)
        except _NotFound as e:
            return Answer(404, {"error": str(e)})
        except (ValueError, KeyError, TypeError, ApiError, RecursionError) as e:
            return Answer(400, {"error": e.message if isinstance(e, ApiError) else str(e) or type(e).__name__})
        except Exception as e:
            log.exception("LocalBatch admin: %s %s failed", method, path)
            return Answer(500, {"error": f"{type(e).__name__}: {e} (see the emulator log)"})
        return Answer(200, answer)


    def _admin_call(self, method: str, parts: list[str], body: dict[str, Any]) -> dict[str, Any]:
        route = (method, *parts[:1])
        if route == ("GET", "health"):
            return {"ok": True, "now": self.clock.now(), "endpoint": self.endpoint_url,
                    "logsEndpoint": self.logs_endpoint}
        if route == ("GET", "clock"):
            # "wall": timestamps on the wall clock, durations `speed` times shorter (see EmuClock).
            return {"now": self.clock.now(), "manual": self.clock.manual, "speed": self.clock.speed,
                    "wall": self.clock.wall}
        if route == ("POST", "clock") and parts[1:] == ["advance"]:
            self.advance(_finite(body["seconds"], "seconds"))
            return {"now": self.clock.now()}
        if route == ("GET", "faults"):
            return {"rules": self.faults.rules(), "counts": self.faults.counts_list()}
        if route == ("POST", "faults"):
            return {"id": self._add_fault(body)}
        if route == ("DELETE", "faults"):
            if len(parts) > 1:
                self.faults.remove(parts[1])
            else:
                self.faults.clear()
            return {}
        if route == ("GET", "state"):
            return self.dump_state()
        if route == ("POST", "state"):
            before = len(self._engine.jobs)
            self.load_state(body, duration=None if body.get("duration") is None else _finite(body["duration"], "duration"))
            return {"loaded": len(body.get("jobs", [])), "jobs": len(self._engine.jobs), "before": before}
        if route == ("POST", "environment"):
            return self.create_environment(**body)
        if route == ("POST", "unsupported"):
            ops = [str(o) for o in body.get("operations") or []]
            with self._lock:
                self.unsupported_operations = set(ops)
            return {"operations": sorted(ops)}
        if route == ("POST", "terminate-delay"):
            self.terminate_delay = _finite(body["seconds"], "seconds")
            return {"seconds": self.terminate_delay}
        if route == ("POST", "retention"):
            self.retention = None if body.get("seconds") is None else _finite(body["seconds"], "seconds")
            return {"seconds": self.retention}
        if route == ("POST", "jobs") and len(parts) == 1:
            return {"jobIds": self._submit_from(body)}
        if route == ("POST", "spot"):
            self.spot_interruption_rate = _finite(body["rate"], "rate")
            return {"rate": self.spot_interruption_rate}
        if route == ("POST", "jobs") and len(parts) == 3 and parts[2] in ("interrupt", "behavior", "forget"):
            return self._job_action(parts[1], parts[2], body)
        raise _NotFound(f"no admin route {method} /_admin/{'/'.join(parts)}: see batchkit.sim.localbatch's docstring")

    def _add_fault(self, body: dict[str, Any]) -> str:
        """``POST /_admin/faults``: a fault rule from its JSON body; its id."""
        window = body.get("window")
        return self.faults.add(
            body.get("operation"),
            str(body["kind"]),
            rate=_finite(body.get("rate", 1.0), "rate"),
            count=None if body.get("count") is None else int(body["count"]),
            window=None if window is None else (_finite(window[0], "window start"), _finite(window[1], "window end")),
            latency=_finite(body.get("latency", 0.0), "latency"),
        )

    def _submit_from(self, body: dict[str, Any]) -> list[str]:
        """``POST /_admin/jobs``: ``count`` jobs submitted as the body says; their ids."""
        return self.submit_jobs(
            int(body["count"]),
            queue=str(body.get("queue", "demo-queue")),
            name=str(body.get("name", "job")),
            job_definition=str(body.get("job_definition", "nf-demo")),
            command=body.get("command"),
            vcpus=body.get("vcpus"),
            tags=body.get("tags"),
        )

    def _job_action(self, job_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_admin/jobs/<id>/{forget,interrupt,behavior}``."""
        if action == "forget":
            self.forget(job_id)
            return {}
        if action == "interrupt":
            self.interrupt(job_id)
        else:
            self.set_job_behavior(
                job_id, duration=body.get("duration"), exit_code=body.get("exit_code"), output=body.get("output")
            )
        return {"job": self.describe_job(job_id)}


class _NotFound(Exception):
    pass


def _finite(value: Any, what: str) -> float:
    """An admin number: finite (NaN and infinities are refused, as AWS refuses them)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} {value!r} must be a finite number")
    return number



# --- standalone -------------------------------------------------------------------------


def _admin_header(lb: LocalBatch) -> str:
    # The token itself stays in the environment: the banner names the variable.
    return f'-H "Authorization: Bearer ${ADMIN_TOKEN_ENV}" ' if lb.admin_token else ""


def _usage_text(lb: LocalBatch, env: dict[str, Any] | None) -> str:
    url = lb.endpoint_url
    lines = [
        f"batchkit LocalBatch (a local AWS Batch) listening on {url}",
        f"  clock: {_clock_text(lb.clock)}; region {lb.region}; account {lb.account_id}",
    ]
    if lb.logs_endpoint:
        lines.append(
            f"  job output: CloudWatch Logs (and S3) at {lb.logs_endpoint}, log group /aws/batch/job "
            f"(AWS_ENDPOINT_URL_CLOUDWATCH_LOGS={lb.logs_endpoint} AWS_ENDPOINT_URL_S3={lb.logs_endpoint})"
        )
    if env is not None:
        lines.append(f"  queue: {env['jobQueueName']}   job definition: {env['jobDefinitionName']}")
    lines += [
        "",
        "AWS CLI:",
        f"  export AWS_ENDPOINT_URL_BATCH={url} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={lb.region}",
        "  aws batch describe-job-queues",
        f"  aws batch submit-job --job-name demo --job-queue {env['jobQueueName'] if env else 'QUEUE'} "
        f"--job-definition {env['jobDefinitionName'] if env else 'JOBDEF'} --container-overrides 'command=bash,-c,sleep 30'",
        f"  (or pass --endpoint-url {url} to each command)",
        "boto3:",
        f'  boto3.client("batch", endpoint_url="{url}", region_name="{lb.region}",',
        '               aws_access_key_id="test", aws_secret_access_key="test")',
        f"admin: curl {_admin_header(lb)}{url}/_admin/health   (faults, clock, state: see batchkit.sim.localbatch)",
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _clock_text(clock: EmuClock) -> str:
    if clock.speed == 1 or clock.manual:
        return "real time" if not clock.manual else "manual"
    if clock.wall:
        return (f"x{clock.speed:g}: timestamps on the wall clock, every delay and job duration "
                f"{clock.speed:g} times shorter")  # fmt: skip
    return f"x{clock.speed:g}: timestamps run ahead of the wall clock (see the Date header)"


#: The environment variable holding the admin API's token when serving beyond loopback
#: (an environment variable, not an argument: arguments show in `ps` to every user).
ADMIN_TOKEN_ENV = "BATCHKIT_ADMIN_TOKEN"


def register_cli(sub: SubParsers) -> None:
    """Register ``batchkit sim serve`` on the CLI's parser tree (batchkit.cli)."""
    parser = sub.add_parser(
        "serve",
        help="serve the emulator over HTTP (see `batchkit sim serve -h`)",
        description="Run a local AWS Batch emulator in the foreground until Ctrl-C. It listens "
        f"on 127.0.0.1; another address needs --allow-remote and a token in ${ADMIN_TOKEN_ENV} "
        "for the admin API (the Batch API itself has no authentication).",
        epilog=EXIT_STATUS_HELP,
    )
    parser.add_argument("--port", type=cli_args.port, default=0, help="port, 1-65535 (default 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--allow-remote", action="store_true",
                        help=f"allow a --host other than loopback (needs ${ADMIN_TOKEN_ENV})")  # fmt: skip
    parser.add_argument("--speed", type=cli_args.number(0, 1e6, above=True), default=1.0,
                        help="clock speed, e.g. 60 = one minute per second (more than 0, at most 1e6)")  # fmt: skip
    parser.add_argument("--state", type=cli_args.path, help="load jobs from a describe-jobs JSON or a saved state first")
    parser.add_argument("--save", type=cli_args.writable_file, help="write the state to this file on exit")
    parser.add_argument("--queue", default="demo-queue", help="demo queue to create (default demo-queue)")
    parser.add_argument("--vcpus", type=cli_args.whole(1, 2**31 - 1), default=256,
                        help="vCPUs of the demo queue's compute environment (default 256)")  # fmt: skip
    parser.add_argument("--no-queue", action="store_true", help="create no demo queue")
    parser.add_argument("--region", default="us-east-1", type=cli_args.region)
    parser.add_argument("--seed", type=cli_args.whole(0, 2**63 - 1), default=0)
    parser.add_argument("--logs", action="store_true",
                        help="write job output to CloudWatch Logs and serve it, with S3, from moto on "
                             "loopback (needs pip install 'batchkit[emulator]')")  # fmt: skip
    parser.set_defaults(run=serve)


def serve_main(argv: list[str] | None = None) -> int:
    """``batchkit sim serve ARGV`` (the arguments are the CLI's, batchkit.cli)."""
    from batchkit.cli import main as cli_main

    return cli_main(["sim", "serve", *(sys.argv[1:] if argv is None else argv)])


def serve(args: argparse.Namespace) -> int:
    """``batchkit sim serve``: run LocalBatch in the foreground until Ctrl-C or SIGTERM."""
    token = os.environ.get(ADMIN_TOKEN_ENV) or None
    remote = not is_loopback_host(args.host)
    if remote and not args.allow_remote:
        raise cli_args.UsageError(
            f"--host {args.host} is not a loopback address and the emulator has no authentication: "
            "pass --allow-remote to listen there anyway",
            prog="batchkit sim serve",
        )
    if remote and (token is None or len(token) < 16):
        raise cli_args.UsageError(
            f"--allow-remote needs a token of 16 characters or more in ${ADMIN_TOKEN_ENV} for the admin API",
            prog="batchkit sim serve",
        )
    state: Any = None
    if args.state is not None:
        state = cli_args.read_json_object(args.state, "--state")
    # A sped-up `sim serve` keeps its timestamps on the wall clock and shortens durations
    # instead, so the AWS CLI user's own "now" (AFTER_CREATED_AT, job ages) stays right.
    lb = LocalBatch(port=args.port, host=args.host, speed=args.speed, region=args.region, seed=args.seed,
                    admin_token=token, wall_timestamps=True, backdrop=bool(getattr(args, "logs", False)))  # fmt: skip
    if remote:
        print(f"batchkit sim serve: warning: listening on {args.host}, beyond this machine: anyone who reaches "
              f"it can call its Batch API (no authentication); the admin API needs ${ADMIN_TOKEN_ENV}",
              file=sys.stderr)  # fmt: skip
    try:
        lb.start()
    except RuntimeError as e:  # --logs without moto installed
        print(f"batchkit sim serve: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as e:
        print(f"batchkit sim serve: error: cannot listen on {args.host}:{args.port}: {e.strerror}; try another --port or --host",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILURE
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        env = None if args.no_queue else lb.create_environment(args.queue, vcpus=args.vcpus)
        if state is not None:
            try:
                lb.load_state(state)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                print(f"batchkit sim serve: error: {cli_args.message(f'{args.state}: {e}')}", file=sys.stderr)
                return EXIT_USAGE
        print(_usage_text(lb, env), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                pass
    finally:
        if args.save is not None:
            args.save.write_text(json.dumps(lb.dump_state(), indent=1))
            print(f"state written to {args.save}", flush=True)
        lb.stop()
    return EXIT_OK
