"""Builders and a tiny driver for the interpreter tests (no asyncio, no mocks: events in,
commands out)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from dialer.ivr import engine as e
from dialer.ivr import model as m

T0 = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)  # Wednesday 10:00 in New York


def P(*texts: str, lang: str = m.ANY_LANGUAGE) -> m.Prompt:  # noqa: N802 (reads like a literal)
    return m.Prompt(variants={lang: tuple(m.Tts(text=t) for t in texts)})


def PL(**per_language: str) -> m.Prompt:  # noqa: N802
    return m.Prompt(variants={lang: (m.Tts(text=t),) for lang, t in per_language.items()})


def T(  # noqa: N802
    goto: str | None,
    *,
    set: Iterable[tuple[str, str]] = (),
    say: m.Prompt | None = None,
    returns: str | None = None,
) -> m.Transition:
    return m.Transition(goto=goto, set=tuple(set), say=say, returns=returns)


def opts(**keys: str) -> tuple[m.DtmfOption, ...]:
    """opts(k1="a", k12="b", star="repeat") -> options "1", "12", "*"."""
    names = {"star": "*", "pound": "#"}
    return tuple(m.DtmfOption(key=names.get(k, k.removeprefix("k")), target=T(v)) for k, v in keys.items())


def bye(node_id: str = "bye", text: str = "Goodbye.", disposition: str | None = None) -> m.HangupNode:
    return m.HangupNode(id=node_id, type="hangup", prompt=P(text), disposition=disposition)


def flow(
    *nodes: m.Node,
    start: str | None = None,
    flow_id: str = "f",
    on_error: str | None = "oops",
    variables: Mapping[str, m.Variable] | None = None,
    hotkeys: Mapping[str, str] | None = None,
    languages: tuple[str, ...] = ("en",),
    fallback: m.LanguageFallback = "error",
    input_defaults: m.InputDefaults | None = None,
    max_node_visits: int = 50,
    max_ivr_time: float = 600.0,
    kind: m.FlowKind = "inbound",
) -> m.Flow:
    all_nodes = {n.id: n for n in nodes}
    if on_error is not None and on_error not in all_nodes:
        all_nodes[on_error] = bye(on_error, "Technical difficulties.", "error")
    defaults = m.Defaults(
        on_error=T(on_error) if on_error else None,
        language_fallback=fallback,
        input=input_defaults
        or m.InputDefaults(
            timeout=5.0, inter_digit_timeout=2.0, max_no_input=2, max_no_match=2, barge_in=True
        ),
        max_node_visits=max_node_visits,
        max_ivr_time=max_ivr_time,
        tts_voice={"en": "en-us"},
    )
    return m.Flow(
        id=flow_id,
        file=f"{flow_id}.yaml",
        kind=kind,
        languages=languages,
        defaults=defaults,
        hotkeys=tuple(m.DtmfOption(key=k, target=T(v)) for k, v in (hotkeys or {}).items()),
        variables=dict(variables or {}),
        start=start or nodes[0].id,
        nodes=all_nodes,
    )


def flowset(*flows: m.Flow, **kw: Any) -> m.FlowSet:
    return m.FlowSet(root=".", version="v1", flows={f.id: f for f in flows}, **kw)


class Call:
    """Drives a FlowRun and keeps the world's view: timers, playback, all commands."""

    def __init__(self, fs: m.FlowSet | m.Flow, flow_id: str | None = None, **kw: Any) -> None:
        if isinstance(fs, m.Flow):
            fs = flowset(fs)
        call = kw.pop("call", None) or e.CallInfo(
            call_id="c1", caller_number="+15551230000", **kw.pop("info", {})
        )
        self.run = e.FlowRun(fs, flow_id or next(iter(fs.flows)), call, **kw)
        self.now = T0
        self.commands: list[e.Command] = []
        self.timers: dict[str, float] = {}
        self.playing: e.Play | None = None
        self.last = self._took(self.run.start(self.now))

    def _took(self, cmds: list[e.Command]) -> list[e.Command]:
        for c in cmds:
            match c:
                case e.StartTimer():
                    self.timers[c.key] = c.seconds
                case e.CancelTimer():
                    self.timers.pop(c.key, None)
                case e.Play():
                    self.playing = c
                case e.StopPlayback():
                    if self.playing and self.playing.playback_id == c.playback_id:
                        self.playing = None
                case _:
                    pass
        self.commands.extend(cmds)
        return cmds

    def send(self, event: e.Event, after: float = 0.0) -> list[e.Command]:
        self.now += dt.timedelta(seconds=after)
        self.last = self._took(self.run.handle(event, self.now))
        return self.last

    def digits(self, keys: str) -> list[e.Command]:
        out: list[e.Command] = []
        for k in keys:
            out += self.send(e.Digit(k), 0.2)
        return out

    def prompt_done(self) -> list[e.Command]:
        assert self.playing is not None, "nothing is playing"
        pid, self.playing = self.playing.playback_id, None
        return self.send(e.PromptFinished(pid), 1.0)

    def fire(self, kind: str) -> list[e.Command]:
        keys = [k for k in self.timers if (k == kind or k.rsplit("-", 1)[-1].rstrip("0123456789") == kind)]
        assert keys, f"no {kind} timer among {sorted(self.timers)}"
        seconds = self.timers.pop(keys[0])
        return self.send(e.TimerFired(keys[0]), seconds)

    def of(self, kind: type[Any], cmds: list[e.Command] | None = None) -> list[Any]:
        return [c for c in (self.commands if cmds is None else cmds) if isinstance(c, kind)]

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.of(e.Play)]

    @property
    def path(self) -> list[str]:
        return list(self.run.path)

    @property
    def ended(self) -> e.Ended | None:
        return self.run.ended
