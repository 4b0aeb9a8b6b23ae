"""What `tailor serve --record-traffic` needs: the recorder identity's store, and the features kept
in place of texts recorded as hashes."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from pipelines.servers.seaweedfs_identities import RECORDER, read_identities
from pipelines.settings import Settings
from registry.errors import ConfigError
from registry.people import is_credentials_file
from registry.settings import StoreSettings
from serving.traffic import Features, TrafficRecorder

ACCESS_ENV, SECRET_ENV = "TAILOR_RECORDER_ACCESS_KEY", "TAILOR_RECORDER_SECRET_KEY"
EMBEDDING_DECIMALS = 5


def recorder_settings(settings: Settings, retention_days: int) -> StoreSettings:
    """The store as the recorder identity, whose every write carries ``retention_days`` of retention.

    Its keys: TAILOR_RECORDER_ACCESS_KEY/TAILOR_RECORDER_SECRET_KEY (another S3 server: an identity that
    may write ``traffic/`` only), else the ``recorder`` identity of the embedded store's identities file.

    Raises:
        ConfigError: no recorder keys are found.
    """
    base = settings.store()
    access, secret = os.environ.get(ACCESS_ENV), os.environ.get(SECRET_ENV)
    if not (access and secret):
        given = settings.credentials_file
        identities = (
            given if given is not None and not is_credentials_file(given) else settings.embedded_store().identities_file
        )
        if not Path(identities).is_file():
            raise ConfigError(
                f"--record-traffic needs the recorder's keys: set {ACCESS_ENV} and {SECRET_ENV}, or run "
                f"the embedded store (its identities file {identities} does not exist)"
            )
        keys = read_identities(identities)
        if RECORDER not in keys:
            raise ConfigError(
                f"--record-traffic: {identities} has no '{RECORDER}' identity: restart the embedded store "
                f"(`tailor store stop; tailor store start` adds it) or set {ACCESS_ENV}/{SECRET_ENV}"
            )
        access, secret = keys[RECORDER]
    # The role only words refusals: the store judges the recorder by its keys.
    return replace(
        base,
        access_key=access,
        secret_key=secret,
        session_token=None,
        signing_key=None,
        role="reader",
        actor=RECORDER,
        object_lock_mode="GOVERNANCE",
        object_lock_days=retention_days,
    )


def record_features(base_model_dir: Path) -> Features:
    """Per text, the drift check's per-text columns and the base model's embedding (what the monitor
    compares with the reference when the text itself was not kept)."""

    def features(texts: list[str]) -> list[dict]:
        from pipelines.evaluation.checks.drift import per_text_features
        from serving.embeddings import embed

        columns = per_text_features(texts, base_model_dir)
        embeddings = embed(texts, base_model_dir).round(EMBEDDING_DECIMALS)
        return [
            {**{name: values[i] for name, values in columns.items()}, "embedding": embeddings[i].tolist()}
            for i in range(len(texts))
        ]

    return features


def build_recorder(settings: Settings, monitoring_file: Path | None) -> TrafficRecorder:
    """Raises: ConfigError: a bad monitoring file, or no recorder keys."""
    from pipelines.monitoring.config import load_monitoring
    from registry.store import S3ObjectStore

    recording = load_monitoring(monitoring_file).recording
    store = S3ObjectStore(recorder_settings(settings, recording.retention_days))
    features = record_features(settings.base_model_dir) if recording.hash_texts else None
    return TrafficRecorder(store, recording.limits(), features=features)
