"""Reading ``nextflow.config`` files without running Groovy.

Nextflow's config is a Groovy script (``ConfigSlurper``); we do not run it. This
reader understands the subset that settings are written in — both syntaxes
(``aws { batch { maxSpotAttempts = 0 } }`` and ``aws.batch.maxSpotAttempts = 0``),
comments, the four string forms, numbers, booleans, lists and maps, memory units
(``4.GB``), process selectors (``withLabel:``/``withName:``), executor scopes
(``$awsbatch { ... }``), ``profiles``, ``plugins { id '...' }`` and
``includeConfig`` — and says so whenever something cannot be read for sure: an
expression (``params.x``, ``System.getenv()``, a closure, an interpolated string)
becomes an :class:`Unknown` value, and anything that could set *any* setting (an
include we cannot find, a statement we do not understand) is kept as an
:class:`Opaque` entry, so a caller never mistakes "not readable" for "not set".

Precedence (Nextflow's ConfigBuilder): ``$NXF_HOME/config`` (``~/.nextflow/config``),
the project's ``nextflow.config``, the launch dir's ``nextflow.config``, then each
``-c`` file in order; a later file wins. Selected profiles apply on top of the file
that declares them.

Parsing is pure (text in, records out); :func:`read_config` is the only function
that opens files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Include",
    "Lookup",
    "NfConfig",
    "Opaque",
    "ParsedConfig",
    "Setting",
    "Unknown",
    "aws_region",
    "config_candidates",
    "parse_config",
    "process_executors",
    "process_queues",
    "read_config",
    "run_config",
    "trace_file",
]


# --- records -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unknown:
    """A value we cannot know without running Groovy (or without knowing params/env)."""

    text: str  # the expression as written
    reason: str  # e.g. "refers to params, which the command line can override"


@dataclass(frozen=True, slots=True)
class Setting:
    """One assignment: ``key`` is dotted, selectors kept (``process.withName:FOO.cpus``)."""

    key: str
    value: Any  # str | int | float | bool | None | list | dict | Unknown
    path: str
    line: int
    profile: str | None = None
    seq: int = 0  # precedence order across all files read: higher wins

    @property
    def evidence(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def known(self) -> bool:
        return not isinstance(self.value, Unknown)


@dataclass(frozen=True, slots=True)
class Opaque:
    """Something that may set any setting but cannot be read: a missing include, odd syntax."""

    path: str
    line: int
    text: str
    reason: str
    seq: int = 0
    profile: str | None = None  # inside this profile's block

    @property
    def evidence(self) -> str:
        return f"{self.path}:{self.line}" if self.line > 0 else self.path


@dataclass(frozen=True, slots=True)
class Include:
    """An ``includeConfig`` statement and where it led."""

    path: str
    line: int
    target: str  # as written
    resolved: str | None  # the file read, None when it was not found / not a literal


@dataclass(slots=True)
class ParsedConfig:
    """What one file (with the files it includes) says, in source order."""

    path: str
    #: settings and opaque entries interleaved in the order the parser met them
    items: list[Setting | Opaque] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    plugins: list[Setting] = field(default_factory=list)  # key "plugins.id", value the spec

    @property
    def settings(self) -> list[Setting]:
        return [it for it in self.items if isinstance(it, Setting)]

    @property
    def opaque(self) -> list[Opaque]:
        return [it for it in self.items if isinstance(it, Opaque)]


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer to "what is ``key``?": ``set`` (value known), ``unset`` or ``unknown``."""

    key: str
    state: Literal["set", "unset", "unknown"]
    setting: Setting | None = None
    reason: str = ""
    evidence: str = ""

    @property
    def value(self) -> Any:
        return None if self.setting is None else self.setting.value


