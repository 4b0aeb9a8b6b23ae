"""Who is signed in, their CSRF token, and how often a sign-in may fail.

Sessions live in the server's memory only: the cookie carries a random token, never the person's
credentials, and a restart signs everybody out (their signing keys leave memory with it).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from registry.people import Credentials

IDLE_SECONDS = 30 * 60
MAX_SECONDS = 8 * 60 * 60  # a working day; then the passphrase again


@dataclass
class Session:
    token: str
    person: Credentials
    csrf: str
    started: float
    seen: float
    notice: str | None = None  # shown once on the next page (what the last action did)


@dataclass
class Sessions:
    clock: Callable[[], float] = time.monotonic
    _by_token: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, person: Credentials) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), person, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._prune(now)
            self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token``; an idle or too old one is ended here."""
        if not token:
            return None
        now = self.clock()
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if now - session.seen > IDLE_SECONDS or now - session.started > MAX_SECONDS:
                del self._by_token[token]
                return None
            session.seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)

    def _prune(self, now: float) -> None:
        for token in [
            t for t, s in self._by_token.items() if now - s.seen > IDLE_SECONDS or now - s.started > MAX_SECONDS
        ]:
            del self._by_token[token]


@dataclass
class SignInLimiter:
    """At most ``failures`` failed sign-ins per ``window`` seconds, per client address and per name.

    Both, because a guesser spreads over names from one address or over addresses for one name.
    Successful sign-ins do not count. Memory is bounded: only failures inside the window are kept.
    """

    failures: int = 5
    window: float = 15 * 60
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_seconds(self, client: str, name: str) -> int:
        """Seconds until the next try is allowed (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(key, now) for key in (f"client:{client}", f"name:{name}")]
        return max(waits)

    def failed(self, client: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"client:{client}", f"name:{name}"):
                self._seen.setdefault(key, deque()).append(now)
                self._wait(key, now)

    def _wait(self, key: str, now: float) -> int:
        times = self._seen.get(key)
        if not times:
            return 0
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._seen[key]
            return 0
        return int(self.window - (now - times[0])) + 1 if len(times) >= self.failures else 0
