"""Random argument lists against the whole CLI tree: never a traceback, always a
documented exit status, and a failure is one ``batchkit...: error:`` line.

Two drives: the parser alone over every (sub)command, and ``main`` itself for the
commands that read a run and ask AWS, with AWS made impossible (every endpoint a closed
loopback port, every deadline tiny), so each example returns in well under a second.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit import cli
from batchkit._cli_args import UsageError

DOCUMENTED = {
    cli.EXIT_OK,
    cli.EXIT_FAILURE,
    cli.EXIT_USAGE,
    cli.EXIT_MISMATCH,
    cli.EXIT_ERROR_FINDING,
    cli.EXIT_KILLS_PENDING,
    cli.EXIT_INTERRUPTED,
}


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], dict[str, argparse.Action]]:
    """Every command path of the tree with its options (option string -> its action)."""
    found: dict[tuple[str, ...], dict[str, argparse.Action]] = {}
    found[path] = {
        s: a for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")
    }
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(_subcommands(child, (*path, name)))
    return found


def _plausible(action: argparse.Action, files: list[str]) -> list[str]:
    """Values this option would accept (or nearly): so many examples get past the parser."""
    from batchkit.schema import VERDICTS

    if action.choices:
        return [str(c) for c in action.choices]
    kind = getattr(action.type, "__name__", "")
    if kind in ("number", "whole number"):
        return ["0", "1", "2", "0.5", "10", "86400"]
    if kind == "time_zone":
        return ["UTC", "Europe/Paris", "America/New_York"]
    if kind in ("path", "writable_dir"):
        return files
    if kind in ("endpoint_url", "http_url"):
        return ["http://127.0.0.1:9", "http://u:secret@127.0.0.1:9"]
    if kind in ("verdict",):
        return list(VERDICTS)
    return ["q", "demo-queue", "eu-west-1", "us-east-1", "default", "job-1", "A (1)", *files]


TREE = _subcommands(cli.build_parser())
PATHS = sorted(TREE)

# Values that have broken CLIs before: non-finite and huge numbers, out-of-range ports,
# NUL bytes, escapes, lone surrogates (non-UTF-8 argv), path tricks, URL shapes.
NASTY = [
    "inf", "-inf", "nan", "NaN", "1e309", "-0", "0", "-1", "-5", "99999", "65536", "1e9",
    "9" * 40, "0x10", "", " ", "-", "--", "\x00", "a\x00b", "\x1b[31mred", "\udcff",
    "../../etc/passwd", "/dev/zero", "/", ".", "x" * 5000, "http://127.0.0.1:99999",
    "http://u:p@127.0.0.1:0", "ftp://x", "http://", "http://[::1", "notaurl", "orphan",
    "bogus", "UTC", "Mars/Olympus", "table", "csv", "json", "xml", "text", "html", "q",
    "1", "0.5", "2", "eu-west-1", "no such region!", "default",
]  # fmt: skip


def argv_for(path: tuple[str, ...], files: list[str]) -> st.SearchStrategy[list[str]]:
    """``path`` then option/value pairs of that command, each value plausible or nasty,
    and now and then a stray token: many lists get past the parser, many do not."""
    options = TREE[path]
    nasty = st.one_of(
        st.sampled_from(NASTY + files),
        st.text(max_size=12),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
    )

    def pair(option: str, clean: bool) -> st.SearchStrategy[tuple[str, ...]]:
        action = options[option]
        if action.nargs == 0:
            return st.just((option,))
        plausible = st.sampled_from(_plausible(action, files))
        return st.tuples(st.just(option), plausible if clean else st.one_of(plausible, nasty))

    def items(clean: bool) -> st.SearchStrategy[list[tuple[str, ...]]]:
        if not options:
            return st.lists(nasty.map(lambda v: (v,)), max_size=3)
        pairs = st.sampled_from(sorted(options)).flatmap(lambda o: pair(o, clean))
        if clean:  # every value one the option takes: the command itself runs
            return st.lists(pairs, max_size=6)
        return st.lists(st.one_of(pairs, pairs, pairs, nasty.map(lambda v: (v,))), max_size=6)

    chunks = st.booleans().flatmap(items)
    return chunks.map(lambda cs: [*path, *(t for chunk in cs for t in chunk)])


@st.composite
def any_argv(draw: st.DrawFn) -> list[str]:
    path = draw(st.sampled_from(PATHS))
    return draw(argv_for(path, ["trace.txt", "no/such/dir", "."]))


@given(argv=any_argv())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_parser_answers_every_argument_list(argv: list[str]) -> None:
    """Parse only (no command runs): a namespace, --help, or one UsageError line."""
    try:
        parsed = cli._parse(argv)
    except UsageError as exc:
        assert "\n" not in cli.cli_args.message(str(exc))
        return
    assert parsed is None or callable(parsed.run)


# --- main, with AWS impossible ---------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A launch dir with a real-shaped log and trace (written by the simulated Nextflow
    against a LocalBatch that is stopped before any example runs), and junk files."""
    from batchkit.sim import LocalBatch
    from batchkit.sim.nextflow import Pipeline, SimulatedNextflow

    root = tmp_path_factory.mktemp("hyp")
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("q", vcpus=8)
        truth = SimulatedNextflow(
            lb.client(retries={"total_max_attempts": 1}),
            launch_dir=root / "launch",
            queue="q",
            pipeline=Pipeline(n_tasks=4),
            behavior="crash",
            batch=lb,
            poll_interval=60.0,
        ).run()
    junk = root / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    yield {
        "launch": root / "launch",
        "trace": Path(truth.trace_file),
        "log": root / "launch" / ".nextflow.log",
        "junk": junk,
        "missing": root / "missing",
        "scratch": root / "scratch",
    }


