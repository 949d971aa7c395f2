"""The live flow set: load, validate, swap atomically, pin per call, watch for changes.

Hot-reload semantics (IVR_FORMAT.md):

* A snapshot is an immutable `FlowSet` (all flows and shared files together) plus its
  recordings, copied into the media directory under the snapshot's version so that
  overwriting a WAV on disk never changes what a pinned call hears.
* A reload parses and validates the *whole* directory. Only an error-free set goes live, in
  one assignment; a failed reload keeps the last good set and reports its errors (log, metric
  `dialer_ivr_reload_failures_total`, `status()` for the API).
* Calls pin the snapshot current when they start (`pin`) and release it when they end, so
  `status()` can say which versions still have calls draining.
* Triggers: `reload()` (the API and SIGHUP call it) and `watch()`, which polls the files'
  sizes and modification times and reloads once they have been quiet for `debounce` seconds
  (editor swap files and hidden files are ignored).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dialer.ivr.diagnostics import Diagnostic
from dialer.ivr.loader import load_flowset
from dialer.ivr.model import FlowSet
from dialer.ivr.simulate import recordings_of
from dialer.metrics import Metrics

log = logging.getLogger(__name__)

_IGNORED_SUFFIXES = (".swp", ".swx", ".tmp", "~", ".bak")


@dataclass(frozen=True, slots=True)
class Snapshot:
    flowset: FlowSet
    recordings: frozenset[tuple[str, str]]
    loaded_at: float

    @property
    def version(self) -> str:
        return self.flowset.version


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    version: str | None  # the live version after the reload
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]
    changed: bool  # a new version went live


@dataclass(slots=True)
class FlowLibrary:
    directory: Path
    media_dir: Path | None  # where pinned recordings are copied (None: play them in place)
    metrics: Metrics
    clock: Callable[[], float] = time.time
    current: Snapshot | None = None
    last_errors: tuple[Diagnostic, ...] = ()
    last_warnings: tuple[Diagnostic, ...] = ()
    last_attempt_at: float | None = None
    pins: Counter[str] = field(default_factory=Counter)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # ------------------------------------------------------------------ loading
    def reload(self) -> ReloadResult:
        """Load and validate the directory; swap it in if it has no errors. Never raises on
        bad files (they become diagnostics)."""
        self.last_attempt_at = self.clock()
        flowset, diags = load_flowset(self.directory)
        errors = tuple(d for d in diags if d.is_error)
        warnings = tuple(d for d in diags if not d.is_error)
        self.last_errors, self.last_warnings = errors, warnings
        self.metrics.ivr_flowset_errors.set(len(errors))
        if flowset is None or errors:
            self.metrics.ivr_reload_failures.inc()
            live = self.current.version if self.current else None
            log.error("IVR flows in %s have %d error(s); %s", self.directory, len(errors),
                      f"version {live} stays live" if live else "no flow set is live")
            for diag in errors:
                log.error("%s", diag.format_text())
            return ReloadResult(False, live, errors, warnings, False)
        if self.current is not None and self.current.version == flowset.version:
            return ReloadResult(True, flowset.version, (), warnings, False)
        try:
            self._pin_prompts(flowset)
        except OSError as exc:
            self.metrics.ivr_reload_failures.inc()
            log.error("IVR flows version %s: cannot copy its recordings into %s: %s",
                      flowset.version, self.media_dir, exc)
            live = self.current.version if self.current else None
            return ReloadResult(False, live, (), warnings, False)
        self.current = Snapshot(flowset, recordings_of(flowset), self.clock())
        self.metrics.ivr_reloads.inc()
        log.info("IVR flows version %s live: %s", flowset.version,
                 ", ".join(sorted(flowset.flows)) or "(no flows)")
        for diag in warnings:
            log.warning("%s", diag.format_text())
        return ReloadResult(True, flowset.version, (), warnings, True)

    def prompt_dir(self, version: str) -> Path:
        """Where the recordings of `version` are played from (relative paths under it)."""
        if self.media_dir is None:
            return self.directory
        return self.media_dir / "snap" / version

    def _pin_prompts(self, flowset: FlowSet) -> None:
        source = Path(flowset.root) / "prompts"
        if self.media_dir is None or not source.is_dir():
            return
        target = self.prompt_dir(flowset.version) / "prompts"
        if target.is_dir():
            return
        staging = target.parent / ".staging-prompts"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(source, staging)
        os.replace(staging, target)

    # ------------------------------------------------------------------ pinning
    def pin(self) -> Snapshot | None:
        snap = self.current
        if snap is not None:
            self.pins[snap.version] += 1
        return snap

    def release(self, snap: Snapshot) -> None:
        self.pins[snap.version] -= 1
        if self.pins[snap.version] <= 0:
            del self.pins[snap.version]

    def status(self) -> dict[str, object]:
        live = self.current
        return {
            "directory": str(self.directory),
            "live": None if live is None else {
                "version": live.version, "loaded_at": live.loaded_at,
                "flows": sorted(live.flowset.flows),
                "routes": {r.number: r.flow for r in live.flowset.routes},
                "calls": self.pins.get(live.version, 0),
            },
            "draining": [{"version": v, "calls": n} for v, n in sorted(self.pins.items())
                         if live is None or v != live.version],
            "last_reload_at": self.last_attempt_at,
            "errors": [d.to_json() for d in self.last_errors],
            "warnings": [d.to_json() for d in self.last_warnings],
        }

    # ------------------------------------------------------------------ watching
    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        found: list[tuple[str, int, int]] = []
        for base, dirs, files in os.walk(self.directory):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tests")
            for name in files:
                if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                    continue
                path = os.path.join(base, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                found.append((path, st.st_size, st.st_mtime_ns))
        return tuple(sorted(found))

    async def watch(self, interval: float = 0.5, debounce: float = 0.5) -> None:
        """Reload whenever the files change and then stay quiet for `debounce` seconds."""
        seen = await asyncio.to_thread(self._signature)
        while True:
            await asyncio.sleep(interval)
            now_sig = await asyncio.to_thread(self._signature)
            if now_sig == seen:
                continue
            while True:  # debounce: wait until the editor has finished writing
                await asyncio.sleep(debounce)
                settled = await asyncio.to_thread(self._signature)
                if settled == now_sig:
                    break
                now_sig = settled
            seen = now_sig
            log.info("IVR flow files changed; reloading")
            async with self._lock:
                await asyncio.to_thread(self.reload)

    async def reload_async(self) -> ReloadResult:
        async with self._lock:
            return await asyncio.to_thread(self.reload)
