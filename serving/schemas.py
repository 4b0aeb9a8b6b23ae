"""What the predictor accepts and answers, and the limits a request must stay within."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from registry.explanations import Explanation
from registry.text import has_visible_text, unpaired_surrogate
from serving.explain import DEFAULT_STEPS


@dataclass(frozen=True)
class Limits:
    """Request limits: they bound the CPU time and memory one request can take.

    The body limit follows from the other two (every character escaped, a character outside the
    Basic Multilingual Plane as two ``\\uXXXX``, plus JSON punctuation), so a request within the
    text limits is never refused for its size.
    """

    max_batch: int = 64
    max_chars: int = 2000
    # A client that declares a body and sends it slowly, or never, holds a connection and its
    # buffer; a few hundred such connections would exhaust the server's file descriptors.
    body_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if not self.body_seconds > 0:
            raise ValueError(f"body_seconds must be above 0, got {self.body_seconds}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {self.max_chars}")

    @property
    def max_body_bytes(self) -> int:
        return self.max_batch * (self.max_chars * 12 + 8) + 1024

    def problems(self, texts: list[str]) -> list[str]:
        """Every way ``texts`` breaks the limits, one message each (empty when it is fine)."""
        if not texts:
            return ["texts: the list is empty; send at least one text"]
        found = []
        if len(texts) > self.max_batch:
            found.append(f"texts: {len(texts)} texts in one request, the limit is {self.max_batch}; split the batch")
        return found + [p for i, text in enumerate(texts) if (p := self.text_problem(text, f"texts[{i}]"))]

    def text_problem(self, text: str, where: str) -> str | None:
        """How one text breaks the limits (``where`` names it in the message), or None."""
        if not text.strip():
            return f"{where}: empty or only whitespace"
        if (at := unpaired_surrogate(text)) is not None:
            return (
                f"{where}: an unpaired UTF-16 surrogate (U+{ord(text[at]):04X}) at character {at}; send valid Unicode"
            )
        if not has_visible_text(text):
            # the tokenizer drops such characters, so the model would answer confidently about nothing
            return f"{where}: only control or invisible characters; there is nothing to classify"
        if len(text) > self.max_chars:
            return f"{where}: {len(text)} characters, the limit is {self.max_chars}"
        return None


@dataclass(frozen=True)
class Explaining:
    """``POST /explain`` when the server was started with it: an explanation costs ``steps`` forward and
    backward passes, so at most ``per_minute`` are answered a minute."""

    per_minute: int = 6
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {self.per_minute}")
        if self.steps < 2:
            raise ValueError(f"steps must be at least 2, got {self.steps}")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] = Field(description="the texts to classify, in order")
    adapter: StrictStr | None = Field(None, description="adapter name; may be left out when one adapter is served")


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    adapter: str
    version: str = Field(description="the adapter version that answered the whole request")
    predictions: list[Prediction]


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(description="the text whose prediction to explain")
    adapter: StrictStr | None = Field(None, description="adapter name; may be left out when one adapter is served")


class ExplainResponse(BaseModel):
    adapter: str
    version: str = Field(description="the adapter version that predicted and was explained")
    explanation: Explanation


class AdapterVersion(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="the version's content hash from its manifest")
    alias: str
    since: datetime = Field(description="when this server started answering with this version (UTC)")


class VersionResponse(BaseModel):
    adapters: list[AdapterVersion]


class Failure(BaseModel):
    """A follow step that did not work; the server kept answering with the version it had."""

    version: str | None = Field(description="the version that failed to load, if one was being loaded")
    error: str
    at: datetime


class AdapterHealth(BaseModel):
    name: str
    serving: str = Field(description="the version answering requests")
    alias_target: str | None = Field(description="the version the alias named at the last successful poll")
    last_poll: datetime | None
    failure: Failure | None = Field(description="why the server is not on the alias's version, if it is not")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: answering, but not with what the alias names")
    alias: str
    poll_seconds: float
    adapters: list[AdapterHealth]


class ReadyResponse(BaseModel):
    ready: bool
    missing: list[str] = Field(default_factory=list, description="adapters with no version answering yet")
    stopping: bool = Field(False, description="the server is shutting down: send new requests elsewhere")


class ErrorResponse(BaseModel):
    error: str
    problems: list[str] = Field(default_factory=list)
