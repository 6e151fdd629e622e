"""SubmitForm: clicks against LocalBatch over real HTTP; a bad value never reaches the API."""

from __future__ import annotations

import asyncio
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


# --- review fixes: retries after a failure, double clicks, kills, the refresh loop -------------


def _faulty_form(lb: LocalBatch, ledger: Path) -> SubmitForm:
    """A form whose client gives up after 30 s of a fake clock: no real sleeping."""
    t = [0.0]

    def sleep(seconds: float) -> None:
        t[0] += seconds
        lb.advance(seconds)

    client = BatchClient(client=lb.client(), rate=1000.0, deadline=30.0, clock=lambda: t[0], sleep=sleep)
    return SubmitForm(client, ledger=ledger, autostart=False)


def _submit_calls(lb: LocalBatch) -> int:
    return lb.calls.get("SubmitJob", 0)


def test_after_an_unavailable_api_the_next_click_redrives_the_same_id(lb: LocalBatch, tmp_path: Path) -> None:
    form = _faulty_form(lb, tmp_path / "l.sqlite")
    _fill(form, **GOOD)
    sid = form._submission_id
    rule = lb.faults.add("SubmitJob", "server-500")
    form.submit_button.click()
    form.wait()
    lb.faults.remove(rule)
    assert lb.jobs() == []
    (pending,) = form.ledger.pending_submissions()
    assert pending["submission_id"] == sid  # no result recorded: the id can be re-driven
    assert "may or may not have been applied" in form.status.value
    assert f"UNKNOWN (check tag {SUBMISSION_TAG}={sid})" in form.table.value
    assert form._submission_id == sid and sid in form.preview.value

    form.submit_button.click()  # the API is back
    form.wait()
    (job,) = lb.jobs()
    assert job["tags"][SUBMISSION_TAG] == sid, form.status.value
    assert form.ledger.pending_submissions() == []
    assert [s["job_id"] for s in form.ledger.submissions()] == [job["jobId"]]
    assert "UNKNOWN" not in form.table.value and job["jobId"] in form.table.value
    assert form._submission_id != sid  # the next submission gets a fresh id


