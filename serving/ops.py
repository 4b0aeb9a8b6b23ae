"""What operations need from the predictor: Prometheus metrics, request ids, JSON access logs, a Host check.

One ASGI middleware wraps the app: it refuses a request for a Host that is not this server's (a web
page cannot reach a loopback server by DNS rebinding: its requests carry the attacker's name), gives
every request an id (the client's ``X-Request-ID`` when it is a plain token, else a new one) that is
echoed in the response and the access log, and counts and times it per adapter and version.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from serving.follower import Follower

LOOPBACK_NAMES = frozenset({"localhost"})
REQUEST_ID_HEADER = b"x-request-id"
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Paths the metrics name; anything else counts as "other", so a scan of random URLs cannot grow the series.
KNOWN_PATHS = frozenset({"/predict", "/explain", "/version", "/healthz", "/readyz", "/metrics", "/openapi.json"})
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

access_log = logging.getLogger("tailor.access")


def host_name(host: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8080`` → ``::1``, ``localhost:80`` → ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback(name: str) -> bool:
    """Whether ``name`` (an address or host name, no port) names this machine's loopback: 127.0.0.0/8,
    ::1 or localhost. One rule for what `tailor serve --host` accepts and which Host headers it answers."""
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name.lower() in LOOPBACK_NAMES


def request_id(given: bytes | None) -> str:
    """The client's id when it is a plain token (letters, digits, ``._:-``, at most 128), else a new one."""
    text = given.decode("latin-1") if given else ""
    return text if _TOKEN.fullmatch(text) else uuid.uuid4().hex


class ServingMetrics:
    """The predictor's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, follower: Follower) -> None:
        self.registry = CollectorRegistry()
        labels = ["path", "adapter", "version", "status"]
        self.requests = Counter("tailor_requests", "HTTP requests answered", labels, registry=self.registry)
        self.errors = Counter(
            "tailor_request_errors", "HTTP requests answered with a 4xx or 5xx", labels, registry=self.registry
        )
        self.latency = Histogram(
            "tailor_request_seconds",
            "time to answer, from the request's arrival",
            ["path", "adapter", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.swaps = Counter(
            "tailor_swaps", "versions swapped in after the alias moved", ["adapter"], registry=self.registry
        )
        self.failed_loads = Counter(
            "tailor_failed_loads", "versions the alias named that did not load", ["adapter"], registry=self.registry
        )
        self.registry.register(_FollowerState(follower))
        follower.on_swap = lambda name: self.swaps.labels(name).inc()
        follower.on_failed_load = lambda name: self.failed_loads.labels(name).inc()

    def observe(self, path: str, adapter: str, version: str, status: int, seconds: float) -> None:
        path = path if path in KNOWN_PATHS else "other"
        self.requests.labels(path, adapter, version, str(status)).inc()
        if status >= 400:
            self.errors.labels(path, adapter, version, str(status)).inc()
        self.latency.labels(path, adapter, version).observe(seconds)


class _FollowerState:
    """Read at each scrape: which version answers, whether a load is failing, when the follower last polled."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower

    def collect(self):
        serving = GaugeMetricFamily(
            "tailor_serving_info", "the version answering, per adapter", labels=["adapter", "version", "alias"]
        )
        failing = GaugeMetricFamily(
            "tailor_load_failing", "1 while the alias names a version that did not load", labels=["adapter"]
        )
        polled = GaugeMetricFamily(
            "tailor_follower_last_poll_timestamp_seconds",
            "Unix time of the follower's last successful poll of the registry",
            labels=["adapter"],
        )
        for health in self.follower.health():
            serving.add_metric([health.name, health.serving, self.follower.alias], 1)
            failing.add_metric([health.name], 0 if health.failure is None else 1)
            if health.last_poll is not None:
                polled.add_metric([health.name], health.last_poll.timestamp())
        yield from (serving, failing, polled)


def _refusal(status: int, error: str, rid: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error": error, "problems": []}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER, rid.encode()),
        ],
    }
    return start, body


class Operations:
    """The ASGI middleware: Host check, request id, metrics and (when asked) a JSON access log line per request.

    A handler that knows which adapter version answered puts ``adapter`` and ``version`` in
    ``request.state``; the metrics and the log line carry them.
    """

    def __init__(self, app, metrics: ServingMetrics, *, allow_remote: bool = False, log_access: bool = False) -> None:
        self.app, self.metrics, self.allow_remote, self.log_access = app, metrics, allow_remote, log_access

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        headers = dict(scope["headers"])
        rid = request_id(headers.get(REQUEST_ID_HEADER))
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        host = headers.get(b"host", b"").decode("latin-1")

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]}
            await send(message)

        try:
            if not self.allow_remote and not is_loopback(host_name(host)):
                start, body = _refusal(
                    421,
                    f"Host {host!r} is not this server's: it answers to loopback names only "
                    "(localhost, 127.0.0.0/8, ::1); start it with --allow-remote to be reached "
                    "by other names (a reverse proxy in front must then pass or rewrite Host)",
                    rid,
                )
                status = start["status"]
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - began
            adapter, version = str(state.get("adapter", "")), str(state.get("version", ""))
            self.metrics.observe(scope["path"], adapter, version, status, seconds)
            if self.log_access:
                access_log.info(
                    json.dumps(
                        {
                            "time": time.time(),
                            "request_id": rid,
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round(seconds * 1000, 2),
                            "adapter": adapter or None,
                            "version": version or None,
                            "host": host,
                            "client": (scope.get("client") or [None])[0],
                        },
                        ensure_ascii=False,
                    )
                )
