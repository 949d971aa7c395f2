"""Callback requests from other channels: `POST /callbacks`.

A web form, a chat bot or a social page's backend posts what the customer asked for (number,
preferred time, topic; optionally name, notes, region, channel) with a bearer token of the
narrow `intake` role (`dialer.auth.INTAKE`; admins and supervisors may post too). The browser
never holds the token: the form posts to its own backend, which adds it. The request becomes
a high-priority lead in the topic's campaign, tagged with the topic's skill, dialed from the
preferred time on (`dialer.core.callbacks` has the rules).

Every check runs before anything is written, so a refused request changes nothing:
400 for a body that is not a request (`missing_field`, `bad_field`, `unknown_field`), 422 for
a request that cannot be honoured (`unknown_topic` with the known topics, `bad_number`,
`bad_region`, `bad_preferred_time`, `preferred_time_past`, `preferred_time_too_far`), 409 when
the number is on the campaign's or the global do-not-call list (`dnc`) or the topic's campaign
does not exist (`campaign_missing`). 201 with the lead id, campaign, skill and next_at.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Final

from aiohttp import web

from dialer.api import ApiError, read_mapping
from dialer.auth import PRINCIPAL
from dialer.core.callbacks import CallbackError, CallbackRules, callback_lead, parse_callback_request
from dialer.store.base import Store

log = logging.getLogger(__name__)

#: CallbackError code -> HTTP status (the only place these are mapped).
STATUS: Final = {
    "missing_field": 400, "bad_field": 400, "unknown_field": 400,
    "unknown_topic": 422, "bad_number": 422, "bad_region": 422, "bad_preferred_time": 422,
    "preferred_time_past": 422, "preferred_time_too_far": 422,
}


def _key() -> str:
    return f"cbr-{uuid.uuid4().hex[:8]}"


class IntakeApi:
    def __init__(self, store: Store, rules: CallbackRules, clock: Callable[[], float],
                 key: Callable[[], str] = _key) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.key = key  # the unique part of each callback lead's id

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/callbacks", self.request_callback)

    async def request_callback(self, request: web.Request) -> web.Response:
        body = await read_mapping(request)
        now = self.clock()
        try:
            wanted = parse_callback_request(body, self.rules, now)
            spec = await self.store.get_campaign(wanted.campaign)
            if spec is None:
                raise ApiError(409, "campaign_missing",
                               f"topic '{wanted.topic}' sends callbacks to campaign "
                               f"'{wanted.campaign}', which does not exist (create it, or "
                               "change callbacks.topics)")
            attributes = wanted.attributes()
            principal = request.get(PRINCIPAL)
            if principal is not None:
                attributes["requested_by"] = principal.name  # which form or bot asked
            lead = callback_lead(wanted.number, campaign=spec.id,
                                 region=wanted.region or spec.default_region,
                                 earliest=wanted.earliest, key=self.key(),
                                 attributes=attributes)
        except CallbackError as exc:
            raise ApiError(STATUS.get(exc.code, 400), exc.code, exc.message) from None
        if await self.store.dnc_contains(lead.phone, spec.id):
            raise ApiError(409, "dnc", f"{lead.phone} is on the do-not-call list (of campaign "
                                       f"'{spec.id}' or the global one): no callback")
        if await self.store.get_lead(lead.id) is not None:  # 32 random bits: all but never
            raise ApiError(409, "conflict", f"lead {lead.id} exists already; send the request "
                                            "again")
        await self.store.add_leads(spec.id, [lead])
        log.info("callback request: lead %s in %s for topic %s (skill %s) from %s", lead.id,
                 spec.id, wanted.topic, wanted.skill, attributes.get("requested_by", "?"))
        return web.json_response({"lead_id": lead.id, "campaign": spec.id, "topic": wanted.topic,
                                  "skill": wanted.skill, "phone": lead.phone,
                                  "next_at": lead.next_at}, status=201)