@dataclass(slots=True)
class NfConfig:
    """Every config file of a run, merged by precedence; see :meth:`lookup`."""

    files: tuple[str, ...] = ()
    settings: list[Setting] = field(default_factory=list)  # base settings, ascending seq
    profile_settings: list[Setting] = field(default_factory=list)  # of profiles not known to be active
    opaque: list[Opaque] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    plugins: list[Setting] = field(default_factory=list)
    #: profiles applied (from the log's "Applying config profile"), None when unknown
    profiles: tuple[str, ...] | None = None
    #: the run's command line options (``-with-trace``, ``-with-weblog URL``, ...)
    cli_args: tuple[str, ...] = ()

    def lookup(self, key: str) -> Lookup:
        """Effective value of ``key``, or why it cannot be known for sure."""
        found = [s for s in self.settings if s.key == key]
        last = found[-1] if found else None
        after = last.seq if last is not None else -1
        # A later unreadable include/statement could override (or set) anything.
        for item in self.opaque:
            if item.seq > after:
                return Lookup(key, "unknown", last, f"{item.reason}: {item.text}" if item.text else item.reason, item.evidence)
        for s in self.profile_settings:
            if s.key == key and s.seq > after:
                return Lookup(
                    key,
                    "unknown",
                    last,
                    f"set in profile '{s.profile}', and which profiles the run used is not known",
                    s.evidence,
                )
        if last is None:
            return Lookup(key, "unset")
        if isinstance(last.value, Unknown):
            return Lookup(key, "unknown", last, f"{last.value.reason}: {last.value.text}", last.evidence)
        return Lookup(key, "set", last, evidence=last.evidence)

    def first_of(self, *keys: str) -> Lookup:
        """The first of ``keys`` that is not ``unset`` (e.g. ``executor.$awsbatch.x`` then ``executor.x``)."""
        result = Lookup(keys[0], "unset")
        for key in keys:
            result = self.lookup(key)
            if result.state != "unset":
                return result
        return result

    def any_key(self, pred: Callable[[str], bool]) -> list[Setting]:
        """Every setting (base and profiles) whose key matches ``pred``."""
        return [s for s in (*self.settings, *self.profile_settings) if pred(s.key)]

    def cli_flag(self, *names: str) -> tuple[str, str | None] | None:
        """``(flag, value)`` of the first command-line option in ``names``, if the run used one."""
        args = list(self.cli_args)
        for i, arg in enumerate(args):
            if arg in names:
                value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") else None
                return arg, value
        return None


# --- tokenizer ----------------------------------------------------------------------

_KIND = Literal["ident", "string", "number", "op", "nl"]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: _KIND
    text: str  # identifier / operator text, decoded string content, number text
    line: int
    start: int  # offsets in the source, for quoting the expression as written
    end: int
    interpolated: bool = False


_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*", re.ASCII)
_NUMBER = re.compile(r"\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?[lLgGdDfF]?", re.ASCII)
_OPS = ("==", "!=", "<=", ">=", "->", "?:", "?.", "*.", "&&", "||", "<<", ">>", "++", "--", "**")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "$": "$", "b": "\b", "f": "\f"}


