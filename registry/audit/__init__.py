"""The append-only audit log: one hash-chained event per object, and alias state as its fold.

``events`` is one event and its strict parse; ``state`` the fold; ``log`` reading and appending.

Layout: ``audit/<name>/<seq:012d>.json``, sequence numbers from 1 with no gaps. Each event holds
the sha256 of the event before it and its own sha256 (canonical JSON), and is written
create-only: two writers racing for the same sequence number cannot both win, and the loser
re-reads the log and retries. The fold checks every event it reads (hash, link, sequence and
meaning), so state is never built on a broken chain as it was read; a cache saves re-reading old
events, so a later rewrite of one is found by ``verify``, which trusts no cache.
"""
