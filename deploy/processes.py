"""Detached development servers (the Kafka broker, the test API server): their pid files
and a clean stop; and SIGTERM for the processes that start them (``stop_on_sigterm``)."""

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import ClassVar


class Detached:
    """A server started detached: its pid file and log live in ``state``."""

    state: Path
    process_name: ClassVar[str]

    @property
    def pid_file(self) -> Path:
        return self.state / f"{self.process_name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state / f"{self.process_name}.log"

    def pid(self) -> int | None:
        """The running server's pid, or None (a stale pid file is ignored)."""
        return running_pid(self.pid_file)


def running_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process runs (a stale file is ignored)."""
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop(pid_file: Path, timeout: float = 30) -> None:
    """SIGTERM the process of ``pid_file``, SIGKILL it only if it hangs; forget the file."""
    pid = running_pid(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.2)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; reaps it first if it is our exited child (else a zombie)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop_on_sigterm() -> None:
    """From now on SIGTERM ends this process as Ctrl-C does: ``SystemExit(143)`` in the main
    thread, so ``finally`` blocks and context managers run and the brokers, API servers,
    workers and temporary folders it started go with it (Python's default for SIGTERM is
    to die on the spot, leaving them behind)."""

    def terminate(signum: int, frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