class _ConfigSyntaxError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _string(text: str, i: int, line: int) -> tuple[_Tok, int]:
    """The string literal opening at ``text[i]`` ('...', "...", or tripled), escapes
    resolved, and the line after it; a double-quoted one with a ``$`` is interpolated."""
    c = text[i]
    triple = text.startswith(c * 3, i)
    quote = c * 3 if triple else c
    j, n = i + len(quote), len(text)
    buf: list[str] = []
    interpolated = False
    start_line = line
    while True:
        if j >= n:
            raise _ConfigSyntaxError("a string is never closed", start_line)
        if text.startswith(quote, j):
            break
        ch = text[j]
        if ch == "\\" and j + 1 < n:
            nxt = text[j + 1]
            if nxt == "\n":
                line += 1
            buf.append(_ESCAPES.get(nxt, nxt))
            j += 2
            continue
        if ch == "\n":
            if not triple:
                raise _ConfigSyntaxError("a string is never closed on its line", start_line)
            line += 1
        if ch == "$" and c == '"':
            interpolated = True
        buf.append(ch)
        j += 1
    return _Tok("string", "".join(buf), start_line, i, j + len(quote), interpolated), line


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, line, n = 0, 1, len(text)
    if text.startswith("#!"):
        i = text.find("\n") if "\n" in text else n
    while i < n:
        c = text[i]
        if c == "\n":
            toks.append(_Tok("nl", "\n", line, i, i + 1))
            line += 1
            i += 1
        elif c in " \t\r\f":
            i += 1
        elif c == "\\" and text.startswith("\n", i + 1):  # line continuation
            line += 1
            i += 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise _ConfigSyntaxError("a /* comment is never closed", line)
            line += text.count("\n", i, j)
            i = j + 2
        elif c in "'\"":
            tok, line = _string(text, i, line)
            toks.append(tok)
            i = tok.end
        elif m := _NUMBER.match(text, i):
            toks.append(_Tok("number", m.group(), line, i, m.end()))
            i = m.end()
        elif m := _IDENT.match(text, i):
            toks.append(_Tok("ident", m.group(), line, i, m.end()))
            i = m.end()
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), c)
            toks.append(_Tok("op", op, line, i, i + len(op)))
            i += len(op)
    return toks


# --- values -------------------------------------------------------------------------

_UNITS = {
    "B", "KB", "MB", "GB", "TB", "PB",
    "ms", "s", "sec", "second", "seconds", "m", "min", "minute", "minutes",
    "h", "hour", "hours", "d", "day", "days",
}  # fmt: skip


def _number(text: str) -> int | float:
    clean = text.replace("_", "").rstrip("lLgGdDfF")
    if re.fullmatch(r"\d+", clean):
        return int(clean)
    return float(clean)


class _ValueParser:
    """Literal values only; anything else raises ``ValueError`` (-> :class:`Unknown`)."""

    def __init__(self, toks: Sequence[_Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, off: int = 0) -> _Tok | None:
        j = self.i + off
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end")
        self.i += 1
        return tok

    def skip_nl(self) -> None:
        while (tok := self.peek()) is not None and tok.kind == "nl":
            self.i += 1

    def parse(self) -> Any:
        value = self.value()
        self.skip_nl()
        if self.peek() is not None:
            raise ValueError("an expression")
        return value

    def value(self) -> Any:
        self.skip_nl()
        tok = self.take()
        if tok.kind == "string":
            if tok.interpolated:
                raise ValueError("interpolated")
            return tok.text
        if tok.kind == "number":
            nxt, unit = self.peek(), self.peek(1)
            if nxt is not None and nxt.text == "." and unit is not None and unit.text in _UNITS:
                self.i += 2
                return f"{tok.text}.{unit.text}"
            return _number(tok.text)
        if tok.kind == "op" and tok.text == "-":
            num = self.take()
            if num.kind != "number":
                raise ValueError("an expression")
            return -_number(num.text)
        if tok.kind == "ident" and tok.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text]
        if tok.kind == "op" and tok.text == "[":
            return self.collection()
        raise ValueError("an expression")

    def collection(self) -> list[Any] | dict[str, Any]:
        items: list[Any] = []
        mapping: dict[str, Any] = {}
        self.skip_nl()
        nxt, after = self.peek(), self.peek(1)
        if nxt is not None and nxt.text == ":" and after is not None and after.text == "]":
            self.i += 2
            return {}
        while True:
            self.skip_nl()
            tok = self.peek()
            if tok is not None and tok.text == "]":
                self.i += 1
                return mapping if mapping else items
            colon = self.peek(1)
            if tok is not None and tok.kind in ("ident", "string") and colon is not None and colon.text == ":":
                if items or tok.interpolated:
                    raise ValueError("an expression")
                self.i += 2
                mapping[tok.text] = self.value()
            else:
                if mapping:
                    raise ValueError("an expression")
                items.append(self.value())
            self.skip_nl()
            sep = self.take()
            if sep.text == "]":
                return mapping if mapping else items
            if sep.text != ",":
                raise ValueError("an expression")


