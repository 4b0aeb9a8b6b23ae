"""Benchmark: default `tailor train` (LoRA) vs a frozen-encoder probe vs full fine-tuning on Banking77,
and on the tasks of bench/tasks.py (binary and few-class groups of its intents, chABSA in Japanese),
with a character n-gram TF-IDF baseline and SetFit (the `bench` extra) beside them.

Not a test. Prints a Markdown table and saves JSON to bench/results/train.json.

    .venv/bin/python bench/train.py            # 8/16/64 per class x 3 seeds (2 at 64), noise 0/20/40 % x 3 seeds
    .venv/bin/python bench/train.py --quick    # a subset for tuning (1 seed, 8/16 per class, noise 0/40 %)
    .venv/bin/python bench/train.py --task problem_vs_request --sizes 8 16 --noise --no-full --lexical --setfit

Method notes:
- Evaluation on a fixed, stratified subset of Banking77's test split (``--test-per-class``,
  default 20 of the ~40 per class) to keep a full run within the time budget on 2 shared cores.
- LoRA = ``pipelines.training.recipe.train`` with the defaults of params.yaml, evaluated through the saved
  adapter folder (``serving.model.load_classifier``, full forward pass), i.e. exactly as served.
- Full fine-tuning gets the same mean-pooled head started from the same logistic-regression probe,
  the same loss, step budget, batch size, schedule, dynamic padding and length-sorted parts
  (``pipelines.training.recipe.backward_in_parts``); every encoder weight trains at ``--full-lr``. Its
  default 2e-4 is the best of an LR sweep at 8/class, seed 0, scored on this same test subset
  (2e-5 0.856, 5e-5 0.860, 1e-4 0.861, 2e-4 0.867, 5e-4 0.860), which if anything favours the baseline.
- Probe = mean-pooled frozen embeddings (``serving.embeddings.embed``) + scikit-learn logistic regression.
- Cost ratios (LoRA / full fine-tuning) come from runs on the same data in the same process.
- Noise: a fraction of the training labels is replaced by a different random class.
- ``--extra-test-per-class``: rows of the train split set aside (fixed seed) and tested on too, never sampled
  for training; a binary task's test split alone has 80 rows, where one row is 0.0125 of macro-F1.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402
from bench.banking77 import FOLDER, evaluation_rows, evaluation_rows_named, flip, hold_out_problem, sample  # noqa: E402
from bench.tasks import TASKS, load  # noqa: E402
from pipelines.metrics import quality_metrics  # noqa: E402
from pipelines.records import LabeledBatch  # noqa: E402
from pipelines.settings import load_settings  # noqa: E402
from pipelines.training.cost_meter import CostMeter  # noqa: E402
from registry.errors import ConfigError  # noqa: E402

RESULTS = REPO / "bench" / "results" / "train.json"


def to_batch(texts: list[str], labels: list[str]) -> LabeledBatch:
    return LabeledBatch(source="banking77", texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])


def run_probe(train_df, labels, test_emb, test_labels, model_dir) -> dict:
    from sklearn.linear_model import LogisticRegression

    from serving.embeddings import embed

    with CostMeter() as meter:
        emb = embed(train_df.text.tolist(), model_dir)
        clf = LogisticRegression(C=10.0, max_iter=1000).fit(emb, labels)
    pred = clf.predict(test_emb).tolist()
    return {
        "macro_f1": quality_metrics(test_labels, pred, sorted(set(labels))).macro_f1,
        "wall_s": meter.usage.wall_seconds,
    }


def run_lexical(texts, labels, test_texts, test_labels) -> dict:
    """The lexical baseline `tailor evaluate` fits (pipelines.evaluation.baselines), timed the same way."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from pipelines.evaluation.baselines import LEXICAL_C as C

    with CostMeter() as meter:
        vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        clf = LogisticRegression(C=C, max_iter=1000, class_weight="balanced", random_state=0)
        clf.fit(vectoriser.fit_transform(texts), labels)
    pred = clf.predict(vectoriser.transform(test_texts)).tolist()
    return {
        "macro_f1": quality_metrics(test_labels, pred, sorted(set(labels))).macro_f1,
        "wall_s": meter.usage.wall_seconds,
    }


