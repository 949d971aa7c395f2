"""Static checks of docker/: no Docker engine runs here, so the compose file, the Dockerfiles and
the Prometheus/Grafana files are parsed and compared with what the testbed runs."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dialer.config import Config, load_config
from dialer.testbed import ETC_IN_ROOT, ROOT_PACKAGES
from dialer.testbed.render import CONF_SRC, TESTBED_SUBDIR, conf_values, render_dir

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
SERVICES = {"asterisk", "redis", "dialer", "prometheus", "grafana"}
RENDERER = "asterisk-config"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside the compose network, on purpose
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: top level is not a mapping"
    return data


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml has no service {name!r}"
    svc = services[name]
    assert isinstance(svc, dict)
    return svc


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` forms."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env and (env[name] or not (op or "").startswith(":")):
            return env[name]
        assert op is None or not op.endswith("?"), f"compose needs ${name}: {arg}"
        return arg if op is not None and op.endswith("-") else ""

    return VARIABLE.sub(substitute, text)


def service_env(name: str) -> dict[str, str]:
    env = service(name).get("environment", {})
    assert isinstance(env, dict), f"{name}: environment must be a mapping"
    return {str(key): interpolate(str(value), env_example()) for key, value in env.items()}


def mounts(name: str) -> list[tuple[str, str, str]]:
    """(source, target, mode) of every short-syntax volume of a service."""
    result = []
    for entry in service(name).get("volumes", []):
        assert isinstance(entry, str), f"{name}: use the short volume syntax"
        source, target, *mode = entry.split(":")
        result.append((source, target, mode[0] if mode else "rw"))
    return result


def compose_config(name: str, tmp_path: Path) -> Config:
    """The dialer's config as the given compose service sees it (docker/dialer.yaml + env)."""
    env = service_env(name)
    mounted = {target: source for source, target, _ in mounts(name)}
    assert env["DIALER_CONFIG"] in mounted, f"{name}: DIALER_CONFIG is not mounted"
    config_file = (DOCKER / mounted[env["DIALER_CONFIG"]]).resolve()
    env["XDG_CACHE_HOME"] = str(tmp_path)
    return load_config(config_file, env=env)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def apt_installed_packages(path: Path) -> list[list[str]]:
    """The package names of every `apt-get install` in the Dockerfile's RUN lines."""
    installs = []
    for keyword, args in dockerfile_instructions(path):
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|\|\||;", args):
            words = shlex.split(command)
            if len(words) >= 2 and words[0] == "apt-get" and "install" in words:
                after = words[words.index("install") + 1:]
                installs.append([word for word in after if not word.startswith("-")])
    return installs


def exec_form(path: Path, keyword: str) -> list[str]:
    values = [args for kw, args in dockerfile_instructions(path) if kw == keyword]
    assert len(values) == 1, f"{path.name}: expected one {keyword}"
    parsed = json.loads(values[0])
    assert isinstance(parsed, list)
    return [str(word) for word in parsed]


def last_user(path: Path) -> str:
    users = [args for kw, args in dockerfile_instructions(path) if kw == "USER"]
    assert users, f"{path.name}: no USER instruction"
    return users[-1]


# ------------------------------------------------------------------------------- compose.yaml
def test_compose_file_defines_the_five_services_and_the_config_renderer() -> None:
    assert set(compose()["services"]) == SERVICES | {RENDERER}


def test_config_renderer_mounts_asterisk_conf_read_only_and_renders_into_the_shared_volume() -> None:
    volumes = mounts(RENDERER)
    assert ("../asterisk_conf", "/app/asterisk_conf", "ro") in volumes
    assert (DOCKER / "../asterisk_conf").resolve() == CONF_SRC
    shared = {source for source, target, mode in volumes if target == ETC_IN_ROOT and mode == "rw"}
    assert shared, f"the renderer must write {ETC_IN_ROOT}"
    assert shared <= set(compose()["volumes"]), "the rendered config lives in a named volume"
    command = service(RENDERER)["command"]
    assert command[:2] == ["asterisk-conf", "render"]
    assert command[command.index("--out") + 1] == ETC_IN_ROOT
    assert command[command.index("--src") + 1] == "/app/asterisk_conf"


