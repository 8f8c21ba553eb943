"""docker-compose.yml: valid for Compose, and wired the way production needs.

Validation uses `docker-compose config -q` (the Debian `docker-compose` package, or the
`docker compose` plugin; neither needs a running engine). Without one, the file is
checked against the Compose Specification JSON schema vendored in
tests/schemas/compose-spec.json (from docker/compose 1.29.2, Apache-2.0) when
`jsonschema` is installed. The structural tests below need neither.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
RASA_PROJECT = ROOT / "bot" / "rasa"
RASA_DOCKERFILE = ROOT / "docker" / "rasa.Dockerfile"
SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"
SECRETS = {
    "ELASTIC_PASSWORD": "elastic-secret",
    "TELLER_ES_PASSWORD": "teller-secret",
    "POSTGRES_PASSWORD": "postgres-secret",
    "REDIS_PASSWORD": "redis-secret",
    "TELLER_ADMIN_TOKEN": "admin-token",
    "RASA_AUTH_TOKEN": "rasa-token",
    "ACTIONS_TOKEN": "actions-token",
}
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")
_REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _compose_command() -> list[str] | None:
    if path := shutil.which("docker-compose"):
        return [path]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def _run_config(command: list[str], secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only PATH and the secrets: no variable of this shell may change the result.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **secrets}
    return subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_validates(compose: dict[str, Any]) -> None:
    command = _compose_command()
    if command is not None:
        result = _run_config(command, SECRETS)
        assert result.returncode == 0, result.stderr
        return
    jsonschema = pytest.importorskip(
        "jsonschema",
        reason="neither docker-compose (apt-get install docker-compose) nor the jsonschema "
        "package is installed, so the file cannot be validated here",
    )
    schema = yaml.safe_load(SCHEMA.read_text())
    # The vendored file names its draft as "http://json-schema.org/draft/2019-09/schema#",
    # which jsonschema no longer recognises by that spelling: name the validator.
    validator = jsonschema.Draft201909Validator
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_missing_secrets_stop_compose() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    without = {name: value for name, value in SECRETS.items() if name != "ELASTIC_PASSWORD"}
    result = _run_config(command, without)
    assert result.returncode != 0
    assert "ELASTIC_PASSWORD" in result.stderr


def test_secrets_have_no_default_values() -> None:
    text = COMPOSE_FILE.read_text()
    # `$${NAME}` is the container's own variable, expanded by its shell: skip those.
    for match in re.finditer(r"(?<!\$)\$\{(\w*(?:PASSWORD|TOKEN)\w*)([^}]*)\}", text):
        name, rest = match.groups()
        assert rest.startswith(":?"), f"${{{name}}} must be required (:?), not defaulted"
    assert set(SECRETS) == {m.group(1) for m in re.finditer(r"\$\{(\w+):\?", text)}, (
        "SECRETS must list exactly the required variables"
    )


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    long_running = {name for name, spec in services.items() if spec.get("restart") != "no"}
    assert long_running == {"elasticsearch", "postgres", "redis", "api", "rasa", "actions"}
    for name in long_running:
        check = services[name].get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
        assert services[name]["restart"] == "unless-stopped"


def test_services_start_in_dependency_order(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {
            dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()
        }

    assert conditions("elasticsearch") == {"es-certs": "service_completed_successfully"}
    assert conditions("es-users") == {"elasticsearch": "service_healthy"}
    assert conditions("api") == {
        "migrate": "service_completed_successfully",
        "es-users": "service_completed_successfully",
        "postgres": "service_healthy",
        "elasticsearch": "service_healthy",
    }
    assert conditions("rasa") == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "actions": "service_healthy",
    }
    # The action server needs the API only when an action runs, not to start.
    assert conditions("actions") == {}
    assert conditions("migrate") == {"postgres": "service_healthy"}


def _default(value: str) -> str:
    """`${VAR:-default}` replaced by its default."""
    return _DEFAULTED.sub(lambda m: m.group(2), value)


def test_images_are_pinned(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    for name, spec in services.items():
        image = _default(str(spec.get("image", "")))
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and re.search(r"\d", tag) and tag != "latest", (
            f"{name}: {image} is not pinned"
        )
    assert _default(compose["x-elasticsearch-image"]).endswith(":8.17.4")


def _with_secrets(value: str) -> str:
    """`${VAR:?message}` replaced by the test value of VAR."""
    return _REQUIRED.sub(lambda m: SECRETS[m.group(1)], value)


def _dockerfiles(services: dict[str, dict[str, Any]]) -> set[Path]:
    return {ROOT / spec["build"]["dockerfile"] for spec in services.values() if "build" in spec}


def test_dockerfiles_are_multi_stage_pinned_and_non_root(
    services: dict[str, dict[str, Any]],
) -> None:
    dockerfiles = _dockerfiles(services)
    assert {p.name for p in dockerfiles} == {"api.Dockerfile", "rasa.Dockerfile"}
    for path in dockerfiles:
        text = path.read_text()
        stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\w+)", text, flags=re.MULTILINE)
        assert len(stages) >= 2, f"{path.name} is not multi-stage"
        [base] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
        assert re.fullmatch(r"python:3\.1[01]\.\d+-slim-bookworm", base), base
        final_stage = text.rsplit("\nFROM ", 1)[1]
        users = re.findall(r"^USER\s+(\S+)", final_stage, flags=re.MULTILINE)
        assert users and users[-1] not in {"root", "0"}, f"{path.name} runs as root"
        assert "latest" not in text
    rasa = (ROOT / "docker" / "rasa.Dockerfile").read_text()
    assert re.search(r"^ARG RASA_VERSION=3\.6\.\d+$", rasa, flags=re.MULTILINE)


def test_api_is_wired_to_elasticsearch_and_postgres(services: dict[str, dict[str, Any]]) -> None:
    env = services["api"]["environment"]
    assert env["TELLER_BACKEND"] == "elasticsearch"
    assert env["TELLER_ELASTICSEARCH_URL"] == "https://elasticsearch:9200"
    assert env["TELLER_ELASTICSEARCH_CA_CERTS"].startswith("/certs/")
    assert "es-certs:/certs:ro" in services["api"]["volumes"]
    assert "@postgres:5432/" in env["TELLER_DATABASE_URL"]
    assert env["TELLER_ENVIRONMENT"] == "production"
    fields = {f"TELLER_{name.upper()}" for name in Settings.model_fields}
    unknown = {key for key in env if key not in fields}
    assert not unknown, f"not Teller settings (typo?): {sorted(unknown)}"
    assert services["migrate"]["environment"]["TELLER_DATABASE_URL"] == env["TELLER_DATABASE_URL"]


def _endpoint_variables() -> set[str]:
    """The `${VAR}` names of bot/rasa/endpoints.yml (Rasa refuses to start if one is unset)."""
    text = (RASA_PROJECT / "endpoints.yml").read_text()
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return {name for line in lines for name in re.findall(r"\$\{(\w+)\}", line)}


def test_rasa_sets_every_variable_of_its_endpoints(services: dict[str, dict[str, Any]]) -> None:
    variables = _endpoint_variables()
    assert {"TELLER_ACTIONS_URL", "TELLER_RASA_TRACKER_URL", "TELLER_RASA_LOCK_STORE"} <= variables
    env = services["rasa"]["environment"]
    missing = sorted(variables - set(env))
    assert not missing, f"endpoints.yml needs these on the rasa service: {missing}"
    for name in variables:
        assert env[name] not in (None, ""), f"{name} is empty"


def test_rasa_uses_postgres_redis_and_the_action_server(
    services: dict[str, dict[str, Any]],
) -> None:
    env = services["rasa"]["environment"]
    # Teller's own PostgreSQL database, with the driver name Rasa's SQLAlchemy knows.
    tracker = urlsplit(_with_secrets(env["TELLER_RASA_TRACKER_URL"]))
    database = urlsplit(_with_secrets(services["api"]["environment"]["TELLER_DATABASE_URL"]))
    assert tracker.scheme == "postgresql" and tracker.hostname == "postgres"
    assert (tracker.netloc, tracker.path) == (database.netloc, database.path)
    assert env["TELLER_RASA_LOCK_STORE"] == "redis"
    assert (env["TELLER_RASA_REDIS_HOST"], env["TELLER_RASA_REDIS_PORT"]) == ("redis", "6379")
    assert env["TELLER_RASA_REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert env["TELLER_RASA_REDIS_DB"].isdigit()
    # Rasa's action endpoint is the action server's webhook, not the API.
    action_url = urlsplit(env["TELLER_ACTIONS_URL"])
    command = services["actions"]["command"]
    port = int(command[command.index("--port") + 1])
    assert (action_url.scheme, action_url.hostname, action_url.port) == ("http", "actions", port)
    assert action_url.path == "/webhook"
    for name, spec in services.items():
        for key, value in spec.get("environment", {}).items():
            assert "api:8000/webhook" not in str(value), f"{name}.{key}: stale API webhook"


def test_actions_server_runs_the_rasa_image_and_calls_the_api(
    services: dict[str, dict[str, Any]],
) -> None:
    actions, rasa, api = services["actions"], services["rasa"], services["api"]
    assert actions["image"] == rasa["image"]
    assert actions["build"] == rasa["build"]
    assert actions["command"][:5] == ["rasa", "run", "actions", "--actions", "actions"]
    env = actions["environment"]
    assert env["SANIC_HOST"] == "0.0.0.0"
    assert env["TELLER_API_URL"] == f"http://api:{api['environment']['TELLER_PORT']}"
    token = api["environment"]["TELLER_ACTIONS_TOKEN"]
    assert token.startswith("${ACTIONS_TOKEN:?") and env["TELLER_ACTIONS_TOKEN"] == token
    # Every TELLER_* variable the actions read is set.
    read = {
        name
        for path in (RASA_PROJECT / "actions").glob("*.py")
        for name in re.findall(r"environ\.get\(\s*\"(TELLER_\w+)\"", path.read_text())
    }
    assert read and read <= set(env), f"unset for the actions: {sorted(read - set(env))}"
    port = actions["command"][actions["command"].index("--port") + 1]
    assert f"127.0.0.1:{port}/health" in " ".join(actions["healthcheck"]["test"])
    assert "ports" not in actions


def test_rasa_image_trains_the_project_and_runs_its_endpoints() -> None:
    text = RASA_DOCKERFILE.read_text()
    assert re.search(r"^COPY bot/rasa/ \./$", text, flags=re.MULTILINE)
    assert "rasa train" in text
    # The NLU's sentence encoder: exported by Teller's code, handed to training, run by
    # onnxruntime; the runtime stage needs no copy (the model carries one).
    assert "python -m bot.nlu_encoder" in text
    assert "COPY --from=encoder /nlu-encoder /nlu-encoder" in text
    assert "TELLER_NLU_ENCODER=/nlu-encoder rasa train" in text
    assert "onnxruntime tokenizers" in text and "-c requirements-rasa.lock" in text
    cmd = text.rsplit("\nCMD ", 1)[1]
    assert "rasa run" in cmd and "--enable-api" in cmd
    assert "--endpoints /app/endpoints.yml" in cmd and "--credentials /app/credentials.yml" in cmd
    assert "RASA_AUTH_TOKEN" in cmd
    assert (RASA_PROJECT / "endpoints.yml").is_file()
    assert (RASA_PROJECT / "actions" / "__init__.py").is_file()


def test_elasticsearch_is_a_secured_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = services["elasticsearch"]["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == env["xpack.security.http.ssl.enabled"] == "true"
    assert "es-data:/usr/share/elasticsearch/data" in services["elasticsearch"]["volumes"]


def test_data_stores_listen_on_localhost_only(services: dict[str, dict[str, Any]]) -> None:
    for name in ("elasticsearch", "postgres"):
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every interface"
    for name in ("redis", "rasa", "actions"):
        assert "ports" not in services[name], f"{name} must not publish ports"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    used = {
        volume.split(":", 1)[0]
        for spec in services.values()
        for volume in spec.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(compose["volumes"])