def _evaluate(toks: Sequence[_Tok], source: str) -> Any:
    text = source[toks[0].start : toks[-1].end] if toks else ""
    if not toks:
        return Unknown(text, "no value")
    if toks[0].text == "{":
        return Unknown(text, "a closure, evaluated for each task")
    try:
        return _ValueParser(toks).parse()
    except RecursionError:
        return Unknown(text, "nested too deeply to read")
    except ValueError as exc:
        idents = {t.text for t in toks if t.kind == "ident"}
        if "params" in idents:
            reason = "refers to params, which the command line or a params file can override"
        elif any(t.interpolated for t in toks):
            reason = "a string with ${...} interpolation"
        elif "System" in idents or "env" in idents:
            reason = "depends on the environment of the launch machine"
        else:
            reason = f"{exc} that only Groovy can evaluate" if str(exc) == "an expression" else str(exc)
        return Unknown(text, reason)


# --- statements ---------------------------------------------------------------------

Loader = Callable[[str, str], "tuple[str, str] | None"]  # (target, including file) -> (path, text)
_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclass(eq=False)
class _Parser:
    """Reads one config file's tokens into ``out``; ``depth`` counts the includeConfig
    levels above it."""

    toks: list[_Tok]
    source: str
    path: str
    out: ParsedConfig
    loader: Loader | None
    depth: int
    i: int = 0
    profile: str | None = None  # the profile block being read, if any

    # token helpers
    def peek(self, off: int = 0) -> _Tok | None:
        j = self.i + off
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text: str, off: int = 0) -> bool:
        tok = self.peek(off)
        return tok is not None and tok.kind in ("op", "ident") and tok.text == text

    def skip_nl(self) -> None:
        while (tok := self.peek()) is not None and (tok.kind == "nl" or tok.text == ";"):
            self.i += 1

    def balanced(self) -> list[_Tok]:
        """Tokens of one bracketed group starting at an opening bracket."""
        start = self.i
        stack: list[str] = []
        while (tok := self.peek()) is not None:
            self.i += 1
            if tok.kind == "op" and tok.text in _OPEN:
                stack.append(_OPEN[tok.text])
            elif tok.kind == "op" and stack and tok.text == stack[-1]:
                stack.pop()
                if not stack:
                    return self.toks[start : self.i]
        raise _ConfigSyntaxError("a bracket is never closed", self.toks[start].line)

    def statement_tokens(self) -> list[_Tok]:
        """Tokens up to the end of the statement (newline/``;`` outside brackets, or a closing ``}``)."""
        out: list[_Tok] = []
        while (tok := self.peek()) is not None:
            if tok.kind == "nl" or tok.text == ";" or (tok.kind == "op" and tok.text == "}"):
                break
            if tok.kind == "op" and tok.text in _OPEN:
                out.extend(self.balanced())
            else:
                out.append(tok)
                self.i += 1
        # a trailing binary operator continues the statement on the next line
        while out and out[-1].kind == "op" and out[-1].text in ("+", "?", ":", "?:", "&&", "||", ","):
            self.skip_nl()
            more = self.statement_tokens()
            if not more:
                break
            out.extend(more)
        return out

    def text_of(self, toks: Sequence[_Tok]) -> str:
        return self.source[toks[0].start : toks[-1].end] if toks else ""

    # records
    def opaque(self, toks: Sequence[_Tok], reason: str, line: int | None = None) -> None:
        text = " ".join(self.text_of(toks).split())[:120]
        at = line if line is not None else (toks[0].line if toks else 0)
        self.out.items.append(Opaque(self.path, at, text, reason, profile=self.profile))

    def assign(self, key: list[str], value: Any, line: int, profile: str | None) -> None:
        self.out.items.append(Setting(".".join(key), value, self.path, line, profile))

    # grammar
    def entries(self, block: str | None) -> Iterator[_Tok]:
        """The first token of each entry up to the closing '}' of ``block`` (consumed; a
        block never closed is a syntax error naming it) or, for None, to the end of the
        file, where a '}' is an unmatched one. The caller reads each entry."""
        while True:
            self.skip_nl()
            tok = self.peek()
            if tok is None:
                if block is not None:
                    raise _ConfigSyntaxError(f"{block} is never closed", self.toks[-1].line)
                return
            if tok.kind == "op" and tok.text == "}":
                self.i += 1
                if block is not None:
                    return
                self.opaque([tok], "an unmatched '}'")
                continue
            yield tok

    def block(self, prefix: list[str], profile: str | None, conditional: bool, closed: bool) -> None:
        for _ in self.entries("a { block" if closed else None):
            self.statement(prefix, profile, conditional)

    def statement(self, prefix: list[str], profile: str | None, conditional: bool) -> None:
        tok = self.peek()
        assert tok is not None
        line = tok.line
        if tok.kind == "ident" and tok.text == "includeConfig":
            self.i += 1
            self.include(self.statement_tokens(), line, prefix, profile, conditional)
            return
        if tok.kind == "ident" and tok.text == "def":
            # local variables and helper functions (old nf-core check_max): they set no setting
            self.statement_tokens()
            return
        if tok.kind == "ident" and tok.text == "if":
            self.conditional(prefix, profile)
            return
        if tok.kind == "ident" and tok.text == "try" and self.at("{", 1):
            self.try_catch(prefix, profile, conditional)
            return
        if tok.kind == "string" and self.at("{", 1):  # 'withName:FOO' { ... }
            self.i += 1
            self.sub_block([*prefix, tok.text], profile, conditional)
            return
        if tok.kind != "ident":
            self.opaque(self.statement_tokens() or [tok], "a statement this reader does not understand")
            self.i += 0 if self.peek() is None or self.peek() != tok else 1
            return
        name = self.dotted_name(tok)
        if self.at("="):
            self.i += 1
            value_toks = self.statement_tokens()
            value = _evaluate(value_toks, self.source)
            if conditional:
                value = Unknown(self.text_of(value_toks), "set inside an if block")
            self.assign([*prefix, *name], value, line, profile)
            return
        if self.at("{"):
            if not prefix and name == ["profiles"]:
                self.profiles(conditional)
            elif not prefix and name == ["plugins"]:
                self.plugins(conditional)
            else:
                self.sub_block([*prefix, *name], profile, conditional)
            return
        if self.at(":") and len(name) == 1 and name[0] in ("withLabel", "withName"):
            self.selector(name[0], prefix, profile, conditional)
            return
        if self.at("("):
            # a method call such as System.setProperty(...): sets no config setting
            self.statement_tokens()
            return
        rest = self.statement_tokens()
        self.opaque([tok, *rest], "a statement this reader does not understand", line)

    def dotted_name(self, first: _Tok) -> list[str]:
        """``a.b.c`` from its ``first`` segment (the current token), and quoted segments such
        as ``process.'withName:FOO'.cpus``."""
        name = [first.text]
        self.i += 1
        while (
            self.at(".")
            and (nxt := self.peek(1)) is not None
            and (nxt.kind == "ident" or (nxt.kind == "string" and not nxt.interpolated))
        ):
            name.append(nxt.text)
            self.i += 2
        return name

    def try_catch(self, prefix: list[str], profile: str | None, conditional: bool) -> None:
        """``try { ... } catch (...) { ... } finally { ... }``: the try block's settings are
        read; catch and finally blocks are skipped."""
        self.i += 1  # try
        self.sub_block(prefix, profile, conditional)
        self.skip_nl()
        while self.at("catch") or self.at("finally"):
            self.i += 1
            if self.at("("):
                self.balanced()
            if self.at("{"):
                self.balanced()
            self.skip_nl()

    def selector(self, kind: str, prefix: list[str], profile: str | None, conditional: bool) -> None:
        """``withLabel: big { ... }`` or ``withName: 'A|B' { ... }`` (``kind``, its ':' next):
        the block's settings under ``<kind>:<target>``."""
        self.i += 1  # :
        target: list[_Tok] = []
        while (t := self.peek()) is not None and not (t.kind == "op" and t.text in "{}") and t.kind != "nl":
            target.append(t)
            self.i += 1
        if not self.at("{"):
            self.opaque(target, "a process selector without a block")
            return
        label = target[0].text if len(target) == 1 else self.text_of(target)
        self.sub_block([*prefix, f"{kind}:{label}"], profile, conditional)

    def sub_block(self, prefix: list[str], profile: str | None, conditional: bool) -> None:
        assert self.at("{")
        self.i += 1
        self.block(prefix, profile, conditional, closed=True)

    def conditional(self, prefix: list[str], profile: str | None) -> None:
        self.i += 1  # if
        if self.at("("):
            self.balanced()
        self.skip_nl()
        if not self.at("{"):
            self.opaque(self.statement_tokens(), "an if statement without a block")
            return
        self.sub_block(prefix, profile, conditional=True)
        save = self.i
        self.skip_nl()
        if self.at("else"):
            self.i += 1
            if self.at("if"):
                self.conditional(prefix, profile)
            elif self.at("{"):
                self.sub_block(prefix, profile, conditional=True)
        else:
            self.i = save

    def profiles(self, conditional: bool) -> None:
        self.i += 1  # {
        for tok in self.entries("the profiles block"):
            if tok.kind in ("ident", "string") and self.at("{", 1):
                self.i += 1
                self.profile = tok.text
                self.sub_block([], tok.text, conditional)
                self.profile = None
                continue
            self.opaque(self.statement_tokens() or [tok], "a statement in profiles this reader does not understand")
            if self.peek() is tok:
                self.i += 1

    def plugins(self, conditional: bool) -> None:
        self.i += 1  # {
        for _ in self.entries("the plugins block"):
            toks = self.statement_tokens()
            if not toks:
                self.i += 1
                continue
            args = [t for t in toks[1:] if t.text not in ("(", ")")]
            if toks[0].text == "id" and len(args) == 1 and args[0].kind == "string" and not args[0].interpolated:
                value: Any = args[0].text
                if conditional:
                    value = Unknown(args[0].text, "declared inside an if block")
                self.out.plugins.append(Setting("plugins.id", value, self.path, toks[0].line))
            else:
                self.opaque(toks, "a plugins entry this reader does not understand")

    def include(
        self, toks: list[_Tok], line: int, prefix: list[str], profile: str | None, conditional: bool
    ) -> None:
        args = [t for t in toks if not (t.kind == "op" and t.text in "()")]
        text = self.text_of(toks)
        if len(args) != 1 or args[0].kind != "string" or args[0].interpolated:
            self.out.includes.append(Include(self.path, line, text, None))
            self.opaque(toks, "an includeConfig whose path is an expression", line)
            return
        target = args[0].text
        if conditional:
            self.out.includes.append(Include(self.path, line, target, None))
            self.opaque(toks, "an includeConfig inside an if block", line)
            return
        if "://" in target:
            self.out.includes.append(Include(self.path, line, target, None))
            self.opaque(toks, "a remote includeConfig, not fetched", line)
            return
        loaded = self.loader(target, self.path) if self.loader is not None and self.depth < 16 else None
        if loaded is None:
            self.out.includes.append(Include(self.path, line, target, None))
            self.opaque(toks, "an includeConfig whose file was not found", line)
            return
        inc_path, inc_text = loaded
        self.out.includes.append(Include(self.path, line, target, inc_path))
        try:
            inc_toks = _tokenize(inc_text)
            sub = _Parser(inc_toks, inc_text, inc_path, self.out, self.loader, self.depth + 1)
            sub.profile = profile
            sub.block(prefix, profile, conditional, closed=False)
        except _ConfigSyntaxError as exc:
            self.out.items.append(Opaque(inc_path, exc.line, target, f"cannot be read: {exc}", profile=profile))