def test_asterisk_starts_after_the_render_and_reads_the_shared_volume_read_only() -> None:
    asterisk = service("asterisk")
    assert asterisk["depends_on"][RENDERER] == {"condition": "service_completed_successfully"}
    rendered = {source for source, target, _ in mounts(RENDERER) if target == ETC_IN_ROOT}
    assert {(source, "ro") for source, target, mode in mounts("asterisk")
            if target == ETC_IN_ROOT} == {(source, "ro") for source in rendered}


def test_every_dockerfile_named_by_compose_exists() -> None:
    named = []
    for name, svc in compose()["services"].items():
        build = svc.get("build")
        if build is None:
            continue
        assert isinstance(build, dict), f"{name}: build must name context and dockerfile"
        dockerfile = (DOCKER / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        named.append(dockerfile.name)
    assert {"dialer.Dockerfile", "asterisk.Dockerfile"} <= set(named)


def test_the_renderer_and_the_dialer_run_the_same_dialer_image() -> None:
    assert service(RENDERER)["build"] == service("dialer")["build"]
    assert service(RENDERER)["image"] == service("dialer")["image"]
    assert service("dialer")["command"] == ["serve"]


def test_ari_is_not_published_but_sip_is() -> None:
    ports = [str(port) for port in service("asterisk")["ports"]]
    assert not [port for port in ports if "8088" in port]
    assert any(port.endswith(":5060/udp") for port in ports)
    for name in SERVICES | {RENDERER}:
        for port in service(name).get("ports", []):
            assert not str(port).split("/")[0].endswith(":8088"), f"{name} publishes ARI"


def test_passwords_come_from_the_environment_and_env_example_names_every_variable() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name in (RENDERER, "dialer"):
        raw = service(name)["environment"]["DIALER_ARI_PASSWORD"]
        assert re.fullmatch(r"\$\{DIALER_ARI_PASSWORD:\?[^}]+\}", raw), raw
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}",
                        service("grafana")["environment"]["GF_SECURITY_ADMIN_PASSWORD"])
    variables = {match[0] for match in VARIABLE.findall(text)}
    assert "DIALER_ARI_PASSWORD" in variables
    assert variables <= set(env_example())
    assert ".env" in (DOCKER / ".gitignore").read_text(encoding="utf-8").split()


def test_the_render_binds_ari_on_all_interfaces_inside_the_compose_network(
    tmp_path: Path,
) -> None:
    values = conf_values(compose_config(RENDERER, tmp_path), ETC_IN_ROOT)
    assert values["http_bind"] == ALL_INTERFACES
    assert values["http_port"] == "8088"
    assert values["ari_password"] == env_example()["DIALER_ARI_PASSWORD"]


def test_the_dialer_reaches_asterisk_and_redis_by_service_name_and_serves_on_8080(
    tmp_path: Path,
) -> None:
    config = compose_config("dialer", tmp_path)
    assert config.ari.url == "http://asterisk:8088"
    assert config.redis.url == "redis://redis:6379/0"
    assert (config.server.host, config.server.port) == (ALL_INTERFACES, 8080)
    assert any(str(port).endswith(":8080") for port in service("dialer")["ports"])
    render = compose_config(RENDERER, tmp_path)
    assert (render.ari.username, render.ari.app) == (config.ari.username, config.ari.app)


def test_published_sip_and_rtp_ports_match_the_rendered_config(tmp_path: Path) -> None:
    tb = compose_config(RENDERER, tmp_path).asterisk
    container_ports = {str(port).rsplit(":", 1)[1] for port in service("asterisk")["ports"]}
    assert container_ports == {f"{tb.sip_port}/udp", f"{tb.rtp_start}-{tb.rtp_end}/udp"}
    assert tb.sip_bind == ALL_INTERFACES


# ----------------------------------------------------------------------------- the Dockerfiles
def test_asterisk_image_installs_exactly_the_testbed_packages() -> None:
    installs = apt_installed_packages(DOCKER / "asterisk.Dockerfile")
    assert installs == [ROOT_PACKAGES.split(",")]


def test_asterisk_image_is_debian_sid_and_runs_the_rendered_config_as_the_asterisk_user() -> None:
    path = DOCKER / "asterisk.Dockerfile"
    assert [args for kw, args in dockerfile_instructions(path) if kw == "FROM"] == [
        "debian:sid-slim"
    ]
    assert exec_form(path, "CMD") == ["asterisk", "-C", f"{ETC_IN_ROOT}/asterisk.conf", "-f", "-n"]
    assert last_user(path) == "asterisk"
    runs = " ".join(args for kw, args in dockerfile_instructions(path) if kw == "RUN")
    for directory in ("/run/asterisk", "/var/lib/asterisk", "/var/log/asterisk",
                      "/var/spool/asterisk"):
        assert directory in runs
    assert "Acquire::Check-Valid-Until=false" in runs


