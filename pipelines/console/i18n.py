"""Japanese and English for the console and the report: the words, the viewer's language and time zone.

Refusals come from the registry in the CLI's English; ``refusal`` gives the known ones in Japanese
too (the English original stays beside it on the page, so nothing is lost in translation).
"""

from __future__ import annotations

import functools
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
DEFAULT_ZONE = "Asia/Tokyo"
ZONE_CHOICES = (
    "Asia/Tokyo",
    "UTC",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
)

WORDS: dict[str, tuple[str, str]] = {  # key: (ja, en)
    "title": ("Tailor コンソール", "Tailor console"),
    "adapters": ("アダプター一覧", "Adapters"),
    "queue": ("承認待ち", "Approvals"),
    "sign_in": ("サインイン", "Sign in"),
    "sign_out": ("サインアウト", "Sign out"),
    "name": ("名前", "Name"),
    "passphrase": ("パスフレーズ", "Passphrase"),
    "signed_in_as": ("サインイン中", "Signed in as"),
    "language": ("言語", "Language"),
    "time_zone": ("タイムゾーン", "Time zone"),
    "apply": ("適用", "Apply"),
    "production": ("本番 (production)", "production"),
    "staging": ("ステージング (staging)", "staging"),
    "last_event": ("最新イベント", "Last event"),
    "chain": ("監査チェーン", "Audit chain"),
    "chain_ok": ("検証済み", "verified"),
    "chain_bad": ("検証失敗", "FAILS"),
    "signed_events": ("署名付き", "signed"),
    "legacy_events": ("署名なし（旧）", "unsigned legacy"),
    "none": ("なし", "none"),
    "unset": ("未設定", "unset"),
    "version": ("バージョン", "Version"),
    "versions": ("バージョン一覧", "Versions"),
    "registered_by": ("登録者", "Registered by"),
    "registered_at": ("登録日時", "Registered at"),
    "gate": ("ゲート", "Gate"),
    "gate_passed": ("合格", "passed"),
    "gate_failed": ("不合格", "FAILED"),
    "gate_none": ("判定なし", "no decision"),
    "judged_again": ("登録後に再判定（監査ログ参照）", "judged again after registering: see the audit trail"),
    "archived": ("アーカイブ済み", "archived"),
    "evidence": ("根拠", "Evidence"),
    "audit_log": ("監査ログ", "Audit log"),
    "quality": ("品質", "Quality"),
    "macro_f1": ("マクロ F1", "macro-F1"),
    "accuracy": ("正解率", "accuracy"),
    "holdout_rows": ("評価データ行数", "holdout rows"),
    "vs_production": ("本番との差", "vs production"),
    "interval": ("信頼区間", "interval"),
    "not_compared": ("本番と未比較", "not compared with production"),
    "baselines": ("ベースライン", "Baselines"),
    "per_class_f1": ("クラス別 F1", "Per-class F1"),
    "confusion": ("混同行列（行: 正解、列: 予測）", "Confusion matrix (rows: true, columns: predicted)"),
    "drift": ("ドリフト", "Drift"),
    "drift_report": ("Evidently レポートを開く", "Open the Evidently report"),
    "bias": ("グループ別の偏り", "Bias per group"),
    "group": ("グループ", "group"),
    "rows": ("行数", "rows"),
    "noise": ("ラベル誤りの疑い（ノイズ審査）", "Suspected mislabels (noise review)"),
    "explanations": ("判定の根拠（どの語が判定を決めたか）", "Explanations (which words made the adapter decide)"),
    "no_explanations": (
        "この版には判定の根拠が保存されていません（根拠の機能より前に評価されたか、explain_rows = 0）。",
        "No explanations were stored with this version (evaluated before they existed, or with explain_rows = 0).",
    ),
    "text": ("テキスト", "text"),
    "given_label": ("付与ラベル", "given label"),
    "suggested_label": ("推定ラベル", "suggested label"),
    "confidence": ("確信度", "confidence"),
    "cost": ("コスト", "Cost"),
    "load": ("負荷", "Load"),
    "data_version": ("データバージョン", "Data version"),
    "base_model": ("ベースモデル", "Base model"),
    "model_card": ("モデルカード", "Model card"),
    "intended_use": ("想定用途", "Intended use"),
    "limitations": ("制約", "Limitations"),
    "languages": ("対象言語", "Languages"),
    "not_stated": ("記載なし", "not stated"),
    "signatures": ("誰が何に署名したか", "Who signed what"),
    "time": ("日時", "Time"),
    "actor": ("実行者", "Actor"),
    "action": ("操作", "Action"),
    "alias": ("エイリアス", "Alias"),
    "reason": ("理由", "Reason"),
    "key": ("署名鍵", "Signing key"),
    "unsigned": ("署名なし", "unsigned"),
    "approve": ("本番へ承認", "Approve to production"),
    "to_staging": ("ステージングへ", "Promote to staging"),
    "rollback": ("本番をロールバック", "Roll back production"),
    "archive": ("アーカイブ", "Archive"),
    "reason_required": ("理由（必須、監査ログに記録）", "Reason (required, recorded in the audit log)"),
    "refused": ("拒否されました", "Refused"),
    "done": ("完了", "Done"),
    "queue_empty": ("承認待ちのバージョンはありません。", "No version is waiting for approval."),
    "queue_hint": (
        "ゲートに合格し、まだ本番になっていないバージョン。登録者以外の承認者が承認します。",
        "Versions whose gate passed and that production never held; an approver other than who "
        "registered them approves.",
    ),
    "own_version": (
        "あなたが登録したため承認できません（四つの目の原則）",
        "you registered it: another person approves",
    ),
    "at_time": ("時刻 T に本番だったもの", "What was in production at time T"),
    "at_time_answer": ("その時点の本番", "production then"),
    "set_by": ("設定したイベント", "set by event"),
    "show": ("表示", "Show"),
    "no_adapters": ("登録されたアダプターはありません。", "No adapter is registered yet."),
    "report": ("監査レポート", "Audit report"),
    "generated": ("作成日時", "Generated"),
    "files": ("ファイル", "Files"),
    "webhook_missed": ("Webhook に届きませんでした", "webhook not reached"),
    "sign_in_failed": ("名前またはパスフレーズが違います。", "Unknown name or wrong passphrase."),
    "disabled": ("このアカウントは無効化されています。", "This person is disabled in the keyring."),
    "key_rotated": (
        "署名鍵が更新されています。新しい認証情報ファイルで `tailor user passwd` を実行し直してください。",
        "Your signing key was rotated: run `tailor user passwd` again with your new credentials file.",
    ),
    "account_damaged": (
        "アカウントファイルが壊れています。管理者に連絡してください。",
        "This person's console account file is damaged; ask an admin (the console's log says more).",
    ),
    "verify_files": ("全ファイルを検証（時間がかかります）", "Verify every file (slow)"),
    "chain_folded": ("チェーンと署名を確認済み", "chain and signatures checked"),
    "store_refused": (
        "ストアがあなたの鍵を受け付けません（無効化または鍵の更新）。管理者に確認してください。",
        "The store no longer accepts your keys (disabled, or rotated); ask an admin.",
    ),
    "labels": ("ラベル（クラス順）", "labels (class order)"),
    "too_many": (
        "サインインの失敗が多すぎます。{seconds} 秒後にもう一度お試しください。",
        "Too many failed sign-ins; try again in {seconds} seconds.",
    ),
    "csrf": (
        "フォームの有効期限が切れたか、別のサイトから送信されました（CSRF トークンなし）。ページを開き直してください。",
        "The form expired or came from another site (no valid CSRF token); open the page again.",
    ),
    "p95_ms": ("p95 レイテンシ (ms)", "p95 latency (ms)"),
    "throughput": ("スループット (件/秒)", "throughput (per s)"),
    "verify_status": ("検証結果", "Verification"),
    "to_review": ("要確認", "To review"),
}