def parse_config(text: str, path: str = "nextflow.config", loader: Loader | None = None) -> ParsedConfig:
    """Parse one config file's text. Pure unless ``loader`` reads included files.

    A syntax error this reader cannot get past makes the whole file one
    :class:`Opaque` entry (naming the line) rather than an exception: the doctor
    must keep going and say what it could not read.
    """
    out = ParsedConfig(path)
    try:
        toks = _tokenize(text)
        _Parser(toks, text, path, out, loader, 0).block([], None, False, closed=False)
    except _ConfigSyntaxError as exc:
        out.items.append(Opaque(path, exc.line, "", f"cannot be read past this line: {exc}"))
    return out


# --- files --------------------------------------------------------------------------


def config_candidates(launch_dir: str | Path, *, env: Mapping[str, str] | None = None) -> list[Path]:
    """The config files Nextflow reads without ``-c``: ``$NXF_HOME/config`` (or
    ``~/.nextflow/config``) then ``<launch dir>/nextflow.config``, lowest precedence first."""
    env = os.environ if env is None else env
    home = Path(env["NXF_HOME"]) if env.get("NXF_HOME") else Path(env.get("HOME", str(Path.home()))) / ".nextflow"
    return [home / "config", Path(launch_dir) / "nextflow.config"]


def _file_loader(target: str, including: str) -> tuple[str, str] | None:
    # Nextflow resolves an includeConfig path against the including file's folder.
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = Path(including).parent / path
    try:
        return str(path), path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_config(
    paths: Sequence[str | Path],
    *,
    optional: Collection[str | Path] = (),
    profiles: Sequence[str] | None = None,
    cli_args: Sequence[str] = (),
) -> NfConfig:
    """Read ``paths`` (lowest precedence first) and merge them.

    A path in ``optional`` that does not exist is skipped quietly (e.g. no
    ``~/.nextflow/config``); any other missing path becomes an :class:`Opaque`
    entry, because the run read it and we cannot. ``profiles``: the profiles the
    run applied (``None`` = unknown: settings inside profiles then make their keys
    ``unknown`` rather than guessed).
    """
    optional_set = {str(p) for p in optional}
    config = NfConfig(profiles=None if profiles is None else tuple(profiles), cli_args=tuple(cli_args))
    seq = 0
    read: list[str] = []

    def stamp(item: Any) -> Any:
        nonlocal seq
        seq += 1
        if isinstance(item, Setting):
            return Setting(item.key, item.value, item.path, item.line, item.profile, seq)
        return Opaque(item.path, item.line, item.text, item.reason, seq, item.profile)

    for raw in paths:
        path = Path(raw)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if str(raw) in optional_set:
                continue
            config.opaque.append(
                stamp(Opaque(str(path), 0, "", f"the run read this config file but it cannot be read here ({exc.strerror})"))
            )
            continue
        read.append(str(path))
        parsed = parse_config(text, str(path), _file_loader)
        prof: list[Setting] = []
        for item in parsed.items:
            if isinstance(item, Setting) and item.profile is not None:
                prof.append(item)
                continue
            if isinstance(item, Opaque) and item.profile is not None and (
                config.profiles is not None and item.profile not in config.profiles
            ):
                continue  # inside a profile the run did not use
            stamped = stamp(item)
            (config.settings if isinstance(stamped, Setting) else config.opaque).append(stamped)
        active = config.profiles
        for name in active or ():
            for s in prof:
                if s.profile == name:
                    config.settings.append(stamp(s))
        if active is None:
            config.profile_settings.extend(stamp(s) for s in prof)
        config.includes.extend(parsed.includes)
        config.plugins.extend(parsed.plugins)
    config.files = tuple(read)
    return config


