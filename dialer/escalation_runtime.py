"""The ARI side of escalation and supervision (decisions: `dialer.core.escalation`).

Each `CampaignRunner` has one `EscalationRuntime`. It carries out the desk's commands in the
runner's order (moves between bridges are single REST calls; a channel added to a bridge
leaves the one it was in, and adding it to the bridge it is in is a no-op: both observed on
Asterisk 22), then reports the stage done (`EscalationDone`, `MonitorStarted`) or failed, and
turns the agent phone's feature codes into requests.

Ids: a call on hold waits in a holding bridge `hold-<ARI app>-<call id>-<random>` (music on
hold; a new id for each hold: Asterisk refuses a bridge id for a moment after its bridge is
destroyed, 409 "already exists", seen on Asterisk 22);
a supervisor's snoop channel is `snoop-<supervisor>-<random>`, in Stasis with the arguments
`snoop,<mode>,<spy>,<whisper>,<call id>` (what ARI shows as the channel's dialplan app data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from dialer.ari import Bridge, StasisStart
from dialer.core.escalation import (
    COMMAND_STAGE,
    CancelConsult,
    EndHold,
    Escalate,
    EscalationCommand,
    EscalationDone,
    EscalationFailed,
    EscalationStep,
    HandOver,
    JoinCall,
    MonitorFailed,
    MonitorMode,
    MonitorStarted,
    ReturnPhone,
    StartConsult,
    StartMonitor,
    StopMonitor,
    TransferCall,
)
from dialer.errors import AriError, DialerError

if TYPE_CHECKING:
    from dialer.runner import CampaignRunner

log = logging.getLogger(__name__)

SNOOP_START = 5.0  # seconds for a snoop channel to enter Stasis
#: The snoop of each mode: (whose channel, spy, whisper). Listening spies on both directions of
#: the customer's channel (the supervisor hears customer and agent); whispering spies on the
#: agent's phone channel and speaks out to it only (the customer does not hear it).
SNOOPS: dict[MonitorMode, tuple[str, str, str]] = {
    MonitorMode.LISTEN: ("customer", "both", "none"),
    MonitorMode.WHISPER: ("agent", "both", "out"),
}


def hold_bridge(app: str, call_id: str) -> str:
    """The start of the id of every holding bridge of the call (`EscalationRuntime.holds`)."""
    return f"hold-{app}-{call_id}"


class EscalationRuntime:
    def __init__(self, runner: CampaignRunner, agent_bridge: Callable[[str, str], str]) -> None:
        self.runner = runner
        self._agent_bridge = agent_bridge
        self.snoops: dict[str, str] = {}  # supervisor id -> their snoop channel
        self.holds: dict[str, str] = {}  # call id -> its holding bridge
        # Who has the supervisor skill among logged-in agents (set by the Dialer: profiles).
        self.supervisors: Callable[[], frozenset[str]] = frozenset

    # ------------------------------------------------------------------------- requests
    def phone_key(self, agent_id: str, digit: str, now: float) -> bool:
        """A key from the agent's phone: True if it belonged to a feature code (and was acted
        on), False for a plain digit (a disposition code)."""
        feature = self.runner.desk.keys.press(agent_id, digit, now)
        if feature is None:
            return False
        if feature in ("cold", "warm"):
            self.runner.post(Escalate(now, agent_id, feature, None, self.supervisors(),
                                      via="phone"))
        elif feature:
            self.runner.post(EscalationStep(now, agent_id, feature, via="phone"))
        return True

    async def recover(self, bridges: Mapping[str, Bridge]) -> None:
        """After a restart: remove the holding bridges of this campaign's calls (their calls
        are closed by the runner's recovery; snoop channels end with the channels they spy
        on, which recovery hangs up)."""
        prefix = hold_bridge(self.runner.ari.app, f"c-{self.runner.spec.id}-")
        for bridge_id in bridges:
            if bridge_id.startswith(prefix):
                await self.runner.ari.rest.destroy_bridge(bridge_id)

    # ------------------------------------------------------------------------- commands
    def bridge(self, agent_id: str) -> str:
        return self._agent_bridge(self.runner.ari.app, agent_id)

    def phone(self, agent_id: str) -> str | None:
        return self.runner.agent_channels.get(agent_id)

    async def execute(self, command: EscalationCommand) -> None:
        """Carry out one command; a failure is reported to the desk, never raised."""
        try:
            await self._execute(command)
        except (AriError, DialerError) as exc:
            log.warning("campaign %s: %s failed: %s", self.runner.spec.id,
                        type(command).__name__, exc)
            now = self.runner.clock()
            stage = COMMAND_STAGE.get(type(command))
            match command:
                case StartConsult(call_id=cid, agent_id=aid, supervisor_id=sid):
                    await self._undo_consult(cid, aid, sid)
                case StartMonitor(supervisor_id=sid):
                    with contextlib.suppress(AriError):
                        await self._stop_monitor(sid)
                    self.runner.post(MonitorFailed(now, sid, str(exc)))
                case _:
                    pass
            if stage is not None:
                cid = getattr(command, "call_id", "")
                self.runner.post(EscalationFailed(now, cid, stage, str(exc)))

    async def _execute(self, command: EscalationCommand) -> None:
        rest = self.runner.ari.rest
        phone: str | None
        match command:
            case TransferCall(call_id=cid, supervisor_id=sid):
                await rest.add_channel(self.bridge(sid), cid)
            case StartConsult(call_id=cid, agent_id=aid, supervisor_id=sid):
                consulting = self._phone_of(sid)
                await self._hold(cid)
                await rest.add_channel(self.bridge(aid), consulting)
            case JoinCall(call_id=cid, agent_id=aid):
                await rest.add_channel(self.bridge(aid), cid)
                await self._end_hold(cid)
            case HandOver(call_id=cid, supervisor_id=sid):
                await rest.add_channel(self.bridge(sid), cid)
                phone = self.phone(sid)
                if phone is not None:
                    await rest.add_channel(self.bridge(sid), phone)
                await self._end_hold(cid)
            case CancelConsult(call_id=cid, agent_id=aid, supervisor_id=sid,
                               bring_back=bring_back):
                phone = self.phone(sid)
                if phone is not None:
                    await rest.add_channel(self.bridge(sid), phone)
                if bring_back:
                    await rest.add_channel(self.bridge(aid), cid)
                await self._end_hold(cid)
            case ReturnPhone(supervisor_id=sid):
                phone = self.phone(sid)
                if phone is not None:
                    await rest.add_channel(self.bridge(sid), phone)
            case EndHold(call_id=cid):
                await self._end_hold(cid)
            case StartMonitor():
                await self._start_monitor(command)
                self.runner.post(MonitorStarted(self.runner.clock(), command.supervisor_id))
                return
            case StopMonitor(supervisor_id=sid, mode=mode):
                if mode is MonitorMode.BARGE:
                    phone = self.phone(sid)
                    if phone is not None:
                        await rest.add_channel(self.bridge(sid), phone)
                else:
                    await self._stop_monitor(sid)
                return
        if isinstance(command, TransferCall | StartConsult | JoinCall | HandOver | CancelConsult):
            self.runner.post(EscalationDone(self.runner.clock(), command.call_id,
                                            COMMAND_STAGE[type(command)]))

    def _phone_of(self, agent_id: str) -> str:
        phone = self.phone(agent_id)
        if phone is None:
            raise DialerError(f"agent {agent_id} has no phone channel up")
        return phone

    async def _hold(self, call_id: str) -> None:
        """The customer into their own holding bridge, with music on hold if Asterisk has it
        (a missing music class leaves them in silence, still held)."""
        rest = self.runner.ari.rest
        await self._end_hold(call_id)
        bridge = f"{hold_bridge(self.runner.ari.app, call_id)}-{uuid.uuid4().hex[:6]}"
        self.holds[call_id] = bridge
        await rest.create_bridge(bridge, bridge_type="holding", name=f"hold {call_id}")
        await rest.add_channel(bridge, call_id)
        try:
            await rest.start_moh(bridge)
        except AriError as exc:
            log.warning("call %s: no music on hold: %s", call_id, exc)

    async def _undo_consult(self, call_id: str, agent_id: str, supervisor_id: str) -> None:
        """Best effort after a failed consult: the customer back with the agent, the
        supervisor's phone home."""
        rest = self.runner.ari.rest
        for bridge, channel in ((self.bridge(agent_id), call_id),
                                (self.bridge(supervisor_id), self.phone(supervisor_id))):
            if channel is None:
                continue
            try:
                await rest.add_channel(bridge, channel)
            except AriError as exc:
                log.warning("call %s: undoing the consult: %s", call_id, exc)
        try:
            await self._end_hold(call_id)
        except AriError as exc:
            log.warning("call %s: undoing the consult: %s", call_id, exc)

    async def _end_hold(self, call_id: str) -> None:
        bridge = self.holds.pop(call_id, None)
        if bridge is not None:
            await self.runner.ari.rest.destroy_bridge(bridge)

    async def _start_monitor(self, command: StartMonitor) -> None:
        ari, sid = self.runner.ari, command.supervisor_id
        if command.mode is MonitorMode.BARGE:
            await ari.rest.add_channel(self.bridge(command.agent_id), self._phone_of(sid))
            return
        self._phone_of(sid)  # their phone must be up to hear anything
        whose, spy, whisper = SNOOPS[command.mode]
        target = command.call_id if whose == "customer" else self._phone_of(command.agent_id)
        snoop = f"snoop-{sid}-{uuid.uuid4().hex[:8]}"
        self.snoops[sid] = snoop
        entered = ari.expect(StasisStart, lambda e: e.channel.id == snoop)
        try:
            await ari.rest.snoop(target, snoop_id=snoop, app=ari.app, spy=spy, whisper=whisper,
                                 app_args=("snoop", command.mode.value, spy, whisper,
                                           command.call_id))
            try:
                await asyncio.wait_for(asyncio.shield(entered), SNOOP_START)
            except TimeoutError:
                raise DialerError(f"snoop channel {snoop} did not start within "
                                  f"{SNOOP_START:g} s") from None
        finally:
            entered.cancel()
        await ari.rest.add_channel(self.bridge(sid), snoop)

    async def _stop_monitor(self, supervisor_id: str) -> None:
        snoop = self.snoops.pop(supervisor_id, None)
        if snoop is not None:
            await self.runner.ari.rest.hangup(snoop)
