"""The console's sign-in pieces without a store: sealed accounts, sessions, the rate limit, words, the Host check."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from pipelines.console import accounts, i18n
from pipelines.console.accounts import PassphraseAccounts, SignInRefused, write_account
from pipelines.console.app import create_app
from pipelines.console.sessions import IDLE_SECONDS, Sessions, SignInLimiter
from pipelines.console.web import ConsoleOptions
from pipelines.context import Context
from pipelines.settings import load_settings
from registry.errors import ConfigError, RefusedError
from registry.people import Credentials

BOB = Credentials(
    name="bob",
    role="approver",
    kind="person",
    access_key="AK",
    secret_key="secret-key-of-bob",
    signing_key="c2lnbmluZy1rZXktb2YtYm9iLXRoaXJ0eS10d28hIQ==",
    trust_root="t" * 64,
    bucket="b",
)
PHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(accounts, "SCRYPT_N", 2**10)


def test_a_passphrase_unseals_the_persons_credentials_and_a_wrong_one_reads_like_an_unknown_name(tmp_path):
    path = write_account(tmp_path, BOB, PHRASE)
    assert path.stat().st_mode & 0o777 == 0o600
    stored = path.read_text(encoding="utf-8")
    assert BOB.signing_key not in stored and BOB.secret_key not in stored and PHRASE not in stored
    people = PassphraseAccounts(tmp_path)
    assert people.sign_in("bob", PHRASE) == BOB
    with pytest.raises(SignInRefused) as wrong:
        people.sign_in("bob", PHRASE + "!")
    with pytest.raises(SignInRefused) as unknown:
        people.sign_in("carol", PHRASE)
    with pytest.raises(SignInRefused):
        people.sign_in("../bob", PHRASE)
    assert str(wrong.value) == str(unknown.value)


def test_a_short_passphrase_is_refused_and_an_altered_account_file_is_named(tmp_path):
    with pytest.raises(RefusedError, match="at least 12"):
        write_account(tmp_path, BOB, "short")
    path = write_account(tmp_path, BOB, PHRASE)
    raw = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**raw, "sealed": raw["sealed"][:-8] + "AAAAAAA="}))
    with pytest.raises(ConfigError, match="altered"):
        PassphraseAccounts(tmp_path).sign_in("bob", PHRASE)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        PassphraseAccounts(tmp_path).sign_in("bob", PHRASE)


def test_sessions_end_when_idle_and_sign_ins_are_limited_per_client_and_per_name():
    now = [0.0]
    sessions = Sessions(clock=lambda: now[0])
    session = sessions.start(BOB)
    assert sessions.get(session.token) is session
    now[0] += IDLE_SECONDS + 1
    assert sessions.get(session.token) is None
    limiter = SignInLimiter(failures=3, window=60, clock=lambda: now[0])
    for name in ("a", "b", "c"):
        assert limiter.wait_seconds("10.0.0.1", name) == 0
        limiter.failed("10.0.0.1", name)
    assert limiter.wait_seconds("10.0.0.1", "d") > 0  # the address, whatever the name
    for client in ("1", "2", "3"):
        limiter.failed(client, "bob")
    assert limiter.wait_seconds("10.0.0.9", "bob") > 0  # the name, whatever the address
    now[0] += 61
    assert limiter.wait_seconds("10.0.0.1", "bob") == 0


def test_the_browser_language_picks_japanese_or_english_and_refusals_are_translated():
    assert i18n.negotiate("en-US,en;q=0.9,ja;q=0.8", None) == "en"
    assert i18n.negotiate("ja,en;q=0.5", None) == "ja"
    assert i18n.negotiate("fr-FR", None) == "ja"
    assert i18n.negotiate("ja", "en") == "en"
    four_eyes = (
        "four-eyes rule: alice registered tickets v2 and cannot also promote it to production; another person must"
    )
    assert i18n.refusal("ja", four_eyes).startswith("四つの目の原則: alice が tickets v2 を登録したため")
    assert i18n.refusal("en", four_eyes) is None
    assert i18n.local_time("2026-12-06T09:30:00.123456+00:00", i18n.zone(None)) == "2026-12-06 18:30:00 JST"
    assert i18n.local_time("2026-12-06T09:30:00+00:00", i18n.zone("Nowhere/Else")).endswith("JST")


def test_pages_need_sign_in_a_foreign_host_is_refused_and_a_post_needs_its_csrf_token(tmp_path):
    app = create_app(Context(load_settings(home=tmp_path)), PassphraseAccounts(tmp_path), ConsoleOptions())
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin?next=/"
    assert client.get("/signin", headers={"Host": "evil.example"}).status_code == 421
    page = client.get("/signin")
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
    assert client.post("/signin", data={"name": "bob", "passphrase": PHRASE}).status_code == 403
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        "/signin", data={"csrf": token, "name": "bob", "passphrase": PHRASE}, headers={"Origin": "http://evil.example"}
    )
    assert answer.status_code == 403
    (tmp_path / "carol.json").write_text("{damaged")
    answer = client.post("/signin", data={"csrf": token, "name": "carol", "passphrase": PHRASE})
    assert answer.status_code == 500 and "管理者に連絡" in answer.text and str(tmp_path) not in answer.text
    answer = client.post("/signin", data={"csrf": token, "name": "bob", "passphrase": PHRASE})
    assert answer.status_code == 401 and "名前またはパスフレーズが違います" in answer.text  # Japanese by default


def test_a_secure_console_sets_secure_host_prefixed_cookies(tmp_path):
    app = create_app(
        Context(load_settings(home=tmp_path)),
        PassphraseAccounts(tmp_path),
        ConsoleOptions(secure=True, allowed_hosts=frozenset({"tailor.example"})),
    )
    page = TestClient(app, base_url="https://tailor.example").get("/signin")
    assert page.status_code == 200
    assert page.headers["set-cookie"].startswith("__Host-tailor_signin=") and "Secure" in page.headers["set-cookie"]


def test_a_sealed_key_that_was_rotated_or_disabled_no_longer_signs_in():
    from types import SimpleNamespace

    from pipelines.console.signin_routes import key_problem
    from registry.keyring import Keyring
    from registry.signing import key_id, new_private_key, public_key_of

    private = new_private_key()
    person = Credentials(
        name="bob",
        role="approver",
        kind="person",
        access_key="a",
        secret_key="s",
        signing_key=private,
        trust_root="t",
        bucket="b",
    )
    ring = Keyring(people={"bob": key_id(public_key_of(private))})
    assert key_problem(SimpleNamespace(keyring=lambda: ring), person) is None
    assert key_problem(SimpleNamespace(keyring=lambda: None), person) is None  # an unsigned store
    rotated = Keyring(people={"bob": key_id(public_key_of(new_private_key()))})
    assert key_problem(SimpleNamespace(keyring=lambda: rotated), person) == "key_rotated"
    gone = Keyring(people=dict(ring.people), disabled=["bob"])
    assert key_problem(SimpleNamespace(keyring=lambda: gone), person) == "disabled"


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["console", "--host", "0.0.0.0"], 1, "clear text; give --cert and --key"),
        (["console", "--cert", "/nonexistent.pem"], 2, "--cert and --key go together"),
        (
            ["console", "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"],
            2,
            "--cert /nonexistent.pem does not exist",
        ),
    ],
)
def test_tailor_console_refuses_to_listen_in_clear_text_beyond_loopback(argv, code, words, capsys):
    from pipelines.cli.main import run

    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == code and words in capsys.readouterr().err


def test_a_service_cannot_set_a_console_passphrase(tmp_path, monkeypatch, capsys):
    from pipelines.cli.main import run
    from registry.people import write_credentials
    from registry.signing import new_private_key

    creds = write_credentials(
        tmp_path / "srv.json",
        Credentials(
            name="srv",
            role="reader",
            kind="service",
            access_key="a",
            secret_key="s",
            signing_key=new_private_key(),
            trust_root="t",
            bucket="tailor",
        ),
    )
    monkeypatch.setenv("TAILOR_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        run(["user", "passwd", "--passphrase-stdin"])
    assert exit_info.value.code == 1 and "srv is a service" in capsys.readouterr().err
    assert not (tmp_path / "console").exists()


@pytest.mark.parametrize(
    "english, japanese",
    [
        (
            "tickets v2's gate compared it with nothing, but production holds tickets v1: evaluate its folder against "
            "production (`tailor evaluate --adapter FOLDER --name tickets`) and register it again (a version's evidence never "
            "changes), or an approver may promote it with --override and a reason",
            "tickets v2 のゲートは nothing と比較されましたが、production は現在 v1 です（古いゲート判定）",
        ),
        (
            "tickets v3 failed its gate: quality.min_macro_f1: 0.61 < 0.8; only an approver may promote it, with --override "
            "and a reason",
            "tickets v3 はゲートに不合格です（quality.min_macro_f1: 0.61 < 0.8）",
        ),
        ("tickets v1 is archived and cannot be promoted", "tickets v1 はアーカイブ済みのため昇格できません。"),
        (
            "'production' of 'tickets' has no earlier version to roll back to",
            "tickets の 'production' には戻れる以前のバージョンがありません。",
        ),
        (
            "'production' of 'tickets' holds v3, not v2: it moved meanwhile; look again (`tailor list`) before rolling back",
            "tickets の 'production' は現在 v3 で、v2 ではありません。",
        ),
        (
            "tickets v1 is production and staging: promote or roll back to another version first",
            "tickets v1 は現在 production and staging です。",
        ),
        ("a reason is required to promote (--reason TEXT): it goes into the audit log", "理由が必要です"),
    ],
)
def test_the_registrys_refusals_read_in_japanese(english, japanese):
    assert japanese in i18n.refusal("ja", english)


def test_tailor_console_refuses_an_actor_setting_since_whoever_signs_in_acts(monkeypatch, capsys):
    from pipelines.cli.main import run

    monkeypatch.setenv("TAILOR_ACTOR", "bob")
    with pytest.raises(SystemExit) as exit_info:
        run(["console", "--port", "1"])
    assert exit_info.value.code == 2 and "the console acts as whoever signs in" in capsys.readouterr().err
