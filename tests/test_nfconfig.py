"""The nextflow.config reader: both syntaxes, comments, strings, includes, profiles, and
"could not determine" instead of a guess."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from batchkit._nfconfig import Unknown, config_candidates, parse_config, read_config


def settings(text: str) -> dict[str, object]:
    return {s.key: s.value for s in parse_config(text, "n.config").settings}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_block_and_dotted_syntax_give_the_same_key() -> None:
    block = settings("aws {\n  batch {\n    maxSpotAttempts = 0\n  }\n}\n")
    dotted = settings("aws.batch.maxSpotAttempts = 0\n")
    mixed = settings("aws.batch { maxSpotAttempts = 0 }\n")
    inner = settings("aws { batch.maxSpotAttempts = 0 }\n")
    assert block == dotted == mixed == inner == {"aws.batch.maxSpotAttempts": 0}


def test_line_numbers_point_at_the_assignment() -> None:
    parsed = parse_config("// header\n\naws {\n  batch {\n    maxSpotAttempts = 3\n  }\n}\n", "/x/nextflow.config")
    (s,) = parsed.settings
    assert (s.key, s.value, s.line, s.evidence) == ("aws.batch.maxSpotAttempts", 3, 5, "/x/nextflow.config:5")


def test_comments_and_strings_do_not_confuse_the_reader() -> None:
    text = (
        "workDir = 's3://bucket/work' // an s3 URL holds a // that is not a comment\n"
        "/* aws.batch.maxSpotAttempts = 9\n   still a comment */\n"
        'process.queue = "my-queue" ; aws.region = \'"quoted"\'\n'
        "process.ext.args = '''multi\nline'''\n"
        "trace.file = \"trace-\\${x}.txt\"\n"  # an escaped dollar is not interpolation
    )
    got = settings(text)
    assert got == {
        "workDir": "s3://bucket/work",
        "process.queue": "my-queue",
        "aws.region": '"quoted"',
        "process.ext.args": "multi\nline",
        "trace.file": "trace-${x}.txt",
    }


def test_literal_values() -> None:
    got = settings(
        "a.int = 5\na.neg = -1\na.float = 2.5\na.t = true\na.f = false\na.n = null\n"
        "a.mem = 4.GB\na.list = ['/tmp', 2]\na.map = [run: 'x', 'owner': \"me\"]\na.empty = [:]\n"
    )
    assert got == {
        "a.int": 5, "a.neg": -1, "a.float": 2.5, "a.t": True, "a.f": False, "a.n": None,
        "a.mem": "4.GB", "a.list": ["/tmp", 2], "a.map": {"run": "x", "owner": "me"}, "a.empty": {},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "reason_part"),
    [
        ("params.spot", "params"),
        ('"${params.queue}"', "interpolation"),
        ("{ task.attempt * 2 }", "closure"),
        ("System.getenv('X') as int", "environment"),
        ("3 + 4", "Groovy"),
    ],
)
def test_expressions_are_unknown_never_guessed(expr: str, reason_part: str) -> None:
    value = settings(f"aws.batch.maxSpotAttempts = {expr}\n")["aws.batch.maxSpotAttempts"]
    assert isinstance(value, Unknown)
    assert reason_part in value.reason
    assert value.text == expr


def test_selectors_and_executor_scopes_keep_their_path() -> None:
    got = settings(
        "process {\n  withLabel: big { cpus = 16 }\n  withName: 'FOO|BAR' { resourceLabels = [a: 'b'] }\n}\n"
        "executor { $awsbatch { submitRateLimit = '10/1s' } }\n"
    )
    assert got == {
        "process.withLabel:big.cpus": 16,
        "process.withName:FOO|BAR.resourceLabels": {"a": "b"},
        "executor.$awsbatch.submitRateLimit": "10/1s",
    }


def test_plugins_and_harmless_groovy_are_read() -> None:
    parsed = parse_config(
        "plugins {\n  id 'nf-weblog@1.1.0'\n  id \"nf-amazon\"\n}\n"
        "def check_max(obj, type) {\n  if (type == 'memory') { return obj }\n}\n"
        "System.setProperty('a', 'b')\n",
        "n.config",
    )
    assert [p.value for p in parsed.plugins] == ["nf-weblog@1.1.0", "nf-amazon"]
    assert parsed.opaque == [] and parsed.settings == []


def test_if_blocks_make_their_settings_unknown() -> None:
    got = settings("if (params.fast) { aws.batch.maxSpotAttempts = 0 } else { aws.batch.maxSpotAttempts = 5 }\n")
    value = got["aws.batch.maxSpotAttempts"]
    assert isinstance(value, Unknown) and "if block" in value.reason


def test_unknown_syntax_is_opaque_with_its_line() -> None:
    parsed = parse_config("aws.region = 'x'\nsomething weird here\n", "n.config")
    (o,) = parsed.opaque
    assert (o.line, o.text) == (2, "something weird here")


def test_unclosed_string_makes_the_file_opaque_not_an_exception() -> None:
    parsed = parse_config("aws.region = 'x\n", "n.config")
    assert parsed.settings == []
    assert parsed.opaque[0].line == 1 and "never closed" in parsed.opaque[0].reason


def test_include_is_read_relative_to_the_including_file(tmp_path: Path) -> None:
    main = write(tmp_path / "nextflow.config", "aws { includeConfig 'conf/aws.config' }\n")
    write(tmp_path / "conf" / "aws.config", "batch.maxSpotAttempts = 2\n")
    cfg = read_config([main])
    look = cfg.lookup("aws.batch.maxSpotAttempts")
    assert look.state == "set" and look.value == 2
    assert look.evidence == f"{tmp_path / 'conf' / 'aws.config'}:1"
    assert cfg.includes[0].resolved == str(tmp_path / "conf" / "aws.config")


def test_missing_include_makes_later_and_unset_keys_unknown(tmp_path: Path) -> None:
    main = write(
        tmp_path / "nextflow.config",
        "aws.batch.maxSpotAttempts = 0\nincludeConfig 'missing.config'\n",
    )
    cfg = read_config([main])
    look = cfg.lookup("aws.batch.maxSpotAttempts")
    assert look.state == "unknown" and "not found" in look.reason
    assert look.evidence == f"{main}:2"
    assert cfg.lookup("executor.submitRateLimit").state == "unknown"


def test_setting_after_a_missing_include_wins(tmp_path: Path) -> None:
    main = write(tmp_path / "nextflow.config", "includeConfig 'missing.config'\naws.batch.maxSpotAttempts = 0\n")
    look = read_config([main]).lookup("aws.batch.maxSpotAttempts")
    assert look.state == "set" and look.value == 0


def test_later_file_wins_and_missing_optional_files_are_quiet(tmp_path: Path) -> None:
    home = tmp_path / "home" / "config"  # absent
    a = write(tmp_path / "a.config", "aws.batch.maxSpotAttempts = 5\nexecutor.submitRateLimit = '5 sec'\n")
    b = write(tmp_path / "b.config", "aws { batch { maxSpotAttempts = 0 } }\n")
    cfg = read_config([home, a, b], optional=[home])
    assert cfg.files == (str(a), str(b))
    assert cfg.lookup("aws.batch.maxSpotAttempts").value == 0
    assert cfg.lookup("aws.batch.maxSpotAttempts").setting.path == str(b)  # type: ignore[union-attr]
    assert cfg.lookup("executor.submitRateLimit").value == "5 sec"
    assert cfg.lookup("trace.enabled").state == "unset"
    assert cfg.opaque == []


def test_required_file_that_is_missing_is_opaque(tmp_path: Path) -> None:
    cfg = read_config([tmp_path / "params.config"])
    assert cfg.lookup("trace.enabled").state == "unknown"
    assert cfg.opaque[0].evidence == str(tmp_path / "params.config")


def test_profiles_apply_when_known_and_are_unknown_otherwise(tmp_path: Path) -> None:
    main = write(
        tmp_path / "nextflow.config",
        "aws.batch.maxSpotAttempts = 0\nprofiles {\n  spot { aws.batch.maxSpotAttempts = 3 }\n  test { trace.enabled = true }\n}\n",
    )
    assert read_config([main], profiles=["spot"]).lookup("aws.batch.maxSpotAttempts").value == 3
    assert read_config([main], profiles=["standard"]).lookup("aws.batch.maxSpotAttempts").value == 0
    unknown = read_config([main], profiles=None).lookup("aws.batch.maxSpotAttempts")
    assert unknown.state == "unknown" and "profile 'spot'" in unknown.reason
    assert unknown.evidence == f"{main}:3"


def test_missing_include_inside_an_unused_profile_is_ignored(tmp_path: Path) -> None:
    main = write(tmp_path / "nextflow.config", "profiles { test { includeConfig 'conf/test.config' } }\n")
    assert read_config([main], profiles=["standard"]).lookup("trace.enabled").state == "unset"
    assert read_config([main], profiles=["test"]).lookup("trace.enabled").state == "unknown"


def test_cli_flags_and_candidates(tmp_path: Path) -> None:
    cfg = read_config([], cli_args=("nextflow", "run", "main.nf", "-with-weblog", "http://x", "-with-trace"))
    assert cfg.cli_flag("-with-weblog") == ("-with-weblog", "http://x")
    assert cfg.cli_flag("-with-trace") == ("-with-trace", None)
    assert cfg.cli_flag("-with-report") is None
    assert config_candidates(tmp_path, env={"NXF_HOME": "/nxf"}) == [Path("/nxf/config"), tmp_path / "nextflow.config"]
    assert config_candidates(tmp_path, env={"HOME": "/h"}) == [Path("/h/.nextflow/config"), tmp_path / "nextflow.config"]


def test_nf_core_style_config(tmp_path: Path) -> None:
    """The shapes nf-core pipelines use: params, try/catch includes, profiles with includes."""
    main = write(
        tmp_path / "nextflow.config",
        """
