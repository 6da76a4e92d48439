"""The CLI fits in scripts: --version, a checked --log-level, -c/--config with CORRIDOR_CONFIG,
-o json with stable keys, no box drawing into a pipe, dev tools out of the main --help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corridor import __version__
from corridor.cli import cli

REPO = Path(__file__).resolve().parents[2]
BOX = set("┏┓┗┛━┃│─┼╇╈┡┩")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "corridors.yaml"
    path.write_text((REPO / "corridors.yaml").read_text().replace("schemas/", f"{REPO}/schemas/"))
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_version() -> None:
    code, out = run("--version")
    assert code == 0 and __version__ in out


def test_log_level_is_a_choice() -> None:
    code, out = run("--log-level", "bogus", "validate")
    assert code == 2 and "'bogus' is not one of" in out


def test_config_from_option_and_from_the_environment(config: Path, tmp_path: Path) -> None:
    code, out = run("validate", "-c", str(config))
    assert code == 0 and "5 corridors: OK" in out
    code, out = run("validate", env={"CORRIDOR_CONFIG": str(config)})
    assert code == 0 and "5 corridors: OK" in out
    code, _ = run("validate", env={"CORRIDOR_CONFIG": str(tmp_path / "missing.yaml")})
    assert code != 0


def test_validate_json_lists_errors_with_line_and_field(config: Path) -> None:
    code, out = run("validate", "-c", str(config), "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and sorted(doc["corridors"]) == [
        "asean-eu", "asean-hk", "eu-hk", "hk-asean", "hk-eu"]
    config.write_text(config.read_text().replace("      national_id: drop\n", "", 1))
    code, out = run("validate", "-c", str(config), "-o", "json")
    doc = json.loads(out.split("\n" + str(config) + ":")[0])  # stderr lines follow the JSON
    assert code == 2 and doc["ok"] is False
    assert any("national_id" in e["field"] and e["line"] for e in doc["errors"])


def test_principals_json_and_no_box_drawing_into_a_pipe(config: Path) -> None:
    code, out = run("principals", "-c", str(config), "-o", "json")
    doc = json.loads(out)
    names = {p["name"] for p in doc["principals"]}
    assert code == 0 and "corridor-hk-eu" in names and "analytics-eu" in names
    grants = next(p for p in doc["principals"] if p["name"] == "corridor-hk-eu")["grants"]
    assert {"zone", "operation", "resource", "pattern"} <= set(grants[0])
    code, out = run("principals", "-c", str(config))
    assert code == 0 and "corridor-hk-eu" in out and not (BOX & set(out))


def test_dev_tools_are_under_dev_not_the_main_help() -> None:
    _, main = run("--help")
    listed = [line.split()[0] for line in main.split("Commands:")[1].splitlines() if line.strip()]
    assert "dev" in listed and "bench" not in listed and "generate" not in listed
    _, dev = run("dev", "--help")
    assert "bench" in dev and "generate" in dev
    code, _ = run("generate", "--help")  # the old name still works in scripts
    assert code == 0


def test_every_command_with_a_config_takes_dash_c() -> None:
    for name in ("run", "provision", "principals", "verify", "tail", "demo", "validate"):
        _, out = run(name, "--help")
        assert "-c, --config" in out and "CORRIDOR_CONFIG" in out, name
