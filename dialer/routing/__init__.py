"""Routing: agent profiles (skills, attributes), agent-lead matching for outbound campaigns,
and the inbound ACD queue. Pure core: no I/O, no clock reads (`now` is passed in).

    profiles.py   AgentProfile, the profiles file (agents.yaml), RoutingError
    matching.py   MatchRules, score, best_agent, lead selection for predictive dialing
    grouped.py    GroupedPacer: the campaign's pacer asked once per group of leads
    queue.py      AcdQueue: skills with relax times, priority, longest idle, EWT, callbacks

Experiment (matched vs unmatched predictive dialing): `python -m dialer.sim.matching`.
"""
