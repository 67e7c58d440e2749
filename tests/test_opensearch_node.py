"""The local single-node OpenSearch (engines/opensearch_node.py, `shoprank opensearch run`):
classpath assembly and argument checks here; the command itself against a real JVM below."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engines.base import EngineError
from engines.opensearch_node import (
    LocalNode,
    NodeBuild,
    artifact_name,
    check_heap,
    cluster_status,
    dedupe_jars,
    free_port,
    missing_tools,
    resolve,
)
from shoprank.settings import REPO_ROOT


@pytest.mark.parametrize(
    ("jar", "name"),
    [
        ("guava-32.1.3-jre.jar", "guava"),
        ("opensearch-knn-2.19.1.0.jar", "opensearch-knn"),
        ("jackson-databind-2.18.2.jar", "jackson-databind"),
        ("javassist-3.29.2-GA.jar", "javassist"),
        ("json-20231013.jar", "json"),
        ("lucene-core-9.12.1.jar", "lucene-core"),
        ("failureaccess-1.0.1.jar", "failureaccess"),
    ],
)
def test_artifact_names_drop_the_version(jar: str, name: str) -> None:
    assert artifact_name(Path(jar)) == name


def test_one_jar_per_artifact_and_core_wins() -> None:
    jars = [Path("/m2/jna-5.13.0.jar"), Path("/plugins/knn/jna-5.12.0.jar"), Path("/plugins/knn/guava-32.1.3-jre.jar")]
    assert dedupe_jars(jars) == [Path("/m2/jna-5.13.0.jar"), Path("/plugins/knn/guava-32.1.3-jre.jar")]


def test_classpath_puts_the_launcher_first_and_every_plugin_jar_on_it(tmp_path: Path) -> None:
    build = NodeBuild(tmp_path)
    (tmp_path / "plugins" / "knn").mkdir(parents=True)
    (tmp_path / "plugins" / "knn" / "opensearch-knn-2.19.1.0.jar").touch()
    (tmp_path / "plugins" / "knn" / "jna-5.13.0.jar").touch()
    core = tmp_path / "jna-5.13.0.jar"
    core.touch()
    build.classpath_file.write_text(str(core))
    assert build.classpath() == [build.classes_dir, core, tmp_path / "plugins" / "knn" / "opensearch-knn-2.19.1.0.jar"]
    assert not build.is_complete()  # no compiled launcher yet


@pytest.mark.parametrize("heap", ["512m", "1g", "768M"])
def test_jvm_heap_sizes_are_accepted(heap: str) -> None:
    assert check_heap(heap) == heap


@pytest.mark.parametrize("heap", ["", "1 g", "-1g", "1gb", "0", "lots"])
def test_bad_heap_sizes_say_what_to_pass(heap: str) -> None:
    with pytest.raises(ValueError, match=r"pass e\.g\. 512m or 1g"):
        check_heap(heap)


def test_without_java_or_maven_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "java and mvn not on PATH" in (missing_tools() or "")


@pytest.mark.opensearch
def test_run_listens_until_sigterm_and_refuses_a_second_node_on_its_home(tmp_path: Path) -> None:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    build = resolve(REPO_ROOT / "opensearch" / "node")
    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "shoprank", "opensearch", "run", "--home", str(home), "--http-port", str(port)]
    process = subprocess.Popen(
        [*command, "--heap", "512m"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"listening on http://127.0.0.1:{port} "), line + (
            process.stderr.read() if process.stderr else ""
        )
        assert cluster_status(f"http://127.0.0.1:{port}") in ("green", "yellow")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cat/plugins?h=component") as response:
            plugins = response.read().decode()
        assert "KNNPlugin" in plugins
        assert "NeuralSearch" in plugins

        with pytest.raises(EngineError, match="another OpenSearch node is using"):
            LocalNode(build, home, http_port=free_port(), heap="256m").start(timeout_s=120)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=90)
    assert code == 0
    deadline = time.monotonic() + 30
    while cluster_status(f"http://127.0.0.1:{port}", timeout_s=1.0) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cluster_status(f"http://127.0.0.1:{port}", timeout_s=1.0) is None  # the JVM is gone


def test_a_port_in_use_is_refused_before_a_jvm_starts(tmp_path: Path) -> None:
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "green"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        node = LocalNode(NodeBuild(tmp_path), tmp_path / "home", http_port=server.server_address[1])
        with pytest.raises(EngineError, match="already answers"):
            node.start()
        assert node.process is None
    finally:
        server.shutdown()
