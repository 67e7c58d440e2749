"""The runtime image's package set runs every compose service's command.

The Dockerfile copies only the runtime packages and installs only the runtime extra (no torch,
no benchmarks, no dev tools). These tests run the CLI in a child process where every first-party
package the Dockerfile does not copy, and every third-party module only the train/eval/dev extras
bring, fails to import, as it would in the image: the parser, every command's help, an import of
every runtime module, and the indexer, sidecar and front door commands of docker-compose.yml.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shoprank.settings import REPO_ROOT

pytestmark = pytest.mark.e2e

# A child that cannot import what the image lacks, then runs the CLI (or imports modules with -m imports).
CHILD = """
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))

class NotInImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the runtime image)", name=name)
        return None

sys.meta_path.insert(0, NotInImage())
if sys.argv[2] == "--import-all":
    for package in sys.argv[3].split(","):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    raise SystemExit(0)
from shoprank.cli import main
sys.argv = ["shoprank", *sys.argv[2:]]
raise SystemExit(main())
"""


def _copied_packages() -> set[str]:
    """First-party directories the Dockerfile copies into the image."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    return set(re.findall(r"^COPY (\w+) \./\1$", text, flags=re.MULTILINE))


def _first_party() -> set[str]:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    include = re.search(r"^include = \[(.*)\]$", pyproject, flags=re.MULTILINE)
    assert include is not None, "pyproject.toml lists no packages"
    return {name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")}


def _extra_only_modules() -> set[str]:
    """Top-level modules of distributions that only the train, eval or dev extras require."""
    requires = importlib.metadata.requires("shoprank") or []
    by_extra: dict[str, set[str]] = {}
    for requirement in requires:
        name = re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        extra = re.search(r"extra == \"(\w+)\"", requirement)
        by_extra.setdefault(extra.group(1) if extra else "", set()).add(name)
    runtime = by_extra.get("", set()) | by_extra.get("cpu", set())
    extras_only = (by_extra.get("train", set()) | by_extra.get("eval", set()) | by_extra.get("dev", set())) - runtime
    modules: set[str] = set()
    for module, distributions in importlib.metadata.packages_distributions().items():
        if {d.lower().replace("_", "-") for d in distributions} & extras_only and not module.startswith("_"):
            modules.add(module)
    return modules


@pytest.fixture(scope="module")
def blocked() -> str:
    """Comma-separated top-level modules the image does not have."""
    copied = _copied_packages()
    assert {"shoprank", "sidecar", "indexer", "engines", "frontdoor"} <= copied, copied
    missing_first_party = _first_party() - copied
    assert "benchmarks" in missing_first_party, "the image was expected to ship without benchmarks/"
    third_party = _extra_only_modules()
    assert "torch" in third_party, third_party
    assert "httpx" in third_party, third_party
    return ",".join(sorted(missing_first_party | third_party))


def _image_cli(blocked: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, blocked, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO_ROOT,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_command_parses_with_only_the_image_packages(blocked: str) -> None:
    from shoprank.cli import COMMANDS

    top = _image_cli(blocked, "--help")
    assert top.returncode == 0, top.stderr
    names = re.findall(r"^    (\w[\w-]*)\s", top.stdout, flags=re.MULTILINE)
    assert len(names) >= len(COMMANDS), top.stdout
    for name in names:
        result = _image_cli(blocked, name, "--help")
        assert result.returncode == 0, f"shoprank {name} --help: {result.stderr}"


def test_a_benchmark_in_the_image_says_what_is_missing(blocked: str) -> None:
    result = _image_cli(blocked, "bench", "diversify", "--help")
    assert result.returncode == 2
    assert "not installed here" in result.stderr
    assert "benchmarks" in result.stderr


def test_every_runtime_module_imports_with_only_the_image_packages(blocked: str) -> None:
    result = _image_cli(blocked, "--import-all", "shoprank,sidecar,indexer,engines,frontdoor")
    assert result.returncode == 0, result.stderr


def test_compose_services_start_with_only_the_image_packages(blocked: str, tiny_models: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    catalogue = tmp_path / "products.jsonl"
    rows = [
        {"id": f"p{i}", "title": f"Cotton kitchen towel {i}", "brand": "Acme", "category": ["Home", "Kitchen"]}
        for i in range(5)
    ]
    catalogue.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    env = {**os.environ, "SHOPRANK_DATA_DIR": str(data_dir), "SHOPRANK_METRICS_LISTEN": ""}

    # the indexer service (embedded engine here; compose points it at OpenSearch)
    indexed = _image_cli(blocked, "index", "--catalogue", str(catalogue), "--json", env=env)
    assert indexed.returncode == 0, indexed.stderr
    assert json.loads(indexed.stdout)["indexed"] == len(rows)

    sidecar_address = f"127.0.0.1:{_free_port()}"
    http_port = _free_port()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, blocked, "sidecar", "--listen", sidecar_address, "--device", "cpu"],
            env=env,
            cwd=REPO_ROOT,
        ),
        subprocess.Popen(
            [sys.executable, "-c", CHILD, blocked, "serve", "--no-spawn-sidecar"],
            env={**env, "SHOPRANK_SIDECAR": sidecar_address, "SHOPRANK_HTTP_LISTEN": f"127.0.0.1:{http_port}"},
            cwd=REPO_ROOT,
        ),
    ]
    try:
        answer = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and answer is None:
            assert all(child.poll() is None for child in children), "a service exited at start"
            try:
                url = f"http://127.0.0.1:{http_port}/api/search?q=kitchen+towel"
                with urllib.request.urlopen(url, timeout=10) as response:
                    body = json.loads(response.read())
                if body.get("reranked"):
                    answer = body
            except OSError:
                time.sleep(0.5)
        assert answer is not None, "the front door never answered a reranked search"
        assert {hit["id"] for hit in answer["results"]} <= {row["id"] for row in rows}
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
