"""The Redis store: the dialer's shared truth (key schema in `dialer.store.keys`).

Atomicity, arq-style:

* a claim is one Lua script (`_CLAIM`): it walks the campaign's priority levels from the top,
  moves leads whose lockout has passed from ``locked`` to ``ready``, takes the first ``ready``
  lead due by ``now`` and marks it in flight, all in one step, so no lead is handed out twice;
* every other change to a lead (add/merge, finish, reschedule) reads the lead and its in-flight
  mark under WATCH and writes record and indexes in one MULTI, retrying if a claim (or another
  writer) touched them in between;
* saving an attempt is one Lua script (`_SAVE_ATTEMPT`), so an attempt is counted into the
  abandonment counters exactly once, when it is first saved ended.

Lead JSON is only ever written by Python (`dialer.store.codec`); the scripts never rewrite it,
which keeps one encoder. The client may or may not decode responses; both work.
"""

from __future__ import annotations

import functools
import inspect
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Final, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialer.core.model import Attempt, AttemptResult, CampaignSpec, Lead, LeadState
from dialer.store.base import (
    CAMPAIGN_STATUSES,
    HUMAN_RESULTS,
    DayBucket,
    Refusal,
    StoreCorrupt,
    StoreError,
    StoreRefused,
    StoreUnavailable,
    UnknownRecord,
    check_finished,
    check_new_lead,
    check_status,
    is_locked,
    merge_lead,
    rescheduled,
    utc_day,
)
from dialer.store.codec import decode, encode
from dialer.store.keys import DEFAULT_PREFIX, Keys

T = TypeVar("T")

CHUNK: Final = 500  # leads per WATCH/MULTI when adding; keeps each transaction short
MAX_RETRIES: Final = 100  # WATCH conflicts before giving up (only under pathological contention)

# Moves the leads of one priority level whose lockout has passed (due by `now`) from `locked`
# to `ready`, each at its pending next_at (hash `pending`) or its lockout time. Shared by the
# scripts below that read `ready`.
_PROMOTE = """
local function promote(ready, locked, pending, now)
  local due = redis.call('ZRANGEBYSCORE', locked, '-inf', now, 'WITHSCORES')
  for i = 1, #due, 2 do
    local id = due[i]
    local next_at = redis.call('HGET', pending, id) or due[i + 1]
    redis.call('ZADD', ready, next_at, id)
    redis.call('HDEL', pending, id)
  end
  if #due > 0 then
    redis.call('ZREMRANGEBYSCORE', locked, '-inf', now)
  end
end
"""

# KEYS: levels, locked_next_at, state:ready, state:in_progress
# ARGV: now, attempt id, ready prefix, locked prefix, lead prefix, in_flight prefix
#       [, global dnc, campaign dnc: then a third element, 1 if the lead's phone is on either]
_CLAIM = _PROMOTE + """
local levels = redis.call('ZREVRANGE', KEYS[1], 0, -1)
for _, level in ipairs(levels) do
  local ready = ARGV[3] .. level
  local locked = ARGV[4] .. level
  promote(ready, locked, KEYS[2], ARGV[1])
  local id = redis.call('ZRANGEBYSCORE', ready, '-inf', ARGV[1], 'LIMIT', 0, 1)[1]
  if id then
    redis.call('ZREM', ready, id)
  end
  if redis.call('ZCARD', ready) == 0 and redis.call('ZCARD', locked) == 0 then
    redis.call('ZREM', KEYS[1], level)
  end
  if id then
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[4], 0, id)
    redis.call('SET', ARGV[6] .. id, ARGV[2])
    local lead = redis.call('GET', ARGV[5] .. id)
    if ARGV[8] and lead then
      local phone = cjson.decode(lead)['phone']
      local listed = type(phone) == 'string' and (redis.call('SISMEMBER', ARGV[7], phone) == 1
                                               or redis.call('SISMEMBER', ARGV[8], phone) == 1)
      return {id, lead, listed and 1 or 0}
    end
    return {id, lead}
  end
end
return false
"""

# Moves the leads whose lockout has passed from ``locked`` to ``ready`` (as _CLAIM does),
# then lists the first ARGV[5] ready leads due by ``now`` in claim order, each as
# {id, {name, value, ...}} with the lead's values of the attribute names ARGV[6..].
# KEYS: levels, locked_next_at; ARGV: now, ready prefix, locked prefix, lead prefix, limit,
# attribute names...
_SCAN = _PROMOTE + """
local out = {}
local limit = tonumber(ARGV[5])
if limit <= 0 then return out end
local wanted = {}
for j = 6, #ARGV do wanted[ARGV[j]] = true end
for _, level in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local ready = ARGV[2] .. level
  local locked = ARGV[3] .. level
  promote(ready, locked, KEYS[2], ARGV[1])
  local ids = redis.call('ZRANGEBYSCORE', ready, '-inf', ARGV[1], 'LIMIT', 0, limit - #out)
  for _, id in ipairs(ids) do
    local values = {}
    local raw = redis.call('GET', ARGV[4] .. id)
    if raw then
      local ok, lead = pcall(cjson.decode, raw)
      if ok and type(lead) == 'table' and type(lead['attributes']) == 'table' then
        for _, pair in ipairs(lead['attributes']) do
          if type(pair) == 'table' and wanted[pair[1]] and type(pair[2]) == 'string' then
            values[#values + 1] = pair[1]
            values[#values + 1] = pair[2]
          end
        end
      end
    end
    out[#out + 1] = {id, values}
  end
  if #out >= limit then return out end
end
return out
"""

