"""Every Redis key the dialer uses, in one place.

All keys start with a prefix (default ``dialer:``) so several call centres can share one Redis;
choose prefixes that are not prefixes of each other (``cc1:``, ``cc2:``). After the prefix comes
the kind of key, then the ids, so an id containing ``:`` can never make two kinds of key collide
(the only key with two variable parts ends in an integer priority).

===============================  ======  =====================================================
key (after the prefix)           type    contents
===============================  ======  =====================================================
``campaigns``                    SET     ids of every saved campaign
``campaign:{cid}``               STRING  the CampaignSpec as JSON (`dialer.store.codec`)
``status:{cid}``                 STRING  created | running | paused | stopped
``pacer:{cid}``                  STRING  the predictive pacer's online estimates as JSON
                                         (``{"saved_at": ..., "pacer": ...}``, written by the
                                         campaign runner every minute and when it stops)
``leads:{cid}``                  ZSET    every lead id of the campaign, score 0 (so id order)
``state:{state}:{cid}``          ZSET    lead ids in that LeadState, score 0; ``in_progress``
                                         holds exactly the leads with an ``in_flight`` key
``levels:{cid}``                 ZSET    priority levels (member and score = the priority)
                                         that may have members in ``ready`` or ``locked``;
                                         empty levels are dropped by the claim script
``ready:{cid}:{priority}``       ZSET    READY leads not in flight, score = next_at; a lead is
                                         here when lockout_until <= next_at or its lockout has
                                         passed (moved from ``locked`` by the claim script)
``locked:{cid}:{priority}``      ZSET    READY leads with lockout_until > next_at, score =
                                         lockout_until (UK 72-hour rule)
``locked_next_at:{cid}``         HASH    lead id -> next_at of the members of ``locked``
``lead:{lid}``                   STRING  the Lead as JSON, as last written by add/finish/
                                         reschedule (a claim does not rewrite it)
``in_flight:{lid}``              STRING  the attempt id that claimed the lead; while it exists
                                         the lead's state is IN_PROGRESS whatever the JSON says
``lead_attempts:{lid}``          ZSET    attempt ids of the lead, score = originated_at
``attempt:{aid}``                STRING  the Attempt as JSON
``attempts:{cid}``               ZSET    attempt ids of the campaign, score = originated_at
``open_attempts:{cid}``          SET     attempt ids last saved without ended_at
``abandoned:{cid}``              HASH    day bucket -> abandoned attempts ended that day
``humans:{cid}``                 HASH    day bucket -> attempts answered by a live human
``machines:{cid}``               HASH    day bucket -> attempts ended as answering machines (AMD)
``dnc``                          SET     numbers nobody may dial (global do-not-call list)
``dnc:{cid}``                    SET     numbers this campaign may not dial
``agents``                       SET     ids of every saved agent
``agent:{aid}``                  HASH    the agent's fields (the state machine is the core's)
===============================  ======  =====================================================

The status of a lead follows arq's rule, derived from which keys exist: it is IN_PROGRESS
exactly while ``in_flight:{lid}`` exists, so a crash between claim and finish leaves evidence
that a restarted dialer reconciles against Asterisk. The Lua claim script builds ``ready``,
``locked``, ``lead`` and ``in_flight`` keys from the prefixes given here (`Keys.ready_prefix`
etc.), which is fine for a single Redis but would need hash tags for Redis Cluster.
"""

from __future__ import annotations

from dialer.core.model import LeadState

DEFAULT_PREFIX = "dialer:"


class Keys:
    """Builds the key names for one prefix."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix:
            raise ValueError("the Redis key prefix must not be empty")
        self.prefix = prefix

    # campaigns
    def campaigns(self) -> str:
        return f"{self.prefix}campaigns"

    def campaign(self, campaign_id: str) -> str:
        return f"{self.prefix}campaign:{campaign_id}"

    def status(self, campaign_id: str) -> str:
        return f"{self.prefix}status:{campaign_id}"

    def pacer(self, campaign_id: str) -> str:
        return f"{self.prefix}pacer:{campaign_id}"

    # lead indexes
    def leads(self, campaign_id: str) -> str:
        return f"{self.prefix}leads:{campaign_id}"

    def state(self, state: LeadState, campaign_id: str) -> str:
        return f"{self.prefix}state:{state.value}:{campaign_id}"

    def levels(self, campaign_id: str) -> str:
        return f"{self.prefix}levels:{campaign_id}"

    def ready_prefix(self, campaign_id: str) -> str:
        return f"{self.prefix}ready:{campaign_id}:"

    def ready(self, campaign_id: str, priority: int) -> str:
        return f"{self.ready_prefix(campaign_id)}{priority}"

    def locked_prefix(self, campaign_id: str) -> str:
        return f"{self.prefix}locked:{campaign_id}:"

    def locked(self, campaign_id: str, priority: int) -> str:
        return f"{self.locked_prefix(campaign_id)}{priority}"

    def locked_next_at(self, campaign_id: str) -> str:
        return f"{self.prefix}locked_next_at:{campaign_id}"

    # leads
    def lead_prefix(self) -> str:
        return f"{self.prefix}lead:"

    def lead(self, lead_id: str) -> str:
        return f"{self.lead_prefix()}{lead_id}"

    def in_flight_prefix(self) -> str:
        return f"{self.prefix}in_flight:"

    def in_flight(self, lead_id: str) -> str:
        return f"{self.in_flight_prefix()}{lead_id}"

    def lead_attempts(self, lead_id: str) -> str:
        return f"{self.prefix}lead_attempts:{lead_id}"

    # attempts
    def attempt(self, attempt_id: str) -> str:
        return f"{self.prefix}attempt:{attempt_id}"

    def attempts(self, campaign_id: str) -> str:
        return f"{self.prefix}attempts:{campaign_id}"

    def open_attempts(self, campaign_id: str) -> str:
        return f"{self.prefix}open_attempts:{campaign_id}"

    def abandoned(self, campaign_id: str) -> str:
        return f"{self.prefix}abandoned:{campaign_id}"

    def humans(self, campaign_id: str) -> str:
        return f"{self.prefix}humans:{campaign_id}"

    def machines(self, campaign_id: str) -> str:
        return f"{self.prefix}machines:{campaign_id}"

    # do-not-call
    def dnc(self, campaign_id: str | None = None) -> str:
        return f"{self.prefix}dnc" if campaign_id is None else f"{self.prefix}dnc:{campaign_id}"

    # agents
    def agents(self) -> str:
        return f"{self.prefix}agents"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{agent_id}"

    def pattern(self) -> str:
        """A SCAN MATCH pattern for every key under this prefix (tests and tooling)."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}*"
