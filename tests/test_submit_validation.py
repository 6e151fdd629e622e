"""The submit form's validation: every bad value gets a message naming its field."""

from __future__ import annotations

import pytest

from batchkit.submit import FIELDS, validate_submission

QUEUES = {"demo-queue", "spot-queue"}
DEFS = {"nf-demo"}


def good(**over: object) -> dict[str, object]:
    values: dict[str, object] = {
        "job_name": "align-sample_1",
        "job_queue": "demo-queue",
        "job_definition": "nf-demo",
        "command": "bash -c 'sleep 30; echo done'",
        "vcpus": "2",
        "memory": "4096",
        "environment": "SAMPLE=s1\nREF=hg38",
        "array_size": "",
        "retry_attempts": "3",
        "timeout": "3600",
        "tags": "team=genomics, project=p1",
    }
    values.update(over)
    return values


def test_good_values_give_the_exact_request() -> None:
    v = validate_submission(good(), queues=QUEUES, job_definitions=DEFS)
    assert v.ok, v.errors
    assert v.request is not None
    assert v.request.to_kwargs() == {
        "jobName": "align-sample_1",
        "jobQueue": "demo-queue",
        "jobDefinition": "nf-demo",
        "containerOverrides": {
            "command": ["bash", "-c", "sleep 30; echo done"],
            "environment": [{"name": "SAMPLE", "value": "s1"}, {"name": "REF", "value": "hg38"}],
            "resourceRequirements": [
                {"type": "VCPU", "value": "2"},
                {"type": "MEMORY", "value": "4096"},
            ],
        },
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": 3600},
        "tags": {"team": "genomics", "project": "p1"},
    }


def test_minimal_request_sends_only_what_was_given() -> None:
    v = validate_submission(
        {"job_name": "x", "job_queue": "demo-queue", "job_definition": "nf-demo:3"},
        queues=QUEUES,
        job_definitions=DEFS,
    )
    assert v.request is not None
    assert v.request.to_kwargs() == {"jobName": "x", "jobQueue": "demo-queue", "jobDefinition": "nf-demo:3"}


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("job_name", "", "required"),
        ("job_name", "bad name!", "invalid"),
        ("job_name", "-leading", "invalid"),
        ("job_name", "x" * 129, "invalid"),
        ("job_queue", "nope", "does not exist"),
        ("job_queue", "", "Pick a job queue"),
        ("job_definition", "other", "not registered"),
        ("command", "echo 'unclosed", "quotes"),
        ("vcpus", "two", "not a number"),
        ("vcpus", "0", "more than 0"),
        ("vcpus", "-1", "more than 0"),
        ("vcpus", "0.3", "0.25"),
        ("memory", "2", "at least 4"),
        ("memory", "4GB", "not a whole number"),
        ("environment", "NOEQUALS", "KEY=VALUE"),
        ("environment", "AWS_BATCH_JOB_ID=1", "reserved"),
        ("environment", "1BAD=x", "not a valid name"),
        ("environment", "A=1\nA=2", "more than once"),
        ("array_size", "1", "between 2 and 10000"),
        ("array_size", "10001", "between 2 and 10000"),
        ("retry_attempts", "0", "between 1 and 10"),
        ("retry_attempts", "11", "between 1 and 10"),
        ("timeout", "59", "at least 60"),
        ("tags", "aws:owner=me", "reserved"),
        ("tags", "batchkit:submission-id=x", "set by batchkit"),
        ("tags", "k=" + "v" * 257, "values up to 256"),
        ("tags", "\n".join(f"k{i}=v" for i in range(50)), "at most 49"),
        ("tags", "owner#1=me", "characters AWS does not allow"),
        ("tags", "cost*centre=42", "characters AWS does not allow"),
        ("vcpus", "0.75", "0.25 or 0.5"),
        ("vcpus", "1.5", "0.25 or 0.5"),
    ],
)
def test_each_bad_value_is_named(field: str, value: str, needle: str) -> None:
    v = validate_submission(good(**{field: value}), queues=QUEUES, job_definitions=DEFS)
    assert not v.ok
    assert v.request is None
    assert set(v.errors) == {field}, v.errors
    assert needle in v.errors[field]


def test_several_bad_fields_are_all_reported() -> None:
    v = validate_submission(good(vcpus="x", memory="1", job_queue="zz"), queues=QUEUES)
    assert set(v.errors) == {"vcpus", "memory", "job_queue"}


def test_unknown_keys_are_rejected() -> None:
    v = validate_submission({**good(), "vcpu": "2"}, queues=QUEUES)
    assert "form" in v.errors


def test_fields_cover_the_form() -> None:
    assert set(good()) == set(FIELDS)


@pytest.mark.parametrize("vcpus", ["0.25", "0.5", "1", "16", "4.0"])
def test_whole_and_fargate_fractional_vcpus_are_accepted(vcpus: str) -> None:
    v = validate_submission(good(vcpus=vcpus), queues=QUEUES, job_definitions=DEFS)
    assert v.ok, v.errors


def test_a_comma_inside_one_value_is_not_a_separator() -> None:
    v = validate_submission(good(environment="JAVA_OPTS=-Xmx1g,-Xms1g"), queues=QUEUES, job_definitions=DEFS)
    assert v.request is not None, v.errors
    assert v.request.environment == (("JAVA_OPTS", "-Xmx1g,-Xms1g"),)
    # every item a KEY=VALUE: still split (and a trailing comma is harmless)
    v = validate_submission(good(environment="A=1, B=2,"), queues=QUEUES, job_definitions=DEFS)
    assert v.request is not None and v.request.environment == (("A", "1"), ("B", "2"))


def test_queue_and_job_definition_arns_are_checked_by_name_and_sent_as_typed() -> None:
    queue = "arn:aws:batch:eu-west-1:123456789012:job-queue/demo-queue"
    jd = "arn:aws:batch:eu-west-1:123456789012:job-definition/nf-demo:3"
    v = validate_submission(good(job_queue=queue, job_definition=jd), queues=QUEUES, job_definitions=DEFS)
    assert v.request is not None, v.errors
    kwargs = v.request.to_kwargs()
    assert (kwargs["jobQueue"], kwargs["jobDefinition"]) == (queue, jd)
    # an ARN naming something the account does not have is still refused
    v = validate_submission(
        good(job_queue=queue.replace("demo-queue", "gone"), job_definition=jd.replace("nf-demo", "other")),
        queues=QUEUES,
        job_definitions=DEFS,
    )
    assert set(v.errors) == {"job_queue", "job_definition"}


def test_49_tags_and_aws_tag_characters_are_accepted() -> None:
    tags = "\n".join(f"k{i}=v" for i in range(48)) + "\nCost Centre_1.a:b/c+d-e@f=x"
    v = validate_submission(good(tags=tags), queues=QUEUES, job_definitions=DEFS)
    assert v.request is not None, v.errors
    assert len(v.request.tags) == 49
