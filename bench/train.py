"""Benchmark: default `tailor train` (LoRA) vs a frozen-encoder probe vs full fine-tuning on Banking77.

Not a test. Prints a Markdown table and saves JSON to bench/results/train.json.

    .venv/bin/python bench/train.py            # 8/16/64 per class x seeds, noise 0/20/40 % at 16/class
    .venv/bin/python bench/train.py --quick    # a subset for tuning (1 seed, 8/16 per class, noise 0/40 %)

Method notes (also printed with the table):
- Evaluation on a fixed, stratified subset of Banking77's test split (``--test-per-class``,
  default 20 of the ~40 per class) to keep a full run within the time budget on 2 shared cores.
- LoRA = ``pipelines.train.train`` with the defaults of params.yaml, evaluated through the saved
  adapter folder (``pipelines.model.load_classifier``, full forward pass), i.e. exactly as served.
- Full fine-tuning gets the same mean-pooled cosine head initialised from class means, the same
  step budget, batch size, schedule and dynamic padding; encoder LR ``--full-lr`` (5e-5, the usual
  BERT fine-tuning LR; higher LRs wreck the pretrained sentence geometry on a few hundred steps).
- Probe = mean-pooled frozen embeddings (``pipelines.encoder.embed``) + scikit-learn logistic regression.
- Cost ratios (LoRA / full fine-tuning) come from runs on the same data in the same process.
- Noise: a fraction of the training labels is replaced by a different random class.
"""

from __future__ import annotations

import os

# Other processes share these two cores: spinning OpenMP workers waste them (measured ~3x slower).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.config import load_settings  # noqa: E402
from pipelines.cost_meter import CostMeter  # noqa: E402
from pipelines.metrics import quality_metrics  # noqa: E402
from pipelines.records import LabeledBatch  # noqa: E402

DATA = Path("/work/shared/datasets/banking77")
RESULTS = REPO / "bench" / "results" / "train.json"


def sample(df: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    return df.groupby("category", group_keys=False).sample(per_class, random_state=seed).reset_index(drop=True)


def flip(labels: list[str], rate: float, seed: int) -> tuple[list[str], int]:
    """Replace ``rate`` of the labels by a different, uniformly chosen class."""
    rng = np.random.default_rng(seed + 1000)
    classes = sorted(set(labels))
    out = list(labels)
    chosen = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    for i in chosen:
        out[i] = rng.choice([c for c in classes if c != labels[i]])
    return out, len(chosen)


def to_batch(texts: list[str], labels: list[str]) -> LabeledBatch:
    return LabeledBatch(source="banking77", texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])


def run_probe(train_df, labels, test_emb, test_labels, model_dir) -> dict:
    from sklearn.linear_model import LogisticRegression

    from pipelines.encoder import embed

    with CostMeter() as meter:
        emb = embed(train_df.text.tolist(), model_dir)
        clf = LogisticRegression(C=10.0, max_iter=1000).fit(emb, labels)
    pred = clf.predict(test_emb).tolist()
    return {"macro_f1": quality_metrics(test_labels, pred, sorted(set(labels))).macro_f1,
            "wall_s": meter.usage.wall_seconds}  # fmt: skip


def run_lora(train_texts, train_labels, test_texts, test_labels, base, params, seed) -> dict:
    from pipelines.model import load_classifier
    from pipelines.train import train

    with tempfile.TemporaryDirectory() as tmp:
        result = train(to_batch(train_texts, train_labels), Path(tmp) / "adapter", base=base, params=params, seed=seed)
        clf = load_classifier(Path(tmp) / "adapter", base)
        pred = clf.predict(test_texts, batch_size=64)
    return {"macro_f1": quality_metrics(test_labels, pred, clf.labels).macro_f1, "wall_s": result.cost.wall_seconds,
            "peak_rss_mb": result.cost.peak_rss_mb, "steps": result.params["steps"], "dropped": result.dropped_examples,
            "trainable": result.cost.trainable_params, "adapter_bytes": result.cost.adapter_bytes}  # fmt: skip


