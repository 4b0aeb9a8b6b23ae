"""Benchmark tasks beyond Banking77's 77 intents: binary and few-class tasks built from groups of its
intents, and chABSA (Japanese, binary), so the training defaults are measured on data they were not
tuned on. Each task is a ``(train, test)`` pair of frames with columns ``text`` and ``category``.

Grouped tasks relabel every row of the chosen intents with its group's name and drop the others:
the groups are heterogeneous (many intents each, like a sentiment class), which is where a frozen
probe is already strong and fine-tuning on a few dozen rows can only lose.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.banking77 import FOLDER, read

CHABSA = FOLDER.parent / "chabsa"

PROBLEM = [
    "card_not_working",
    "declined_card_payment",
    "declined_transfer",
    "failed_transfer",
    "top_up_failed",
    "card_swallowed",
    "pin_blocked",
    "contactless_not_working",
    "virtual_card_not_working",
    "declined_cash_withdrawal",
    "transaction_charged_twice",
    "card_payment_not_recognised",
]
REQUEST = [
    "order_physical_card",
    "getting_spare_card",
    "change_pin",
    "edit_personal_details",
    "top_up_limits",
    "exchange_via_app",
    "get_disposable_virtual_card",
    "apple_pay_or_google_pay",
    "country_support",
    "fiat_currency_support",
    "age_limit",
    "terminate_account",
]
GROUPS = {
    # something went wrong vs the customer wants to do something: heterogeneous, sentiment-like
    "problem_vs_request": {"problem": PROBLEM, "request": REQUEST},
    # two intents a reader barely tells apart
    "arrival_vs_estimate": {"card_arrival": ["card_arrival"], "card_delivery_estimate": ["card_delivery_estimate"]},
    # five topics, each several intents
    "topics5": {
        "card": ["card_arrival", "card_linking", "activate_my_card", "card_about_to_expire"],
        "transfer": ["transfer_timing", "pending_transfer", "cancel_transfer", "transfer_into_account"],
        "top_up": ["top_up_limits", "pending_top_up", "automatic_top_up", "verify_top_up"],
        "cash": ["atm_support", "pending_cash_withdrawal", "cash_withdrawal_charge", "wrong_amount_of_cash_received"],
        "identity": [
            "verify_my_identity",
            "why_verify_identity",
            "unable_to_verify_identity",
            "verify_source_of_funds",
        ],
    },
}
TASKS = ["banking77", *GROUPS, "chabsa"]


def grouped(df: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    label_of = {intent: name for name, intents in groups.items() for intent in intents}
    kept = df[df.category.isin(label_of)]
    return kept.assign(category=kept.category.map(label_of)).reset_index(drop=True)


def load(task: str, folder: Path = FOLDER) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)`` of ``task`` (one of :data:`TASKS`), columns ``text`` and ``category``."""
    if task == "chabsa":
        frames = [pd.read_csv(CHABSA / f"{split}.csv", dtype=str, keep_default_na=False) for split in ("train", "test")]
        return tuple(f.rename(columns={"label": "category"}) for f in frames)  # type: ignore[return-value]
    train, test = read("train", folder), read("test", folder)
    if task == "banking77":
        return train, test
    return grouped(train, GROUPS[task]), grouped(test, GROUPS[task])
