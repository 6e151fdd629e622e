"""The emulator's lifecycle engine on its own (no HTTP): invariants under random operations.

Hypothesis drives random sequences of submits, clock steps, kills, cancels, spot
reclaims and behaviour changes against ``_emu_engine.Engine`` and checks what must
hold whatever the sequence: capacity is never exceeded, finished jobs stay finished,
attempts respect the retry strategy, and timestamps never run backwards.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.sim._emu_engine import EmuClock, Engine
from batchkit.sim._emu_resources import ACTIVE, TERMINAL, glob_match, parse_command

T0 = 1_767_000_000.0
CAPACITY = {"ce": 6, "ce2": 3}  # the queue tries "ce" first, then "ce2"


def make_engine(seed: int) -> Engine:
    engine = Engine(EmuClock(manual=True, start_time=T0), region="us-east-1", account_id="123456789012", seed=seed)
    for name, capacity in CAPACITY.items():
        engine.create_compute_environment(
            {"computeEnvironmentName": name, "type": "MANAGED", "computeResources": {"type": "SPOT", "maxvCpus": capacity}}
        )
    engine.create_job_queue(
        {"jobQueueName": "q", "priority": 1, "computeEnvironmentOrder": [
            {"order": 2, "computeEnvironment": "ce2"}, {"order": 1, "computeEnvironment": "ce"}]}
    )
    engine.register_job_definition(
        {"jobDefinitionName": "jd", "type": "container", "containerProperties": {"image": "x", "vcpus": 1, "memory": 64}}
    )
    return engine


submit_op = st.tuples(
    st.just("submit"),
    st.integers(1, 4),  # vCPUs
    st.integers(1, 300),  # sleep
    st.sampled_from([0, 0, 1, 137]),  # exit code
    st.integers(1, 3),  # retry attempts
    st.booleans(),  # array of 3
    st.booleans(),  # 60 s timeout
    st.integers(-1, 50),  # dependsOn an earlier job (-1: none)
)
kill_op = st.tuples(st.sampled_from(["terminate", "cancel", "interrupt"]), st.integers(0, 50))
other_op = st.one_of(
    st.tuples(st.just("behave"), st.integers(0, 50), st.integers(1, 100), st.sampled_from([0, 2])),
    st.tuples(st.just("spot"), st.sampled_from([0.0, 0.3, 1.0])),
    st.tuples(st.just("delay"), st.sampled_from([0.0, 5.0])),
)
# Every step is an operation then a clock step (short ones often: the early states last 1 s),
# so sequences reach every state and kill jobs in each of them.
step = st.tuples(
    st.one_of(submit_op, submit_op, kill_op, kill_op, other_op),
    st.one_of(st.floats(0, 2.5), st.floats(2.5, 120)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 3), steps=st.lists(step, min_size=4, max_size=40))
def test_lifecycle_invariants_hold_under_random_operations(
    seed: int, steps: list[tuple[tuple[Any, ...], float]]
) -> None:
    engine = make_engine(seed)
    ids: list[str] = []
    finished: dict[str, tuple[str, str | None, int | None]] = {}
    ops: list[tuple[Any, ...]] = []
    for op, dt in steps:
        ops += [op, ("advance", dt)]
    for op in ops:
        now = engine.catch_up()
        kind = op[0]
        if kind == "submit":
            _, vcpus, sleep, code, attempts, array, timeout, dep = op
            params: dict[str, Any] = {
                "jobName": "j",
                "jobQueue": "q",
                "jobDefinition": "jd",
                "containerOverrides": {"vcpus": vcpus, "command": ["bash", "-c", f"sleep {sleep}; exit {code}"]},
                "retryStrategy": {"attempts": attempts, "evaluateOnExit": [{"onExitCode": "137", "action": "EXIT"}]},
            }
            if array:
                params["arrayProperties"] = {"size": 3}
            if timeout:
                params["timeout"] = {"attemptDurationSeconds": 60}
            if dep >= 0 and ids:
                params["dependsOn"] = [{"jobId": ids[dep % len(ids)]}]
            ids.append(engine.submit_job(params)["jobId"])
        elif kind == "advance":
            engine.clock.advance(op[1])
        elif kind == "spot":
            engine.spot_interruption_rate = op[1]
        elif kind == "delay":
            engine.terminate_delay = op[1]
        elif ids:
            job = engine.find_job(ids[op[1] % len(ids)])
            assert job is not None
            if kind == "terminate":
                engine.terminate(job, "stop", now)
            elif kind == "cancel":
                engine.cancel(job, "cancel", now)
            elif kind == "interrupt" and job.status in ("STARTING", "RUNNING"):
                engine.interrupt(job, now)
            elif kind == "behave":
                engine.set_behavior(job, float(op[2]), op[3])
        engine.catch_up()
        _check(engine, finished)
    # Drain: with every kill done and time enough, nothing stays active forever.
    for _ in range(100):  # worst case: 120 serial tries of 300 s each, on one CE
        engine.clock.advance(4000)
        engine.catch_up()
        if all(j.status in TERMINAL for j in engine.iter_jobs()):
            break
    _check(engine, finished)
    assert all(j.status in TERMINAL for j in engine.iter_jobs())


def _check(engine: Engine, finished: dict[str, tuple[str, str | None, int | None]]) -> None:
    holding = [j for j in engine.iter_jobs() if j.status in ("STARTING", "RUNNING")]
    assert all(j.ce is not None for j in holding)
    for name, capacity in CAPACITY.items():
        ce = engine.ces[name]
        on_ce = sum(j.vcpus for j in holding if j.ce is ce)
        assert on_ce <= capacity + 1e-9 and abs(ce.used - on_ce) < 1e-9
    for job in engine.iter_jobs():
        d = engine.describe(job)
        if job.status in TERMINAL:
            # A finished job never changes again.
            key = (d["status"], d.get("statusReason"), d.get("stoppedAt"))
            assert finished.setdefault(job.job_id, key) == key
            assert d["stoppedAt"] >= d["createdAt"]
        else:
            assert job.status in ACTIVE and job.job_id not in finished
        if job.array_size is None:
            allowed = int((job.retry_strategy or {}).get("attempts", 1))
            assert len(d["attempts"]) <= allowed
        for a in d["attempts"]:
            assert d["createdAt"] <= a["startedAt"] <= a["stoppedAt"]
        if "startedAt" in d:
            assert d["startedAt"] >= d["createdAt"]
        # A job starts only once every dependency SUCCEEDED; a failed dependency fails it unstarted.
        if job.attempts or job.status in ("STARTING", "RUNNING"):
            assert all(d.status == "SUCCEEDED" for d in job.depends_on)
        if any(d.status == "FAILED" for d in job.depends_on) and job.status in TERMINAL and not job.attempts:
            assert job.status == "FAILED"
        if job.parent is not None and job.status == "FAILED":
            assert job.parent.status != "SUCCEEDED"
        if job.array_size is not None:
            kids = job.children
            if job.status in TERMINAL:  # children being terminated may still be stopping
                assert all(c.status in TERMINAL or c.kill_reason is not None for c in kids)
            if job.status == "SUCCEEDED":
                assert all(c.status == "SUCCEEDED" for c in kids)
            if job.status == "PENDING":
                assert any(c.status in ACTIVE for c in kids)


def test_parse_command_reads_sleep_and_exit_but_not_shell_variables() -> None:
    assert parse_command(["bash", "-c", "sleep 30; exit 3"]) == (30.0, 3)
    assert parse_command(["bash", "-c", "sleep 2m && sleep 1.5"]) == (121.5, None)
    assert parse_command(["bash", "-c", 'trap "{ ret=$?; exit $ret; }" EXIT; true']) == (None, None)
    assert parse_command(["sleepy", "10"]) == (None, None)
    assert parse_command(None) == (None, None)


def test_glob_match_is_exact_or_a_trailing_star_prefix() -> None:
    assert glob_match("Host EC2*", "Host EC2 (instance i-0abc) terminated.")
    assert not glob_match("Host EC2", "Host EC2 (instance i-0abc) terminated.")
    assert glob_match("*", None)  # an absent reason matches "*" (Nextflow's EXIT rule)
    assert glob_match("13*", "137") and not glob_match("13*", "1")


@settings(max_examples=40, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["RUNNING", "SUCCEEDED", "FAILED", "RUNNABLE"]), min_size=0, max_size=120),
    page=st.integers(1, 50),
    query=st.sampled_from(["status", "name", "after"]),
)
def test_list_jobs_pages_cover_every_match_exactly_once(statuses: list[str], page: int, query: str) -> None:
    engine = make_engine(0)
    engine.load(
        {
            "jobs": [
                {
                    "jobId": f"id-{i:04d}",
                    "jobName": ("Align" if i % 3 else "other") + f"_{i}",
                    "jobQueue": "q",
                    "status": status,
                    "createdAt": int(T0 * 1000) + i,
                }
                for i, status in enumerate(statuses)
            ]
        }
    )
    engine.clock.advance(0)
    jobs = {j.job_id: j for j in engine.iter_jobs()}
    params: dict[str, Any] = {"jobQueue": "q", "maxResults": page}
    if query == "status":
        params["jobStatus"] = "FAILED"
        expected = {i for i, j in jobs.items() if j.status == "FAILED"}
    elif query == "name":
        params["filters"] = [{"name": "JOB_NAME", "values": ["align_*"]}]
        expected = {i for i, j in jobs.items() if j.name.startswith("Align_")}
    else:
        params["filters"] = [{"name": "AFTER_CREATED_AT", "values": [str(int(T0 * 1000) + 50)]}]
        expected = {i for i, j in jobs.items() if j.created * 1000 > T0 * 1000 + 50}
    seen: list[str] = []
    for _ in range(200):
        answer = engine.list_jobs(params)
        assert len(answer["jobSummaryList"]) <= page
        seen += [s["jobId"] for s in answer["jobSummaryList"]]
        if "nextToken" not in answer:
            break
        params["nextToken"] = answer["nextToken"]
    assert sorted(seen) == sorted(expected)
