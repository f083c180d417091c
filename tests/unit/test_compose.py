"""Static consistency checks of the scale-out deployment (docker-compose.yaml + docker/Dockerfile).

No Docker engine is needed: the compose file is parsed with PyYAML, ``${VAR:-default}``
interpolation is resolved by a small resolver (once with the built-in defaults only, once with the
values from docker/.env.example), and the Dockerfile is read instruction by instruction.
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENV_EXAMPLE = ROOT / "docker" / ".env.example"
REQUIREMENTS = ROOT / "requirements.txt"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
REQUIRED_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "results-db", "minio", "minio-init"}
ONE_SHOT_SERVICES = {"airflow-init", "minio-init"}
BUCKETS = {"rawdata", "processed"}
PROJECT_DIRS = ("dags", "plugins", "include", "sql", "models")


# ----------------------------------------------------------------------------------------------
# ${VAR:-default} interpolation (the subset of the compose spec this project uses, plus a bit)
# ----------------------------------------------------------------------------------------------
_ESCAPED_DOLLAR = "\x00"
# Innermost braced expression first: the default may not contain '$', '{' or '}', so nested
# defaults such as ${A:-${B:-x}} resolve from the inside out over successive passes.
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?|:\+|\+)([^${}]*))?\}")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class UnresolvedVariable(ValueError):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Resolve compose-style interpolation in one string; ``$$`` is a literal ``$``."""
    text = value.replace("$$", _ESCAPED_DOLLAR)

    def braced(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        is_set = name in env
        non_empty = is_set and env[name] != ""
        if op is None:
            if not is_set:
                raise UnresolvedVariable(f"${{{name}}} has no default and is not set")
            return env[name]
        if op == ":-":
            return env[name] if non_empty else arg
        if op == "-":
            return env[name] if is_set else arg
        if op in (":?", "?"):
            if (op == ":?" and not non_empty) or (op == "?" and not is_set):
                raise UnresolvedVariable(f"${{{name}}} is required: {arg}")
            return env[name]
        if op == ":+":
            return arg if non_empty else ""
        return arg if is_set else ""  # "+"

    while True:
        resolved = _BRACED.sub(braced, text)
        if resolved == text:
            break
        text = resolved

    def bare(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise UnresolvedVariable(f"${name} has no default and is not set")
        return env[name]

    text = _BARE.sub(bare, text)
    if "${" in text:
        raise UnresolvedVariable(f"malformed interpolation in {value!r}")
    return text.replace(_ESCAPED_DOLLAR, "$")


def resolve_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (not the keys), as compose does after parsing."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve_tree(value, env) for key, value in node.items()}
    return node


def test_interpolate_resolver() -> None:
    assert interpolate("${A:-x}", {}) == "x"
    assert interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("${A-x}", {"A": ""}) == ""
    assert interpolate("${A:-x}", {"A": "y"}) == "y"
    assert interpolate("a${A:-${B:-b}}c", {}) == "abc"
    assert interpolate("a${A:-${B:-b}}c", {"B": "q"}) == "aqc"
    assert interpolate("$${HOSTNAME} $$X", {}) == "${HOSTNAME} $X"
    assert interpolate("${A:+set}", {"A": "1"}) == "set"
    assert interpolate("$A/${B}", {"A": "1", "B": "2"}) == "1/2"
    with pytest.raises(UnresolvedVariable):
        interpolate("${NOPE}", {})
    with pytest.raises(UnresolvedVariable):
        interpolate("${NOPE:?must be set}", {})


# ----------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


@pytest.fixture(scope="module")
def compose_text() -> str:
    assert COMPOSE_FILE.is_file(), "docker-compose.yaml missing at the repository root"
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def raw_compose(compose_text: str) -> dict[str, Any]:
    doc = yaml.safe_load(compose_text)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    assert ENV_EXAMPLE.is_file(), "docker/.env.example missing"
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module", params=["defaults", "env-example"])
def compose(
    request: pytest.FixtureRequest, raw_compose: dict[str, Any], env_example: dict[str, str]
) -> dict[str, Any]:
    """The compose model after interpolation: built-in defaults only, or with .env.example."""
    env = {} if request.param == "defaults" else env_example
    return resolve_tree(raw_compose, env)


def services_of(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["services"]


def env_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_of(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_text(service: Mapping[str, Any]) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, list):
            parts.append(" ".join(str(v) for v in value))
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


def services_using_common_anchor(text: str) -> set[str]:
    """Services whose block merges ``*airflow-common`` (PyYAML resolves merges, so read the text)."""
    users: set[str] = set()
    in_services = False
    current = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^services:\s*$", line):
            in_services = True
            continue
        if re.match(r"^\S", line):
            in_services = False
            current = None
            continue
        if not in_services:
            continue
        header = re.match(r"^  ([A-Za-z0-9._-]+):\s*$", line)
        if header:
            current = header.group(1)
        elif current and re.match(r"^    <<:\s*\*airflow-common\s*$", line):
            users.add(current)
    return users


def common_env(doc: Mapping[str, Any]) -> dict[str, str]:
    return env_of(doc["x-airflow-common"])


def container_port(service: Mapping[str, Any], default: int) -> int:
    """The port a server listens on inside its container, from `--address :PORT` or the default."""
    match = re.search(r"--address[ =]\S*?:(\d+)", command_text(service))
    return int(match.group(1)) if match else default


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, int, int, str]]:
    """(host_ip, host_port, container_port, protocol) for every published port of a service."""
    out = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            if spec.get("published") is None:
                continue
            published, target = int(spec["published"]), int(spec["target"])
            out.append((spec.get("host_ip", ""), published, target, spec.get("protocol", "tcp")))
            continue
        spec = str(spec)
        spec, _, proto = spec.partition("/")
        fields = spec.rsplit(":", 2)
        if len(fields) == 1:  # container port only: ephemeral host port, cannot collide
            continue
        host_ip = fields[0] if len(fields) == 3 else ""
        host, target = fields[-2], fields[-1]
        host_range = [int(p) for p in host.split("-")]
        target_range = [int(p) for p in target.split("-")]
        hosts = range(host_range[0], host_range[-1] + 1)
        targets = range(target_range[0], target_range[-1] + 1)
        assert len(hosts) == len(targets), f"port range mismatch in {spec!r}"
        out.extend((host_ip, h, t, proto or "tcp") for h, t in zip(hosts, targets))
    return out


# ----------------------------------------------------------------------------------------------
# Services and the x-airflow-common anchor
# ----------------------------------------------------------------------------------------------
def test_required_services_exist(compose: dict[str, Any]) -> None:
    missing = REQUIRED_SERVICES - set(services_of(compose))
    assert not missing, f"missing services: {sorted(missing)}"


def test_airflow_services_share_the_common_image(compose: dict[str, Any], compose_text: str) -> None:
    common = compose["x-airflow-common"]
    assert common.get("image") and common.get("build"), "x-airflow-common must set both image and build"
    users = services_using_common_anchor(compose_text)
    assert AIRFLOW_SERVICES <= users, f"not merging *airflow-common: {sorted(AIRFLOW_SERVICES - users)}"
    services = services_of(compose)
    for name in users:
        assert services[name].get("image") == common["image"], name
        assert services[name].get("build") == common["build"], name
    # Nothing else builds an image: every Airflow container runs the same code.
    builders = {name for name, svc in services.items() if "build" in svc}
    assert builders == users


def test_airflow_services_keep_the_common_environment(compose: dict[str, Any], compose_text: str) -> None:
    """Services that override `environment` must merge the common env unchanged (same JWT secret,
    executor, connections... in every component)."""
    base = common_env(compose)
    services = services_of(compose)
    for name in services_using_common_anchor(compose_text):
        env = env_of(services[name])
        drift = {k: (v, env.get(k)) for k, v in base.items() if env.get(k) != v}
        assert not drift, f"{name} diverges from x-airflow-common environment: {drift}"


def test_executor_is_celery(compose: dict[str, Any]) -> None:
    env = common_env(compose)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert services_of(compose)["airflow-worker"]["command"] == "celery worker"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"].lower() == "false"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"], "JWT secret must not be empty"
    assert "AIRFLOW__CORE__FERNET_KEY" in env


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = services_of(compose)["airflow-worker"]
    assert "container_name" not in worker, "container_name prevents --scale airflow-worker=N"
    assert not worker.get("ports"), "published ports prevent --scale airflow-worker=N"


