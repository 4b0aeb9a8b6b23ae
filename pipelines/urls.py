"""URLs as settings take them and as they may be shown: a webhook URL is a secret (credentials in its
userinfo or query, and for Slack or Teams in its path)."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit


def url_id(url: str) -> str:
    """A short sha256 of the whole URL: tells URLs apart without revealing any of them."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def redacted_url(url: str) -> str:
    """``url`` as it may be stored, printed or logged: ``scheme://host[:port]/… (url sha256 <url_id>)``.

    A webhook URL is a secret (credentials in its userinfo or query, and for Slack or Teams in its
    path). Never raises, whatever ``url`` is: it also words the refusal of a malformed setting.
    """
    tag = f"… (url sha256 {url_id(url)})"
    try:
        parts = urlsplit(url)
        port = parts.port  # a "port" that is not a number may be part of a password: show no host then
    except ValueError:
        return tag
    if not parts.scheme or not parts.hostname:
        return tag
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}/{tag}"


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host.

    Raises:
        ValueError: it is not (pydantic reports it under the setting's name).
    """
    parts = urlsplit(value)
    if not value.startswith(("http://", "https://")) or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {redacted_url(value)!r}")
    try:
        parts.port  # noqa: B018 - http://h:abc/ parses, and httpx refuses it only when called
    except ValueError:
        raise ValueError(f"has a port that is not a number from 0 to 65535: {redacted_url(value)!r}") from None
    return value
