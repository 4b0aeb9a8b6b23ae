"""The HTML audit report: whatever a manifest or an event holds is shown as text, never as markup."""

from __future__ import annotations

from dataclasses import replace

from registry.adapter_folder import FileEntry, inspect_adapter_folder
from registry.audit.events import AuditEvent
from registry.fingerprint import BaseModelFingerprint
from registry.manifest import build_manifest
from registry.report import ReportInputs, render
from tests.registry_helpers import make_adapter_folder

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)
MARKUP = "</code><script>alert(1)</script>"


def test_markup_in_every_hash_of_a_manifest_and_an_event_is_escaped(tmp_path):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE), BASE)
    manifest = build_manifest(folder, "tickets", "v1", created_by="alice", created_role="trainer",
                              created_at="2026-01-01T00:00:00+00:00", reason="first")  # fmt: skip
    # Built in memory, past the parser that refuses such a manifest: the report must not rely on it.
    forged = replace(manifest, content_sha256=MARKUP, base_model=BaseModelFingerprint(BASE.model_id, MARKUP, MARKUP),
                     files={"adapter_model.safetensors": FileEntry(sha256=MARKUP, size=10)})  # fmt: skip
    event = AuditEvent(action="register", name="tickets", version="v1", actor="alice", role="trainer", reason="r",
                       seq=1, time="2026-01-01T00:00:00+00:00", sha256=MARKUP)  # fmt: skip
    html = render(ReportInputs(manifest=forged, aliases=[], archived=False, trail=[event], evidence={},
                               generated_at="2026-01-02T00:00:00+00:00"))  # fmt: skip
    assert "<script" not in html
    # content, weights, tokenizer and file hash; the event's hash is cut to 16 characters
    assert html.count("&lt;/code&gt;&lt;script&gt;alert(1)&lt;/script&gt;") == 4
    assert "<code>&lt;/code&gt;&lt;script&gt;a…</code>" in html


def test_a_production_move_by_the_registrant_without_a_gate_is_flagged_for_review(tmp_path):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE), BASE)
    manifest = build_manifest(folder, "tickets", "v1", created_by="alice", created_role="admin",
                              created_at="2026-01-01T00:00:00+00:00", reason="first")  # fmt: skip
    common = dict(name="tickets", version="v1", actor="alice", role="admin", time="2026-01-01T00:00:00+00:00")
    trail = [AuditEvent(action="register", reason="r", seq=1, **common),
             AuditEvent(action="promote", reason="solo", alias="production", alias_after="v1", seq=2, **common)]
    html = render(ReportInputs(manifest=manifest, aliases=["production"], archived=False, trail=trail, evidence={},
                               generated_at="2026-01-02T00:00:00+00:00"))  # fmt: skip
    assert "To review" in html
    assert "event 000000000002: alice moved production to v1, which alice registered" in html
    assert "without a gate decision or --override" in html
