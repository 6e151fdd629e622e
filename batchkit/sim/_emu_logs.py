"""CloudWatch Logs (and S3) for LocalBatch, served by moto on loopback.

AWS Batch writes each container attempt's output to the log stream
``<jobDefinitionName>/default/<ecsTaskId>`` in the log group ``/aws/batch/job``
("The log group for Batch jobs is /aws/batch/job. Each container attempt receives a
log stream name when they reach the RUNNING status": ContainerDetail.logStreamName in
the AWS Batch API reference). LocalBatch does the same, but it does not emulate
CloudWatch Logs itself: moto (a maintained emulator of that API and of S3) serves
them, so ``logs.get_log_events`` and ``s3.get_object`` work with a real boto3 client.

moto is imported only when a backdrop starts (``pip install 'batchkit[emulator]'``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger("batchkit.sim")

#: "The log group for Batch jobs is /aws/batch/job." (ContainerDetail.logStreamName)
LOG_GROUP: Final = "/aws/batch/job"
#: PutLogEvents accepts at most 10,000 events a call (CloudWatch Logs API reference).
MAX_EVENTS_PER_PUT: Final = 10_000

INSTALL_HINT: Final = "install the emulator extra: pip install 'batchkit[emulator]'"


@dataclass(frozen=True, slots=True)
class LogWrite:
    """Lines one container attempt printed: ``events`` are (epoch ms, message), in time order."""

    stream: str
    events: tuple[tuple[int, str], ...]


class MotoBackdrop:
    """moto's server (CloudWatch Logs, S3, ...) on a loopback port, in this process.

    ``with MotoBackdrop() as aws: aws.client("logs").describe_log_groups()``. Every AWS
    service moto implements answers on the one ``endpoint_url``; dummy credentials.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        self.host = host
        self.port = port
        self.region = region
        self.endpoint_url = ""
        self._server: Any = None

    def start(self) -> MotoBackdrop:
        if self._server is not None:
            return self
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as e:
            raise RuntimeError(f"CloudWatch Logs/S3 for LocalBatch need moto's server ({e}): {INSTALL_HINT}") from None
        # werkzeug logs every request at INFO: keep a test's or a notebook's output readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> MotoBackdrop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str, **config_kwargs: Any) -> Any:
        """A boto3 client for ``service`` ("logs", "s3", ...) bound to this backdrop."""
        if not self.endpoint_url:
            raise RuntimeError("MotoBackdrop is not started: use `with MotoBackdrop() as aws:` or .start()")
        return aws_client(service, self.endpoint_url, self.region, **config_kwargs)


def aws_client(service: str, endpoint_url: str, region: str, **config_kwargs: Any) -> Any:
    """A boto3 client with dummy credentials for a loopback endpoint."""
    from botocore.config import Config

    from ._emu_model import boto_session

    session = boto_session()
    with _SESSION_LOCK:  # boto3 sessions are not thread-safe
        return session.client(
            service, endpoint_url=endpoint_url, region_name=region, config=Config(**config_kwargs),
            aws_access_key_id="test", aws_secret_access_key="test",
        )


_SESSION_LOCK = threading.Lock()


class LogSink:
    """Writes LocalBatch's job output to a CloudWatch Logs endpoint (moto's, normally)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None
        self._group_ready = False
        #: events CloudWatch Logs refused (older than 14 days or more than 2 h ahead of
        #: its clock: a manual emulator clock far from now); each refusal is also logged as a
        #: warning that says why. No test reads the count: it is there for whoever debugs a sink.
        self.rejected = 0

    def write(self, writes: list[LogWrite]) -> None:
        """Create each stream and put its events: one network call per stream, plus one per new stream."""
        if not writes:
            return
        if self._client is None:
            self._client = aws_client("logs", self.endpoint_url, self.region, retries={"mode": "standard"})
        logs = self._client
        if not self._group_ready:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=LOG_GROUP)
            self._group_ready = True
        for w in writes:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=w.stream)
            events = [{"timestamp": t, "message": m} for t, m in w.events]
            for i in range(0, len(events), MAX_EVENTS_PER_PUT):
                answer = logs.put_log_events(
                    logGroupName=LOG_GROUP, logStreamName=w.stream, logEvents=events[i : i + MAX_EVENTS_PER_PUT]
                )
                info = answer.get("rejectedLogEventsInfo") or {}
                if info:
                    self.rejected += _rejected_count(info, len(events[i : i + MAX_EVENTS_PER_PUT]))
                    log.warning(
                        "CloudWatch Logs refused some lines of %s (%s): their emulator timestamps are more than "
                        "14 days old or 2 hours ahead of the logs service's clock", w.stream, info,
                    )


def _rejected_count(info: dict[str, Any], n: int) -> int:
    count = 0
    if "tooOldLogEventEndIndex" in info:
        count += int(info["tooOldLogEventEndIndex"]) + 1
    if "tooNewLogEventStartIndex" in info:
        count += n - int(info["tooNewLogEventStartIndex"])
    return count