def run_setfit(texts, labels, test_texts, test_labels, model_dir, seed, iterations=None) -> dict:
    """SetFit (contrastive pairs, 1 epoch, logistic head) on the same MiniLM folder, offline, with its defaults
    unless ``iterations``: SetFit's ``num_iterations`` (one positive and one negative pair per row per iteration)
    replaces its default of oversampling every pair, which at hundreds of rows over many classes takes hours on
    a CPU core."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    with CostMeter() as meter, tempfile.TemporaryDirectory() as tmp:  # its checkpoints, not in the checkout
        model = SetFitModel.from_pretrained(str(model_dir), local_files_only=True)
        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir=tmp, seed=seed, report_to="none", num_iterations=iterations),
            train_dataset=Dataset.from_dict({"text": texts, "label": labels}),
        )
        trainer.train()
    pred = [str(p) for p in model.predict(test_texts)]
    return {
        "macro_f1": quality_metrics(test_labels, pred, sorted(set(labels))).macro_f1,
        "wall_s": meter.usage.wall_seconds,
        "setfit_iterations": iterations,  # None: SetFit's own oversampling
    }


def run_lora(train_texts, train_labels, test_texts, test_labels, base, params, seed) -> dict:
    from pipelines.training.recipe import train
    from serving.model import load_classifier

    with tempfile.TemporaryDirectory() as tmp:
        result = train(to_batch(train_texts, train_labels), Path(tmp) / "adapter", base=base, params=params, seed=seed)
        clf = load_classifier(Path(tmp) / "adapter", base)
        pred = clf.predict(test_texts, batch_size=64)
    return {
        "macro_f1": quality_metrics(test_labels, pred, clf.labels).macro_f1,
        "wall_s": result.cost.wall_seconds,
        "peak_rss_mb": result.cost.peak_rss_mb,
        "steps": result.params["steps"],
        "dropped": result.dropped_examples,
        "kept": result.selection.kept if result.selection else None,
        "selection": result.selection.model_dump(mode="json") if result.selection else None,
        "downweighted": result.downweighted_examples,
        "trainable": result.cost.trainable_params,
        "adapter_bytes": result.cost.adapter_bytes,
    }


def run_full(train_texts, train_labels, test_texts, test_labels, base, params, seed, lr) -> dict:
    """Full fine-tuning with our head, budget and schedule: every encoder weight trains."""
    import copy

    import torch

    from pipelines.training.objective import (
        backward_in_parts,
        batch_order,
        logreg_head,
        loss_function,
        lr_lambda,
        seed_everything,
    )
    from pipelines.training.recipe import check_batch
    from serving.model import MeanPoolClassifier

    labels = check_batch(to_batch(train_texts, train_labels), params)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for label in train_labels])
    generator = seed_everything(seed)
    with CostMeter(base.device) as meter:
        model = MeanPoolClassifier(copy.deepcopy(base.encoder), len(labels)).to(torch.device(base.device))
        model.requires_grad_(True)
        with torch.inference_mode():
            emb = np.concatenate(
                [
                    model.embed(**base.tokenize(train_texts[i : i + 64], params.max_length)).cpu().numpy()
                    for i in range(0, len(train_texts), 64)
                ]
            )
        logreg_head(model.classifier, emb, y, params.head_C, seed)
        steps = params.steps_for(len(train_texts))
        optimiser = torch.optim.AdamW(
            [
                {"params": model.encoder.parameters(), "lr": lr},
                {"params": model.classifier.parameters(), "lr": params.head_lr},
            ],
            weight_decay=params.weight_decay,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_lambda(steps, params.warmup_fraction))
        target = torch.from_numpy(y).to(base.device)
        loss_fn = loss_function(params)
        lengths = base.token_lengths(train_texts, params.max_length)
        weight = torch.ones(len(train_texts), device=base.device)
        model.train()
        for idx in batch_order(len(train_texts), steps, params.batch_size, generator):
            optimiser.zero_grad(set_to_none=True)
            backward_in_parts(
                idx,
                lengths,
                lambda part: model(**base.tokenize([train_texts[i] for i in part], params.max_length)),
                loss_fn,
                target,
                weight,
            )
            optimiser.step()
            schedule.step()
    model.eval()
    with torch.inference_mode():
        logits = torch.cat(
            [model(**base.tokenize(test_texts[i : i + 64], params.max_length)) for i in range(0, len(test_texts), 64)]
        )
    pred = [labels[i] for i in logits.argmax(1).tolist()]
    return {
        "macro_f1": quality_metrics(test_labels, pred, labels).macro_f1,
        "wall_s": meter.usage.wall_seconds,
        "peak_rss_mb": meter.usage.peak_rss_mb,
        "steps": steps,
    }


def mean_sd(values: list[float], *, signed: bool = False, percent: bool = False) -> str:
    if not values:
        return "–"
    fmt = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:+.3f}" if signed else f"{v:.3f}")
    if len(values) == 1:
        return fmt(values[0])
    sd = statistics.stdev(values)
    return f"{fmt(statistics.mean(values))} ± {f'{sd:.1%}' if percent else f'{sd:.3f}'}"


class Context:
    """What every experiment unit needs, loaded once per worker process."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch
        from threadpoolctl import threadpool_limits

        # Training imports peft, scikit-learn and cleanlab when first called, ~1.5 s inside the first sample's
        # timed run, where SetFit's imports come before its timer. A scheduled retrain trains in a child of a
        # fork server that preloaded them (pipelines.training.preload); the bench preloads them too.
        import pipelines.training.preload  # noqa: F401
        from serving.embeddings import embed
        from serving.model import load_base

        torch.set_num_threads(args.threads)
        # scikit-learn's BLAS and OpenMP pools (cleanlab's cross-validation, the probes) would otherwise take
        # every core in every worker: 3 workers on a 16-core H200 host, LoRA at 16/class took 53 s, not 31 s.
        threadpool_limits(args.threads)
        self.args = args
        self.params = load_params_for(args)
        self.settings = load_settings()
        self.base = load_base(
            self.settings.base_model_dir,
            device=args.device,
            model_id=self.settings.base_model_id,
            cache_dir=self.settings.home,
        )
        self.train_df, test_df = evaluation_rows(
            *load(args.task, args.data), args.test_per_class, args.extra_test_per_class
        )
        self.test_texts, self.test_labels = test_df.text.tolist(), test_df.category.tolist()
        self.test_emb = embed(self.test_texts, self.settings.base_model_dir)