# Claims one named lead if it is still in a ready index due by ``now``; replies as _CLAIM.
# KEYS: levels, state:ready, state:in_progress
# ARGV: now, attempt id, lead id, ready prefix, lead prefix, in_flight prefix, global dnc,
#       campaign dnc
_CLAIM_LISTED = """
local id = ARGV[3]
if redis.call('EXISTS', ARGV[6] .. id) == 1 then return false end
for _, level in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local ready = ARGV[4] .. level
  local score = redis.call('ZSCORE', ready, id)
  if score then
    if tonumber(score) > tonumber(ARGV[1]) then return false end
    redis.call('ZREM', ready, id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], 0, id)
    redis.call('SET', ARGV[6] .. id, ARGV[2])
    local lead = redis.call('GET', ARGV[5] .. id)
    local listed = false
    if lead then
      local phone = cjson.decode(lead)['phone']
      listed = type(phone) == 'string' and (redis.call('SISMEMBER', ARGV[7], phone) == 1
                                             or redis.call('SISMEMBER', ARGV[8], phone) == 1)
    end
    return {id, lead, listed and 1 or 0}
  end
end
return false
"""

# KEYS: levels; ARGV: now, ready prefix, locked prefix
_DIALABLE = """
local n = 0
for _, level in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('ZCOUNT', ARGV[2] .. level, '-inf', ARGV[1])
        + redis.call('ZCOUNT', ARGV[3] .. level, '-inf', ARGV[1])
end
return n
"""

# KEYS: attempt, lead_attempts, attempts, open_attempts, abandoned, humans, machines
# ARGV: id, json, originated_at, ended (1/0), day bucket, abandoned (1/0), human (1/0),
#       machine (1/0)
_SAVE_ATTEMPT = """
local existed = redis.call('EXISTS', KEYS[1]) == 1
local was_open = redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if ARGV[4] == '0' then
  redis.call('SADD', KEYS[4], ARGV[1])
  return 0
end
redis.call('SREM', KEYS[4], ARGV[1])
if existed and not was_open then
  return 0
end
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[5], ARGV[5], 1) end
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[6], ARGV[5], 1) end
if ARGV[8] == '1' then redis.call('HINCRBY', KEYS[7], ARGV[5], 1) end
return 1
"""


# finish_lead as one script, for `save_batch`: the same writes as `_queue_writes` does for
# (stored lead, new lead, not in flight), with the stored lead read here.
# KEYS: lead, in_flight, leads, state:<each of the 4 states> (KEYS[4..7]), levels,
#       ready:<new priority>, locked:<new priority>, locked_next_at, state:<new state> (one of
#       KEYS[4..7]: its type is checked there)
# ARGV: lead id, json, campaign id, ready prefix, locked prefix, new state, new priority,
#       next_at, lockout_until, locked (1/0)
# Returns ok, or why nothing was written: unknown, corrupt, campaign, or (from `wrong_type`,
# defined by `_SAVE_BATCH`) 'error: WRONGTYPE ...'.
_FINISH = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 'unknown' end
local ok, old = pcall(cjson.decode, raw)
if not ok or type(old) ~= 'table' then return 'corrupt' end
if old['campaign_id'] ~= ARGV[3] then return 'campaign' end
local id = ARGV[1]
local queued = {}
if type(old['priority']) == 'number' then
  local level = string.format('%d', old['priority'])
  queued = {ARGV[4] .. level, ARGV[5] .. level}
end
local bad = wrong_type(KEYS, {[3] = 'zset', [4] = 'zset', [5] = 'zset', [6] = 'zset',
  [7] = 'zset', [8] = 'zset', [9] = 'zset', [10] = 'zset', [11] = 'hash'})
  or wrong_type(queued, {'zset', 'zset'})
if bad then return bad end
for i = 4, 7 do redis.call('ZREM', KEYS[i], id) end
for _, key in ipairs(queued) do redis.call('ZREM', key, id) end
redis.call('HDEL', KEYS[11], id)
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('ZADD', KEYS[3], 0, id)
redis.call('ZADD', KEYS[12], 0, id)
if ARGV[6] == 'ready' then
  redis.call('ZADD', KEYS[8], ARGV[7], ARGV[7])
  if ARGV[10] == '1' then
    redis.call('ZADD', KEYS[10], ARGV[9], id)
    redis.call('HSET', KEYS[11], id, ARGV[8])
  else
    redis.call('ZADD', KEYS[9], ARGV[8], id)
  end
