"""The emulator's backend: one method per AWS Batch operation, over the resources and the lifecycle.

Like a moto ``models.py`` backend: each API method takes the request's members (already
checked against botocore's model by the HTTP layer), applies AWS Batch's rules
(``_emu_resources``), and answers with the members AWS answers with; the lifecycle
(``_emu_scheduler``) moves the jobs. Pure and single-threaded: the HTTP layer holds one
lock around every call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Container, Iterable, Iterator
from typing import Any

from ._emu_model import client_error
from ._emu_resources import (
    ACTIVE,
    DEFAULT_DURATION,
    DEFAULT_LOADED_DURATION,
    MAX_DEPENDS_ON,
    MAX_QUEUE_CES,
    TERMINAL,
    ComputeEnv,
    Job,
    JobQueue,
    Naming,
    check_compute_resources,
    check_memory,
    check_name,
    check_retry_strategy,
    check_tags,
    cluster_name,
    describe_job,
    job_vcpus,
    merge_container,
    ms,
    parse_command,
    parse_output,
    reason_of,
    summarize_job,
    to_ms_instant,
)
from ._emu_scheduler import EmuClock, Scheduler

__all__ = ["EmuClock", "Engine"]


class Engine(Scheduler):
    """All emulator state; every public method is one API call or one test hook."""

    def __init__(self, clock: EmuClock, *, region: str, account_id: str, seed: int = 0) -> None:
        super().__init__(clock, Naming(region, account_id), seed=seed)
        self.region = region
        self.account_id = account_id
        self.ces: dict[str, ComputeEnv] = {}
        self.jobdefs: dict[str, list[dict[str, Any]]] = {}  # name -> revisions (index = rev - 1)
        self.jobs: dict[str, Job] = {}
        self.tags: dict[str, dict[str, str]] = {}  # non-job resource ARN -> tags

    # --- naming -------------------------------------------------------------------

    def arn(self, kind: str, name: str) -> str:
        return self.naming.arn(kind, name)

    def new_job_id(self) -> str:
        # Random, not seeded: ids stay unique across emulator restarts, as AWS's are.
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    # --- resolution -------------------------------------------------------------------

    def find_ce(self, ref: str) -> ComputeEnv | None:
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        return self.ces.get(name)

    def find_queue(self, ref: str) -> JobQueue | None:
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        return self.queues.get(name)

    def queue_or_error(self, ref: str) -> JobQueue:
        queue = self.find_queue(ref)
        if queue is None:
            # AWS's text (quoted in base2genomics/batchit#13): "JobQueue x-job-queue not found."
            raise client_error(f"JobQueue {ref} not found.")
        return queue

    def find_jobdef(self, ref: str) -> dict[str, Any] | None:
        """A job definition by name (latest ACTIVE revision), name:revision or ARN."""
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        rev: int | None = None
        if ":" in name:
            base, _, r = name.rpartition(":")
            if not r.isdigit():
                return None
            name, rev = base, int(r)
        revs = self.jobdefs.get(name)
        if not revs:
            return None
        if rev is not None:
            return revs[rev - 1] if 1 <= rev <= len(revs) else None
        active = [d for d in revs if d.get("status") == "ACTIVE"]
        return active[-1] if active else None

    def jobdef_or_error(self, ref: str) -> dict[str, Any]:
        found = self.find_jobdef(ref)
        if found is None:
            # AWS's texts: "JobDefinition name nextflow does not exist or is not in ACTIVE
            # status" for a name (aws-samples/aws-genomics-workflows#84), "JobDefinition
            # arn:aws:batch:...:job-definition/X not found." for an ARN (azavea/raster-vision-aws#17).
            if ref.startswith("arn:"):
                raise client_error(f"JobDefinition {ref} not found.")
            raise client_error(f"JobDefinition name {ref} does not exist or is not in ACTIVE status.")
        return found

    def find_job(self, ref: str) -> Job | None:
        key = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        job = self.jobs.get(key)
        return job if job is not None and self.visible(job) else None

    def iter_jobs(self) -> Iterator[Job]:
        return (j for j in self.jobs.values() if self.visible(j))

    def describe(self, job: Job) -> dict[str, Any]:
        return describe_job(job, self.naming)

    def summary(self, job: Job) -> dict[str, Any]:
        return summarize_job(job, self.naming)

    # --- API: compute environments, queues, job definitions -------------------------

    def create_compute_environment(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["computeEnvironmentName"]
        _check_new("Compute environment", name, self.ces, p.get("tags"))
        resources = p.get("computeResources")
        ctype = p.get("type", "MANAGED")
        if ctype == "MANAGED":
            if not resources:
                raise client_error("computeResources is required for a MANAGED compute environment")
            capacity = check_compute_resources(resources)
        else:
            unmanaged = p.get("unmanagedvCpus")
            if unmanaged is not None and unmanaged < 0:
                raise client_error(f"unmanagedvCpus {unmanaged} must be 0 or more")
            capacity = float(unmanaged or 256)
        arn = self.arn("compute-environment", name)
        detail = {
            "computeEnvironmentName": name,
            "computeEnvironmentArn": arn,
            "ecsClusterArn": self.naming.ecs("cluster", cluster_name(name)),
            "tags": dict(p.get("tags") or {}),
            "type": ctype,
            "state": p.get("state", "ENABLED"),
            "status": "VALID",
            "statusReason": "ComputeEnvironment Healthy",
            "serviceRole": p.get("serviceRole", self.naming.iam_role("AWSBatchServiceRole")),
        }
        if resources:
            detail["computeResources"] = resources
        if p.get("tags"):
            self.tags[arn] = dict(p["tags"])
        self.ces[name] = ComputeEnv(name, arn, detail, capacity)
        return {"computeEnvironmentName": name, "computeEnvironmentArn": arn}

    def update_compute_environment(self, p: dict[str, Any]) -> dict[str, Any]:
        """UpdateComputeEnvironment: ``state`` ("If the state is DISABLED, then the Batch
        scheduler doesn't attempt to place jobs within the environment. Jobs in a STARTING or
        RUNNING state continue to progress normally.") and the vCPU bounds."""
        ref = p["computeEnvironment"]
        ce = self.find_ce(ref)
        if ce is None:
            raise client_error(f"ComputeEnvironment {ref} not found.")
        update = p.get("computeResources") or {}
        if p.get("unmanagedvCpus") is not None:
            if ce.detail.get("type") != "UNMANAGED" or p["unmanagedvCpus"] < 0:
                raise client_error("unmanagedvCpus: 0 or more, and only for an UNMANAGED compute environment")
            ce.capacity = float(p["unmanagedvCpus"])
            ce.detail["unmanagedvCpus"] = p["unmanagedvCpus"]
        bounds = {k: update[k] for k in ("minvCpus", "maxvCpus", "desiredvCpus") if update.get(k) is not None}
        if bounds:
            if ce.detail.get("type") != "MANAGED":
                raise client_error("computeResources can be updated only on a MANAGED compute environment")
            merged = dict(ce.detail.get("computeResources") or {}) | bounds
            if "desiredvCpus" not in bounds:
                merged.pop("desiredvCpus", None)  # Batch moves it between the new bounds
            ce.capacity = check_compute_resources(merged)
            ce.detail["computeResources"] = merged
        if p.get("state") is not None:
            ce.detail["state"] = p["state"]
        if p.get("serviceRole") is not None:
            ce.detail["serviceRole"] = p["serviceRole"]
        now = self.clock.now()
        for queue in self.queues_on(ce):
            self._retry_stuck(queue, now)  # a job too big for the old bounds may fit the new ones
            self._schedule(queue, now)
        return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}

    def describe_compute_environments(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe_resources(p, "computeEnvironments", self.ces.values(), self.find_ce)

    def _describe_resources(
        self,
        p: dict[str, Any],
        member: str,
        every: Iterable[ComputeEnv | JobQueue],
        find: Callable[[str], ComputeEnv | JobQueue | None],
    ) -> dict[str, Any]:
        """DescribeComputeEnvironments / DescribeJobQueues: the named ones (unknown names
        are left out, not an error) or all, a page of them, each with its tags."""
        wanted = p.get(member) or None
        items = [r for r in map(find, wanted) if r is not None] if wanted else list(every)
        page, token = _page(items, p, 100)
        out = [dict(r.detail) | {"tags": dict(self.tags.get(r.arn, {}))} for r in page]
        return _with_token({member: out}, token)

    def _ce_order(self, order: list[dict[str, Any]]) -> tuple[list[ComputeEnv], list[dict[str, Any]]]:
        if len(order) > MAX_QUEUE_CES:
            raise client_error(
                f"computeEnvironmentOrder has {len(order)} compute environments: a job queue takes up to {MAX_QUEUE_CES}"
            )
        ces: list[ComputeEnv] = []
        shown: list[dict[str, Any]] = []
        # "Compute environments are tried in ascending order" (ComputeEnvironmentOrder).
        for o in sorted(order, key=lambda o: o.get("order", 0)):
            found = self.find_ce(o.get("computeEnvironment", ""))
            if found is None:
                raise client_error(f"Compute environment {o.get('computeEnvironment')} does not exist")
            ces.append(found)
            shown.append({"order": o.get("order", 0), "computeEnvironment": found.arn})
        return ces, shown

    def create_job_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["jobQueueName"]
        _check_new("Job queue", name, self.queues, p.get("tags"))
        ces, shown = self._ce_order(p.get("computeEnvironmentOrder") or [])
        arn = self.arn("job-queue", name)
        detail = {
            "jobQueueName": name,
            "jobQueueArn": arn,
            "state": p.get("state", "ENABLED"),
            "status": "VALID",
            "statusReason": "JobQueue Healthy",
            "priority": p["priority"],
            "computeEnvironmentOrder": shown,
            "tags": dict(p.get("tags") or {}),
        }
        if p.get("tags"):
            self.tags[arn] = dict(p["tags"])
        self.queues[name] = JobQueue(name, arn, detail, ces)
        return {"jobQueueName": name, "jobQueueArn": arn}

    def update_job_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        """UpdateJobQueue: state (a DISABLED queue takes no new jobs, "but jobs already in the
        queue can finish"), priority, computeEnvironmentOrder."""
        queue = self.queue_or_error(p["jobQueue"])
        if p.get("state") is not None:
            queue.detail["state"] = p["state"]
        if p.get("priority") is not None:
            queue.detail["priority"] = p["priority"]
        now = self.clock.now()
        if p.get("computeEnvironmentOrder") is not None:
            queue.ces, queue.detail["computeEnvironmentOrder"] = self._ce_order(p["computeEnvironmentOrder"])
            self._retry_stuck(queue, now)  # jobs too big for the old CEs may fit the new ones
        self._schedule(queue, now)
        return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def describe_job_queues(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe_resources(p, "jobQueues", self.queues.values(), self.find_queue)

    def register_job_definition(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["jobDefinitionName"]
        check_name("Job definition", name)
        check_tags(p.get("tags"))
        container = p.get("containerProperties") or {}
        job_vcpus(container, p.get("platformCapabilities") or ("EC2",))
        check_memory(container)
        check_retry_strategy(p.get("retryStrategy"))
        _timeout_of(p.get("timeout"))
        revs = self.jobdefs.setdefault(name, [])
        rev = len(revs) + 1
        arn = self.arn("job-definition", f"{name}:{rev}")
        d = {k: v for k, v in p.items() if v is not None}
        d.update({"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": rev, "status": "ACTIVE"})
        d.setdefault("containerOrchestrationType", "ECS")
        revs.append(d)
        if p.get("tags"):
            self.tags[arn] = dict(p["tags"])
        return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": rev}

    def deregister_job_definition(self, p: dict[str, Any]) -> dict[str, Any]:
        """DeregisterJobDefinition (name:revision or ARN): the revision becomes INACTIVE; jobs
        already submitted run on, new submissions by name take the latest ACTIVE revision."""
        ref = p["jobDefinition"]
        found = self.find_jobdef(ref) if ":" in ref.rsplit("/", 1)[-1] else None
        if found is None:
            raise client_error(f"JobDefinition {ref} not found.")
        found["status"] = "INACTIVE"
        return {}

    def describe_job_definitions(self, p: dict[str, Any]) -> dict[str, Any]:
        items: list[dict[str, Any]]
        if p.get("jobDefinitions"):
            items = []
            for ref in p["jobDefinitions"]:
                name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
                if ":" in name:
                    found = self.find_jobdef(ref)
                    if found is not None:
                        items.append(found)
                else:
                    items.extend(self.jobdefs.get(name, []))
        else:
            items = [d for revs in self.jobdefs.values() for d in revs]
        if p.get("jobDefinitionName"):
            items = [d for d in items if d["jobDefinitionName"] == p["jobDefinitionName"]]
        if p.get("status"):
            items = [d for d in items if d.get("status") == p["status"]]
        page, token = _page(items, p, 100)
        return _with_token({"jobDefinitions": [dict(d) for d in page]}, token)

    # --- API: jobs --------------------------------------------------------------------

    def submit_job(self, p: dict[str, Any]) -> dict[str, Any]:
        # createdAt is shown in milliseconds; keep exactly that, so a filter on a job's own
        # createdAt compares against what the client saw (AFTER_CREATED_AT / BEFORE_CREATED_AT).
        now = to_ms_instant(self.clock.now())
        name = p["jobName"]
        check_name("Job", name)
        queue = self.queue_or_error(p["jobQueue"])
        if queue.detail.get("state") != "ENABLED":
            raise client_error(f"JobQueue {queue.name} is DISABLED: it accepts no new jobs")
        jobdef = self.jobdef_or_error(p["jobDefinition"])
        check_tags(p.get("tags"))
        container = merge_container(jobdef.get("containerProperties") or {}, p.get("containerOverrides") or {})
        platforms = jobdef.get("platformCapabilities") or ("EC2",)
        vcpus = job_vcpus(container, platforms)
        check_memory(container)
        retry = p.get("retryStrategy") or jobdef.get("retryStrategy")
        check_retry_strategy(retry)
        timeout = _timeout_of(p.get("timeout") or jobdef.get("timeout"))
        size = (p.get("arrayProperties") or {}).get("size")
        if size is not None and not 2 <= size <= 10000:
            raise client_error(f"arrayProperties.size {size} is out of range: use 2 to 10000")
        depends = self._dependencies(p.get("dependsOn") or [], size)
        extra: dict[str, Any] = {}
        for key in ("dependsOn", "propagateTags", "schedulingPriority", "shareIdentifier"):
            if p.get(key) is not None:
                extra[key] = p[key]
        if jobdef.get("platformCapabilities"):
            extra["platformCapabilities"] = jobdef["platformCapabilities"]
        params = dict(jobdef.get("parameters") or {})
        params.update(p.get("parameters") or {})
        job = self._new_job(
            self.new_job_id(), name, queue, jobdef["jobDefinitionArn"], now, container, vcpus,
            retry=retry, timeout=timeout, tags=dict(p.get("tags") or {}), params=params, extra=extra,
        )
        if size is None:
            self._link(job, [d for d, _ in depends if d is not None])
            self.enter(job, now)
        else:
            job.array_size = size
            for i in range(size):
                child_container = dict(container)
                env = [e for e in child_container.get("environment", []) if e.get("name") != "AWS_BATCH_JOB_ARRAY_INDEX"]
                child_container["environment"] = [*env, {"name": "AWS_BATCH_JOB_ARRAY_INDEX", "value": str(i)}]
                child = self._new_job(
                    f"{job.job_id}:{i}", name, queue, job.job_definition, now, child_container, vcpus,
                    retry=retry, timeout=timeout, tags=dict(job.tags), params=params, extra=dict(extra), top=False,
                )
                child.array_index = i
                child.parent = job
                job.children.append(child)
                self._link(child, _child_dependencies(job, i, depends))
            job.open_children = size
            self.enter(job, now)
            for child in job.children:
                self.enter(child, now)
        return {"jobArn": self.arn("job", job.job_id), "jobName": name, "jobId": job.job_id}

    def _dependencies(self, specs: list[dict[str, Any]], size: int | None) -> list[tuple[Job | None, str]]:
        """dependsOn: "A job can depend upon a maximum of 20 jobs"; SEQUENTIAL without a job
        id for an array job's children; N_TO_N with a job id between array jobs (JobDependency)."""
        if len(specs) > MAX_DEPENDS_ON:
            raise client_error(f"dependsOn has {len(specs)} jobs: a job can depend upon a maximum of {MAX_DEPENDS_ON} jobs")
        out: list[tuple[Job | None, str]] = []
        for spec in specs:
            kind = str(spec.get("type") or "")
            ref = spec.get("jobId")
            if ref is None:
                if kind != "SEQUENTIAL" or size is None:
                    raise client_error("dependsOn: a jobId is required, except for a SEQUENTIAL dependency of an array job")
                out.append((None, kind))
                continue
            dep = self.find_job(ref)
            if dep is None:
                raise client_error(f"dependsOn: job {ref} does not exist")
            if kind == "N_TO_N" and size is not None and dep.array_size != size:
                raise client_error(f"dependsOn: an N_TO_N dependency needs an array job of size {size}; {ref} is not one")
            out.append((dep, kind))
        return out

    def _link(self, job: Job, deps: list[Job]) -> None:
        job.depends_on = deps
        for d in deps:
            d.dependents.append(job)

    def _new_job(
        self, job_id: str, name: str, queue: JobQueue, jobdef_arn: str, now: float, container: dict[str, Any],
        vcpus: float, *, retry: dict[str, Any] | None, timeout: float | None, tags: dict[str, str],
        params: dict[str, str], extra: dict[str, Any], top: bool = True,
    ) -> Job:
        duration, exit_code = parse_command(container.get("command"))
        job = Job(
            job_id=job_id, name=name, queue=queue, job_definition=jobdef_arn, created=now,
            container=container, vcpus=vcpus, retry_strategy=retry, timeout=timeout,
            tags=tags, parameters=params, extra=extra,
            duration=DEFAULT_DURATION if duration is None else duration,
            exit_code=0 if exit_code is None else exit_code,
            output=parse_output(container.get("command")),
        )
        self.jobs[job_id] = job
        if top:
            queue.jobs.append(job)
        return job

    def describe_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        ids = p["jobs"]
        if len(ids) > 100:
            raise client_error(f"Too many jobs: {len(ids)} job ids were given, DescribeJobs accepts at most 100")
        out = []
        seen: set[str] = set()
        for ref in ids:
            job = self.find_job(ref)
            # DescribeJobs drops unknown ids silently (nextflow-io/nextflow#7301).
            if job is not None and job.job_id not in seen:
                seen.add(job.job_id)
                out.append(self.describe(job))
        return {"jobs": out}

    def list_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        filters = p.get("filters") or []
        if len(filters) > 1:
            raise client_error("Only one filter can be used at a time")
        source: list[Job]
        if p.get("arrayJobId"):
            parent = self.find_job(p["arrayJobId"])
            if parent is None or parent.array_size is None:
                raise client_error(f"Array job {p['arrayJobId']} does not exist")
            source = parent.children
        elif p.get("multiNodeJobId"):
            raise client_error(f"Multi-node job {p['multiNodeJobId']} does not exist")
        elif p.get("jobQueue"):
            source = self.queue_or_error(p["jobQueue"]).jobs
        else:
            raise client_error("jobQueue, arrayJobId or multiNodeJobId must be specified")
        # maxResults: "The minimum value is 1. When --job-status is used, Batch returns up to
        # 1000 values. When --filters is used, Batch returns up to 100 values."
        limit = 100 if filters else 1000
        max_results = p.get("maxResults")
        if max_results is not None and max_results < 1:
            raise client_error(f"maxResults {max_results} is out of range: the minimum value is 1")
        max_results = min(max_results or limit, limit)
        if filters:
            match = _job_filter(filters[0], p.get("jobStatus"))
        else:
            match = _status_filter(p.get("jobStatus") or "RUNNING")
        fingerprint = _fingerprint(p)
        # filters: "The results are sorted by the createdAt field, with the most recent jobs
        # being first." Jobs are kept in creation order, so walk them backwards; the token is an
        # index into that list, which new submissions (appended) never shift.
        step = -1 if filters else 1
        i = len(source) - 1 if filters else 0
        if p.get("nextToken"):
            i = _decode_token(p["nextToken"], fingerprint)
        out: list[dict[str, Any]] = []
        n = len(source)
        while 0 <= i < n and len(out) < max_results:
            job = source[i]
            i += step
            if match(job) and self.visible(job):
                out.append(self.summary(job))
        body: dict[str, Any] = {"jobSummaryList": out}
        rest = range(i, -1, -1) if filters else range(i, n)
        if 0 <= i < n and any(match(source[k]) and self.visible(source[k]) for k in rest):
            body["nextToken"] = _encode_token(i, fingerprint)
        return body

    def terminate_job(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        reason = reason_of(p)
        job = self.find_job(p["jobId"])
        if job is not None:  # an unknown job is a success, as TerminateJobs documents
            self.terminate(job, reason, now)
        return {}

    def cancel_job(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        reason = reason_of(p)
        job = self.find_job(p["jobId"])
        if job is not None:
            self.cancel(job, reason, now)
        return {}

    def bulk(
        self, p: dict[str, Any], action: str, fail: Callable[[str], str | None] | None = None
    ) -> dict[str, Any]:
        """TerminateJobs / CancelJobs: up to 50 ids; HTTP 200 with per-job errors; unknown = success.

        ``fail(job_id)`` returns an error code for a job the service "could not process"
        this time (an injected per-job error: reported, not applied, not retried by the SDK).
        """
        ids = p["jobs"]
        if len(ids) > 50:
            raise client_error(f"Too many jobs: {len(ids)} job ids were given, at most 50 are accepted")
        reason = reason_of(p)
        now = self.clock.now()
        ok: list[str] = []
        errors: list[dict[str, str]] = []
        for ref in ids:
            code = fail(ref) if fail is not None else None
            if code is not None:
                errors.append({"job": ref, "code": code, "message": f"{code}: the job was not processed, try again"})
                continue
            job = self.find_job(ref)
            if job is not None:
                if action == "terminate":
                    self.terminate(job, reason, now)
                else:
                    self.cancel(job, reason, now)
            ok.append(ref)
        return {"successful": ok, "errors": errors}

    def tag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        check_tags(p["tags"])
        tags = self._tags_of(p["resourceArn"])
        if len(set(tags) | set(p["tags"])) > 50:
            raise client_error("A resource can have at most 50 tags")
        tags.update(p["tags"])
        return {}

    def untag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        tags = self._tags_of(p["resourceArn"])
        for k in p.get("tagKeys") or []:
            tags.pop(k, None)
        return {}

    def list_tags_for_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"tags": dict(self._tags_of(p["resourceArn"]))}

    def _tags_of(self, arn: str) -> dict[str, str]:
        if ":job/" in arn:
            job = self.find_job(arn)
            if job is None:
                raise client_error(f"Resource {arn} does not exist")
            return job.tags
        known = {c.arn for c in self.ces.values()} | {q.arn for q in self.queues.values()}
        known |= {d["jobDefinitionArn"] for revs in self.jobdefs.values() for d in revs}
        if arn not in known:
            raise client_error(f"Resource {arn} does not exist")
        return self.tags.setdefault(arn, {})

    # --- state --------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        sim: dict[str, Any] = {}
        for job in self.iter_jobs():
            s: dict[str, Any] = {"duration": job.duration, "exitCode": job.exit_code, "vcpus": job.vcpus,
                                 "output": list(job.output)}
            if job.next_event is not None:
                s["nextEvent"] = list(job.next_event)
                s["endKind"] = job.end_kind
            if job.attempt_start is not None:
                s["attemptStart"] = job.attempt_start
            if job.running_since is not None:
                s["runningSince"] = job.running_since
            if job.kill_reason is not None:
                s["killReason"] = job.kill_reason
            if job.task_id is not None:
                s["taskId"] = job.task_id
            sim[job.job_id] = s
        return {
            "version": 1,
            "now": self.clock.now(),
            "region": self.region,
            "accountId": self.account_id,
            "spotInterruptionRate": self.spot_interruption_rate,
            "terminateDelay": self.terminate_delay,
            "computeEnvironments": [dict(c.detail) | {"tags": dict(self.tags.get(c.arn, {}))} for c in self.ces.values()],
            "jobQueues": [dict(q.detail) | {"tags": dict(self.tags.get(q.arn, {}))} for q in self.queues.values()],
            "jobDefinitions": [dict(d) for revs in self.jobdefs.values() for d in revs],
            "jobs": [self.describe(j) for j in self.iter_jobs()],
            "simulation": sim,
            # The FIFO of each queue, so a reload starts jobs in the same order.
            "runnable": {q.name: [j.job_id for j in q.runnable if j.status == "RUNNABLE"] for q in self.queues.values()},
        }

    def load(self, state: dict[str, Any] | list[Any], duration: float | None = None) -> int:
        """Seed from dump() output or a saved ``aws batch describe-jobs`` answer; returns jobs loaded."""
        if isinstance(state, list):
            state = {"jobs": state}
        if not isinstance(state, dict) or not isinstance(state.get("jobs", []), list):
            raise ValueError('state must be {"jobs": [...]} (describe-jobs JSON) or LocalBatch.dump_state() output')
        if state.get("now") is not None:
            self.clock.set(float(state["now"]))
        if state.get("spotInterruptionRate") is not None:
            self.spot_interruption_rate = float(state["spotInterruptionRate"])
        if state.get("terminateDelay") is not None:
            self.terminate_delay = float(state["terminateDelay"])
        for ce in state.get("computeEnvironments") or []:
            if ce["computeEnvironmentName"] not in self.ces:
                p = {k: ce[k] for k in ("computeEnvironmentName", "type", "state", "computeResources", "serviceRole", "tags") if k in ce}
                self.create_compute_environment(p)
        for q in state.get("jobQueues") or []:
            if q["jobQueueName"] not in self.queues:
                p = {k: q[k] for k in ("jobQueueName", "state", "priority", "computeEnvironmentOrder", "tags") if k in q}
                p.setdefault("priority", 1)
                self.create_job_queue(p)
        for d in state.get("jobDefinitions") or []:
            revs = self.jobdefs.setdefault(d["jobDefinitionName"], [])
            rev = int(d.get("revision", len(revs) + 1))
            while len(revs) < rev - 1:  # keep revision numbers as given
                revs.append({"jobDefinitionName": d["jobDefinitionName"], "revision": len(revs) + 1,
                             "jobDefinitionArn": self.arn("job-definition", f"{d['jobDefinitionName']}:{len(revs) + 1}"),
                             "status": "INACTIVE", "type": "container"})
            if len(revs) < rev:
                revs.append(dict(d))
        sim = state.get("simulation") or {}
        fallback = DEFAULT_LOADED_DURATION if duration is None else float(duration)
        loaded = [self._load_job(j, sim.get(j.get("jobId")), fallback) for j in state.get("jobs", [])]
        now = self.clock.now()
        # Resume what holds vCPUs first, then the RUNNABLE jobs in their dumped FIFO order,
        # so capacity is counted before anything new starts.
        for job in loaded:
            if job.status != "RUNNABLE":
                self.resume(job, sim.get(job.job_id), now)
        order = {jid: k for k, jid in enumerate(i for ids in (state.get("runnable") or {}).values() for i in ids)}
        waiting = sorted((j for j in loaded if j.status == "RUNNABLE"), key=lambda j: order.get(j.job_id, len(order)))
        for job in waiting:
            self.resume(job, sim.get(job.job_id), now)
        # Link array children to their parents, and jobs to their dependencies, once every job exists.
        for job in loaded:
            if ":" in job.job_id and job.array_index is not None:
                parent = self.jobs.get(job.job_id.rsplit(":", 1)[0])
                if parent is not None and job.parent is not parent:
                    job.parent = parent
                    parent.children.append(job)
                    if job.status in TERMINAL:
                        parent.failed_children += job.status == "FAILED"
                    else:
                        parent.open_children += 1
            if job.status in ACTIVE:
                deps = [self.jobs.get(str(d.get("jobId"))) for d in job.extra.get("dependsOn") or () if d.get("jobId")]
                self._link(job, [d for d in deps if d is not None])
        for q in self.queues.values():
            q.jobs = [j for j in q.jobs if self.jobs.get(j.job_id) is j]
            q.jobs.sort(key=lambda j: (j.created, j.job_id))
        return len(loaded)

    def _ensure_queue(self, ref: str) -> JobQueue:
        queue = self.find_queue(ref)
        if queue is not None:
            return queue
        name = ref.rsplit("/", 1)[-1]
        ce_name = f"{name}-ce"
        if ce_name not in self.ces:
            self.create_compute_environment(
                {"computeEnvironmentName": ce_name, "type": "MANAGED", "computeResources": {"type": "EC2", "maxvCpus": 100000}}
            )
        self.create_job_queue({"jobQueueName": name, "priority": 1, "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": ce_name}]})
        return self.queues[name]

    def _load_job(self, d: dict[str, Any], sim: dict[str, Any] | None, fallback: float) -> Job:
        if not isinstance(d, dict) or not d.get("jobId") or not d.get("jobQueue"):
            raise ValueError(f"a loaded job needs at least jobId and jobQueue: {json.dumps(d)[:200]}")
        now = self.clock.now()
        queue = self._ensure_queue(d["jobQueue"])
        status = d.get("status", "SUBMITTED")
        if status not in ACTIVE | TERMINAL:
            raise ValueError(f"job {d['jobId']}: unknown status {status!r}")
        container = dict(d.get("container") or {})
        known = {"jobArn", "jobName", "jobId", "jobQueue", "status", "statusReason", "attempts", "createdAt",
                 "startedAt", "stoppedAt", "jobDefinition", "parameters", "container", "tags", "retryStrategy",
                 "timeout", "isCancelled", "isTerminated", "arrayProperties"}
        extra = {k: v for k, v in d.items() if k not in known}
        duration, exit_code = parse_command(container.get("command"))
        timeout = (d.get("timeout") or {}).get("attemptDurationSeconds")
        old = self.jobs.get(d["jobId"])
        if old is not None:
            # The loaded record replaces the old one; the old object may still sit in a FIFO.
            self._cancel_event(old)
            old.forgotten = True
            self._release(old, now)  # its queue list entry is dropped once loading is done
        job = Job(
            job_id=d["jobId"], name=str(d.get("jobName") or d["jobId"]), queue=queue,
            job_definition=d.get("jobDefinition", self.arn("job-definition", "unknown:1")),
            created=(d.get("createdAt") or ms(now) or 0) / 1000.0, container=container,
            vcpus=_loaded_vcpus(container),
            status=status, status_reason=d.get("statusReason"),
            started=None if d.get("startedAt") is None else d["startedAt"] / 1000.0,
            stopped=None if d.get("stoppedAt") is None else d["stoppedAt"] / 1000.0,
            attempts=[dict(a) for a in d.get("attempts") or []], retry_strategy=d.get("retryStrategy"),
            timeout=None if timeout is None else float(timeout), tags=dict(d.get("tags") or {}),
            parameters=dict(d.get("parameters") or {}), extra=extra,
            duration=fallback if duration is None else duration,
            exit_code=0 if exit_code is None else exit_code,
            is_cancelled=bool(d.get("isCancelled")), is_terminated=bool(d.get("isTerminated")),
            output=parse_output(container.get("command")),
        )
        arr = d.get("arrayProperties") or {}
        if arr.get("size") is not None:
            job.array_size = int(arr["size"])
        if arr.get("index") is not None:
            job.array_index = int(arr["index"])
        self.jobs[job.job_id] = job
        if job.array_index is None or ":" not in job.job_id:
            queue.jobs.append(job)
        if sim:
            job.duration = float(sim.get("duration", job.duration))
            job.exit_code = int(sim.get("exitCode", job.exit_code))
            job.vcpus = float(sim.get("vcpus", job.vcpus))
            job.attempt_start = sim.get("attemptStart")
            job.running_since = sim.get("runningSince")
            job.end_kind = sim.get("endKind")
            job.kill_reason = sim.get("killReason")
            job.task_id = sim.get("taskId")
            if sim.get("output") is not None:
                job.output = [str(x) for x in sim["output"]]
        return job


def _child_dependencies(parent: Job, i: int, depends: list[tuple[Job | None, str]]) -> list[Job]:
    """What child ``i`` of an array job waits for: the whole dependency (a plain jobId),
    child ``i`` of the dependency (N_TO_N), or child ``i - 1`` of its own array (SEQUENTIAL)."""
    out: list[Job] = []
    for dep, kind in depends:
        if dep is None:  # SEQUENTIAL: "each child array job completes sequentially, starting at index 0"
            if i > 0:
                out.append(parent.children[i - 1])
        elif kind == "N_TO_N" and dep.array_size is not None:
            out.append(dep.children[i])
        else:
            out.append(dep)
    return out


def _timeout_of(spec: dict[str, Any] | None) -> float | None:
    """attemptDurationSeconds: "The minimum value for the timeout is 60 seconds" (JobTimeout)."""
    if not spec or spec.get("attemptDurationSeconds") is None:
        return None
    timeout = float(spec["attemptDurationSeconds"])
    if timeout < 60:
        raise client_error("timeout.attemptDurationSeconds must be at least 60 seconds")
    return timeout


def _loaded_vcpus(container: dict[str, Any]) -> float:
    """A loaded job's vCPUs, as it ran on AWS: read, not judged."""
    for r in container.get("resourceRequirements") or ():
        if r.get("type") == "VCPU":
            try:
                return float(r.get("value", 1))
            except (TypeError, ValueError):
                return 1.0
    v = container.get("vcpus")
    return float(v) if isinstance(v, int | float) and v > 0 else 1.0


def _status_filter(status: str) -> Callable[[Job], bool]:
    return lambda job: job.status == status


def _job_filter(f: dict[str, Any], status: str | None) -> Callable[[Job], bool]:
    name = f.get("name")
    values = f.get("values") or []
    names = ("JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER")
    if name not in names or len(values) != 1:
        raise client_error(f"filters: name must be one of {', '.join(names)}, with exactly one value")
    value = str(values[0])
    if name == "JOB_NAME":
        # "a case-insensitive match for the job name. If the value ends with an asterisk (*),
        # the filter matches any job name that begins with the string before the '*'."
        v = value.lower()
        if v.endswith("*"):
            prefix = v[:-1]
            return lambda job: job.name.lower().startswith(prefix)
        return lambda job: job.name.lower() == v
    if name == "JOB_DEFINITION":
        # "The value is case sensitive"; a name matches every revision, an ARN one revision,
        # a trailing * a name prefix ("Asterisk (*) isn't supported when the ARN is used").
        def by_def(job: Job) -> bool:
            arn = job.job_definition
            short = arn.rsplit("/", 1)[-1]
            if value.startswith("arn:"):
                return arn == value
            if value.endswith("*"):
                return short.split(":")[0].startswith(value[:-1])
            return value in (short, short.split(":")[0])
        return by_def
    if name == "SHARE_IDENTIFIER":
        # "The SHARE_IDENTIFIER filter and the jobStatus field can be used together."
        return lambda job: job.extra.get("shareIdentifier") == value and (status is None or job.status == status)
    try:
        bound = int(value)
    except ValueError:
        raise client_error(f"filters: {name} value {value!r} must be epoch milliseconds") from None
    # Compared in the milliseconds createdAt is shown in (createdAt is kept at that precision).
    if name == "BEFORE_CREATED_AT":
        return lambda job: (ms(job.created) or 0) < bound
    return lambda job: (ms(job.created) or 0) > bound


def _fingerprint(p: dict[str, Any]) -> str:
    key = {k: p.get(k) for k in ("jobQueue", "arrayJobId", "jobStatus", "filters")}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _encode_token(index: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"i": index, "f": fingerprint}).encode()).decode()


def _decode_token(token: str, fingerprint: str) -> int:
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        if d["f"] != fingerprint or not isinstance(d["i"], int) or d["i"] < 0:
            raise ValueError
        return int(d["i"])
    except (ValueError, KeyError, TypeError):
        raise client_error("Invalid nextToken: it belongs to another query, or is corrupted") from None


def _check_new(what: str, name: str, taken: Container[str], tags: Any) -> None:
    """A Create* call's name (its form, and that no such resource exists yet) and tags."""
    check_name(what, name)
    if name in taken:
        raise client_error(f"Object already exists: {what.lower()} {name}")
    check_tags(tags)


def _page(items: list[Any], p: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
    # maxResults of the Describe* calls: "This value can be between 1 and 100."
    size = p.get("maxResults")
    if size is not None and not 1 <= size <= 100:
        raise client_error(f"maxResults {size} is out of range: this value can be between 1 and 100")
    fingerprint = "page"
    start = _decode_token(p["nextToken"], fingerprint) if p.get("nextToken") else 0
    end = start + (size or default)
    return items[start:end], (_encode_token(end, fingerprint) if end < len(items) else None)


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        body["nextToken"] = token
    return body