def test_dialer_image_installs_the_project_and_runs_dialer_serve_as_non_root() -> None:
    path = DOCKER / "dialer.Dockerfile"
    assert [args for kw, args in dockerfile_instructions(path) if kw == "FROM"] == [
        "python:3.11-slim-bookworm"
    ]
    assert exec_form(path, "ENTRYPOINT") == ["dialer"]
    assert exec_form(path, "CMD") == ["serve"]
    assert last_user(path).split(":")[0] not in {"root", "0"}
    assert [args for kw, args in dockerfile_instructions(path) if kw == "EXPOSE"] == ["8080"]
    ignore = (DOCKER / "dialer.Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert ignore[ignore.index("*") + 1:].count("!dialer/") == 1


# ------------------------------------------------------------------- production vs testbed conf
def test_production_render_is_the_testbed_render_without_the_testbed_includes(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "dialer.yaml"
    config_file.write_text("ari:\n  password: docker-test-secret\n", encoding="utf-8")
    config = load_config(config_file, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    values = conf_values(config, ETC_IN_ROOT)
    prod, testbed = tmp_path / "prod", tmp_path / "testbed"
    render_dir(CONF_SRC, prod, values, testbed=False)
    render_dir(CONF_SRC, testbed, values, testbed=True)

    prod_files = {p.name for p in prod.iterdir()}
    assert all((prod / name).is_file() for name in prod_files), "production has no subfolders"
    assert prod_files == {p.name for p in testbed.iterdir() if p.is_file()}
    assert prod_files == {p.name for p in CONF_SRC.glob("*.conf")}

    with_include = set()
    for name in sorted(prod_files):
        prod_text = (prod / name).read_text(encoding="utf-8")
        testbed_text = (testbed / name).read_text(encoding="utf-8")
        assert TESTBED_SUBDIR + "/" not in prod_text, f"production {name} mentions the testbed"
        assert not re.search(r"^\s*#include", prod_text, re.MULTILINE)
        assert testbed_text.startswith(prod_text), name
        extra = [
            line for line in testbed_text[len(prod_text):].splitlines()
            if line.strip() and not line.lstrip().startswith(";")
        ]
        if extra:
            assert extra == [f'#include "{TESTBED_SUBDIR}/{name}"'], name
            with_include.add(name)
    assert with_include == {p.name for p in (CONF_SRC / TESTBED_SUBDIR).glob("*.conf")}
    assert with_include, "the testbed adds its parts to some files"
    assert f"astetcdir => {ETC_IN_ROOT}" in (prod / "asterisk.conf").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- Prometheus/Grafana
def test_prometheus_scrapes_the_dialer_metrics() -> None:
    scrape = load_yaml(DOCKER / "prometheus.yml")["scrape_configs"]
    targets = [
        (job.get("metrics_path", "/metrics"), target)
        for job in scrape
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert ("/metrics", "dialer:8080") in targets
    assert ("./prometheus.yml", "/etc/prometheus/prometheus.yml", "ro") in mounts("prometheus")


def test_grafana_datasource_is_the_compose_prometheus_with_uid_prometheus() -> None:
    path = DOCKER / "grafana/provisioning/datasources/prometheus.yaml"
    datasources = load_yaml(path)["datasources"]
    assert [(d["uid"], d["type"], d["url"]) for d in datasources] == [
        ("prometheus", "prometheus", "http://prometheus:9090")
    ]


def test_grafana_dashboard_provider_reads_the_mounted_dashboards_directory() -> None:
    providers = load_yaml(DOCKER / "grafana/provisioning/dashboards/dialer.yaml")["providers"]
    assert [p["type"] for p in providers] == ["file"]
    path = providers[0]["options"]["path"]
    assert ("./grafana/dashboards", path, "ro") in mounts("grafana")
    assert ("./grafana/provisioning", "/etc/grafana/provisioning", "ro") in mounts("grafana")
    assert (DOCKER / "grafana/dashboards").is_dir()
    for dashboard in (DOCKER / "grafana/dashboards").glob("*.json"):
        assert isinstance(json.loads(dashboard.read_text(encoding="utf-8")), dict)
