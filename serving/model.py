"""The classifier Tailor trains and serves: a frozen base encoder, LoRA adapters, a mean-pooled head.

One base model is loaded once (:func:`load_base`); every adapter becomes an
:class:`AdapterClassifier` whose module tree is its own but whose base weights are the very same
tensors as the base's, so serving several adapters side by side costs only their LoRA weights and
no request ever switches a global "active adapter".

Why a mean-pooled head instead of ``AutoModelForSequenceClassification``: that head sits on
[CLS] + BERT's pooler, while sentence encoders such as all-MiniLM-L6-v2 were trained for mean
pooling. The mean-pooled, L2-normalised embedding is already a strong feature (a frozen probe on
it beats plain LoRA on tiny data), so the head starts from there.

Adapter folder (``registry.adapter_folder``): PEFT's ``adapter_config.json`` + ``adapter_model.safetensors``
(LoRA weights and the ``classifier`` head as ``modules_to_save``) and ``tailor_adapter.json``
(:class:`AdapterMeta`). Weights are read and written as safetensors only.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from registry.adapter_folder import CONFIG_FILE, META_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE, AdapterMeta
from registry.errors import ConfigError, NotFoundError, RefusedError
from registry.files import read_json_object, safetensors_header_problem
from registry.fingerprint import BaseModelFingerprint, base_model_fingerprint
from serving.base_cache import FolderIdentity, frozen_encoder
from serving.embeddings import batches_by_length, pooled, sentence_embedding, token_lengths
from serving.encoder import check_model_dir
from serving.encoder_family import family_of

HEAD_MODULE = "classifier"


class MeanPoolClassifier(torch.nn.Module):
    """Encoder → mean pooling → L2 normalisation → linear head.

    The head sees the same normalised embedding a frozen probe would, so training can start from
    a probe fitted on it (``pipelines.training.objective.logreg_head``) and only refine it.
    """

    def __init__(self, encoder: torch.nn.Module, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    def layers(self) -> torch.nn.ModuleList:
        """The transformer blocks, for training that starts from cached lower-layer states.

        Raises:
            RefusedError: an encoder family Tailor does not know (``serving.encoder_family``).
        """
        return family_of(self.encoder).blocks(self.encoder)

    def embed_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int) -> torch.Tensor:
        """Run blocks ``start..`` on hidden states that enter block ``start``; pooled, normalised output."""
        family = family_of(self.encoder)
        hidden = family.finish(self.encoder, family.run(self.encoder, hidden, attention_mask, slice(start, None)))
        return pooled(hidden, attention_mask)

    def hidden_before(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int) -> torch.Tensor:
        """Hidden states entering block ``start`` (embeddings + blocks ``0..start-1``)."""
        family = family_of(self.encoder)
        hidden = family.embed(self.encoder, input_ids, attention_mask)
        return family.run(self.encoder, hidden, attention_mask, slice(0, start))

    def embed(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor, inputs_embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        return sentence_embedding(self.encoder, input_ids, attention_mask, inputs_embeds)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
        **_: object,
    ) -> torch.Tensor:
        # inputs_embeds (the token embeddings, in place of input_ids): gradients with respect to the
        # input, for integrated gradients (serving.explain).
        return self.classifier(self.embed(input_ids, attention_mask, inputs_embeds))


@dataclass
class LoadedBase:
    """The frozen base encoder and its tokenizer, loaded once and shared by every adapter."""

    model_dir: Path
    device: str
    tokenizer: object
    encoder: torch.nn.Module
    fingerprint: BaseModelFingerprint
    # Fast tokenizers are not safe to call from several threads at once ("Already borrowed").
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The folder as loaded (``serving.base_cache``); None for a base built in memory (its embeddings are not memoised).
    identity: FolderIdentity | None = None

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        # Pad to the longest text of the batch, not to max_length: short texts are the norm and
        # attention cost grows with the padded length.
        with self.tokenizer_lock:
            enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def token_lengths(self, texts: list[str], max_length: int) -> list[int]:
        """Tokens per text after truncation, as :meth:`tokenize` would keep them (for length-sorted batches)."""
        return token_lengths(texts, self, max_length)

    def shared_copy(self) -> torch.nn.Module:
        """A new module tree over the SAME base tensors: adapters injected into it leave the base untouched."""
        memo = {id(t): t for t in itertools.chain(self.encoder.parameters(), self.encoder.buffers())}
        return copy.deepcopy(self.encoder, memo)


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available else cpu; ``cuda`` only when CUDA is really there.

    Raises:
        ConfigError: an unknown device name.
        RefusedError: CUDA asked for but not available.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RefusedError(
            f"--device cuda asked for but CUDA is not available (torch {torch.__version__}); use --device cpu"
        )
    return device


def load_base(base_model_dir: Path, *, model_id: str, cache_dir: Path | None, device: str = "cpu") -> LoadedBase:
    """Load the frozen base encoder offline, once per process: every ``LoadedBase`` of one folder (as it
    is on disk now) shares one encoder and tokenizer (``serving.base_cache``).

    Args:
        base_model_dir: local Hugging Face encoder folder (safetensors weights, no remote code).
        device: ``cpu``, ``cuda`` or ``auto``.
        model_id: the name recorded with adapters (the configured ``base_model_id``).
        cache_dir: where the content fingerprint is cached (the configured ``home``); None hashes every time.

    Raises:
        NotFoundError: the folder or its weights are missing.
        RefusedError: remote code, pickle-only weights, weights or a config transformers cannot load,
            or CUDA asked for but absent.
        ConfigError: an unknown device.
    """
    model_dir = check_model_dir(Path(base_model_dir))
    frozen = frozen_encoder(model_dir, resolve_device(device))
    return LoadedBase(
        model_dir=model_dir,
        device=frozen.device,
        tokenizer=frozen.tokenizer,
        encoder=frozen.encoder,
        fingerprint=base_model_fingerprint(model_dir, model_id, cache_dir=cache_dir),
        tokenizer_lock=frozen.tokenizer_lock,
        identity=frozen.identity,
    )


def check_adapter_files(adapter_dir: Path) -> None:
    """Refuse a folder we must not or cannot load: missing or unreadable files, or any pickle file in it.

    PEFT falls back to ``torch.load`` of ``adapter_model.bin`` when the safetensors file is absent,
    so the pickle check comes before PEFT ever sees the folder. A truncated weights file or a config
    that is not a JSON object would otherwise surface as a traceback from deep inside PEFT.

    Raises:
        NotFoundError: folder, adapter_config.json or adapter_model.safetensors missing.
        RefusedError: a pickle file anywhere in the folder, a config that is not a JSON object, or
            a weights file whose safetensors header does not parse.
    """
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        raise NotFoundError(f"adapter folder {adapter_dir} does not exist")
    pickles = sorted(str(p.relative_to(adapter_dir)) for p in adapter_dir.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise RefusedError(
            f"adapter folder {adapter_dir} holds pickle files ({', '.join(pickles)}); Tailor loads safetensors only"
        )
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (adapter_dir / name).is_file():
            raise NotFoundError(f"adapter folder {adapter_dir} has no {name}")
    try:
        read_json_object(adapter_dir / CONFIG_FILE)
    except ValueError as err:
        raise RefusedError(f"{adapter_dir / CONFIG_FILE} {err}") from None
    if (problem := safetensors_header_problem(adapter_dir / WEIGHTS_FILE)) is not None:
        raise RefusedError(
            f"{adapter_dir / WEIGHTS_FILE} is not a readable safetensors file ({problem}); "
            "it may be truncated: download or train the adapter again"
        )


class AdapterClassifier:
    """One adapter on a shared base: ``predict_proba`` is safe to call from several threads."""

    def __init__(self, adapter_dir: Path, base: LoadedBase, meta: AdapterMeta, model: torch.nn.Module) -> None:
        self.adapter_dir = Path(adapter_dir)
        self.base = base
        self.meta = meta
        self.labels: list[str] = list(meta.labels)
        self._model = model

    @property
    def module(self) -> torch.nn.Module:
        """The PEFT-wrapped :class:`MeanPoolClassifier`, for methods that need gradients through it (serving.explain)."""
        return self._model

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(labels)), columns in ``labels`` order."""
        proba = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        # inference_mode keeps forward passes free of autograd state, so threads never share any.
        with torch.inference_mode():
            for rows in batches_by_length(texts, self.base, self.meta.max_length, batch_size):
                enc = self.base.tokenize([texts[i] for i in rows], self.meta.max_length)
                proba[rows] = torch.softmax(self._model(**enc).float(), dim=-1).cpu().numpy()
        return proba

    def predict(self, texts: list[str], batch_size: int = 32) -> list[str]:
        proba = self.predict_proba(texts, batch_size=batch_size)
        return [self.labels[i] for i in proba.argmax(axis=1)]