end
return 'ok'
"""
# `save_batch` as one script (atomic like MULTI/EXEC, but one command to send and one reply to
# read, however many records): each record runs `_SAVE_ATTEMPT`, `_FINISH` or the agent writes
# below, as a function of its own KEYS and ARGV (the parameters shadow the script's globals).
# ARGV[1]: the number of records n; ARGV[2 .. 1 + 3n]: per record its kind (a: attempt,
# l: lead, g: agent), its key count and its argument count; then every record's arguments, in
# order. KEYS: every record's keys, in order. An agent: KEYS agent, agents; ARGV agent id, then
# field, value, ... Returns one reply per record (a lead's: ok or why it was refused).
# A record one of whose keys holds the wrong type is not written at all: each record checks its
# keys' types before its first write (`wrong_type`; a key found right once is not asked again in
# the same run: the records write each key as the type it is checked for) and replies
# 'error: WRONGTYPE ...', and the records after it are still written. Another error in a
# record (pcall) replies 'error: ' and Redis's message; that record may be written in part
# (the counters of `_SAVE_ATTEMPT` come last: a day bucket that is not an integer). Out of
# memory aborts the whole script, which has then written nothing (Redis refuses a script's
# writes for memory only before its first).
_SAVE_BATCH = f"""
local checked = {{}}
local function wrong_type(keys, want)
  for i, t in pairs(want) do
    local key = keys[i]
    if checked[key] ~= t then
      local have = redis.call('TYPE', key)['ok']
      if have ~= 'none' and have ~= t then
        return 'error: WRONGTYPE ' .. key .. ' holds a ' .. have .. ', not a ' .. t
      end
      checked[key] = t
    end
  end
  return nil
end
local function save_attempt(KEYS, ARGV)
  local bad = wrong_type(KEYS, {{'string', 'zset', 'zset', 'set', 'hash', 'hash', 'hash'}})
  if bad then return bad end
{_SAVE_ATTEMPT}
end
local function finish(KEYS, ARGV)
{_FINISH}
end
local function save_agent(KEYS, ARGV)
  local bad = wrong_type(KEYS, {{[2] = 'set'}})
  if bad then return bad end
  redis.call('DEL', KEYS[1])
  if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
local run = {{a = save_attempt, l = finish, g = save_agent}}
local n = tonumber(ARGV[1])
local k, a = 1, 2 + 3 * n
local out = {{}}
for i = 1, n do
  local at = 2 + 3 * (i - 1)
  local nk, na = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local ok, reply = pcall(run[ARGV[at]], {{unpack(KEYS, k, k + nk - 1)}},
                         {{unpack(ARGV, a, a + na - 1)}})
  if not ok then
    if type(reply) == 'table' then reply = reply['err'] end
    reply = tostring(reply)
    if string.sub(reply, 1, 3) == 'OOM' then return redis.error_reply(reply) end
    reply = 'error: ' .. reply
  end
  out[i] = reply
  k, a = k + nk, a + na
