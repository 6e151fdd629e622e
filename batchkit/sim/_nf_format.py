"""Nextflow's own text formats, reproduced exactly — pure, no I/O.

Everything here mirrors a named piece of Nextflow's source (nextflow-io/nextflow) so
the simulated run writes artefacts a reader cannot tell from the real thing:

- job names: ``AwsBatchTaskHandler.normalizeJobName``;
- the container command: ``AwsBatchExecutor.getLaunchCommand`` / ``s3Cmd``;
- trace values: ``TraceRecord.fmtDate/fmtTime/fmtMemory/fmtPercent/fmtString`` with
  ``nextflow.util.Duration.toString`` and ``MemoryUnit.toString``;
- log lines: the logback layout ``%d{MMM-dd HH:mm:ss.SSS} [%thread] %-5level
  %logger{36} - %msg``;
- run names: ``NameGenerator`` (an adjective and a scientist's surname).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from random import Random
from typing import Final
from zoneinfo import ZoneInfo

#: Nextflow writes ``Integer.MAX_VALUE`` as the exit of a task whose exit is unknown.
EXIT_UNKNOWN: Final = 2147483647
NA: Final = "-"

#: TraceFileObserver's default fields, in order.
TRACE_DEFAULT_FIELDS: Final[tuple[str, ...]] = (
    "task_id",
    "hash",
    "native_id",
    "name",
    "status",
    "exit",
    "submit",
    "duration",
    "realtime",
    "%cpu",
    "peak_rss",
    "peak_vmem",
    "rchar",
    "wchar",
)

#: TraceRecord.FIELDS: every trace field and the formatter type Nextflow applies.
TRACE_FIELD_TYPES: Final[Mapping[str, str]] = {
    "task_id": "str",
    "hash": "str",
    "native_id": "str",
    "process": "str",
    "module": "str",
    "container": "str",
    "tag": "str",
    "name": "str",
    "status": "str",
    "exit": "str",
    "submit": "date",
    "start": "date",
    "complete": "date",
    "duration": "time",
    "realtime": "time",
    "%cpu": "perc",
    "%mem": "perc",
    "rss": "mem",
    "vmem": "mem",
    "peak_rss": "mem",
    "peak_vmem": "mem",
    "rchar": "mem",
    "wchar": "mem",
    "syscr": "num",
    "syscw": "num",
    "read_bytes": "mem",
    "write_bytes": "mem",
    "attempt": "num",
    "workdir": "str",
    "script": "str",
    "scratch": "str",
    "queue": "str",
    "cpus": "num",
    "memory": "mem",
    "disk": "mem",
    "time": "time",
    "env": "str",
    "error_action": "str",
    "vol_ctxt": "num",
    "inv_ctxt": "num",
    "hostname": "str",
    "cpu_model": "str",
}

_MEM_UNITS: Final = ("B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- job name and container command ---------------------------------------------------


def normalize_job_name(name: str, *, keep_hyphen: bool = True) -> str:
    """The Batch job name Nextflow derives from a task name.

    ``AwsBatchTaskHandler.normalizeJobName``: spaces become ``_``, every other
    character outside ``[A-Za-z0-9_-]`` is dropped, the result is cut to 128 chars.
    Before 24.10 the hyphen was dropped too (``[^a-zA-Z0-9_]``); it was kept from the
    release that prefixes Seqera Platform jobs with ``tw-<id>-`` (nextflow-io/nextflow#5315).
    """
    allowed = r"[^a-zA-Z0-9_-]" if keep_hyphen else r"[^a-zA-Z0-9_]"
    result = re.sub(allowed, "", name.replace(" ", "_"))
    return result[:128]


def task_workdir(work_dir: str, hash32: str) -> str:
    """``<workDir>/ab/<30 hex>`` for a 32-hex task hash."""
    return f"{work_dir.rstrip('/')}/{hash32[:2]}/{hash32[2:]}"


def short_hash(hash32: str) -> str:
    """The trace's ``hash`` column and the log's ``[ab/cdef12]``: 2 + 6 hex digits."""
    return f"{hash32[:2]}/{hash32[2:8]}"


def launch_command(task_dir: str, *, cli: str = "/usr/local/bin/aws") -> list[str]:
    """The container command Nextflow submits for a task (``AwsBatchExecutor.s3Cmd``).

    The job fetches ``.command.run`` from the task's S3 work dir and uploads its log
    there on exit — which is why the work dir (hence the task hash) can be read back
    from any job's command (docs/ARCHITECTURE.md §5.1, proof 2).
    """
    aws = f"{cli} s3 cp --only-show-errors"
    script = (
        f'trap "{{ ret=$?; {aws} .command.log {task_dir}/.command.log||true; exit $ret; }}" EXIT; '
        f"{aws} {task_dir}/.command.run - | bash 2>&1 | tee .command.log"
    )
    return ["bash", "-o", "pipefail", "-c", script]


# --- trace value formats ------------------------------------------------------------------


def _java_round(x: float) -> int:
    """``Math.round``: floor(x + 0.5)."""
    return math.floor(x + 0.5)


def fmt_duration(millis: int | float | None) -> str:
    """``nextflow.util.Duration.toString``: ``352ms``, ``1.2s``, ``16s``, ``1m 2s``, ``1d 2h 3m``."""
    if millis is None:
        return NA
    ms = int(millis)
    if ms < 1_000:
        return f"{ms}ms"
    if ms < 60_000:
        # Math.round(ms / 1000 * 10 as float) / 10 -- Groovy's BigDecimal drops a ".0"
        tenths = _java_round(ms / 1_000 * 10)
        return f"{tenths // 10}s" if tenths % 10 == 0 else f"{tenths / 10:.1f}s"
    secs = _java_round(ms / 1_000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (mins, "m"), (secs, "s")) if v]
    return " ".join(parts)


def fmt_memory(size: int | float | None) -> str:
    """``MemoryUnit.toString``: 1024-based, ``0.#`` (half-even), ``B KB MB GB TB``; 0 is ``0``."""
    if size is None:
        return NA
    n = int(size)
    if n <= 0:
        return "0"
    groups = int(math.log10(n) / math.log10(1024))
    value = Decimal(n / math.pow(1024, groups)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    text = f"{value:f}"
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text} {_MEM_UNITS[groups]}"


def fmt_percent(value: float | None) -> str:
    """``String.format('%.1f%%', value.toFloat())``."""
    if value is None:
        return NA
    rounded = Decimal(float(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{rounded:f}%"


def fmt_date(epoch_ms: int | float | None, tz: str = "UTC") -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in the launch machine's zone, no zone marker."""
    if not epoch_ms:
        return NA
    dt = datetime.fromtimestamp(int(epoch_ms) / 1000, tz=ZoneInfo(tz))
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(epoch_ms) % 1000:03d}"


def fmt_string(value: object) -> str:
    """``TraceRecord.fmtString``: numbers as is (MAX_VALUE as ``-``), empty as ``-``."""
    if value is None or value == "":
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return NA if value == EXIT_UNKNOWN else str(value)
    return str(value)


def fmt_number(value: object) -> str:
    """``TraceRecord.fmtNumber``: the raw value (``trace.raw = true`` uses this for all types)."""
    if value is None:
        return NA
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_trace_value(name: str, value: object, *, raw: bool = False, tz: str = "UTC") -> str:
    """One trace cell, formatted as ``TraceRecord.getFmtStr`` would."""
    kind = TRACE_FIELD_TYPES.get(name)
    if kind is None:
        raise ValueError(f"not a Nextflow trace field: {name!r}")
    if raw and kind in {"date", "time", "perc", "mem"}:
        kind = "num"
    if kind == "str":
        return fmt_string(value)
    if kind == "num":
        return fmt_number(value)
    if kind == "date":
        return fmt_date(value if isinstance(value, int | float) else None, tz)
    if kind == "time":
        return fmt_duration(value if isinstance(value, int | float) else None)
    if kind == "mem":
        return fmt_memory(value if isinstance(value, int | float) else None)
    return fmt_percent(value if isinstance(value, int | float) else None)


def render_trace_row(
    record: Mapping[str, object],
    fields: Sequence[str] = TRACE_DEFAULT_FIELDS,
    *,
    raw: bool = False,
    tz: str = "UTC",
) -> str:
    """A tab-separated trace line for ``record`` (raw values keyed by trace field name)."""
    return "\t".join(render_trace_value(f, record.get(f), raw=raw, tz=tz) for f in fields)


# --- log lines --------------------------------------------------------------------------


def abbreviate_logger(name: str, target: int = 36) -> str:
    """logback's ``%logger{36}``: shorten leading package names to one letter until it fits.

    ``nextflow.processor.TaskPollingMonitor`` -> ``n.processor.TaskPollingMonitor``,
    ``nextflow.cloud.aws.batch.AwsBatchTaskHandler`` -> ``n.c.aws.batch.AwsBatchTaskHandler``.
    """
    if len(name) <= target:
        return name
    parts = name.split(".")
    for i in range(len(parts) - 1):
        parts[i] = parts[i][:1]
        if len(".".join(parts)) <= target:
            break
    return ".".join(parts)


def log_timestamp(epoch: float, tz: str = "UTC") -> str:
    """``MMM-dd HH:mm:ss.SSS`` (English month, no year), as the .nextflow.log writes it."""
    millis = round(epoch * 1000)
    dt = datetime.fromtimestamp(millis / 1000, tz=ZoneInfo(tz))
    return f"{_MONTHS[dt.month - 1]}-{dt:%d %H:%M:%S}.{millis % 1000:03d}"


def log_line(epoch: float, thread: str, level: str, logger: str, message: str, tz: str = "UTC") -> str:
    """One .nextflow.log entry (a multi-line message keeps its continuation lines)."""
    return f"{log_timestamp(epoch, tz)} [{thread}] {level:<5} {abbreviate_logger(logger)} - {message}"


def console_line(level: str, message: str) -> str | None:
    """What Nextflow's console shows of a log entry, or None (DEBUG stays in the file).

    Nextflow's ``LoggerHelper.PrettyConsoleLayout`` (nextflow-io/nextflow,
    ``modules/nextflow/src/main/groovy/nextflow/util/LoggerHelper.groovy``) prints INFO
    messages bare, ERROR as ``ERROR ~ message`` and other levels as ``LEVEL: message``;
    the console filter drops everything below INFO.
    """
    if level == "INFO":
        return message
    if level == "ERROR":
        return f"ERROR ~ {message}"
    if level in ("WARN", "WARNING"):
        return f"WARN: {message}"
    return None


def utc_iso(epoch: float) -> str:
    """The weblog's ``utcTime``: ``yyyy-MM-dd'T'HH:mm:ss'Z'``."""
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trace_file_timestamp(epoch: float, tz: str = "UTC") -> str:
    """The ``<timestamp>`` of the default ``trace-<timestamp>.txt`` (``yyyy-MM-dd_HH-mm-ss``)."""
    return datetime.fromtimestamp(epoch, tz=ZoneInfo(tz)).strftime("%Y-%m-%d_%H-%M-%S")


def aws_sdk_v1_message(message: str, status: int, code: str, request_id: str) -> str:
    """How the AWS SDK for Java v1 renders a service error; Nextflow < 25 logs exactly this.

    nextflow-io/nextflow#5516: ``Session aborted -- Cause: Internal server error (Service:
    AWSBatch; Status Code: 500; Error Code: AuthorizerConfigurationException; Request ID:
    ...; Proxy: null)``.
    """
    return (
        f"{message} (Service: AWSBatch; Status Code: {status}; Error Code: {code}; "
        f"Request ID: {request_id}; Proxy: null)"
    )


# --- versions and names -------------------------------------------------------------------


def version_tuple(version: str) -> tuple[int, int, int]:
    """``"24.02.0-edge"`` -> ``(24, 2, 0)``; unparsable parts count as 0."""
    nums = [int(x) for x in re.findall(r"\d+", version.split("-")[0])[:3]]
    while len(nums) < 3:
        nums.append(0)
    return (nums[0], nums[1], nums[2])


# A sample of NameGenerator's two lists (nextflow/util/NameGenerator.groovy).
_ADJECTIVES: Final = (
    "admiring", "agitated", "amazing", "angry", "astonishing", "awesome", "berserk", "big",
    "boring", "clever", "cheeky", "cranky", "crazy", "determined", "distracted", "drunk",
    "ecstatic", "elated", "elegant", "evil", "exotic", "fabulous", "fervent", "festering",
    "focused", "friendly", "furious", "gigantic", "goofy", "grave", "happy", "hungry",
    "infallible", "insane", "intergalactic", "irreverent", "jolly", "jovial", "kickass",
    "lethal", "lonely", "loving", "mad", "magical", "marvelous", "mighty", "modest",
    "nasty", "naughty", "nauseous", "nice", "nostalgic", "peaceful", "pedantic", "pensive",
    "prickly", "reverent", "romantic", "sad", "serene", "sharp", "shrivelled", "sick",
    "silly", "sleepy", "small", "soggy", "special", "stoic", "stupefied", "suspicious",
    "tender", "thirsty", "tiny", "trusting", "voluminous", "wise", "zen",
)
_SCIENTISTS: Final = (
    "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin",
    "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "bhabha", "bhaskara",
    "blackwell", "bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain",
    "brown", "carson", "chandrasekhar", "colden", "cori", "cray", "curie", "darwin",
    "davinci", "descartes", "dijkstra", "einstein", "elion", "engelbart", "euclid", "euler",
    "fermat", "fermi", "feynman", "franklin", "galileo", "gates", "goldberg", "goodall",
    "hawking", "heisenberg", "hodgkin", "hoover", "hopper", "hugle", "hypatia", "jang",
    "jennings", "jepsen", "joliot", "jones", "kalam", "kare", "keller", "khorana",
    "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr", "leakey", "leavitt",
    "lichterman", "liskov", "lovelace", "lumiere", "mahavira", "mayer", "mccarthy",
    "mcclintock", "mclean", "mcnulty", "meitner", "meninsky", "mestorf", "mirzakhani",
    "morse", "murdock", "newton", "nobel", "noether", "northcutt", "noyce", "panini",
    "pare", "pasteur", "payne", "perlman", "pike", "poincare", "poitras", "ptolemy",
    "raman", "ramanujan", "ride", "ritchie", "roentgen", "rosalind", "saha", "sammet",
    "shaw", "shirley", "shockley", "sinoussi", "snyder", "spence", "stallman", "stonebraker",
    "swanson", "swartz", "swirles", "tesla", "thompson", "torvalds", "turing", "varahamihira",
    "visvesvaraya", "volhard", "wescoff", "williams", "wilson", "wing", "wozniak", "wright",
    "yalow", "yonath",
)  # fmt: skip


def random_run_name(rng: Random) -> str:
    """An ``adjective_scientist`` run name, like Nextflow's ``NameGenerator.next()``."""
    return f"{rng.choice(_ADJECTIVES)}_{rng.choice(_SCIENTISTS)}"
