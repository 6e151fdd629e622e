"""The command line's building blocks, shared by every subcommand wherever it lives.

- the exit statuses, in one place, and the text ``--help`` shows for them;
- ``Parser``: an ``argparse.ArgumentParser`` whose usage errors are one line (argparse's
  own prints the whole usage block, several lines, before the error);
- validated argument types: finite numbers in a range, ports, endpoint URLs, paths;
- the neutralisers for what reaches a terminal or a spreadsheet: control characters
  (ANSI escape sequences in task names or Batch statusReasons) and formula prefixes;
- ``redact_url``/``scrub_userinfo``: a password in a URL never reaches a message.

Pure: no I/O beyond ``os.stat``-style checks of the paths the arguments name.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NoReturn, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from batchkit.errors import BatchkitError, InputError

# --- exit statuses ---------------------------------------------------------------------------

EXIT_OK: Final = 0
#: A runtime failure: AWS refused or did not answer before --deadline, a file could not be
#: written (disk full, read-only or immutable file), the emulator could not listen.
EXIT_FAILURE: Final = 1
#: Bad usage: an argument argparse or its type refused, or an input file that cannot be read.
EXIT_USAGE: Final = 2
#: ``reconcile``: Nextflow and Batch disagree about at least one task.
EXIT_MISMATCH: Final = 3
#: ``doctor``: at least one finding of severity "error".
EXIT_ERROR_FINDING: Final = 4
#: ``kill``: some kills are still pending in the ledger (run the same kill again to finish them).
EXIT_KILLS_PENDING: Final = 5
#: Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final = 130

EXIT_STATUS_HELP: Final = """\
exit status:
  0    done (reconcile: Nextflow and Batch agree; doctor: no error finding)
  1    runtime failure: AWS refused or did not answer before --deadline, a file could
       not be written (disk full, read-only), the emulator could not listen
  2    usage: a bad argument, or an input file (trace, log, ledger, state) that cannot be read
  3    reconcile: Nextflow and Batch disagree about at least one task
  4    doctor: at least one error finding
  5    kill: kills still pending in the ledger; run the same kill again to finish them
  130  interrupted (Ctrl-C)
