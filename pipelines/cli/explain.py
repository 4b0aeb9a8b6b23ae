"""`tailor explain NAME:VERSION --text "…"`: which words made an adapter version give a text its label."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from pipelines.cli.evaluate import JSON
from pipelines.cli.output import emit
from pipelines.cli.state import state
from pipelines.cli.version_ref import split_ref
from registry.errors import NotFoundError
from registry.explanations import Explanation
from serving.explain import DEFAULT_STEPS  # torch is imported only when a text is explained

SHOWN = 12  # spans listed in the text output, strongest first


def explain(
    adapter: str = typer.Argument(
        ..., metavar="NAME:VERSION", help="a version (or NAME:ALIAS) from the registry, or an adapter folder"
    ),
    text: str = typer.Option(..., "--text", help="the text to explain"),
    steps: int = typer.Option(
        DEFAULT_STEPS, "--steps", min=2, help="integration steps (each a forward and a backward pass)"
    ),
    as_json: bool = JSON,
) -> None:
    """Explain one prediction: each word's share of the predicted label's probability (integrated
    gradients; occlusion without Captum), the method's convergence error, and how much the
    probability drops when the top words are removed (ERASER comprehensiveness) or kept alone (sufficiency)."""
    from serving.explain import explain as run
    from serving.model import load_base, load_classifier

    settings = state.settings()
    with tempfile.TemporaryDirectory(prefix="tailor-explain-") as tmp:
        folder, ref = _adapter(adapter, Path(tmp) / "adapter")
        base = load_base(settings.base_model_dir, model_id=settings.model_id_of(None), cache_dir=settings.home)
        explanation = run(load_classifier(folder, base), text, steps=steps)
    emit({"adapter": ref, "explanation": explanation}, as_json=as_json, text=describe(ref, explanation))


def _adapter(adapter: str, download_to: Path) -> tuple[Path, str]:
    if Path(adapter).is_dir():
        return Path(adapter), adapter
    ref = split_ref(adapter)
    if ref is None:
        raise NotFoundError(f"{adapter!r} is neither NAME:VERSION nor an adapter folder (NAME@VERSION works too)")
    manifest = state.context().registry().download(ref.name, ref.ref, download_to)
    return download_to, f"{manifest.name}:{manifest.version}"


def describe(ref: str, e: Explanation) -> str:
    """The explanation for a person: the label, the strongest spans with their share, the faithfulness measures."""
    method = (
        f"integrated gradients, {e.steps} steps, convergence error {e.delta:+.2g}"
        if e.delta is not None
        else f"occlusion ({e.method_note})"
        if e.method_note
        else "occlusion"
    )
    lines = [f"{ref}: {e.label} (probability {e.probability:.3f}); {method}"]
    if e.truncated:
        lines.append("the text is longer than the model reads: its end got no attribution")
    strongest = sorted(e.spans, key=lambda s: -abs(s.attribution))[:SHOWN]
    lines += [f"  {s.attribution:+.4f}  {s.text}" for s in sorted(strongest, key=lambda s: -s.attribution)]
    f = e.faithfulness
    lines.append(
        f"top {f.top_k} span(s) removed: probability {-f.comprehensiveness:+.3f} (as many random spans: "
        f"{-f.random_comprehensiveness:+.3f}); kept alone: {-f.sufficiency:+.3f}"
    )
    return "\n".join(lines)


def attach(app: typer.Typer) -> None:
    app.command("explain")(explain)
