"""Validate a Batch job submission before anything is sent — pure, no I/O.

The SubmitForm widget and the CLI hand the raw field values (strings, as typed) to
:func:`validate_submission`; it returns either a :class:`SubmitRequest` whose
:meth:`SubmitRequest.to_kwargs` is the exact SubmitJob request, or one clear message
per bad field. A bad value never reaches the API.

The limits quoted here are AWS Batch's own (SubmitJob API reference): a job name of
up to 128 letters, digits, hyphens and underscores starting with a letter or digit;
array size 2..10,000; retry attempts 1..10; attemptDurationSeconds >= 60; tag keys
<= 128 and values <= 256 characters, no ``aws:`` prefix; container environment
variable names may not start with ``AWS_BATCH`` (reserved for the variables Batch
sets itself); at most 50 tags per resource, keys made of letters, digits, spaces and
``_ . : / = + - @`` (Tagging AWS resources, "Tag naming limits") — batchkit adds one
tag of its own, so a submission takes at most 49 user tags; vCPUs are whole numbers
on EC2 and 0.25, 0.5 or whole numbers on Fargate.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Queue / job-definition ARNs: ``arn:aws:batch:REGION:ACCOUNT:job-queue/NAME``.
_BATCH_ARN = re.compile(r"^arn:aws[a-z-]*:batch:[^:]*:[^:]*:(?P<kind>job-queue|job-definition)/(?P<name>.+)$")
#: Punctuation AWS allows in a tag key besides letters, digits and spaces.
_TAG_KEY_PUNCTUATION: Final = frozenset(" _.:/=+-@")
#: AWS allows 50 tags per resource; BatchClient.submit_job adds SUBMISSION_TAG.
MAX_USER_TAGS: Final = 49
#: The fractional vCPU values Fargate accepts; anything else must be a whole number.
_FRACTIONAL_VCPUS: Final = frozenset({0.25, 0.5})

#: Field names of the form, in display order; messages are keyed by these.
FIELDS: tuple[str, ...] = (
    "job_name",
    "job_queue",
    "job_definition",
    "command",
    "vcpus",
    "memory",
    "environment",
    "array_size",
    "retry_attempts",
    "timeout",
    "tags",
)


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """A validated submission; ``to_kwargs()`` is exactly what SubmitJob receives."""

    job_name: str
    job_queue: str
    job_definition: str
    command: tuple[str, ...] = ()
    vcpus: float | None = None
    memory_mib: int | None = None
    environment: tuple[tuple[str, str], ...] = ()
    array_size: int | None = None
    retry_attempts: int | None = None
    timeout_seconds: int | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def to_kwargs(self) -> dict[str, Any]:
        """The SubmitJob request (botocore parameter names), without the batchkit tag.

        ``BatchClient.submit_job`` adds the unique submission tag itself.
        """
        kwargs: dict[str, Any] = {
            "jobName": self.job_name,
            "jobQueue": self.job_queue,
            "jobDefinition": self.job_definition,
        }
        overrides: dict[str, Any] = {}
        if self.command:
            overrides["command"] = list(self.command)
        if self.environment:
            overrides["environment"] = [{"name": k, "value": v} for k, v in self.environment]
        resources = []
        if self.vcpus is not None:
            resources.append({"type": "VCPU", "value": _number_text(self.vcpus)})
        if self.memory_mib is not None:
            resources.append({"type": "MEMORY", "value": str(self.memory_mib)})
        if resources:
            overrides["resourceRequirements"] = resources
        if overrides:
            kwargs["containerOverrides"] = overrides
        if self.array_size is not None:
            kwargs["arrayProperties"] = {"size": self.array_size}
        if self.retry_attempts is not None:
            kwargs["retryStrategy"] = {"attempts": self.retry_attempts}
        if self.timeout_seconds is not None:
            kwargs["timeout"] = {"attemptDurationSeconds": self.timeout_seconds}
        if self.tags:
            kwargs["tags"] = dict(self.tags)
        return kwargs


@dataclass(slots=True)
class Validation:
    """The outcome of :func:`validate_submission`: a request, or messages per field."""

    request: SubmitRequest | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.request is not None and not self.errors


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _arn_name(value: str, kind: str) -> str:
    """The name inside a Batch ARN of ``kind`` (``job-queue``/``job-definition``), else ``value``.

    SubmitJob takes a name or an ARN for both, so the membership check compares names;
    the request still sends what the user typed.
    """
    match = _BATCH_ARN.match(value)
    return match.group("name") if match and match.group("kind") == kind else value


def _valid_tag_key(key: str) -> bool:
    # AWS: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$ — Unicode letters, spaces, digits and this punctuation.
    return all(ch.isalnum() or ch in _TAG_KEY_PUNCTUATION for ch in key)


def _parse_int(text: object, name: str, lo: int, hi: int | None, errors: dict[str, str], what: str) -> int | None:
    if _blank(text):
        return None
    try:
        number = int(str(text).strip())
    except ValueError:
        errors[name] = f"{what}: {text!r} is not a whole number"
        return None
    if number < lo or (hi is not None and number > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        errors[name] = f"{what} must be {bound} (got {number})"
        return None
    return number


def _parse_pairs(text: object, name: str, errors: dict[str, str], what: str) -> list[tuple[str, str]]:
    """``KEY=VALUE`` per line (or comma-separated on one line); a Mapping is taken as is.

    One line is split on commas only when every comma-separated item is a ``KEY=VALUE``:
    ``JAVA_OPTS=-Xmx1g,-Xms1g`` is one variable whose value has a comma, not two entries.
    """
    if isinstance(text, Mapping):
        return [(str(k), str(v)) for k, v in text.items()]
    if _blank(text):
        return []
    pairs: list[tuple[str, str]] = []
    raw = str(text)
    if "\n" in raw:
        items = raw.splitlines()
    else:
        parts = raw.split(",")
        items = parts if all("=" in p for p in parts if p.strip()) else [raw]
    for lineno, item in enumerate(items, start=1):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            errors[name] = f"{what} entry {lineno} ({item!r}) is not KEY=VALUE"
            return []
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        errors[name] = f"{what}: {', '.join(dupes)} given more than once"
        return []
    return pairs


def _check_job_name(raw: object) -> tuple[str, str | None]:
    job_name = str(raw or "").strip()
    if not job_name:
        return job_name, "Job name is required (letters, digits, - and _, up to 128)"
    if not _JOB_NAME.match(job_name):
        return job_name, (
            f"Job name {job_name!r} is invalid: AWS Batch allows up to 128 letters, digits, "
            "hyphens and underscores, starting with a letter or digit"
        )
    return job_name, None


def _check_job_queue(raw: object, queues: Collection[str] | None) -> tuple[str, str | None]:
    job_queue = str(raw or "").strip()
    if not job_queue:
        return job_queue, "Pick a job queue"
    if queues is not None and _arn_name(job_queue, "job-queue") not in queues:
        known = ", ".join(sorted(queues)) or "none"
        return job_queue, f"Job queue {job_queue!r} does not exist in this account/region (known: {known})"
    return job_queue, None


def _check_job_definition(raw: object, job_definitions: Collection[str] | None) -> tuple[str, str | None]:
    """A definition is known by its name, or by ``name:revision`` (the name alone suffices)."""
    job_definition = str(raw or "").strip()
    if not job_definition:
        return job_definition, "Pick a job definition"
    if job_definitions is None:
        return job_definition, None
    name = _arn_name(job_definition, "job-definition")
    if name not in job_definitions and name.split(":", 1)[0] not in job_definitions:
        known = ", ".join(sorted(job_definitions)) or "none"
        return job_definition, f"Job definition {job_definition!r} is not registered (known: {known})"
    return job_definition, None


def _check_command(raw: object) -> tuple[tuple[str, ...], str | None]:
    """A list is taken word for word; a string is split the way a shell would."""
    if isinstance(raw, list | tuple):
        return tuple(str(part) for part in raw), None
    if _blank(raw):
        return (), None
    try:
        return tuple(shlex.split(str(raw))), None
    except ValueError as exc:
        return (), f"Command cannot be split into words ({exc}): check the quotes"


def _check_vcpus(raw: object) -> tuple[float | None, str | None]:
    if _blank(raw):
        return None, None
    try:
        vcpus = float(str(raw).strip())
    except ValueError:
        return None, f"vCPUs: {raw!r} is not a number"
    # EC2 takes whole vCPUs; Fargate whole vCPUs or 0.25 / 0.5 (0.75 is no Fargate size).
    if not vcpus > 0 or vcpus > 4096:
        return None, f"vCPUs must be more than 0 and at most 4096 (got {raw})"
    if not vcpus.is_integer() and vcpus not in _FRACTIONAL_VCPUS:
        return None, f"vCPUs must be a whole number, or 0.25 or 0.5 on Fargate (got {raw})"
    return vcpus, None


def _environment_error(pairs: list[tuple[str, str]]) -> str | None:
    for key, _ in pairs:
        if not _ENV_NAME.match(key):
            return f"Environment variable name {key!r} is not a valid name"
        if key.startswith("AWS_BATCH"):
            return f"Environment variable {key!r}: names starting with AWS_BATCH are reserved by Batch"
    return None


def _tags_error(pairs: list[tuple[str, str]]) -> str | None:
    if len(pairs) > MAX_USER_TAGS:
        return (
            f"Tags: {len(pairs)} given, at most {MAX_USER_TAGS} (AWS allows 50 per job and "
            f"batchkit adds its own submission tag): remove {len(pairs) - MAX_USER_TAGS}"
        )
    for key, value in pairs:
        if not key or len(key) > 128 or len(value) > 256:
            return f"Tag {key!r}: keys need 1-128 characters, values up to 256"
        if key.lower().startswith("aws:"):
            return f"Tag {key!r}: the aws: prefix is reserved by AWS"
        if not _valid_tag_key(key):
            return (
                f"Tag key {key!r} has characters AWS does not allow: use letters, digits, "
                "spaces and _ . : / = + - @"
            )
        if key.startswith("batchkit:"):
            return f"Tag {key!r}: the batchkit: prefix is set by batchkit itself"
    return None


def validate_submission(
    values: Mapping[str, Any],
    *,
    queues: Collection[str] | None = None,
    job_definitions: Collection[str] | None = None,
) -> Validation:
    """Check raw form values; ``queues``/``job_definitions`` are what the account has.

    Keys are the names in :data:`FIELDS`; values are what the user typed (strings)
    or already-typed values. Unknown keys are an error so a typo in code is caught.
    Each field gets at most one message, the first problem found.
    """
    errors: dict[str, str] = {}

    def note(name: str, message: str | None) -> None:
        if message is not None:
            errors[name] = message

    unknown = sorted(set(values) - set(FIELDS))
    note("form", f"unknown field(s): {', '.join(unknown)}" if unknown else None)
    job_name, problem = _check_job_name(values.get("job_name"))
    note("job_name", problem)
    job_queue, problem = _check_job_queue(values.get("job_queue"), queues)
    note("job_queue", problem)
    job_definition, problem = _check_job_definition(values.get("job_definition"), job_definitions)
    note("job_definition", problem)
    command, problem = _check_command(values.get("command"))
    note("command", problem)
    vcpus, problem = _check_vcpus(values.get("vcpus"))
    note("vcpus", problem)
    # AWS Batch rejects MEMORY below 4 MiB.
    memory = _parse_int(values.get("memory"), "memory", 4, None, errors, "Memory (MiB)")
    env_pairs = _parse_pairs(values.get("environment"), "environment", errors, "Environment")
    note("environment", _environment_error(env_pairs))
    # Array jobs need 2..10,000 children; leave blank for a single job.
    array_size = _parse_int(values.get("array_size"), "array_size", 2, 10_000, errors, "Array size")
    retry_attempts = _parse_int(values.get("retry_attempts"), "retry_attempts", 1, 10, errors, "Retry attempts")
    timeout = _parse_int(values.get("timeout"), "timeout", 60, None, errors, "Timeout (seconds)")
    tag_pairs = _parse_pairs(values.get("tags"), "tags", errors, "Tags")
    note("tags", _tags_error(tag_pairs))

    if errors:
        return Validation(request=None, errors=errors)
    return Validation(
        request=SubmitRequest(
            job_name=job_name,
            job_queue=job_queue,
            job_definition=job_definition,
            command=command,
            vcpus=vcpus,
            memory_mib=memory,
            environment=tuple(env_pairs),
            array_size=array_size,
            retry_attempts=retry_attempts,
            timeout_seconds=timeout,
            tags=tuple(tag_pairs),
        )
    )
