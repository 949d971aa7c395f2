"""The inbound ACD queue: skills, relax times, priority, longest idle, EWT, callbacks."""

from __future__ import annotations

import pytest

from dialer.routing.queue import (
    AcdQueue,
    Announce,
    ConnectCaller,
    DialCallback,
    QueueEntry,
    QueueError,
    QueueRequest,
    SkillNeed,
    parse_request,
)

SKILLS = frozenset({"billing", "sales", "spanish", "tech"})
BILLING = (SkillNeed("billing", 1),)


def queue(**agents: dict[str, int]) -> AcdQueue:
    q = AcdQueue("support", SKILLS)
    for agent_id, skills in agents.items():
        q.agent_login(agent_id, skills)
    return q


def test_given_a_billing_caller_then_a_billing_agent_takes_it_and_after_the_relax_time_anyone() -> None:
    q = queue(generalist={"sales": 5}, biller={"billing": 4})
    q.agent_ready("generalist", 0.0)  # idle longer, but without the skill
    q.enqueue(QueueEntry("c1", 10.0, required=BILLING, relax_required_after=60.0))
    q.enqueue(QueueEntry("c2", 11.0, required=BILLING, relax_required_after=60.0))
    assert q.assign(12.0) == []
    q.agent_ready("biller", 12.0)
    assert q.assign(12.0) == [ConnectCaller("c1", "biller")]
    assert q.next_change_at(12.0) == 71.0
    assert q.assign(70.9) == []
    assert q.assign(71.0) == [ConnectCaller("c2", "generalist")]
    assert q.entries == {}


def test_optional_skills_are_needed_until_relax_after_then_only_rank_agents() -> None:
    q = queue(plain={"billing": 9}, bilingual={"billing": 2, "spanish": 5})
    q.agent_ready("plain", 0.0)
    q.enqueue(QueueEntry("c1", 0.0, required=BILLING, optional=(SkillNeed("spanish"),),
                         relax_after=30.0))
    assert q.assign(29.0) == []
    assert q.assign(30.0) == [ConnectCaller("c1", "plain")]


def test_without_relax_after_optional_skills_only_rank_the_eligible_agents() -> None:
    q = queue(plain={"billing": 5}, bilingual={"billing": 2, "spanish": 5})
    q.agent_ready("plain", 0.0)
    q.agent_ready("bilingual", 5.0)
    q.enqueue(QueueEntry("c1", 6.0, required=BILLING, optional=(SkillNeed("spanish"),)))
    assert q.assign(6.0) == [ConnectCaller("c1", "bilingual")]  # score 7 beats 5


def test_among_agents_with_the_same_skill_score_the_longest_idle_takes_the_call() -> None:
    q = queue(a={"billing": 5}, b={"billing": 5}, c={"billing": 9})
    for agent_id, since in (("a", 5.0), ("b", 2.0)):
        q.agent_ready(agent_id, since)
    q.enqueue(QueueEntry("c1", 6.0, required=BILLING))
    assert q.assign(6.0) == [ConnectCaller("c1", "b")]
    q.agent_ready("c", 7.0)
    q.enqueue(QueueEntry("c2", 7.0, required=BILLING))
    assert q.assign(7.0) == [ConnectCaller("c2", "c")]  # the higher level first


def test_calls_are_taken_by_priority_then_oldest_and_a_rare_skill_does_not_block_the_line() -> None:
    q = queue(a={"billing": 3})
    q.enqueue(QueueEntry("old", 1.0, required=BILLING))
    q.enqueue(QueueEntry("vip", 5.0, priority=9, required=BILLING))
    q.enqueue(QueueEntry("rare", 0.0, priority=20, required=(SkillNeed("tech", 8),)))
    assert [e.id for e in q.ordered()] == ["rare", "vip", "old"]
    q.agent_ready("a", 6.0)
    assert q.assign(6.0) == [ConnectCaller("vip", "a")]
    q.agent_ready("a", 7.0)
    assert q.assign(7.0) == [ConnectCaller("old", "a")]
    assert list(q.entries) == ["rare"]


def test_a_callback_keeps_its_place_and_reserves_the_agent_before_dialing() -> None:
    q = queue(a={"billing": 3})
    q.enqueue(QueueEntry("cb1", 100.0, required=BILLING, callback_number="+15550111"))
    q.enqueue(QueueEntry("live", 150.0, required=BILLING))
    assert q.position("cb1") == 1
    q.agent_ready("a", 200.0)
    assert q.next_assignment(200.0) == DialCallback("cb1", "+15550111", "a")
    assert q.agents["a"].idle_since is None  # reserved: not offered the live call
    assert q.assign(200.0) == []
    # The customer did not answer: the agent is released and the callback goes back in with
    # its original time, ahead of the live caller who came later.
    q.agent_ready("a", 230.0)
    q.agent_busy("a")
    q.enqueue(QueueEntry("cb1", 100.0, required=BILLING, callback_number="+15550111"))
    assert q.position("cb1") == 1
    assert q.position("live") == 2


def test_a_caller_who_hangs_up_leaves_the_queue() -> None:
    q = queue(a={"billing": 3})
    q.enqueue(QueueEntry("c1", 0.0, required=BILLING))
    assert q.remove("c1") is not None
    assert q.remove("c1") is None
    q.agent_ready("a", 1.0)
    assert q.assign(1.0) == []