def load_classifier(adapter_dir: Path, base: LoadedBase) -> AdapterClassifier:
    """Attach the adapter in ``adapter_dir`` to the loaded ``base``.

    The base is passed to PEFT explicitly: ``base_model_name_or_path`` in adapter_config.json is
    somebody's local path and is never followed.

    Raises:
        NotFoundError: missing folder or files.
        RefusedError: pickle files, unreadable adapter files, or the adapter was trained on a different base model.
        ConfigError: a malformed tailor_adapter.json, or adapter files that disagree with each other.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    check_adapter_files(adapter_dir)
    meta = AdapterMeta.read(adapter_dir)
    fp = base.fingerprint
    if (meta.base_model_weights_sha256, meta.base_model_tokenizer_sha256) != (fp.weights_sha256, fp.tokenizer_sha256):
        raise RefusedError(
            f"adapter {adapter_dir} was trained on base model {meta.base_model_id} "
            f"(weights {meta.base_model_weights_sha256[:12]}…, tokenizer {meta.base_model_tokenizer_sha256[:12]}…) "
            f"but the loaded base {fp.model_id} has weights {fp.weights_sha256[:12]}…, "
            f"tokenizer {fp.tokenizer_sha256[:12]}…"
        )
    skeleton = MeanPoolClassifier(base.shared_copy(), len(meta.labels)).to(torch.device(base.device))
    try:
        model = PeftModel.from_pretrained(skeleton, str(adapter_dir), is_trainable=False)
    except (ValueError, RuntimeError, KeyError, TypeError) as err:
        # A hand-edited or mismatched folder: a missing or unknown peft_type, a wrongly typed LoRA
        # setting, or a head whose shape is not the label count in tailor_adapter.json.
        raise ConfigError(
            f"adapter {adapter_dir} does not load: adapter_config.json, {WEIGHTS_FILE} and "
            f"{META_FILE} disagree ({type(err).__name__}: {err})"
        ) from None
    model.eval()
    return AdapterClassifier(adapter_dir, base, meta, model)