_REFUSALS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"four-eyes rule: (?P<actor>\S+) registered (?P<name>\S+) (?P<version>\S+) and cannot also promote it "
            r"to (?P<to>\S+); another person must"
        ),
        "四つの目の原則: {actor} が {name} {version} を登録したため、{to} への昇格はできません。別の人が行う必要があります。",
    ),
    (
        re.compile(
            r"(?P<label>.+?) failed its gate: (?P<why>.*); only an approver may promote it, with --override "
            r"and a reason"
        ),
        "{label} はゲートに不合格です（{why}）。承認者のみが --override と理由を付けて昇格できます。",
    ),
    (
        re.compile(
            r"(?P<name>\S+) (?P<version>\S+)'s gate compared it with (?P<against>\S+), but (?P<to>\S+) holds "
            r"\S+ (?P<current>\S+): .*"
        ),
        "{name} {version} のゲートは {against} と比較されましたが、{to} は現在 {current} です（古いゲート判定）。"
        "現在の {to} と比較して再評価し、新しいバージョンとして登録してください。",
    ),
    (
        re.compile(r"(?P<label>.+?)'s gate could not judge (?P<checks>[^(]+) \(.*"),
        "{label} のゲートは {checks} を判定できていません。`tailor judge-load` で再判定してください。",
    ),
    (
        re.compile(r"(?P<label>.+?) was registered without a gate decision: .*"),
        "{label} はゲート判定なしで登録されています。本番と比較して評価し、登録し直してください。",
    ),
    (
        re.compile(r"(?P<label>.+?)'s gate passed under policy .*"),
        "{label} のゲートは現在のものとは別のポリシーで判定されました。現在のポリシーで再判定し、登録し直してください。",
    ),
    (
        re.compile(r"role '(?P<role>\w+)' cannot move '(?P<alias>\w+)': an approver \(or admin\) must"),
        "ロール '{role}' は '{alias}' を変更できません。承認者（または管理者）が行います。",
    ),
    (
        re.compile(r"role '(?P<role>\w+)' may (?:only read|not \w+); (?P<action>\w+) needs one of: (?P<roles>.+)"),
        "ロール '{role}' は {action} を実行できません（必要なロール: {roles}）。",
    ),
    (
        re.compile(r"a reason is required to (?P<what>.+?) \(--reason TEXT\).*"),
        "理由が必要です（監査ログに記録されます）。",
    ),
    (re.compile(r"a reason must be one line of visible text.*"), "理由は目に見える文字の 1 行にしてください。"),
    (re.compile(r"a reason is at most (?P<n>\d+) characters.*"), "理由は {n} 文字以内にしてください。"),
    (
        re.compile(r"(?P<name>\S+) (?P<version>\S+) is archived and cannot be promoted"),
        "{name} {version} はアーカイブ済みのため昇格できません。",
    ),
    (re.compile(r"(?P<name>\S+) (?P<version>\S+) is archived already"), "{name} {version} は既にアーカイブ済みです。"),
    (re.compile(r"(?P<to>\S+) already holds (?P<name>\S+) (?P<version>\S+)"), "{to} は既に {name} {version} です。"),
    (
        re.compile(
            r"(?P<name>\S+) (?P<version>\S+) is (?P<holders>[\w ]+): promote or roll back to another version first"
        ),
        "{name} {version} は現在 {holders} です。先に別のバージョンを昇格するかロールバックしてください。",
    ),
    (
        re.compile(
            r"'(?P<alias>\w+)' of '(?P<name>[^']+)' holds (?P<now>\S+), not (?P<expect>\S+): it moved meanwhile.*"
        ),
        "{name} の '{alias}' は現在 {now} で、{expect} ではありません。その間に変更されました。確認してからやり直してください。",
    ),
    (
        re.compile(r"'(?P<alias>\w+)' of '(?P<name>[^']+)' has no earlier version to roll back to"),
        "{name} の '{alias}' には戻れる以前のバージョンがありません。",
    ),
    (
        re.compile(r"cannot roll back '(?P<alias>\w+)' to (?P<name>\S+) (?P<version>\S+): it is archived"),
        "{name} {version} はアーカイブ済みのため、'{alias}' をロールバックできません。",
    ),
    (
        re.compile(r"role 'trainer' cannot archive (?P<name>\S+) (?P<version>\S+): .*"),
        "トレーナーは {name} {version} をアーカイブできません（本番がロールバック先として使う可能性があります）。承認者が行います。",
    ),
]


