"""Start a Nextflow run from the notebook, tracked by batchkit from its first second.

``launch_nextflow`` starts ``nextflow run`` as a subprocess — the real ``nextflow``
when it is on PATH, else batchkit's simulated one (``python -m batchkit.sim.nextflow``,
same flags) — with ``-with-trace`` and a weblog URL pointing at a receiver batchkit
starts on 127.0.0.1, so the run is visible before its first task completes: the
trace only gets rows on completion, and after a hard crash in-flight tasks are not in
it at all (docs/ARCHITECTURE.md §3); the weblog and the log's ``[AWS BATCH] ... submitted > job=``
lines are what survive.

The weblog moved from ``-with-weblog URL`` to the nf-weblog plugin in Nextflow 25.04.
Every receiver is authenticated (issue #15), and its secrets never go on the command
line (``ps`` shows it to every user of the machine): a real Nextflow gets a small 0600
config passed with ``-c`` — ``weblog { enabled = true; url = … }``, which Nextflow's core
reads too (DefaultObserverFactory.createWebLogObserver, the same settings
``-with-weblog`` makes) — whose URL path is the receiver's secret, since the core
WebLogObserver before 25.04 sends no token; from 25.04 the config also loads
``nf-weblog`` and sets ``weblog.basicToken``. The simulated Nextflow is given the bare
URL and the token in its environment.

``NextflowLaunch.stop()`` sends SIGTERM first so Nextflow can kill its own jobs and
write its trace, waits, and only then SIGKILLs; ``leftovers()`` then reconciles and
lists what it left behind. The :class:`Watchdog` (off by default) notices a run whose
process is gone, or whose weblog has gone silent, while Batch still runs its jobs; it
raises an alert, and only when armed kills them through the Tracker's safe kill path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from batchkit.errors import BatchkitError, InputError
from batchkit.schema import JOB_ACTIVE, JobCol, KillJob, RecCol

if TYPE_CHECKING:
    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun, WeblogReceiver
    from batchkit.tracker import KillReport, Tracker

log = logging.getLogger(__name__)

#: The console widget is redrawn at most this often (seconds).
CONSOLE_FLUSH_S = 0.2

#: Nextflow moved the weblog to the nf-weblog plugin in 25.04 (the -with-weblog flag
#: is gone there).
WEBLOG_PLUGIN_SINCE = (25, 4)



# --- pure parts ------------------------------------------------------------------------


def parse_nextflow_version(text: str) -> tuple[int, int, int] | None:
    """``nextflow -version`` output -> (year, month, patch), or None when not found.

    The version is found by the one log reader (``batchkit.nextflow.log.version_of``).
    """
    from batchkit.nextflow.log import version_of

    version = version_of(text)
    parts = version.split("-")[0].split(".") if version else []
    if len(parts) < 3 or not all(p.isdigit() for p in parts[:3]):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


#: A weblog token as batchkit writes it into Groovy: USER:PASSWORD from a plain alphabet, so
#: no quote, backslash, `$` or newline can end the string and inject code into the config
#: Nextflow runs (issue #16).
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{1,64}:[A-Za-z0-9._~-]{8,256}")
_URL_SAFE_RE = re.compile(r"https?://[A-Za-z0-9.\[\]:_-]+/[A-Za-z0-9._~/-]*")


def new_weblog_token() -> str:
    """A random ``USER:PASSWORD`` for the weblog receiver (secrets: 192 random bits)."""
    return f"batchkit:{secrets.token_urlsafe(24)}"


def check_weblog_token(token: str) -> str:
    """``token`` if it is a plain ``USER:PASSWORD``; else one clear InputError."""
    if not _TOKEN_RE.fullmatch(token):
        raise InputError(
            "weblog token must be USER:PASSWORD of letters, digits and . _ ~ - "
            "(8+ characters after the colon; no quotes, spaces or $)"
        )
    return token


def weblog_config(url: str, token: str | None = None, *, plugin: bool = True) -> str:
    """The weblog config that sends a run's events to ``url``.

    ``plugin``: Nextflow >= 25.04 (loads nf-weblog; ``token`` becomes its
    ``weblog.basicToken``). Before 25.04 the core reads ``weblog.enabled`` and
    ``weblog.url`` alone and has no token setting (``token`` is then ignored: the
    secret is in ``url``'s path). Both values land inside Groovy string literals: each
    is checked against a plain alphabet first, never escaped after the fact.
    """
    if not _URL_SAFE_RE.fullmatch(url):
        raise InputError(f"weblog URL {url!r} is not a plain http://HOST:PORT/ URL")
    lines = ["plugins {", "    id 'nf-weblog'", "}"] if plugin else []
    lines += ["weblog {", "    enabled = true", f"    url = '{url}'"]
    if token and plugin:
        lines.append(f"    basicToken = '{check_weblog_token(token)}'")
    lines.append("}")
    return "\n".join(lines) + "\n"


def build_command(
    pipeline: str,
    *,
    executable: Sequence[str],
    run_name: str,
    trace_file: str,
    work_dir: str,
    weblog_url: str,
    version: tuple[int, int, int] | None,
    simulated: bool,
    config_file: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``nextflow run`` command line, with batchkit's trace and weblog wiring.

    A real Nextflow gets its weblog settings from ``config_file`` (``weblog_config``:
    the URL carries a secret, which must not show in ``ps``); the simulated one gets
    ``-with-weblog weblog_url`` (the bare URL; its token comes in the environment).
    ``version`` is kept for callers; the config file says which weblog to use.
    """
    cmd = [*executable, "run", pipeline, "-name", run_name, "-with-trace", trace_file, "-work-dir", work_dir]
    if not simulated:
        if config_file is None:
            raise ValueError("a real Nextflow needs the weblog config file (weblog_config)")
        cmd += ["-c", config_file]
    else:
        cmd += ["-with-weblog", weblog_url]
    return [*cmd, *extra_args]


@dataclass(frozen=True, slots=True)
class WatchdogAlert:
    """Why the watchdog thinks the run's jobs are orphans."""

    reason: str  # e.g. "the nextflow process exited (code -9)"
    active_jobs: int
    killable: int
    armed: bool


def assess(
    *,
    process_exit: int | None,
    process_known: bool,
    silent_for: float | None,
    silent_after: float,
    active_jobs: int,
    killable: int,
    armed: bool,
) -> WatchdogAlert | None:
    """The watchdog's decision (pure): alert when nobody is left to collect active jobs.

    The process is gone (``process_exit`` set) or the run has been silent longer than
    ``silent_after`` seconds, while Batch still holds active jobs of the run.
    """
    if active_jobs <= 0:
        return None
    if process_known and process_exit is not None:
        reason = f"the nextflow process exited (code {process_exit}) while Batch still runs its jobs"
    elif silent_for is not None and silent_for >= silent_after:
        reason = f"the run has been silent for {silent_for / 60:.0f} min while Batch still runs its jobs"
    else:
        return None
    return WatchdogAlert(reason=reason, active_jobs=active_jobs, killable=killable, armed=armed)


def alert_text(alert: WatchdogAlert) -> str:
    """The one line a dashboard shows for a watchdog alert (pure)."""
    action = (
        f"armed: killing {alert.killable} orphan job(s)"
        if alert.armed
        else f"{alert.killable} job(s) killable — kill them here, or arm the watchdog"
    )
    return f"Watchdog: {alert.reason} ({alert.active_jobs} active job(s)); {action}."


def _random_run_name() -> str:
    return "batchkit_" + uuid.uuid4().hex[:8]


# --- the launch handle -----------------------------------------------------------------


class NextflowLaunch:
    """A Nextflow run started by :func:`launch_nextflow`.

    ``run()`` is what Nextflow believes right now (trace + log + weblog); once the
    process has exited without Nextflow recording an end (a crash, SIGKILL), the run
    reads as aborted, so its still-active jobs become orphans rather than "alive".
    """

    def __init__(
        self,
        *,
        command: list[str],
        launch_dir: Path,
        run_name: str,
        trace_file: Path,
        weblog: WeblogReceiver,
        simulated: bool,
        client: BatchClient | None,
        queues: Sequence[str] | None,
        env: Mapping[str, str] | None = None,
        console_lines: int = 2000,
    ) -> None:
        self.command = command
        self.launch_dir = launch_dir
        self.run_name = run_name
        self.trace_file = trace_file
        self.weblog = weblog
        self.simulated = simulated
        self.client = client
        self.queues = list(queues) if queues else None
        self.console: collections.deque[str] = collections.deque(maxlen=console_lines)
        self._declared_dead: tuple[str, pd.Timestamp] | None = None
        self._exit_time: pd.Timestamp | None = None
        self._tracker: Tracker | None = None
        self._dashboards: list[Any] = []
        self._watchdog: Watchdog | None = None
        self._output: Any = None
        self._flushed_at = 0.0
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(  # the command is built above, not a shell string
            command,
            cwd=launch_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Nextflow echoes a failed task's .command.out, which can hold any bytes: a
            # strict decoder would kill the reader and leave the run blocked on its pipe.
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env={**os.environ, **(env or {})},
            # Its own process group: SIGTERM reaches the JVM behind the nextflow launcher
            # script, and a Ctrl-C in the kernel does not reach Nextflow.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, name=f"nextflow-{run_name}", daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        state = "running" if self.returncode is None else f"exited {self.returncode}"
        kind = "simulated " if self.simulated else ""
        return f"NextflowLaunch({kind}run {self.run_name!r}, pid {self.process.pid}, {state}, {self.launch_dir})"

    # --- the process ---------------------------------------------------------------

    def _pump(self) -> None:
        stream = self.process.stdout
        try:
            if stream is None:
                return
            for line in stream:
                self.console.append(line)
                for listener in list(self._listeners):
                    try:
                        listener(line)
                    except Exception:  # a closed widget must not stop the console
                        log.exception("batchkit launcher: console listener failed")
        except (OSError, ValueError):  # the pipe closed under us: the process is going
            log.debug("batchkit launcher: console of %s closed", self.run_name)
        finally:
            self.process.wait()
            self._exit_time = pd.Timestamp.now(tz="UTC")
            if self._output is not None:
                self._flush_output(force=True)

    @property
    def returncode(self) -> int | None:
        """The process's exit code, None while it runs (no I/O: ``Popen.poll``)."""
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to exit; its exit code, or None on timeout."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, *, grace: float = 60.0) -> int:
        """Stop the run: SIGTERM first so Nextflow can kill its jobs and write its trace.

        After ``grace`` seconds the process group gets SIGKILL. Returns the exit code.
        Then look at ``leftovers()``: what Nextflow did not clean up.
        """
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            if self.wait(grace) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        code = self.process.returncode
        assert code is not None
        return code

    def kill_process(self) -> int:
        """SIGKILL the run's process group at once (what a crash or OOM would do)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        code = self.process.wait()
        self._reader.join(timeout=5)
        return code

    def declare_dead(self, reason: str) -> None:
        """Treat the run as ended (e.g. silent too long): its active jobs become orphans."""
        self._declared_dead = (reason, pd.Timestamp.now(tz="UTC"))

    # --- what Nextflow believes --------------------------------------------------------

    def run(self) -> NextflowRun:
        """Read the run's trace, log and weblog now (a new NextflowRun)."""
        from batchkit.nextflow import NextflowRun

        # Its own run by name: a relaunch in the same dir takes over .nextflow.log.
        run = NextflowRun.from_dir(self.launch_dir, weblog=self.weblog, run_name=self.run_name)
        declared = self._declared_dead
        if declared is not None and run.last_activity is not None and run.last_activity > declared[1]:
            # It spoke again after the watchdog gave up on it: alive after all.
            self._declared_dead = None
        ended = self._ended()
        if run.state == "alive" and ended is not None:
            cause, when = ended
            run = dataclasses.replace(run, state="aborted", abort_cause=cause, abort_time=when, end_time=when)
        # Reloads (the Tracker's, each refresh) go through this view too.
        return dataclasses.replace(run, _loader=self.run)

    def _ended(self) -> tuple[str, pd.Timestamp] | None:
        code = self.returncode
        if code is not None:
            when = self._exit_time or pd.Timestamp.now(tz="UTC")
            return f"the nextflow process exited (code {code}) without ending the run", when
        return self._declared_dead

    def tracker(self, client: BatchClient | None = None, **kwargs: Any) -> Tracker:
        """The Tracker of this run (one per launch; created on first use)."""
        from batchkit.tracker import Tracker

        with self._lock:
            if self._tracker is None:
                use = client or self.client
                if use is None:
                    raise BatchkitError(
                        f"run {self.run_name!r}: pass client= (a BatchClient) to track its Batch jobs"
                    )
                kwargs.setdefault("queues", self.queues)
                self._tracker = Tracker(self.run(), use, **kwargs)
            return self._tracker

    def dashboard(self, client: BatchClient | None = None, **kwargs: Any) -> Any:
        """The Dashboard on this live run (shares this launch's Tracker)."""
        from batchkit.widgets import Dashboard

        tracker = self.tracker(client, interval=float(kwargs.pop("interval", 5.0)))
        dashboard = Dashboard(self.run(), tracker=tracker, **kwargs)
        self._dashboards.append(dashboard)
        if self._watchdog is not None and self._watchdog.alerts:
            dashboard.show_alert(alert_text(self._watchdog.alerts[-1]))
        return dashboard

    def watch(self, *, silent_after: float = 900.0, armed: bool = False, interval: float = 30.0) -> Watchdog:
        """Start the watchdog (off until called): alerts in this launch's dashboards.

        It kills nothing unless ``armed=True`` (or ``watchdog.arm()`` later).
        """
        if self._watchdog is None:
            self._watchdog = Watchdog(self, silent_after=silent_after, armed=armed, on_alert=self._alert)
            self._watchdog.start(interval)
        return self._watchdog

    def _alert(self, alert: WatchdogAlert) -> None:
        for dashboard in list(self._dashboards):
            dashboard.show_alert(alert_text(alert))

    def leftovers(self) -> list[KillJob]:
        """Refresh and plan the kills of what the run left running in Batch."""
        tracker = self.tracker()
        tracker.refresh()
        return tracker.plan()

    def kill_leftovers(self) -> KillReport:
        """Kill what ``leftovers()`` lists, through the Tracker's safe kill path."""
        tracker = self.tracker()
        return tracker.kill(self.leftovers())

    # --- console -----------------------------------------------------------------------

    def on_console(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(line)`` for each console line from now on; returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def output(self) -> Any:
        """An ipywidgets Output that streams the run's console (created on first use).

        It shows the last ``console`` lines as one block, redrawn at most every
        ``CONSOLE_FLUSH_S`` seconds: ``Output.append_stdout`` per line would grow the
        widget's outputs without bound and re-send all of them for every line.
        """
        if self._output is None:
            import ipywidgets as widgets

            out = widgets.Output(layout=widgets.Layout(max_height="240px", overflow="auto"))
            out.add_class("bk-console")
            self._output = out
            self._flush_output(force=True)
            self.on_console(lambda _line: self._flush_output())
        return self._output

    def _flush_output(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._flushed_at < CONSOLE_FLUSH_S:
            return
        self._flushed_at = now
        text = "".join(list(self.console))
        self._output.outputs = ({"output_type": "stream", "name": "stdout", "text": text},) if text else ()

    def close(self) -> None:
        """Stop watching (not the run): the watchdog, the weblog receiver and the tracker."""
        if self._watchdog is not None:
            self._watchdog.close()
        if self._tracker is not None:
            self._tracker.close()
        self.weblog.stop()


def launch_nextflow(
    pipeline: str,
    launch_dir: str | Path,
    *,
    client: BatchClient | None = None,
    work_dir: str = "s3://batchkit-demo/work",
    queue: str | None = None,
    run_name: str | None = None,
    nextflow: str | None = None,
    simulated: bool | None = None,
    endpoint_url: str | None = None,
    weblog_token: str | None = None,
    extra_args: Sequence[str] = (),
    sim_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> NextflowLaunch:
    """Start ``nextflow run PIPELINE`` in ``launch_dir``, wired to batchkit.

    ``nextflow``: the executable (default: ``nextflow`` on PATH). ``simulated``: force
    batchkit's stand-in (default: only when no ``nextflow`` is on PATH). ``queue`` and
    ``endpoint_url`` go to the simulated run (a real pipeline takes its queue from its
    config). ``sim_args`` are extra flags for the simulated one (``-behavior 24.02``).
    """
    from batchkit.nextflow import WeblogReceiver

    folder, found = _check_launch(launch_dir, nextflow, simulated, extra_args)
    simulated = found is None
    name = run_name or _random_run_name()
    trace_file = folder / f"trace-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    token = check_weblog_token(weblog_token) if weblog_token is not None else new_weblog_token()
    version = None if found is None else _nextflow_version(found)
    # Every POST must carry the token or go to the receiver's secret URL path, so nobody
    # else on this machine can put a job into the run's records (issue #15).
    receiver = WeblogReceiver(token=token).start()
    if found is None:
        wiring = _simulated_wiring(token, env or {}, queue=queue, endpoint_url=endpoint_url, sim_args=sim_args)
    else:
        wiring = _nextflow_wiring(found, version, folder, receiver.url, token, env or {}, endpoint_url=endpoint_url)
    command = build_command(
        pipeline,
        executable=wiring.executable,
        run_name=name,
        trace_file=str(trace_file),
        work_dir=work_dir,
        weblog_url=receiver.base_url,
        version=version,
        simulated=simulated,
        config_file=wiring.config_file,
        extra_args=[*extra_args, *wiring.extra_args],
    )
    try:
        return NextflowLaunch(
            command=command,
            launch_dir=folder,
            run_name=name,
            trace_file=trace_file,
            weblog=receiver,
            simulated=simulated,
            client=client,
            queues=[queue] if queue else None,
            env=wiring.env,
        )
    except OSError as exc:
        receiver.stop()
        raise BatchkitError(f"could not start {command[0]}: {exc}") from exc


def _check_launch(
    launch_dir: str | Path, nextflow: str | None, simulated: bool | None, extra_args: Sequence[str]
) -> tuple[Path, str | None]:
    """(the launch dir, created; the real ``nextflow`` to run, or None for batchkit's stand-in),
    or one clear error about the arguments."""
    if "-bg" in extra_args:
        # With -bg the launcher script exits at once while the JVM runs on: the exit would
        # read as a crash and make every running job an orphan.
        raise InputError("-bg is not supported: batchkit runs Nextflow in the background itself")
    folder = Path(launch_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise InputError("cannot launch here: not a directory", path=str(folder))
    found = nextflow or shutil.which("nextflow")
    if simulated is None:
        simulated = found is None
    if not simulated and found is None:
        raise BatchkitError("nextflow is not on PATH: install it, pass nextflow=..., or use simulated=True")
    return folder, None if simulated else found


@dataclass(frozen=True, slots=True)
class _Wiring:
    """What differs between batchkit's stand-in and a real Nextflow: how it is started and
    how it learns where the weblog goes and with which secret."""

    executable: list[str]
    extra_args: list[str]  # after the caller's own
    env: dict[str, str]  # the caller's, plus what this kind of Nextflow needs
    config_file: str | None = None


def _simulated_wiring(
    token: str, env: Mapping[str, str], *, queue: str | None, endpoint_url: str | None, sim_args: Sequence[str]
) -> _Wiring:
    """batchkit's stand-in: the token in its environment, never on the command line."""
    from batchkit.sim.nextflow import WEBLOG_TOKEN_ENV

    extra: list[str] = []
    if queue:
        extra += ["-queue", queue]
    if endpoint_url:
        extra += ["--endpoint-url", endpoint_url]
    child_env = {**env, WEBLOG_TOKEN_ENV: token}
    return _Wiring([sys.executable, "-m", "batchkit.sim.nextflow"], [*extra, *sim_args], child_env)


def _nextflow_wiring(
    found: str,
    version: tuple[int, int, int] | None,
    folder: Path,
    url: str,
    token: str,
    env: Mapping[str, str],
    *,
    endpoint_url: str | None,
) -> _Wiring:
    """A real Nextflow: a 0600 config file passed with ``-c``. nf-weblog (Nextflow >= 25.04)
    sends the token; an older Nextflow's WebLogObserver sends none, so its config holds the
    secret URL (nextflow-io/nextflow: trace/WebLogObserver.groovy posts to the URL given)."""
    plugin = version is not None and version[:2] >= WEBLOG_PLUGIN_SINCE
    config_path = folder / ".batchkit" / "weblog.config"
    config_path.parent.mkdir(exist_ok=True)
    write_private(config_path, weblog_config(url, token, plugin=plugin))
    child_env = dict(env)
    if endpoint_url:
        # Nextflow's AWS SDK honours the service endpoint override variable.
        child_env.setdefault("AWS_ENDPOINT_URL_BATCH", endpoint_url)
    return _Wiring([found], [], child_env, config_file=str(config_path))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), even if it existed wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _nextflow_version(executable: str) -> tuple[int, int, int] | None:
    """Ask ``nextflow -version`` (an explicit call: it starts a JVM)."""
    try:
        done = subprocess.run(
            [executable, "-version"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nextflow_version(done.stdout + done.stderr)


# --- the watchdog ----------------------------------------------------------------------


class Watchdog:
    """Watches a launched run; alerts when its jobs outlive it, kills them only if armed.

    Off by default: nothing is killed unless ``arm()`` was called. Kills go through
    ``Tracker.plan()``/``Tracker.kill()``: only jobs proven to be the run's (recorded id
    or work dir, docs/ARCHITECTURE.md §8), so a canary run on the same queue is never touched.
    """

    def __init__(
        self,
        launch: NextflowLaunch,
        *,
        silent_after: float = 900.0,
        armed: bool = False,
        on_alert: Callable[[WatchdogAlert], None] | None = None,
    ) -> None:
        self.launch = launch
        self.silent_after = silent_after
        self.armed = armed
        self.alerts: list[WatchdogAlert] = []
        self.kills: list[KillReport] = []
        self._callbacks: list[Callable[[WatchdogAlert], None]] = [on_alert] if on_alert else []
        self.interval = 30.0
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one check at a time (the loop and a manual call)

    def start(self, interval: float = 30.0) -> None:
        """Check every ``interval`` seconds: on the running event loop (a notebook), else a thread."""
        self.interval = interval
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._run_async())
        else:
            self._thread = threading.Thread(target=self._run_thread, name="batchkit-watchdog", daemon=True)
            self._thread.start()

    async def _run_async(self) -> None:
        while not self._stop.is_set():
            await asyncio.to_thread(self._check_quietly)
            await asyncio.sleep(self.interval)

    def _run_thread(self) -> None:
        while not self._stop.is_set():
            self._check_quietly()
            self._stop.wait(self.interval)

    def _check_quietly(self) -> None:
        try:
            self.check()
        except Exception:  # a failing check (AWS down) must not stop the watch
            log.exception("batchkit watchdog: check failed")

    def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    def subscribe(self, callback: Callable[[WatchdogAlert], None]) -> None:
        self._callbacks.append(callback)

    def check(self) -> WatchdogAlert | None:
        """One look (refreshes the tracker, so it calls AWS); kills only when armed."""
        with self._lock:
            return self._check()

    def _check(self) -> WatchdogAlert | None:
        tracker = self.launch.tracker()
        run = self.launch.run()
        silent = run.silent_for()
        silent_s = None if pd.isna(silent) else float(silent.total_seconds())
        # A hung Nextflow that stopped talking: treat it as gone so its jobs read as
        # orphans — only when armed; unarmed, the alert below is all that happens.
        if (
            self.armed
            and silent_s is not None
            and silent_s >= self.silent_after
            and self.launch.returncode is None
            and run.state == "alive"
        ):
            self.launch.declare_dead(f"silent for {silent_s / 60:.0f} min (watchdog)")
        snapshot = tracker.refresh()
        frame = snapshot.frame
        active = killable = 0
        if len(frame) and JobCol.STATUS in frame:
            is_active = frame[JobCol.STATUS].isin(list(JOB_ACTIVE)).fillna(False)
            # Only jobs proven the run's (recorded and agreeing, or by submitted hash): a
            # neighbour in the same work dir is not this run's to alert on (issue #15).
            in_scope = frame[RecCol.IN_SCOPE_BY].isin(["native_id", "hash"]).fillna(False)
            active = int((is_active & in_scope).sum())
            killable = int(frame[RecCol.KILLABLE].fillna(False).astype(bool).sum())
        alert = assess(
            process_exit=self.launch.returncode,
            process_known=True,
            silent_for=silent_s,
            silent_after=self.silent_after,
            active_jobs=active,
            killable=killable,
            armed=self.armed,
        )
        if alert is None:
            return None
        self.alerts.append(alert)
        for callback in list(self._callbacks):
            try:
                callback(alert)
            except Exception:
                log.exception("batchkit watchdog: alert callback failed")
        if self.armed:
            plan = tracker.plan()
            if plan:
                self.kills.append(tracker.kill(plan))
        return alert
