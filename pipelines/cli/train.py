"""`tailor train`: fit a LoRA adapter to a labeled batch and write the adapter folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import typer

from pipelines.cli.choices import Device
from pipelines.cli.file_option import ENCODING
from pipelines.cli.output import emit
from pipelines.cli.state import state
from pipelines.training.params import MAX_SEED

JSON = typer.Option(False, "--json", help="machine-readable output (no progress bar)")
KEPT_NAMED = {
    "lora": "fine-tuned LoRA",
    "probe": "the frozen probe (no LoRA delta)",
    "contrastive": "the probe on features adapted by a contrastive step (LoRA)",
}


def train(
    data: Path = typer.Option(..., "--data", help="labeled batch: CSV, JSONL or Parquet with columns text,label"),
    out: Path = typer.Option(..., "--out", help="adapter folder to create"),
    base_model: str | None = typer.Option(
        None,
        "--base-model",
        help="local Hugging Face encoder folder or registered base name (default: configured base_model)",
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=MAX_SEED, help="same data, seed and settings give the same adapter on CPU"
    ),
    device: Device = typer.Option("auto", "--device", help="where to train"),
    params_file: Path | None = typer.Option(
        None, "--params", help="params file with a train: section (default ./params.yaml, else the packaged one)"
    ),
    noise_filter: Literal["auto", "cleanlab", "none"] | None = typer.Option(
        None, "--noise-filter", help="overrides noise_filter of the params file"
    ),
    force: bool = typer.Option(False, "--force", help="replace --out if it holds a previous adapter"),
    encoding: str | None = ENCODING,
    as_json: bool = JSON,
) -> None:
    """Train a LoRA adapter; writes the adapter folder with train_result.json and reference.csv."""
    from pipelines.batches.read import read_batch
    from pipelines.training.cpu_share import training_share
    from pipelines.training.params import load_params
    from pipelines.training.publish import prepare_output
    from pipelines.training.recipe import Pricing, check_batch
    from pipelines.training.recipe import train as train_adapter
    from serving.model import load_base, resolve_device

    ctx = state.context()
    settings = ctx.settings
    params = load_params(params_file, noise_filter=noise_filter)
    resolved = resolve_device(device)
    batch = read_batch(data, max_bytes=ctx.policy.data.max_file_bytes, encoding=encoding)
    # Cheap refusals before the model is loaded (seconds): bad data, an existing folder.
    check_batch(batch, params)
    prepare_output(out, force)
    progress = not as_json and sys.stderr.isatty()
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar would break the promise of a quiet --json
    from serving.encoder import check_model_dir

    # A missing or empty folder is named as such before its name is looked for in its config.json.
    folder = check_model_dir(settings.base_folder(base_model))
    with training_share(settings.train_niceness, settings.train_threads):
        base = load_base(
            folder, device=resolved, model_id=settings.resolve_base(base_model)[1], cache_dir=settings.home
        )
        rate = settings.cost_per_hour_gpu if resolved == "cuda" else settings.cost_per_hour_cpu
        result = train_adapter(
            batch,
            out,
            base=base,
            params=params,
            seed=seed,
            force=force,
            pricing=Pricing(rate, settings.cost_currency),
            progress=progress,
        )
    c = result.cost
    text = (
        f"adapter written to {out} ({len(result.labels)} classes, {result.train_examples} examples trained on, "
        f"{result.dropped_examples} dropped and {result.downweighted_examples} down-weighted as probably mislabelled"
        + (
            f"; {result.uncached_examples} rows past what max_steps × batch_size can visit fed the head's probe only"
            if result.uncached_examples
            else ""
        )
        + ")\n"
        + (f"kept: {KEPT_NAMED[result.selection.kept]}; {result.selection.reason}\n" if result.selection else "")
        + f"cost: {c.wall_seconds:.1f} s wall, {c.cpu_seconds:.1f} s CPU, peak RSS {c.peak_rss_mb:.0f} MB, "
        f"{c.trainable_params} trainable parameters, adapter {c.adapter_bytes / 1e6:.2f} MB, "
        f"{c.money:.4f} {c.currency}\nadapter sha256 {result.adapter_sha256}"
    )
    emit(result, as_json=as_json, text=text)


def attach(app: typer.Typer) -> None:
    app.command("train")(train)
