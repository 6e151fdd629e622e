"""The inspector on a real AWS Batch run's artefacts (Nextflow 24.10.5, aborted by SIGINT).

The real trace and .nextflow.log (from ../shared/fixtures/real, copied into a temporary
launch dir) name task HELLO, hash eb/59a9b4, job cc448dde-…, work dir
s3://nextflow-pipeline-data-nto15x4w/work/eb/59a9b470…; the work dir itself lives in moto's
S3 on loopback, written the way the task wrapper writes it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import real_fixture

from batchkit.aws_readers import AwsReaders
from batchkit.inspect import inspect
from batchkit.sim import MotoBackdrop
from batchkit.sim._nf_workdir import WorkdirWriter

JOB = "cc448dde-7aa2-40b2-843d-d0515c389309"
WORKDIR = "s3://nextflow-pipeline-data-nto15x4w/work/eb/59a9b470bab86097cc7e9d4d0d8e53"


@pytest.fixture
def launch(tmp_path: Path) -> Path:
    log = real_fixture("awsbatch-sigint-24.10.5.nextflow.log")
    trace = real_fixture("awsbatch-sigint-24.10.5-trace.txt")
    shutil.copy(log, tmp_path / ".nextflow.log")
    shutil.copy(trace, tmp_path / "trace-new.txt")
    return tmp_path


@pytest.fixture
def moto() -> Iterator[MotoBackdrop]:
    with MotoBackdrop() as aws:
        yield aws


@pytest.mark.parametrize("target", ["HELLO", "eb/59a9b4", JOB, "1"])
def test_real_run_nextflow_view(launch: Path, target: str) -> None:
    insp = inspect(target, run=launch)
    assert insp.task is not None and insp.task["name"] == "HELLO" and insp.task["status"] == "ABORTED"
    assert insp.job_id == JOB and insp.workdir == WORKDIR
    text = "\n".join(insp.nextflow_lines)
    assert f"[AWS BATCH] Process `HELLO` submitted > job={JOB}" in text
    assert "~> TaskHandler[id: 1; name: HELLO; status: SUBMITTED; exit: -" in text
    assert f"[AWS BATCH] killing job={JOB}; response={{}}" in text
    assert insp.nextflow_lines[-1].endswith("response={}")


def test_real_run_with_its_work_dir_in_s3(launch: Path, moto: MotoBackdrop) -> None:
    s3 = moto.client("s3")
    writer = WorkdirWriter(s3, "s3://nextflow-pipeline-data-nto15x4w/work")
    writer.staged(WORKDIR, name="HELLO", process="HELLO", tag=None)
    writer.began(WORKDIR)
    with AwsReaders.create(endpoint_urls={"logs": moto.endpoint_url, "s3": moto.endpoint_url}) as readers:
        insp = inspect("HELLO", run=launch, readers=readers)
    assert insp.files[".command.sh"].exists and "hello.sh" in insp.files[".command.sh"].text
    assert not insp.files[".exitcode"].exists
    assert insp.evidence is not None and insp.evidence.summary().startswith("work dir says started")
