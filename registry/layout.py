"""Where the registry keeps things on the bucket::

adapters/<name>/claims/<version>.json             create-only: who took the version number
adapters/<name>/versions/<version>/<files…>       the adapter folder as registered
adapters/<name>/versions/<version>/manifest.json  written last: a version exists iff this exists
audit/<name>/<seq:012d>.json                      the hash-chained log (see ``registry.audit``)
checkpoints/<name>/<seq>-<key id>.json            signed folds a cold reader starts from (``registry.audit.checkpoints``)
"""

from __future__ import annotations

from registry.errors import NotFoundError


def no_audit_log(name: str) -> NotFoundError:
    return NotFoundError(f"'{name}' has no audit log: nothing was ever registered under that name")


def versions_prefix(name: str) -> str:
    return f"adapters/{name}/versions/"


def file_key(name: str, version: str, rel: str) -> str:
    return f"{versions_prefix(name)}{version}/{rel}"
