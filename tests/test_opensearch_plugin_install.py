"""The plugin zip as a cluster operator installs it: `bin/opensearch-plugin install` into the
integ-test distribution of the pinned OpenSearch (Maven Central), started by its own scripts under
the security manager (as a non-root user, as OpenSearch insists), then a search through the
`shoprank_rerank` pipeline with a real sidecar; a stopped sidecar still answers, flagged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from engines.opensearch_node import cluster_status, free_port, missing_tools, resolve_plugin
from shoprank.settings import REPO_ROOT
from sidecar.server import start_sidecar
from tests.sidecar_harness import settings_with

pytestmark = pytest.mark.opensearch

OPENSEARCH_DIR = REPO_ROOT / "opensearch"
PLUGIN_ZIP = OPENSEARCH_DIR / "plugin" / "target" / "shoprank-opensearch-plugin.zip"
# The user the distribution runs as when the tests run as root (OpenSearch refuses root).
RUN_AS = "nobody"


def pinned_version() -> str:
    """opensearch.version of opensearch/pom.xml, the one place it is pinned."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(OPENSEARCH_DIR / "pom.xml").getroot().find("m:properties/m:opensearch.version", ns)
    assert node is not None
    assert node.text
    return node.text


def fetch_distribution(into: Path) -> Path:
    """The integ-test zip (core + transport-netty4) of the pinned version, copied by Maven."""
    artifact = f"org.opensearch.distribution.integ-test-zip:opensearch:{pinned_version()}:zip"
    base = [
        "mvn", "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
        f"-Dartifact={artifact}", f"-DoutputDirectory={into}", "-Dmdep.stripVersion=true",
    ]  # fmt: skip
    for command in ([*base, "-o"], base):
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=into)
        if done.returncode == 0:
            return into / "opensearch.zip"
    pytest.skip(f"the integ-test distribution {artifact} could not be resolved: {done.stdout[-500:]}")


