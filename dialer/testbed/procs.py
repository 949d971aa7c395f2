"""Processes the testbed starts, tracked by PID files, stopped by PID.

Each process runs in its own session with its output in `<state>/<name>.log`; `<name>.pid`
records the PID and `<name>.cmd` the command line we started, so we never signal a process
that merely reused the PID.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dialer.errors import TestbedError


@dataclass(frozen=True, slots=True)
class Managed:
    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The PID if our process is alive, else None (stale files are removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            stat = Path(f"/proc/{pid}/stat").read_text()
            expected = (self.state_dir / f"{self.name}.cmd").read_text().split("\0")
        except OSError:
            self.pid_file.unlink(missing_ok=True)
            return None
        state = stat.rsplit(")", 1)[1].split()[0]
        # The executable, not the command line: servers rewrite their argv (redis does). While
        # a launcher (unshare, sh, chroot) is still exec'ing towards the program, it counts too.
        if state == "Z" or exe not in expected:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, argv: list[str], step: str, runs: str | None = None) -> int:
        """Start `argv`; `runs` is the executable it finally execs into (default argv[0])."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Detach through a short-lived sh: the program is re-parented to init, so it outlives
        # this process (testbed up and down may run in different processes) and is never a
        # child we would have to reap. `$!` is its PID: a background simple command is exec'd.
        launcher = '"$@" </dev/null >>"$0" 2>&1 & echo $!'
        try:
            out = subprocess.run(["sh", "-c", launcher, str(self.log_file), *argv],
                                 capture_output=True, text=True, start_new_session=True,
                                 check=True, timeout=30)
            pid = int(out.stdout.strip())
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise TestbedError(step, f"cannot run {argv[0]}: {exc}") from None
        chain = [argv[0], "sh", "chroot", runs] if runs else [argv[0], "sh"]
        exes = [os.path.realpath(shutil.which(p) or p) for p in chain if p]
        (self.state_dir / f"{self.name}.cmd").write_text("\0".join(exes))
        self.pid_file.write_text(str(pid))
        return pid

    def exited(self) -> bool:
        return self.pid() is None

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`. True if a process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 25) -> str:
        return tail(self.log_file, lines)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def port_in_use(port: int, kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def wait_until(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    """Wait for a readiness probe of an external process (start-up only, never in the runtime)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