# ----------------------------------------------------------------------------------------------
# Dependencies, health, restart policy
# ----------------------------------------------------------------------------------------------
def test_depends_on_targets_exist_and_form_no_cycle(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    graph = {name: depends_of(svc) for name, svc in services.items()}
    for name, deps in graph.items():
        unknown = set(deps) - set(services)
        assert not unknown, f"{name} depends on undefined services {sorted(unknown)}"
        assert name not in deps, f"{name} depends on itself"

    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"dependency cycle: {' -> '.join(path + (node,))}"
        state[node] = 1
        for dep in graph[node]:
            visit(dep, path + (node,))
        state[node] = 2

    for name in graph:
        visit(name, ())


def test_depends_on_conditions_match_targets(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for name, svc in services.items():
        for dep, condition in depends_of(svc).items():
            assert condition in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy, it has no healthcheck"
            if condition == "service_completed_successfully":
                assert dep in ONE_SHOT_SERVICES, f"{name} waits for long-running {dep} to complete"


def test_long_running_services_have_healthcheck_and_restart(compose: dict[str, Any]) -> None:
    for name, svc in services_of(compose).items():
        if name in ONE_SHOT_SERVICES:
            assert svc.get("restart") in (None, "no", "on-failure"), f"one-shot {name} must not restart always"
            continue
        if "debug" in (svc.get("profiles") or []):
            continue
        assert svc.get("restart") == "always", f"{name} should have restart: always"
        test = (svc.get("healthcheck") or {}).get("test")
        assert test, f"{name} has no healthcheck"


def test_apiserver_healthcheck_and_execution_api_url(compose: dict[str, Any]) -> None:
    api = services_of(compose)["airflow-apiserver"]
    assert api["command"] == "api-server"
    assert "/api/v2/version" in " ".join(api["healthcheck"]["test"])
    ports = published_ports(api)
    assert [p[2] for p in ports] == [8080]
    url = urlsplit(common_env(compose)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "airflow-apiserver", 8080, "/execution/")


def test_airflow_init_migrates_both_databases(compose: dict[str, Any]) -> None:
    init = services_of(compose)["airflow-init"]
    env = env_of(init)
    assert env.get("_AIRFLOW_DB_MIGRATE", "").lower() == "true"
    script = command_text(init)
    assert "flarewatch migrate" in script
    # The Airflow metadata migration (run by the entrypoint) happens before the FlareWatch one.
    assert script.index("/entrypoint airflow") < script.index("flarewatch migrate")
    deps = depends_of(init)
    assert deps.get("results-db") == "service_healthy"
    assert deps.get("postgres") == "service_healthy"


# ----------------------------------------------------------------------------------------------
# Volumes and ports
# ----------------------------------------------------------------------------------------------
def named_volumes(service: Mapping[str, Any]) -> list[str]:
    names = []
    for spec in service.get("volumes") or []:
        if isinstance(spec, dict):
            if spec.get("type", "volume") == "volume" and spec.get("source"):
                names.append(spec["source"])
            continue
        source = str(spec).split(":", 1)[0]
        if ":" in str(spec) and not source.startswith((".", "/", "~")) and "/" not in source:
            names.append(source)
    return names


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, svc in services_of(compose).items():
        for volume in named_volumes(svc):
            assert volume in declared, f"{name} uses undeclared volume {volume!r}"
            used.add(volume)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"
    results_volumes = set(named_volumes(services_of(compose)["results-db"]))
    metadata_volumes = set(named_volumes(services_of(compose)["postgres"]))
    assert results_volumes and not results_volumes & metadata_volumes, "results-db needs its own volume"
    assert named_volumes(services_of(compose)["minio"]), "minio data must be on a volume"


def test_host_ports_do_not_collide(compose: dict[str, Any]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for name, svc in services_of(compose).items():
        for _host_ip, host_port, _target, proto in published_ports(svc):
            key = (host_port, proto)
            assert key not in seen, f"host port {host_port}/{proto} used by {seen[key]} and {name}"
            seen[key] = name
    assert "airflow-apiserver" in seen.values(), "the api-server must be reachable from the host"


# ----------------------------------------------------------------------------------------------
# Endpoints: S3 (MinIO), results DB, metadata DB, broker
# ----------------------------------------------------------------------------------------------
def test_s3_connection_points_at_minio(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    conn = json.loads(common_env(compose)["AIRFLOW_CONN_FLAREWATCH_S3"])
    assert conn["conn_type"] == "aws"
    endpoint = urlsplit(conn["extra"]["endpoint_url"])
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "minio" and "minio" in services
    assert endpoint.port == container_port(services["minio"], 9000)
    assert conn["extra"].get("region_name")
    minio_env = env_of(services["minio"])
    assert conn["login"] == minio_env["MINIO_ROOT_USER"]
    assert conn["password"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert len(minio_env["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses root passwords under 8 characters"
    api_targets = {t for _, _, t, _ in published_ports(services["minio"])}
    assert endpoint.port in api_targets


def test_db_connection_points_at_results_db(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    url = urlsplit(common_env(compose)["AIRFLOW_CONN_FLAREWATCH_DB"])
    assert url.scheme in ("postgres", "postgresql")
    assert url.hostname == "results-db"
    results_env = env_of(services["results-db"])
    assert (url.port or 5432) == int(results_env.get("PGPORT", 5432))
    assert unquote(url.username or "") == results_env["POSTGRES_USER"]
    assert unquote(url.password or "") == results_env["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == results_env["POSTGRES_DB"]


def test_metadata_db_and_result_backend_point_at_postgres(compose: dict[str, Any]) -> None:
    env = common_env(compose)
    pg_env = env_of(services_of(compose)["postgres"])
    for key, schemes in (
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ("postgresql+psycopg2", "postgresql")),
        ("AIRFLOW__CELERY__RESULT_BACKEND", ("db+postgresql", "db+postgresql+psycopg2")),
    ):
        url = urlsplit(env[key])
        assert url.scheme in schemes, key
        assert url.hostname == "postgres", key
        assert (url.port or 5432) == int(pg_env.get("PGPORT", 5432)), key
        assert unquote(url.username or "") == pg_env["POSTGRES_USER"], key
        assert unquote(url.password or "") == pg_env["POSTGRES_PASSWORD"], key
        assert url.path.lstrip("/") == pg_env["POSTGRES_DB"], key


def test_celery_broker_points_at_redis(compose: dict[str, Any]) -> None:
    url = urlsplit(common_env(compose)["AIRFLOW__CELERY__BROKER_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis" and "redis" in services_of(compose)
    assert (url.port or 6379) == 6379


def test_minio_init_creates_the_buckets(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    init = services["minio-init"]
    assert depends_of(init).get("minio") == "service_healthy"
    script = command_text(init)
    alias = re.search(r"mc alias set (\S+) (\S+)", script)
    assert alias, "minio-init must define an mc alias"
    name, url = alias.group(1), urlsplit(alias.group(2))
    assert url.hostname == "minio" and url.port == container_port(services["minio"], 9000)
    created = set(re.findall(rf"mc mb --ignore-existing {re.escape(name)}/([A-Za-z0-9.-]+)", script))
    assert BUCKETS <= created, f"minio-init creates {sorted(created)}"
    env = common_env(compose)
    assert {env["FLAREWATCH_RAW_BUCKET"], env["FLAREWATCH_PROCESSED_BUCKET"]} <= created
    init_env = env_of(init)
    minio_env = env_of(services["minio"])
    for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert init_env.get(key) == minio_env[key]


def test_flarewatch_settings(compose: dict[str, Any]) -> None:
    env = common_env(compose)
    assert env["FLAREWATCH_SCENE_SOURCE"] == "demo"
    assert env["FLAREWATCH_RAW_BUCKET"] == "rawdata"
    assert env["FLAREWATCH_PROCESSED_BUCKET"] == "processed"
    assert env["YOLO_OFFLINE"] == "1"
    assert env["YOLO_CONFIG_DIR"] == "/opt/airflow/state/ultralytics"
    # The writable state dir is a volume shared by all Airflow containers.
    targets = [str(v).split(":")[1] for v in compose["x-airflow-common"]["volumes"]]
    assert any(env["YOLO_CONFIG_DIR"].startswith(t.rstrip("/") + "/") for t in targets)
    pw_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert any(pw_file.startswith(t.rstrip("/") + "/") for t in targets)


def test_every_variable_has_a_default_and_is_documented(
    raw_compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    resolve_tree(raw_compose, {})  # raises UnresolvedVariable if a ${VAR} lacks a default
    names: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, str):
            text = node.replace("$$", "")
            names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text), _BARE.findall(text))
        elif isinstance(node, list):
            for item in node:
                collect(item)
        elif isinstance(node, dict):
            for value in node.values():
                collect(value)

    collect(raw_compose)
    assert "MINIO_ROOT_PASSWORD" in names  # sanity: the walk sees interpolated values
    undocumented = names - set(env_example)
    assert not undocumented, f"not listed in docker/.env.example: {sorted(undocumented)}"


# ----------------------------------------------------------------------------------------------
# Dockerfile
# ----------------------------------------------------------------------------------------------
def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    instructions, buffer = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        buffer = ""
    assert not buffer, "dangling line continuation"
    return instructions


def copy_sources_and_dest(args: str) -> tuple[list[str], str, dict[str, str]]:
    tokens = shlex.split(args)
    flags = {}
    while tokens and tokens[0].startswith("--"):
        key, _, value = tokens.pop(0)[2:].partition("=")
        flags[key] = value
    return tokens[:-1], tokens[-1], flags


def pip_install_commands(run: str) -> list[list[str]]:
    commands = []
    for part in re.split(r"&&|;|\|\|", run):
        tokens = shlex.split(part)
        for i in range(len(tokens) - 1):
            if tokens[i] in ("pip", "pip3") or tokens[i].endswith("/pip"):
                if tokens[i + 1] == "install":
                    commands.append(tokens[i + 2 :])
            elif tokens[i] == "-m" and tokens[i + 1] == "pip" and i + 2 < len(tokens) and tokens[i + 2] == "install":
                commands.append(tokens[i + 3 :])
    return commands


def split_pip_args(args: list[str]) -> tuple[set[str], list[str], list[str]]:
    """flags, requirement files (-r), positional targets (paths / specs, -e values included)."""
    flags, req_files, positional = set(), [], []
    it = iter(args)
    for token in it:
        if token in ("-r", "--requirement"):
            req_files.append(next(it))
        elif token.startswith("--requirement="):
            req_files.append(token.split("=", 1)[1])
        elif token in ("-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links"):
            next(it)
        elif token in ("-e", "--editable"):
            positional.append(next(it))
        elif token.startswith("-"):
            flags.add(token.split("=", 1)[0])
        else:
            positional.append(token)
    return flags, req_files, positional


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    assert DOCKERFILE.is_file(), "docker/Dockerfile missing"
    return dockerfile_instructions(DOCKERFILE)


@pytest.fixture(scope="module")
def image_layout(dockerfile: list[tuple[str, str]]) -> dict[str, Any]:
    """Where each COPY'd build-context path lands, and the pip installs with their WORKDIR."""
    workdir = "/opt/airflow"  # AIRFLOW_HOME, the base image's WORKDIR
    copied: dict[str, str] = {}
    installs: list[tuple[str, list[str]]] = []
    # in build order: ("copy", source, target) and ("run", workdir, tokens of one shell command)
    steps: list[tuple[str, str, Any]] = []
    for keyword, args in dockerfile:
        if keyword == "WORKDIR":
            workdir = posixpath.join(workdir, args)
        elif keyword in ("COPY", "ADD"):
            sources, dest, flags = copy_sources_and_dest(args)
            if "from" in flags:
                continue
            dest = posixpath.join(workdir, dest)
            for src in sources:
                norm = src.rstrip("/") or "."
                if dest.endswith("/") or len(sources) > 1:
                    is_dir = (ROOT / norm).is_dir()
                    target = dest.rstrip("/") if is_dir else posixpath.join(dest, posixpath.basename(norm))
                else:
                    target = dest
                copied[norm] = posixpath.normpath(target)
                steps.append(("copy", norm, copied[norm]))
        elif keyword == "RUN":
            installs.extend((workdir, cmd) for cmd in pip_install_commands(args))
            steps.extend(("run", workdir, shlex.split(part)) for part in re.split(r"&&|;|\|\|", args) if part.strip())
    return {"copied": copied, "installs": installs, "steps": steps}


def test_compose_builds_the_dockerfile_from_the_repo_root(raw_compose: dict[str, Any]) -> None:
    build = raw_compose["x-airflow-common"]["build"]
    context = (COMPOSE_FILE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()


def test_dockerfile_base_image_matches_pinned_airflow(dockerfile: list[tuple[str, str]]) -> None:
    froms = [args for keyword, args in dockerfile if keyword == "FROM"]
    assert froms, "no FROM"
    match = re.fullmatch(r"apache/airflow:(3\.3\.\d+)(?:-python(\d+\.\d+))?(?:\s+AS\s+\S+)?", froms[-1], re.I)
    assert match, f"final stage must be FROM apache/airflow:3.3.x, got {froms[-1]!r}"
    pinned = re.search(r"^apache-airflow(?:\[[^\]]*\])?==(\S+)", REQUIREMENTS.read_text(), re.M)
    assert pinned and pinned.group(1) == match.group(1), "base image and requirements.txt pin different Airflow"
    assert match.group(2) == "3.11", "the stack is pinned for Python 3.11"
    users = [args for keyword, args in dockerfile if keyword == "USER"]
    assert users and users[-1].split(":")[0] in ("airflow", "50000"), "the image must not run as root"


def test_dockerfile_copies_existing_project_paths(image_layout: dict[str, Any]) -> None:
    copied = image_layout["copied"]
    for src in copied:
        assert (ROOT / src).exists(), f"COPY source {src!r} is not in the build context"
    for directory in PROJECT_DIRS:
        assert (ROOT / directory).is_dir(), f"{directory}/ missing at the repository root"
        assert directory in copied, f"{directory}/ is not copied into the image"
    for name in ("pyproject.toml", "requirements.txt", "requirements-nodeps.txt"):
        assert name in copied, f"{name} is not copied into the image"
    assert copied["dags"] == "/opt/airflow/dags"
    assert copied["plugins"] == "/opt/airflow/plugins"


def test_dockerfile_installs_requirements_and_package(image_layout: dict[str, Any]) -> None:
    copied, installs = image_layout["copied"], image_layout["installs"]
    parsed = [(workdir, *split_pip_args(args)) for workdir, args in installs]

    def installs_file(name: str) -> list[tuple[set[str], list[str]]]:
        target = copied[name]
        return [
            (flags, positional)
            for workdir, flags, req_files, positional in parsed
            if any(posixpath.normpath(posixpath.join(workdir, r)) == target for r in req_files)
        ]

    reqs = installs_file("requirements.txt")
    assert reqs, "requirements.txt is never pip-installed"
    assert any(
        any(re.fullmatch(r"apache-airflow==(\$\{?AIRFLOW_VERSION\}?|3\.3\.\d+)", p) for p in positional)
        for _flags, positional in reqs
    ), "pin apache-airflow==<base image version> next to requirements.txt"

    nodeps = installs_file("requirements-nodeps.txt")
    assert nodeps and all("--no-deps" in flags for flags, _ in nodeps), "requirements-nodeps.txt needs --no-deps"

    package_dir = posixpath.dirname(copied["pyproject.toml"])
    assert posixpath.dirname(copied["include"]) == package_dir or copied["include"].startswith(package_dir + "/")
    assert any(
        any(posixpath.normpath(posixpath.join(workdir, p)) == package_dir for p in positional)
        for workdir, _flags, _reqs, positional in parsed
    ), "the flarewatch package is never pip-installed"


def _package_install_step(image_layout: dict[str, Any]) -> int:
    """Index in ``steps`` of the shell command that pip-installs the flarewatch package directory."""
    package_dir = posixpath.dirname(image_layout["copied"]["pyproject.toml"])
    for i, (kind, workdir, tokens) in enumerate(image_layout["steps"]):
        if kind != "run":
            continue
        for args in pip_install_commands(shlex.join(tokens)):
            _flags, _reqs, positional = split_pip_args(args)
            if any(posixpath.normpath(posixpath.join(workdir, p)) == package_dir for p in positional):
                assert "-e" not in args and "--editable" not in args, "the image installs the package non-editable"
                return i
    raise AssertionError("the flarewatch package is never pip-installed")


def test_dockerfile_puts_sql_and_models_where_the_package_links_point(image_layout: dict[str, Any]) -> None:
    """sql/ and models/ reach the package through include/flarewatch/_shipped/{sql,models} (links):
    in the image they must sit where those links point before the package is built, so that the
    wheel holds them as package data (no FLAREWATCH_SQL_DIR / FLAREWATCH_MODELS_DIR needed)."""
    copied, steps = image_layout["copied"], image_layout["steps"]
    install = _package_install_step(image_layout)
    shipped = ROOT / "include" / "flarewatch" / "_shipped"
    for name in ("sql", "models"):
        link = shipped / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), f"{link} must link to {name}/"
        in_image = posixpath.normpath(posixpath.join(copied["include"], "flarewatch", "_shipped", os.readlink(link)))
        assert copied[name] == in_image, f"{name}/ is copied to {copied[name]}, the package link points to {in_image}"
    for src in ("pyproject.toml", "include", "sql", "models"):
        at = [i for i, (kind, source, _target) in enumerate(steps) if kind == "copy" and source == src]
        assert at and max(at) < install, f"{src} must be copied before the package is pip-installed"


def test_dockerfile_leaves_the_dev_subpackage_out(image_layout: dict[str, Any]) -> None:
    dev = posixpath.join(image_layout["copied"]["include"], "flarewatch", "dev")
    install = _package_install_step(image_layout)
    removed = [i for i, (kind, workdir, tokens) in enumerate(image_layout["steps"])
               if kind == "run" and tokens[:1] == ["rm"]
               and any(posixpath.normpath(posixpath.join(workdir, t)) == dev for t in tokens[1:])]
    assert removed and min(removed) < install, f"remove {dev} before the package is pip-installed"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, at module level?) of one source file."""
    import ast

    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, id(node) in top) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.extend((f"{node.module}.{a.name}", id(node) in top) for a in node.names)
    return out


def test_image_code_does_not_need_the_dev_subpackage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image has no flarewatch.dev: nothing it runs may import it, and the CLI imports it only
    inside the local-stack commands (``flarewatch migrate`` runs in airflow-init)."""
    pkg = ROOT / "include" / "flarewatch"
    sources = [*sorted((ROOT / "dags").rglob("*.py")), *sorted((ROOT / "plugins").rglob("*.py")),
               *(p for p in sorted(pkg.rglob("*.py")) if p.relative_to(pkg).parts[0] != "dev")]
    assert any(p.name == "cli.py" for p in sources)
    for path in sources:
        for module, top_level in _imports(path):
            if module == "flarewatch.dev" or module.startswith("flarewatch.dev."):
                rel = path.relative_to(ROOT)
                assert rel.as_posix() == "include/flarewatch/cli.py", f"{rel} imports {module}"
                assert not top_level, f"{rel} imports {module} at module level"

    monkeypatch.setitem(sys.modules, "flarewatch.dev", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "flarewatch.dev.localstack", None)
    from flarewatch import cli

    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_DB", "postgres://u:p@results-db:5432/flarewatch")
    assert cli._dsn_from_airflow_conn() == "postgresql://u:p@results-db:5432/flarewatch"
    with pytest.raises(RuntimeError, match="flarewatch.dev"):
        cli._dev("localstack")


def test_flarewatch_imports_in_compose_commands_resolve(raw_compose: dict[str, Any]) -> None:
    """``python -c 'from flarewatch.X import Y'`` in a service command must name a real module and
    name, outside flarewatch.dev (not in the image)."""
    found = []
    for name, svc in services_of(raw_compose).items():
        script = command_text(svc)
        for module, names in re.findall(r"from (flarewatch[\w.]*) import ([\w, ]+)", script):
            assert not (module + ".").startswith("flarewatch.dev."), f"{name}: {module} is not in the image"
            mod = importlib.import_module(module)
            for attr in (n.strip() for n in names.split(",")):
                assert hasattr(mod, attr), f"{name}: {module} has no {attr}"
                found.append(f"{module}.{attr}")
    assert "flarewatch.orchestration.pools.pools_spec" in found, found
    from flarewatch.orchestration.pools import pools_spec

    assert json.loads(json.dumps(pools_spec())), "airflow-init imports this JSON into the Airflow pools"


def test_compose_uses_the_packaged_sql_and_models(compose: dict[str, Any]) -> None:
    for name, svc in services_of(compose).items():
        env = env_of(svc)
        for key in ("FLAREWATCH_SQL_DIR", "FLAREWATCH_MODELS_DIR"):
            assert key not in env, f"{name} sets {key}: the image reads the package data (flarewatch.resources)"