Every failure is one line on stderr, "batchkit: error: ...".
"""


class UsageError(BatchkitError):
    """An argument the parser refused; ``prog`` names the (sub)command it belongs to."""

    def __init__(self, message: str, *, prog: str = "batchkit") -> None:
        self.prog = prog
        super().__init__(message)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise ``UsageError`` (one line) instead of printing
    the usage block and exiting; ``--help`` still prints and exits 0."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)", prog=self.prog)


#: The parsed arguments' attribute holding when the command started (``time.monotonic()``),
#: set by ``cli.main`` from the clock the process entry point (``batchkit.__main__``) took
#: before importing the CLI: ``--deadline`` counts from there, the imports included.
COMMAND_STARTED: Final = "command_started"


def deadline_left(args: argparse.Namespace) -> float:
    """Seconds of ``--deadline`` left now: the deadline is the whole command's, counted from
    its start (``COMMAND_STARTED``; without it, from now)."""
    started = getattr(args, COMMAND_STARTED, None)
    used = 0.0 if started is None else time.monotonic() - float(started)
    return max(0.0, float(args.deadline) - used)


#: The object ``add_subparsers()`` returns; subcommands register themselves on it.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # no public name
Handler = Callable[[argparse.Namespace], int]


# --- argument types ----------------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def number(
    low: float, high: float, *, above: bool = False, unit: str = ""
) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``above``: strictly more than ``low``)."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        value = _number(text)
        if (value <= low if above else value < low) or value > high:
            lower = f"more than {low:g}" if above else f"{low:g} or more"
            raise argparse.ArgumentTypeError(
                f"{text} must be {lower} and at most {high:g}{suffix}"
            )
        return value

    parse.__name__ = "number"
    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number in ``[low, high]``."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} must be between {low} and {high}")
        return value

    parse.__name__ = "whole number"
    return parse


def port(text: str) -> int:
    """A TCP port, 1-65535, or 0 for "any free port"."""
    value = _whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port: give 1-65535 (0: any free port)")
    return value


_CONTROL: Final = re.compile(
    # C0 and C1 controls and DEL (ANSI escapes start with ESC or CSI), the zero-width and
    # bidirectional formatting characters that reorder what a terminal shows ("Trojan
    # Source", CVE-2021-42574), line/paragraph separators, and lone surrogates (bytes
    # that were not UTF-8 on the command line).
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)


def path(text: str) -> Path:
    """A file system path; an empty one or one with a NUL byte (which no OS call takes)
    is refused here rather than as a ValueError deep inside."""
    if not text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"{printable(text)!r} is not a path")
    return Path(text)


def file_path(text: str) -> Path:
    """A path to a file (it may not exist yet); an existing directory is refused."""
    target = path(text)
    if target.is_dir():
        raise argparse.ArgumentTypeError(f"{printable(text)} is a directory, not a file")
    return target


def writable_file(text: str) -> Path:
    """A file batchkit will write (now or on exit): not a directory, in a directory that
    exists and this user can write, so a long session does not end in a failed save."""
    target = file_path(text)
    folder = target.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{printable(text)}: no such directory {printable(str(folder))}")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{printable(text)} is not writable; pick a path you can write")
    return target


def writable_dir(text: str) -> Path:
    """A directory batchkit may write into: existing and writable, or creatable under the
    nearest existing ancestor. A file, or a directory this user cannot write, is refused."""
    target = path(text)
    probe = target
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    shown = printable(text)
    if probe == target and not target.is_dir():
        raise argparse.ArgumentTypeError(f"{shown} is a file, not a directory")
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{shown}: {printable(str(probe))} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"{shown}: {printable(str(probe))} is not writable; pick a directory you can write"
        )
    return target


def endpoint_url(text: str) -> str:
    """An AWS endpoint: an http(s) URL with a host and a valid port, returned without its
    userinfo. AWS endpoints authenticate by SigV4 and botocore sends nothing from the
    URL's ``user:password@``, but it quotes the URL in its errors; dropping it here keeps
    a password out of every message of every command."""
    return redact_url(http_url(text))


def http_url(text: str) -> str:
    """An http(s) URL with a host and a valid port (userinfo kept: a weblog receiver may
    use it); the error never shows the userinfo."""
    shown = printable(redact_url(text))
    try:
        parts = urlsplit(text)
        port_number = parts.port  # raises ValueError for a port outside 0-65535
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not a URL with a valid port (1-65535): give e.g. http://127.0.0.1:4566"
        ) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname or _CONTROL.search(text) or " " in text:
        raise argparse.ArgumentTypeError(f"{shown!r} is not a URL: give e.g. http://127.0.0.1:4566")
    if port_number == 0:
        raise argparse.ArgumentTypeError(f"{shown!r}: port 0 is not a port to connect to (give 1-65535)")
    return text


def time_zone(text: str) -> str:
    """An IANA time zone name (``Europe/Paris``, ``UTC``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        # ValueError: a path-like key ("../x") or a NUL; OSError: a name too long for a file.
        raise argparse.ArgumentTypeError(
            f"{printable(text)!r} is not a time zone name (e.g. UTC, Europe/Paris)"
        ) from None
    return text


def region(text: str) -> str:
    """An AWS region name as botocore accepts it (a host label, e.g. ``eu-west-1``)."""
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    try:
        validate_region_name(text)
    except InvalidRegionError:
        raise argparse.ArgumentTypeError(
            f"{printable(text)!r} is not an AWS region name (e.g. eu-west-1)"
        ) from None
    return text


def choice_of(known: tuple[str, ...], what: str) -> Callable[[str], str]:
    """One of ``known`` (argparse's ``choices`` lists them in the usage line; this names them
    in the error too)."""

    def parse(text: str) -> str:
        if text not in known:
            raise argparse.ArgumentTypeError(
                f"{printable(text)!r} is not a {what}: use one of {', '.join(known)}"
            )
        return text

    parse.__name__ = what
    return parse


def read_json_object(file: Path, flag: str, *, max_bytes: int = 1 << 30) -> dict[str, Any]:
    """The JSON object in a regular file (``flag`` names the option in errors)."""
    try:
        if not file.is_file():
            raise InputError(f"{flag}: not a regular file", path=printable(str(file)))
        if file.stat().st_size > max_bytes:
            raise InputError(f"{flag}: larger than {max_bytes >> 20} MB", path=printable(str(file)))
        data = json.loads(file.read_bytes())
    except OSError as exc:
        raise InputError(f"{flag}: cannot read it ({exc.strerror})", path=printable(str(file))) from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{flag}: not JSON ({printable(str(exc))})", path=printable(str(file))) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{flag}: a JSON {type(data).__name__}, not an object; give a describe-jobs answer "
            '({"jobs": [...]}) or a state saved with --save',
            path=printable(str(file)),
        )
    return data


# --- what reaches a terminal, a message or a spreadsheet -------------------------------------------


def printable(text: str) -> str:
    """``text`` with every control or formatting character shown as an escape (``\\x1b``),
    so a task name or statusReason cannot move the cursor, recolour or hide text."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a cell starting with ``= + - @`` (or tab/CR)
    gets a leading ``'`` unless it is a plain number, as OWASP's "CSV injection" advice
    says; control characters are shown as escapes."""
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            text = "'" + text
    return printable(text)


def redact_url(url: str) -> str:
    """``url`` without its userinfo (``user:password@``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_userinfo(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


_USERINFO: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s\"'<>]*@")


def scrub_userinfo(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the userinfo removed."""
    return _USERINFO.sub(r"\1", text)


def message(text: str) -> str:
    """A message fit for one line of stderr: no userinfo, no control characters."""
    return printable(scrub_userinfo(" ".join(text.split("\n"))))
