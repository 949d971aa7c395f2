"""The agent console, the supervisor wallboard and their real-time feed.

- `feed`: pure. Views of the live state (`Snapshot`) and the messages that turn one snapshot
  into the next, per agent and for supervisors. No I/O, no clock.
- `live`: reads a running `Dialer`'s engines (read-only) into a `Snapshot`.
- `ws`: the WebSocket endpoints `/ws/agent/{aid}` and `/ws/supervisor` and the publisher
  that polls the live state and fans the messages out.
- `pages`: the HTML/CSS/JS pages `/console` and `/wallboard` (files in `static/`).

`Console(...).routes(app)` registers all of it on the server's aiohttp application.
"""
