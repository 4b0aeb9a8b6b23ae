"""Chart labels are cut to what the label column shows: by display width, so a Japanese class name is
not pushed past the chart's edge, and never between a kana and its voicing mark."""

from __future__ import annotations

import re
import unicodedata

from pipelines.console.charts import bar_chart, confusion_matrix


def _labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]*)</text>', svg)


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text if not unicodedata.combining(ch))


def test_a_long_japanese_label_is_cut_by_width_and_a_latin_one_of_as_many_characters_is_kept():
    japanese = "クレジットカードの紛失と再発行の手続きに関する問い合わせ"  # 28 characters, 56 columns
    latin = "card_lost_or_stolen_reissue"  # 27 characters, 27 columns

    [cut, kept, _axis] = _labels(bar_chart([(japanese, 0.5), (latin, 0.7)], title="F1"))

    assert cut.endswith("…") and japanese.startswith(cut[:-1])
    assert _columns(cut) <= 28 and len(cut) < 16  # 13 kana and an ellipsis fit where 32 did not
    assert kept == latin


def test_a_cut_never_separates_a_kana_from_its_voicing_mark_and_labels_stay_escaped():
    decomposed = unicodedata.normalize(
        "NFD", "ガスガスガスガスガスガスガスガス代"
    )  # カ + U+3099, as macOS writes names

    [cut, *_] = _labels(confusion_matrix([decomposed, "<b>"], [[1, 0], [0, 1]], title="confusion"))

    assert cut.endswith("…") and unicodedata.combining(cut[-2])  # the mark stays with its kana
    assert unicodedata.normalize("NFC", decomposed).startswith(unicodedata.normalize("NFC", cut[:-1]))  # no ガ → カ
    assert "&lt;b&gt;" in confusion_matrix(["<b>"], [[1]], title="c")
