"""Contract: `batchkit sim serve` driven by clients nobody here wrote.

The same sequence runs through the AWS CLI (v1, from PyPI; it carries its own copy of
botocore) and through the AWS SDK for JavaScript v3 (``@aws-sdk/client-batch`` from npm,
on node): create a compute environment, a queue and a job definition; submit plain, array,
tagged, retried and timed-out jobs; describe; list with each filter and with paging;
terminate, cancel, tag; and the error cases. Each client's answers are collected as the
same "observations", and one checker holds them to the AWS Batch API reference.

The emulator is a subprocess (``python -m batchkit sim serve --port 0 --speed 50 --logs``)
on a free loopback port; a sped-up serve keeps timestamps on the wall clock and runs
every duration 50 times shorter, so a 60 s timeout takes 1.2 s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, IN_CI

pytestmark = [pytest.mark.slow]

QUEUE, CE, JOBDEF = "contract-q", "contract-ce", "contract-jd"
HELLO = "hello from the job"
TASK_ID = r"[0-9a-f]{32}"
SPEED = 50


@dataclass
class Served:
    url: str
    logs_url: str
    proc: subprocess.Popen[str]


@pytest.fixture
def served() -> Iterator[Served]:
    """`batchkit sim serve` in a subprocess: no demo queue, job output to moto's CloudWatch Logs."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchkit", "sim", "serve", "--port", "0", "--speed", str(SPEED), "--no-queue", "--logs"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # real time: waiting for another process to start
        banner = "".join(lines)
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        logs = re.search(r"CloudWatch Logs \(and S3\) at (http://127\.0\.0\.1:\d+)", banner)
        assert found and logs, (banner, proc.poll(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        yield Served(found.group(1), logs.group(1), proc)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]


def wait_for(observe: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    value = observe()
    while not done(value):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {value}"
        time.sleep(0.2)  # real time: the served emulator runs on its own (sped-up) clock
        value = observe()
    return value


# --- the checker: one for every client -------------------------------------------------------


def check_observations(o: dict[str, Any]) -> None:
    """What AWS Batch answers, per the API reference, for the contract sequence."""
    region_account = "us-east-1:123456789012"
    assert o["ce"]["computeEnvironmentArn"] == f"arn:aws:batch:{region_account}:compute-environment/{CE}"
    assert o["queue"]["jobQueueArn"] == f"arn:aws:batch:{region_account}:job-queue/{QUEUE}"
    assert (o["jobdef"]["jobDefinitionArn"], o["jobdef"]["revision"]) == (
        f"arn:aws:batch:{region_account}:job-definition/{JOBDEF}:1", 1)  # fmt: skip
    sub = o["submitted"]
    ids = {name: s["jobId"] for name, s in sub.items()}
    assert len(set(ids.values())) == len(ids)
    for name, s in sub.items():
        assert s["jobName"] == name and s["jobArn"] == f"arn:aws:batch:{region_account}:job/{s['jobId']}"

    # A RUNNING job's top-level container names the current attempt's task and log stream
    # (ContainerDetail: taskArn from STARTING, logStreamName from RUNNING).
    running = o["running_plain"]
    assert running["status"] == "RUNNING" and running["jobQueue"] == o["queue"]["jobQueueArn"]
    container = running["container"]
    assert re.fullmatch(rf"{JOBDEF}/default/{TASK_ID}", container["logStreamName"]), container
    assert re.fullmatch(rf"arn:aws:ecs:{region_account}:task/{CE}_Batch_[0-9a-f-]{{36}}/{TASK_ID}", container["taskArn"])
    assert container["logStreamName"].rsplit("/", 1)[1] == container["taskArn"].rsplit("/", 1)[1]
    assert container["containerInstanceArn"].startswith(f"arn:aws:ecs:{region_account}:container-instance/{CE}_Batch_")
    assert isinstance(running["createdAt"], int) and running["startedAt"] >= running["createdAt"]
    # A sped-up `sim serve` keeps timestamps on the wall clock: createdAt lies between the
    # client's own clock readings around SubmitJob (same machine; 5 ms for rounding).
    assert o["wall"][0] - 5 <= running["createdAt"] <= o["wall"][1] + 5, (o["wall"], running["createdAt"])
    assert o["log_lines"] == [HELLO]

    final = o["final"]
    arr = final["array"]
    assert arr["status"] == "SUCCEEDED" and arr["arrayProperties"]["size"] == 3
    assert arr["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    assert sorted(c["jobId"] for c in o["children"]) == [f"{ids['array']}:{i}" for i in range(3)]
    assert sorted(c["arrayProperties"]["index"] for c in o["children"]) == [0, 1, 2]
    assert final["tagged"]["tags"] == {"team": "genomics", "run": "r1"} and final["tagged"]["status"] == "SUCCEEDED"
    retried = final["retried"]
    assert retried["status"] == "FAILED" and len(retried["attempts"]) == 2
    assert [a["container"]["exitCode"] for a in retried["attempts"]] == [3, 3]
    assert retried["container"]["exitCode"] == 3 and retried["retryStrategy"]["attempts"] == 2
    timed = final["timedout"]
    # "If a job is terminated due to a timeout, it isn't retried."
    assert timed["status"] == "FAILED" and timed["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(timed["attempts"]) == 1 and timed["timeout"] == {"attemptDurationSeconds": 60}

    lists = o["lists"]
    assert lists["running"] == [ids["plain"]]  # ListJobs without a status lists RUNNING jobs only
    assert sorted(lists["succeeded"]) == sorted([ids["array"], ids["tagged"]])
    assert lists["job_name"] == [ids["retried"]]  # case-insensitive prefix "RETR*"
    # filters: "sorted by the createdAt field, with the most recent jobs being first"
    newest_first = [ids[n] for n in reversed(list(sub))]
    assert lists["job_definition"] == newest_first
    assert lists["before"] == [ids["plain"]]  # BEFORE_CREATED_AT = plain's createdAt + 1
    assert lists["after"] == newest_first[:-1]  # AFTER_CREATED_AT = plain's createdAt: excludes it
    paged = o["paged"]
    assert len(paged["first"]) == 2 and paged["token"] and paged["all"] == newest_first

    terminated = o["terminated"]
    assert terminated["status"] == "FAILED" and terminated["statusReason"] == "contract: stop"
    assert terminated["isTerminated"] is True and terminated["attempts"][-1]["container"]["exitCode"] == 143
    cancelled = o["cancelled"]
    assert cancelled["status"] == "FAILED" and cancelled["isCancelled"] is True and cancelled["attempts"] == []
    summaries = {s["jobName"]: s for s in o["failed_summaries"]}
    assert set(summaries) >= {"cancelme", "plain", "retried", "timedout"}
    if o.get("summary_flags", True):  # JobSummary.isCancelled/isTerminated, where the client's model has them
        assert summaries["cancelme"]["isCancelled"] is True and summaries["plain"]["isTerminated"] is True
    assert o["tags"] == {"tagged": {"team": "genomics", "run": "r1"}, "after_tag": {"extra": "1"}, "after_untag": {}}

    errors = o["errors"]
    for key, (code, message) in {
        "unknown_queue": ("ClientException", "JobQueue nope not found."),
        "unknown_jobdef": ("ClientException", "JobDefinition name nope does not exist or is not in ACTIVE status."),
        "too_many_ids": ("ClientException", None),
        "max_results_zero": ("ClientException", None),
        "aws_tag": ("ClientException", None),
        "malformed": ("ClientException", None),
    }.items():
        status, got_code, got_message = errors[key]
        assert status in (None, 400) and got_code == code, (key, errors[key])
        if message is not None:
            assert got_message == message, (key, got_message)
    assert "100" in errors["too_many_ids"][2]


# --- the AWS CLI --------------------------------------------------------------------------


def _need(what: str, present: bool, how: str) -> None:
    if present:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: {how}")
    pytest.skip(f"{what} is not installed here: {how}")


class AwsCli:
    def __init__(self, url: str, logs_url: str, home: Path) -> None:
        self.url = url
        self.logs_url = logs_url
        home.mkdir(parents=True, exist_ok=True)
        config = home / "config"
        # parameter_validation off: the emulator, not the CLI, must refuse what AWS refuses.
        config.write_text("[default]\nregion = us-east-1\nparameter_validation = false\n")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1",
        }

    def run(self, *args: str, service: str = "batch") -> tuple[int, Any, str]:
        url = self.url if service == "batch" else self.logs_url
        cmd = [sys.executable, "-m", "awscli", service, *args, "--endpoint-url", url, "--output", "json"]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else {}), p.stderr

    def __call__(self, *args: str, service: str = "batch") -> Any:
        code, out, err = self.run(*args, service=service)
        assert code == 0, (args, err)
        return out

    def error(self, *args: str) -> tuple[None, str, str]:
        code, _, err = self.run(*args)
        assert code != 0, args
        # "An error occurred (ClientException) when calling the SubmitJob operation: <message>"
        m = re.search(r"An error occurred \((\w+)\) when calling the \w+ operation: (.*)", err)
        assert m, err
        return None, m.group(1), m.group(2).strip()


def test_the_aws_cli_drives_sim_serve(served: Served, tmp_path: Path) -> None:
    _need("the AWS CLI (awscli)", importlib.util.find_spec("awscli") is not None, "pip install 'batchkit[test]'")
    aws = AwsCli(served.url, served.logs_url, tmp_path / "aws")
    o: dict[str, Any] = {}
    o["ce"] = aws("create-compute-environment", "--compute-environment-name", CE, "--type", "MANAGED",
                  "--state", "ENABLED", "--compute-resources",
                  "type=EC2,minvCpus=0,maxvCpus=16,instanceTypes=optimal,subnets=subnet-0,"
                  "securityGroupIds=sg-0,instanceRole=ecsInstanceRole")  # fmt: skip
    o["queue"] = aws("create-job-queue", "--job-queue-name", QUEUE, "--priority", "1",
                     "--compute-environment-order", f"order=1,computeEnvironment={CE}")  # fmt: skip
    o["jobdef"] = aws("register-job-definition", "--job-definition-name", JOBDEF, "--type", "container",
                      "--container-properties", json.dumps({
                          "image": "busybox", "command": ["bash", "-c", f"echo {HELLO}; sleep 100000"],
                          "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]}))  # fmt: skip
    base = ["submit-job", "--job-queue", QUEUE, "--job-definition", JOBDEF]
    short = ["--container-overrides", json.dumps({"command": ["bash", "-c", "sleep 30"]})]
    sub: dict[str, Any] = {}
    before = int(time.time() * 1000)
    sub["plain"] = aws(*base, "--job-name", "plain")
    o["wall"] = [before, int(time.time() * 1000)]
    sub["array"] = aws(*base, "--job-name", "array", "--array-properties", "size=3", *short)
    sub["tagged"] = aws(*base, "--job-name", "tagged", "--tags", "team=genomics,run=r1", *short)
    sub["retried"] = aws(*base, "--job-name", "retried", "--retry-strategy", "attempts=2",
                         "--container-overrides", json.dumps({"command": ["bash", "-c", "sleep 5; exit 3"]}))  # fmt: skip
    sub["timedout"] = aws(*base, "--job-name", "timedout", "--timeout", "attemptDurationSeconds=60")
    # 32 vCPUs on a 16-vCPU environment: RUNNABLE for ever, until cancelled.
    sub["cancelme"] = aws(*base, "--job-name", "cancelme", "--container-overrides", json.dumps({"vcpus": 32}))
    o["submitted"] = sub
    ids = {k: v["jobId"] for k, v in sub.items()}

    def describe(*names: str) -> list[dict[str, Any]]:
        return list(aws("describe-jobs", "--jobs", *(ids[n] for n in names))["jobs"])

    o["running_plain"] = wait_for(lambda: describe("plain")[0], lambda j: j["status"] == "RUNNING", "plain RUNNING")
    stream = o["running_plain"]["container"]["logStreamName"]
    events = aws("get-log-events", "--log-group-name", "/aws/batch/job", "--log-stream-name", stream,
                 "--start-from-head", service="logs")["events"]  # fmt: skip
    o["log_lines"] = [e["message"] for e in events]
    finals = wait_for(lambda: describe("array", "tagged", "retried", "timedout"),
                      lambda js: all(j["status"] in ("SUCCEEDED", "FAILED") for j in js), "jobs to finish")  # fmt: skip
    o["final"] = dict(zip(["array", "tagged", "retried", "timedout"], finals, strict=True))
    o["children"] = aws("list-jobs", "--array-job-id", ids["array"], "--job-status", "SUCCEEDED")["jobSummaryList"]

    def listed(*args: str) -> list[str]:
        return [s["jobId"] for s in aws("list-jobs", "--job-queue", QUEUE, *args)["jobSummaryList"]]

    created = o["running_plain"]["createdAt"]
    o["lists"] = {
        "running": listed(),
        "succeeded": listed("--job-status", "SUCCEEDED"),
        "job_name": listed("--filters", "name=JOB_NAME,values=RETR*"),
        "job_definition": listed("--filters", f"name=JOB_DEFINITION,values={JOBDEF}"),
        "before": listed("--filters", f"name=BEFORE_CREATED_AT,values={created + 1}"),
        "after": listed("--filters", f"name=AFTER_CREATED_AT,values={created}"),
    }
    first = aws("list-jobs", "--job-queue", QUEUE, "--filters", f"name=JOB_DEFINITION,values={JOBDEF}",
                "--max-items", "2", "--page-size", "1")  # fmt: skip
    rest = aws("list-jobs", "--job-queue", QUEUE, "--filters", f"name=JOB_DEFINITION,values={JOBDEF}",
               "--starting-token", first["NextToken"], "--page-size", "1")  # fmt: skip
    first_ids = [s["jobId"] for s in first["jobSummaryList"]]
    o["paged"] = {"first": first_ids, "token": bool(first.get("NextToken")),
                  "all": first_ids + [s["jobId"] for s in rest["jobSummaryList"]]}  # fmt: skip

    aws("terminate-job", "--job-id", ids["plain"], "--reason", "contract: stop")
    aws("cancel-job", "--job-id", ids["cancelme"], "--reason", "contract: not needed")
    o["terminated"], o["cancelled"] = wait_for(lambda: describe("plain", "cancelme"),
                                               lambda js: all(j["status"] == "FAILED" for j in js), "kills")  # fmt: skip
    o["failed_summaries"] = aws("list-jobs", "--job-queue", QUEUE, "--job-status", "FAILED")["jobSummaryList"]
    # The CLI parses answers with its own copy of the Batch model; awscli 1.46's JobSummary has no
    # isCancelled/isTerminated yet, so it drops them (boto3's has them: tests/test_localbatch_rules.py).
    o["summary_flags"] = "isCancelled" in cli_model_shape("JobSummary")
    arn = sub["plain"]["jobArn"]
    tags = {"tagged": aws("list-tags-for-resource", "--resource-arn", sub["tagged"]["jobArn"])["tags"]}
    aws("tag-resource", "--resource-arn", arn, "--tags", "extra=1")
    tags["after_tag"] = aws("list-tags-for-resource", "--resource-arn", arn)["tags"]
    aws("untag-resource", "--resource-arn", arn, "--tag-keys", "extra")
    tags["after_untag"] = aws("list-tags-for-resource", "--resource-arn", arn)["tags"]
    o["tags"] = tags

    o["errors"] = {
        "unknown_queue": aws.error("submit-job", "--job-name", "x", "--job-queue", "nope", "--job-definition", JOBDEF),
        "unknown_jobdef": aws.error("submit-job", "--job-name", "x", "--job-queue", QUEUE, "--job-definition", "nope"),
        "too_many_ids": aws.error("describe-jobs", "--jobs", *(f"id-{i}" for i in range(101))),
        "max_results_zero": aws.error("list-jobs", "--job-queue", QUEUE, "--max-results", "0", "--no-paginate"),
        "aws_tag": aws.error("tag-resource", "--resource-arn", arn, "--tags", "aws:owner=me"),
        "malformed": curl_malformed(served.url),
    }
    check_observations(o)


def cli_model_shape(name: str) -> dict[str, Any]:
    """The members of shape ``name`` in the Batch model the AWS CLI parses answers with."""
    import gzip

    spec = importlib.util.find_spec("awscli")
    assert spec is not None and spec.submodule_search_locations
    roots = [Path(spec.submodule_search_locations[0]) / "botocore" / "data" / "batch"]
    botocore_spec = importlib.util.find_spec("botocore")
    if botocore_spec is not None and botocore_spec.submodule_search_locations:
        roots.append(Path(botocore_spec.submodule_search_locations[0]) / "data" / "batch")
    for root in roots:  # newer CLIs carry their own botocore; older ones use the installed one
        for path in sorted(root.glob("*/service-2.json*")):
            text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            return dict(json.loads(text)["shapes"][name]["members"])
    raise AssertionError(f"no Batch model under {roots}")


def curl_malformed(url: str) -> tuple[int, str, str]:
    """A malformed body no SDK would send, through curl (another client nobody here wrote)."""
    curl = shutil.which("curl")
    if curl is None:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"{url}/v1/describejobs", data=b'{"jobs": [', method="POST")
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            return e.code, body["__type"], body["message"]
        raise AssertionError("a malformed body was accepted")
    p = subprocess.run([curl, "-s", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
                        "--data-binary", '{"jobs": [', f"{url}/v1/describejobs"],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    body, _, status = p.stdout.rpartition("\n")
    answer = json.loads(body)
    return int(status), answer["__type"], answer["message"]


# --- the AWS SDK for JavaScript v3 -----------------------------------------------------------

NPM_PACKAGES = ["@aws-sdk/client-batch@3", "@aws-sdk/client-cloudwatch-logs@3"]

JS_SEQUENCE = r"""
const { BatchClient, CreateComputeEnvironmentCommand, CreateJobQueueCommand, RegisterJobDefinitionCommand,
  SubmitJobCommand, DescribeJobsCommand, ListJobsCommand, TerminateJobCommand, CancelJobCommand,
  TagResourceCommand, UntagResourceCommand, ListTagsForResourceCommand, paginateListJobs } = require("@aws-sdk/client-batch");
const { CloudWatchLogsClient, GetLogEventsCommand } = require("@aws-sdk/client-cloudwatch-logs");

const [url, logsUrl, QUEUE, CE, JOBDEF, HELLO] = process.argv.slice(2);
const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const batch = new BatchClient({ endpoint: url, region: "us-east-1", credentials, maxAttempts: 1 });
const logs = new CloudWatchLogsClient({ endpoint: logsUrl, region: "us-east-1", credentials, maxAttempts: 1 });
const send = (cmd) => batch.send(cmd).then((r) => { const { $metadata, ...rest } = r; return rest; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const strip = (x) => JSON.parse(JSON.stringify(x, (k, v) => (v instanceof Date ? v.getTime() : v)));

async function waitFor(observe, done, what) {
  const deadline = Date.now() + 60000;
  let value = await observe();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await sleep(200);
    value = await observe();
  }
  return value;
}

async function error(cmd) {
  try { await batch.send(cmd); } catch (e) { return [e.$metadata.httpStatusCode, e.name, e.message]; }
  throw new Error("expected an error");
}

(async () => {
  const o = {};
  o.ce = await send(new CreateComputeEnvironmentCommand({ computeEnvironmentName: CE, type: "MANAGED", state: "ENABLED",
    computeResources: { type: "EC2", minvCpus: 0, maxvCpus: 16, instanceTypes: ["optimal"], subnets: ["subnet-0"],
      securityGroupIds: ["sg-0"], instanceRole: "ecsInstanceRole" } }));
  o.queue = await send(new CreateJobQueueCommand({ jobQueueName: QUEUE, priority: 1,
    computeEnvironmentOrder: [{ order: 1, computeEnvironment: CE }] }));
  o.jobdef = await send(new RegisterJobDefinitionCommand({ jobDefinitionName: JOBDEF, type: "container",
    containerProperties: { image: "busybox", command: ["bash", "-c", `echo ${HELLO}; sleep 100000`],
      resourceRequirements: [{ type: "VCPU", value: "1" }, { type: "MEMORY", value: "512" }] } }));
  const base = { jobQueue: QUEUE, jobDefinition: JOBDEF };
  const short = { containerOverrides: { command: ["bash", "-c", "sleep 30"] } };
  const sub = {};
  const before = Date.now();
  sub.plain = await send(new SubmitJobCommand({ ...base, jobName: "plain" }));
  o.wall = [before, Date.now()];
  sub.array = await send(new SubmitJobCommand({ ...base, jobName: "array", arrayProperties: { size: 3 }, ...short }));
  sub.tagged = await send(new SubmitJobCommand({ ...base, jobName: "tagged", tags: { team: "genomics", run: "r1" }, ...short }));
  sub.retried = await send(new SubmitJobCommand({ ...base, jobName: "retried", retryStrategy: { attempts: 2 },
    containerOverrides: { command: ["bash", "-c", "sleep 5; exit 3"] } }));
  sub.timedout = await send(new SubmitJobCommand({ ...base, jobName: "timedout", timeout: { attemptDurationSeconds: 60 } }));
  sub.cancelme = await send(new SubmitJobCommand({ ...base, jobName: "cancelme", containerOverrides: { vcpus: 32 } }));
  o.submitted = sub;
  const ids = Object.fromEntries(Object.entries(sub).map(([k, v]) => [k, v.jobId]));
  const describe = async (...names) => strip((await batch.send(new DescribeJobsCommand({ jobs: names.map((n) => ids[n]) }))).jobs);

  o.running_plain = await waitFor(async () => (await describe("plain"))[0], (j) => j.status === "RUNNING", "plain RUNNING");
  const events = await logs.send(new GetLogEventsCommand({ logGroupName: "/aws/batch/job",
    logStreamName: o.running_plain.container.logStreamName, startFromHead: true }));
  o.log_lines = events.events.map((e) => e.message);
  const finals = await waitFor(() => describe("array", "tagged", "retried", "timedout"),
    (js) => js.every((j) => j.status === "SUCCEEDED" || j.status === "FAILED"), "jobs to finish");
  o.final = { array: finals[0], tagged: finals[1], retried: finals[2], timedout: finals[3] };
  o.children = strip((await batch.send(new ListJobsCommand({ arrayJobId: ids.array, jobStatus: "SUCCEEDED" }))).jobSummaryList);

  const listed = async (extra) => (await batch.send(new ListJobsCommand({ jobQueue: QUEUE, ...extra }))).jobSummaryList.map((s) => s.jobId);
  const created = o.running_plain.createdAt;
  o.lists = {
    running: await listed({}),
    succeeded: await listed({ jobStatus: "SUCCEEDED" }),
    job_name: await listed({ filters: [{ name: "JOB_NAME", values: ["RETR*"] }] }),
    job_definition: await listed({ filters: [{ name: "JOB_DEFINITION", values: [JOBDEF] }] }),
    before: await listed({ filters: [{ name: "BEFORE_CREATED_AT", values: [String(created + 1)] }] }),
    after: await listed({ filters: [{ name: "AFTER_CREATED_AT", values: [String(created)] }] }),
  };
  const byDef = { jobQueue: QUEUE, filters: [{ name: "JOB_DEFINITION", values: [JOBDEF] }] };
  const first = await batch.send(new ListJobsCommand({ ...byDef, maxResults: 2 }));
  const all = [];
  for await (const page of paginateListJobs({ client: batch, pageSize: 2 }, byDef)) {
    all.push(...page.jobSummaryList.map((s) => s.jobId));
  }
  o.paged = { first: first.jobSummaryList.map((s) => s.jobId), token: Boolean(first.nextToken), all };

  await send(new TerminateJobCommand({ jobId: ids.plain, reason: "contract: stop" }));
  await send(new CancelJobCommand({ jobId: ids.cancelme, reason: "contract: not needed" }));
  [o.terminated, o.cancelled] = await waitFor(() => describe("plain", "cancelme"),
    (js) => js.every((j) => j.status === "FAILED"), "kills");
  o.failed_summaries = strip((await batch.send(new ListJobsCommand({ jobQueue: QUEUE, jobStatus: "FAILED" }))).jobSummaryList);
  const arn = sub.plain.jobArn;
  const tagsOf = async (a) => (await batch.send(new ListTagsForResourceCommand({ resourceArn: a }))).tags || {};
  o.tags = { tagged: await tagsOf(sub.tagged.jobArn) };
  await send(new TagResourceCommand({ resourceArn: arn, tags: { extra: "1" } }));
  o.tags.after_tag = await tagsOf(arn);
  await send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["extra"] }));
  o.tags.after_untag = await tagsOf(arn);

  const bad = await fetch(`${url}/v1/describejobs`, { method: "POST", body: '{"jobs": [', headers: { "content-type": "application/json" } });
  const badBody = await bad.json();
  o.errors = {
    unknown_queue: await error(new SubmitJobCommand({ jobName: "x", jobQueue: "nope", jobDefinition: JOBDEF })),
    unknown_jobdef: await error(new SubmitJobCommand({ jobName: "x", jobQueue: QUEUE, jobDefinition: "nope" })),
    too_many_ids: await error(new DescribeJobsCommand({ jobs: Array.from({ length: 101 }, (_, i) => `id-${i}`) })),
    max_results_zero: await error(new ListJobsCommand({ jobQueue: QUEUE, maxResults: 0 })),
    aws_tag: await error(new TagResourceCommand({ resourceArn: arn, tags: { "aws:owner": "me" } })),
    malformed: [bad.status, badBody.__type, badBody.message],
  };
  process.stdout.write(JSON.stringify(o));
})().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
"""


def npm_sdk() -> Path:
    """@aws-sdk/client-batch (and client-cloudwatch-logs) installed with npm, cached under test-artifacts/."""
    node, npm = shutil.which("node"), shutil.which("npm")
    _need("node and npm", node is not None and npm is not None, "install Node.js 18 or later (it brings npm)")
    assert npm is not None
    folder = ARTIFACTS / "npm-aws-sdk-v3"
    if not (folder / "node_modules" / "@aws-sdk" / "client-batch" / "package.json").exists() or not (
        folder / "node_modules" / "@aws-sdk" / "client-cloudwatch-logs" / "package.json"
    ).exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"name": "batchkit-contract", "private": true}\n')
        p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *NPM_PACKAGES],
                           cwd=folder, capture_output=True, text=True, timeout=600)  # fmt: skip
        if p.returncode != 0:
            message = f"npm install {' '.join(NPM_PACKAGES)} failed: {p.stderr[-2000:]}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    return folder


def test_the_javascript_sdk_drives_sim_serve(served: Served) -> None:
    folder = npm_sdk()
    script = folder / "contract.js"
    script.write_text(JS_SEQUENCE)
    p = subprocess.run(["node", str(script), served.url, served.logs_url, QUEUE, CE, JOBDEF, HELLO],
                       cwd=folder, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    check_observations(json.loads(p.stdout))
