"""The local testbed: a real Asterisk 22 (Debian sid, in a cached mmdebstrap root), a real
redis-server and sipp peers, all on loopback ports that avoid the standard ones.

`up()` runs named steps; when one fails it raises `TestbedError` naming the step with the tail
of the relevant log. `down()` stops what `up()` started, by PID. Everything is idempotent: `up`
on a running testbed leaves it running, `down` on a stopped one does nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dialer.config import Config
from dialer.errors import ConfigError, TestbedError
from dialer.testbed.procs import Managed, port_in_use, tail, wait_until
from dialer.testbed.render import CONF_SRC, conf_values, render_dir

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
ETC_IN_ROOT = "/etc/dialer-asterisk"
ROOT_MARKER = ".dialer-testbed-root"
ROOT_PACKAGES = "asterisk,asterisk-modules,asterisk-core-sounds-en-gsm"
HOST_PACKAGES = {"mmdebstrap": "mmdebstrap", "redis-server": "redis-server", "sipp": "sip-tester"}


@dataclass(frozen=True, slots=True)
class SippPeer:
    name: str
    scenario: str
    port_key: str


SIPP_PEERS = (
    SippPeer("answer", "uas_answer.xml", "sipp_answer_port"),
    SippPeer("busy", "uas_busy.xml", "sipp_busy_port"),
    SippPeer("ring", "uas_ring.xml", "sipp_ring_port"),
    SippPeer("reject", "uas_reject.xml", "sipp_reject_port"),
    SippPeer("agents", "uas_answer.xml", "sipp_agents_port"),
    SippPeer("agent-dtmf", "uas_agent_dtmf.xml", "sipp_agent_dtmf_port"),
)


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    pid: int | None
    detail: str


class Testbed:
    __test__ = False

    def __init__(self, config: Config, report: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.tb = config.testbed
        self.state = self.tb.state_dir
        self.root = self.tb.cache_dir / f"asterisk-root-{self.tb.debian_suite}"
        self.report = report or (lambda msg: log.info("%s", msg))
        self.asterisk = Managed("asterisk", self.state)
        self.redis = Managed("redis", self.state)
        self.sipps = {p.name: Managed(f"sipp-{p.name}", self.state) for p in SIPP_PEERS}

    # ------------------------------------------------------------------ steps
    @contextmanager
    def step(self, name: str, log_file: Path | None = None) -> Iterator[None]:
        self.report(f"testbed: {name}")
        try:
            yield
        except TestbedError:
            raise
        except (OSError, subprocess.SubprocessError, ConfigError) as exc:
            raise TestbedError(name, str(exc), tail(log_file) if log_file else "") from None

    def up(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        with self.step("install host packages", self.state / "apt.log"):
            self._ensure_host_packages()
        with self.step("provision the Asterisk root", self.state / "mmdebstrap.log"):
            self._ensure_root()
        with self.step("render asterisk_conf"):
            self._render()
        with self.step("start redis-server", self.redis.log_file):
            self._start_redis()
        with self.step("start Asterisk", self.asterisk.log_file):
            self._start_asterisk()
        with self.step("start sipp peers"):
            self._start_sipps()
        with self.step("wait for ARI", self.asterisk.log_file):
            self._wait_for_ari()
        self.report(f"testbed: up (ARI {self.config.ari.url}, Redis {self.config.redis.url})")

    def down(self) -> list[str]:
        stopped = []
        for managed in [*self.sipps.values(), self.asterisk, self.redis]:
            if managed.stop():
                stopped.append(managed.name)
        return stopped

    def status(self) -> list[ComponentStatus]:
        rows = [ComponentStatus("asterisk root", None, self._root_problem() or f"ok ({self.root})")]
        for managed in [self.asterisk, self.redis, *self.sipps.values()]:
            pid = managed.pid()
            rows.append(ComponentStatus(managed.name, pid, "running" if pid else "stopped"))
        return rows

    # ------------------------------------------------------------ host packages
    def _ensure_host_packages(self) -> None:
        missing = [pkg for binary, pkg in HOST_PACKAGES.items() if shutil.which(binary) is None]
        if not missing:
            return
        if os.geteuid() != 0:
            raise TestbedError(
                "install host packages",
                f"missing {', '.join(missing)}; run as root or: apt-get install {' '.join(missing)}",
            )
        apt_log = self.state / "apt.log"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        opt = ["-o", "Acquire::Check-Valid-Until=false"]
        with apt_log.open("ab") as out:
            for argv in (["apt-get", *opt, "update"],
                         ["apt-get", *opt, "install", "-y", "--no-install-recommends", *missing]):
                self.report(f"testbed:   {' '.join(argv)}")
                if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  check=False).returncode != 0:
                    raise TestbedError("install host packages", f"{' '.join(argv)} failed",
                                       tail(apt_log))
        # apt may have started a system redis on 6379 through its maintainer scripts; that one
        # is not ours and is left alone (we use our own port).

    # --------------------------------------------------------------- the root
    def _root_problem(self) -> str | None:
        """Why the cached root is unusable, or None if it is fine."""
        if not (self.root / ROOT_MARKER).exists():
            return "missing" if not self.root.exists() else "incomplete (no marker)"
        asterisk = self.root / "usr/sbin/asterisk"
        if not os.access(asterisk, os.X_OK):
            return "broken (no usr/sbin/asterisk)"
        if not (self.root / "usr/lib/x86_64-linux-gnu/asterisk/modules/res_ari.so").exists() and \
                not any(self.root.glob("usr/lib/*/asterisk/modules/res_ari.so")):
            return "broken (no res_ari module)"
        return None

    def _ensure_root(self) -> None:
        problem = self._root_problem()
        if problem is None:
            self.report(f"testbed:   reusing {self.root}")
            return
        if self.asterisk.pid() is not None:
            raise TestbedError("provision the Asterisk root",
                               f"root is {problem} but Asterisk still runs from it; run 'down'")
        self.report(f"testbed:   Asterisk root {problem}: building with mmdebstrap (~1 min)")
        self.tb.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.root.with_name(self.root.name + ".tmp")
        for stale in (tmp, self.root):
            if stale.exists():
                # --one-file-system: never follow into something mounted inside the root.
                subprocess.run(["rm", "-rf", "--one-file-system", str(stale)], check=True)
        mm_log = self.state / "mmdebstrap.log"
        argv = [
            "mmdebstrap", "--variant=apt", f"--include={ROOT_PACKAGES}",
            '--aptopt=Acquire::Check-Valid-Until "false"',
            self.tb.debian_suite, str(tmp),
        ]
        with mm_log.open("wb") as out:
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        if code != 0:
            raise TestbedError("provision the Asterisk root", f"mmdebstrap exited {code}",
                               tail(mm_log))
        version = subprocess.run(["chroot", str(tmp), "/usr/sbin/asterisk", "-V"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        if not version.startswith("Asterisk 2"):
            raise TestbedError("provision the Asterisk root",
                               f"unexpected 'asterisk -V' output: {version!r}", tail(mm_log))
        for sub in ("run/asterisk", "var/lib/asterisk", "var/log/asterisk",
                    "var/spool/asterisk/recording"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        (tmp / ROOT_MARKER).write_text(version + "\n")
        tmp.rename(self.root)
        self.report(f"testbed:   built {version}")

    def _render(self) -> None:
        etc = self.root / ETC_IN_ROOT.lstrip("/")
        if etc.exists():
            shutil.rmtree(etc)
        render_dir(CONF_SRC, etc, conf_values(self.config, ETC_IN_ROOT), testbed=True)

    # -------------------------------------------------------------- processes
    def _check_port(self, step: str, port: int, kind: int, what: str, owner: Managed) -> None:
        if owner.pid() is None and port_in_use(port, kind):
            proto = "TCP" if kind == socket.SOCK_STREAM else "UDP"
            raise TestbedError(step, f"{proto} port {port} ({what}) is already in use by another "
                                     "program; stop it or change the port in the dialer's config")

    def _start_redis(self) -> None:
        step = "start redis-server"
        port = self.config.redis.port
        if self.redis.pid() is not None:
            return
        self._check_port(step, port, socket.SOCK_STREAM, "redis", self.redis)
        data = self.state / "redis"
        data.mkdir(exist_ok=True)
        redis_bin = shutil.which("redis-server") or "redis-server"
        self.redis.start([redis_bin, "--port", str(port), "--bind", "127.0.0.1",
                          "--dir", str(data), "--appendonly", "yes", "--save", "",
                          "--daemonize", "no"], step)
        if not wait_until(lambda: port_in_use(port) or self.redis.exited(), 20):
            raise TestbedError(step, "redis-server did not open its port", self.redis.log_tail())
        if self.redis.exited():
            raise TestbedError(step, "redis-server exited", self.redis.log_tail())

    def asterisk_cli(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-C",
             f"{ETC_IN_ROOT}/asterisk.conf", "-rx", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def _start_asterisk(self) -> None:
        step = "start Asterisk"
        if self.asterisk.pid() is not None:
            self.asterisk_cli("core reload")
            return
        self._check_port(step, self.config.ari.port, socket.SOCK_STREAM, "Asterisk HTTP/ARI",
                         self.asterisk)
        self._check_port(step, self.config.asterisk.sip_port, socket.SOCK_DGRAM, "Asterisk SIP",
                         self.asterisk)
        messages = self.root / "var/log/asterisk/messages.log"
        messages.unlink(missing_ok=True)
        (self.root / "run/asterisk/asterisk.ctl").unlink(missing_ok=True)
        # A private mount namespace: /proc is mounted for Asterisk alone and vanishes with it,
        # so nothing is left mounted on the host if the process dies.
        script = ('mount -t proc proc "$0/proc" && exec chroot "$0" /usr/sbin/asterisk '
                  f'-C {ETC_IN_ROOT}/asterisk.conf -f -n')
        self.asterisk.start(["unshare", "--mount", "--propagation", "private", "--",
                             "sh", "-c", script, str(self.root)],
                            step, runs=str(self.root / "usr/sbin/asterisk"))
        ctl = self.root / "run/asterisk/asterisk.ctl"
        wait_until(lambda: ctl.exists() or self.asterisk.exited(), 60)
        booted = self.asterisk_cli("core waitfullybooted", timeout=90)
        if booted.returncode != 0 or self.asterisk.exited():
            raise TestbedError(step, "Asterisk did not finish booting",
                               (self.asterisk.log_tail() + "\n" + tail(messages)).strip())

    def _start_sipps(self) -> None:
        sipp = shutil.which("sipp") or "sipp"
        for index, peer in enumerate(SIPP_PEERS):
            managed = self.sipps[peer.name]
            if managed.pid() is not None:
                continue
            port = int(getattr(self.tb, peer.port_key))
            step = f"start sipp peer '{peer.name}'"
            self._check_port(step, port, socket.SOCK_DGRAM, f"sipp {peer.name}", managed)
            media_port = self.config.asterisk.rtp_end + 100 + 10 * index
            managed.start([sipp, "-sf", str(SIPP_DIR / peer.scenario), "-i", "127.0.0.1",
                           "-p", str(port), "-mp", str(media_port), "-nostdin",
                           "-f", "3600", "-trace_err",
                           "-error_file", str(self.state / f"sipp-{peer.name}-errors.log")],
                          step)
            opened = wait_until(
                lambda p=port, m=managed: port_in_use(p, socket.SOCK_DGRAM) or m.exited(), 20)
            if not opened:
                raise TestbedError(step, "sipp did not open its port", managed.log_tail())
            if managed.exited():
                raise TestbedError(step, "sipp exited", managed.log_tail())

    def _wait_for_ari(self) -> None:
        ari = self.config.ari
        token = base64.b64encode(f"{ari.username}:{ari.password.value}".encode()).decode()
        request = urllib.request.Request(f"{ari.url}/ari/asterisk/info",
                                         headers={"Authorization": f"Basic {token}"})
        last = "no answer"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    info = json.load(resp)
                    self.report(f"testbed:   ARI answers: Asterisk "
                                f"{info.get('system', {}).get('version', '?')}")
                    return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    raise TestbedError("wait for ARI", "ARI rejected the configured user and "
                                       "password (401)") from None
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
            if self.asterisk.exited():
                break
            time.sleep(0.2)
        raise TestbedError("wait for ARI", f"ARI did not answer at {ari.url}: {last}",
                           self.asterisk.log_tail())