def test_expected_wait_uses_position_handle_time_and_the_agents_able_to_take_the_call() -> None:
    q = queue(a={"billing": 3}, b={"billing": 3}, s={"sales": 3})
    for seconds in (100.0, 200.0):
        q.observe_handle(seconds)
    for i in range(3):
        q.enqueue(QueueEntry(f"c{i}", float(i), required=BILLING))
    # Third in line, no billing agent free, two able: (2 + 1) x 150 / 2.
    assert q.expected_wait("c2", 10.0) == pytest.approx(225.0)
    assert q.announce("c2", 10.0) == Announce("c2", 3, 225.0)
    q.agent_ready("s", 10.0)  # not able: changes nothing
    assert q.expected_wait("c2", 10.0) == pytest.approx(225.0)


def test_expected_wait_counts_the_wider_agent_pool_after_the_relax_time() -> None:
    q = queue(a={"tech": 3}, **{f"s{i}": {"sales": 1} for i in range(9)})
    q.observe_handle(300.0)
    for i in range(5):
        q.enqueue(QueueEntry(f"c{i}", 0.0, required=(SkillNeed("tech"),),
                             relax_required_after=60.0))
    # Now: 5 x 300 / 1 = 1500 s. After the relax at t = 60: 50 s + 5 x 300 / 10 = 200 s.
    assert q.expected_wait("c4", 10.0) == pytest.approx(200.0)


def test_expected_wait_is_none_when_nobody_could_ever_take_the_call() -> None:
    q = queue(a={"sales": 3})
    q.enqueue(QueueEntry("c1", 0.0, required=BILLING))
    assert q.announce("c1", 5.0) == Announce("c1", 1, None)
    q2 = queue()
    q2.enqueue(QueueEntry("c1", 0.0))
    assert q2.expected_wait("c1", 0.0) is None


def test_expected_wait_is_zero_for_the_head_when_an_able_agent_is_free() -> None:
    q = queue(a={"billing": 3})
    q.agent_ready("a", 0.0)
    q.enqueue(QueueEntry("c1", 0.0, required=BILLING))
    assert q.expected_wait("c1", 0.0) == 0.0


@pytest.mark.parametrize(("entry", "problem"), [
    (QueueEntry("c9", 0.0, required=(SkillNeed("biling"),)),
     "required.biling: unknown skill 'biling' (declared: billing, sales, spanish, tech)"),
    (QueueEntry("c9", 0.0, optional=(SkillNeed("sales", 11),)),
     "optional.sales: skill level 11 is outside 1..10"),
    (QueueEntry("c1", 0.0), "id: 'c1' is already in the queue"),
    (QueueEntry("c9", 0.0, relax_after=-1.0), "relax_after: seconds >= 0 or none, got -1.0"),
    (QueueEntry("c9", float("nan")), "enqueued_at: a time, got nan"),
    (QueueEntry("c9", 0.0, callback_number=" "), "callback_number: empty"),
])
def test_bad_entries_are_refused_and_the_queue_is_unchanged(entry: QueueEntry, problem: str) -> None:
    q = queue(a={"billing": 3})
    q.enqueue(QueueEntry("c1", 0.0, required=BILLING))
    with pytest.raises(QueueError) as info:
        q.enqueue(entry)
    assert info.value.problems == (problem,)
    assert list(q.entries) == ["c1"]
    assert q.position("c1") == 1


def test_bad_agent_skills_and_unknown_ids_are_refused() -> None:
    q = queue(a={"billing": 3})
    with pytest.raises(QueueError, match=r"agents\.b\.skills\.cooking: unknown skill 'cooking'"):
        q.agent_login("b", {"cooking": 3})
    with pytest.raises(QueueError, match="skill level 0 is outside"):
        q.agent_login("a", {"billing": 0})
    assert q.agents["a"].skills == {"billing": 3}
    assert "b" not in q.agents
    with pytest.raises(QueueError, match="agent 'zz' is not logged in"):
        q.agent_ready("zz", 0.0)
    with pytest.raises(QueueError, match="'nope' is not in the queue"):
        q.position("nope")
    with pytest.raises(QueueError, match="handle time"):
        q.observe_handle(-1.0)


def test_an_ivr_queue_step_is_parsed_into_a_request_and_an_entry() -> None:
    request = parse_request({"queue": "billing", "priority": 5, "required": {"billing": 3},
                             "optional": ["spanish"], "relax_after": 30,
                             "relax_required_after": 120}, SKILLS)
    assert request == QueueRequest("billing", 5, (SkillNeed("billing", 3),),
                                   (SkillNeed("spanish", 1),), 30.0, 120.0)
    entry = QueueEntry.from_request(request, "call-7", 1000.0)
    assert entry.needs(1000.0) == (SkillNeed("billing", 3), SkillNeed("spanish", 1))
    assert entry.needs(1030.0) == (SkillNeed("billing", 3),)
    assert entry.needs(1120.0) == ()


def test_a_bad_ivr_queue_step_lists_every_problem_with_its_path() -> None:
    with pytest.raises(QueueError) as info:
        parse_request({"queue": "", "priority": "high", "required": {"biling": 3},
                       "optional": {"sales": 0}, "relax_after": -5, "wait": 1},
                      SKILLS, "flow.nodes.q1")
    assert info.value.problems == (
        "flow.nodes.q1.wait: unknown field (expected one of optional, priority, queue, "
        "relax_after, relax_required_after, required)",
        "flow.nodes.q1.queue: required, the queue's name, got ''",
        "flow.nodes.q1.priority: an integer, got 'high'",
        "flow.nodes.q1.required.biling: unknown skill 'biling' (declared: billing, sales, "
        "spanish, tech)",
        "flow.nodes.q1.optional.sales: skill level 0 is outside 1..10",
        "flow.nodes.q1.relax_after: seconds >= 0, got -5",
    )