CONTEXT: Context | None = None


def start_worker(args: argparse.Namespace) -> None:
    global CONTEXT
    CONTEXT = Context(args)


def run_unit(unit: tuple) -> list[dict]:
    """One experiment unit, in one process: LoRA and full fine-tuning of the same data run side by
    side here, so their wall-time and memory ratios share the process and its load."""
    ctx, args = CONTEXT, CONTEXT.args
    kind, key, seed = unit
    rows = []
    if kind == "size":
        df = sample(ctx.train_df, key, seed)
        texts, labels = df.text.tolist(), df.category.tolist()
        common = {"experiment": "size", "per_class": key, "seed": seed}
        if not args.no_probe:
            rows.append(
                {
                    **common,
                    "method": "probe",
                    **run_probe(df, labels, ctx.test_emb, ctx.test_labels, ctx.settings.base_model_dir),
                }
            )
        rows.append(
            {
                **common,
                "method": "lora",
                **run_lora(texts, labels, ctx.test_texts, ctx.test_labels, ctx.base, ctx.params, seed),
            }
        )
        if args.lexical:
            rows.append({**common, "method": "lexical", **run_lexical(texts, labels, ctx.test_texts, ctx.test_labels)})
        if args.setfit and seed - args.first_seed < args.setfit_seeds:
            rows.append(
                {
                    **common,
                    "method": "setfit",
                    **run_setfit(
                        texts,
                        labels,
                        ctx.test_texts,
                        ctx.test_labels,
                        ctx.settings.base_model_dir,
                        seed,
                        args.setfit_iterations,
                    ),
                }
            )
        if not args.no_full:
            rows.append(
                {
                    **common,
                    "method": "full",
                    **run_full(
                        texts, labels, ctx.test_texts, ctx.test_labels, ctx.base, ctx.params, seed, args.full_lr
                    ),
                }
            )
        return rows
    df = sample(ctx.train_df, args.noise_per_class, seed)
    noisy, flipped = flip(df.category.tolist(), key, seed)
    common = {
        "experiment": "noise",
        "per_class": args.noise_per_class,
        "noise": key,
        "seed": seed,
        "flipped": len(flipped),
    }
    for mode in unit_modes(args, ctx.params, key, seed):
        p = ctx.params.model_copy(update={"noise_filter": mode})
        rows.append(
            {
                **common,
                "method": f"lora/{mode}",
                **run_lora(df.text.tolist(), noisy, ctx.test_texts, ctx.test_labels, ctx.base, p, seed),
            }
        )
    return rows


