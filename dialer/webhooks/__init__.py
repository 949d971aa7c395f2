"""Signed webhooks: after each call attempt, its record goes to the configured receivers.

`signature` signs deliveries and checks them on the receiving side (`verify_signature`);
`delivery` sends them in the background with retries (`WebhookDispatcher`).
"""

from dialer.webhooks.signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    SignatureProblem,
    signature_header,
    verify_signature,
)

__all__ = ["DELIVERY_HEADER", "EVENT_HEADER", "SIGNATURE_HEADER", "SignatureError",
           "SignatureProblem", "signature_header", "verify_signature"]