end
return out
"""
_FINISH_REFUSALS: Final = {
    "unknown": "the lead is not stored",
    "corrupt": "the stored lead is not readable JSON",
    "campaign": "the stored lead belongs to another campaign",
}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise StoreError(f"unexpected reply from Redis: {value!r}")


def _script_error(reply: object) -> str | None:
    """Redis's message if a `_SAVE_BATCH` record's reply says its writes were refused."""
    if isinstance(reply, bytes | str):
        text = _text(reply)
        if text.startswith("error: "):
            return f"Redis refused it: {text.removeprefix('error: ')}"
    return None


def _raise_refused(refused: Sequence[Refusal]) -> None:
    """The single-record writes: a record `save_batch` refused is an error, not a result."""
    if refused:
        raise StoreRefused(str(refused[0]))


def _opt_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _texts(values: object) -> list[str]:
    if not isinstance(values, list | set | tuple):
        raise StoreError(f"unexpected reply from Redis: {values!r}")
    return [_text(v) for v in values]


def _score(t: float) -> str:
    """A float as Redis reads it back exactly."""
    return repr(float(t))


def _begin(pipe: Pipeline) -> None:
    """Start the MULTI block of a WATCHed pipeline."""
    pipe.multi()  # type: ignore[no-untyped-call]  # unannotated in redis-py


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


_C = TypeVar("_C")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _store_errors(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """The method with Redis's own errors turned into the store's: StoreUnavailable when Redis
    cannot be reached or does not answer in time (the callers log it and go on: the writer
    keeps the campaign's later records, the API answers 503), StoreRefused when it refuses a
    command (the API answers 500)."""
    @functools.wraps(method)
    async def translated(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"Redis does not answer: {exc}") from None
        except RedisError as exc:
            raise StoreRefused(f"Redis refused a command: {exc}") from None
    return translated


def _translate_errors(cls: type[_C]) -> type[_C]:
    """`_store_errors` on every public coroutine method of `cls`."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _store_errors(member))
    return cls


@_translate_errors
class RedisStore:
    def __init__(self, redis: aioredis.Redis, prefix: str = DEFAULT_PREFIX, *,
                 day_bucket: DayBucket = utc_day) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.day_bucket = day_bucket
        self._claim = redis.register_script(_CLAIM)
        self._dialable = redis.register_script(_DIALABLE)
        self._save_batch = redis.register_script(_SAVE_BATCH)

    # campaigns

    async def save_campaign(self, spec: CampaignSpec) -> None:
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(k.campaign(spec.id), encode(spec))
            pipe.sadd(k.campaigns(), spec.id)
            pipe.set(k.status(spec.id), "created", nx=True)
            await pipe.execute()

    async def get_campaign(self, campaign_id: str) -> CampaignSpec | None:
        key = self.keys.campaign(campaign_id)
        raw = _opt_text(await self.redis.get(key))
        return None if raw is None else self._decode_campaign(key, raw, campaign_id)

    async def list_campaigns(self) -> list[CampaignSpec]:
        ids = sorted(_texts(await self.redis.smembers(self.keys.campaigns())))
        if not ids:
            return []
        keys = [self.keys.campaign(cid) for cid in ids]
        raws = await self.redis.mget(keys)
        return [self._decode_campaign(key, _text(raw), cid)
                for cid, key, raw in zip(ids, keys, raws, strict=True) if raw is not None]

    async def set_campaign_status(self, campaign_id: str, status: str) -> None:
        check_status(status)
        if not await self.redis.exists(self.keys.campaign(campaign_id)):
            raise UnknownRecord(f"campaign {campaign_id!r} is not stored")
        await self.redis.set(self.keys.status(campaign_id), status)

    async def get_campaign_status(self, campaign_id: str) -> str | None:
        key = self.keys.status(campaign_id)
        status = _opt_text(await self.redis.get(key))
        if status is not None and status not in CAMPAIGN_STATUSES:
            raise StoreCorrupt(key, f"unknown campaign status {status!r}")
        return status

    async def save_pacer_state(self, campaign_id: str, state: str) -> None:
        await self.redis.set(self.keys.pacer(campaign_id), state)

    async def load_pacer_state(self, campaign_id: str) -> str | None:
        return _opt_text(await self.redis.get(self.keys.pacer(campaign_id)))

    async def running_campaigns(self) -> list[str]:
        ids = sorted(_texts(await self.redis.smembers(self.keys.campaigns())))
        if not ids:
            return []
        statuses = await self.redis.mget([self.keys.status(cid) for cid in ids])
        return [cid for cid, status in zip(ids, statuses, strict=True)
                if status is not None and _text(status) == "running"]

    def _decode_campaign(self, key: str, raw: str, campaign_id: str) -> CampaignSpec:
        spec = decode(CampaignSpec, key, raw)
        if spec.id != campaign_id:
            raise StoreCorrupt(key, f"holds campaign {spec.id!r}")
        return spec

    # leads

    def _decode_lead(self, lead_id: str, raw: object, in_flight: object) -> Lead:
        key = self.keys.lead(lead_id)
        if raw is None:
            raise StoreCorrupt(key, "the lead is indexed but its record is missing")
        lead = decode(Lead, key, _text(raw))
        if lead.id != lead_id:
            raise StoreCorrupt(key, f"holds lead {lead.id!r}")
        return lead if in_flight is None else _in_progress(lead)

    async def _leads(self, lead_ids: Sequence[str]) -> list[Lead]:
        if not lead_ids:
            return []
        k = self.keys
        values = await self.redis.mget([k.lead(i) for i in lead_ids] + [k.in_flight(i) for i in lead_ids])
        n = len(lead_ids)
        return [self._decode_lead(i, values[j], values[n + j]) for j, i in enumerate(lead_ids)]

    async def add_leads(self, campaign_id: str, leads: Sequence[Lead]) -> tuple[int, int]:
        for lead in leads:
            check_new_lead(campaign_id, lead)
        # Refuse a lead id of another campaign before anything is written. What is decoded
        # here is reused below if the record has not changed in between.
        seen: dict[str, tuple[object, Lead]] = {}
        for chunk in _chunks(leads, CHUNK):
            ids = [lead.id for lead in chunk]
            raws = await self.redis.mget([self.keys.lead(i) for i in ids])
            for new, raw in zip(chunk, raws, strict=True):
                if raw is not None:
                    old = self._decode_lead(new.id, raw, None)
                    merge_lead(old, new)
                    seen[new.id] = (raw, old)
        added = merged = 0
        for chunk in _chunks(leads, CHUNK):
            a, m = await self._add_chunk(chunk, seen)
            added, merged = added + a, merged + m
        return added, merged

    async def _add_chunk(self, chunk: Sequence[Lead], seen: Mapping[str, tuple[object, Lead]]
                         ) -> tuple[int, int]:
        k = self.keys
        ids = list(dict.fromkeys(lead.id for lead in chunk))
        watched = [k.lead(i) for i in ids] + [k.in_flight(i) for i in ids]
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(*watched)
                    values = await pipe.mget(watched)
                    stored: dict[str, Lead | None] = {}
                    for i, raw in zip(ids, values[:len(ids)], strict=True):
                        known = seen.get(i)
                        stored[i] = (None if raw is None else known[1] if known and known[0] == raw
                                     else self._decode_lead(i, raw, None))
                    flying = {i for i, f in zip(ids, values[len(ids):], strict=True) if f is not None}
                    latest = dict(stored)
                    added = merged = 0
                    for lead in chunk:
                        old = latest[lead.id]
                        if old is None:
                            added, latest[lead.id] = added + 1, lead
                        else:
                            merged, latest[lead.id] = merged + 1, merge_lead(old, lead)
                    _begin(pipe)
                    self._queue_writes(pipe, [(stored[i], new, i in flying)
                                              for i, new in latest.items() if new is not None])
                    await pipe.execute()
                except WatchError:
                    continue
                return added, merged
        raise StoreError(f"adding leads: gave up after {MAX_RETRIES} conflicting writes")

    async def _update_lead(self, lead_id: str, lead: Lead | None, next_at: float | None) -> None:
        """finish_lead (`lead` given) or reschedule_lead (`next_at` given), under WATCH."""
        k = self.keys
        watched = [k.lead(lead_id), k.in_flight(lead_id)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(*watched)
                    raw, flying = await pipe.mget(watched)
                    old = None if raw is None else self._decode_lead(lead_id, raw, None)
                    if lead is not None:
                        check_finished(old, lead)
                        new = lead
                    else:
                        assert next_at is not None
                        new = rescheduled(old, lead_id, next_at, flying is not None)
                    _begin(pipe)
                    self._queue_writes(pipe, [(old, new, False)])
                    await pipe.execute()
                except WatchError:
                    continue
                return
        raise StoreError(f"lead {lead_id!r}: gave up after {MAX_RETRIES} conflicting writes")

    def _queue_writes(self, pipe: Pipeline, writes: Sequence[tuple[Lead | None, Lead, bool]]) -> None:
        """Queue, for each (old, new, stays_in_flight) with distinct lead ids: drop `old` from
        every index, store `new` and index it -- as IN_PROGRESS if it stays in flight, else by
        its state and, if READY, in the ready or locked set of its level. Commands are grouped
        by key (removals first), so a batch costs a few commands, not a few per lead."""
        k = self.keys
        remove: defaultdict[str, list[str]] = defaultdict(list)
        unlock: defaultdict[str, list[str]] = defaultdict(list)
        records: dict[str, str] = {}
        landed: list[str] = []
        add: defaultdict[str, dict[str, float]] = defaultdict(dict)
        lock: defaultdict[str, list[str]] = defaultdict(list)
        for old, new, stays_in_flight in writes:
            lid, cid = new.id, new.campaign_id
            if old is not None:
                for state in LeadState:
                    remove[k.state(state, old.campaign_id)].append(lid)
                remove[k.ready(old.campaign_id, old.priority)].append(lid)
                remove[k.locked(old.campaign_id, old.priority)].append(lid)
                unlock[k.locked_next_at(old.campaign_id)].append(lid)
            records[k.lead(lid)] = encode(new)
            add[k.leads(cid)][lid] = 0
            if stays_in_flight:
                add[k.state(LeadState.IN_PROGRESS, cid)][lid] = 0
                continue
            landed.append(k.in_flight(lid))
            add[k.state(new.state, cid)][lid] = 0
            if new.state is LeadState.READY:
                add[k.levels(cid)][str(new.priority)] = new.priority
                if is_locked(new):
                    add[k.locked(cid, new.priority)][lid] = new.lockout_until
                    lock[k.locked_next_at(cid)] += [lid, _score(new.next_at)]
                else:
                    add[k.ready(cid, new.priority)][lid] = new.next_at
        for key, members in remove.items():
            pipe.zrem(key, *members)
        for key, fields in unlock.items():
            pipe.hdel(key, *fields)
        pipe.mset(records)
        if landed:
            pipe.delete(*landed)
        for key, scored in add.items():
            pipe.zadd(key, scored)
        for key, items in lock.items():
            pipe.hset(key, items=items)

    async def get_lead(self, lead_id: str) -> Lead | None:
        raw, flying = await self.redis.mget([self.keys.lead(lead_id), self.keys.in_flight(lead_id)])
        return None if raw is None else self._decode_lead(lead_id, raw, flying)

    async def list_leads(
        self, campaign_id: str, *, state: LeadState | None = None, offset: int = 0, limit: int = 100
    ) -> list[Lead]:
        if limit <= 0:
            return []
        key = self.keys.leads(campaign_id) if state is None else self.keys.state(state, campaign_id)
        start = max(offset, 0)
        ids = _texts(await self.redis.zrange(key, start, start + limit - 1))
        return await self._leads(ids)

    async def count_leads(self, campaign_id: str) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for state in LeadState:
                pipe.zcard(self.keys.state(state, campaign_id))
            counts = await pipe.execute()
        return {state.value: int(n) for state, n in zip(LeadState, counts, strict=True)}

    async def dialable_count(self, campaign_id: str, now: float) -> int:
        k = self.keys
        n = await self._dialable(
            keys=[k.levels(campaign_id)],
            args=[_score(now), k.ready_prefix(campaign_id), k.locked_prefix(campaign_id)])
        return int(n)

    async def claim_lead(self, campaign_id: str, now: float, attempt_id: str) -> Lead | None:
        k = self.keys
        found = await self._claim(
            keys=[k.levels(campaign_id), k.locked_next_at(campaign_id),
                  k.state(LeadState.READY, campaign_id), k.state(LeadState.IN_PROGRESS, campaign_id)],
            args=[_score(now), attempt_id, k.ready_prefix(campaign_id), k.locked_prefix(campaign_id),
                  k.lead_prefix(), k.in_flight_prefix()])
        if not found:
            return None
        lead_id = _text(found[0])
        return self._decode_lead(lead_id, found[1] if len(found) > 1 else None, attempt_id)

    async def claim_leads(self, campaign_id: str, now: float,
                          attempt_ids: Sequence[str]) -> list[tuple[Lead, str, bool]]:
        if not attempt_ids:
            return []
        k = self.keys
        keys = [k.levels(campaign_id), k.locked_next_at(campaign_id),
                k.state(LeadState.READY, campaign_id), k.state(LeadState.IN_PROGRESS, campaign_id)]
        def args(attempt_id: str) -> list[str]:
            return [_score(now), attempt_id, k.ready_prefix(campaign_id),
                    k.locked_prefix(campaign_id), k.lead_prefix(), k.in_flight_prefix(),
                    k.dnc(None), k.dnc(campaign_id)]
        if len(attempt_ids) == 1:  # the usual claim: one EVALSHA
            replies = [await self._claim(keys=keys, args=args(attempt_ids[0]))]
        else:
            # One pipeline, not a transaction: each script runs atomically on its own, so a
            # claim never hands a lead out twice; once the campaign runs dry the rest return
            # nothing. (EVAL: redis-py's pipelined EVALSHA costs a SCRIPT EXISTS round trip.)
            async with self.redis.pipeline(transaction=False) as pipe:
                for attempt_id in attempt_ids:
                    pipe.eval(_CLAIM, len(keys), *keys, *args(attempt_id))
                replies = await pipe.execute()
        claimed = []
        for attempt_id, found in zip(attempt_ids, replies, strict=True):
            if not found:
                continue  # (a lead added meanwhile may still be claimed by a later script)
            lead_id = _text(found[0])
            lead = self._decode_lead(lead_id, found[1] if len(found) > 1 else None, attempt_id)
            claimed.append((lead, attempt_id, len(found) > 2 and found[2] == 1))
        return claimed

    async def scan_dialable(self, campaign_id: str, now: float, attributes: Sequence[str],
                            limit: int) -> list[tuple[str, dict[str, str]]]:
        k = self.keys
        reply = await self.redis.eval(
            _SCAN, 2, k.levels(campaign_id), k.locked_next_at(campaign_id), _score(now),
            k.ready_prefix(campaign_id), k.locked_prefix(campaign_id), k.lead_prefix(),
            str(max(0, limit)), *attributes)
        out = []
        for item in reply:
            values = _texts(item[1]) if item[1] else []
            out.append((_text(item[0]), dict(zip(values[::2], values[1::2], strict=True))))
        return out

    async def claim_listed(self, campaign_id: str, now: float,
                           picks: Sequence[tuple[str, str]]) -> list[tuple[Lead, str, bool]]:
        if not picks:
            return []
        k = self.keys
        keys = [k.levels(campaign_id), k.state(LeadState.READY, campaign_id),
                k.state(LeadState.IN_PROGRESS, campaign_id)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead_id, attempt_id in picks:
                pipe.eval(_CLAIM_LISTED, len(keys), *keys, _score(now), attempt_id, lead_id,
                          k.ready_prefix(campaign_id), k.lead_prefix(), k.in_flight_prefix(),
                          k.dnc(None), k.dnc(campaign_id))
            replies = await pipe.execute()
        claimed = []
        for (lead_id, attempt_id), found in zip(picks, replies, strict=True):
            if not found:
                continue
            lead = self._decode_lead(lead_id, found[1], attempt_id)
            claimed.append((lead, attempt_id, found[2] == 1))
        return claimed

    async def reschedule_lead(self, lead_id: str, next_at: float) -> None:
        await self._update_lead(lead_id, None, next_at)

    async def finish_lead(self, lead: Lead) -> None:
        await self._update_lead(lead.id, lead, None)

    async def in_flight_leads(self, campaign_id: str) -> dict[str, str]:
        ids = _texts(await self.redis.zrange(self.keys.state(LeadState.IN_PROGRESS, campaign_id), 0, -1))
        if not ids:
            return {}
        attempts = await self.redis.mget([self.keys.in_flight(i) for i in ids])
        return {i: _text(a) for i, a in zip(ids, attempts, strict=True) if a is not None}

    # attempts

    def _attempt_call(self, attempt: Attempt) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of `_SAVE_ATTEMPT` for one attempt."""
        k, cid = self.keys, attempt.campaign_id
        ended = attempt.ended_at is not None
        day = self.day_bucket(attempt.ended_at) if attempt.ended_at is not None else 0
        return ([k.attempt(attempt.id), k.lead_attempts(attempt.lead_id), k.attempts(cid),
                 k.open_attempts(cid), k.abandoned(cid), k.humans(cid), k.machines(cid)],
                [attempt.id, encode(attempt), _score(attempt.originated_at), "1" if ended else "0",
                 str(day), "1" if attempt.result is AttemptResult.ABANDONED else "0",
                 "1" if attempt.result in HUMAN_RESULTS else "0",
                 "1" if attempt.result is AttemptResult.MACHINE else "0"])

    async def save_attempt(self, attempt: Attempt) -> None:
        _raise_refused(await self.save_batch([attempt]))

    async def save_batch(self, attempts: Sequence[Attempt] = (),
                         agents: Mapping[str, Mapping[str, str]] | None = None,
                         leads: Sequence[Lead] = ()) -> list[Refusal]:
        # One script, one round trip (`_SAVE_BATCH`): attempts as `_SAVE_ATTEMPT`, leads as
        # `_FINISH` (it reads the stored lead itself, so no WATCH and read are needed first),
        # agents as `save_agent`. Sent as EVALSHA (redis-py loads the script on NOSCRIPT).
        refused: dict[str, Refusal] = {}  # lead id -> why, in the order the leads came
        unique = {lead.id: lead for lead in leads}
        finishing: list[Lead] = []
        for lead in unique.values():
            try:
                if lead.state is LeadState.IN_PROGRESS:
                    check_finished(lead, lead)  # raises the same refusal as finish_lead
                finishing.append(lead)
            except ValueError as exc:
                refused[lead.id] = Refusal("lead", lead.id,
                                           f"lead {lead.id!r} not finished: {exc}")
        if not (attempts or agents or finishing):
            return list(refused.values())
        plan: list[str] = []
        keys: list[str] = []
        args: list[str] = []

        def add(kind: str, call: tuple[list[str], list[str]]) -> None:
            plan.extend((kind, str(len(call[0])), str(len(call[1]))))
            keys.extend(call[0])
            args.extend(call[1])
        for attempt in attempts:
            add("a", self._attempt_call(attempt))
        for lead in finishing:
            add("l", self._finish_call(lead))
        for agent_id, fields in (agents or {}).items():
            add("g", ([self.keys.agent(agent_id), self.keys.agents()],
                      [agent_id, *(x for pair in fields.items() for x in pair)]))
        replies = await self._save_batch(keys=keys, args=[str(len(plan) // 3), *plan, *args])
        if not isinstance(replies, list) or len(replies) != len(plan) // 3:
            raise StoreError(f"unexpected reply from Redis: {replies!r}")
        outcomes = iter(replies)
        errors: list[Refusal] = []
        for attempt, reply in zip(attempts, outcomes, strict=False):
            if (error := _script_error(reply)) is not None:
                errors.append(Refusal("attempt", attempt.id,
                                      f"attempt {attempt.id!r} not saved: {error}"))
        for lead, reply in zip(finishing, outcomes, strict=False):
            reason = _script_error(reply)
            if reason is None and (text := _text(reply)) != "ok":
                reason = _FINISH_REFUSALS.get(text, f"unexpected reply from Redis: {text!r}")
            if reason is not None:
                refused[lead.id] = Refusal("lead", lead.id,
                                           f"lead {lead.id!r} not finished: {reason}")
        for agent_id, reply in zip(agents or {}, outcomes, strict=False):
            if (error := _script_error(reply)) is not None:
                errors.append(Refusal("agent", agent_id, f"agent {agent_id!r} not saved: {error}"))
        return [refused[i] for i in unique if i in refused] + errors

    def _finish_call(self, lead: Lead) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of `_FINISH` for one lead (see the script)."""
        k, cid = self.keys, lead.campaign_id
        return ([k.lead(lead.id), k.in_flight(lead.id), k.leads(cid),
                 *(k.state(state, cid) for state in LeadState), k.levels(cid),
                 k.ready(cid, lead.priority), k.locked(cid, lead.priority),
                 k.locked_next_at(cid), k.state(lead.state, cid)],
                [lead.id, encode(lead), cid, k.ready_prefix(cid), k.locked_prefix(cid),
                 lead.state.value, str(lead.priority), _score(lead.next_at),
                 _score(lead.lockout_until), "1" if is_locked(lead) else "0"])

    def _decode_attempt(self, attempt_id: str, raw: object) -> Attempt:
        key = self.keys.attempt(attempt_id)
        if raw is None:
            raise StoreCorrupt(key, "the attempt is indexed but its record is missing")
        attempt = decode(Attempt, key, _text(raw))
        if attempt.id != attempt_id:
            raise StoreCorrupt(key, f"holds attempt {attempt.id!r}")
        return attempt

    async def _attempts(self, attempt_ids: Sequence[str]) -> list[Attempt]:
        if not attempt_ids:
            return []
        raws = await self.redis.mget([self.keys.attempt(i) for i in attempt_ids])
        return [self._decode_attempt(i, raw) for i, raw in zip(attempt_ids, raws, strict=True)]

    async def get_attempt(self, attempt_id: str) -> Attempt | None:
        raw = await self.redis.get(self.keys.attempt(attempt_id))
        return None if raw is None else self._decode_attempt(attempt_id, raw)

    async def lead_attempts(self, lead_id: str) -> list[Attempt]:
        return await self._attempts(_texts(await self.redis.zrange(self.keys.lead_attempts(lead_id), 0, -1)))

    async def in_flight_attempts(self, campaign_id: str) -> list[Attempt]:
        ids = _texts(await self.redis.smembers(self.keys.open_attempts(campaign_id)))
        return sorted(await self._attempts(ids), key=lambda a: (a.originated_at, a.id))

    async def recent_attempts(self, campaign_id: str, limit: int) -> list[Attempt]:
        if limit <= 0:
            return []
        ids = _texts(await self.redis.zrevrange(self.keys.attempts(campaign_id), 0, limit - 1))
        return await self._attempts(ids)

    async def abandon_stats(self, campaign_id: str, since: float) -> tuple[int, int]:
        first = self.day_bucket(since)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.abandoned(campaign_id))
            pipe.hgetall(self.keys.humans(campaign_id))
            abandoned, humans = await pipe.execute()
        return self._sum_days(self.keys.abandoned(campaign_id), abandoned, first), \
            self._sum_days(self.keys.humans(campaign_id), humans, first)

    async def machine_count(self, campaign_id: str, since: float) -> int:
        key = self.keys.machines(campaign_id)
        counters: Mapping[object, object] = await self.redis.hgetall(key)  # type: ignore[assignment]
        return self._sum_days(key, counters, self.day_bucket(since))

    @staticmethod
    def _sum_days(key: str, counters: Mapping[object, object], first: int) -> int:
        total = 0
        for day, n in counters.items():
            try:
                if int(_text(day)) >= first:
                    total += int(_text(n))
            except ValueError:
                raise StoreCorrupt(key, f"bad day counter {day!r}: {n!r}") from None
        return total

    # do-not-call

    async def dnc_add(self, number: str, campaign_id: str | None = None) -> None:
        await self.redis.sadd(self.keys.dnc(campaign_id), number)

    async def dnc_add_many(self, numbers: Sequence[str], campaign_id: str | None = None) -> int:
        added = 0
        for chunk in _chunks(numbers, 1000):
            added += int(await self.redis.sadd(self.keys.dnc(campaign_id), *chunk))
        return added

    async def dnc_contains(self, number: str, campaign_id: str) -> bool:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sismember(self.keys.dnc(None), number)
            pipe.sismember(self.keys.dnc(campaign_id), number)
            on_global, on_campaign = await pipe.execute()
        return bool(on_global) or bool(on_campaign)

    async def dnc_remove(self, number: str, campaign_id: str | None = None) -> None:
        await self.redis.srem(self.keys.dnc(campaign_id), number)

    # agents

    async def save_agent(self, agent_id: str, data: Mapping[str, str]) -> None:
        _raise_refused(await self.save_batch(agents={agent_id: data}))

    async def get_agent(self, agent_id: str) -> dict[str, str] | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sismember(self.keys.agents(), agent_id)
            pipe.hgetall(self.keys.agent(agent_id))
            known, fields = await pipe.execute()
        if not known:
            return None
        return {_text(name): _text(value) for name, value in fields.items()}

    async def list_agents(self) -> list[str]:
        return sorted(_texts(await self.redis.smembers(self.keys.agents())))

    async def ping(self) -> None:
        await self.redis.ping()


def _in_progress(lead: Lead) -> Lead:
    return replace(lead, state=LeadState.IN_PROGRESS)
