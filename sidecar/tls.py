"""TLS and mutual TLS for the sidecar's gRPC port, from PEM files named in settings.

Server: tls_cert + tls_key turn TLS on; tls_client_ca also requires and verifies client
certificates (mTLS). Client (the front door): sidecar_tls_ca turns TLS on; sidecar_tls_cert +
sidecar_tls_key present a client certificate.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from shoprank.errors import UserInputError


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserInputError(f"--{setting.replace('_', '-')} {path}: {error.strerror or error}") from error


def server_credentials(
    cert: Path | None, key: Path | None, client_ca: Path | None = None
) -> grpc.ServerCredentials | None:
    """Server credentials, or None for plaintext; half-configured TLS is an error, not plaintext."""
    if cert is None and key is None:
        if client_ca is not None:
            raise UserInputError("--tls-client-ca needs --tls-cert and --tls-key (mTLS runs over TLS)")
        return None
    if cert is None or key is None:
        raise UserInputError("TLS needs both --tls-cert and --tls-key")
    ca = _read(client_ca, "tls_client_ca") if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(_read(key, "tls_key"), _read(cert, "tls_cert"))], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials | None:
    """Client credentials, or None for plaintext."""
    if ca is None:
        if cert is not None or key is not None:
            raise UserInputError("--sidecar-tls-cert/--sidecar-tls-key need --sidecar-tls-ca (mTLS runs over TLS)")
        return None
    if (cert is None) != (key is None):
        raise UserInputError("a client certificate needs both --sidecar-tls-cert and --sidecar-tls-key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "sidecar_tls_ca"),
        private_key=_read(key, "sidecar_tls_key") if key is not None else None,
        certificate_chain=_read(cert, "sidecar_tls_cert") if cert is not None else None,
    )