def run_full(train_texts, train_labels, test_texts, test_labels, base, params, seed, lr) -> dict:
    """Full fine-tuning with our head, budget and schedule: every encoder weight trains."""
    import copy

    import torch

    from pipelines.model import MeanPoolClassifier
    from pipelines.train import batch_order, check_batch, class_mean_head, lr_lambda, seed_everything

    labels = check_batch(to_batch(train_texts, train_labels), params)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for label in train_labels])
    generator = seed_everything(seed)
    with CostMeter() as meter:
        model = MeanPoolClassifier(copy.deepcopy(base.encoder), len(labels))
        model.requires_grad_(True)
        with torch.inference_mode():
            emb = np.concatenate([model.embed(**base.tokenize(train_texts[i:i + 64], params.max_length)).numpy()
                                  for i in range(0, len(train_texts), 64)])  # fmt: skip
        class_mean_head(model.classifier, emb, y, params.head_scale)
        steps = params.steps_for(len(train_texts))
        optimiser = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": lr},
                                       {"params": model.classifier.parameters(), "lr": params.head_lr}],
                                      weight_decay=params.weight_decay)  # fmt: skip
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_lambda(steps, params.warmup_fraction))
        target = torch.from_numpy(y)
        model.train()
        for idx in batch_order(len(train_texts), steps, params.batch_size, generator):
            enc = base.tokenize([train_texts[i] for i in idx], params.max_length)
            loss = torch.nn.functional.cross_entropy(model(**enc), target[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(**base.tokenize(test_texts[i:i + 64], params.max_length))
                            for i in range(0, len(test_texts), 64)])  # fmt: skip
    pred = [labels[i] for i in logits.argmax(1).tolist()]
    return {"macro_f1": quality_metrics(test_labels, pred, labels).macro_f1, "wall_s": meter.usage.wall_seconds,
            "peak_rss_mb": meter.usage.peak_rss_mb, "steps": steps}  # fmt: skip


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, 8/16 per class, noise 0/40 %%")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--seeds", type=int, default=None, help="seeds per size (default 3, quick 1)")
    ap.add_argument("--seeds-64", type=int, default=None, help="seeds at 64 per class (default 2: time budget)")
    ap.add_argument("--noise", type=float, nargs="*", default=None)
    ap.add_argument("--noise-seeds", type=int, default=None)
    ap.add_argument("--test-per-class", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument("--full-lr", type=float, default=5e-5)
    ap.add_argument("--no-full", action="store_true", help="skip full fine-tuning (tuning runs)")
    ap.add_argument("--no-probe", action="store_true", help="skip the frozen-encoder probe (tuning runs)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 is faster on a crowded machine)")
    ap.add_argument("--set", nargs="*", default=[], help="override train params, KEY=VALUE (YAML values)")
    args = ap.parse_args()
    import torch
    import yaml

    from pipelines.encoder import embed
    from pipelines.model import load_base
    from pipelines.train_params import load_params

    sizes = args.sizes if args.sizes is not None else ([8, 16] if args.quick else [8, 16, 64])
    seeds = args.seeds or (1 if args.quick else 3)
    seeds_64 = args.seeds_64 or min(seeds, 2)
    noise_rates = args.noise if args.noise is not None else ([0.0, 0.4] if args.quick else [0.0, 0.2, 0.4])
    noise_seeds = args.noise_seeds or (1 if args.quick else 2)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    params = load_params(REPO / "params.yaml", **overrides)
    torch.set_num_threads(args.threads)

    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=settings.home)
    train_df = pd.read_csv(DATA / "train.csv")
    test_df = sample(pd.read_csv(DATA / "test.csv"), args.test_per_class, seed=0)
    test_texts, test_labels = test_df.text.tolist(), test_df.category.tolist()
    test_emb = embed(test_texts, settings.base_model_dir)
    started = time.perf_counter()
    rows: list[dict] = []

    def log(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    for per_class in sizes:
        for seed in range(seeds_64 if per_class >= 64 else seeds):
            df = sample(train_df, per_class, seed)
            texts, labels = df.text.tolist(), df.category.tolist()
            common = {"experiment": "size", "per_class": per_class, "seed": seed}
            if not args.no_probe:
                log({**common, "method": "probe", **run_probe(df, labels, test_emb, test_labels, settings.base_model_dir)})
            log({**common, "method": "lora", **run_lora(texts, labels, test_texts, test_labels, base, params, seed)})
            if not args.no_full:
                log({**common, "method": "full", **run_full(texts, labels, test_texts, test_labels, base, params, seed,
                                                            args.full_lr)})  # fmt: skip
    for rate in noise_rates:
        for seed in range(noise_seeds):
            df = sample(train_df, 16, seed)
            noisy, flipped = flip(df.category.tolist(), rate, seed)
            common = {"experiment": "noise", "per_class": 16, "noise": rate, "seed": seed, "flipped": flipped}
            for mode in ("none", "auto"):
                p = params.model_copy(update={"noise_filter": mode})
                log({**common, "method": f"lora/{mode}", **run_lora(df.text.tolist(), noisy, test_texts, test_labels,
                                                                    base, p, seed)})  # fmt: skip
    total = time.perf_counter() - started
    report(rows, params, args, total, args.out)


def report(rows: list[dict], params, args, total: float, out: Path) -> None:
    def pick(**kw):
        return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]

    lines = [f"Banking77, 77 classes, test subset {args.test_per_class}/class; macro-F1 mean ± sd over seeds; "
             f"total {total / 60:.1f} min", "",
             "| per class | seeds | probe | full FT | LoRA (default) | LoRA wall / full wall | LoRA peak RSS / full |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    summary: dict = {"size": {}, "noise": {}}
    for per_class in sorted({r["per_class"] for r in pick(experiment="size")}):
        probe, lora, full = (pick(experiment="size", per_class=per_class, method=m) for m in ("probe", "lora", "full"))
        walls = [lr["wall_s"] / fr["wall_s"] for lr, fr in zip(lora, full)]
        rss = [lr["peak_rss_mb"] / fr["peak_rss_mb"] for lr, fr in zip(lora, full)]
        lines.append(f"| {per_class} | {len(lora)} | {mean_sd([r['macro_f1'] for r in probe])} | "
                     f"{mean_sd([r['macro_f1'] for r in full])} | {mean_sd([r['macro_f1'] for r in lora])} | "
                     f"{mean_sd(walls)} | {mean_sd(rss)} |")  # fmt: skip
        summary["size"][per_class] = {m: statistics.mean([r["macro_f1"] for r in rs]) if rs else None
                                      for m, rs in (("probe", probe), ("full", full), ("lora", lora))}  # fmt: skip
        summary["size"][per_class]["wall_ratio"] = statistics.mean(walls) if walls else None
        summary["size"][per_class]["rss_ratio"] = statistics.mean(rss) if rss else None
    lines += ["", "| noise (16/class) | seeds | LoRA, no filter | LoRA default (noise_filter auto) | rows dropped by auto |",
              "|---|---|---|---|---|"]
    for rate in sorted({r["noise"] for r in pick(experiment="noise")}):
        plain, auto = pick(experiment="noise", noise=rate, method="lora/none"), pick(experiment="noise", noise=rate, method="lora/auto")
        lines.append(f"| {rate:.0%} | {len(plain)} | {mean_sd([r['macro_f1'] for r in plain])} | "
                     f"{mean_sd([r['macro_f1'] for r in auto])} | {statistics.mean([r['dropped'] for r in auto]):.0f} |")
        summary["noise"][rate] = {m: statistics.mean([r["macro_f1"] for r in rs]) for m, rs in (("none", plain), ("auto", auto))}
    clean0 = summary["noise"].get(0.0, {})
    for rate, vals in summary["noise"].items():
        for mode in ("none", "auto"):
            if clean0.get(mode):
                vals[f"{mode}_kept_of_clean"] = vals[mode] / clean0[mode]
    table = "\n".join(lines)
    print("\n" + table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"params": params.model_dump(mode="json"), "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "total_s": total,
                                   "summary": summary, "rows": rows, "table": table}, indent=2))  # fmt: skip
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
