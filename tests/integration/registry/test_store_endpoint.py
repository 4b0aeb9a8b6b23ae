"""What the S3 client says when the endpoint is not an S3 server, or not this one (no store needed)."""

from __future__ import annotations

import re
import socket
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
    with pytest.raises(
        StoreError, match="answered a listing of bucket 'tailor' with 404 Not Found: is the endpoint an S3 server"
    ):
        list(store.list("audit/tickets/"))


def _redirecting(status: int, headers: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        def _answer(self):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value.format(path=self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

        def log_message(self, *args):
            pass

    return Redirect


@pytest.fixture
def redirecting_server(request):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _redirecting(*request.param))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


OPERATIONS = {
    "put": lambda store: store.put("audit/x/000000000001.json", b"{}", create_only=True, retain=True),
    "get": lambda store: store.get("audit/x/000000000001.json"),
    "exists": lambda store: store.exists("audit/x/000000000001.json"),
    "list": lambda store: list(store.list("audit/x/")),
    "ensure_bucket": lambda store: store.ensure_bucket(),
}


@pytest.mark.parametrize("redirecting_server", [(301, {"Location": "https://store.example:8443{path}"})], indirect=True)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_redirect_names_where_it_points_instead_of_recursing(redirecting_server, operation):
    store = S3ObjectStore(StoreSettings(endpoint=redirecting_server, bucket="tailor", access_key="k", secret_key="s"))
    with pytest.raises(StoreError) as err:
        OPERATIONS[operation](store)
    assert str(err.value).startswith(
        f"{redirecting_server} answered with a redirect (HTTP 301 to https://store.example:8443/tailor"
    )
    assert str(err.value).endswith('if that is the S3 server, set endpoint = "https://store.example:8443"')


@pytest.mark.parametrize(
    ("redirecting_server", "says"),
    [
        ((302, {}), "answered with a redirect (HTTP 302): is the endpoint an S3 server?"),
        ((307, {"Location": "/elsewhere{path}"}), "answered with a redirect (HTTP 307): is the endpoint an S3 server?"),
        (
            (301, {"x-amz-bucket-region": "eu-west-3"}),
            "answered with a redirect (HTTP 301): the bucket is in region 'eu-west-3'; set region = \"eu-west-3\"",
        ),
    ],
    indirect=["redirecting_server"],
)
def test_a_redirect_without_a_new_endpoint_says_what_to_check(redirecting_server, says):
    store = S3ObjectStore(StoreSettings(endpoint=redirecting_server, bucket="tailor", access_key="k", secret_key="s"))
    with pytest.raises(StoreError, match=re.escape(f"{redirecting_server} {says}")):
        store.get("audit/x/000000000001.json")


@pytest.fixture
def silent_server():
    """Accepts connections and reads requests but never answers, as SeaweedFS does on a full disk."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for conn in held:
        conn.close()


def test_a_store_that_never_answers_is_named_with_what_to_check(silent_server):
    settings = StoreSettings(endpoint=silent_server, bucket="tailor", access_key="k", secret_key="s")
    store = S3ObjectStore(settings, read_timeout=0.2)
    with pytest.raises(StoreError) as err:
        store.put("adapters/x/v1/claim.json", b"{}", create_only=True)
    assert str(err.value) == (
        f"the object store at {silent_server} accepted a request for s3://tailor/adapters/x/v1/claim.json but "
        "sent nothing for 0.2 s, retries included: it is overloaded, or its disk is full (the embedded store: "
        "`tailor store status` shows its free space)"
    )


def test_an_endpoint_holding_a_password_is_never_echoed_in_errors():
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = StoreSettings(
        endpoint=f"http://user:s3cret@127.0.0.1:{port}", bucket="b", access_key="a", secret_key="s"
    )
    with pytest.raises(StoreError) as err:
        S3ObjectStore(settings, connect_timeout=0.5, read_timeout=0.5).get("k")
    assert "s3cret" not in str(err.value) and f"http://127.0.0.1:{port}" in str(err.value)