def reuses_size_run(args: argparse.Namespace, params, rate: float, seed: int) -> bool:
    """Training is deterministic: with the default filter (auto) on clean 16/class data, the noise
    run of a seed IS its size run, and so is ``none`` whenever that run's filter flagged nothing
    (the three 0 % ``none`` runs of 2026-11-28 equalled their size runs to the last digit, at ~2 min each)."""
    return (
        rate == 0.0
        and args.noise_per_class in args.sizes
        and seed < args.first_seed + args.seeds
        and params.noise_filter == "auto"
    )


def unit_modes(args: argparse.Namespace, params, rate: float, seed: int) -> list[str]:
    return [] if reuses_size_run(args, params, rate, seed) else list(args.noise_modes)


def reuse_clean_runs(rows: list[dict], args: argparse.Namespace, params) -> list[dict]:
    """The 0 % noise rows that ``unit_modes`` skipped, copied from the size-16 runs: ``none`` only
    where ``auto`` flagged no row (then both trained alike); otherwise its cell stays empty."""
    extra = []
    for r in rows:
        if (
            r["experiment"] == "size"
            and r["per_class"] == args.noise_per_class
            and r["method"] == "lora"
            and 0.0 in args.noise
            and r["seed"] < args.first_seed + args.noise_seeds
            and reuses_size_run(args, params, 0.0, r["seed"])
        ):
            modes = [m for m in args.noise_modes if m == "auto" or r["dropped"] + r["downweighted"] == 0]
            extra += [
                {**r, "experiment": "noise", "noise": 0.0, "flipped": 0, "method": f"lora/{m}", "reused": True}
                for m in modes
            ]
    return rows + extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, 8/16 per class, noise 0/40 %%")
    ap.add_argument("--sizes", type=arguments.at_least(2), nargs="*", default=None)
    ap.add_argument("--seeds", type=arguments.at_least(1), default=None, help="seeds per size (default 3, quick 1)")
    ap.add_argument(
        "--first-seed",
        type=arguments.at_least(0),
        default=0,
        help="seeds run from here: samples no earlier run (whose defaults were chosen on seeds 0-2) has seen",
    )
    ap.add_argument(
        "--seeds-64", type=arguments.at_least(1), default=None, help="seeds at 64 per class (default 2: time budget)"
    )
    ap.add_argument("--noise", type=arguments.fraction, nargs="*", default=None)
    ap.add_argument(
        "--noise-per-class", type=arguments.at_least(2), default=16, help="sample size of the noise experiment"
    )
    ap.add_argument(
        "--noise-seeds", type=arguments.at_least(1), default=None, help="seeds per noise rate (default 3, quick 1)"
    )
    ap.add_argument(
        "--noise-modes",
        nargs="*",
        default=["none", "auto"],
        choices=["none", "auto"],
        help="noise_filter settings compared in the noise experiment (default both)",
    )
    ap.add_argument("--task", choices=TASKS, default="banking77", help="data set (bench/tasks.py)")
    ap.add_argument("--lexical", action="store_true", help="add the character n-gram TF-IDF baseline")
    ap.add_argument("--setfit", action="store_true", help="add SetFit (pip install the bench extra)")
    ap.add_argument("--setfit-seeds", type=arguments.at_least(1), default=1, help="seeds SetFit runs (slow)")
    ap.add_argument(
        "--setfit-iterations",
        type=arguments.at_least(1),
        default=None,
        help="SetFit's num_iterations (2 pairs per row each; the SetFit paper's 20): default its own oversampling of all pairs",
    )
    ap.add_argument("--test-per-class", type=arguments.at_least(1), default=20)
    ap.add_argument(
        "--extra-test-per-class",
        type=arguments.at_least(1),
        default=None,
        help="also test on this many rows per class held out of the train split (never sampled for training): "
        "a binary task's test split has 40/class, where one row moves macro-F1 by ~0.0125",
    )
    ap.add_argument(
        "--data", type=arguments.banking77_folder, default=FOLDER, help="Banking77 folder (train.csv, test.csv)"
    )
    ap.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="where LoRA and full fine-tuning train (the probe always runs on CPU); cost ratios are for CPU",
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument(
        "--full-lr",
        type=arguments.positive,
        default=2e-4,
        help="encoder LR of full fine-tuning: the best of 2e-5/5e-5/1e-4/2e-4/5e-4 at 8/class, seed 0",
    )
    ap.add_argument("--no-full", action="store_true", help="skip full fine-tuning (tuning runs)")
    ap.add_argument("--no-probe", action="store_true", help="skip the frozen-encoder probe (tuning runs)")
    ap.add_argument(
        "--jobs", type=arguments.at_least(1), default=2, help="worker processes, one experiment unit each at a time"
    )
    ap.add_argument("--threads", type=arguments.at_least(1), default=1, help="torch threads per worker")
    ap.add_argument(
        "--set", type=arguments.key_value, nargs="*", default=[], help="override train params, KEY=VALUE (YAML values)"
    )
    args = ap.parse_args()
    args.sizes = args.sizes if args.sizes is not None else ([8, 16] if args.quick else [8, 16, 64])
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.seeds_64 = args.seeds_64 or min(args.seeds, 2)
    args.noise = args.noise if args.noise is not None else ([0.0, 0.4] if args.quick else [0.0, 0.2, 0.4])
    args.noise_seeds = args.noise_seeds or (1 if args.quick else 3)
    try:
        params = load_params_for(args)
    except ConfigError as err:
        ap.error(f"--set: {err}")
    if args.extra_test_per_class:
        largest = max([*args.sizes, *([args.noise_per_class] if args.noise else [])], default=0)
        problem = hold_out_problem(load(args.task, args.data)[0], args.extra_test_per_class, largest)
        if problem:
            ap.error(f"argument --extra-test-per-class: {problem}")
    first = args.first_seed
    units = [
        ("size", n, seed)
        for n in args.sizes
        for seed in range(first, first + (args.seeds_64 if n >= 64 else args.seeds))
    ]
    units += [
        ("noise", rate, seed)
        for rate in args.noise
        for seed in range(first, first + args.noise_seeds)
        if unit_modes(args, params, rate, seed)
    ]
    units.sort(key=lambda u: (u[0] != "size", -u[1]))  # the longest first, so the workers finish together
    started = time.perf_counter()
    rows: list[dict] = []
    if args.jobs == 1:
        start_worker(args)
        collect(map(run_unit, units), rows)
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs, initializer=start_worker, initargs=(args,)) as pool:
            collect(pool.imap_unordered(run_unit, units), rows)
    total = time.perf_counter() - started
    report(reuse_clean_runs(rows, args, params), params, args, total, args.out)


