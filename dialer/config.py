"""Configuration: one tree of frozen dataclasses, loaded from YAML plus environment variables.

Everything is validated at start-up; a bad value raises `ConfigError` naming the file and key.
The tree is passed explicitly to whoever needs it; nothing reads the environment elsewhere.

Environment variables override the file (handy for containers and CI secrets):

    DIALER_CONFIG          path of the YAML file (default: ./dialer.yaml)
    DIALER_ARI_URL         e.g. http://127.0.0.1:8088
    DIALER_ARI_USERNAME    ARI user (ari.conf section name)
    DIALER_ARI_PASSWORD    ARI password
    DIALER_ARI_APP         Stasis application name (one per dialer process)
    DIALER_REDIS_URL       e.g. redis://127.0.0.1:6379/0
    DIALER_SIP_BIND        address Asterisk's SIP transport binds (rendered into pjsip.conf)
    DIALER_API_TOKENS      the HTTP API's bearer tokens, `name:role:token,...` (replaces
                           api.tokens); role is admin, supervisor, agent, or agent=AGENT_ID
                           for an agent's token that may only act as that agent, or intake
                           (callback requests only: a web form's or chat's backend)
    DIALER_WEBHOOK_SECRET_<NAME>  the signing secret of the webhook named NAME (upper case,
                           other characters than A-Z 0-9 as `_`), instead of webhooks[].secret
    DIALER_CACHE_DIR       where the testbed keeps its Asterisk root
    DIALER_STATE_DIR       where the testbed keeps pid files, logs and Redis data
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from dialer.core.callbacks import SKILL, TOPIC, CallbackRules, CallbackTopic
from dialer.core.specs import CAMPAIGN_ID
from dialer.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("dialer.yaml")


@dataclass(frozen=True, slots=True)
class Secret:
    """A string that never shows up in logs, reprs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True, slots=True)
class AriConfig:
    url: str
    username: str
    password: Secret
    app: str
    request_timeout: float = 5.0
    connect_timeout: float = 3.0
    # Below http.conf's sessionlimit (the event WebSocket takes one more session).
    max_connections: int = 50

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 6379


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    """What the dialer renders into asterisk_conf (besides the ARI settings)."""

    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_start: int = 10000
    rtp_end: int = 20000


@dataclass(frozen=True, slots=True)
class TestbedConfig:
    """Where the local testbed keeps its files and on which loopback ports its sipp peers
    listen (never the standard ones)."""

    __test__ = False

    cache_dir: Path
    state_dir: Path
    sipp_answer_port: int = 15071
    sipp_busy_port: int = 15072
    sipp_ring_port: int = 15073
    sipp_reject_port: int = 15074
    sipp_agents_port: int = 15080
    sipp_agent_dtmf_port: int = 15081
    debian_suite: str = "sid"


class Role(StrEnum):
    """What a bearer token may do on the HTTP API (the table per route: `dialer.auth.RULES`)."""

    ADMIN = "admin"  # everything
    SUPERVISOR = "supervisor"  # read everything, start/pause campaigns, DNC add and check
    AGENT = "agent"  # an agent's own actions and the lead of their current call
    # Callback requests only (POST /callbacks): the token a web form's, a chat's or a social
    # page's backend holds; it can read nothing and change nothing else.
    INTAKE = "intake"


