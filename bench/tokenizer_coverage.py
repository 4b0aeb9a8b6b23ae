"""How well base tokenizers cover English and Japanese batches: the numbers behind the policy's
``data.max_unknown_token_share`` and ``data.min_chars_per_token``.

    python -m bench.tokenizer_coverage [--base-model DIR ...] [--out bench/results/tokenizer_coverage.json]

Measures each base model (default: the configured one) on the English and Japanese samples and on
chABSA (real Japanese sentences from annual securities reports, read in place). Prints a table and
saves JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCHES = {
    "sample (English)": REPO / "data" / "sample" / "train.csv",
    "sample_ja (Japanese)": REPO / "data" / "sample_ja" / "train.csv",
    "chABSA train (Japanese)": Path("/work/shared/datasets/chabsa/train.csv"),
}


def main() -> None:
    from pipelines.batches.read import read_batch
    from pipelines.batches.tokenizer_coverage import measure_folder
    from pipelines.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", type=Path, action="append", help="base model folder (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "tokenizer_coverage.json")
    args = parser.parse_args()
    rows = []
    for model in args.base_model or [load_settings().base_model_dir]:
        for name, path in BATCHES.items():
            if not path.is_file():
                print(f"skipped {name}: {path} is missing")
                continue
            coverage = measure_folder(
                read_batch(path, max_bytes=10**9).texts, model, f"{model.parent.name}/{model.name}"
            )
            rows.append({"base_model": str(model), "batch": name, **coverage.model_dump(mode="json")})
            print(
                f"{coverage.base_model:34} {name:26} texts {coverage.texts:5}  unknown {coverage.unknown_token_share:6.1%}  "
                f"chars/token {coverage.chars_per_token:5.2f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