def unzip(archive: Path, into: Path) -> None:
    """Extract keeping the file modes (the distribution's scripts must stay executable)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = zipped.extract(info, into)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(path, mode)


def java_home() -> str:
    java = shutil.which("java")
    assert java is not None
    return str(Path(java).resolve().parent.parent)


@pytest.fixture(scope="module")
def distribution() -> Iterator[tuple[str, Path]]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: OpenSearch's own scripts refuse to start as root")
    resolve_plugin(OPENSEARCH_DIR / "plugin")
    work = Path(tempfile.mkdtemp(prefix="shoprank-os-dist-"))
    work.chmod(0o755)
    try:
        unzip(fetch_distribution(work), work)
        (home,) = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("opensearch-")]
        env = {**os.environ, "OPENSEARCH_JAVA_HOME": java_home(), "OPENSEARCH_JAVA_OPTS": "-Xms512m -Xmx512m"}
        install = subprocess.run(
            [str(home / "bin" / "opensearch-plugin"), "install", "--batch", f"file://{PLUGIN_ZIP}"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert install.returncode == 0, install.stdout + install.stderr
        assert (home / "plugins" / "shoprank" / "plugin-security.policy").is_file()
        port = free_port()
        command = [
            str(home / "bin" / "opensearch"), f"-Ehttp.port={port}", "-Etransport.port=0",
            "-Ediscovery.type=single-node", "-Enetwork.host=127.0.0.1",
            "-Ecluster.routing.allocation.disk.threshold_enabled=false",
        ]  # fmt: skip
        if as_root:
            subprocess.run(["chown", "-R", RUN_AS, str(work)], check=True)
            command = ["runuser", "-u", RUN_AS, "--", "env", f"OPENSEARCH_JAVA_HOME={env['OPENSEARCH_JAVA_HOME']}",
                       f"OPENSEARCH_JAVA_OPTS={env['OPENSEARCH_JAVA_OPTS']}", *command]  # fmt: skip
        with open(work / "node.log", "wb") as log:
            node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while cluster_status(url, timeout_s=1.0) not in ("green", "yellow"):
                assert node.poll() is None, (work / "node.log").read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the distribution did not start within 180 s"
                time.sleep(1)
            yield url, home
        finally:
            os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_installed_zip_reranks_under_the_security_manager(
    distribution: tuple[str, Path], tiny_models: Any, tmp_path: Any
) -> None:
    client = OpenSearch(hosts=[distribution[0]])
    log = client.nodes.info(metric="plugins")
    plugins = [p["name"] for node in log["nodes"].values() for p in node["plugins"]]
    assert "shoprank" in plugins
    for i in range(30):
        client.index(index="products", id=f"d{i}", body={"title": f"red trail shoe number {i}", "brand": f"b{i % 3}"})
    client.indices.refresh(index="products")
    sidecar = start_sidecar(settings_with(tiny_models, tmp_path), background_load=False)
    try:
        body = {
            "request_processors": [{"shoprank_rerank": {"window": 20}}],
            "response_processors": [
                {
                    "shoprank_rerank": {
                        "targets": [f"127.0.0.1:{sidecar.port}"],
                        "deadline_ms": 5000,
                        "ubi": {"index": "ubi_queries"},
                    }
                }
            ],
        }
        client.transport.perform_request("PUT", "/_search/pipeline/shoprank", body=body)
        query = {"query": {"match": {"title": "red shoe"}}, "size": 5}
        first_stage = client.search(index="products", body=query)
        reranked = client.search(index="products", body=query, params={"search_pipeline": "shoprank"})
        ext = reranked["ext"]["shoprank"]
        assert ext["reranked"] is True, ext["fail_open_reason"]
        assert ext["window"] == 20
        # The UBI query record is written by the plugin's own client call, under the security manager too.
        deadline = time.monotonic() + 30
        while not client.exists(index="ubi_queries", id=ext["query_id"]):
            assert time.monotonic() < deadline, "the UBI query record did not land"
            time.sleep(0.2)
        record = client.get(index="ubi_queries", id=ext["query_id"])["_source"]
        assert record["query_response_hit_ids"] == [h["_id"] for h in reranked["hits"]["hits"]]
    finally:
        sidecar.shutdown(0)
    down = client.search(index="products", body=query, params={"search_pipeline": "shoprank"})
    assert down["ext"]["shoprank"]["reranked"] is False
    assert [h["_id"] for h in down["hits"]["hits"]] == [h["_id"] for h in first_stage["hits"]["hits"]]


def test_mutual_tls_under_the_security_manager_with_certificates_in_the_config_directory(
    distribution: tuple[str, Path], tiny_models: Any, tmp_path: Any
) -> None:
    from tests.tls_certs import certificates

    url, home = distribution
    certs = certificates(tmp_path)
    tls_dir = home / "config" / "shoprank-tls"
    tls_dir.mkdir()
    for name in ("ca", "client", "client_key"):
        shutil.copy(certs[name], tls_dir / f"{name}.pem")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", RUN_AS, str(tls_dir)], check=True)
    client = OpenSearch(hosts=[url])
    client.index(index="tls", id="t1", body={"title": "red trail shoe"})
    client.indices.refresh(index="tls")
    server = {"tls_cert": certs["server"], "tls_key": certs["server_key"], "tls_client_ca": certs["ca"]}
    sidecar = start_sidecar(settings_with(tiny_models, tmp_path, **server), background_load=False)
    try:
        tls = {
            "ca_file": "shoprank-tls/ca.pem",
            "cert_file": "shoprank-tls/client.pem",
            "key_file": "shoprank-tls/client_key.pem",
        }
        body = {
            "request_processors": [{"shoprank_rerank": {"window": 10}}],
            "response_processors": [
                {"shoprank_rerank": {"targets": [f"127.0.0.1:{sidecar.port}"], "deadline_ms": 5000, "tls": tls}}
            ],
        }
        client.transport.perform_request("PUT", "/_search/pipeline/shoprank-mtls", body=body)
        query = {"query": {"match": {"title": "red shoe"}}}
        reranked = client.search(index="tls", body=query, params={"search_pipeline": "shoprank-mtls"})
        assert reranked["ext"]["shoprank"]["reranked"] is True, reranked["ext"]["shoprank"]["fail_open_reason"]
    finally:
        sidecar.shutdown(0)