def collect(results, rows: list[dict]) -> None:
    for unit_rows in results:
        for row in unit_rows:
            rows.append(row)
            print(json.dumps(row), flush=True)


def load_params_for(args: argparse.Namespace):
    import yaml

    from pipelines.training.params import load_params

    return load_params(
        REPO / "params.yaml", **{k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    )


def mean_of(rows: list[dict], key: str = "macro_f1") -> float | None:
    return statistics.mean(r[key] for r in rows) if rows else None


def report(rows: list[dict], params, args, total: float, out: Path) -> None:
    def pick(**kw):
        return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]

    def paired(a: list[dict], b: list[dict], fn) -> list[float]:
        by_seed = {r["seed"]: r for r in b}
        return [fn(r, by_seed[r["seed"]]) for r in a if r["seed"] in by_seed]

    classes = len(set(load(args.task, args.data)[0].category))
    lines = [
        f"{args.task}, {classes} classes, {evaluation_rows_named(args.test_per_class, args.extra_test_per_class)}; "
        f"macro-F1 mean ± sd over seeds; total {total / 60:.1f} min",
        "",
        "| per class | seeds | probe | lexical | SetFit | full FT | LoRA (default) | kept LoRA / probe / contrastive "
        "| LoRA − full "
        "| LoRA − probe | LoRA − SetFit | LoRA wall / full wall | LoRA wall / SetFit wall | LoRA peak RSS / full |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict = {"size": {}, "noise": {}}
    for per_class in sorted({r["per_class"] for r in pick(experiment="size")}):
        probe, lora, full, lexical, setfit = (
            pick(experiment="size", per_class=per_class, method=m)
            for m in ("probe", "lora", "full", "lexical", "setfit")
        )
        walls = paired(lora, full, lambda a, b: a["wall_s"] / b["wall_s"])
        setfit_walls = paired(lora, setfit, lambda a, b: a["wall_s"] / b["wall_s"])
        rss = paired(lora, full, lambda a, b: a["peak_rss_mb"] / b["peak_rss_mb"])
        vs_full = paired(lora, full, lambda a, b: a["macro_f1"] - b["macro_f1"])
        vs_probe = paired(lora, probe, lambda a, b: a["macro_f1"] - b["macro_f1"])
        vs_setfit = paired(lora, setfit, lambda a, b: a["macro_f1"] - b["macro_f1"])
        kept_counts = {
            recipe: sum(r.get("kept") == recipe for r in lora) for recipe in ("lora", "probe", "contrastive")
        }
        lines.append(
            f"| {per_class} | {len(lora)} | {mean_sd([r['macro_f1'] for r in probe])} | "
            f"{mean_sd([r['macro_f1'] for r in lexical])} | {mean_sd([r['macro_f1'] for r in setfit])} | "
            f"{mean_sd([r['macro_f1'] for r in full])} | {mean_sd([r['macro_f1'] for r in lora])} | "
            f"{' / '.join(str(n) for n in kept_counts.values())} | {mean_sd(vs_full, signed=True)} | "
            f"{mean_sd(vs_probe, signed=True)} | "
            f"{mean_sd(vs_setfit, signed=True)} | {mean_sd(walls)} | {mean_sd(setfit_walls)} | {mean_sd(rss)} |"
        )
        summary["size"][per_class] = {
            "seeds": len(lora),
            "probe": mean_of(probe),
            "full": mean_of(full),
            "lora": mean_of(lora),
            "lexical": mean_of(lexical),
            "setfit": mean_of(setfit),
            "kept": kept_counts,
            "lora_minus_full": statistics.mean(vs_full) if vs_full else None,
            "lora_minus_probe": statistics.mean(vs_probe) if vs_probe else None,
            "lora_minus_setfit": statistics.mean(vs_setfit) if vs_setfit else None,
            "wall_ratio": statistics.mean(walls) if walls else None,
            "setfit_wall_ratio": statistics.mean(setfit_walls) if setfit_walls else None,
            "rss_ratio": statistics.mean(rss) if rss else None,
        }
    lines += [
        "",
        f"| labels flipped ({args.noise_per_class}/class) | seeds | LoRA, noise_filter none | LoRA default (auto) | default, share of its clean F1 "
        "| rows auto dropped / down-weighted |",
        "|---|---|---|---|---|---|",
    ]
    noise = pick(experiment="noise")
    clean = {r["seed"]: r for r in pick(experiment="noise", noise=0.0, method="lora/auto")}
    for rate in sorted({r["noise"] for r in noise}):
        plain, auto = (
            pick(experiment="noise", noise=rate, method="lora/none"),
            pick(experiment="noise", noise=rate, method="lora/auto"),
        )
        kept = [r["macro_f1"] / clean[r["seed"]]["macro_f1"] for r in auto if r["seed"] in clean]
        lines.append(
            f"| {rate:.0%} | {len(auto) or len(plain)} | {mean_sd([r['macro_f1'] for r in plain])} | "
            f"{mean_sd([r['macro_f1'] for r in auto])} | {mean_sd(kept, percent=True)} | "
            f"{mean_of(auto, 'dropped') or 0:.0f} / {mean_of(auto, 'downweighted') or 0:.0f} |"
        )
        summary["noise"][rate] = {
            "none": mean_of(plain),
            "auto": mean_of(auto),
            "auto_kept_of_clean": statistics.mean(kept) if kept else None,
        }
    table = "\n".join(lines)
    print("\n" + table)
    save(
        out,
        args,
        {"params": params.model_dump(mode="json"), "total_s": total, "summary": summary, "rows": rows, "table": table},
    )
    print(f"\nsaved {out}")


def save(out: Path, args: argparse.Namespace, payload: dict) -> None:
    """The run's JSON: its arguments, then ``payload``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    out.write_text(json.dumps({"args": run_args, **payload}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