@given(data=st.data())
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_main_answers_every_argument_list_with_a_documented_status(
    data: st.DataObject, runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = data.draw(st.sampled_from([("reconcile",), ("kill",), ("doctor",), ("inspect",), ("sim", "run")]))
    files = [str(p) for p in runs.values()]
    argv = data.draw(argv_for(path, files))
    if data.draw(st.booleans()):  # often a real run, so the command itself runs
        positional = [str(runs["launch"])]
        if path == ("inspect",):
            positional.append(data.draw(st.sampled_from(["FASTQC (1)", "job-1", "1", "ab/cdef12"])))
        argv[len(path) : len(path)] = positional
    # AWS is impossible: a closed loopback port and a tiny deadline, given last so they win.
    closed = f"http://127.0.0.1:{_closed_port()}"
    tail = ["--endpoint-url", closed, "--deadline", "0.05"]
    if path == ("inspect",):
        tail += ["--logs-endpoint-url", closed, "--s3-endpoint-url", closed]
    if path == ("sim", "run"):
        # Its files go to a scratch dir, never the working dir; 24.02 gives up on the
        # first failed call (others wait out their tasks' durations in wall-clock time
        # when no emulator answers).
        tail = ["--endpoint-url", closed, "-launch-dir", str(runs["scratch"]), "-behavior", "24.02"]
    code = cli.main([*argv, *tail])
    _, err = capsys.readouterr()
    check_answer(argv, code, err, simulated_nextflow=path == ("sim", "run"))


def check_answer(argv: list[str], code: int, err: str, *, simulated_nextflow: bool = False) -> None:
    """A documented status, no traceback, every stderr line batchkit's, one error line
    for a failure (the simulated Nextflow reports an aborted run on stdout, as Nextflow
    does, and exits 137 when it plays a crash)."""
    assert code in DOCUMENTED or (simulated_nextflow and code == 137), (argv, code, err)
    assert "Traceback" not in err and "bug in batchkit" not in err, (argv, err)
    lines = err.splitlines()
    # batchkit's own lines, and the kill's progress line (stderr, so stdout stays data)
    assert all(line.startswith(("batchkit", "killing [")) for line in lines), (argv, err)
    errors = [line for line in lines if ": error: " in line]
    if code == cli.EXIT_USAGE or (code == cli.EXIT_FAILURE and not simulated_nextflow):
        assert len(errors) == 1, (argv, err)
    elif code != cli.EXIT_FAILURE:
        assert errors == [], (argv, err)


@given(data=st.data())
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_demo_headless_answers_random_arguments(
    data: st.DataObject, runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``demo --headless`` runs its replay on the embedded emulator (no AWS at all): small
    task counts and random seeds and launch dirs, plausible or not."""
    argv = ["demo", "--headless"]
    argv += ["--tasks", data.draw(st.sampled_from(["3", "4", "7", "0", "2", "-1", "1e3", "nan"]))]
    argv += ["--seed", data.draw(st.sampled_from(["0", "1", "2", "99999999999", "-3", "x"]))]
    if data.draw(st.booleans()):
        target = data.draw(
            st.sampled_from([runs["junk"], runs["scratch"] / "demo", runs["junk"] / "under", Path("")])
        )
        argv += ["--launch-dir", str(target)]
    code = cli.main(argv)
    _, err = capsys.readouterr()
    check_answer(argv, code, err)
