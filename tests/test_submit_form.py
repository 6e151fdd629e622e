"""SubmitForm: clicks against LocalBatch over real HTTP; a bad value never reaches the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit.client import BatchClient
from batchkit.schema import SUBMISSION_TAG
from batchkit.sim import LocalBatch
from batchkit.widgets.submit_form import SubmitForm


@pytest.fixture
def lb() -> Iterator[LocalBatch]:
    with LocalBatch(manual_clock=True) as batch:
        batch.create_environment("demo-queue", vcpus=64)
        yield batch


def _form(lb: LocalBatch, ledger: Path) -> SubmitForm:
    client = BatchClient(client=lb.client(), rate=1000.0, sleep=lb.advance)
    return SubmitForm(client, ledger=ledger, autostart=False)


def _fill(form: SubmitForm, **values: str) -> None:
    for name, value in values.items():
        form.inputs[name].value = value


GOOD = dict(job_name="debug-1", command="bash -c 'sleep 120'", vcpus="2", memory="4096",
            environment="SAMPLE=s1", retry_attempts="2", timeout="600", tags="team=gen")


def test_pickers_come_from_the_account(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    assert "demo-queue" in form.inputs["job_queue"].options
    assert "nf-demo" in form.inputs["job_definition"].options


def test_bad_values_never_reach_the_api(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    _fill(form, **{**GOOD, "vcpus": "lots", "timeout": "5", "job_name": "bad name"})
    assert form.submit_button.disabled
    assert "not a number" in form.messages["vcpus"].value
    assert "at least 60" in form.messages["timeout"].value
    assert "invalid" in form.messages["job_name"].value
    assert "Not ready to submit" in form.preview.value
    assert form.submit() is None  # even when called directly
    assert lb.jobs() == []
    assert form.ledger.submissions() == []


def test_submit_track_and_kill_by_clicking(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    _fill(form, **GOOD)
    assert not form.submit_button.disabled
    sid = form._submission_id
    assert SUBMISSION_TAG in form.preview.value and sid in form.preview.value
    form.submit_button.click()
    form.wait()
    jobs = lb.jobs()
    assert len(jobs) == 1, form.status.value
    job = jobs[0]
    assert job["jobName"] == "debug-1"
    assert job["tags"][SUBMISSION_TAG] == sid  # the previewed request is the one sent
    assert job["container"]["command"] == ["bash", "-c", "sleep 120"]
    assert job["retryStrategy"]["attempts"] == 2
    assert job["jobId"] in form.table.value
    assert [b.description for b in form.kill_buttons.children] == ["Kill debug-1"]

    lb.advance(30)
    form.refresh()
    assert "RUNNING" in form.table.value
    form.kill_buttons.children[0].click()
    form.wait()
    (done,) = lb.jobs()
    assert done["status"] == "FAILED"
    assert done["statusReason"] == "batchkit: killed from the submit form"
    assert form.kill_buttons.children == ()

    # before and after rows in the ledger
    (sub,) = form.ledger.submissions()
    assert sub["job_id"] == job["jobId"]
    kills = form.ledger.kills()
    assert len(kills) == 1 and kills[0]["job_id"] == job["jobId"]


def test_submissions_survive_a_kernel_restart(lb: LocalBatch, tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    form = _form(lb, ledger)
    _fill(form, **GOOD)
    answer = form.submit()
    assert answer is not None
    form.close()
    again = _form(lb, ledger)
    assert answer["jobId"] in again.submissions
    again.refresh()
    assert answer["jobId"] in again.table.value and "debug-1" in again.table.value


def test_applied_but_lost_submits_exactly_one_job(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    _fill(form, **GOOD)
    lb.faults.add("SubmitJob", "applied-lost", count=1)
    form.submit_button.click()
    form.wait()
    assert len(lb.jobs()) == 1, form.status.value
    assert "not sent twice" in form.status.value
    assert len(form.submissions) == 1
