"""The local ledger: every submission and kill written before and after the AWS call.

SQLite through the standard library, one file per launch dir by default
(``<launch_dir>/.batchkit/ledger.sqlite``). A kernel restart, a crash between the call
and its answer, or two notebooks on the same launch dir lose nothing:

* WAL journal, ``synchronous=NORMAL``: a committed row survives the writing process
  dying (a kernel restart); only an OS crash or power cut can undo the last commits.
* every write is one ``BEGIN IMMEDIATE`` transaction, so two processes queue on the
  write lock (``busy_timeout``) instead of failing with "database is locked" on a
  read-to-write upgrade;
* one connection per thread (sqlite3 connections must not cross threads) and per
  process (a forked child opens its own).

Kill audit contract: ``record_kill_intent`` (before the call) writes one row per job;
``record_kill_result`` (after) completes *that* row. At most one open intent per job
exists (a partial unique index), so re-driving a pending kill after a restart —
``pending_kills`` then ``record_kill_intent`` again — returns the SAME ``kill_id`` and
the result lands on the original row: each job ends with exactly one final result.
An ``"error"`` outcome is not final unless ``final=True``: the row stays pending (its
``tries`` and ``last_error`` record the failure) so it is re-driven, not duplicated. A
second result for a row already final is refused (returns False), so two kernels
racing on the same kill cannot overwrite each other's audit.

Claims (``claim_kills``): before sending, a kill claims every job of its plan in ONE
transaction. A job already killed is reported, not claimed; a job whose open row another
live kill holds is left to that kill (the caller waits for or adopts its result); every
other job gets its open row (new, or the pending one re-driven) stamped with the claimer.
So two processes or kernels killing the same jobs never both send, and never write two
final rows for one job. A claim dies with its process (same host, pid gone), when its
lease runs out, or when the kill releases it (``release_claims``, always on the way out).

Privacy: the file is created 0600 (a warning names an existing file that others can
read), and a submission's container environment is stored with its names only — the
values are masked before they reach the disk. So that two requests differing only in an
environment value stay two requests after a restart, the submission keeps a salted scrypt
digest of the values (``environment_fingerprint``): it tells whether a request has the same
values, and costs a guesser tens of milliseconds per guess; the values themselves are not
stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import sqlite3
import stat
import threading
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit._time import to_utc
from batchkit.errors import InputError
from batchkit.schema import JobOutcome, KillJob

__all__ = [
    "DEFAULT_RELATIVE_PATH",
    "KillClaim",
    "Ledger",
    "LedgerClosedError",
    "LedgerPermissionWarning",
    "environment_fingerprint",
    "fingerprint_matches",
    "mask_environment",
]

#: Where ``Ledger.for_launch_dir`` keeps the file, relative to the launch dir.
DEFAULT_RELATIVE_PATH: Final = Path(".batchkit") / "ledger.sqlite"
SCHEMA_VERSION: Final = 2
#: Columns added to ``kills`` by schema 2 (claims and the moment a request was sent).
_KILL_COLUMNS_V2: Final = (("claim_owner", "TEXT"), ("claim_until", "TEXT"), ("sent_at", "TEXT"))
#: Columns added to ``submissions`` since (the environment values' salted digest).
_SUBMISSION_COLUMNS: Final = (("env_fingerprint", "TEXT"),)
#: The run key the ledger gives jobs submitted from the submit form (which kills them
#: under the same key, ``widgets.submit_form.FORM_RUN``): they are no Nextflow run's.
SUBMISSIONS_RUN: Final = "submit-form"
#: What a masked environment value is stored as.
MASK: Final = "***"
#: scrypt's cost for an environment fingerprint (RFC 7914: N, r, p): 16 MiB and tens of
#: milliseconds a digest, so a leaked ledger does not give up a short value by brute force.
_SCRYPT_N: Final = 2**14
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_FINGERPRINT_KIND: Final = f"scrypt-{_SCRYPT_N}-{_SCRYPT_R}-{_SCRYPT_P}"
#: Outcomes that end a kill (JobOutcome.outcome); "error" ends it only with final=True.
_KILL_DONE: Final = ("terminated", "cancelled", "already_done", "not_found")

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS submissions (
        submission_id TEXT PRIMARY KEY,
        requested_at TEXT NOT NULL,
        request TEXT NOT NULL,
        writer TEXT NOT NULL,
        finished_at TEXT,
        job_id TEXT,
        outcome TEXT,
        error TEXT,
        env_fingerprint TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS kills (
        kill_id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_name TEXT NOT NULL,
        job_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        reason TEXT NOT NULL,
        task_name TEXT,
        vcpu_hours REAL NOT NULL DEFAULT 0,
        request TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        writer TEXT NOT NULL,
        tries INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        finished_at TEXT,
        outcome TEXT,
        status TEXT,
        error_code TEXT,
        message TEXT,
        verified_status TEXT,
        claim_owner TEXT,
        claim_until TEXT,
        sent_at TEXT
    )""",
    # At most one open (unfinished) intent per job: a re-drive reuses it.
    "CREATE UNIQUE INDEX IF NOT EXISTS kills_open_intent ON kills(job_id) WHERE finished_at IS NULL",
    "CREATE INDEX IF NOT EXISTS kills_by_run ON kills(run_name, job_id)",
    """CREATE TABLE IF NOT EXISTS snapshots (
        snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_name TEXT NOT NULL,
        taken_at TEXT NOT NULL,
        summary TEXT NOT NULL,
        frame BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS snapshots_by_run ON snapshots(run_name, snapshot_id)",
    """CREATE TABLE IF NOT EXISTS known_jobs (
        run_name TEXT NOT NULL,
        job_id TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (run_name, job_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS polls (
        run_name TEXT PRIMARY KEY,
        last_poll TEXT NOT NULL
    )""",
)


class LedgerClosedError(RuntimeError):
    """The ledger was used after ``close()``."""


class LedgerPermissionWarning(UserWarning):
    """The ledger file can be read by other users of this machine."""


@dataclass(frozen=True, slots=True)
class KillClaim:
    """What one kill got from ``Ledger.claim_kills``: which jobs are its to send."""

    #: job id -> kill_id of the open row this kill now holds (send these)
    mine: dict[str, int] = field(default_factory=dict)
    #: job id -> the final row of a job already killed (nothing to send)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: job id -> the open row another live kill holds (wait for it, or adopt its result)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)

    def has(self, job_id: str) -> bool:
        """Whether ``job_id`` is already decided, in any of the three."""
        return job_id in self.mine or job_id in self.done or job_id in self.held


def mask_environment(value: Any) -> Any:
    """``value`` with every container environment VALUE replaced by ``MASK`` (names kept).

    SubmitJob's ``containerOverrides.environment`` (and a job definition's
    ``environment``) is a list of ``{"name", "value"}``; users put tokens there. A
    mapping of name -> value under an ``environment`` key is masked the same way.
    """
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key == "environment" and isinstance(item, list):
                out[key] = [
                    {**e, "value": MASK} if isinstance(e, dict) and "value" in e else e for e in item
                ]
            elif key == "environment" and isinstance(item, dict):
                out[key] = dict.fromkeys(item, MASK)
            else:
                out[key] = mask_environment(item)
        return out
    if isinstance(value, list | tuple):
        return [mask_environment(v) for v in value]
    return value


def _environment_values(value: Any, path: str = "") -> list[list[str]]:
    """Every environment value ``mask_environment`` would mask, as ``[where, name, value]``."""
    found: list[list[str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "environment" and isinstance(item, list):
                found += [[where, str(e.get("name")), str(e["value"])]
                          for e in item if isinstance(e, dict) and "value" in e]
            elif key == "environment" and isinstance(item, dict):
                found += [[where, str(name), str(v)] for name, v in item.items()]
            else:
                found += _environment_values(item, where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += _environment_values(item, f"{path}[{i}]")
    return found


@functools.lru_cache(maxsize=64)
def _scrypt_hex(data: bytes, salt: bytes) -> str:
    # Cached: the form asks again at each keystroke while a request matches a pending one.
    return hashlib.scrypt(data, salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32).hex()


def environment_fingerprint(request: Any, *, salt: bytes | None = None) -> str | None:
    """A salted scrypt digest of ``request``'s environment values, or None when it has none.

    ``"scrypt-N-r-p$<salt hex>$<digest hex>"``: enough to tell whether another request
    carries the same values (``fingerprint_matches``), never the values. A fresh random
    salt each time unless ``salt`` is given.
    """
    values = _environment_values(request)
    if not values:
        return None
    salt = os.urandom(16) if salt is None else salt
    data = json.dumps(values, separators=(",", ":")).encode()
    return f"{_FINGERPRINT_KIND}${salt.hex()}${_scrypt_hex(data, salt)}"


def fingerprint_matches(request: Any, fingerprint: str | None) -> bool:
    """Whether ``request``'s environment values are the ones ``fingerprint`` was made of.

    A row without a fingerprint (no values, or written before fingerprints existed)
    matches any values: the masked request alone decided then, as it always had.
    """
    if not fingerprint:
        return True
    kind, _, rest = fingerprint.partition("$")
    salt_hex, _, _digest = rest.partition("$")
    if kind != _FINGERPRINT_KIND:
        return True  # a digest this batchkit cannot recompute: fall back to the masked request
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return True
    return environment_fingerprint(request, salt=salt) == fingerprint


def kill_job_of(row: dict[str, Any]) -> KillJob:
    """The ``KillJob`` an audit row was written for."""
    return KillJob(
        job_id=str(row["job_id"]),
        verdict=str(row["verdict"]),
        reason=str(row["reason"]),
        task_name=row["task_name"],
        vcpu_hours=float(row["vcpu_hours"] or 0.0),
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


def _owner_gone(owner: str, host: str) -> bool:
    """A claim whose process is known to be dead (same host, pid not running)."""
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != host:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    return not _pid_alive(pid)


_NAT: Final = np.iinfo(np.int64).min  # numpy's NaT as an int64


def _encode_frame(frame: pd.DataFrame) -> bytes:
    """A frame as zlib-compressed columnar JSON that keeps every column's dtype.

    Not pandas' own ``to_json(orient="table")``, which is several times slower each way on
    a 100,000-row reconcile frame; and nothing is ever unpickled from disk. Timestamps and
    durations travel as int64 ns.
    """
    data: dict[str, list[Any]] = {}
    dtypes: dict[str, str] = {}
    for col in frame.columns:
        ser = frame[col]
        dtypes[str(col)] = str(ser.dtype)
        if isinstance(ser.dtype, pd.DatetimeTZDtype) or ser.dtype.kind in "mM":
            raw = ser.dt.tz_convert(None) if isinstance(ser.dtype, pd.DatetimeTZDtype) else ser
            kind = "datetime64[ns]" if ser.dtype.kind != "m" else "timedelta64[ns]"
            ints = raw.to_numpy(dtype=kind).view("int64").astype(object)
            ints[ints == _NAT] = None
            data[str(col)] = ints.tolist()
        else:
            data[str(col)] = ser.astype(object).where(ser.notna(), None).tolist()
    payload = {"format": "batchkit-frame/1", "columns": [str(c) for c in frame.columns], "dtypes": dtypes, "data": data}
    return zlib.compress(json.dumps(payload, default=str).encode(), level=1)


def _decode_frame(blob: bytes) -> pd.DataFrame:
    payload = json.loads(zlib.decompress(blob))
    columns: dict[str, Any] = {}
    for col in payload["columns"]:
        values, dtype = payload["data"][col], payload["dtypes"][col]
        if dtype.startswith(("datetime64", "timedelta64")):
            ints = pd.array(values, dtype="Int64").to_numpy(dtype="int64", na_value=_NAT)
            if dtype.startswith("timedelta64"):
                columns[col] = pd.Series(ints.view("timedelta64[ns]")).astype(dtype)
            else:
                naive = pd.Series(ints.view("datetime64[ns]"))
                tz = pd.DatetimeTZDtype.construct_from_string(dtype).tz if "," in dtype else None
                columns[col] = (naive.dt.tz_localize(tz) if tz is not None else naive).astype(dtype)
        else:
            columns[col] = pd.Series(values, dtype=dtype if dtype != "object" else object)
    return pd.DataFrame(columns, columns=payload["columns"])


def _run_key(run_name: str | None) -> str:
    # RunLike.name may be None (a log without "Run name:"); store it as "".
    return run_name or ""


class Ledger:
    """A SQLite ledger of submissions, kills, reconcile snapshots and scope progress.

    ``Ledger(path)`` creates the folder and the schema if needed. ``clock`` (returning a
    UTC timestamp) is injectable for tests. Safe to share between threads of one
    process and between processes on the same file; call ``close()`` when done.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._host = socket.gethostname()
        self._writer = f"{self._host}:{os.getpid()}"
        self._create_private()
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"ledger schema version {version} is newer than this batchkit ({SCHEMA_VERSION}); "
                    "upgrade batchkit or use another ledger path",
                    path=str(self.path),
                )
            for statement in _SCHEMA:
                conn.execute(statement)
            have = {row["name"] for row in conn.execute("PRAGMA table_info(kills)")}
            for name, kind in _KILL_COLUMNS_V2:  # a schema-1 ledger: add the claim columns
                if name not in have:
                    conn.execute(f"ALTER TABLE kills ADD COLUMN {name} {kind}")
            have = {row["name"] for row in conn.execute("PRAGMA table_info(submissions)")}
            for name, kind in _SUBMISSION_COLUMNS:  # an older ledger: nullable, older readers ignore it
                if name not in have:
                    conn.execute(f"ALTER TABLE submissions ADD COLUMN {name} {kind}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _create_private(self) -> None:
        """Create the folder (0700) and the file (0600); warn when an existing file is wider.

        The ledger holds job ids, commands' work dirs and the kill audit of a user's runs;
        SQLite gives its -wal/-shm files the database file's mode, so 0600 covers them too.
        """
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                warnings.warn(
                    f"{self.path}: the batchkit ledger is readable by other users (mode "
                    f"{mode:04o}); run `chmod 600 {self.path}` to keep it private",
                    LedgerPermissionWarning,
                    stacklevel=3,
                )
            return
        except OSError as exc:
            raise InputError(
                f"cannot create the ledger ({exc.strerror}); pass a writable path to Ledger()",
                path=str(self.path),
            ) from exc
        os.close(fd)

    @classmethod
    def for_launch_dir(cls, launch_dir: str | Path, **kwargs: Any) -> Ledger:
        """The ledger of a Nextflow launch dir: ``<launch_dir>/.batchkit/ledger.sqlite``."""
        return cls(Path(launch_dir) / DEFAULT_RELATIVE_PATH, **kwargs)

    # --- connections ---------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerClosedError(f"the ledger {self.path} is closed; open a new Ledger({str(self.path)!r})")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A forked child must not reuse its parent's connection (SQLite forbids it).
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            try:
                # check_same_thread=False only so close() can close every thread's
                # connection; each thread still uses its own (threading.local).
                conn = sqlite3.connect(
                    self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
                )
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    # e.g. a network filesystem that cannot share memory for WAL.
                    raise InputError(
                        f"SQLite refused WAL mode here (got {mode!r}); put the ledger on a local disk",
                        path=str(self.path),
                    )
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.DatabaseError as exc:
                raise InputError(
                    f"cannot open the ledger ({exc}); check the file's permissions or pass another path",
                    path=str(self.path),
                ) from exc
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so a
        # transaction never has to upgrade a read lock and fail with SQLITE_BUSY.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self._conn().execute(sql, tuple(params))]

    def _now(self) -> str:
        return str(to_utc(self._clock()).isoformat())

    def close(self) -> None:
        """Close every connection this object opened (any thread). Idempotent."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` when the file is sound."""
        return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

    # --- submissions -------------------------------------------------------------------

    def record_submission_intent(self, submission_id: str, request: dict[str, Any]) -> str | None:
        """Before SubmitJob: the request (tagged with ``submission_id``) about to be sent.

        Calling it again for a submission still pending is a no-op (a re-drive); a
        submission id that already has a result cannot be reused. Returns the row's
        ``env_fingerprint`` (None when the request has no environment values).
        """
        fingerprint = environment_fingerprint(request)  # scrypt: outside the write lock
        with self._write() as conn:
            row = conn.execute(
                "SELECT finished_at, env_fingerprint FROM submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
            if row is not None:
                if row["finished_at"] is not None:
                    raise ValueError(
                        f"submission {submission_id!r} already has a result in {self.path}; "
                        "every SubmitJob request needs a fresh submission id"
                    )
                return str(row["env_fingerprint"]) if row["env_fingerprint"] else None
            # Names only: an environment value (often a token) never reaches the disk; its
            # salted digest does, so a different value is a different request after a restart.
            conn.execute(
                "INSERT INTO submissions (submission_id, requested_at, request, writer, env_fingerprint) "
                "VALUES (?, ?, ?, ?, ?)",
                (submission_id, self._now(), json.dumps(mask_environment(request), default=str), self._writer,
                 fingerprint),
            )
        return fingerprint

    def record_submission_result(
        self, submission_id: str, job_id: str | None, outcome: str, error: str | None = None
    ) -> bool:
        """After SubmitJob: the job id (or None) and outcome. False if already recorded."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE submissions SET finished_at = ?, job_id = ?, outcome = ?, error = ? "
                "WHERE submission_id = ? AND finished_at IS NULL",
                (self._now(), job_id, outcome, error, submission_id),
            )
            if cur.rowcount == 0:
                exists = conn.execute(
                    "SELECT 1 FROM submissions WHERE submission_id = ?", (submission_id,)
                ).fetchone()
                if exists is None:
                    raise KeyError(
                        f"no submission intent {submission_id!r} in {self.path}: "
                        "call record_submission_intent before SubmitJob"
                    )
                return False
            return True

    def submissions(self) -> list[dict[str, Any]]:
        """Every submission, oldest first; ``request`` decoded from JSON."""
        rows = self._read("SELECT * FROM submissions ORDER BY requested_at, submission_id")
        for row in rows:
            row["request"] = json.loads(row["request"])
        return rows

    def submissions_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.submissions())

    def pending_submissions(self) -> list[dict[str, Any]]:
        """Intents without a result: after a crash, look for their tag before re-submitting."""
        return [row for row in self.submissions() if row["finished_at"] is None]

    # --- kills ---------------------------------------------------------------------------

    def record_kill_intent(self, run_name: str | None, kill: KillJob, request: dict[str, Any]) -> int:
        """Before TerminateJob: one audit row for this job; returns its ``kill_id``.

        If the job already has an open intent (a re-drive after a restart), that row's
        id is returned and nothing new is written.
        """
        with self._write() as conn:
            conn.execute(
                "INSERT INTO kills (run_name, job_id, verdict, reason, task_name, vcpu_hours, request, "
                "requested_at, writer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id) WHERE finished_at IS NULL DO NOTHING",
                (
                    _run_key(run_name),
                    kill.job_id,
                    kill.verdict,
                    kill.reason,
                    kill.task_name,
                    kill.vcpu_hours,
                    json.dumps(request, default=str),
                    self._now(),
                    self._writer,
                ),
            )
            row = conn.execute(
                "SELECT kill_id FROM kills WHERE job_id = ? AND finished_at IS NULL", (kill.job_id,)
            ).fetchone()
            return int(row["kill_id"])

    # --- claims: one sender per job across threads, processes and kernels ------------------

    def new_claim_owner(self) -> str:
        """A unique claimer id for one kill: ``host:pid:token`` (the pid tells a dead claim)."""
        return f"{self._writer}:{uuid.uuid4().hex[:12]}"

    def _claim_dead(self, row: Any, now: pd.Timestamp) -> bool:
        owner = row["claim_owner"]
        if owner is None:
            return True
        until = row["claim_until"]
        if until is not None and to_utc(until) <= now:
            return True
        return _owner_gone(str(owner), self._host)

    def claim_kills(
        self,
        run_name: str | None,
        jobs: Sequence[KillJob],
        request: dict[str, Any],
        *,
        owner: str,
        lease_s: float,
        concurrent_after: int | None = None,
    ) -> KillClaim:
        """Claim every job of a kill in one transaction (see the module docstring).

        ``concurrent_after`` (a ``max_kill_id()`` taken when the plan's snapshot was):
        the run's rows written since then by other kills are returned too — in ``done``
        when final, in ``held`` while another kill holds them — so a kill planned from an
        older snapshot reports what a concurrent kill did meanwhile, as that kill does.
        """
        claim = KillClaim()
        with self._write() as conn:
            now = to_utc(self._clock())
            until = (now + pd.Timedelta(seconds=max(1.0, lease_s))).isoformat()
            for kill in jobs:
                if not claim.has(kill.job_id):
                    self._claim_job(conn, claim, run_name, kill, request, owner=owner, now=now, until=until)
            if concurrent_after is not None:
                for row in conn.execute(
                    "SELECT * FROM kills WHERE run_name = ? AND kill_id > ? ORDER BY kill_id",
                    (_run_key(run_name), concurrent_after),
                ):
                    job_id = row["job_id"]
                    if claim.has(job_id):
                        continue
                    if row["finished_at"] is not None:
                        if row["outcome"] in _KILL_DONE:
                            claim.done[job_id] = dict(row)
                    elif row["claim_owner"] not in (None, owner) and not self._claim_dead(row, now):
                        claim.held[job_id] = dict(row)
        return claim

    def _claim_job(
        self,
        conn: sqlite3.Connection,
        claim: KillClaim,
        run_name: str | None,
        kill: KillJob,
        request: dict[str, Any],
        *,
        owner: str,
        now: pd.Timestamp,
        until: str,
    ) -> None:
        """One job of ``claim_kills``, in its transaction: already killed (``done``), held
        by another live kill (``held``), an open row taken over, or a new row (``mine``)."""
        marks = ",".join("?" * len(_KILL_DONE))
        final = conn.execute(
            f"SELECT * FROM kills WHERE job_id = ? AND finished_at IS NOT NULL AND outcome IN ({marks}) "
            "ORDER BY kill_id DESC LIMIT 1",
            (kill.job_id, *_KILL_DONE),
        ).fetchone()
        if final is not None:
            claim.done[kill.job_id] = dict(final)
            return
        row = conn.execute("SELECT * FROM kills WHERE job_id = ? AND finished_at IS NULL", (kill.job_id,)).fetchone()
        if row is not None:
            if row["claim_owner"] != owner and not self._claim_dead(row, now):
                claim.held[kill.job_id] = dict(row)
                return
            conn.execute(
                "UPDATE kills SET claim_owner = ?, claim_until = ? WHERE kill_id = ?", (owner, until, row["kill_id"])
            )
            claim.mine[kill.job_id] = int(row["kill_id"])
            return
        cur = conn.execute(
            "INSERT INTO kills (run_name, job_id, verdict, reason, task_name, vcpu_hours, request, "
            "requested_at, writer, claim_owner, claim_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _run_key(run_name), kill.job_id, kill.verdict, kill.reason, kill.task_name,
                kill.vcpu_hours, json.dumps(request, default=str), now.isoformat(), self._writer, owner, until,
            ),
        )
        claim.mine[kill.job_id] = int(cur.lastrowid or 0)

    def claim_is_dead(self, row: dict[str, Any]) -> bool:
        """Whether the claim on an open row can be taken over (released, expired, or its
        process is gone)."""
        return self._claim_dead(row, to_utc(self._clock()))

    def record_kill_results(self, rows: Sequence[tuple[int, JobOutcome, str | None, bool]]) -> list[bool]:
        """Many ``record_kill_result(kill_id, outcome, verified_status, final=...)`` in ONE
        transaction (a kill records a chunk's answers at once); same rules per row."""
        if not rows:
            return []
        written: list[bool] = []
        with self._write() as conn:
            now = self._now()
            for kill_id, o, verified, final in rows:
                if final:
                    cur = conn.execute(
                        "UPDATE kills SET finished_at = ?, outcome = ?, status = ?, error_code = ?, message = ?, "
                        "verified_status = ?, tries = tries + 1, claim_owner = NULL, claim_until = NULL "
                        "WHERE kill_id = ? AND finished_at IS NULL",
                        (now, o.outcome, o.status, o.error_code, o.message, verified, kill_id),
                    )
                else:
                    error = f"{o.error_code}: {o.message}" if o.error_code else o.message
                    cur = conn.execute(
                        "UPDATE kills SET tries = tries + 1, last_error = ? WHERE kill_id = ? AND finished_at IS NULL",
                        (error, kill_id),
                    )
                written.append(bool(cur.rowcount) and final)
        return written

    def mark_sent(self, kill_ids: Iterable[int]) -> None:
        """The request for these rows is about to go out (Cancel leaves them 'sent')."""
        ids = list(kill_ids)
        if not ids:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE kills SET sent_at = ? WHERE kill_id = ? AND finished_at IS NULL",
                ((self._now(), i) for i in ids),
            )

    def release_claims(self, owner: str) -> int:
        """Give up ``owner``'s claims on rows still open (the next kill takes them at once)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE kills SET claim_owner = NULL, claim_until = NULL "
                "WHERE claim_owner = ? AND finished_at IS NULL",
                (owner,),
            )
            return int(cur.rowcount)

    def kill_rows(self, kill_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The current rows of these kills (to follow another kill's claims), by kill_id."""
        ids = list(kill_ids)
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self._read(f"SELECT * FROM kills WHERE kill_id IN ({marks})", part):
                out[int(row["kill_id"])] = row
        return out

    def max_kill_id(self) -> int:
        """The newest kill row's id (0 when none): a mark for ``claim_kills(concurrent_after=)``."""
        rows = self._read("SELECT COALESCE(MAX(kill_id), 0) AS m FROM kills")
        return int(rows[0]["m"])

    def record_kill_result(
        self,
        kill_id: int,
        result: JobOutcome | str,
        verified_status: str | None = None,
        *,
        status: str | None = None,
        error_code: str | None = None,
        message: str = "",
        final: bool | None = None,
    ) -> bool:
        """After TerminateJob: complete the intent row ``kill_id``.

        ``result`` is a ``JobOutcome`` or its ``outcome`` string (then ``status``,
        ``error_code``, ``message`` give the rest). An ``"error"`` outcome keeps the
        row pending (counted in ``tries``, kept in ``last_error``) unless ``final=True``.
        Returns True when this call wrote the final result, False when the row stays
        pending or was already final (its first result is kept).
        """
        outcome: str
        if isinstance(result, JobOutcome):
            outcome, status, error_code, message = result.outcome, result.status, result.error_code, result.message
        else:
            outcome = result
        is_final = outcome != "error" if final is None else final
        with self._write() as conn:
            if is_final:
                cur = conn.execute(
                    "UPDATE kills SET finished_at = ?, outcome = ?, status = ?, error_code = ?, message = ?, "
                    "verified_status = ?, tries = tries + 1, claim_owner = NULL, claim_until = NULL "
                    "WHERE kill_id = ? AND finished_at IS NULL",
                    (self._now(), outcome, status, error_code, message, verified_status, kill_id),
                )
            else:
                error = f"{error_code}: {message}" if error_code else message
                cur = conn.execute(
                    "UPDATE kills SET tries = tries + 1, last_error = ? WHERE kill_id = ? AND finished_at IS NULL",
                    (error, kill_id),
                )
            if cur.rowcount == 0:
                if conn.execute("SELECT 1 FROM kills WHERE kill_id = ?", (kill_id,)).fetchone() is None:
                    raise KeyError(f"no kill intent {kill_id} in {self.path}: call record_kill_intent first")
                return False
            return is_final

    def record_kill_verification(self, kill_id: int, verified_status: str) -> None:
        """The job's status when described again after the kill (docs/ARCHITECTURE.md §8.2: verify).

        A terminated RUNNING job stays RUNNING until its container stops, so this replaces
        the status seen right after TerminateJob. Raises KeyError for an unknown ``kill_id``.
        """
        with self._write() as conn:
            cur = conn.execute("UPDATE kills SET verified_status = ? WHERE kill_id = ?", (verified_status, kill_id))
            if cur.rowcount == 0:
                raise KeyError(f"no kill intent {kill_id} in {self.path}: call record_kill_intent first")

    def kills(self, run_name: str | None = None) -> list[dict[str, Any]]:
        """The kill audit (all runs, or one), oldest first; ``request`` decoded."""
        if run_name is None:
            rows = self._read("SELECT * FROM kills ORDER BY kill_id")
        else:
            rows = self._read("SELECT * FROM kills WHERE run_name = ? ORDER BY kill_id", (_run_key(run_name),))
        for row in rows:
            row["request"] = json.loads(row["request"])
        return rows

    def killed_job_ids(self, run_name: str | None = None) -> set[str]:
        """Jobs whose kill ended well (terminated, cancelled, already done, or unknown to Batch)."""
        marks = ",".join("?" * len(_KILL_DONE))
        sql = f"SELECT job_id FROM kills WHERE finished_at IS NOT NULL AND outcome IN ({marks})"
        params: list[Any] = list(_KILL_DONE)
        if run_name is not None:
            sql += " AND run_name = ?"
            params.append(_run_key(run_name))
        return {row["job_id"] for row in self._read(sql, params)}

    def other_runs_jobs(self, own_keys: Iterable[str | None]) -> dict[str, set[str]]:
        """Job ids this ledger records under runs other than ``own_keys`` (one run's keys).

        Kill rows by their run (killed, pending or claimed: any row, final or not) and
        jobs submitted from the submit form (under ``SUBMISSIONS_RUN``). A run's tracker
        hands them to ``reconcile`` as other runs: a job another run killed, claims or
        submitted is never this run's. Rows without a run name are nobody's evidence.
        """
        own = {_run_key(key) for key in own_keys}
        found: dict[str, set[str]] = {}
        for row in self._read("SELECT DISTINCT run_name, job_id FROM kills WHERE run_name <> ''"):
            if row["run_name"] not in own:
                found.setdefault(str(row["run_name"]), set()).add(str(row["job_id"]))
        if SUBMISSIONS_RUN not in own:
            rows = self._read("SELECT job_id FROM submissions WHERE job_id IS NOT NULL AND job_id <> ''")
            if rows:
                found.setdefault(SUBMISSIONS_RUN, set()).update(str(row["job_id"]) for row in rows)
        return found

    def pending_kills(self, run_name: str | None = None) -> list[KillJob]:
        """Intents written without a final result: the jobs to re-drive after a restart."""
        sql = "SELECT * FROM kills WHERE finished_at IS NULL"
        params: list[Any] = []
        if run_name is not None:
            sql += " AND run_name = ?"
            params.append(_run_key(run_name))
        return [kill_job_of(row) for row in self._read(sql + " ORDER BY kill_id", params)]

    # --- snapshots -------------------------------------------------------------------

    def record_snapshot(
        self, run_name: str | None, frame_summary: dict[str, Any], frame: pd.DataFrame | None = None
    ) -> int:
        """A reconcile snapshot: the summary always, the frame when given.

        Only the newest frame per run is kept (older rows keep their summary), so
        polling every few seconds does not grow the file without bound.
        """
        payload = None if frame is None else _encode_frame(frame.reset_index(drop=True))
        key = _run_key(run_name)
        with self._write() as conn:
            if payload is not None:
                conn.execute("UPDATE snapshots SET frame = NULL WHERE run_name = ? AND frame IS NOT NULL", (key,))
            cur = conn.execute(
                "INSERT INTO snapshots (run_name, taken_at, summary, frame) VALUES (?, ?, ?, ?)",
                (key, self._now(), json.dumps(frame_summary, default=str), payload),
            )
            return int(cur.lastrowid or 0)

    def last_snapshot(self, run_name: str | None) -> tuple[pd.Timestamp, dict[str, Any], pd.DataFrame | None] | None:
        """The newest snapshot of a run: (taken_at, summary, frame or None), or None."""
        rows = self._read(
            "SELECT taken_at, summary, frame FROM snapshots WHERE run_name = ? ORDER BY snapshot_id DESC LIMIT 1",
            (_run_key(run_name),),
        )
        if not rows:
            return None
        row = rows[0]
        frame = None
        if row["frame"] is not None:
            frame = _decode_frame(row["frame"])
        return pd.Timestamp(row["taken_at"]), json.loads(row["summary"]), frame

    def snapshot_history(self, run_name: str | None) -> list[dict[str, Any]]:
        """Every snapshot's time and summary (oldest first), for trend charts."""
        rows = self._read(
            "SELECT snapshot_id, taken_at, summary FROM snapshots WHERE run_name = ? ORDER BY snapshot_id",
            (_run_key(run_name),),
        )
        return [
            {"snapshot_id": r["snapshot_id"], "taken_at": pd.Timestamp(r["taken_at"]), "summary": json.loads(r["summary"])}
            for r in rows
        ]

    # --- scope discovery progress ------------------------------------------------------

    def remember_jobs(self, run_name: str | None, job_ids: Iterable[str]) -> int:
        """Add job ids found in the run's scope; returns how many were new."""
        key, now = _run_key(run_name), self._now()
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO known_jobs (run_name, job_id, first_seen) VALUES (?, ?, ?)",
                ((key, job_id, now) for job_id in job_ids),
            )
            return conn.total_changes - before

    def known_jobs(self, run_name: str | None) -> set[str]:
        return {r["job_id"] for r in self._read("SELECT job_id FROM known_jobs WHERE run_name = ?", (_run_key(run_name),))}

    def last_poll(self, run_name: str | None) -> pd.Timestamp | None:
        """When scope discovery last completed for this run (UTC), or None."""
        rows = self._read("SELECT last_poll FROM polls WHERE run_name = ?", (_run_key(run_name),))
        return pd.Timestamp(rows[0]["last_poll"]) if rows else None

    def set_last_poll(self, run_name: str | None, ts: Any) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO polls (run_name, last_poll) VALUES (?, ?) "
                "ON CONFLICT (run_name) DO UPDATE SET last_poll = excluded.last_poll",
                (_run_key(run_name), to_utc(ts).isoformat()),
            )