# --- what a run's config says about where its jobs went ------------------------------


def run_config(
    launch_dir: str | Path,
    *,
    logged_files: Sequence[str] = (),
    original_launch_dir: str | None = None,
    cli_args: Sequence[str] = (),
    profiles: Sequence[str] | None = None,
    extra: Sequence[str | Path] = (),
    env: Mapping[str, str] | None = None,
    home: bool = True,
) -> NfConfig:
    """The run's config files in Nextflow's precedence order, read from ``launch_dir``.

    With the files the log says the run parsed (``Parsing config file: …``), exactly
    those, in its order, paths under the original launch dir mapped onto ``launch_dir``
    (a file the run read that is not here becomes an "unreadable" entry, never a silent
    skip). Without: ``$NXF_HOME/config``, ``<launch_dir>/nextflow.config`` and the
    command line's ``-c`` files, each optional but the ``-c`` ones (``home=False``: not
    this machine's ``$NXF_HOME/config``, which may not be the launch machine's).
    """
    folder = Path(launch_dir)
    home_config, local = config_candidates(folder, env=env)
    ordered: list[str | Path] = []
    optional: list[str | Path] = []
    if logged_files:
        ordered += [_map_path(Path(text), original_launch_dir, folder) for text in logged_files]
    else:
        ordered += [home_config] if home else []
        ordered += [local, *_cli_config_files(cli_args, folder)]
        optional += [home_config, local]
    ordered += list(extra)
    unique: list[str | Path] = []
    for p in ordered:
        if not any(_same(Path(p), Path(q)) for q in unique):
            unique.append(p)
    return read_config(unique, optional=optional, profiles=profiles, cli_args=cli_args)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return str(a) == str(b)