def word(lang: str, key: str, **values: object) -> str:
    ja, en = WORDS[key]
    return (ja if lang == "ja" else en).format(**values)


def refusal(lang: str, message: str) -> str | None:
    """The registry's refusal in Japanese when known, else None (the English original is always shown)."""
    if lang != "ja":
        return None
    for pattern, japanese in _REFUSALS:
        found = pattern.fullmatch(message)
        if found:
            return japanese.format(**found.groupdict())
    return None


def negotiate(accept_language: str | None, chosen: str | None) -> str:
    """The language chosen with the switch, else the browser's first of ja/en by weight, else Japanese."""
    if chosen in LANGUAGES:
        return chosen
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        try:
            q = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())  # a walk of the system's zone files: once per process


def zone(name: str | None) -> ZoneInfo:
    """The viewer's zone (from the switch), Japan's where none or an unknown one is given."""
    if name and name in _zone_names():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(DEFAULT_ZONE)


def local_time(stored: str | None, where: ZoneInfo) -> str:
    """A stored UTC time as the viewer reads it: ``2026-12-06 18:30:00 JST``; unparsable text as it is."""
    from registry.audit.events import parse_time

    if not stored:
        return ""
    try:
        moment = parse_time(stored)
    except ValueError:
        return stored
    return moment.astimezone(where).strftime("%Y-%m-%d %H:%M:%S %Z")
