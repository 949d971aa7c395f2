"""Signing webhook deliveries, and checking a delivery's signature on the receiving side.

The scheme is Stripe's (a timestamp bound into the MAC, so a captured delivery cannot be
replayed later)::

    X-Dialer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The receiver recomputes the MAC over the *raw* request body (before any JSON parsing: a
re-serialised body would differ), compares it in constant time with each `v1` in the header
(several may be given while a secret is rotated), then checks that `t` is within `tolerance`
seconds of its own clock. Pure: the time is passed in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac

from dialer.errors import DialerError

SIGNATURE_HEADER = "X-Dialer-Signature"
EVENT_HEADER = "X-Dialer-Event"
DELIVERY_HEADER = "X-Dialer-Delivery"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300.0  # seconds either side of the receiver's clock
MAX_HEADER = 4096  # a header longer than this is not one of ours


class SignatureProblem(enum.StrEnum):
    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    BAD_SIGNATURE = "bad_signature"
    TOO_OLD = "too_old"
    FROM_THE_FUTURE = "from_the_future"


class SignatureError(DialerError):
    """A webhook delivery whose signature does not hold; `problem` says which check failed.
    A receiver answers it with a 4xx (the dialer does not retry a 4xx)."""

    def __init__(self, problem: SignatureProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def _secret(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>." + body` under `secret`."""
    return hmac.new(_secret(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The `X-Dialer-Signature` value for `body` signed at `timestamp` (unix seconds)."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, the v1 signatures) of a header; SignatureError MALFORMED_HEADER if it is
    not one. Unknown schemes (a future v2) are ignored."""
    if len(header) > MAX_HEADER:
        raise SignatureError(SignatureProblem.MALFORMED_HEADER,
                             f"{SIGNATURE_HEADER} is over {MAX_HEADER} characters")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(SignatureProblem.MALFORMED_HEADER,
                                 f"{SIGNATURE_HEADER} must be 't=<unix time>,v1=<hex>'; "
                                 f"'{part.strip()[:40]}' is not key=value")
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit() \
                    or len(value) > 12:
                raise SignatureError(SignatureProblem.MALFORMED_HEADER,
                                     f"{SIGNATURE_HEADER}: 't' must be one unix time in "
                                     "seconds")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError(SignatureProblem.MALFORMED_HEADER,
                             f"{SIGNATURE_HEADER} has no timestamp (t=...)")
    if not signatures:
        raise SignatureError(SignatureProblem.MALFORMED_HEADER,
                             f"{SIGNATURE_HEADER} has no {SCHEME} signature")
    return timestamp, signatures


def verify_signature(secret: str | bytes, header: str | None, body: bytes, now: float,
                     tolerance: float = DEFAULT_TOLERANCE) -> None:
    """Check a delivery: `header` is the `X-Dialer-Signature` value (None when the request
    has none), `body` the raw request body, `now` the receiver's time (unix seconds).
    Returns None if the delivery is genuine and recent; raises SignatureError otherwise
    (missing header, malformed header, bad signature, too old, from the future)."""
    if header is None or not header.strip():
        raise SignatureError(SignatureProblem.MISSING_HEADER,
                             f"the request has no {SIGNATURE_HEADER} header: not a signed "
                             "delivery from the dialer")
    timestamp, signatures = parse_signature_header(header)
    expected = signature(secret, timestamp, body)
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        if hmac.compare_digest(expected.encode(), candidate.strip().lower().encode("ascii",
                                                                                  "replace")):
            matched = True
    if not matched:
        raise SignatureError(SignatureProblem.BAD_SIGNATURE,
                             "the signature does not match the body: wrong secret, or the body "
                             "was changed (verify the raw body, before parsing it)")
    age = now - timestamp
    if age > tolerance:
        raise SignatureError(SignatureProblem.TOO_OLD,
                             f"the delivery was signed {age:.0f} s ago (tolerance {tolerance:.0f}"
                             " s): a replay, or the clocks are apart")
    if -age > tolerance:
        raise SignatureError(SignatureProblem.FROM_THE_FUTURE,
                             f"the delivery is signed {-age:.0f} s in the future (tolerance "
                             f"{tolerance:.0f} s): the clocks are apart")
