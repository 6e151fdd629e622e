"""Thin readers for the task inspector: a CloudWatch Logs stream's tail and S3 work-dir tails.

The only code that talks to CloudWatch Logs and S3. Built like ``BatchClient``: one boto3
client each, from the same session rules (profile, region, dummy credentials on a loopback
emulator), every HTTP request paying a token of a shared :class:`~batchkit.ratelimit.RateBudget`,
every call run under the same outer :class:`~batchkit.retry.Retrying` read policy. botocore's
own retries are switched off (one attempt) so that policy is the only retry layer.

Endpoints: pass ``endpoint_urls={"logs": ..., "s3": ...}`` (``replay_incident()`` exposes
them as ``incident.endpoint_urls``); otherwise the SDKs' service-specific endpoint settings
apply: ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
or ``endpoint_url`` under ``services`` in the profile (AWS SDKs and Tools Reference Guide,
"Service-specific endpoints": the variable is named from the serviceId, "CloudWatch Logs").
``AWS_ENDPOINT_URL_LOGS`` is read too, as a short alias.

Bounded everywhere: a log tail is one GetLogEvents page read backwards from the end
(``startFromHead=false``), a file is one ranged GET of its last bytes (``Range: bytes=-N``),
never the whole object. A refused permission is named (the IAM action to add) and returned
inside the result, so the rest of an inspection still shows.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError

from batchkit._aws_session import boto3_session, client_region, emulator_credentials
from batchkit._net import is_loopback_host
from batchkit._time import from_epoch_ms
from batchkit.errors import AccessDeniedError, ApiUnavailableError, AwsError, CredentialsError
from batchkit.inspection import (
    DEFAULT_LINES,
    DEFAULT_TAIL_BYTES,
    DEFAULT_WITNESS_LIMIT,
    LOG_GROUP,
    FileTail,
    LogLine,
    LogTail,
    WorkdirEvidence,
    evidence_from_files,
)
from batchkit.ratelimit import RateBudget
from batchkit.retry import (
    DeadlineExceededError,
    Retrying,
    error_code,
    error_message,
    http_status,
    policy_for,
)

T = TypeVar("T")

__all__ = ["AwsReaders", "LogsReader", "S3Reader", "make_service_client", "split_s3_url"]

#: GetLogEvents answers at most 10,000 events or 1 MB a page (CloudWatch Logs API reference).
MAX_LOG_PAGE: Final = 10_000
#: Pages read backwards to fill one tail: CloudWatch may answer short or empty pages.
MAX_LOG_PAGES: Final = 5
#: Longest log message kept (a CloudWatch event is at most 256 KB).
MAX_MESSAGE: Final = 16 * 1024
#: CloudWatch Logs' GetLogEvents quota is 25 requests/s per account and region (CloudWatch
#: Logs quotas page); shared with everybody else's console: stay well below.
DEFAULT_RATE: Final = 10.0

_DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                            "UnauthorizedAccess", "Forbidden", "403", "HTTP403"})


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{url!r} is not an s3:// URL: the inspector reads work dirs in S3 only")
    return parts.netloc, parts.path.lstrip("/")


def make_service_client(
    service: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    session: Any = None,
) -> Any:
    """A boto3 client for ``service`` with the Batch client's session rules.

    One botocore attempt: :class:`Retrying` above it is the retry layer.
    """
    from botocore.config import Config

    if endpoint_url is None:
        endpoint_url = env_endpoint(service)
    if session is None:
        session = boto3_session(profile, region)
    resolved = client_region(region, session, endpoint_url)
    extra = emulator_credentials(endpoint_url, profile)
    loopback = bool(endpoint_url) and is_loopback_host(urlsplit(endpoint_url or "").hostname or "")
    options: dict[str, Any] = {}
    if service == "s3" and loopback:
        options["s3"] = {"addressing_style": "path"}  # no bucket.127.0.0.1 host names
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="batchkit",
        **options,
    )
    return session.client(service, region_name=resolved, endpoint_url=endpoint_url, config=config, **extra)


#: Environment variables naming a service's endpoint, most specific first.
_ENV_ENDPOINTS: Final[dict[str, tuple[str, ...]]] = {
    "logs": ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL_LOGS", "AWS_ENDPOINT_URL"),
    "s3": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
}


def env_endpoint(service: str) -> str | None:
    """The endpoint the environment names for ``service`` (boto3 would use the same), if any.

    Read here so a loopback emulator named there gets dummy credentials, as an explicit
    ``endpoint_url`` does.
    """
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in _ENV_ENDPOINTS.get(service, ("AWS_ENDPOINT_URL",)):
        value = os.environ.get(name)
        if value:
            return value
    return None


class _Reader:
    """Budget hook and outer retry policy around one boto3 client."""

    service_name: str = ""

    def __init__(
        self,
        client: Any,
        *,
        budget: RateBudget | None = None,
        deadline: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.deadline = float(deadline)
        self.budget = budget if budget is not None else RateBudget(DEFAULT_RATE, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        #: HTTP requests sent (each paid a budget token)
        self.requests = 0
        #: the whole command's deadline on ``clock`` (``give_up_after``); None: per call only
        self._give_up_at: float | None = None
        prefix = client.meta.service_model.service_id.hyphenize()
        self._hook = f"batchkit-budget-{id(self)}"
        client.meta.events.register_first(f"before-send.{prefix}", self._on_before_send, unique_id=self._hook)
        self._prefix = prefix

    def _on_before_send(self, **_: Any) -> None:
        self.requests += 1
        self.budget.acquire()
        return None

    def give_up_after(self, seconds: float) -> None:
        """Bound every later call by one deadline ``seconds`` from now (a whole command's), as
        ``BatchClient.give_up_after`` does: past it, calls fail at once without a request."""
        self._give_up_at = self._clock() + max(0.0, float(seconds))

    def _call(self, fn: Callable[[], T]) -> T:
        deadline = self.deadline
        if self._give_up_at is not None:
            left = self._give_up_at - self._clock()
            if left <= 0:
                raise DeadlineExceededError(TimeoutError("the command's deadline passed before it was sent"), 0, 0.0)
            deadline = min(deadline, left)
        retrying = Retrying(policy_for("read", deadline), clock=self._clock, sleep=self._sleep, rng=self._rng)
        try:
            return retrying.call(fn)
        except NoCredentialsError as error:
            raise CredentialsError(
                "No AWS credentials found: set AWS_PROFILE or run `aws configure`, or pass "
                "endpoint_urls for the local emulator",
                code="NoCredentials",
            ) from error

    def close(self) -> None:
        self.client.meta.events.unregister(f"before-send.{self._prefix}", unique_id=self._hook)


def _denied(error: BaseException) -> bool:
    return error_code(error) in _DENIED or http_status(error) == 403


def _refusal(service: str, action: str, what: str, error: BaseException, hint: str = "") -> str:
    """One line naming the refused call, the AWS error and the IAM action to add."""
    if isinstance(error, DeadlineExceededError) and error.attempts == 0:
        return f"{service} {action} {what}: not sent, the command's deadline had passed"
    if isinstance(error, DeadlineExceededError):
        return (f"{service} {action} {what} kept failing ({error.attempts} attempts); last error "
                f"{error_code(error.last_error)}: {error_message(error.last_error)} — try again later")
    code = error_code(error)
    if _denied(error):
        return f"{service} refused {action} {what} ({code}) — add {action} to the role's IAM policy{hint}"
    return f"{service} {action} {what}: {code}: {error_message(error)}"


class LogsReader(_Reader):
    """The tail of a CloudWatch Logs stream, paged backwards."""

    service_name = "CloudWatch Logs"

    def tail(
        self,
        stream: str,
        *,
        group: str = LOG_GROUP,
        lines: int = DEFAULT_LINES,
        before: str | None = None,
    ) -> LogTail:
        """The last ``lines`` events of ``stream`` (or the ``lines`` before token ``before``).

        Never raises for a refusal or a missing stream: the tail carries the error line.
        """
        lines = max(1, min(int(lines), MAX_LOG_PAGE))
        collected: list[LogLine] = []
        token = before
        earlier: str | None = None
        try:
            for _ in range(MAX_LOG_PAGES):
                params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                                          "limit": lines - len(collected)}
                if token is None:
                    params["startFromHead"] = False
                else:
                    params["nextToken"] = token

                def page(params: dict[str, Any] = params) -> dict[str, Any]:
                    answer: dict[str, Any] = self.client.get_log_events(**params)
                    return answer

                answer = self._call(page)
                events = [e for e in answer.get("events") or () if isinstance(e, Mapping)]
                got = [LogLine(from_epoch_ms(e.get("timestamp")), str(e.get("message", ""))[:MAX_MESSAGE].rstrip("\n"))
                       for e in events]
                collected[:0] = got
                nxt = answer.get("nextBackwardToken")
                # The same token back means the start of the stream (GetLogEvents reference).
                at_start = not isinstance(nxt, str) or nxt == token
                earlier = None if at_start else nxt
                if at_start or len(collected) >= lines:
                    break
                token = nxt
        except (ClientError, DeadlineExceededError, ParamValidationError) as error:
            if error_code(error) == "ResourceNotFoundException":
                message = (f"no log stream {stream} in {group}: the attempt has not started, its "
                           "logs went to another group (the job definition's logConfiguration), or they expired")
            else:
                message = _refusal(self.service_name, "logs:GetLogEvents", f"on {group} {stream}", error)
            return LogTail(group, stream, tuple(collected[-lines:]), earlier, message)
        return LogTail(group, stream, tuple(collected[-lines:]), earlier if collected else None)


_S3_HINT: Final = (" (and s3:ListBucket on the bucket: without it S3 answers AccessDenied "
                   "for a file that does not exist, too)")


class S3Reader(_Reader):
    """Ranged reads of a task work dir's files in S3."""

    service_name = "S3"

    def list_workdir(self, workdir: str) -> dict[str, tuple[int, datetime | None]]:
        """{file name: (size, last modified)} directly in ``workdir`` (one ListObjectsV2 page).

        Raises AccessDeniedError naming s3:ListBucket when listing is refused.
        """
        bucket, prefix = split_s3_url(workdir.rstrip("/") + "/")

        def ask() -> dict[str, Any]:
            answer: dict[str, Any] = self.client.list_objects_v2(
                Bucket=bucket, Prefix=prefix, Delimiter="/", MaxKeys=100
            )
            return answer

        try:
            answer = self._call(ask)
        except (ClientError, DeadlineExceededError) as error:
            text = _refusal(self.service_name, "s3:ListBucket", f"on s3://{bucket}/{prefix}", error)
            if _denied(error):
                raise AccessDeniedError(text, operation="ListObjectsV2", code=error_code(error)) from error
            if isinstance(error, DeadlineExceededError):
                raise ApiUnavailableError(text, operation="ListObjectsV2") from error
            raise AwsError(text, operation="ListObjectsV2", code=error_code(error)) from error
        out: dict[str, tuple[int, datetime | None]] = {}
        for obj in answer.get("Contents") or ():
            key = str(obj.get("Key", ""))
            name = key[len(prefix):]
            if name and "/" not in name:
                modified = obj.get("LastModified")
                out[name] = (int(obj.get("Size") or 0), modified if isinstance(modified, datetime) else None)
        return out

    def tail(self, url: str, *, max_bytes: int = DEFAULT_TAIL_BYTES) -> FileTail:
        """The last ``max_bytes`` of one object, in one ranged GET; never raises for AWS errors."""
        name = url.rstrip("/").rsplit("/", 1)[-1]
        try:
            bucket, key = split_s3_url(url)
        except ValueError as error:
            return FileTail(name, url, error=str(error))
        max_bytes = max(1, int(max_bytes))

        def ask() -> tuple[bytes, int | None, datetime | None, bool]:
            answer = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{max_bytes}")
            body = answer["Body"]
            ranged = isinstance(answer.get("ContentRange"), str)
            length = answer.get("ContentLength")
            # A store that ignores Range answers 200 with the whole object: read no more than
            # the tail's size of it, and say so rather than show its head as its tail.
            whole = not ranged and isinstance(length, int) and length > max_bytes
            try:
                data: bytes = b"" if whole else body.read(max_bytes + 1)
            finally:
                body.close()
            total = _total_size(answer.get("ContentRange"), length)
            modified = answer.get("LastModified")
            return data, total, modified if isinstance(modified, datetime) else None, whole

        try:
            data, total, modified, whole = self._call(ask)
        except (ClientError, DeadlineExceededError, ParamValidationError) as error:
            code = error_code(error)
            if code in {"NoSuchKey", "404", "HTTP404", "NotFound"}:
                return FileTail(name, url, exists=False)
            if code == "InvalidRange":  # a suffix range of an empty object
                return FileTail(name, url, exists=True, size=0)
            hint = _S3_HINT if _denied(error) else ""
            return FileTail(name, url, error=_refusal(self.service_name, "s3:GetObject", f"on {url}", error, hint))
        if whole:
            return FileTail(name, url, exists=True, size=total, modified=modified,
                            error=f"the S3 endpoint ignored the Range header for {url} ({total} bytes): "
                            "not reading the whole object")
        data = data[-max_bytes:]
        size = total if total is not None else len(data)
        truncated = size > len(data)
        text = data.decode("utf-8", errors="replace")
        if truncated and "\n" in text:
            text = text.split("\n", 1)[1]  # the read began mid-line: drop the partial line
        return FileTail(name, url, exists=True, size=size, text=text, truncated=truncated, modified=modified)

    def evidence(self, workdir: str) -> WorkdirEvidence:
        """``.exitcode`` (and ``.command.begin`` only when there is no exit code): at most 2 GETs."""
        base = workdir.rstrip("/")
        ex = self.tail(f"{base}/.exitcode", max_bytes=64)
        files = [ex]
        if not (ex.exists and ex.error is None):
            files.append(self.tail(f"{base}/.command.begin", max_bytes=64))
        return evidence_from_files(base, files)

    def evidence_for(self, workdirs: Iterable[str], *, limit: int = DEFAULT_WITNESS_LIMIT) -> dict[str, WorkdirEvidence]:
        """Evidence for up to ``limit`` work dirs (2 GETs each at most); the rest marked skipped."""
        out: dict[str, WorkdirEvidence] = {}
        for i, wd in enumerate(dict.fromkeys(w.rstrip("/") for w in workdirs)):
            out[wd] = self.evidence(wd) if i < limit else WorkdirEvidence(wd, skipped=True)
        return out


def _total_size(content_range: Any, content_length: Any) -> int | None:
    """The object's full size from ``Content-Range: bytes a-b/total`` (else the body length)."""
    if isinstance(content_range, str) and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return int(content_length) if isinstance(content_length, int) else None


class AwsReaders:
    """The logs and S3 readers of one inspector, sharing one rate budget."""

    def __init__(self, logs: LogsReader, s3: S3Reader) -> None:
        self.logs = logs
        self.s3 = s3

    @classmethod
    def create(
        cls,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_urls: Mapping[str, str] | None = None,
        rate: float = DEFAULT_RATE,
        deadline: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: RateBudget | None = None,
    ) -> AwsReaders:
        """Both readers; ``budget`` (default: ``rate`` requests/s) is shared by them."""
        urls = dict(endpoint_urls or {})
        budget = budget if budget is not None else RateBudget(rate, clock=clock, sleep=sleep)
        logs = make_service_client("logs", region=region, profile=profile, endpoint_url=urls.get("logs"))
        s3 = make_service_client("s3", region=region, profile=profile, endpoint_url=urls.get("s3"))
        common: dict[str, Any] = {"budget": budget, "deadline": deadline, "clock": clock, "sleep": sleep}
        return cls(LogsReader(logs, **common), S3Reader(s3, **common))

    def give_up_after(self, seconds: float) -> None:
        """One whole-command deadline for both readers (``--deadline``), ``seconds`` from now."""
        self.logs.give_up_after(seconds)
        self.s3.give_up_after(seconds)

    def close(self) -> None:
        self.logs.close()
        self.s3.close()

    def __enter__(self) -> AwsReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
