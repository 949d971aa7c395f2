"""Shared state: campaigns, leads, attempts, do-not-call lists and agents.

    Store          the contract (`base.py`), honoured identically by
    MemoryStore    in-process, for the simulator and unit tests
    RedisStore     Redis, the production store; every key is described in `keys.py`
    codec          JSON for the stored records; undecodable data raises StoreCorrupt

Errors: StoreError (a `dialer.errors.DialerError`) > StoreCorrupt, StoreUnavailable (Redis
cannot be reached), StoreRefused (Redis refused a command), UnknownRecord.
"""

from dialer.store.base import (
    CAMPAIGN_STATUSES,
    HUMAN_RESULTS,
    Refusal,
    Store,
    StoreCorrupt,
    StoreError,
    StoreRefused,
    StoreUnavailable,
    UnknownRecord,
    utc_day,
)
from dialer.store.keys import DEFAULT_PREFIX, Keys
from dialer.store.memory import MemoryData, MemoryStore
from dialer.store.redis_store import RedisStore

__all__ = [
    "CAMPAIGN_STATUSES", "DEFAULT_PREFIX", "HUMAN_RESULTS", "Keys", "MemoryData", "MemoryStore",
    "RedisStore", "Refusal", "Store", "StoreCorrupt", "StoreError", "StoreRefused",
    "StoreUnavailable", "UnknownRecord", "utc_day",
]
