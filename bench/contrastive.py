"""Benchmark: a SetFit-style contrastive step done with Tailor's own machinery, against the frozen probe
(today's default on tiny batches) and SetFit itself, on the tiny tasks of bench/tasks.py (issue 25, part 3).

Not a test. Prints a Markdown table and saves JSON to bench/results/contrastive.json.

    .venv/bin/python bench/contrastive.py                       # 3 tasks x 8/16 per class x seeds 0-2
    .venv/bin/python bench/contrastive.py --setfit-seeds 1      # plus SetFit on seed 0, in the same process

The contrastive variant: LoRA on the upper blocks the recipe adapts (``lora_layers``, ``lora_r``,
``lora_targets`` of params.yaml), trained on the cached lower-block states (``encode_frozen``) with a
loss over every pair of rows in a batch: the cosine of two mean-pooled, normalised embeddings is pulled
to 1 for the same label and to 0 for different labels (SetFit's CosineSimilarityLoss), the positive and
the negative pairs weighing half each (label-balanced), or a supervised-contrastive loss (``--loss
supcon``). In-batch pairs are what makes it cheap: a batch of B rows gives B(B-1)/2 pairs for B
forward passes, where SetFit runs both texts of every pair through the whole encoder. Then the
logistic probe head (as bench/train.py's probe: C=10) is refitted on the tuned embeddings; a second
head (``contrastive+frozen``, same training run) sees the frozen and the tuned embeddings side by side.

Sampling is bench/train.py's (``bench.banking77.sample``, test subset 40/class by default), so the
probe and SetFit columns compare with its tables for the same seeds. Results: bench/RESULTS.md,
"2026-12-07 — a SetFit-style contrastive step with our LoRA".
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # other processes share the cores
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402
from bench.banking77 import evaluation_rows, evaluation_rows_named, hold_out_problem, sample  # noqa: E402
from bench.tasks import GROUPS, load  # noqa: E402
from bench.train import load_params_for, run_probe, run_setfit, save  # noqa: E402
from pipelines.metrics import quality_metrics  # noqa: E402
from pipelines.training.cost_meter import CostMeter  # noqa: E402
from registry.errors import ConfigError  # noqa: E402

RESULTS = REPO / "bench" / "results" / "contrastive.json"


def pair_loss(emb, y, loss: str, temperature: float):
    """Loss over every pair of rows in the batch; ``emb`` are normalised embeddings, ``y`` class indices."""
    import torch

    sim = emb @ emb.T
    same = (y[:, None] == y[None, :]).float()
    off = 1 - torch.eye(len(y), device=emb.device)
    if loss == "cos":
        err = (sim - same) ** 2
        pos, neg = same * off, (1 - same) * off
        parts = [(err * m).sum() / m.sum() for m in (pos, neg) if m.sum() > 0]
        return sum(parts) / len(parts)
    # supervised contrastive (Khosla et al., 2020): each row's same-label rows against all others
    logits = (sim / temperature).masked_fill(off == 0, -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = same * off
    has = pos.sum(1) > 0
    if not has.any():  # no two rows of a class in this batch: nothing to pull together
        return (emb * 0).sum()
    return -((log_prob * pos).sum(1)[has] / pos.sum(1)[has]).mean()


def run_contrastive(texts, labels, test_texts, test_labels, test_frozen, base, params, seed, args) -> list[dict]:
    """Rows for the tuned embeddings' head and for a head on the frozen and tuned embeddings side by side."""
    import torch
    from peft import get_peft_model
    from sklearn.linear_model import LogisticRegression

    from pipelines.training.cache import encode_frozen, pad_batch
    from pipelines.training.objective import batch_order, lr_lambda
    from pipelines.training.recipe import lora_config, seed_everything
    from serving.encoder_family import family_of, upper_blocks
    from serving.model import MeanPoolClassifier

    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    generator = seed_everything(seed)
    with CostMeter(base.device) as meter:
        model = MeanPoolClassifier(base.shared_copy(), len(names)).to(torch.device(base.device))
        family = family_of(model.encoder)
        num_layers = len(model.layers())
        start = num_layers - (params.lora_layers or upper_blocks(num_layers))
        known = {name.rsplit(".", 1)[-1] for name, _ in model.layers()[start].named_modules() if name}
        targets = list(params.lora_targets or [t for t in family.lora_targets if t in known])
        data = encode_frozen(model, base, texts, start, params.max_length, np.ones(len(texts), dtype=bool))
        peft_model = get_peft_model(
            model, lora_config(params, targets, range(start, num_layers), family.layers_pattern)
        )
        inner = peft_model.base_model.model
        lora = [p for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" in n]
        batch = min(args.batch, len(texts))
        # the pair budget: each row meets about pairs_per_row others, batch - 1 per pass it is in
        steps = max(1, math.ceil(len(texts) * args.pairs_per_row / (batch - 1) / batch))
        optimiser = torch.optim.AdamW(lora, lr=args.lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_lambda(steps, params.warmup_fraction))
        target = torch.from_numpy(y)

        def embed(rows) -> torch.Tensor:
            hidden, mask = pad_batch([data.hidden[r] for r in rows])
            return inner.embed_from(hidden, mask, start)

        peft_model.train()
        losses = []
        for idx in batch_order(len(texts), steps, batch, generator):
            optimiser.zero_grad(set_to_none=True)
            loss = pair_loss(embed(idx), target[idx], args.loss, args.temperature)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        peft_model.eval()
        with torch.inference_mode():
            train_emb = torch.cat([embed(list(range(b, min(b + 64, len(texts))))) for b in range(0, len(texts), 64)])
        clf = LogisticRegression(C=10.0, max_iter=1000).fit(train_emb.numpy(), y)
    # a hedge that costs one more logistic regression: the head sees the frozen features beside the tuned ones
    both = LogisticRegression(C=10.0, max_iter=1000).fit(np.hstack([data.embeddings, train_emb.numpy()]), y)
    with torch.inference_mode():
        test_emb = torch.cat(
            [
                inner.embed(**base.tokenize(test_texts[b : b + 64], params.max_length))
                for b in range(0, len(test_texts), 64)
            ]
        )
    trained = {
        "wall_s": meter.usage.wall_seconds,
        "steps": steps,
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }
    heads = {
        "contrastive": clf.predict(test_emb.numpy()),
        "contrastive+frozen": both.predict(np.hstack([test_frozen, test_emb.numpy()])),
    }
    return [
        {
            "method": method,
            "macro_f1": quality_metrics(test_labels, [names[i] for i in pred], names).macro_f1,
            **trained,
        }
        for method, pred in heads.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", choices=list(GROUPS), default=list(GROUPS))
    ap.add_argument("--sizes", type=arguments.at_least(2), nargs="*", default=[8, 16])
    ap.add_argument("--seeds", type=arguments.at_least(1), default=3)
    ap.add_argument("--test-per-class", type=arguments.at_least(1), default=40)
    ap.add_argument(
        "--extra-test-per-class",
        type=arguments.at_least(1),
        default=None,
        help="also test on this many rows per class held out of the train split, as bench/train.py does",
    )
    ap.add_argument("--first-seed", type=arguments.at_least(0), default=0, help="seeds run from here")
    # 20 (SetFit's num_iterations) moves nothing here: in-batch pairs make it 2-3 steps (bench/RESULTS.md)
    ap.add_argument("--pairs-per-row", type=arguments.positive, default=100, help="pairs each row takes part in")
    ap.add_argument("--batch", type=arguments.at_least(2), default=16, help="rows per step (all their pairs count)")
    ap.add_argument("--lr", type=arguments.positive, default=1e-3, help="LoRA learning rate of the contrastive step")
    ap.add_argument("--loss", choices=["cos", "supcon"], default="cos")
    ap.add_argument("--temperature", type=arguments.positive, default=0.1, help="supcon only")
    ap.add_argument(
        "--setfit-seeds",
        type=arguments.at_least(0),
        default=0,
        help="seeds SetFit runs on, from --first-seed (slow; 0 = none)",
    )
    ap.add_argument(
        "--setfit-max-rows", type=arguments.at_least(1), default=40, help="SetFit only on samples up to this many rows"
    )
    ap.add_argument("--threads", type=arguments.at_least(1), default=1)
    ap.add_argument(
        "--set",
        type=arguments.key_value,
        nargs="*",
        default=[],
        help="override train params, KEY=VALUE (YAML values), e.g. lora_layers=6 lora_r=16",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    try:
        params = load_params_for(args)
    except ConfigError as err:
        ap.error(f"--set: {err}")
    if args.extra_test_per_class:
        for task in args.tasks:
            problem = hold_out_problem(load(task)[0], args.extra_test_per_class, max(args.sizes, default=0))
            if problem:
                ap.error(f"argument --extra-test-per-class: {task}: {problem}")

    import torch
    from threadpoolctl import threadpool_limits

    from pipelines.settings import load_settings
    from serving.embeddings import embed
    from serving.model import load_base

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    settings = load_settings()
    base = load_base(settings.base_model_dir, device="cpu", model_id=settings.base_model_id, cache_dir=settings.home)
    started = time.perf_counter()
    rows: list[dict] = []
    for task in args.tasks:
        train_df, test_df = evaluation_rows(*load(task), args.test_per_class, args.extra_test_per_class)
        test_texts, test_labels = test_df.text.tolist(), test_df.category.tolist()
        test_emb = embed(test_texts, settings.base_model_dir)
        for per_class in args.sizes:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                df = sample(train_df, per_class, seed)
                texts, labels = df.text.tolist(), df.category.tolist()
                common = {"task": task, "per_class": per_class, "seed": seed}
                results = [
                    {"method": "probe", **run_probe(df, labels, test_emb, test_labels, settings.base_model_dir)},
                    *run_contrastive(texts, labels, test_texts, test_labels, test_emb, base, params, seed, args),
                ]
                if seed - args.first_seed < args.setfit_seeds and len(texts) <= args.setfit_max_rows:
                    setfit = run_setfit(texts, labels, test_texts, test_labels, settings.base_model_dir, seed)
                    results.append({"method": "setfit", **setfit})
                for result in results:
                    rows.append({**common, **result})
                    print(json.dumps(rows[-1]), flush=True)
    report(rows, args, time.perf_counter() - started)


def report(rows: list[dict], args, total: float) -> None:
    def pick(**kw):
        return [r for r in rows if all(r[k] == v for k, v in kw.items())]

    variants = ["contrastive", "contrastive+frozen"]
    lines = [
        f"contrastive: loss {args.loss}, {args.pairs_per_row} pairs per row, batch {args.batch}, lr {args.lr}"
        f"{', ' + ' '.join(args.set) if args.set else ''}; "
        f"{evaluation_rows_named(args.test_per_class, args.extra_test_per_class)}; total {total / 60:.1f} min",
        "",
        "| task | per class | seeds | probe | contrastive (− probe) | contrastive+frozen (− probe) | SetFit (seeds run) "
        "| probe wall s | contrastive wall s | contrastive / SetFit wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    for task in args.tasks:
        for per_class in args.sizes:
            cell = {m: pick(task=task, per_class=per_class, method=m) for m in ["probe", "setfit", *variants]}
            probe, setfit = cell["probe"], cell["setfit"]
            wall = {r["seed"]: r["wall_s"] for r in cell["contrastive"]}
            ratio = [wall[s["seed"]] / s["wall_s"] for s in setfit]
            entry = {
                "task": task,
                "per_class": per_class,
                "seeds": len(probe),
                "probe": statistics.mean(r["macro_f1"] for r in probe),
                "setfit": statistics.mean(r["macro_f1"] for r in setfit) if setfit else None,
                "probe_wall": statistics.mean(r["wall_s"] for r in probe),
                "contrastive_wall": statistics.mean(wall.values()),
                "setfit_wall_ratio": statistics.mean(ratio) if ratio else None,
            }
            for m in variants:
                entry[m] = statistics.mean(r["macro_f1"] for r in cell[m])
                entry[f"{m} gain"] = entry[m] - entry["probe"]  # every method runs on every seed
            summary.append(entry)
            setfit_cell = f"{entry['setfit']:.3f} ({len(setfit)})" if setfit else "–"
            ratio_cell = f"{entry['setfit_wall_ratio']:.2f}" if ratio else "–"
            shown = " | ".join(f"{entry[m]:.3f} ({entry[f'{m} gain']:+.3f})" for m in variants)
            lines.append(
                f"| {task} | {per_class} | {entry['seeds']} | {entry['probe']:.3f} | {shown} | {setfit_cell} | "
                f"{entry['probe_wall']:.1f} | {entry['contrastive_wall']:.1f} | {ratio_cell} |"
            )
    lines.append("")
    for m in variants:
        gains = [e[f"{m} gain"] for e in summary]
        lines.append(f"{m}: mean gain over the probe {statistics.mean(gains):+.3f}, worst cell {min(gains):+.3f}")
    table = "\n".join(lines)
    print("\n" + table)
    save(args.out, args, {"total_s": total, "summary": summary, "rows": rows, "table": table})
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
