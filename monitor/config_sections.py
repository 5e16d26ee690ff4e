"""The bay configuration's sections other than the sources: ``[bay]``, ``[store]``,
``[buffers]``, ``[alarms]``, ``[display]``, ``[ingest]``, ``[dashboard]``, ``[auth]``, the
limit profiles, the protocol presets and ``[[chairs]]``; and the pieces every section is
made of (:class:`Model`, frozen and refusing unknown keys; :data:`Name`). Validated by
pydantic; :mod:`monitor.config` puts them together in ``BayConfig``.
"""

from __future__ import annotations

import ipaddress
from datetime import tzinfo
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator, model_validator

from monitor.alarm_rules import AlarmSettings, LimitRule, check_rule_set, rules_from_dicts
from monitor.localtime import machine_zone, zone_from_name
from monitor.records import Priority
from monitor.validation import Name

__all__ = ["AlarmSection", "AuthSection", "BaySection", "BufferSection", "ChairConfig",
           "DashboardSection", "DisplaySection", "HaSection", "IngestSection", "LimitProfile", "Model",
           "ProtocolPreset", "StoreSection", "loopback", "rules_field"]

class Model(BaseModel):
    """A configuration table: frozen, and an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)



def loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



def rules_field(value: Any) -> tuple[LimitRule, ...]:
    """A table's ``rules``: LimitRules, or the config's list of rule tables parsed."""
    if isinstance(value, tuple) and all(isinstance(r, LimitRule) for r in value):
        return value
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of rule tables")
    return rules_from_dicts(value, where="")  # the key path comes first: rules[0].low


class BaySection(Model):
    id: Name = "bay1"
    name: str = "Infusion bay"
    # where nurses open this bay's screen, e.g. "https://neuro-bay.example.org/": the site
    # view (a PostgreSQL store) links each bay's card to it
    url: str = ""
    default_profile: str = "adult"
    # the zone people read times in (the PDF report, the dashboard's clock and alarm times):
    # an IANA name such as "Europe/Berlin"; None: the machine's own zone. Machine-readable
    # exports (CSV, FHIR, HL7) and the API are UTC whatever this says.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_from_name(value)
        return value

    @property
    def zone(self) -> tzinfo:
        """The bay's zone: ``timezone``, or the machine's own."""
        return machine_zone() if self.timezone is None else zone_from_name(self.timezone)


class StoreSection(Model):
    # SQLite (the default): the bay's database file
    path: Path = Path("chairside.db")
    # PostgreSQL instead: a libpq URL, e.g. "postgresql://chairside_app@db.example.org/chairside
    # ?sslmode=verify-full&sslrootcert=/etc/chairside/db-ca.pem" (TLS settings pass through to
    # libpq); never the password in it: password_file (mode 0600), PGPASSWORD or ~/.pgpass.
    # Needs audit_key_file. See docs/deploy-postgresql.md
    url: str | None = None
    password_file: Path | None = None
    # readings received longer ago than this are pruned (SQLite: in small batches between
    # commits; PostgreSQL: whole monthly partitions), each run audited; meanwhile about
    # 640 KB per chair-hour is kept in SQLite, 1.9 MB in PostgreSQL (docs/scaling.md).
    # Sessions, alarms, their events and the audit trail are never pruned by it: they are
    # the medical record (docs/architecture.md#retention)
    retention_days: int = Field(400, ge=1)
    commit_interval_ms: int = Field(200, ge=10, le=1000)
    # readings kept in memory while the disk cannot be written (about 200 bytes each); past
    # it the oldest unwritten readings are dropped and counted (never alarms or actions)
    max_pending_readings: int = Field(1_000_000, ge=1000)
    # the integrity ledger's HMAC key (monitor.integrity): made on first use, mode 0600,
    # never in the database; default <path>.audit-key
    audit_key_file: Path | None = None
    # mode of the database and its -wal/-shm: "0600", or "0640" to let the file's group read
    # (e.g. a backup account); `chairside run` refuses a store more open than this
    mode: Literal["0600", "0640"] = "0600"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a PostgreSQL URL (postgresql://...) or left out for SQLite")
        if value is not None and ":" in (urlsplit(value).netloc.rsplit("@", 1)[0] if "@" in value else ""):
            raise ValueError("must not carry the password: use password_file, PGPASSWORD or ~/.pgpass")
        return value

    @model_validator(mode="after")
    def _postgres_needs_a_key(self) -> StoreSection:
        if self.url is not None and self.audit_key_file is None:
            raise ValueError("a PostgreSQL store needs audit_key_file (the integrity ledger's key, "
                             "kept outside the database)")
        return self

    @property
    def key_file(self) -> Path:
        return self.audit_key_file or Path(f"{self.path}.audit-key")

    @property
    def file_mode(self) -> int:
        return int(self.mode, 8)


class HaSection(Model):
    # two `chairside run` of one bay on two machines, one PostgreSQL store: one leads (reads
    # the devices, judges alarms, writes, serves the screen), the other waits and takes over
    # (docs/high-availability.md). Needs [store] url.
    enabled: bool = False
    check_s: float = Field(1.0, ge=0.1, le=5)  # how often leadership is tried or checked


class BufferSection(Model):
    continuous_hours: float = Field(12, gt=0, le=48)
    continuous_rate_hz: float = Field(1, gt=0, le=10)
    intermittent_capacity: int = Field(1024, ge=16, le=100_000)


class AlarmSection(Model):
    audio_pause_s: float = Field(120, gt=0, le=600)
    latch_high: bool = True
    no_data_after_s: float = Field(30, gt=0)
    sensor_off_delay_s: float = Field(10, ge=0)
    nibp_overdue_grace_s: float = Field(300, ge=0)
    no_data_priority: str = "medium"
    sensor_off_priority: str = "medium"
    device_offline_priority: str = "medium"
    nibp_overdue_priority: str = "low"
    prompt_priority: str = "low"  # the workflow prompts: infusion overrun, observation complete
    infusion_overrun_grace_min: float = Field(10, ge=0, le=240)  # past the planned duration
    # continuous data arriving with device times further behind the monitor's clock than
    # this is DELAYED (tile) and, lasting data_delayed_delay_s, a technical alarm; None:
    # the display's staleness limit ([display] stale_after_s), so a value shown as stale
    # while data arrives is always DELAYED, never ONLINE
    data_delayed_after_s: float | None = Field(None, gt=0)
    data_delayed_delay_s: float = Field(5, ge=0)
    data_delayed_priority: str = "medium"

    @field_validator("no_data_priority", "sensor_off_priority", "device_offline_priority",
                     "nibp_overdue_priority", "data_delayed_priority", "prompt_priority")
    @classmethod
    def _priority(cls, value: str) -> str:
        Priority.parse(value)
        return value

    def settings(self, stale_after_s: float = 10.0) -> AlarmSettings:
        """The engine's settings; ``stale_after_s``: the display's staleness limit."""
        return AlarmSettings(
            audio_pause_s=self.audio_pause_s, latch_high=self.latch_high,
            no_data_after_s=self.no_data_after_s,
            no_data_priority=Priority.parse(self.no_data_priority),
            sensor_off_delay_s=self.sensor_off_delay_s,
            sensor_off_priority=Priority.parse(self.sensor_off_priority),
            device_offline_priority=Priority.parse(self.device_offline_priority),
            nibp_overdue_grace_s=self.nibp_overdue_grace_s,
            nibp_overdue_priority=Priority.parse(self.nibp_overdue_priority),
            prompt_priority=Priority.parse(self.prompt_priority),
            data_delayed_after_s=(stale_after_s if self.data_delayed_after_s is None
                                  else self.data_delayed_after_s),
            data_delayed_delay_s=self.data_delayed_delay_s,
            data_delayed_priority=Priority.parse(self.data_delayed_priority),
        )


class DisplaySection(Model):
    stale_after_s: float = Field(10, gt=0)  # a value this old is shown as stale
    offline_after_s: float = Field(60, gt=0)  # a chair with no reading this long is offline
    baseline_minutes: float = Field(5, gt=0, le=60)  # baseline = mean of the first minutes


class IngestSection(Model):
    max_future_skew_s: float = Field(300, ge=0)  # further ahead: refused (future_time)
    # further ahead of the monitor's clock than this (and not refused): stored with its device
    # time and the CLOCK_SKEW flag, shown at its arrival, a "device clock wrong" alarm
    clock_skew_s: float = Field(5, ge=0)


class DashboardSection(Model):
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)


class AuthSection(Model):
    """Login for the dashboard and the API (``dashboard.auth``)."""

    enabled: bool = True  # false only for a loopback-bound bay (tests, a local demo)
    inactivity_minutes: float = Field(15, gt=0, le=24 * 60)  # automatic logoff
    wall_display: bool = False  # a read-only view of the bay without login (cannot act)
    # the client addresses (networks) the wall display may be seen from; everyone else logs in
    wall_display_from: tuple[IPvAnyNetwork, ...] = (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"))
    secure_cookies: bool = False  # set when served behind TLS (a reverse proxy)
    secret_key_file: Path | None = None  # default: <store path>.secret, mode 0600
    session_max_hours: float = Field(12, gt=0, le=7 * 24)  # absolute lifetime of a login
    # failed logins (monitor.logins): per account, then per client address
    login_free_failures: int = Field(3, ge=1, le=1000)  # failures in a row before delays
    login_delay_seconds: float = Field(1, ge=0, le=3600)  # the first delay, doubled per failure
    login_max_delay_seconds: float = Field(60, ge=0, le=3600)
    lockout_failures: int = Field(10, ge=0, le=100_000)  # an account locked after this many (0: never)
    lockout_minutes: float = Field(15, gt=0, le=24 * 60)  # how long; also when failures are forgotten
    address_free_failures: int = Field(10, ge=1, le=100_000)
    address_lockout_failures: int = Field(30, ge=0, le=100_000)  # a client address likewise (0: never)
    login_parallel: int = Field(1, ge=1, le=16)  # password checks at once (argon2 is slow by design)


class LimitProfile(Model):
    label: str = ""
    rules: tuple[LimitRule, ...]

    _check = field_validator("rules", mode="before")(classmethod(lambda cls, v: rules_field(v)))

    @field_validator("rules")
    @classmethod
    def _rule_set(cls, rules: tuple[LimitRule, ...]) -> tuple[LimitRule, ...]:
        check_rule_set(rules, where="")
        return rules


class ProtocolPreset(Model):
    label: str
    drug: str
    dose: str = ""
    planned_minutes: float | None = Field(None, gt=0)
    nibp_interval_min: float | None = Field(None, gt=0)
    observation_minutes: float | None = Field(None, ge=0)
    example: bool = False  # shipped as an example: a site must review before use
    note: str = ""
    limits: tuple[LimitRule, ...] = ()  # replace the profile's rules with the same id
    # the protocol wants NIBP on its cycle even where no source can measure it: the
    # nurse enters manual readings, and NIBP overdue applies on an oximeter-only chair
    manual_nibp: bool = False

    _check = field_validator("limits", mode="before")(classmethod(lambda cls, v: rules_field(v)))


class ChairConfig(Model):
    id: Name
    label: str = ""
    profile: str | None = None  # limit profile; None: the bay default

    @property
    def title(self) -> str:
        return self.label or self.id
