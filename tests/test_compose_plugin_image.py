"""docker-compose's OpenSearch image carries the shoprank plugin, checked without a Docker engine:
the compose file, opensearch/Dockerfile and the Maven build agree on the OpenSearch version, the
paths the Dockerfile copies exist, the zip it installs is the one the build makes, and the
indexer's setup points the plugin's pipeline at the sidecar the compose file runs."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from shoprank.settings import REPO_ROOT

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
DOCKERFILE = REPO_ROOT / "opensearch" / "Dockerfile"


def pom_opensearch_version() -> str:
    """The one pinned OpenSearch version (opensearch/pom.xml)."""
    root = ET.parse(REPO_ROOT / "opensearch" / "pom.xml").getroot()
    version = root.find("m:properties/m:opensearch.version", POM_NS)
    assert version is not None
    assert version.text
    return version.text


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return loaded


def default_of(value: str) -> str:
    """`${NAME:-default}` → default (what compose uses when NAME is unset)."""
    found = re.fullmatch(r"(.*)\$\{\w+:-([^}]*)\}(.*)", value)
    assert found, f"{value!r} has no ${{NAME:-default}}"
    return found.group(1) + found.group(2) + found.group(3)


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_compose_builds_opensearch_from_the_plugin_dockerfile_at_the_pinned_version() -> None:
    version = pom_opensearch_version()
    service = compose()["services"]["opensearch"]
    build = service["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert default_of(build["args"]["OPENSEARCH_VERSION"]) == version
    assert default_of(service["image"]).endswith(f":{version}")
    dashboards = compose()["services"]["dashboards"]["image"]
    assert default_of(dashboards) == f"opensearchproject/opensearch-dashboards:{version}"


def test_the_dockerfile_installs_the_zip_the_build_makes_into_the_pinned_opensearch() -> None:
    lines = dockerfile_lines()
    (arg,) = [line for line in lines if line.startswith("ARG OPENSEARCH_VERSION=")]
    assert arg.split("=", 1)[1] == pom_opensearch_version()
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms[-1] == "opensearchproject/opensearch:${OPENSEARCH_VERSION}", "the final stage is OpenSearch itself"
    assert "eclipse-temurin-17" in froms[0], "the plugin is Java 17 (maven.compiler.release)"
    # Every source the build stage copies exists in the repository (the build context is the root).
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            source = line.split()[1]
            assert (REPO_ROOT / source).exists(), f"{line}: {source} is not in the repository"
    # The zip installed is the one `make plugin` builds (the assembly's name under the plugin's target/).
    makefile = (REPO_ROOT / "Makefile").read_text()
    made = re.search(r"^PLUGIN_ZIP := (\S+)$", makefile, flags=re.MULTILINE)
    assert made is not None
    (copied,) = [line for line in lines if line.startswith("COPY --from=plugin ")]
    assert copied.split()[2] == f"/src/{made.group(1)}"
    (install,) = [line for line in lines if "opensearch-plugin install" in line]
    assert "--batch" in shlex.split(install), "the plugin's security policy needs consent: --batch gives it"
    assert f"file://{copied.split()[3]}" in install
    build = [line for line in lines if line.startswith("RUN mvn ")]
    assert build
    assert "-f opensearch/plugin/pom.xml" in build[0]


def test_the_plugin_descriptor_takes_its_opensearch_version_from_the_pom() -> None:
    descriptor = (REPO_ROOT / "opensearch/plugin/src/main/plugin-metadata/plugin-descriptor.properties").read_text()
    assert "opensearch.version=${opensearch.version}" in descriptor.splitlines()


def test_the_indexer_sets_up_the_plugin_pipeline_against_the_compose_sidecar() -> None:
    services = compose()["services"]
    command = " ".join(services["indexer"]["command"])
    setup = shlex.split(command.split("&&")[0])
    assert setup[:3] == ["shoprank", "opensearch", "setup"]
    assert "--rerank-pipeline" in setup
    target = setup[setup.index("--rerank-targets") + 1]
    host, port = target.split(":")
    for name in ("sidecar", "sidecar-cpu"):
        sidecar = services[name]
        assert host in sidecar["networks"]["default"]["aliases"]
        listen = sidecar["command"][sidecar["command"].index("--listen") + 1]
        assert listen.endswith(f":{port}")
    assert services["frontdoor"]["environment"]["SHOPRANK_SIDECAR"] == target


def test_the_docker_context_leaves_build_outputs_out() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for path in ("opensearch/plugin/target", "opensearch/node/target"):
        assert path in ignored
    assert Path(DOCKERFILE).is_file()
