"""The dialer's exceptions, in one tree.

    DialerError
    ├── ConfigError            the configuration is wrong (file, key, value): fix it and restart
    ├── TestbedError           a testbed step failed: names the step, carries the log tail
    └── AriError               talking to Asterisk (ARI) went wrong
        ├── AriUnavailable     Asterisk cannot be reached (not running, wrong address, timeout)
        ├── EventStreamDown    refused locally: no event WebSocket is subscribed, so an
        │                      originate now would become an abandoned call (TESTBED.md)
        └── AriRequestError    Asterisk answered with an HTTP error status
            ├── AriBadRequest      400  a parameter is missing or malformed
            ├── AriAuthError       401  wrong ARI user or password
            ├── AriForbidden       403
            ├── AriNotFound        404  the channel/bridge/playback is gone (or never existed)
            ├── AriConflict        409  e.g. a duplicate client-chosen channel or bridge id
            ├── AriUnprocessable   422  e.g. a channel not in a Stasis application
            └── AriServerError     5xx  Asterisk failed; retrying may help

"You misused the API" (400, 409, 422) and "the peer misbehaved" (5xx, unavailable) are kept
apart so callers can decide what to retry. The mapping from HTTP status to class lives in
exactly one place: `dialer.ari.client.STATUS_ERRORS`.
"""

from __future__ import annotations


class DialerError(Exception):
    """Base of every error the dialer raises on purpose."""


class ConfigError(DialerError):
    """The configuration is invalid. The message names the file and key."""


class TestbedError(DialerError):
    """A testbed step failed. `step` names it; `log_tail` holds the relevant log lines."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, step: str, message: str, log_tail: str = "") -> None:
        self.step = step
        self.message = message
        self.log_tail = log_tail
        text = f"testbed step '{step}' failed: {message}"
        if log_tail:
            text += "\n--- log tail ---\n" + log_tail.rstrip()
        super().__init__(text)


class AriError(DialerError):
    """Talking to Asterisk's REST interface failed."""


class AriUnavailable(AriError):
    """Asterisk could not be reached at all."""


class EventStreamDown(AriError):
    """An action that needs the event stream was refused because it is not connected."""


class AriRequestError(AriError):
    """Asterisk answered with an HTTP error status."""

    status: int = 0

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"ARI {method} {path} -> {status}: {message}")


class AriBadRequest(AriRequestError):
    pass


class AriAuthError(AriRequestError):
    pass


class AriForbidden(AriRequestError):
    pass


class AriNotFound(AriRequestError):
    pass


class AriConflict(AriRequestError):
    pass


class AriUnprocessable(AriRequestError):
    pass


class AriServerError(AriRequestError):
    pass