def _map_path(path: Path, original_launch_dir: str | None, launch_dir: Path) -> Path:
    """A path the log names on the launch machine, as it is found here."""
    if path.exists() or original_launch_dir is None:
        return path
    try:
        return launch_dir / path.relative_to(original_launch_dir)
    except ValueError:
        return path


def _cli_config_files(args: Sequence[str], launch_dir: Path) -> list[Path]:
    """The ``-c``/``-config`` files of a command line, resolved against the launch dir."""
    out: list[Path] = []
    for i, arg in enumerate(args):
        if arg in ("-c", "-config", "-C") and i + 1 < len(args):
            for part in args[i + 1].split(","):
                p = Path(part)
                out.append(p if p.is_absolute() else launch_dir / p)
    return out


def _is_queue_key(key: str) -> bool:
    # process.queue, process.withName:FOO.queue, process.withLabel:big.queue,
    # process.$awsbatch.queue (executor scope)
    return key == "process.queue" or (key.startswith("process.") and key.endswith(".queue"))


def aws_region(config: NfConfig) -> tuple[str, str] | None:
    """``aws.region`` when the config states it for sure: (region, "file:line")."""
    look = config.lookup("aws.region")
    if look.state == "set" and isinstance(look.value, str) and look.value:
        return look.value, look.evidence
    return None


def process_queues(config: NfConfig) -> list[tuple[str, str]]:
    """Every literal queue the config names (``process.queue``, ``withName``/``withLabel``
    queues, executor scopes, active profiles): (queue, "file:line"), first mention first."""
    found: dict[str, str] = {}
    for s in config.settings:
        if _is_queue_key(s.key) and isinstance(s.value, str) and s.value and s.value not in found:
            found[s.value] = s.evidence
    return list(found.items())


def process_executors(config: NfConfig) -> list[str]:
    """The executors the config sets (``process.executor`` and per-process ones), literal only."""
    out: list[str] = []
    for s in config.settings:
        is_executor = s.key == "process.executor" or (s.key.startswith("process.") and s.key.endswith(".executor"))
        if is_executor and isinstance(s.value, str) and s.value and s.value not in out:
            out.append(s.value)
    return out


def trace_file(config: NfConfig) -> str | None:
    """``trace.file`` when literal and the trace is enabled (``trace.enabled = true``)."""
    enabled = config.lookup("trace.enabled")
    look = config.lookup("trace.file")
    if enabled.state == "set" and enabled.value is True and look.state == "set" and isinstance(look.value, str):
        return look.value
    return None
