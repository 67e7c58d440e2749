"""Listen addresses: the one parser of HOST:PORT, [V6]:PORT and :PORT for every server and client.

An empty host (`:8080`) means loopback, like every default here: binding all interfaces must be
asked for by name (`0.0.0.0:8080`, `[::]:8080`).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ListenAddress:
    """A host (name, IPv4 or IPv6, without brackets) and a port (0: the OS picks one)."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        """True for an IPv6 literal (it needs brackets in host:port)."""
        return ":" in self.host

    def host_for_url(self) -> str:
        """The host as it goes before ':port' in an address or a URL (IPv6 in brackets)."""
        return f"[{self.host}]" if self.is_ipv6 else self.host

    def with_port(self, port: int) -> ListenAddress:
        """The same host on another port (e.g. the one the OS picked for port 0)."""
        return ListenAddress(self.host, port)

    def __str__(self) -> str:
        return f"{self.host_for_url()}:{self.port}"


def parse_listen(text: str, setting: str = "listen") -> ListenAddress:
    """Parse HOST:PORT, [V6]:PORT or :PORT; a clear ValueError naming `setting` otherwise."""
    value = text.strip()
    example = f"--{setting.replace('_', '-')} must be HOST:PORT, [IPV6]:PORT or :PORT, e.g. 127.0.0.1:8080"
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":") or not host:
            raise ValueError(f"{example} (got {text!r})")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"{example} (got {text!r})")
        if ":" in host:
            # A bare IPv6 literal is ambiguous (is the last group the port?): brackets say.
            raise ValueError(f"{example}; put an IPv6 host in brackets (got {text!r})")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{example}; the port is 0-65535 (got {text!r})")
    return ListenAddress(host or DEFAULT_HOST, int(port_text))
