"""One settings model for every command: a YAML file plus ``KUBEOPERA_*`` variables.

Every default and unit conversion lives here (durations in ``settings.durations``) or in
the section model of the processor it belongs to (``cost:`` in
``streams.processors.cost_allocation``); the CLI only parses its options and calls this.

Environment variables win over the file; nested fields use ``__``, e.g.
``KUBEOPERA_STORAGE__BACKEND=server``. The file is ``--config PATH`` or
``$KUBEOPERA_CONFIG``.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from kubeopera.deploy.paths import default_path
from kubeopera.streams.cost_settings import CostSettings
from kubeopera.streams.default_prices import DefaultPrices
from kubeopera.streams.registry import DEFAULT as DEFAULT_PROCESSORS
from kubeopera.streams.registry import build, load

if TYPE_CHECKING:  # the store and engines load chDB: only commands that use them
    from kubeopera.models.catalogue import Catalogue
    from kubeopera.models.price_sheet import PriceSheet
    from kubeopera.reports import Sharing
    from kubeopera.sinks.clickhouse import Backend, Store
    from kubeopera.streams.embedded import EmbeddedEngine
    from kubeopera.streams.pricing import Pricer
    from kubeopera.streams.processor import Processor


class SettingsError(ValueError):
    """The configuration cannot be used; the message names the field and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageSettings(_Section):
    backend: Literal["chdb", "server"] = "chdb"
    path: Path = Field(
        default_factory=lambda: default_path("clickhouse"),
        description="embedded (chDB) data directory (default: clickhouse/ in the data home)",
    )
    host: str = "localhost"
    port: int = Field(9000, ge=1, le=65535)
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "kubeopera"
    secure: bool = False
    raw_retention_days: int = Field(30, ge=0, description="TTL of raw tables; 0 keeps them")
    history_retention_days: int = Field(
        365, ge=0, description="TTL of the change timeline and findings; 0 keeps them"
    )


