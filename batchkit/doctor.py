"""The run doctor: known-bug advice, risky settings, permissions and queue health.

Most orphan incidents are predictable from things batchkit can already read: the
Nextflow version in ``.nextflow.log``, a few settings in ``nextflow.config``, the
caller's IAM permissions and the state of the run's queues. Each rule below is a
small pure function over what the log reader, the config reader
(:mod:`batchkit._nfconfig`) and the :class:`~batchkit.client.BatchClient` return,
and each names its source (issue or release note) in a comment and in the finding.

Versions compare as (year, month, patch, kind): ``SNAPSHOT`` builds come before the
``-edge`` release of the same number, edge before ``-RC``, and all of them before the
stable release of the same number — so ``24.04.0-edge`` < ``24.04.0`` < ``24.04.4`` <
``24.10.2`` < ``24.12.0-edge``. A fourth numeric part (``22.04.0.5697``, the build
number older launchers print) is kept but does not take part in the order.

Severities: a known bug of the run's version is a *warning*; it becomes an *error*
when the log shows this run hit it (aborted on AWS Batch, or the shutdown reaper gave
up). Anything that stops the run's jobs or batchkit now (a disabled/invalid queue or
compute environment, a refused call, a job no environment can place) is an *error*;
advice on settings is *info*, and so is every "could not determine" — the doctor
never guesses a setting it cannot read. nextflow-io/nextflow#7445 (jobs submitted
after an abort) was closed by #7482 in August 2026 but no release carrying it could
be confirmed, so it fires for every version (info from 26.09 on).

Exit codes of :func:`main` (``batchkit doctor``): 0 when no finding is an error
(warnings and info are advice, not failures), 4 when at least one is; 2 for a bad
launch dir or bad usage. When AWS cannot be asked (no credentials, no region) every
offline finding is still given, with one line on stderr saying the account checks were
skipped and why: the exit code reflects the findings, not the missing account.
``--deadline`` is the whole command's (``BatchClient.give_up_after``, counted from the
start, reading the run too): when it passes with the Batch API not answering, the
account checks stop there — one line on stderr says so — and the doctor returns with
the offline findings and whatever account findings it had, never N calls x deadline.

The AWS Batch rules (the known bugs of Nextflow's AWS Batch executor, the aws.batch
settings, the account checks) apply only to runs that used AWS Batch (the log's
executor lines, else the config's ``process.executor``); for other runs one finding says
they do not apply.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import total_ordering
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from batchkit import _cli_args as cli_args
from batchkit._cli_args import EXIT_STATUS_HELP, SubParsers
from batchkit._nfconfig import Lookup, NfConfig, process_executors, read_config, run_config
from batchkit._time import from_epoch_ms
from batchkit.errors import (
    ApiUnavailableError,
    AwsError,
    BatchkitError,
    CredentialsError,
    InputError,
    NotFoundError,
)

if TYPE_CHECKING:
    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun
    from batchkit.nextflow.log import LogScan

__all__ = [
    "EXIT_AWS",
    "EXIT_ERROR_FINDING",
    "EXIT_OK",
    "EXIT_USAGE",
    "AccountChecksStopped",
    "Finding",
    "LogFacts",
    "Version",
    "account_findings",
    "compute_environment_findings",
    "config_findings",
    "doctor",
    "exit_code",
    "format_findings",
    "log_facts",
    "main",
    "queue_health_findings",
    "run_findings",
    "runnable_findings",
    "version_findings",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: Final[tuple[str, ...]] = ("error", "warning", "info")

# The CLI's exit statuses (batchkit._cli_args holds them all).
EXIT_OK: Final = cli_args.EXIT_OK
EXIT_AWS: Final = cli_args.EXIT_FAILURE
EXIT_USAGE: Final = cli_args.EXIT_USAGE
EXIT_ERROR_FINDING: Final = cli_args.EXIT_ERROR_FINDING


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of advice: what is wrong, the proof, what to do, and where that is known from."""

    rule: str  # stable id, e.g. "nf-no-500-retry"
    severity: Severity
    title: str  # one line
    evidence: str  # "file:line", or the API answer
    advice: str  # what to do
    source: str  # issue / release note, e.g. "nextflow-io/nextflow#4709"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


# --- versions ---------------------------------------------------------------------------------

