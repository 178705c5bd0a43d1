"""The deployment files, checked without Docker (no engine runs on CI machines): the compose
file against the compose spec, and both against the code, since the schema cannot know
callscribe's own commands and settings (a typo there would only show in production)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from callscribe.cli import app as cli
from callscribe.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
CALLSCRIBE_SERVICES = ("migrate", "admin-api", "asr-cpu", "asr-gpu")
CALLSCRIBE_SERVICES += ("sip-gateway", "webrtc-gateway", "worker")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_compose_file_follows_the_compose_spec():
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        reason = "check-jsonschema is not installed (the dev extra has it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    schema = ["--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_is_a_callscribe_command():
    commands = {command.name or command.callback.__name__ for command in cli.registered_commands}
    commands |= {group.name for group in cli.registered_groups}
    services = compose()["services"]
    assert set(CALLSCRIBE_SERVICES) <= set(services)
    for name in CALLSCRIBE_SERVICES:
        assert services[name]["command"][0] in commands, name


def test_every_callscribe_variable_is_a_setting():
    """Compose and .env.example set only variables that `Settings` reads."""
    fields = {f"CALLSCRIBE_{name.upper()}" for name in Settings.model_fields}
    deploy_only = {"CALLSCRIBE_IMAGE", "CALLSCRIBE_GPU_IMAGE", "CALLSCRIBE_MODELS_DIR"}
    deploy_only |= {"CALLSCRIBE_GPU_MODEL", "CALLSCRIBE_WORKER_MODEL", "CALLSCRIBE_GPU_MAX_CALLS"}
    text = COMPOSE.read_text() + ENV_EXAMPLE.read_text()
    used = set(re.findall(r"\bCALLSCRIBE_[A-Z0-9_]+\b", text))
    assert used - fields - deploy_only == set()
    images_own = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "REDISCLI_AUTH"}
    for service in compose()["services"].values():
        assert set(service.get("environment", {})) - fields <= images_own


def test_the_env_example_sets_every_required_variable():
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert required and required <= example
    referenced = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert referenced <= example, referenced - example


def test_images_install_through_the_constraints_and_bundle_the_model():
    assert {path.name for path in DOCKERFILES} == {"cpu.Dockerfile", "gpu.Dockerfile"}
    for path in DOCKERFILES:
        text = path.read_text()
        installs = re.findall(r"pip install [^\n&]*", text)
        assert installs and all("--constraint constraints.txt" in line for line in installs)
        assert "callscribe models prepare whisper-base" in text, path.name
    assert '".[funaudio,gpu]"' in (REPO / "docker" / "gpu.Dockerfile").read_text()
