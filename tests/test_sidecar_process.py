"""`shoprank sidecar` as a child process: exclusive addresses, the ready file (any host form),
and an environment without OpenSearch secrets."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from sidecar.process import SidecarProcess, sidecar_environment
from sidecar.server import start_sidecar
from tests.sidecar_harness import settings_with

pytestmark = pytest.mark.e2e  # sidecar subprocesses (the in-process bind test is a service test)


@pytest.mark.service
def test_a_second_sidecar_on_a_taken_address_is_refused_in_process(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path)
    first = start_sidecar(settings, background_load=False)
    try:
        taken = settings.model_copy(update={"listen": f"127.0.0.1:{first.port}"})
        with pytest.raises(RuntimeError, match="in use"):
            start_sidecar(taken, background_load=False)
    finally:
        first.shutdown(0)


def test_a_second_sidecar_process_on_a_taken_address_exits_with_a_clear_error(
    tiny_models: Path, tmp_path: Path
) -> None:
    settings = settings_with(tiny_models, tmp_path)
    with SidecarProcess(settings, listen="127.0.0.1:0") as first:
        address = first.address
        second = SidecarProcess(settings, listen=address, stderr=subprocess.PIPE)
        try:
            _, stderr = second.process.communicate(timeout=60)
        finally:
            second.kill()
        assert second.process.returncode == 2
        assert f"could not bind --listen {address}: the address is in use" in stderr
        assert first.poll() is None  # the first one serves on


def test_the_ready_file_gives_an_ipv6_address_and_the_child_has_no_opensearch_secret(
    tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    password_file = tmp_path / "password"
    password_file.write_text("hunter2-file\n")
    monkeypatch.setenv("SHOPRANK_OPENSEARCH_PASSWORD", "hunter2-env")
    settings = settings_with(tiny_models, tmp_path)
    with SidecarProcess(settings, listen="[::1]:0") as sidecar:
        assert sidecar.wait_serving(60)
        bound = sidecar.wait_bound()
        assert (bound.host, bound.port > 0) == ("::1", True)
        assert sidecar.address == f"[::1]:{bound.port}"
        environ = Path(f"/proc/{sidecar.pid}/environ").read_bytes().split(b"\0")
        assert not [entry for entry in environ if b"hunter2" in entry]
    env = sidecar_environment(settings.model_copy(update={"opensearch_password_file": password_file}), "x:1")
    assert "SHOPRANK_OPENSEARCH_PASSWORD" not in env
    assert "SHOPRANK_OPENSEARCH_PASSWORD_FILE" not in env
    assert env["SHOPRANK_LISTEN"] == "x:1"


def test_a_sidecar_that_exits_before_listening_says_so(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path)
    with (
        SidecarProcess(settings, listen="127.0.0.1:0", options=["--drain-seconds", "-1"]) as sidecar,
        pytest.raises(RuntimeError, match="exited with code 2 before listening"),
    ):
        sidecar.wait_bound(60)
