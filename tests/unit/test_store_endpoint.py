"""What the S3 client says when the endpoint is not an S3 server (no store needed)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from registry.errors import StoreError
from registry.settings import StoreSettings
from registry.store import S3ObjectStore


class _NotFoundEverywhere(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>Not Found</html>")

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFoundEverywhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_web_server_answering_404_is_named_as_not_an_s3_server(web_server):
    store = S3ObjectStore(StoreSettings(endpoint=web_server, bucket="tailor", access_key="k", secret_key="s"))
    with pytest.raises(StoreError, match="answered a listing of bucket 'tailor' with 404 Not Found: is the endpoint "
                                         "an S3 server"):  # fmt: skip
        list(store.list("audit/tickets/"))
