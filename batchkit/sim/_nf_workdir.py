"""The task work dir in S3, as Nextflow and its task wrapper leave it on AWS Batch.

Nextflow uploads ``.command.sh`` (the task script) and ``.command.run`` (the wrapper)
before it submits the job; inside the container the wrapper touches ``.command.begin``
when the task starts, and on exit writes ``.exitcode`` and copies ``.command.out``,
``.command.err`` and ``.command.log`` back (nextflow-io/nextflow,
``modules/nextflow/src/main/resources/nextflow/executor/command-run.txt``: ``nxf_main``
touches ``.command.begin``; ``on_exit`` writes ``.exitcode``; the AWS Batch launcher copies
``.command.log`` in its ``trap``). A job still running has no ``.exitcode`` yet.

The simulated Nextflow calls :class:`WorkdirWriter` at the moments it learns of each
step; a real S3 API (moto on loopback) stores the objects.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ._nf_format import launch_command


def task_output(name: str, process: str, tag: str | None, exit_code: int) -> tuple[list[str], list[str]]:
    """(stdout, stderr) a task's script prints: its CloudWatch log stream holds both."""
    out = [
        f"+ {process.lower()}.sh {tag or ''}".rstrip(),
        f"{name}: reading {tag or 'input'}",
        f"{name}: 1,048,576 records processed",
    ]
    err = [] if exit_code == 0 else [f"{name}: error: command exited with status {exit_code}"]
    return out, err


def _split(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


class WorkdirWriter:
    """Writes a task's wrapper files to its S3 work dir through a boto3 ``s3`` client.

    Each file is its own PutObject over HTTP. With ``threads`` > 1 they go out on that many
    threads (each key is written once, so their order does not matter) and :meth:`flush`
    waits for all of them: one at a time, a 40-task replay spent seconds on them. With the
    default of one thread a write is done when the call returns.
    """

    def __init__(self, s3: Any, work_dir: str, *, threads: int = 1) -> None:
        self.s3 = s3
        self.bucket, _ = _split(work_dir.rstrip("/") + "/")
        self._bucket_ready = False
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[Any]] = []

    def _put(self, workdir: str, name: str, body: str) -> None:
        if not self._bucket_ready:
            with contextlib.suppress(self.s3.exceptions.BucketAlreadyOwnedByYou, self.s3.exceptions.BucketAlreadyExists):
                self.s3.create_bucket(Bucket=self.bucket)
            self._bucket_ready = True
        bucket, key = _split(f"{workdir.rstrip('/')}/{name}")
        if self._threads <= 1:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="batchkit-sim-s3")
        self._pending.append(self._pool.submit(self.s3.put_object, Bucket=bucket, Key=key, Body=body.encode()))

    def flush(self) -> None:
        """Wait until every file written so far is in S3 (the first failure is raised)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def staged(self, workdir: str, *, name: str, process: str, tag: str | None) -> None:
        """Before SubmitJob: the task script and its wrapper."""
        self._put(workdir, ".command.sh", f"#!/bin/bash -ue\n{process.lower()}.sh {tag or ''}\n")
        run = "\n".join(
            [
                "#!/bin/bash",
                f"# NEXTFLOW TASK: {name}",
                "set -e",
                "set -u",
                "NXF_DEBUG=${NXF_DEBUG:=0}; [[ $NXF_DEBUG > 1 ]] && set -x",
                "NXF_ENTRY=${1:-nxf_main}",
                f"# launcher: {' '.join(launch_command(workdir)[-1:])}",
                "nxf_main() {",
                "    trap on_exit EXIT",
                "    touch .command.begin",
                "    /bin/bash -ue .command.sh > .command.out 2> .command.err",
                "}",
                "on_exit() { exit_status=${nxf_main_ret:=$?}; printf -- $exit_status > .exitcode; }",
                "$NXF_ENTRY",
                "",
            ]
        )
        self._put(workdir, ".command.run", run)

    def began(self, workdir: str) -> None:
        """The wrapper started the task script."""
        self._put(workdir, ".command.begin", "")

    def finished(
        self, workdir: str, *, name: str, exit_code: int | None, output: tuple[list[str], list[str]] | None = None
    ) -> None:
        """The wrapper's exit: outputs, the combined log, and ``.exitcode`` when it had one."""
        out, err = output if output is not None else ([f"{name}: done"], [])
        self._put(workdir, ".command.out", "".join(f"{x}\n" for x in out))
        self._put(workdir, ".command.err", "".join(f"{x}\n" for x in err))
        self._put(workdir, ".command.log", "".join(f"{x}\n" for x in [*out, *err]))
        if exit_code is not None:
            # Nextflow's wrapper writes the status without a newline (printf -- $exit_status).
            self._put(workdir, ".exitcode", str(exit_code))