params {
    outdir = null
    custom_config_base = "https://raw.githubusercontent.com/nf-core/configs/master"
}
includeConfig 'conf/base.config'
try {
    includeConfig "${params.custom_config_base}/nfcore_custom.config"
} catch (Exception e) {
    System.err.println("WARNING: Could not load nf-core/config profiles: ${params.custom_config_base}/nfcore_custom.config")
}
profiles {
    debug { process.beforeScript = 'echo $HOSTNAME' }
    test  { includeConfig 'conf/test.config' }
}
def trace_timestamp = new java.util.Date().format( 'yyyy-MM-dd_HH-mm-ss')
trace {
    enabled = true
    file    = "${params.outdir}/pipeline_info/execution_trace_${trace_timestamp}.txt"
}
""",
    )
    write(tmp_path / "conf" / "base.config", "process {\n  cpus = { 1 * task.attempt }\n  withLabel:process_high { cpus = 12 }\n}\n")
    write(tmp_path / "conf" / "test.config", "params.input = 'x'\n")
    cfg = read_config([main], profiles=["test"])
    assert cfg.lookup("params.outdir").value is None
    trace = cfg.lookup("trace.enabled")
    # the remote nf-core include (an interpolated path) could override anything after it
    assert trace.state == "set" and trace.value is True
    assert cfg.lookup("aws.batch.maxSpotAttempts").state == "unknown"
    reasons = [o.reason for o in cfg.opaque]
    assert reasons == ["an includeConfig whose path is an expression"]
    assert cfg.lookup("process.withLabel:process_high.cpus").value == 12
    assert cfg.lookup("params.input").value == "x"


def test_quoted_segments_in_dotted_keys() -> None:
    assert settings("process.'withName:FOO'.cpus = 2\n") == {"process.withName:FOO.cpus": 2}


def test_non_ascii_text_is_read_or_opaque() -> None:
    parsed = parse_config("params.title = 'Ünïcode ²'\nrésumé = 1\n", "n.config")
    assert parsed.settings[0].value == "Ünïcode ²"
    assert parsed.opaque and parsed.opaque[0].line == 2


_FUZZ_ALPHABET = [
    *"aws.batch{}[]()='\"$:;/*\\\n\t 0123456789-_²éxü#!",
    "includeConfig ", "profiles ", "plugins ", "withName:", "if ", "else ", "try ", "catch ", "def ", "'" * 3,
]


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FUZZ_ALPHABET), max_size=120).map("".join))
def test_the_reader_never_raises(text: str) -> None:
    """Any text: settings with a key and a line, or opaque entries; never an exception."""
    parsed = parse_config(text, "fuzz.config")
    assert all(s.key and s.line >= 1 for s in parsed.settings)
    assert all(o.line >= 0 for o in parsed.opaque)
