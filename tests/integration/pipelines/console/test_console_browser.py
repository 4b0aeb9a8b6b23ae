"""`tailor console` in a real browser: Playwright driving Debian's Chromium against a signed store.

Two people, as in test_signed_governance: alice (trainer) registers, bob (approver) approves. Each
sets a console passphrase with `tailor user passwd`; the console signs their actions with the key
that passphrase unseals. The module starts a store of its own because `tailor user add` restarts it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from unittest import mock

import httpx
import pytest

from bench.embedded_store import store_env
from pipelines.policy import load_policy
from pipelines.servers import seaweedfs as embedded
from pipelines.servers.seaweedfs import EmbeddedStoreConfig
from pipelines.settings import load_settings
from registry.fingerprint import base_model_fingerprint, file_sha256
from registry.governance import RegistryRules
from registry.people import read_credentials
from registry.registry import Registry
from registry.settings import StoreSettings
from registry.store import S3ObjectStore
from tests.conftest import REPO, TAILOR, run_cli
from tests.registry_helpers import make_adapter_folder, passed_gate

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api")
if CHROMIUM is None:
    pytest.skip("Debian's chromium package is not installed (infra/install.sh installs it)", allow_module_level=True)

NAME = "tickets"
SCRIPT_LABEL = "<script>alert(1)</script>"
PASSPHRASES = {
    "alice": "alice likes long passphrases",
    "bob": "bob approves on evidence",
    "carol": "carol left the company",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _folder(path: Path, base, seed: int, against: str | None, policy_sha256: str, labels: list[str]) -> Path:
    """An adapter folder with a passing gate bound to its weights, quality evidence and a noise review."""
    folder = make_adapter_folder(path, base, seed=seed)
    meta = json.loads((folder / "tailor_adapter.json").read_text(encoding="utf-8"))
    (folder / "tailor_adapter.json").write_text(json.dumps({**meta, "labels": labels}))
    decision = {
        **passed_gate(against, policy_sha256=policy_sha256),
        "adapter_sha256": file_sha256(folder / "adapter_model.safetensors"),
    }
    (folder / "gate_decision.json").write_text(json.dumps(decision))
    quality = {
        "name": "quality",
        "passed": True,
        "details": {
            "macro_f1": 0.91,
            "accuracy": 0.93,
            "examples": 40,
            "labels": labels,
            "per_class": [{"label": label, "f1": 0.8 + 0.05 * i} for i, label in enumerate(labels)],
            "confusion": [
                [9 if i == j else 1 if j == (i + 1) % len(labels) else 0 for j in range(len(labels))]
                for i in range(len(labels))
            ],
            "production": {"ref": against, "diff": 0.02, "diff_ci_low": -0.01, "diff_ci_high": 0.05}
            if against
            else None,
            "summary": "macro-F1 0.910 on 40 rows",
        },
    }
    (folder / "reports" / "quality.json").write_text(json.dumps(quality))
    checks = {
        "bias": {
            "groups": {
                "email": {"rows": 20, "macro_f1": 0.9, "accuracy": 0.92},
                "電話": {"rows": 20, "macro_f1": 0.86, "accuracy": 0.88},
            },
            "summary": "worst group '電話' macro-F1 0.860 vs best 'email' 0.900 (gap 0.040)",
        },
        "drift": {"summary": "2 of 7 features drifted (share 0.29, limit 0.5)"},
        "cost": {"summary": "trained 112 examples in 41.0 s on cpu, peak RSS 790 MB, 0.0006 EUR"},
        "load": {"p95_ms": 21.7, "throughput_per_s": 184.4},
    }
    for check, details in checks.items():
        (folder / "reports" / f"{check}.json").write_text(
            json.dumps({"name": check, "details": details}, ensure_ascii=False)
        )
    (folder / "model_card.json").write_text(
        json.dumps(
            {
                "intended_use": "問い合わせを担当キューに振り分ける（サポート窓口）",
                "limitations": "人事・与信の判断には使わない。1 件 2000 文字まで。",
                "languages": ["ja", "en"],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (folder / "reports" / "drift.html").write_text(
        "<html><script>document.title = String(window.origin)</script></html>"
    )
    (folder / "reports" / "validation").mkdir(exist_ok=True)
    (folder / "reports" / "validation" / "noise_review.csv").write_text(
        "id,text,given_label,suggested_label,confidence\n7,請求額が二重になっています,bug,billing,0.93\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """A signed store with alice and bob, tickets v1 in production (bob), v2 in staging (alice), and
    `tailor console` serving it on a free port."""
    home = tmp_path_factory.mktemp("console-home")
    cfg = EmbeddedStoreConfig.on_free_ports(home / "store", bucket="tailor-console")
    embedded.start(cfg)
    server = None
    try:
        env = store_env(cfg, home)
        init = run_cli("user", "init", "--name", "root", "--json", env=env)
        assert init.returncode == 0, init.stderr
        creds = {"root": json.loads(init.stdout)["credentials_file"]}
        for name, role in (("alice", "trainer"), ("bob", "approver"), ("carol", "trainer")):
            added = run_cli(
                "user",
                "add",
                name,
                "--role",
                role,
                "--reason",
                "joined",
                "--json",
                env={**env, "TAILOR_CREDENTIALS_FILE": creds["root"]},
            )
            assert added.returncode == 0, added.stderr
            creds[name] = json.loads(added.stdout)["credentials_file"]
            done = run_cli(
                "user",
                "passwd",
                "--passphrase-stdin",
                env={**env, "TAILOR_CREDENTIALS_FILE": creds[name]},
                input=PASSPHRASES[name] + "\n",
            )
            assert done.returncode == 0, done.stderr
        gone = run_cli(
            "user", "disable", "carol", "--reason", "left", env={**env, "TAILOR_CREDENTIALS_FILE": creds["root"]}
        )
        assert gone.returncode == 0, gone.stderr
        with mock.patch.dict(os.environ, env, clear=True):
            settings = load_settings()
            base = base_model_fingerprint(settings.base_model_dir, settings.model_id_of(None), cache_dir=settings.home)
            policy_sha = load_policy(settings.policy).sha256

        def registry(who: str) -> Registry:
            c = read_credentials(Path(creds[who]))
            s = StoreSettings(
                endpoint=cfg.endpoint,
                bucket=cfg.bucket,
                access_key=c.access_key,
                secret_key=c.secret_key,
                role=c.role,
                actor=c.name,
                signing_key=c.signing_key,
                trust_root=c.trust_root,
                object_lock_days=1,
            )
            return Registry(S3ObjectStore(s), s, base_model=base, rules=RegistryRules(policy_sha256=policy_sha))

        labels = ["billing", "bug", SCRIPT_LABEL]
        registry("alice").register(_folder(home / "v1", base, 1, None, policy_sha, labels), NAME, reason="first")
        registry("bob").promote(NAME, "v1", "production", reason="reviewed")
        registry("alice").register(
            _folder(home / "v2", base, 2, f"{NAME}:v1", policy_sha, labels), NAME, reason="retrained on november"
        )
        registry("alice").promote(NAME, "v2", "staging", reason="for review")
        port = _free_port()
        server = subprocess.Popen(
            [TAILOR, "console", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                httpx.get(url + "/signin", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.2)
        yield url
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        embedded.stop(cfg)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    dialogs: list[str] = []
    tab = context.new_page()
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs
    yield tab
    context.close()


def _sign_in(page, url: str, who: str, passphrase: str | None = None) -> None:
    _try_sign_in(page, url, who, passphrase or PASSPHRASES[who])
    assert page.locator("#who").count() == 1, page.content()[:3000]
    assert page.locator("#who").inner_text() == who


def _try_sign_in(page, url: str, who: str, passphrase: str) -> None:
    page.goto(url + "/signin")
    page.fill("input[name=name]", who)
    page.fill("input[name=passphrase]", passphrase)
    page.click("form.signin button")


def test_a_wrong_passphrase_and_a_disabled_person_are_refused_in_words(console, page):
    _try_sign_in(page, console, "bob", "not bob's passphrase")
    assert "Unknown name or wrong passphrase" in page.locator(".refusal").inner_text()
    _try_sign_in(page, console, "carol", PASSPHRASES["carol"])
    assert "no longer accepts your keys" in page.locator(".refusal").inner_text()
    page.goto(console + "/")
    assert page.url.startswith(console + "/signin")


def test_the_main_pages_read_in_japanese_and_are_pictured_for_the_docs(console, browser, tmp_path):
    """Screenshots of the pages docs/console.md shows (TAILOR_SCREENSHOTS_DIR=docs/img/console keeps them)."""
    where = Path(os.environ.get("TAILOR_SCREENSHOTS_DIR") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    try:
        tab.goto(console + "/signin")
        assert tab.locator("h1").inner_text() == "サインイン"
        tab.screenshot(path=str(where / "signin.png"))
        _sign_in(tab, console, "bob")
        for path, shot, heading in (
            ("/", "adapters", "アダプター一覧"),
            ("/queue", "queue", "承認待ち"),
            (f"/adapters/{NAME}/v2", "evidence", f"{NAME} v2"),
            (f"/adapters/{NAME}", "audit", NAME),
        ):
            tab.goto(console + path)
            assert heading in tab.locator("h1").inner_text()
            if shot == "evidence":
                assert "問い合わせを担当キューに振り分ける" in tab.locator("#model-card").inner_text()
            tab.screenshot(path=str(where / f"{shot}.png"), full_page=True)
    finally:
        context.close()
    assert all(
        (where / f"{shot}.png").stat().st_size > 10_000 for shot in ("signin", "adapters", "queue", "evidence", "audit")
    )


def test_a_trainer_cannot_approve_their_own_version_and_reads_why(console, page):
    _sign_in(page, console, "alice")
    page.goto(f"{console}/adapters/{NAME}/v2")
    page.fill("#approve input[name=reason]", "looks good to me")
    page.click("#approve button")
    assert "role 'trainer' cannot move 'production'" in page.locator(".refusal").inner_text()
    page.goto(f"{console}/prefs?lang=ja&next=/adapters/{NAME}/v2")
    page.fill("#approve input[name=reason]", "自分で承認")
    page.click("#approve button")
    assert "ロール 'trainer' は 'production' を変更できません" in page.locator(".refusal").inner_text()
    page.goto(f"{console}/adapters/{NAME}")
    assert page.locator("#production").inner_text() == "v1"


def test_an_approver_approves_a_staging_version_and_sees_production_move_and_the_event(console, page):
    _sign_in(page, console, "bob")
    page.goto(console + "/queue")
    assert page.locator("#queue").get_by_text("v2").count() == 1
    page.goto(f"{console}/adapters/{NAME}/v2")
    page.fill("#approve input[name=reason]", "evidence reviewed: +0.02 macro-F1")
    page.click("#approve button")
    assert "v1 → v2" in page.locator(".notice").inner_text()
    page.goto(console + "/")
    assert page.locator(f"#adapters tr[data-name={NAME}] .production").inner_text() == "v2"
    page.goto(f"{console}/adapters/{NAME}")
    top = page.locator("#audit tr").nth(1).inner_text()
    assert "bob (approver)" in top and "production: v1 → v2" in top and "evidence reviewed" in top
    assert "chain and signatures checked" in page.locator("#verification").inner_text()
    page.click("#verification a")  # `tailor audit verify`: every stored file read
    assert "verified — 5 (signed 5" in page.locator("#verification").inner_text()
    # "what was in production at time T", T typed in the viewer's zone (JST unless switched)
    import datetime as dt
    import time
    from zoneinfo import ZoneInfo

    # The field takes whole seconds: a second later, the second typed is after the promotion, not the one it
    # happened in (which would rightly answer v1), and not in the future, which the registry refuses.
    time.sleep(1)
    now = dt.datetime.now(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%dT%H:%M:%S")
    page.goto(f"{console}/adapters/{NAME}?at={now}")
    assert "production then" in page.locator("#at-answer").inner_text()
    assert page.locator("#at-answer strong").inner_text() == "v2"
    page.goto(f"{console}/adapters/{NAME}?at=2000-01-01T09:00:00")
    assert page.locator("#at-answer strong").inner_text() == "unset"


def test_a_label_holding_markup_is_shown_as_text(console, page):
    _sign_in(page, console, "bob")
    page.goto(f"{console}/adapters/{NAME}/v1")
    assert SCRIPT_LABEL in page.locator("#per-class").inner_text()
    assert page.locator("#confusion svg").count() == 1
    assert "請求額が二重になっています" in page.locator("#noise").inner_text()
    assert page.dialogs == []
    page.goto(f"{console}/adapters/{NAME}/v1?refusal=approve+v9+now")  # a link cannot fill the refusal box
    assert page.locator(".refusal").count() == 0


def test_a_post_without_the_csrf_token_is_refused(console, page):
    _sign_in(page, console, "bob")
    answer = page.request.post(f"{console}/adapters/{NAME}/v1/archive", form={"reason": "no token"})
    assert answer.status == 403
    answer = page.request.post(f"{console}/adapters/{NAME}/v1/archive", form={"reason": "wrong", "csrf": "x" * 43})
    assert answer.status == 403
    page.goto(f"{console}/adapters/{NAME}")
    assert "archive v1" not in page.locator("#audit").inner_text()


def test_an_approver_rolls_production_back_with_a_reason(console, page):
    _sign_in(page, console, "bob")
    page.goto(f"{console}/adapters/{NAME}")
    assert page.locator("#production").inner_text() == "v2"
    page.fill("#rollback input[name=reason]", "v2 misroutes billing")
    page.click("#rollback button")
    assert "v2 → v1" in page.locator(".notice").inner_text()
    assert page.locator("#production").inner_text() == "v1"
    assert "rollback v1" in page.locator("#audit tr").nth(1).inner_text()


def test_archiving_a_version_an_alias_holds_is_refused_in_words_and_the_drift_report_opens_sandboxed(console, page):
    _sign_in(page, console, "bob")
    page.goto(f"{console}/adapters/{NAME}/v2")
    assert page.locator("#archive").count() == 0  # staging holds it: the form is not offered
    answer = page.request.post(f"{console}/adapters/{NAME}/v2/archive", form={"reason": "old", "csrf": _csrf(page)})
    assert (
        answer.status == 409 and "tickets v2 is staging: promote or roll back to another version first" in answer.text()
    )
    report = page.request.get(f"{console}/adapters/{NAME}/v2/drift")
    assert report.status == 200 and report.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    page.goto(f"{console}/adapters/{NAME}/v2/drift")
    assert page.title() == "null"  # its script ran, in an opaque origin: not the console's


def _csrf(page) -> str:
    return page.locator("form.signout input[name=csrf]").get_attribute("value")