@dataclass(frozen=True, slots=True)
class ApiToken:
    name: str  # for logs and error messages; the token itself is never shown
    token: Secret
    role: Role
    agent: str | None = None  # an agent's token bound to this agent id acts only as them


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The HTTP API's bearer tokens. None configured: every request but the public ones
    (/health, /ready, /metrics, /openapi.json) is refused with 401."""

    tokens: tuple[ApiToken, ...] = ()

    def first(self, role: Role) -> ApiToken | None:
        """The first token with this role (for in-process callers: tests, demo, benchmarks)."""
        return next((t for t in self.tokens if t.role is role), None)


@dataclass(frozen=True, slots=True)
class IvrConfig:
    """IVR flows and their audio.

    `media_dir` is a directory as *Asterisk* sees it (its sounds are played from there:
    rendered TTS prompts and each flow snapshot's recordings); the dialer writes into it at
    `asterisk_root / media_dir`, so a chrooted Asterisk (the testbed) or a container with a
    shared volume both work. Voicemail recordings stay in Asterisk's recording spool.
    """

    flows_dir: Path = Path("ivr_flows")
    media_dir: str = "/var/lib/dialer-ivr"
    asterisk_root: Path = Path("/")
    watch: bool = True  # reload on file changes (SIGHUP and the API reload always work)
    callback_campaign: str = "callbacks"  # where callback nodes put their leads

    @property
    def local_media_dir(self) -> Path:
        """Where the dialer writes what Asterisk reads as `media_dir`."""
        return self.asterisk_root / self.media_dir.lstrip("/")


#: Events a webhook may subscribe to (`dialer.webhooks`).
WEBHOOK_EVENTS = ("attempt.ended",)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One receiver of signed webhooks (`dialer.webhooks`): where, the signing secret, which
    events, the timeout of one try and how many tries a delivery gets before it is dropped."""

    name: str
    url: str
    secret: Secret
    events: tuple[str, ...] = WEBHOOK_EVENTS
    timeout: float = 5.0
    max_tries: int = 6


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Agent profiles for routing: skills with levels and attributes (dialer/routing/profiles.py
    documents the file). None: no profiles file; agents give their skills at login."""

    profiles: Path | None = None


@dataclass(frozen=True, slots=True)
class Config:
    ari: AriConfig
    redis: RedisConfig
    server: ServerConfig
    asterisk: AsteriskConfig
    testbed: TestbedConfig
    source: str = "<defaults>"
    api: ApiConfig = ApiConfig()
    ivr: IvrConfig = IvrConfig()
    routing: RoutingConfig = RoutingConfig()
    callbacks: CallbackRules = field(default_factory=CallbackRules)
    webhooks: tuple[WebhookConfig, ...] = ()


_APP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARI_USER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Bearer tokens are RFC 6750 b64token characters; 16 of them at least, so none is guessable
# by hand (use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`).
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]{16,512}=*$")


class _Reader:
    """Reads typed values from a YAML mapping, naming file and key in every error."""

    def __init__(self, source: str, data: Mapping[str, Any]) -> None:
        self.source = source
        self.data = data

    def section(self, name: str, known: set[str]) -> Mapping[str, Any]:
        value = self.data.get(name, {})
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.source}: '{name}' must be a mapping")
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"{self.source}: unknown key '{name}.{unknown[0]}' (known: {', '.join(sorted(known))})"
            )
        return value

    def text(self, sect: str, values: Mapping[str, Any], key: str, default: str) -> str:
        value = values.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.source}: '{sect}.{key}' must be a non-empty string")
        return value

    def number(self, sect: str, values: Mapping[str, Any], key: str, default: float) -> float:
        value = values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{self.source}: '{sect}.{key}' must be a positive number")
        return float(value)

    def port(self, sect: str, values: Mapping[str, Any], key: str, default: int) -> int:
        value = values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ConfigError(f"{self.source}: '{sect}.{key}' must be a port number 1-65535")
        return value


def _check_url(source: str, key: str, url: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(
            f"{source}: '{key}' must be a URL like {schemes[0]}://127.0.0.1:PORT, got {url!r}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{source}: '{key}' has a bad port: {url!r}") from exc
    return url.rstrip("/")


def load_config(
    path: Path | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate the configuration. `env` defaults to the process environment."""
    env = os.environ if env is None else env
    if path is None:
        path = Path(env.get("DIALER_CONFIG", str(DEFAULT_CONFIG_FILE)))
    source = str(path)
    data: Any = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"{source}{where}: not valid YAML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    elif "DIALER_CONFIG" in env:
        raise ConfigError(f"{source}: config file not found (DIALER_CONFIG)")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping")
    unknown = sorted(set(data) - {"ari", "redis", "server", "asterisk", "testbed", "api",
                                       "ivr", "routing", "callbacks", "webhooks"},
                     key=str)
    if unknown:
        raise ConfigError(f"{source}: unknown section '{unknown[0]}'")
    r = _Reader(source, data)

    ari_s = r.section(
        "ari",
        {"url", "username", "password", "app", "request_timeout", "connect_timeout",
         "max_connections"},
    )
    ari_url = env.get("DIALER_ARI_URL") or r.text("ari", ari_s, "url", "http://127.0.0.1:8088")
    username = env.get("DIALER_ARI_USERNAME") or r.text("ari", ari_s, "username", "dialer")
    password = env.get("DIALER_ARI_PASSWORD") or ari_s.get("password")
    if not isinstance(password, str) or not password:
        raise ConfigError(
            f"{source}: 'ari.password' is not set (set it in the file or in DIALER_ARI_PASSWORD)"
        )
    app = env.get("DIALER_ARI_APP") or r.text("ari", ari_s, "app", "dialer")
    if not _APP_NAME.match(app):
        raise ConfigError(f"{source}: 'ari.app' must match {_APP_NAME.pattern}, got {app!r}")
    if not _ARI_USER.match(username):
        raise ConfigError(f"{source}: 'ari.username' must match {_ARI_USER.pattern}")
    max_conn = int(r.number("ari", ari_s, "max_connections", 50))
    if max_conn >= 200:
        raise ConfigError(f"{source}: 'ari.max_connections' must stay below http.conf sessionlimit (200)")
    ari = AriConfig(
        url=_check_url(source, "ari.url", ari_url, ("http", "https")),
        username=username,
        password=Secret(password),
        app=app,
        request_timeout=r.number("ari", ari_s, "request_timeout", 5.0),
        connect_timeout=r.number("ari", ari_s, "connect_timeout", 3.0),
        max_connections=max_conn,
    )

    redis_s = r.section("redis", {"url"})
    redis_url = env.get("DIALER_REDIS_URL") or r.text("redis", redis_s, "url", "redis://127.0.0.1:6379/0")
    redis = RedisConfig(url=_check_url(source, "redis.url", redis_url, ("redis", "rediss", "unix")))

    server_s = r.section("server", {"host", "port"})
    server = ServerConfig(
        host=r.text("server", server_s, "host", "127.0.0.1"),
        port=r.port("server", server_s, "port", 8080),
    )

    ast_s = r.section("asterisk", {"sip_bind", "sip_port", "rtp_start", "rtp_end"})
    asterisk = AsteriskConfig(
        sip_bind=env.get("DIALER_SIP_BIND") or r.text("asterisk", ast_s, "sip_bind", "127.0.0.1"),
        sip_port=r.port("asterisk", ast_s, "sip_port", 5060),
        rtp_start=r.port("asterisk", ast_s, "rtp_start", 10000),
        rtp_end=r.port("asterisk", ast_s, "rtp_end", 20000),
    )
    if asterisk.rtp_start >= asterisk.rtp_end:
        raise ConfigError(f"{source}: 'asterisk.rtp_start' must be below 'asterisk.rtp_end'")

    tb_s = r.section(
        "testbed",
        {"cache_dir", "state_dir", "sipp_answer_port", "sipp_busy_port", "sipp_ring_port",
         "sipp_reject_port", "sipp_agents_port", "sipp_agent_dtmf_port", "debian_suite"},
    )
    home_cache = Path(env.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    cache_dir = Path(env.get("DIALER_CACHE_DIR") or tb_s.get("cache_dir") or home_cache / "dialer")
    state_dir = Path(env.get("DIALER_STATE_DIR") or tb_s.get("state_dir") or cache_dir / "state")
    ports = {
        key: r.port("testbed", tb_s, key, default)
        for key, default in (
            ("sipp_answer_port", 15071), ("sipp_busy_port", 15072), ("sipp_ring_port", 15073),
            ("sipp_reject_port", 15074), ("sipp_agents_port", 15080),
            ("sipp_agent_dtmf_port", 15081),
        )
    }
    testbed = TestbedConfig(
        cache_dir=cache_dir.expanduser(),
        state_dir=state_dir.expanduser(),
        debian_suite=r.text("testbed", tb_s, "debian_suite", "sid"),
        **ports,
    )
    api = _api_config(source, r, env)
    ivr = _ivr_config(source, path, r, env, testbed)
    callbacks = _callbacks_config(source, r)
    webhooks = _webhooks_config(source, data.get("webhooks"), env)
    routing_s = r.section("routing", {"profiles"})
    raw_profiles = env.get("DIALER_AGENT_PROFILES") or routing_s.get("profiles")
    if raw_profiles is not None and (not isinstance(raw_profiles, str) or not raw_profiles):
        raise ConfigError(f"{source}: 'routing.profiles' must be a file name")
    profiles = None
    if raw_profiles:
        profiles = Path(raw_profiles).expanduser()
        if not profiles.is_absolute():
            profiles = (Path.cwd() if "DIALER_AGENT_PROFILES" in env
                        else path.resolve().parent) / profiles
    return Config(ari=ari, redis=redis, server=server, asterisk=asterisk, testbed=testbed,
                  source=source, api=api, ivr=ivr, callbacks=callbacks, webhooks=webhooks,
                  routing=RoutingConfig(profiles))


def _callbacks_config(source: str, r: _Reader) -> CallbackRules:
    """`callbacks.topics` (topic -> {campaign, skill}), `callbacks.grace` (seconds a preferred
    time may lie in the past) and `callbacks.horizon_days` (how far ahead it may lie)."""
    cb_s = r.section("callbacks", {"topics", "grace", "horizon_days"})
    raw = cb_s.get("topics") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: 'callbacks.topics' must be a mapping topic -> "
                          "{campaign, skill}")
    topics: dict[str, CallbackTopic] = {}
    for name, item in raw.items():
        where = f"{source}: 'callbacks.topics.{name}'"
        if not isinstance(name, str) or not TOPIC.match(name):
            raise ConfigError(f"{where}: a topic name must match {TOPIC.pattern}")
        if not isinstance(item, Mapping) or set(item) != {"campaign", "skill"}:
            raise ConfigError(f"{where}: must be {{campaign: <campaign id>, skill: <skill>}}")
        campaign, skill = item["campaign"], item["skill"]
        if not isinstance(campaign, str) or not CAMPAIGN_ID.match(campaign):
            raise ConfigError(f"{where}.campaign: must be a campaign id ({CAMPAIGN_ID.pattern})")
        if not isinstance(skill, str) or not SKILL.match(skill):
            raise ConfigError(f"{where}.skill: must be a skill name ({SKILL.pattern})")
        topics[name] = CallbackTopic(campaign=campaign, skill=skill)
    grace = cb_s.get("grace", 300)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 3600:
        raise ConfigError(f"{source}: 'callbacks.grace' must be 0-3600 seconds")
    horizon = cb_s.get("horizon_days", 30)
    if isinstance(horizon, bool) or not isinstance(horizon, int | float) \
            or not 0 < horizon <= 366:
        raise ConfigError(f"{source}: 'callbacks.horizon_days' must be a number of days, "
                          "above 0 and at most 366")
    return CallbackRules(topics=topics, grace=float(grace), horizon=float(horizon) * 86400)


_WEBHOOK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WEBHOOK_KEYS = {"name", "url", "secret", "events", "timeout", "max_tries"}


def webhook_secret_variable(name: str) -> str:
    """The environment variable that holds webhook `name`'s secret."""
    return "DIALER_WEBHOOK_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def _webhooks_config(source: str, raw: Any, env: Mapping[str, str]) -> tuple[WebhookConfig, ...]:
    """`webhooks`: a list of {name, url, secret, events, timeout, max_tries}; each secret may
    come from DIALER_WEBHOOK_SECRET_<NAME> instead (which wins)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'webhooks' must be a list of {{name, url, secret, events}}")
    hooks: list[WebhookConfig] = []
    for i, item in enumerate(raw):
        where = f"{source}: 'webhooks[{i}]'"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: must be a mapping {{name, url, secret, events}}")
        unknown = sorted(set(item) - _WEBHOOK_KEYS, key=str)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: "
                              f"{', '.join(sorted(_WEBHOOK_KEYS))})")
        name = item.get("name")
        if not isinstance(name, str) or not _WEBHOOK_NAME.match(name):
            raise ConfigError(f"{where}: 'name' must match {_WEBHOOK_NAME.pattern} (it names "
                              "the hook in logs and in DIALER_WEBHOOK_SECRET_<NAME>)")
        where = f"{where} ({name})"
        variable = webhook_secret_variable(name)
        if any(webhook_secret_variable(h.name) == variable for h in hooks):
            raise ConfigError(f"{where}: another webhook has the same name (or one that "
                              f"reads the same {variable})")
        url = item.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        try:
            port_ok = parts is not None and (parts.port or 1) > 0
        except ValueError:
            port_ok = False
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname \
                or not port_ok:
            raise ConfigError(f"{where}: 'url' must be an http(s) URL such as "
                              "https://crm.example.com/hooks/dialer")
        assert isinstance(url, str)
        secret = env.get(variable) or item.get("secret")
        if not isinstance(secret, str) or not 16 <= len(secret) <= 512:
            # The value is a secret: the message names the rule, never the value.
            raise ConfigError(f"{where}: 'secret' must be 16-512 characters (set it in the "
                              f"file or in {variable})")
        events = item.get("events", list(WEBHOOK_EVENTS))
        if not isinstance(events, list) or not events \
                or any(e not in WEBHOOK_EVENTS for e in events):
            raise ConfigError(f"{where}: 'events' must be a list of: {', '.join(WEBHOOK_EVENTS)}")
        timeout = item.get("timeout", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not 0 < timeout <= 60:
            raise ConfigError(f"{where}: 'timeout' must be above 0 and at most 60 seconds")
        tries = item.get("max_tries", 6)
        if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= 20:
            raise ConfigError(f"{where}: 'max_tries' must be an integer 1-20")
        hooks.append(WebhookConfig(name=name, url=url, secret=Secret(secret),
                                   events=tuple(dict.fromkeys(events)), timeout=float(timeout),
                                   max_tries=tries))
    return tuple(hooks)


def _ivr_config(source: str, path: Path, r: _Reader, env: Mapping[str, str],
                testbed: TestbedConfig) -> IvrConfig:
    """`ivr.flows_dir` (relative to the config file), `ivr.media_dir` (absolute, as Asterisk
    sees it), `ivr.asterisk_root` ("/" or "testbed": the testbed's chroot), `ivr.watch`."""
    ivr_s = r.section("ivr", {"flows_dir", "media_dir", "asterisk_root", "watch",
                              "callback_campaign"})
    flows = Path(env.get("DIALER_IVR_FLOWS") or r.text("ivr", ivr_s, "flows_dir", "ivr_flows"))
    if not flows.is_absolute():
        flows = path.resolve().parent / flows if "DIALER_IVR_FLOWS" not in env else flows.resolve()
    media = env.get("DIALER_IVR_MEDIA_DIR") or r.text("ivr", ivr_s, "media_dir",
                                                      "/var/lib/dialer-ivr")
    if not media.startswith("/"):
        raise ConfigError(f"{source}: 'ivr.media_dir' must be an absolute path as Asterisk "
                          f"sees it, got {media!r}")
    root_text = env.get("DIALER_IVR_ASTERISK_ROOT") or r.text("ivr", ivr_s, "asterisk_root", "/")
    root = (testbed.cache_dir / f"asterisk-root-{testbed.debian_suite}"
            if root_text == "testbed" else Path(root_text).expanduser())
    watch = ivr_s.get("watch", True)
    if not isinstance(watch, bool):
        raise ConfigError(f"{source}: 'ivr.watch' must be true or false")
    return IvrConfig(flows_dir=flows, media_dir=media, asterisk_root=root, watch=watch,
                     callback_campaign=r.text("ivr", ivr_s, "callback_campaign", "callbacks"))


def _api_config(source: str, r: _Reader, env: Mapping[str, str]) -> ApiConfig:
    """`api.tokens` (a list of {name, token, role, agent}) or DIALER_API_TOKENS, which wins."""
    api_s = r.section("api", {"tokens"})
    from_env = env.get("DIALER_API_TOKENS", "").strip()
    if from_env:
        entries: list[tuple[str, Any]] = []
        for i, item in enumerate(from_env.split(",")):
            parts = item.strip().split(":", 2)
            if len(parts) != 3:
                raise ConfigError(f"DIALER_API_TOKENS: entry {i + 1} must be name:role:token")
            name, role, token = parts
            agent: str | None = None
            if role.startswith("agent="):
                role, agent = "agent", role.removeprefix("agent=")
            entries.append((f"DIALER_API_TOKENS entry {i + 1}",
                            {"name": name, "role": role, "token": token, "agent": agent}))
    else:
        raw = api_s.get("tokens", [])
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise ConfigError(f"{source}: 'api.tokens' must be a list of {{name, token, role}}")
        entries = [(f"{source}: 'api.tokens[{i}]'", item) for i, item in enumerate(raw)]
    tokens: list[ApiToken] = []
    for where, item in entries:
        tokens.append(_api_token(where, item))
    names = [t.name for t in tokens]
    for i, api_token in enumerate(tokens):
        if api_token.name in names[:i]:
            raise ConfigError(f"{entries[i][0]}: the name {api_token.name!r} is used twice")
        if any(api_token.token.value == other.token.value for other in tokens[:i]):
            raise ConfigError(f"{entries[i][0]} ({api_token.name}): the same token is given twice")
    return ApiConfig(tokens=tuple(tokens))


def _api_token(where: str, item: Any) -> ApiToken:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: must be a mapping {{name, token, role}}")
    unknown = sorted(set(item) - {"name", "token", "role", "agent"}, key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: agent, name, role, token)")
    name = item.get("name")
    if not isinstance(name, str) or not _TOKEN_NAME.match(name):
        raise ConfigError(f"{where}: 'name' must match {_TOKEN_NAME.pattern}")
    where = f"{where} ({name})"
    try:
        role = Role(str(item.get("role")))
    except ValueError:
        raise ConfigError(f"{where}: 'role' must be one of {', '.join(Role)}") from None
    token = item.get("token")
    if not isinstance(token, str) or not _TOKEN.match(token):
        # The value is a secret: the message names the rule, never the value.
        raise ConfigError(f"{where}: 'token' must be 16-512 characters of A-Z a-z 0-9 . _ ~ + / - "
                          "(a bearer token)")
    agent = item.get("agent")
    if agent is not None:
        if role is not Role.AGENT:
            raise ConfigError(f"{where}: 'agent' binds an agent's token; this token's role is "
                              f"{role.value}")
        if not isinstance(agent, str) or not _AGENT_ID.match(agent):
            raise ConfigError(f"{where}: 'agent' must be an agent id matching {_AGENT_ID.pattern}")
    return ApiToken(name=name, token=Secret(token), role=role, agent=agent)
