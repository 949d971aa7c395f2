"""What IVR flows ask of the rest of the dialer, backed by the store and the running campaigns.

* `callback` nodes create a lead in the campaign that takes IVR callbacks (`ivr.callback_campaign`
  in the config, default ``callbacks``): high priority, not before the time the caller chose,
  with the queue and the IVR call id as attributes (so the agent sees why the call is made).
* opt-out keys put the number on the do-not-call list: the campaign's list for an outbound call
  (`CallInfo.config["campaign"]`), the global list for an inbound caller.
* queue nodes go to the agent side (`AgentDesk`); without one, queues have no agents.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from dialer.core.callbacks import callback_lead
from dialer.errors import DialerError
from dialer.ivr import engine as e
from dialer.ivr.runtime import CallSession, IvrCallRecord
from dialer.store.base import Store

log = logging.getLogger(__name__)


class AgentDesk(Protocol):
    async def enqueue(self, session: CallSession, command: e.Enqueue) -> None: ...

    async def leave_queue(self, session: CallSession, command: e.LeaveQueue) -> None: ...

    def enqueue_callback(self, session: CallSession, command: e.CreateCallbackLead) -> str: ...


class DialerHooks:
    def __init__(self, store: Store, clock: Callable[[], float], *,
                 callback_campaign: str = "callbacks", desk: AgentDesk | None = None,
                 default_region: str = "US") -> None:
        self.store = store
        self.clock = clock
        self.callback_campaign = callback_campaign
        self.desk = desk
        self.default_region = default_region

    async def enqueue(self, session: CallSession, command: e.Enqueue) -> None:
        if self.desk is None:
            session.post(e.QueueResult("no_agents"))
            return
        await self.desk.enqueue(session, command)

    async def leave_queue(self, session: CallSession, command: e.LeaveQueue) -> None:
        if self.desk is not None:
            await self.desk.leave_queue(session, command)

    async def create_callback(self, session: CallSession,
                              command: e.CreateCallbackLead) -> str:
        if command.keep_position and self.desk is not None:
            return self.desk.enqueue_callback(session, command)
        campaign = self.callback_campaign
        if await self.store.get_campaign(campaign) is None:
            raise DialerError(f"no campaign '{campaign}' takes IVR callbacks "
                              "(create it, or set ivr.callback_campaign)")
        # The same lead as a callback request from another channel (dialer.core.callbacks).
        lead = callback_lead(command.number, campaign=campaign, region=self.default_region,
                             earliest=command.earliest.timestamp(),
                             key=f"cb-{uuid.uuid4().hex[:8]}",
                             attributes={"source": "ivr-callback", "queue": command.queue or "",
                                         "ivr_call": command.call_id, "ivr_flow": command.flow})
        added, _ = await self.store.add_leads(campaign, [lead])
        if not added:
            raise DialerError(f"{lead.phone} already has a pending call in '{campaign}'")
        log.info("IVR call %s: callback lead %s for %s in %s", command.call_id, lead.id,
                 lead.phone, campaign)
        return lead.id

    async def add_dnc(self, session: CallSession, number: str, reason: str) -> None:
        campaign = session.info.config.get("campaign")
        await self.store.dnc_add(number, campaign if isinstance(campaign, str) else None)
        log.info("IVR call %s: %s added to the %s do-not-call list (%s)", session.call_id,
                 number, f"'{campaign}'" if campaign else "global", reason)

    async def safe_harbor(self, session: CallSession, command: e.SafeHarbor) -> None:
        return None  # outbound abandonment is counted by the campaign engine

    async def call_ended(self, record: IvrCallRecord) -> None:
        return None
