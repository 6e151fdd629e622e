"""AWS Batch API calls over HTTP: route, inject the planned fault, validate, call the backend.

Like a moto ``responses.py``: one place that turns a REST-JSON request into a backend
call and its answer. Routing and validation come from botocore's service model
(``_emu_model``), the semantics from the backend (``_emu_engine.Engine``), the
faults from the plan (``_emu_faults``). No sockets: the answer goes back to the
transport (``_emu_http``) as an ``Answer``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ._emu_engine import Engine
from ._emu_faults import ERROR_ANSWERS, REFUSING_KINDS
from ._emu_http import Answer, parse_json_body
from ._emu_model import ApiError, service_model

if TYPE_CHECKING:
    from .localbatch import LocalBatch

log = logging.getLogger("batchkit.sim")

# Operation name -> Engine method. Everything else in the model answers 404 UnknownOperation.
HANDLERS: dict[str, Callable[[Engine, dict[str, Any]], dict[str, Any]]] = {
    "CreateComputeEnvironment": Engine.create_compute_environment,
    "UpdateComputeEnvironment": Engine.update_compute_environment,
    "DescribeComputeEnvironments": Engine.describe_compute_environments,
    "CreateJobQueue": Engine.create_job_queue,
    "UpdateJobQueue": Engine.update_job_queue,
    "DescribeJobQueues": Engine.describe_job_queues,
    "RegisterJobDefinition": Engine.register_job_definition,
    "DeregisterJobDefinition": Engine.deregister_job_definition,
    "DescribeJobDefinitions": Engine.describe_job_definitions,
    "SubmitJob": Engine.submit_job,
    "DescribeJobs": Engine.describe_jobs,
    "ListJobs": Engine.list_jobs,
    "TerminateJob": Engine.terminate_job,
    "CancelJob": Engine.cancel_job,
    "TerminateJobs": lambda e, p: e.bulk(p, "terminate"),
    "CancelJobs": lambda e, p: e.bulk(p, "cancel"),
    "TagResource": Engine.tag_resource,
    "UntagResource": Engine.untag_resource,
    "ListTagsForResource": Engine.list_tags_for_resource,
}


def error_answer(error: ApiError) -> Answer:
    return Answer.error(error.status, error.code, error.message)


def answer_api(lb: LocalBatch, method: str, path: str, raw: bytes) -> Answer:
    """One API call, answered; an unexpected failure is a logged 500 ServerException."""
    try:
        return _answer(lb, method, path, raw)
    except Exception:
        # Never a traceback on the wire, never a silently dropped connection.
        log.exception("LocalBatch: %s %s failed", method, path)
        return Answer.error(500, "ServerException", "Internal error: see the emulator log")


def _answer(lb: LocalBatch, method: str, path: str, raw: bytes) -> Answer:
    model = service_model()
    found = model.route(method, path)
    if found is None:
        return Answer.error(404, "UnknownOperationException", f"No operation at {method} {urlsplit(path).path}")
    op, path_params = found
    with lb._lock:
        lb.calls[op] = lb.calls.get(op, 0) + 1
    if op not in HANDLERS or op in lb.unsupported_operations:
        return Answer.error(404, "UnknownOperationException", f"Operation {op} is not supported here")
    decision = lb.faults.decide(op)
    if decision.latency > 0:
        time.sleep(decision.latency)  # real time on purpose: it is the caller's wall clock that suffers
    kind = decision.kind
    if kind in ("drop", "reset"):
        return Answer(drop="reset" if kind == "reset" else "close")
    if kind in REFUSING_KINDS:
        status, code, message = ERROR_ANSWERS[kind]
        return Answer.error(status, code, message)
    if kind in ("empty", "empty-body", "empty-list"):
        return Answer(200, _empty_answer(op, kind, decision.firing))
    try:
        params = parse_json_body(raw)
        params.update(path_params)
        query = parse_qs(urlsplit(path).query)
        if op == "UntagResource" and "tagKeys" in query:
            params["tagKeys"] = query["tagKeys"]
        model.validate_input(op, params)
        with lb._lock:
            lb._catch_up()
            if kind == "job-errors" and op in ("TerminateJobs", "CancelJobs"):
                rate = decision.job_error_rate
                body = lb._engine.bulk(
                    params,
                    "terminate" if op == "TerminateJobs" else "cancel",
                    fail=lambda _job_id: lb.faults.job_error(rate),
                )
            else:
                body = HANDLERS[op](lb._engine, params)
        body = model.shape_output(op, body)
    except ApiError as e:
        return error_answer(e)
    except RecursionError:
        return Answer.error(400, "ClientException", f"{op}: the request is nested too deeply")
    except Exception:
        log.exception("LocalBatch: %s failed", op)
        return Answer.error(500, "ServerException", f"Internal error in {op}: see the emulator log")
    if kind == "applied-lost":
        return Answer(drop="close")
    if kind == "applied-500":
        status, code, message = ERROR_ANSWERS[kind]
        return Answer.error(status, code, message)
    return Answer(200, body)


def _empty_answer(op: str, kind: str, firing: int) -> dict[str, Any]:
    # Both shapes a broken answer takes: no member at all (the null Nextflow's NPE tripped
    # on, fixed in 24.10.2) and an empty list for ids that do exist.
    lists = {"DescribeJobs": "jobs", "ListJobs": "jobSummaryList"}
    as_list = kind == "empty-list" or (kind == "empty" and firing % 2 == 0)
    if as_list and op in lists:
        return {lists[op]: []}
    return {}
