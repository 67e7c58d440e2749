"""The one listen-address parser: HOST:PORT, [V6]:PORT and :PORT."""

from __future__ import annotations

import pytest

from shoprank.listen import ListenAddress, parse_listen


@pytest.mark.parametrize(
    ("text", "host", "port", "shown"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080, "127.0.0.1:8080"),
        (":8080", "127.0.0.1", 8080, "127.0.0.1:8080"),  # no host: loopback, as every default
        ("0.0.0.0:0", "0.0.0.0", 0, "0.0.0.0:0"),
        ("[::1]:50051", "::1", 50051, "[::1]:50051"),
        ("[::]:9464", "::", 9464, "[::]:9464"),
        ("localhost:50051", "localhost", 50051, "localhost:50051"),
        (" sidecar.internal:1 ", "sidecar.internal", 1, "sidecar.internal:1"),
    ],
)
def test_parses_every_form(text: str, host: str, port: int, shown: str) -> None:
    address = parse_listen(text)
    assert address == ListenAddress(host, port)
    assert str(address) == shown


@pytest.mark.parametrize("text", ["", "8080", "host:", "host:http", "::1:8080", "[::1]8080", "[]:80", "h:70000"])
def test_refuses_what_it_cannot_read_and_names_the_flag(text: str) -> None:
    with pytest.raises(ValueError, match="--http-listen must be HOST:PORT"):
        parse_listen(text, "http_listen")


def test_with_port_keeps_the_host() -> None:
    assert str(parse_listen("[::1]:0").with_port(4321)) == "[::1]:4321"


def test_settings_refuse_a_bad_listen_address_at_start() -> None:
    from shoprank.settings import Settings

    with pytest.raises(ValueError, match="--http-listen must be HOST:PORT"):
        Settings(http_listen="8080")
    with pytest.raises(ValueError, match="--listen must be HOST:PORT"):
        Settings(listen="::1:50051")
    assert Settings(metrics_listen="").metrics_listen == ""  # empty: the metrics endpoint is off