class PricingSettings(_Section):
    catalogue_path: Path | None = Field(None, description="full instance-type CSV catalogue")
    price_sheet_path: Path | None = Field(None, description="custom prices, OpenCost CSV format")
    cpu_usd_per_core_hour: float = Field(DefaultPrices.cpu, gt=0)
    ram_usd_per_gib_hour: float = Field(DefaultPrices.ram, gt=0)
    gpu_usd_per_hour: float = Field(DefaultPrices.gpu, ge=0)
    spot_cpu_usd_per_core_hour: float = Field(DefaultPrices.spot_cpu, gt=0)
    spot_ram_usd_per_gib_hour: float = Field(DefaultPrices.spot_ram, gt=0)
    spot_fallback: Literal["on-demand", "estimate"] = Field(
        "on-demand",
        description="a spot node without a market price: its on-demand catalogue price "
        "(OpenCost's AWS provider) or that times the default spot/on-demand CPU ratio",
    )


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    max_in_flight: int = Field(20_000, ge=1, description="publisher backpressure bound")

    def client_options(self) -> dict[str, Any]:
        """Connection and security options for kafka-python clients."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": (
                    self.sasl_password.get_secret_value() if self.sasl_password else None
                ),
            }
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) is not None:
                options[name] = str(getattr(self, name))
        return options

    def aiokafka_options(self) -> dict[str, Any]:
        """The same options for aiokafka (the worker): TLS files become an SSL context."""
        from aiokafka.helpers import create_ssl_context

        options = {k: v for k, v in self.client_options().items() if not k.startswith("ssl_")}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=_text(self.ssl_cafile),
                certfile=_text(self.ssl_certfile),
                keyfile=_text(self.ssl_keyfile),
            )
        return options


class CollectorSettings(_Section):
    redaction_key: SecretStr | None = Field(
        None, description="this cluster's HMAC key for redaction markers (mount it from a Secret)"
    )

    @field_validator("redaction_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError(
                "too short to resist guessing: use 16+ characters (openssl rand -hex 32)"
            )
        return key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KUBEOPERA_", env_nested_delimiter="__", extra="forbid"
    )

    storage: StorageSettings = Field(default_factory=StorageSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    cost: CostSettings = Field(default_factory=CostSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    processors: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PROCESSORS),
        description="the stream processors that run, by registry name",
    )
    processor_modules: list[str] = Field(
        default_factory=list,
        description="modules to import that register processors of your own",
    )
    processor_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="the sections of processors without one of their own here, by name",
    )

    @model_validator(mode="after")
    def _processors_listed_once(self) -> "Settings":
        """Every listed processor once; every section under ``processor_settings``
        belongs to a listed processor without a section of its own. (That each is
        registered and its section valid is ``build_processors``'s to say.)"""
        repeated = sorted({n for n in self.processors if self.processors.count(n) > 1})
        if repeated:
            raise ValueError(f"processors: {', '.join(repeated)} listed more than once")
        for name in self.processor_settings:
            if name in type(self).model_fields:
                raise ValueError(f"processor_settings.{name}: {name} has its own section")
            if name not in self.processors:
                raise ValueError(f"processor_settings.{name}: {name} is not in processors:")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings  # the YAML file arrives as init values

    def backend(self) -> "Backend":
        from kubeopera.sinks.clickhouse import ChdbBackend, ServerBackend

        s = self.storage
        if s.backend == "server":
            return ServerBackend(
                host=s.host,
                port=s.port,
                user=s.user,
                password=s.password.get_secret_value(),
                database=s.database,
                secure=s.secure,
            )
        return ChdbBackend(s.path, s.database)

    def open_store(self) -> "Store":
        from kubeopera.sinks.clickhouse import Store

        return Store(
            self.backend(),
            self.storage.raw_retention_days,
            history_retention_days=self.storage.history_retention_days,
        )

    def catalogue(self) -> "Catalogue":
        from kubeopera.models.catalogue import Catalogue

        path = self.pricing.catalogue_path
        return Catalogue.from_csv(path) if path else Catalogue.builtin()

    def price_sheet(self) -> "PriceSheet | None":
        from kubeopera.models.price_sheet import PriceSheet

        path = self.pricing.price_sheet_path
        return PriceSheet.from_csv(path) if path else None

    def default_prices(self) -> DefaultPrices:
        p = self.pricing
        return DefaultPrices(
            cpu=p.cpu_usd_per_core_hour,
            ram=p.ram_usd_per_gib_hour,
            gpu=p.gpu_usd_per_hour,
            spot_cpu=p.spot_cpu_usd_per_core_hour,
            spot_ram=p.spot_ram_usd_per_gib_hour,
        )

    def pricer(self, catalogue: "Catalogue | None" = None) -> "Pricer":
        """How nodes are priced: ``catalogue`` (default: the configured one), the price
        sheet, the default prices and the spot fallback."""
        from kubeopera.streams.pricing import Pricer

        return Pricer(
            catalogue or self.catalogue(),
            self.default_prices(),
            self.price_sheet(),
            self.pricing.spot_fallback,
        )

    def build_processors(self, names: Sequence[str] | None = None) -> "list[Processor[Any]]":
        """The processors ``processors:`` lists (or ``names``), each from its section
        (importing ``processor_modules`` first). Raises ``SettingsError`` for a processor
        that is not registered, a module that cannot be imported or a section that is
        refused."""
        try:
            load(self.processor_modules)
            sections = {**self.processor_settings, "cost": self.cost}
            return build(self.processors if names is None else names, sections)
        except ValueError as error:  # UnknownProcessorError, ProcessorSettingsError
            raise SettingsError(f"config error: {error}") from error

    def engine(
        self,
        store: "Store",
        catalogue: "Catalogue | None" = None,
        processors: Sequence[str] | None = None,
    ) -> "EmbeddedEngine":
        """The embedded pipeline as these settings describe it (or with ``processors``),
        its reference data holding the drift baselines and budgets the store has
        recorded, the budgets' spend so far and the findings it holds open (its
        processors start without state)."""
        from kubeopera.reports import (
            open_findings,
            recorded_baselines,
            recorded_budgets,
            recorded_spends,
        )
        from kubeopera.streams.embedded import EmbeddedEngine

        engine = EmbeddedEngine(
            store, self.build_processors(processors), self.pricer(catalogue), self.cost.team_label
        )
        engine.reference.apply(recorded_baselines(store))
        engine.reference.apply_budgets(recorded_budgets(store))
        engine.reference.spends = recorded_spends(store)
        engine.reference.open_findings = {f.fingerprint: f for f in open_findings(store)}
        return engine

    def sharing(self) -> "Sharing":
        from kubeopera.reports import Sharing

        c = self.cost
        return Sharing(c.idle, c.idle_by, tuple(c.shared_namespaces), c.shared_split, c.shared_over)


def load_settings(path: Path | None = None, check_processors: bool = True) -> Settings:
    """Settings from ``path`` (or ``$KUBEOPERA_CONFIG``) and the environment; with
    ``check_processors``, the processors they list are built once to check them (which
    loads polars and pyarrow: the collector, which runs none, leaves it to ``--embedded``).
    Raises ``SettingsError``, its message one line."""
    path = path or (
        Path(os.environ["KUBEOPERA_CONFIG"]) if os.environ.get("KUBEOPERA_CONFIG") else None
    )
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as error:
            raise SettingsError(f"cannot read config file {path}: {error.strerror}") from error
        except yaml.YAMLError as error:
            raise SettingsError(f"config file {path} is not valid YAML: {error}") from error
        if not isinstance(loaded, dict):
            raise SettingsError(
                f"config file {path} must hold a mapping (storage:, pricing:, cost:)"
            )
        values = loaded
    try:
        settings = Settings(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"config error{f' at {where}' if where else ''}: {message}") from error
    if check_processors:
        settings.build_processors()
    return settings


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None
