"""An https endpoint signed by a private CA, and temporary keys: what reaches the server (no store needed)."""

from __future__ import annotations

import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from registry.errors import NotFoundError, StoreError
from registry.settings import StoreSettings
from registry.store import S3ObjectStore

NO_SUCH_KEY = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>"


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """An S3-shaped https server on loopback with a self-signed certificate; it records request headers."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    seen: list[dict[str, str]] = []

    class NoSuchKey(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            seen.append(dict(self.headers))
            self.send_response(404)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(NO_SUCH_KEY)))
            self.end_headers()
            self.wfile.write(NO_SUCH_KEY)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoSuchKey)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, seen
    server.shutdown()


def _store(endpoint: str, **extra) -> S3ObjectStore:
    return S3ObjectStore(
        StoreSettings(endpoint=endpoint, bucket="tailor", access_key="ASIAKEY", secret_key="s", **extra)
    )


def test_a_private_ca_needs_ca_bundle_and_is_then_trusted(https_server):
    endpoint, cert, seen = https_server
    with pytest.raises(StoreError, match="cannot verify the TLS certificate of https://127.0.0.1:.*: set ca_bundle"):
        _store(endpoint).get("audit/x.json")
    with pytest.raises(NotFoundError, match="s3://tailor/audit/x.json does not exist"):
        _store(endpoint, ca_bundle=str(cert)).get("audit/x.json")
    assert seen, "the request reached the server over verified TLS"


def test_temporary_keys_send_their_session_token(https_server):
    endpoint, cert, seen = https_server
    with pytest.raises(NotFoundError):
        _store(endpoint, ca_bundle=str(cert), session_token="FwoGZXIvYXdzE-token").get("audit/y.json")
    assert seen[-1].get("X-Amz-Security-Token") == "FwoGZXIvYXdzE-token"
