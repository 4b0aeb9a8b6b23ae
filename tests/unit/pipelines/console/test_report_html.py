"""The HTML audit report: whatever a manifest, an event or the evidence holds is shown as text, never as markup."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from pipelines.console.evidence import evidence_of
from pipelines.console.render import render_report
from registry.adapter_folder import FileEntry, inspect_adapter_folder
from registry.audit.events import AuditEvent
from registry.fingerprint import BaseModelFingerprint
from registry.manifest import build_manifest
from registry.report import ReportInputs
from tests.registry_helpers import make_adapter_folder

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)
MARKUP = "</code><script>alert(1)</script>"


def _render(manifest, trail, evidence=None, **kwargs) -> str:
    inputs = ReportInputs(
        manifest=manifest,
        aliases=[],
        archived=False,
        trail=trail,
        evidence=evidence or {},
        generated_at="2026-01-02T00:00:00+00:00",
    )
    return render_report(evidence_of(inputs, []), **kwargs)


def _manifest(tmp_path, **kwargs):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE), BASE)
    return build_manifest(
        folder,
        "tickets",
        "v1",
        created_by="alice",
        created_at="2026-01-01T00:00:00+00:00",
        reason="first",
        **{"created_role": "trainer", **kwargs},
    )


def test_markup_in_every_hash_of_a_manifest_an_event_and_a_label_is_escaped(tmp_path):
    manifest = _manifest(tmp_path)
    # Built in memory, past the parser that refuses such a manifest: the report must not rely on it.
    forged = replace(
        manifest,
        content_sha256=MARKUP,
        base_model=BaseModelFingerprint(BASE.model_id, MARKUP, MARKUP),
        files={"adapter_model.safetensors": FileEntry(sha256=MARKUP, size=10)},
    )
    event = AuditEvent(
        action="register",
        name="tickets",
        version="v1",
        actor="alice",
        role="trainer",
        reason=MARKUP,
        seq=1,
        time="2026-01-01T00:00:00+00:00",
        key_id=MARKUP,
    )
    quality = {
        "details": {
            "macro_f1": 0.9,
            "labels": [MARKUP, "b"],
            "confusion": [[3, 1], [0, 4]],
            "per_class": [{"label": MARKUP, "f1": 0.8}, {"label": "b", "f1": 0.9}],
        }
    }
    html = _render(forged, [event], {"reports/quality.json": quality})
    assert "<script" not in html
    assert "&lt;/code&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") == 2  # per-class F1 and the confusion matrix, inline


def test_the_report_is_one_offline_file_in_japanese_with_times_in_japan(tmp_path):
    manifest = _manifest(tmp_path)
    card = {"intended_use": "問い合わせの振り分け", "limitations": "人事判断には使わない", "languages": ["ja"]}
    event = AuditEvent(
        action="register",
        name="tickets",
        version="v1",
        actor="alice",
        role="trainer",
        reason="r",
        seq=1,
        time="2026-01-01T00:00:00+00:00",
    )
    quality = {
        "details": {
            "labels": ["請求", "不具合"],
            "confusion": [[3, 1], [0, 4]],
            "per_class": [{"label": "請求", "f1": 0.8}, {"label": "不具合", "f1": 0.9}],
        }
    }
    html = _render(manifest, [event], {"model_card.json": card, "reports/quality.json": quality}, lang="ja")
    assert html.count("<svg") == 2 and "Noto Sans CJK JP" in html and "請求" in html
    assert html.index("モデルカード") < html.index("品質")  # the card comes first
    assert "問い合わせの振り分け" in html and "人事判断には使わない" in html
    assert "2026-01-01 09:00:00 JST" in html
    assert not re.search(r"<script|<link|src=|https?://", html)
    english = _render(manifest, [event], {"model_card.json": card}, lang="en", zone="UTC")
    assert "Model card" in english and "2026-01-01 00:00:00 UTC" in english


def test_a_production_move_by_the_registrant_without_a_gate_is_flagged_for_review(tmp_path):
    manifest = _manifest(tmp_path, created_role="admin")
    common = dict(name="tickets", version="v1", actor="alice", role="admin", time="2026-01-01T00:00:00+00:00")
    trail = [
        AuditEvent(action="register", reason="r", seq=1, **common),
        AuditEvent(action="promote", reason="solo", alias="production", alias_after="v1", seq=2, **common),
    ]
    html = _render(manifest, trail, lang="en")
    assert "To review" in html
    assert "event 000000000002: alice moved production to v1, which alice registered" in html
    assert "without a gate decision or --override" in html


def test_the_manifest_carries_holdout_macro_f1_per_class_f1_and_the_card(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "reports" / "quality.json").write_text(
        json.dumps(
            {
                "details": {
                    "macro_f1": 0.88,
                    "accuracy": 0.9,
                    "examples": 40,
                    "per_class": [{"label": "billing", "f1": 0.8}, {"label": "bug", "f1": 0.96}],
                }
            }
        )
    )
    (folder / "model_card.json").write_text(json.dumps({"intended_use": "route tickets", "languages": ["ja"]}))
    manifest = build_manifest(
        inspect_adapter_folder(folder, BASE),
        "tickets",
        "v1",
        created_by="alice",
        created_role="trainer",
        created_at="2026-01-01T00:00:00+00:00",
        reason="r",
    )
    assert manifest.metrics["holdout_macro_f1"] == 0.88 and manifest.metrics["holdout_rows"] == 40
    assert manifest.metrics["holdout_per_class_f1"] == {"billing": 0.8, "bug": 0.96}
    assert manifest.intended_use == "route tickets"


def test_a_malformed_card_is_refused_at_register_naming_the_field(tmp_path):
    import pytest

    from registry.errors import RefusedError

    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "model_card.json").write_text(json.dumps({"intended_use": "", "languages": "ja", "owner": "x"}))
    with pytest.raises(RefusedError) as refused:
        inspect_adapter_folder(folder, BASE)
    message = str(refused.value)
    assert (
        "unknown key 'owner'" in message
        and "intended_use is empty" in message
        and "languages must be a list" in message
    )