_VERSION = re.compile(
    r"^v?(?P<year>\d+)\.(?P<month>\d+)(?:\.(?P<patch>\d+))?(?:\.(?P<build>\d+))?"
    r"(?:u(?P<update>\d+))?"
    r"(?:-(?P<kind>edge|SNAPSHOT|RC|rc|beta|alpha)(?P<num>\d*))?$"
)
#: Rank of a pre-release kind against the stable release of the same number.
_KIND_RANK: Final[dict[str, int]] = {"snapshot": 0, "alpha": 0, "beta": 0, "edge": 1, "rc": 2, "stable": 3}


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A Nextflow version, ordered as the module docstring says."""

    year: int
    month: int
    patch: int = 0
    kind: str = "stable"  # "stable" | "edge" | "rc" | "snapshot" | "alpha" | "beta"
    num: int = 0  # the 1 of "-RC1"
    update: int = 0  # the 2 of "0.32.0u2"
    build: int | None = None  # the 5697 of "22.04.0.5697": not part of the order
    text: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Version | None:
        """The version in ``text`` (``"24.04.4"``, ``"19.12.0-edge"``, ...), or None if unreadable."""
        if not text:
            return None
        m = _VERSION.match(text.strip())
        if m is None:
            return None
        kind = (m["kind"] or "stable").lower()
        return cls(
            year=int(m["year"]),
            month=int(m["month"]),
            patch=int(m["patch"] or 0),
            kind=kind,
            num=int(m["num"] or 0),
            update=int(m["update"] or 0),
            build=int(m["build"]) if m["build"] else None,
            text=text.strip(),
        )

    @property
    def key(self) -> tuple[int, int, int, int, int, int]:
        return (self.year, self.month, self.patch, self.update, _KIND_RANK[self.kind], self.num)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text or f"{self.year}.{self.month:02d}.{self.patch}"


def _release(text: str) -> Version:
    version = Version.parse(text)
    assert version is not None, text
    return version


# The first releases carrying each fix (docs/ARCHITECTURE.md §1). An edge release of month N is the
# first to carry a fix merged that month; the stable of the same number comes after it.
#: Retry on 429/500/502/503/504 from the Batch API: 24.03.0-edge changelog "Improve retry
#: logic for AWS Batch executor" [62926c28], nextflow-io/nextflow#4709.
FIXED_500_RETRY: Final = _release("24.03.0-edge")
#: Guard against a DescribeJobs answer without the job (NullPointerException): 24.10.2.
FIXED_NULL_DESCRIBE: Final = _release("24.10.2")
#: Kill the job when its status check throws, instead of dropping the task: 24.12,
#: the fix for the orphans of nextflow-io/nextflow#5516.
FIXED_STATUS_CHECK_KILL: Final = _release("24.12.0-edge")
#: aws.batch.maxSpotAttempts default 5 -> 0 (nextflow-io/nextflow#5215, 24.08.0-edge);
#: before it an explicit 0 was also ignored (Groovy truth, nextflow-io/nextflow#5330).
SPOT_DEFAULT_ZERO: Final = _release("24.08.0-edge")
#: #7445 (ParallelPollingMonitor submits queued tasks after the abort) was closed by
#: nextflow-io/nextflow#7482, merged 2026-08-15. We could not confirm which release first
#: carries it, so every version gets the finding: a warning up to 26.08 (all built before
#: or around the merge), info from 26.09 on ("probably fixed, check your release notes").
SUBMIT_AFTER_ABORT_MERGED: Final = _release("26.09.0-edge")
#: -with-weblog / weblog.* became the nf-weblog plugin in 25.04 (docs/ARCHITECTURE.md §3); from 26.10
#: weblog.enabled no longer loads it by itself (nf-weblog 1.2.0 release notes).
WEBLOG_PLUGIN: Final = _release("25.04.0-edge")
WEBLOG_NO_AUTOLOAD: Final = _release("26.10.0-edge")
#: aws.batch.terminateUnschedulableJobs (nextflow-io/nextflow#5936): 25.03.0-edge, stable 25.04.
UNSCHEDULABLE_OPTION: Final = _release("25.03.0-edge")


# --- version rules (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """A known Nextflow bug as data: which versions it affects and what to say.

    ``fixed_in``: the first release carrying the fix (``None``: every version is
    affected). ``title`` and ``advice`` may use ``{v}`` (the run's version). A version at
    or after the fix gets ``after_fix`` (severity, title, advice) when set, else nothing.
    ``aws_batch``: the bug lives in Nextflow's AWS Batch executor, so the rule only
    applies to runs that used it.
    """

    id: str
    fixed_in: Version | None
    severity: Severity
    title: str
    advice: str
    source: str
    aws_batch: bool = True
    after_fix: tuple[Severity, str, str] | None = None

    @property
    def affected(self) -> str:
        """The versions affected, as a person reads them (``< 24.10.2``, ``all``)."""
        return f"< {self.fixed_in}" if self.fixed_in is not None else "all"

    def check(self, v: Version, evidence: str) -> Finding | None:
        if self.fixed_in is None or v < self.fixed_in:
            return Finding(self.id, self.severity, self.title.format(v=v), evidence, self.advice.format(v=v), self.source)
        if self.after_fix is not None:
            severity, title, advice = self.after_fix
            return Finding(self.id, severity, title.format(v=v), evidence, advice.format(v=v), self.source)
        return None


#: The version rules, one row per known bug (a maintainer adds a rule here, nowhere else).
VERSION_RULES: Final[tuple[Rule, ...]] = (
    # nextflow-io/nextflow#4709: a 500 AuthorizerConfigurationException on SubmitJob or
    # DescribeJobs aborted the whole run; retries on 429/5xx arrived in 24.03.0-edge.
    Rule(
        "nf-no-500-retry", FIXED_500_RETRY, "warning",
        "Nextflow {v} does not retry AWS Batch API errors: one burst of HTTP 500s aborts the run",
        "Upgrade Nextflow to 24.04 or later (retries 429/500/502/503/504). Until then, "
        "after any abort run `batchkit reconcile` on the launch dir and kill the orphans.",
        "nextflow-io/nextflow#4709",
    ),
    # A DescribeJobs answer without the job (empty or null) crashed the task monitor with
    # a NullPointerException until the guard of 24.10.2.
    Rule(
        "nf-null-describe-crash", FIXED_NULL_DESCRIBE, "warning",
        "Nextflow {v} crashes when DescribeJobs answers without the job (null response)",
        "Upgrade Nextflow to 24.10.2 or later. A crashed run leaves its jobs running: "
        "use `batchkit reconcile` to find them.",
        "Nextflow 24.10.2 release notes (null DescribeJobs response guard)",
    ),
    # nextflow-io/nextflow#5516 (the incident): when a status check threw, the error path
    # dropped the task from the running queue without killing its job; the job ran on
    # (Batch even re-ran one) and the report said "running". Fixed in 24.12.
    Rule(
        "nf-status-check-orphans", FIXED_STATUS_CHECK_KILL, "warning",
        "Nextflow {v} drops a task whose status check fails without killing its Batch job",
        "Upgrade Nextflow to 24.12 or later. After an abort, the dropped jobs keep "
        "running and costing: `batchkit reconcile` lists them as orphans, `batchkit kill` stops them.",
        "nextflow-io/nextflow#5516",
    ),
    # nextflow-io/nextflow#7445: submissions queued in ParallelPollingMonitor still go out
    # after the abort; the kill sweep has already run, so nothing ever kills those jobs.
    # Fixed by #7482 (merged 2026-08-15); see SUBMIT_AFTER_ABORT_MERGED for the decision.
    Rule(
        "nf-submit-after-abort", SUBMIT_AFTER_ABORT_MERGED, "warning",
        "Nextflow {v} can submit jobs after the run aborted, and never kills them",
        "After an abort, look for jobs created after the abort time on the run's queues "
        "(`batchkit reconcile` marks them untracked) and kill them.",
        "nextflow-io/nextflow#7445",
        after_fix=(
            "info",
            "Nextflow {v} is newer than the fix for jobs submitted after an abort (#7482); check that it carries it",
            "Check the release notes of your version for nextflow-io/nextflow#7482; until "
            "confirmed, reconcile after any abort.",
        ),
    ),
)  # fmt: skip

#: Rule ids about Nextflow's AWS Batch executor or its aws.batch settings: they apply only
#: to runs that used AWS Batch (the table rules above, the spot/reaper/late-submission rules,
#: and the config rules on aws.batch.*, the Batch API rate and job tags).
AWS_BATCH_RULES: Final = frozenset(
    {r.id for r in VERSION_RULES if r.aws_batch}
    | {"nf-spot-zero-ignored", "nf-spot-retry-default", "nf-jobs-after-abort", "nf-reaper-gave-up"}
    | {"cfg-spot-retries", "cfg-transfer-attempts", "cfg-retry-mode", "cfg-unschedulable-wait",
       "cfg-no-submit-rate", "cfg-submit-rate-high", "cfg-no-resource-labels"}
)  # fmt: skip


def is_aws_batch_rule(finding: Finding) -> bool:
    """True for a finding that only makes sense for an AWS Batch run."""
    if finding.rule in AWS_BATCH_RULES or finding.rule.startswith("aws-"):
        return True
    return finding.rule == "cfg-undetermined" and "aws." in finding.title


def version_findings(
    version: str | None,
    evidence: str,
    *,
    config: NfConfig | None = None,
    aws_batch: bool | None = True,
    executors: Sequence[str] = (),
) -> list[Finding]:
    """Known Nextflow bugs of ``version``; ``evidence`` is where the version was read.

    ``config`` (optional) refines the two rules that depend on a setting
    (``aws.batch.maxSpotAttempts``, the weblog); without it they fire on the version alone.
    ``aws_batch``: whether the run used AWS Batch (None: unknown). The AWS Batch rules
    apply only when it did; otherwise one info finding says why they were not applied.
    """
    v = Version.parse(version)
    if v is None:
        return [
            Finding(
                "nf-version-unknown",
                "info",
                f"could not determine the Nextflow version ({version or 'no version banner'})",
                evidence,
                "Version rules were skipped. Run the doctor on the launch dir that holds the "
                "run's .nextflow.log (its second line reads 'N E X T F L O W  ~  version …').",
                "batchkit",
            )
        ]
    out: list[Finding] = []
    for rule in VERSION_RULES:
        if rule.aws_batch and not aws_batch:
            continue
        if (found := rule.check(v, evidence)) is not None:
            out.append(found)
    if aws_batch:
        out.extend(_spot_default_findings(v, evidence, config))
    else:
        out.insert(0, batch_rules_skipped(aws_batch, executors, evidence))
    out.extend(_weblog_findings(v, evidence, config))
    return out


def batch_rules_skipped(aws_batch: bool | None, executors: Sequence[str], evidence: str) -> Finding:
    """The one finding that says the AWS Batch rules were not applied, and why."""
    if aws_batch is False:
        used = ", ".join(e for e in executors if e != "not awsbatch") or "another executor"
        return Finding(
            "nf-not-aws-batch",
            "info",
            f"the run did not use AWS Batch ({used}): the AWS Batch checks do not apply",
            evidence,
            "Nothing to do for AWS Batch. batchkit reconcile/kill are for AWS Batch runs; this "
            "run's jobs are not Batch jobs.",
            "batchkit",
        )
    return Finding(
        "nf-executor-unknown",
        "info",
        "could not tell whether the run used AWS Batch: the AWS Batch checks were not applied",
        evidence,
        "The log names no executor (no '[warm up] executor >' line: the run may never have "
        "started) and the config sets no process.executor. Run the doctor on a launch dir "
        "whose .nextflow.log shows the run's tasks.",
        "batchkit",
    )


def _spot_default_findings(v: Version, evidence: str, config: NfConfig | None) -> list[Finding]:
    if v >= SPOT_DEFAULT_ZERO:
        return []
    look = config.lookup("aws.batch.maxSpotAttempts") if config is not None else Lookup("", "unset")
    value = look.value if look.state == "set" else None
    if look.state == "set" and isinstance(value, int | float) and value == 0:
        # nextflow-io/nextflow#5330: before 24.08 `maxSpotAttempts ?: 5` treats 0 as false,
        # so an explicit 0 still gives jobs a retryStrategy of 5 attempts.
        return [
            Finding(
                "nf-spot-zero-ignored",
                "warning",
                f"aws.batch.maxSpotAttempts = 0 is ignored by Nextflow {v}: Batch still retries spot-reclaimed jobs 5 times",
                f"{look.evidence}; version at {evidence}",
                "Set aws.batch.maxSpotAttempts = -1 (the workaround from #5330) or upgrade to 24.08+.",
                "nextflow-io/nextflow#5330",
            )
        ]
    if look.state == "set":
        return []  # an explicit non-zero value: config_findings judges it
    where = evidence if look.state == "unset" else f"{evidence}; {look.evidence} ({look.reason})"
    unless = "" if look.state == "unset" else " (if the unreadable config does not set it)"
    # nextflow-io/nextflow#5215: before 24.08 the default was 5, so Batch silently re-ran
    # spot-reclaimed jobs in the same work dir, invisible to Nextflow (extra cost, and a
    # job that outlives the run).
    return [
        Finding(
            "nf-spot-retry-default",
            "warning",
            f"Nextflow {v} lets Batch retry spot-reclaimed jobs 5 times without telling Nextflow{unless}",
            where,
            "Set aws.batch.maxSpotAttempts = -1 (0 is ignored before 24.08, #5330) or upgrade to "
            "24.08+, and retry with errorStrategy instead.",
            "nextflow-io/nextflow#5215",
        )
    ]


def _weblog_findings(v: Version, evidence: str, config: NfConfig | None) -> list[Finding]:
    if config is None or v < WEBLOG_PLUGIN:
        return []
    flag = config.cli_flag("-with-weblog")
    enabled = config.lookup("weblog.enabled")
    url = config.lookup("weblog.url")
    # weblog.url alone does not switch the weblog on: enabled = true or -with-weblog does
    used = flag is not None or (enabled.state == "set" and enabled.value is True)
    if not used:
        return []
    declared = any(
        isinstance(p.value, str) and p.value.split("@")[0] == "nf-weblog" for p in config.plugins
    )
    if declared:
        return []
    where = next(
        (s.evidence for s in (enabled.setting, url.setting) if s is not None),
        "the command line: -with-weblog",
    )
    if v >= WEBLOG_NO_AUTOLOAD:
        # nf-weblog 1.2.0 release notes: from 26.10 weblog.enabled no longer loads the plugin.
        return [
            Finding(
                "nf-weblog-plugin",
                "warning",
                f"Nextflow {v} sends no weblog events: the nf-weblog plugin is not declared",
                f"{where}; version at {evidence}",
                "Add `plugins { id 'nf-weblog' }` (pin a version) to the config.",
                "nf-weblog 1.2.0 release notes",
            )
        ]
    # docs/ARCHITECTURE.md §3: since 25.04 the weblog is the nf-weblog plugin, loaded (downloaded) at launch.
    return [
        Finding(
            "nf-weblog-plugin",
            "info",
            f"on Nextflow {v} the weblog is the nf-weblog plugin, fetched at launch unless declared",
            f"{where}; version at {evidence}",
            "Declare it with `plugins { id 'nf-weblog@<version>' }` so offline runs (NXF_OFFLINE) and "
            "26.10+ keep sending events.",
            "Nextflow 25.04 migration notes (nf-weblog plugin)",
        )
    ]


# --- config rules (pure) ----------------------------------------------------------------------

#: aws.batch.retryMode values Nextflow accepts (config reference).
RETRY_MODES: Final = frozenset({"standard", "legacy", "adaptive", "built-in"})
#: docs/ARCHITECTURE.md §4: assume ~50 TPS per account for Batch calls, shared with Nextflow itself.
ACCOUNT_TPS: Final = 50.0

_DURATION_S: Final[dict[str, float]] = {
    "ms": 0.001, "milli": 0.001, "millis": 0.001,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip


def submit_rate(text: str) -> float | None:
    """Jobs per second of an ``executor.submitRateLimit`` (``'10sec'``, ``'50/2min'``, ``'10/1s'``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*/?\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*", text)
    if m is None:
        return None
    unit = _DURATION_S.get(m[3])
    if unit is None:
        return None
    per = float(m[2]) if m[2] else 1.0
    if per <= 0:
        return None
    return float(m[1]) / (per * unit)


def _files(config: NfConfig) -> str:
    """Evidence for "not set": the files that were read."""
    return "not set in " + ", ".join(config.files) if config.files else "no config file found"


def _lookup_reason(reason: str, text: str) -> str:
    return f"{reason}: {text}" if text else reason


def _undetermined(key: str, look: Lookup) -> Finding:
    return Finding(
        "cfg-undetermined",
        "info",
        f"could not determine {key}",
        look.evidence or "config",
        f"{look.reason}. batchkit does not run Groovy; check this setting by hand "
        "(`nextflow config` prints the resolved config).",
        "batchkit",
    )


#: Reports a setting the config reader could not determine (``config_findings`` says it
#: once per unreadable part, not once per key that part could touch).
Undetermined = Callable[[str, Lookup], None]


def config_findings(config: NfConfig, *, version: str | None = None) -> list[Finding]:
    """Risky or missing settings in the run's config files; unreadable ones said as such.

    One rule per setting, in this order; each names its source in the finding.
    """
    out: list[Finding] = []
    opaque_reasons = {_lookup_reason(o.reason, o.text) for o in config.opaque}

    def undetermined(key: str, look: Lookup) -> None:
        # Opaque entries are reported once each (_unreadable_findings), not once per key they could touch.
        if look.reason not in opaque_reasons:
            out.append(_undetermined(key, look))

    out += _spot_attempts_findings(config, undetermined)
    out += _transfer_attempts_findings(config, undetermined)
    out += _retry_mode_findings(config, undetermined)
    out += _submit_rate_findings(config, undetermined)
    out += _resource_labels_findings(config)
    out += _observer_findings(config, undetermined)
    out += _unreadable_findings(config)
    out += _unschedulable_wait_findings(config, Version.parse(version))
    return out


def _known(config: NfConfig, key: str, undetermined: Undetermined) -> Lookup | None:
    """The setting ``key`` (set or unset), or None when the reader could not determine it
    (then said through ``undetermined``: a rule never guesses)."""
    look = config.lookup(key)
    if look.state == "unknown":
        undetermined(key, look)
        return None
    return look


def _spot_attempts_findings(config: NfConfig, undetermined: Undetermined) -> list[Finding]:
    # aws.batch.maxSpotAttempts > 0: Batch re-runs spot-reclaimed jobs inside one task,
    # in the same work dir, invisible to Nextflow (nextflow-io/nextflow#5215).
    spot = _known(config, "aws.batch.maxSpotAttempts", undetermined)
    if spot is None or not (spot.state == "set" and isinstance(spot.value, int | float) and spot.value > 0):
        return []
    return [
        Finding(
            "cfg-spot-retries",
            "warning",
            f"aws.batch.maxSpotAttempts = {spot.value}: Batch re-runs spot-reclaimed jobs without telling Nextflow",
            spot.evidence,
            "Set aws.batch.maxSpotAttempts = 0 (or -1 before 24.08, #5330) and retry with "
            "errorStrategy 'retry', so every attempt is a task Nextflow sees and kills.",
            "nextflow-io/nextflow#5215",
        )
    ]


def _transfer_attempts_findings(config: NfConfig, undetermined: Undetermined) -> list[Finding]:
    # aws.batch.maxTransferAttempts (default 1): one transient S3 error fails the task.
    transfer = _known(config, "aws.batch.maxTransferAttempts", undetermined)
    if transfer is None:
        return []
    value = transfer.value
    if not (transfer.state == "unset" or (isinstance(value, int | float) and not isinstance(value, bool) and value <= 1)):
        return []
    shown = "not set (default 1)" if transfer.state == "unset" else f"= {value}"
    return [
        Finding(
            "cfg-transfer-attempts",
            "info",
            f"aws.batch.maxTransferAttempts {shown}: each S3 transfer in a job is tried once",
            transfer.evidence or _files(config),
            "Set aws.batch.maxTransferAttempts = 3 so a transient S3 error does not fail the task.",
            "Nextflow config reference (aws.batch.maxTransferAttempts)",
        )
    ]


def _retry_mode_findings(config: NfConfig, undetermined: Undetermined) -> list[Finding]:
    # aws.batch.retryMode: passed to the AWS SDK; only these names are understood.
    mode = _known(config, "aws.batch.retryMode", undetermined)
    if mode is None or mode.state != "set" or str(mode.value) in RETRY_MODES:
        return []
    return [
        Finding(
            "cfg-retry-mode",
            "warning",
            f"aws.batch.retryMode = {mode.value!r} is not a retry mode Nextflow knows",
            mode.evidence,
            f"Use one of {', '.join(sorted(RETRY_MODES))} (default standard).",
            "Nextflow config reference (aws.batch.retryMode)",
        )
    ]


def _resource_labels_findings(config: NfConfig) -> list[Finding]:
    # process.resourceLabels: the only way jobs get tags (docs/ARCHITECTURE.md §5); without them a job's
    # owner is proven only by its id or its work dir.
    if config.any_key(lambda k: k.startswith("process.") and k.endswith("resourceLabels")):
        return []
    if config.opaque:
        return []  # an unreadable part could set them: reported once by _unreadable_findings
    return [
        Finding(
            "cfg-no-resource-labels",
            "info",
            "process.resourceLabels is not set: the run's Batch jobs carry no tags",
            _files(config),
            "Set process.resourceLabels (e.g. [run: workflow.runName]) so every job names its run "
            "in the console and cost reports (batchkit never takes a tag as proof of ownership).",
            "Nextflow process reference (resourceLabels)",
        )
    ]


def _unreadable_findings(config: NfConfig) -> list[Finding]:
    """One finding per part of the config the reader could not evaluate (batchkit runs no Groovy)."""
    return [
        Finding(
            "cfg-unreadable",
            "info",
            f"could not read part of the config ({item.reason}): settings it sets are not checked",
            f"{item.evidence}: {item.text}" if item.text else item.evidence,
            "Check that part by hand (`nextflow config` prints the resolved config); the "
            "rules above treat the settings it could set as unknown.",
            "batchkit",
        )
        for item in config.opaque
    ]


def _unschedulable_wait_findings(config: NfConfig, v: Version | None) -> list[Finding]:
    # nextflow-io/nextflow#5936: without aws.batch.terminateUnschedulableJobs (25.03.0-edge on)
    # an unschedulable job waits in RUNNABLE forever.
    if v is None or v < UNSCHEDULABLE_OPTION:
        return []
    if config.lookup("aws.batch.terminateUnschedulableJobs").state != "unset":
        return []
    return [
        Finding(
            "cfg-unschedulable-wait",
            "info",
            "aws.batch.terminateUnschedulableJobs is not set: a job no compute environment can run waits forever",
            _files(config),
            "Set aws.batch.terminateUnschedulableJobs = true so Nextflow fails such tasks.",
            "nextflow-io/nextflow#5936",
        )
    ]


def _submit_rate_findings(config: NfConfig, undetermined: Undetermined) -> list[Finding]:
    # executor.$awsbatch.submitRateLimit overrides executor.submitRateLimit for awsbatch.
    look = config.first_of("executor.$awsbatch.submitRateLimit", "executor.submitRateLimit")
    if look.state == "unknown":
        undetermined(look.key, look)
        return []
    if look.state == "unset":
        return [
            Finding(
                "cfg-no-submit-rate",
                "info",
                "executor.submitRateLimit is not set: Nextflow submits as fast as Batch answers",
                _files(config),
                "Set executor.submitRateLimit (e.g. '10/1s'): the account's ~50 calls/s are shared "
                "by SubmitJob, Nextflow's own polling and any kill batchkit sends.",
                "AWS Batch quotas (SubmitJob 50 TPS)",
            )
        ]
    rate = submit_rate(str(look.value))
    if rate is None:
        return [
            Finding(
                "cfg-undetermined",
                "info",
                f"could not determine the rate of executor.submitRateLimit = {look.value!r}",
                look.evidence,
                "Write it as '<n>/<duration>' (e.g. '50/2min') or '<n>sec'.",
                "Nextflow config reference (executor.submitRateLimit)",
            )
        ]
    if rate > ACCOUNT_TPS:
        return [
            Finding(
                "cfg-submit-rate-high",
                "warning",
                f"executor.submitRateLimit = {look.value!r} ({rate:g}/s) is above the account's ~50 calls/s",
                look.evidence,
                "Lower it (e.g. '20/1s') so Nextflow's polling and kills are not throttled.",
                "AWS Batch quotas (SubmitJob 50 TPS)",
            )
        ]
    return []


def _observer_findings(config: NfConfig, undetermined: Undetermined) -> list[Finding]:
    out: list[Finding] = []
    known_cli = bool(config.cli_args)
    for scope, flag, why in (
        ("trace", "-with-trace", "after a crash the log is the only record of in-flight tasks"),
        ("weblog", "-with-weblog", "batchkit cannot follow the run live"),
    ):
        look = _known(config, f"{scope}.enabled", undetermined)
        if look is None:
            continue
        on = look.state == "set" and look.value is True
        if on or config.cli_flag(flag) is not None:
            continue
        if look.state == "unset" and config.opaque:
            continue  # an unreadable part may enable it
        unless = "" if known_cli else f" (unless the command line had {flag})"
        out.append(
            Finding(
                f"cfg-{scope}-off",
                "info",
                f"{scope} is off{unless}: {why}",
                look.evidence or _files(config),
                f"Set {scope}.enabled = true in nextflow.config, or run with {flag}.",
                f"Nextflow config reference ({scope})",
            )
        )
    return out


# --- what the log says -------------------------------------------------------------------------

@dataclass(slots=True)
class LogFacts:
    """What the doctor reads from ``.nextflow.log`` (via the one log reader; lines are 1-based)."""

    path: str | None = None
    version: str | None = None
    version_line: int | None = None
    cli_args: tuple[str, ...] = ()
    profiles: tuple[str, ...] | None = None
    config_files: tuple[str, ...] = ()
    abort_cause: str | None = None
    abort_line: int | None = None
    reaper_line: int | None = None
    on_batch: bool = False
    #: executors the log names ("awsbatch", "slurm", "local", …)
    executors: tuple[str, ...] = ()
    #: the AWS region of the log's AwsOptions line
    region: str | None = None
    #: where the run was launched, on the launch machine ("Found config local: <dir>/nextflow.config")
    launch_dir: str | None = None
    #: (line, job id) of AWS Batch submissions logged after the abort line (#7445)
    submitted_after_abort: tuple[tuple[int, str], ...] = ()

    @property
    def version_evidence(self) -> str:
        if self.path is None:
            return "no .nextflow.log"
        return f"{self.path}:{self.version_line}" if self.version_line else self.path


def log_facts(lines: Iterable[str], path: str | None = None) -> LogFacts:
    """The doctor's facts from log lines, read by :mod:`batchkit.nextflow.log`. Pure."""
    from batchkit.nextflow.log import scan_log_lines

    return _facts_of(scan_log_lines(lines, path=path or "<log>", require_log=False), path)


def _facts_of(scan: LogScan, path: str | None) -> LogFacts:
    # Nextflow logs "Applying config profile" for `standard` even without -profile; with no
    # such line at all the profiles are unknown (an old or truncated log).
    return LogFacts(
        path=path,
        version=scan.version,
        version_line=scan.version_line,
        cli_args=tuple((scan.command or "").split()),
        profiles=tuple(scan.profiles) if scan.profiles else None,
        config_files=tuple(scan.config_files),
        abort_cause=scan.abort_cause,
        abort_line=scan.abort_line,
        reaper_line=scan.reaper_line,
        on_batch=scan.used_aws_batch,
        executors=tuple(scan.executors),
        region=scan.region,
        launch_dir=scan.config_local_dir,
        submitted_after_abort=tuple(scan.submitted_after_abort),
    )


def _read_log(log: Path) -> LogFacts:
    from batchkit.nextflow.log import scan_log_file

    if not log.exists():
        return LogFacts()
    return _facts_of(scan_log_file(log), str(log))


_AWS_CAUSE = re.compile(r"Status Code: (\d+); Error Code: (\w+)")


def _short(text: str | None, limit: int = 100) -> str:
    """The abort cause for a title: the AWS status and error code when the SDK's text has them."""
    text = text or "unknown cause"
    if m := _AWS_CAUSE.search(text):
        return f"HTTP {m[1]} {m[2]}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


_API_FAILURE = re.compile(r"Status Code: 5\d\d|AWSBatch|AuthorizerConfigurationException|Rate exceeded|Throttl", re.I)


def _api_failure(cause: str | None) -> bool:
    """The abort came from an AWS Batch API error (the SDK's message names the service or a 5xx)."""
    return bool(cause) and _API_FAILURE.search(cause or "") is not None


def run_findings(facts: LogFacts, findings: Sequence[Finding]) -> list[Finding]:
    """Sharpen the version findings with what this run did (aborted on Batch -> errors).

    A known bug is a warning until the log shows the run hit the situation it is about;
    then it is an error with the abort line as evidence.
    """
    if facts.path is None:
        return list(findings)
    out: list[Finding] = []
    aborted = facts.abort_line is not None
    abort_at = f"{facts.path}:{facts.abort_line}"
    for f in findings:
        # #7445 concerns any abort; #5516 only an abort by a failing Batch API call (a
        # SIGINT or a failed task does not make a status check throw).
        hit = f.severity == "warning" and (
            f.rule == "nf-submit-after-abort" or (f.rule == "nf-status-check-orphans" and _api_failure(facts.abort_cause))
        )
        if aborted and facts.on_batch and hit:
            f = dataclasses.replace(
                f,
                severity="error",
                title=f"{f.title} — and this run aborted on AWS Batch ({_short(facts.abort_cause)})",
                evidence=f"{f.evidence}; abort at {abort_at}",
            )
        out.append(f)
    if facts.submitted_after_abort:
        # nextflow-io/nextflow#7445: the kill sweep has already run; nothing kills these.
        late = facts.submitted_after_abort
        shown = "; ".join(f"{facts.path}:{no} job={job}" for no, job in late[:5])
        out.append(
            Finding(
                "nf-jobs-after-abort",
                "error",
                f"{len(late)} job(s) were submitted after the run aborted: nothing will ever kill them",
                f"abort at {abort_at}; {shown}{' …' if len(late) > 5 else ''}",
                "Kill them: `batchkit reconcile` lists them as untracked/orphans, `batchkit kill` stops them.",
                "nextflow-io/nextflow#7445",
            )
        )
    if facts.reaper_line is not None:
        # nextflow-io/nextflow#2169: the shutdown gave up on its kill queue.
        out.append(
            Finding(
                "nf-reaper-gave-up",
                "error",
                "Nextflow gave up killing the run's jobs at shutdown: some jobs may not be terminated",
                f"{facts.path}:{facts.reaper_line}",
                "Run `batchkit reconcile` on the launch dir and kill the orphans it lists.",
                "nextflow-io/nextflow#2169",
            )
        )
    return out


# --- account rules (through the BatchClient) ------------------------------------------------

#: Error codes AWS answers a missing IAM permission with.
DENIED_CODES: Final = frozenset(
    {"AccessDeniedException", "AccessDenied", "UnauthorizedException", "UnauthorizedOperation", "Forbidden", "403"}
)
#: The probe id for DescribeJobs when there is no job to ask about: unknown ids are
#: silently absent from the answer (docs/ARCHITECTURE.md §4), so this asks for nothing.
PROBE_JOB_ID: Final = "batchkit-doctor-probe"
MAX_DESCRIBED: Final = 1000


class AccountChecksStopped(ApiUnavailableError):
    """The client's whole-command deadline (``BatchClient.give_up_after``) passed while
    the Batch API was not answering: the account checks stopped there.

    ``findings``: every finding made before the stop (from :func:`doctor`: the log and
    config findings too, sorted as ``doctor`` sorts them). The message names the call
    that was not answered and its last error.
    """

    def __init__(self, message: str, findings: Sequence[Finding], *, operation: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, operation=operation, code=code)
        self.findings = list(findings)


def _out_of_time(client: Any) -> Callable[[], bool]:
    """Whether ``client``'s whole-command deadline has passed (False when it has none)."""
    remaining = getattr(client, "remaining", None)

    def spent() -> bool:
        left = remaining() if callable(remaining) else None
        return left is not None and left <= 0

    return spent


def _is_denied(exc: AwsError) -> bool:
    text = str(exc).lower()
    return (exc.code in DENIED_CODES) or "not authorized" in text or "accessdenied" in text


_IAM_ACTION = re.compile(r"perform:\s*(batch:[A-Za-z]+)")


def _iam_finding(action: str, exc: AwsError, target: str) -> Finding:
    # AWS names the missing action in the message ("... is not authorized to perform:
    # batch:ListJobs"); every Batch API operation has the IAM action batch:<Operation>.
    m = _IAM_ACTION.search(str(exc))
    iam = m[1] if m else f"batch:{action}"
    return Finding(
        "aws-permission",
        "error",
        f"the caller may not call {action}: batchkit cannot {target}",
        f"{action}: {exc.code or 'refused'}: {exc}",
        f"Add {iam} to the role's (or user's) IAM policy.",
        "AWS Batch IAM actions",
    )


def _call(
    findings: list[Finding], action: str, target: str, fn: Any, *args: Any,
    stop: Callable[[], bool] | None = None, **kwargs: Any,
) -> tuple[bool, Any]:
    """Run one client call; turn a refusal into a finding.

    No credentials at all (or an invalid/expired token) raises CredentialsError: every
    other probe would fail the same way. BatchClient reports AccessDeniedException as a
    CredentialsError too; that one is a missing permission, so it becomes a finding.
    A call that kept failing until the whole command's deadline (``stop()`` says it has
    passed) raises AccountChecksStopped: every later call would fail at once the same way.
    """
    try:
        return True, fn(*args, **kwargs)
    except ApiUnavailableError as exc:
        if stop is not None and stop():
            raise AccountChecksStopped(f"{action}: {exc}", findings, operation=action, code=exc.code) from exc
        findings.append(
            Finding(
                "aws-api-unavailable",
                "error",
                f"the Batch API kept failing on {action}",
                f"{action}: {exc}",
                "Try again later; a run of an old Nextflow aborts on such an outage (#4709).",
                "nextflow-io/nextflow#4709",
            )
        )
    except NotFoundError as exc:
        if action == "DescribeJobQueues":
            raise  # the caller names the missing queues
        findings.append(
            Finding(
                "aws-not-found",
                "error",
                f"{action} found no such resource",
                f"{action}: {exc}",
                "Check the queue/environment names and the region the run used.",
                "batchkit",
            )
        )
    except AwsError as exc:
        if _is_denied(exc):
            findings.append(_iam_finding(action, exc, target))
        elif isinstance(exc, CredentialsError):
            raise
        else:
            findings.append(
                Finding(
                    "aws-call-failed",
                    "error",
                    f"{action} failed: {exc.code or 'error'}",
                    f"{action}: {exc}",
                    "Check the region/endpoint and the caller's permissions.",
                    "batchkit",
                )
            )
    return False, None


def _requested(job: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(vCPUs, memory MiB) a job asks for: resourceRequirements first, then the legacy fields."""
    container = job.get("container") or {}
    vcpus: float | None = None
    memory: float | None = None
    for req in container.get("resourceRequirements") or []:
        try:
            if req.get("type") == "VCPU":
                vcpus = float(req["value"])
            elif req.get("type") == "MEMORY":
                memory = float(req["value"])
        except (KeyError, TypeError, ValueError):
            continue
    if vcpus is None and container.get("vcpus") is not None:
        vcpus = float(container["vcpus"])
    if memory is None and container.get("memory") is not None:
        memory = float(container["memory"])
    return vcpus, memory


def account_findings(
    client: BatchClient,
    queues: Sequence[str] | None,
    *,
    runnable_after: float = 1800.0,
    now: datetime | None = None,
    version: str | None = None,
    job_ids: Sequence[str] = (),
) -> list[Finding]:
    """Permissions, queue and compute environment health, stuck and unschedulable jobs.

    Every call goes through ``client``; each is a harmless read, made in this order:
    DescribeJobQueues, DescribeComputeEnvironments, ListJobs (RUNNABLE), DescribeJobs. A
    refused call becomes an "add batch:<Action>" finding; no credentials raises
    CredentialsError; the client's whole-command deadline passing with the API not
    answering raises AccountChecksStopped carrying the findings made before it.
    """
    now = now or datetime.now(UTC)
    findings: list[Finding] = []
    stop = _out_of_time(client)
    wanted = list(dict.fromkeys(queues or ()))
    if not wanted:
        findings.append(
            Finding(
                "aws-no-queue",
                "info",
                "the run's job queue is not known: queue checks were skipped",
                "no queue in the run's log/trace or config, and none given",
                "Pass the queue: `batchkit doctor LAUNCH_DIR --queue NAME`.",
                "batchkit",
            )
        )
    queues_ok, queue_rows, checked = _describe_run_queues(client, wanted, findings, stop)
    findings += queue_health_findings(checked)
    ces = _describe_queue_environments(client, checked, findings, stop)
    # ListJobs is probed even when DescribeJobQueues was refused: the names are known.
    # Only the run's queues are judged; with none known the calls are permission probes only.
    probe_queues: list[Any] = [q.get("jobQueueName") for q in checked]
    if not probe_queues:
        probe_queues = wanted[:1] if not queues_ok else [q.get("jobQueueName") for q in queue_rows[:1]]
    runnable = _list_runnable(client, probe_queues, [q.get("jobQueueName") for q in checked], findings, stop)
    details = _describe_runnable(client, runnable, job_ids, findings, stop)
    v = Version.parse(version)
    for q in checked:
        rows = runnable.get(q.get("jobQueueName", "?"), [])
        if rows:
            findings += runnable_findings(q, rows, details, ces, now=now, runnable_after=runnable_after, version=v)
    return findings


def _describe_run_queues(
    client: BatchClient, wanted: list[str], findings: list[Finding], stop: Callable[[], bool]
) -> tuple[bool, list[dict[str, Any]], list[dict[str, Any]]]:
    """DescribeJobQueues: (whether it answered, every queue it answered, the run's among them).

    A queue asked for and not answered is an "aws-queue-missing" finding.
    """
    try:
        ok, answer = _call(
            findings, "DescribeJobQueues", "check the run's queues",
            client.describe_job_queues, names=wanted or None, stop=stop,
        )  # fmt: skip
    except NotFoundError as exc:
        findings.append(_queue_missing(wanted, str(exc)))
        return True, [], []
    queue_rows: list[dict[str, Any]] = list(answer or []) if ok else []
    by_name = {q.get("jobQueueName"): q for q in queue_rows}
    by_arn = {q.get("jobQueueArn"): q for q in queue_rows}
    missing = [n for n in wanted if n not in by_name and n not in by_arn]
    if ok and missing:
        findings.append(_queue_missing(missing, f"DescribeJobQueues answered {sorted(k for k in by_name if k)}"))
    checked = [q for q in queue_rows if q.get("jobQueueName") in wanted or q.get("jobQueueArn") in wanted]
    return ok, queue_rows, checked


def _describe_queue_environments(
    client: BatchClient, checked: Sequence[Mapping[str, Any]], findings: list[Finding], stop: Callable[[], bool]
) -> dict[str, dict[str, Any]]:
    """DescribeComputeEnvironments for the queues' environments, judged; by ARN and by name."""
    ce_refs: list[str] = []
    for q in checked:
        for ref in q.get("computeEnvironmentOrder") or []:
            ce = ref.get("computeEnvironment")
            if ce and ce not in ce_refs:
                ce_refs.append(ce)
    ces: dict[str, dict[str, Any]] = {}
    if not ce_refs:
        return ces
    _ok, answer = _call(
        findings, "DescribeComputeEnvironments", "check the queues' compute environments",
        client.describe_compute_environments, names=ce_refs, stop=stop,
    )  # fmt: skip
    for ce in answer or []:
        for key in (ce.get("computeEnvironmentArn"), ce.get("computeEnvironmentName")):
            if key:
                ces[key] = ce
    findings += compute_environment_findings(list({id(c): c for c in ces.values()}.values()))
    return ces


def _list_runnable(
    client: BatchClient, probe_queues: Sequence[Any], judged: Sequence[Any], findings: list[Finding],
    stop: Callable[[], bool],
) -> dict[str, list[dict[str, Any]]]:
    """ListJobs RUNNABLE on ``probe_queues``; the answers of the ``judged`` queues, by queue name."""
    runnable: dict[str, list[dict[str, Any]]] = {}
    for qname in [q for q in probe_queues if q]:
        ok, answer = _call(
            findings, "ListJobs", "list the run's jobs (orphan search)",
            client.list_jobs, qname, statuses=["RUNNABLE"], stop=stop,
        )  # fmt: skip
        if not ok:
            break  # one permission finding is enough
        if qname in judged:
            runnable[qname] = list(answer or [])
    return runnable


def _describe_runnable(
    client: BatchClient, runnable: Mapping[str, Sequence[Mapping[str, Any]]], job_ids: Sequence[str],
    findings: list[Finding], stop: Callable[[], bool],
) -> Mapping[str, Any]:
    """DescribeJobs of the RUNNABLE jobs (else of the run's, else a probe id): answers by job id."""
    # Details of at most MAX_DESCRIBED RUNNABLE jobs (10 DescribeJobs calls): enough to
    # show a queue's unschedulable jobs without spending the account's shared rate.
    probe_ids = [s["jobId"] for rows in runnable.values() for s in rows if s.get("jobId")][:MAX_DESCRIBED]
    ok, described = _call(
        findings, "DescribeJobs", "read job details (commands, attempts, resources)",
        client.describe_jobs, probe_ids or list(job_ids)[:100] or [PROBE_JOB_ID],
    )  # fmt: skip
    if not ok or described is None:
        return {}
    if described.failed:
        failed = _describe_failed(client, described.failed)
        if stop():  # describe_jobs never raises: its chunks ran out of the command's time
            raise AccountChecksStopped(f"DescribeJobs: {failed.evidence}", findings, operation="DescribeJobs")
        findings.append(failed)
    details: Mapping[str, Any] = described.jobs
    return details


#: Queue/environment statuses that are not a fault (the others: INVALID, DELETING, DELETED).
_HEALTHY_STATUS: Final = frozenset({"VALID", "CREATING", "UPDATING"})


def queue_health_findings(queues: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """DISABLED or INVALID job queues, from DescribeJobQueues answers. Pure."""
    out: list[Finding] = []
    for q in queues:
        name = q.get("jobQueueName", "?")
        state, status = q.get("state"), q.get("status")
        if state != "ENABLED":
            # A DISABLED queue refuses SubmitJob; jobs already in it still run.
            out.append(
                Finding(
                    "aws-queue-disabled",
                    "error",
                    f"job queue {name} is {state}: it takes no new jobs, so the run's submissions fail",
                    f"DescribeJobQueues: {name} state={state} status={status}",
                    f"Enable it: `aws batch update-job-queue --job-queue {name} --state ENABLED`.",
                    "AWS Batch UpdateJobQueue",
                )
            )
        if status not in _HEALTHY_STATUS:
            reason = q.get("statusReason") or ""
            out.append(
                Finding(
                    "aws-queue-invalid",
                    "error",
                    f"job queue {name} is {status}" + (f": {reason}" if reason else ""),
                    f"DescribeJobQueues: {name} status={status} statusReason={reason!r}",
                    "Fix what statusReason names (usually its compute environment order), then update the queue.",
                    "AWS Batch DescribeJobQueues",
                )
            )
    return out


def compute_environment_findings(envs: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """DISABLED or INVALID compute environments, from DescribeComputeEnvironments answers. Pure."""
    out: list[Finding] = []
    for ce in envs:
        name = ce.get("computeEnvironmentName", "?")
        state, status = ce.get("state"), ce.get("status")
        if state != "ENABLED":
            out.append(
                Finding(
                    "aws-ce-disabled",
                    "error",
                    f"compute environment {name} is {state}: it starts no jobs",
                    f"DescribeComputeEnvironments: {name} state={state} status={status}",
                    f"Enable it: `aws batch update-compute-environment --compute-environment {name} --state ENABLED`.",
                    "AWS Batch UpdateComputeEnvironment",
                )
            )
        if status not in _HEALTHY_STATUS:
            out.append(
                Finding(
                    "aws-ce-invalid",
                    "error",
                    f"compute environment {name} is {status}: jobs on it stay RUNNABLE",
                    f"DescribeComputeEnvironments: {name} status={status} statusReason={ce.get('statusReason')!r}",
                    "Fix what statusReason names (service role, subnets, security groups, AMI), then update it.",
                    "AWS Batch DescribeComputeEnvironments",
                )
            )
    return out


def _describe_failed(client: BatchClient, failed: Sequence[str]) -> Finding:
    """BatchClient.describe_jobs never raises: a refused or failing chunk comes back as
    ``failed`` ids. Its stats (local, no network) keep the last error's code and text."""
    last = getattr(getattr(client, "stats", None), "last_error", None)
    code = str(getattr(last, "code", "") or "")
    message = str(getattr(last, "message", "") or "")
    if getattr(last, "operation", None) == "DescribeJobs":
        error = AwsError(message, operation="DescribeJobs", code=code)
        if _is_denied(error):
            return _iam_finding("DescribeJobs", error, "read job details (commands, attempts, resources)")
    return Finding(
        "aws-api-unavailable",
        "error",
        "DescribeJobs kept failing: job details could not be read",
        f"DescribeJobs: {len(failed)} id(s) failed; last error {code or '?'}: {message}",
        "Try again later; a run of an old Nextflow aborts on such an outage (#4709).",
        "nextflow-io/nextflow#4709",
    )


def _queue_missing(names: Sequence[str], answer: str) -> Finding:
    return Finding(
        "aws-queue-missing",
        "error",
        f"job queue {', '.join(names)} does not exist in this account and region",
        answer,
        "Check the queue name and the region (--region / AWS_REGION) the run used.",
        "AWS Batch DescribeJobQueues",
    )


def runnable_findings(
    queue: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    details: Mapping[str, Any],
    ces: Mapping[str, Mapping[str, Any]],
    *,
    now: datetime,
    runnable_after: float,
    version: Version | None,
) -> list[Finding]:
    """Unschedulable and stuck jobs among a queue's RUNNABLE ``rows`` (ListJobs summaries).

    ``details``: DescribeJobs answers by job id; ``ces``: DescribeComputeEnvironments
    answers by ARN and name. A job counted as unschedulable is not counted as stuck. Pure.
    """
    qname = queue.get("jobQueueName", "?")
    max_vcpus, ce_text = _queue_capacity(queue, ces)
    unschedulable = _unschedulable_jobs(rows, details, max_vcpus)
    unplaceable = {job_id for job_id, _ in unschedulable}
    placeable = [row for row in rows if str(row.get("jobId")) not in unplaceable]
    stuck = _stuck_jobs(placeable, details, now=now, runnable_after=runnable_after)
    out: list[Finding] = []
    if unschedulable:
        out.append(_unschedulable_finding(qname, [why for _, why in unschedulable], ce_text, version))
    if stuck:
        out.append(
            Finding(
                "aws-runnable-stuck",
                "warning",
                f"{len(stuck)} job(s) RUNNABLE on queue {qname} for more than {runnable_after / 60:g} min",
                f"ListJobs RUNNABLE: {_first_five([why for _, why in stuck])}; {ce_text}",
                "Check the queue's compute environments: maxvCpus reached, instance types, subnets, "
                "AMI, service limits; the job's statusReason says what Batch is waiting for.",
                "AWS Batch troubleshooting: jobs stuck in RUNNABLE",
            )
        )
    return out


def _first_five(evidence: Sequence[str]) -> str:
    """The first five pieces of evidence, "…" when there are more."""
    return f"{'; '.join(evidence[:5])}{' …' if len(evidence) > 5 else ''}"


def _queue_capacity(queue: Mapping[str, Any], ces: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, str]:
    """(the largest maxvCpus of the queue's enabled environments, or None when one does not
    state it; those environments as evidence text)."""
    refs = [r.get("computeEnvironment") for r in queue.get("computeEnvironmentOrder") or []]
    envs = [ces[r] for r in refs if r in ces]
    enabled = [e for e in envs if e.get("state") == "ENABLED"]
    limits = [(e.get("computeResources") or {}).get("maxvCpus") for e in enabled]
    # An unmanaged environment has no computeResources: its capacity is unknown, so the
    # vCPU test only runs when every enabled environment states its maxvCpus.
    numbers = [float(x) for x in limits if isinstance(x, int | float)]
    max_vcpus = max(numbers) if numbers and len(numbers) == len(limits) else None
    ce_text = ", ".join(
        f"{e.get('computeEnvironmentName')} maxvCpus={(e.get('computeResources') or {}).get('maxvCpus')}" for e in enabled
    ) or "no enabled compute environment"
    return max_vcpus, ce_text


def _unschedulable_jobs(
    rows: Sequence[Mapping[str, Any]], details: Mapping[str, Any], max_vcpus: float | None
) -> list[tuple[str, str]]:
    """(job id, evidence) of each job no compute environment of the queue can place."""
    found: list[tuple[str, str]] = []
    for row in rows:
        job_id = str(row.get("jobId"))
        job = details.get(job_id) or {}
        vcpus, memory = _requested(job)
        reason = str(job.get("statusReason") or row.get("statusReason") or "")
        # Batch's own verdict for a job no environment can place (what Nextflow's
        # terminateUnschedulableJobs looks for, nextflow-io/nextflow#5936); it covers memory too.
        if reason.startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"):
            found.append((job_id, f"{job_id} statusReason={reason!r}"))
        elif max_vcpus is not None and vcpus is not None and vcpus > max_vcpus:
            mem = f", memory={memory:g} MiB" if memory is not None else ""
            found.append((job_id, f"{job_id} ({row.get('jobName')}) asks vcpus={vcpus:g}{mem}"))
    return found


def _unschedulable_finding(qname: str, evidence: Sequence[str], ce_text: str, version: Version | None) -> Finding:
    # nextflow-io/nextflow#5936: Nextflow leaves such jobs RUNNABLE unless
    # aws.batch.terminateUnschedulableJobs (25.03.0-edge on) is set.
    if version is not None and version >= UNSCHEDULABLE_OPTION:
        how = "set aws.batch.terminateUnschedulableJobs = true so Nextflow fails such tasks"
    else:
        how = "Nextflow before 25.04 waits for them forever (25.04 added aws.batch.terminateUnschedulableJobs)"
    return Finding(
        "aws-unschedulable",
        "error",
        f"{len(evidence)} job(s) on queue {qname} ask for more than any of its compute environments can give: they never start",
        f"DescribeJobs: {_first_five(evidence)}; DescribeComputeEnvironments: {ce_text}",
        f"Terminate them (`batchkit kill`), lower the process's cpus/memory or raise the environment's "
        f"maxvCpus; {how}.",
        "nextflow-io/nextflow#5936",
    )


def _stuck_jobs(
    rows: Sequence[Mapping[str, Any]], details: Mapping[str, Any], *, now: datetime, runnable_after: float
) -> list[tuple[str, str]]:
    """(job id, evidence) of each job RUNNABLE for longer than ``runnable_after`` seconds."""
    found: list[tuple[str, str]] = []
    for row in rows:
        job_id = str(row.get("jobId"))
        created = from_epoch_ms(row.get("createdAt"))
        if created is None:
            continue
        age = (now - created).total_seconds()
        if age > runnable_after:
            why = (details.get(job_id) or {}).get("statusReason") or row.get("statusReason")
            found.append((job_id, f"{job_id} created {age / 60:.0f} min ago" + (f" ({why})" if why else "")))
    return found


# --- the whole check ---------------------------------------------------------------------------

_ORDER: Final = {s: i for i, s in enumerate(SEVERITIES)}


def _config_for(
    launch_dir: Path, facts: LogFacts, extra: Sequence[str | Path], env: Mapping[str, str] | None
) -> NfConfig:
    """Read the run's config files in Nextflow's precedence order (:func:`batchkit._nfconfig.run_config`).

    With a log, exactly the files it says it parsed ($NXF_HOME/config included when it
    existed there), not this machine's home config; without a log the usual places.
    """
    return run_config(
        launch_dir,
        logged_files=facts.config_files,
        original_launch_dir=facts.launch_dir,
        cli_args=facts.cli_args,
        profiles=facts.profiles,
        extra=extra,
        env=env,
    )


def doctor(
    run_or_launch_dir: NextflowRun | str | Path,
    client: BatchClient | None = None,
    *,
    queues: Sequence[str] | None = None,
    runnable_after: float = 1800.0,
    now: datetime | None = None,
    config_files: Sequence[str | Path] = (),
    env: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding for a run, errors first.

    ``run_or_launch_dir``: a :class:`~batchkit.nextflow.NextflowRun` or the directory
    where ``nextflow run`` was started. Without ``client`` only the log and config
    rules run. ``queues`` overrides the queues the run's log/config name.
    ``config_files``: extra ``-c`` files; ``env`` stands for ``os.environ`` (NXF_HOME, HOME).
    Raises AccountChecksStopped (carrying every finding made) when the client's
    whole-command deadline passes with the Batch API not answering.

    The steps, in order: find the run's log, read it, read the config files it names, the
    version, log and config rules, then (with ``client``) the account checks.
    """
    run, launch_dir, log = _locate_run(run_or_launch_dir)
    facts = _read_log(log) if log is not None else LogFacts()
    version = facts.version or (getattr(run, "version", None) if run is not None else None)
    config = (
        _config_for(launch_dir, facts, config_files, env)
        if launch_dir is not None
        else read_config(list(config_files), cli_args=facts.cli_args)
    )
    executors, aws_batch = run_executors(facts, config if launch_dir is not None else None, run)
    evidence = _version_evidence(facts, version, log)
    if launch_dir is not None:
        findings = run_findings(facts, version_findings(version, evidence, config=config, aws_batch=aws_batch, executors=executors))
        findings += config_findings(config, version=version)
    else:
        # No launch dir: the config files cannot be found, and "not set" would be a guess.
        findings = run_findings(facts, version_findings(version, evidence, config=None, aws_batch=aws_batch, executors=executors))
        findings.append(
            Finding(
                "cfg-not-checked",
                "info",
                "the run has no launch directory: its nextflow.config was not checked",
                "NextflowRun.launch_dir is None",
                "Run the doctor on the launch directory (where `nextflow run` was started).",
                "batchkit",
            )
        )
    if not aws_batch:
        findings = [f for f in findings if not is_aws_batch_rule(f)]
    if client is not None and aws_batch is not False:
        try:
            findings += account_findings(
                client, list(queues or ()) or _run_queues(run, launch_dir, config), runnable_after=runnable_after,
                now=now, version=version, job_ids=_run_job_ids(run),
            )  # fmt: skip
        except AccountChecksStopped as stopped:
            everything = _by_severity([*findings, *stopped.findings])
            raise AccountChecksStopped(str(stopped), everything, operation=stopped.operation,
                                       code=stopped.code) from stopped
    return _by_severity(findings)


def _by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; each kind in the order the rules found them."""
    return sorted(findings, key=lambda f: _ORDER[f.severity])


def _locate_run(run_or_launch_dir: NextflowRun | str | Path) -> tuple[Any, Path | None, Path | None]:
    """(the NextflowRun or None, its launch dir, its current ``.nextflow.log``), each None when unknown.

    A launch dir given as a path must exist (InputError otherwise); a NextflowRun without
    a launch dir is placed by its log's folder.
    """
    if isinstance(run_or_launch_dir, str | Path):
        folder = Path(run_or_launch_dir)
        if not folder.is_dir():
            raise InputError(
                "no such launch directory; pass the directory where `nextflow run` was started "
                "(it holds .nextflow.log)",
                path=str(folder),
            )
        return None, folder, folder / ".nextflow.log"
    run = run_or_launch_dir
    logs = [Path(p) for p in getattr(run, "log_paths", None) or ()]
    current = [p for p in logs if p.name == ".nextflow.log"] or logs
    log = current[0] if current else None
    where = getattr(run, "launch_dir", None)
    launch_dir = Path(where) if where else (log.parent if log is not None else None)
    if log is None and launch_dir is not None:
        log = launch_dir / ".nextflow.log"
    return run, launch_dir, log


def _version_evidence(facts: LogFacts, version: str | None, log: Path | None) -> str:
    """Where the run's version was read (the log's banner line, else the NextflowRun)."""
    if facts.version:
        return facts.version_evidence
    if version:
        return "NextflowRun.version (no version banner in the log)"
    return f"{log} (not found)" if log is not None else "no .nextflow.log"


def run_executors(facts: LogFacts, config: NfConfig | None, run: Any = None) -> tuple[list[str], bool | None]:
    """The run's executors (log first, then the config's process.executor, then the run view)
    and whether it used AWS Batch (None: nothing says)."""
    executors = list(facts.executors)
    if not executors and config is not None:
        executors = process_executors(config)
    if not executors and run is not None:
        executors = list(getattr(run, "executors", None) or [])
    if not executors:
        return [], None
    return executors, "awsbatch" in executors


def _run_region(launch_dir: Path, config_files: Sequence[str | Path] = ()) -> tuple[str | None, bool | None]:
    """The region the run used (the log's AwsOptions line, else aws.region) and whether it used AWS Batch."""
    from batchkit._nfconfig import aws_region

    facts = _read_log(launch_dir / ".nextflow.log")
    config = _config_for(launch_dir, facts, config_files, None)
    _executors, used_batch = run_executors(facts, config)
    if facts.region:
        return facts.region, used_batch
    found = aws_region(config)
    return (found[0] if found else None), used_batch


def _run_queues(run: Any, launch_dir: Path | None, config: NfConfig) -> list[str]:
    """The run's queues: from the NextflowRun (log/trace), else the config's process.queue."""
    found: list[str] = []
    if run is None and launch_dir is not None:
        try:
            from batchkit.nextflow import NextflowRun

            run = NextflowRun.from_dir(launch_dir)
        except (BatchkitError, ImportError, OSError):
            run = None
    for q in getattr(run, "queues", None) or ():
        if q and str(q) not in found:
            found.append(str(q))
    if not found:
        for s in config.any_key(lambda k: k == "process.queue" or (k.startswith("process.with") and k.endswith(".queue"))):
            if isinstance(s.value, str) and s.value not in found:
                found.append(s.value)
    return found


def _run_job_ids(run: Any) -> list[str]:
    tasks = getattr(run, "tasks", None)
    if tasks is None:
        return []
    try:
        from batchkit.schema import TaskCol

        ids = tasks[TaskCol.NATIVE_ID].dropna().astype(str).tolist()
    except (KeyError, AttributeError, TypeError):
        return []
    return [i for i in ids if i and ":" not in i][:100]


# --- output --------------------------------------------------------------------------------

_COLORS: Final = {"error": "\x1b[31;1m", "warning": "\x1b[33;1m", "info": "\x1b[36m"}
_RESET: Final = "\x1b[0m"


def format_findings(findings: Sequence[Finding], *, color: bool = False) -> str:
    """Findings as text for a terminal: one block per finding, then a one-line count."""
    if not findings:
        return "No findings: nothing known to be wrong.\n"
    lines: list[str] = []
    for f in findings:
        label = f.severity.upper().ljust(7)
        if color:
            label = f"{_COLORS[f.severity]}{label}{_RESET}"
        lines.append(f"{label} {f.title}  [{f.rule}]")
        lines.append(f"        evidence: {f.evidence}")
        lines.append(f"        advice:   {f.advice}")
        lines.append(f"        source:   {f.source}")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    lines.append(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    return "\n".join(lines) + "\n"


def exit_code(findings: Iterable[Finding]) -> int:
    """0 unless a finding is an error (4): warnings and info are advice, not failures."""
    return EXIT_ERROR_FINDING if any(f.severity == "error" for f in findings) else EXIT_OK


def register_cli(sub: SubParsers) -> None:
    """Register ``batchkit doctor`` on the CLI's parser tree (batchkit.cli)."""
    p = sub.add_parser(
        "doctor",
        help="check credentials, queues and Nextflow settings",
        description="Known-bug advice for the run's Nextflow version, risky settings, "
        "permissions and queue health. Exit 0: no error finding; 4: an error finding; "
        "2: bad launch dir. Without AWS credentials the log and config findings are still given.",
        epilog=EXIT_STATUS_HELP,
    )
    p.add_argument("launch_dir", type=cli_args.path, help="directory where `nextflow run` was started")
    p.add_argument("--queue", action="append", default=None, help="job queue to check (repeatable)")
    p.add_argument("-c", "--config", action="append", default=[], type=cli_args.path, help="extra config file (repeatable)")
    p.add_argument("--endpoint-url", type=cli_args.endpoint_url, help="Batch endpoint, e.g. a local emulator")
    p.add_argument("--region", type=cli_args.region, help="AWS region")
    p.add_argument("--profile", help="AWS named profile")
    p.add_argument("--offline", action="store_true", help="skip the AWS checks (log and config only)")
    p.add_argument("--deadline", type=cli_args.number(0, 86400.0, unit="seconds"), default=300.0,
                   help="seconds the whole command may take (reading the run and every AWS call) before "
                        "the account checks give up (default 300)")  # fmt: skip
    p.add_argument("--runnable-after", type=cli_args.number(0, 365 * 86400.0, unit="seconds"), default=1800.0,
                   help="seconds before a RUNNABLE job counts as stuck (default 1800)")  # fmt: skip
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run_cli)


def main(argv: Sequence[str] | None = None) -> int:
    """``batchkit doctor LAUNCH_DIR [--queue Q]... [--endpoint-url URL | --region R --profile P] [--format text|json]``.

    The same as ``batchkit doctor ARGV``: the arguments are the CLI's (batchkit.cli).
    """
    from batchkit.cli import main as cli_main

    return cli_main(["doctor", *(sys.argv[1:] if argv is None else argv)])


def run_cli(args: argparse.Namespace) -> int:
    """``batchkit doctor``: the findings on stdout, the exit status from the worst of them."""
    client = None
    skipped: str | None = None
    stopped: str | None = None
    try:
        if not args.launch_dir.is_dir():
            raise InputError(
                "no such launch directory; pass the directory where `nextflow run` was started",
                path=str(args.launch_dir),
            )
        offline = dict(queues=args.queue, runnable_after=args.runnable_after, config_files=args.config)
        region, used_batch = _run_region(args.launch_dir, args.config)
        if args.offline:
            skipped = "--offline"
        elif used_batch is False:
            skipped = "the run did not use AWS Batch"
        else:
            from batchkit.client import BatchClient

            try:
                # No userinfo: botocore does not use it and quotes the URL in its errors.
                endpoint = cli_args.redact_url(args.endpoint_url) if args.endpoint_url else None
                client = BatchClient(region=args.region or region, profile=args.profile, endpoint_url=endpoint,
                                     deadline=args.deadline)  # fmt: skip
                # --deadline is the whole command's, counted from its start (the imports and
                # reading the run too): past it every call fails at once, however many the
                # checks still need.
                client.give_up_after(cli_args.deadline_left(args))
            except AwsError as exc:
                skipped = str(exc)
        try:
            findings = doctor(args.launch_dir, client, **offline)
        except AccountChecksStopped as exc:
            # The offline findings (and the account checks done in time) stand.
            stopped = str(exc)
            findings = exc.findings
        except AwsError as exc:
            # No credentials (or no answer at all): every offline finding still stands.
            skipped = str(exc)
            findings = doctor(args.launch_dir, None, **offline)
    except InputError as exc:
        print(f"batchkit doctor: error: {cli_args.message(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BatchkitError as exc:
        print(f"batchkit doctor: error: {cli_args.message(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    code = exit_code(findings)
    if stopped is not None and code == EXIT_OK:
        # The account checks were asked for and the Batch API never answered: "all clear"
        # would be a lie to a script, so this is a runtime failure unless a finding is worse.
        code = EXIT_AWS
    if stopped is not None:
        done = any(f.rule.startswith("aws-") for f in findings)  # the account rules' prefix
        print(
            f"batchkit doctor: {'error: ' if code == EXIT_AWS else ''}account checks stopped at the {args.deadline:g} s deadline, the Batch API not "
            f"answering ({cli_args.message(stopped)}); the findings are from the log and config"
            + (" and the account checks done before it" if done else " only"),
            file=sys.stderr,
        )
    elif skipped is not None and skipped != "--offline":
        print(
            f"batchkit doctor: account checks skipped ({cli_args.message(skipped)}); the findings are from the log and "
            "config only",
            file=sys.stderr,
        )
    if args.format == "json":
        shown = [_scrubbed(f, terminal=False) for f in findings]
        print(json.dumps([f.to_dict() for f in shown], indent=2))
    else:
        shown = [_scrubbed(f, terminal=True) for f in findings]
        sys.stdout.write(format_findings(shown, color=sys.stdout.isatty()))
    return code


def _scrubbed(finding: Finding, *, terminal: bool) -> Finding:
    """A finding fit to print: no URL userinfo (a log can quote `-with-weblog
    http://user:token@…`), and on a terminal no control characters from log lines."""

    def clean(text: str) -> str:
        text = cli_args.scrub_userinfo(text)
        return cli_args.printable(text) if terminal else text

    return dataclasses.replace(
        finding, title=clean(finding.title), evidence=clean(finding.evidence), advice=clean(finding.advice)
    )
