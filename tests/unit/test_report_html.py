"""The HTML audit report: whatever a manifest or an event holds is shown as text, never as markup."""

from __future__ import annotations

from dataclasses import replace

from registry.audit import AuditEvent
from registry.fingerprint import BaseModelFingerprint
from registry.manifest import FileEntry, build_manifest, inspect_adapter_folder
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