def test_an_applied_but_unconfirmed_submission_is_found_after_a_restart(lb: LocalBatch, tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    form = _faulty_form(lb, ledger)
    _fill(form, **GOOD)
    sid = form._submission_id
    # SubmitJob is applied but answered 500, and the client's tag lookup cannot ListJobs.
    lb.faults.add("SubmitJob", "applied-500", count=1)
    rule = lb.faults.add("ListJobs", "server-500")
    form.submit_button.click()
    form.wait()
    lb.faults.remove(rule)
    assert len(lb.jobs()) == 1 and _submit_calls(lb) == 1
    assert len(form.ledger.pending_submissions()) == 1
    form.close()

    again = _faulty_form(lb, ledger)  # a kernel restart
    assert f"UNKNOWN (check tag {SUBMISSION_TAG}={sid})" in again.table.value
    _fill(again, **GOOD)
    assert again._submission_id == sid  # the same request re-drives the pending id
    again.submit_button.click()
    again.wait()
    (job,) = lb.jobs()
    assert _submit_calls(lb) == 1, "re-sent instead of looked up"
    assert "not sent twice" in again.status.value
    assert job["jobId"] in again.submissions and "UNKNOWN" not in again.table.value
    assert again.ledger.pending_submissions() == []


def test_a_refused_submission_is_final_and_the_next_gets_a_fresh_id(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    # The queue was in the picker when the form loaded, and deleted since.
    form.queues.append("ghost-queue")
    form.inputs["job_queue"].options = [*form.inputs["job_queue"].options, "ghost-queue"]
    _fill(form, **GOOD, job_queue="ghost-queue")
    first = form._submission_id
    form.submit_button.click()
    form.wait()
    assert lb.jobs() == []
    (refused,) = form.ledger.submissions()
    assert (refused["submission_id"], refused["outcome"]) == (first, "error")
    assert form._submission_id != first
    assert "nothing was created" in form.status.value

    form.inputs["job_queue"].value = "demo-queue"
    form.submit_button.click()
    form.wait()
    (job,) = lb.jobs()
    assert job["tags"][SUBMISSION_TAG] == form.ledger.submissions()[1]["submission_id"] != first
    assert "Submitted debug-1" in form.status.value


def test_a_double_click_submits_one_job_with_the_clicked_request(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    _fill(form, **GOOD)
    sid = form._submission_id
    # Holding the form's lock keeps the first submission in flight while the second click
    # (queued by the browser before it saw the button disabled) arrives.
    with form._lock:
        form._submit_clicked(form.submit_button)
        assert form.submit_button.disabled
        form._submit_clicked(form.submit_button)
        form.inputs["job_name"].value = "edited-after-click"
    form.wait()
    (job,) = lb.jobs()
    assert _submit_calls(lb) == 1
    assert job["jobName"] == "debug-1" and job["tags"][SUBMISSION_TAG] == sid  # what was previewed
    assert len(form.ledger.submissions()) == 1
    assert not form.submit_button.disabled  # released once the submission is done


def test_kill_clicked_twice_terminates_and_audits_once(lb: LocalBatch, tmp_path: Path) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    _fill(form, **GOOD)
    answer = form.submit()
    assert answer is not None
    job_id = answer["jobId"]
    lb.advance(30)
    form.refresh()
    button = form.kill_buttons.children[0]
    button.click()
    form.wait()
    button.click()  # the second click of a double click
    form.wait()
    again = form.kill(job_id)
    assert again.outcome == "already_done"
    assert lb.calls.get("TerminateJobs", 0) + lb.calls.get("TerminateJob", 0) == 1
    assert len(form.ledger.kills()) == 1

    # Batch may still answer RUNNING for a while after TerminateJob: the button stays disabled.
    form.jobs[job_id] = {**form.jobs[job_id], "status": "RUNNING"}
    form.submissions[job_id]["status"] = "RUNNING"
    form._render_table()
    (shown,) = form.kill_buttons.children
    assert shown.disabled and shown.description == "Killed debug-1"
    # ...also after a kernel restart (the ledger knows it was killed)
    restarted = _form(lb, tmp_path / "l.sqlite")
    assert restarted.kill(job_id).outcome == "already_done"
    assert len(restarted.ledger.kills()) == 1


def test_the_refresh_loop_survives_an_unexpected_error(
    lb: LocalBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = _form(lb, tmp_path / "l.sqlite")
    form.interval = 0.0
    calls: list[int] = []

    def refresh() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("jobId")  # not a BatchkitError: e.g. a malformed answer
        form._closed = True

    monkeypatch.setattr(form, "refresh", refresh)
    asyncio.run(asyncio.wait_for(form._loop(), timeout=10))
    assert len(calls) == 2
    assert "Refresh failed" in form.status.value and "jobId" in form.status.value


def test_a_failed_kill_can_be_clicked_again_and_is_audited_once(lb: LocalBatch, tmp_path: Path) -> None:
    form = _faulty_form(lb, tmp_path / "l.sqlite")
    _fill(form, **GOOD)
    answer = form.submit()
    assert answer is not None
    lb.advance(30)
    form.refresh()
    rules = [lb.faults.add(op, "server-500") for op in ("TerminateJobs", "TerminateJob")]
    form.kill_buttons.children[0].click()
    form.wait()
    for rule in rules:
        lb.faults.remove(rule)
    assert "failed" in form.status.value and "click Kill again" in form.status.value
    (button,) = form.kill_buttons.children
    assert not button.disabled and button.description == "Kill debug-1"
    button.click()
    form.wait()
    (done,) = lb.jobs()
    assert done["status"] == "FAILED"
    (row,) = form.ledger.kills()  # the pending intent was completed, not duplicated
    assert row["outcome"] == "terminated" and row["tries"] >= 1


# --- one owner for a kill: the form goes through the kill executor's ledger claims ---------------


def _real_sleep_form(lb: LocalBatch, ledger: Path | object) -> SubmitForm:
    """A form whose client waits in real time (a kill that follows another one's claim polls
    the ledger every 0.25 s: on ``lb.advance`` it would race the emulator's clock instead)."""
    return SubmitForm(BatchClient(client=lb.client(), rate=1000.0, deadline=60.0), ledger=ledger, autostart=False)


def test_two_forms_killing_one_job_at_once_send_one_kill_and_audit_it_once(lb: LocalBatch, tmp_path: Path) -> None:
    """Two kernels (two forms on one ledger) click Kill on the same job at the same moment while
    TerminateJobs stalls 2 s: one TerminateJobs between them, one final audit row, and both
    forms report the same outcome (the second waits for the first's claim and adopts it)."""
    import threading

    ledger = tmp_path / "l.sqlite"
    first = _real_sleep_form(lb, ledger)
    _fill(first, **GOOD)
    answer = first.submit()
    assert answer is not None
    job_id = answer["jobId"]
    lb.advance(30)
    second = _real_sleep_form(lb, ledger)  # the other kernel: the job comes from the ledger
    assert job_id in second.submissions
    for form in (first, second):
        form.refresh()
    lb.faults.add("TerminateJobs", "latency", latency=2.0)
    start = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def click(i: int, form: SubmitForm) -> None:
        start.wait()
        outcomes[i] = form.kill(job_id)

    threads = [threading.Thread(target=click, args=(i, f)) for i, f in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert lb.calls.get("TerminateJobs", 0) + lb.calls.get("TerminateJob", 0) == 1
    (row,) = first.ledger.kills()
    assert row["job_id"] == job_id and row["finished_at"] is not None and row["outcome"] == "terminated"
    assert [o.outcome for o in (outcomes[0], outcomes[1])] == ["terminated", "terminated"]  # type: ignore[attr-defined]
    (job,) = lb.jobs()
    assert job["status"] == "FAILED" and job["statusReason"] == "batchkit: killed from the submit form"


def test_a_form_and_a_cli_kill_of_the_same_job_at_once_audit_it_once(tmp_path: Path) -> None:
    """The form's Kill click and `batchkit kill --job ID --yes` on the same orphan, at once,
    on the launch dir's ledger, while TerminateJobs stalls: one Terminate call, one final row."""
    import threading

    from batchkit import cli
    from batchkit.ledger import Ledger
    from batchkit.sim.nextflow import replay_incident

    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=20) as inc:
        lb = inc.batch
        running = {j["jobId"]: j for j in lb.jobs() if j["status"] == "RUNNING"}
        job_id = sorted(inc.truth.abandoned_job_ids & set(running))[0]
        ledger = Ledger.for_launch_dir(inc.launch_dir)
        # The job as the form records a submission of its own (the ledger is the launch dir's),
        # tagged as the form tags what it submits (the form kills only jobs carrying its tag).
        from batchkit.schema import SUBMISSION_TAG

        lb.client().tag_resource(resourceArn=running[job_id]["jobArn"], tags={SUBMISSION_TAG: "sid-orphan"})
        ledger.record_submission_intent("sid-orphan", {"jobName": running[job_id]["jobName"]})
        ledger.record_submission_result("sid-orphan", job_id, "submitted")
        form = SubmitForm(BatchClient(endpoint_url=inc.endpoint_url, deadline=60.0), ledger=ledger, autostart=False)
        form.refresh()
        lb.faults.add("TerminateJobs", "latency", latency=2.0)
        before = lb.calls.get("TerminateJobs", 0) + lb.calls.get("TerminateJob", 0)
        clicked = threading.Event()
        outcome: list[object] = []

        def click() -> None:
            clicked.set()
            outcome.append(form.kill(job_id))

        thread = threading.Thread(target=click)
        thread.start()
        clicked.wait(5)
        code = cli.main(["kill", str(inc.launch_dir), "--endpoint-url", inc.endpoint_url,
                         "--queue", inc.truth.queue, "--job", job_id, "--yes"])
        thread.join(60)
        assert code == cli.EXIT_OK
        assert lb.calls.get("TerminateJobs", 0) + lb.calls.get("TerminateJob", 0) - before == 1
        rows = [r for r in ledger.kills() if r["job_id"] == job_id]
        assert len(rows) == 1 and rows[0]["finished_at"] is not None, rows
        assert rows[0]["outcome"] == "terminated"
        assert outcome and outcome[0].ok  # type: ignore[attr-defined]
        form.close()


def test_requests_differing_only_in_environment_values_keep_their_own_pending_ids(
    lb: LocalBatch, tmp_path: Path
) -> None:
    """The ledger masks environment values, so two ambiguous submissions that differ only in a
    value look alike there: each still re-drives its own id after a restart (told apart by the
    salted digest), and neither value reaches the ledger's files."""
    ledger = tmp_path / "l.sqlite"
    form = _faulty_form(lb, ledger)
    rules = [lb.faults.add("SubmitJob", "server-500"), lb.faults.add("ListJobs", "server-500")]
    sids = {}
    for value in ("token-aaa-111", "token-bbb-222"):
        _fill(form, **{**GOOD, "environment": f"SAMPLE={value}"})
        sids[value] = form._submission_id
        form.submit_button.click()
        form.wait()
    assert sids["token-aaa-111"] != sids["token-bbb-222"], "the second request took the first's pending id"
    assert len(form.ledger.pending_submissions()) == 2
    form.close()
    for rule in rules:
        lb.faults.remove(rule)
    disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"token-aaa-111" not in disk and b"token-bbb-222" not in disk

    again = _faulty_form(lb, ledger)  # a kernel restart
    for value in ("token-bbb-222", "token-aaa-111"):
        _fill(again, **{**GOOD, "environment": f"SAMPLE={value}"})
        assert again._submission_id == sids[value]
    _fill(again, **{**GOOD, "environment": "SAMPLE=token-ccc-333"})
    assert again._submission_id not in sids.values()  # a third value is a new request
    _fill(again, **{**GOOD, "environment": "SAMPLE=token-bbb-222"})
    again.submit_button.click()  # re-drives the b id: one job, carrying b's id and value
    again.wait()
    (job,) = lb.jobs()
    assert job["tags"][SUBMISSION_TAG] == sids["token-bbb-222"], again.status.value
    assert job["container"]["environment"] == [{"name": "SAMPLE", "value": "token-bbb-222"}]
