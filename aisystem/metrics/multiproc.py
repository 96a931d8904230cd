"""The directory prometheus-client's multiprocess mode writes to, prepared at start-up.

prometheus-client decides on its first import whether it runs in multiprocess mode: it does
when ``PROMETHEUS_MULTIPROC_DIR`` is in the environment. ``settings.py`` therefore calls
``multiproc_configure`` before anything imports the library (django-q2 imports it when the
apps load), and this module imports it only inside functions that run later.

* Unset, the directory is ``<AISYSTEM_DATA_DIR>/prometheus``; set to a path, that path;
  set to an empty string, multiprocess mode is off and each process keeps its own metrics
  (its scrape shows that process alone). The value is put into the environment, so every
  process this one starts (tests start servers) writes to the same directory.
* **A run starts from zero.** Every process holds a shared ``flock`` on ``<dir>/.lock`` for
  as long as it lives; the kernel drops it when the process dies, even on ``kill -9``, and
  forked children (django-q2's workers) hold their parent's. A process that finds no other
  holder (its non-blocking exclusive lock succeeds) is the first of a run: it deletes the
  metric files the previous run left, then holds the shared lock like the others. Only files
  named as prometheus-client names them (``counter_<pid>.db``, ``gauge_livesum_<pid>.db``…)
  are deleted, so a directory pointed at by mistake loses nothing else. Whoever is wiping
  holds the exclusive lock, and a process takes the shared one before it creates any metric,
  so nobody's files are deleted under it.
* **Gauges of dead processes.** ``aisystem_websocket_connections`` is a "livesum" gauge:
  only live processes count. A process removes its own live-gauge files when it exits
  (``atexit``; django-q2 does the same for the workers it reaps), and ``live_gauges_prune``
  (run at every scrape) removes those of processes that died without it. Liveness is
  ``kill(pid, 0)``, so the directory must belong to one host (one PID namespace).
* Counters and histograms of a process that died stay: their counts happened.

A directory that cannot be created or written stops start-up with ``ImproperlyConfigured``
naming the variable, the path and the fix.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCK_NAME = ".lock"
# The names prometheus-client gives its files: <type>_<pid>.db, gauges <gauge_mode>_<pid>.db.
METRIC_FILE = re.compile(r"^(?:counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")
LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


@dataclass(frozen=True)
class MultiprocDir:
    """A directory this process has joined. ``first`` is True when this process found no
    other holder and so wiped the previous run's files (``wiped`` of them)."""

    path: Path
    lock_fd: int
    first: bool
    wiped: int

    def release(self) -> None:
        """Let go of the lock (tests; a process otherwise holds it until it ends)."""
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


_joined: MultiprocDir | None = None


def multiproc_configure(raw: str | None, *, default: Path) -> Path | None:
    """Settle the directory from ``raw`` (the variable's value, None when unset), join it and
    put it into the environment; None when multiprocess mode is off. Idempotent within a
    process. Raises ImproperlyConfigured when the directory is unusable, or when
    prometheus-client was imported before this ran in a different mode."""
    global _joined
    path = _resolve(raw, default)
    if path is None:
        os.environ.pop(ENV, None)
        _check_not_imported_in_other_mode(multiprocess=False)
        return None
    os.environ[ENV] = str(path)
    _check_not_imported_in_other_mode(multiprocess=True)
    if _joined is None or _joined.path != path:
        _joined = multiproc_dir_join(path)
        atexit.register(_mark_dead_at_exit, os.getpid(), path)
    return path


def _resolve(raw: str | None, default: Path) -> Path | None:
    if raw is None:
        return default.resolve()
    if not raw.strip():
        return None
    return Path(raw.strip()).expanduser().resolve()


def _check_not_imported_in_other_mode(*, multiprocess: bool) -> None:
    values = sys.modules.get("prometheus_client.values")
    if values is None:
        return
    if bool(getattr(values.ValueClass, "_multiprocess", False)) != multiprocess:
        raise ImproperlyConfigured(
            f"prometheus_client was imported before the settings set {ENV}, so its metrics "
            f"would be {'per process' if multiprocess else 'written to files'}. Set {ENV} in "
            "the environment of the process instead."
        )


def multiproc_dir_join(path: Path) -> MultiprocDir:
    """Create ``path`` if needed (mode 0700), check that it is writable, take the run's
    shared lock, and wipe the previous run's files if this process is the first."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # a real write, true for root as for anyone
            pass
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise _unusable(path, error) from None
    try:
        first = _try_exclusive(fd)
        wiped = _wipe(path) if first else 0
        if not first:
            # A process that reused a dead one's pid must not inherit its live gauges.
            _live_gauges_remove(path, os.getpid())
        fcntl.flock(fd, fcntl.LOCK_SH)  # converts an exclusive lock; blocks while one wipes
    except OSError as error:
        os.close(fd)
        raise _unusable(path, error) from None
    return MultiprocDir(path=path, lock_fd=fd, first=first, wiped=wiped)


def _unusable(path: Path, error: OSError) -> ImproperlyConfigured:
    reason = error.strerror or type(error).__name__
    return ImproperlyConfigured(
        f"{ENV}={path}: cannot use this directory for the metrics of every process ({reason}). "
        f"Make it writable by this user, point {ENV} at another directory, or set {ENV} to an "
        "empty value to keep each process's metrics to itself."
    )


def _try_exclusive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wipe(path: Path) -> int:
    wiped = 0
    for entry in path.iterdir():
        if METRIC_FILE.match(entry.name):
            entry.unlink(missing_ok=True)
            wiped += 1
    return wiped


def _live_gauges_remove(path: Path, pid: int) -> None:
    for entry in path.glob(f"gauge_live*_{pid}.db"):
        entry.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_gauges_prune(path: Path) -> list[int]:
    """Remove the live-gauge files of processes that are gone; returns their pids."""
    from prometheus_client.multiprocess import mark_process_dead

    dead = set()
    for entry in path.iterdir():
        match = LIVE_GAUGE_FILE.match(entry.name)
        if match and not pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # no annotations
    return sorted(dead)


def _mark_dead_at_exit(pid: int, path: Path) -> None:
    if os.getpid() != pid:  # a forked child inherited the handler: not its files
        return
    from prometheus_client.multiprocess import mark_process_dead

    with contextlib.suppress(OSError):
        mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # no annotations
