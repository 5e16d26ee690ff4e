"""The bay configuration: one TOML file, validated on load.

Every error names the file, the key and what is wrong, e.g.::

    bay.toml: chairs[2].id: must be 1-32 letters, digits, '_' or '-' (got 'chair 3')

Relative paths in the file (the store) are relative to the file's folder.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from datetime import tzinfo
from importlib import resources
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.alarm_rules import (
    DEFAULT_RULES,
    AlarmSettings,
    LimitRule,
    RuleError,
    check_rule_set,
    rules_from_dicts,
)
from monitor.errors import CoreError
from monitor.localtime import machine_zone, zone_from_name
from monitor.records import Priority

__all__ = [
    "SERIAL_PARAMETERS",
    "BayConfig",
    "ConfigError",
    "Hl7Source",
    "MqttSource",
    "Name",
    "ProtocolPreset",
    "SerialSource",
    "SourceConfig",
    "describe_errors",
    "load_config",
    "parse_allow_entry",
    "parse_config",
]

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

#: What each serial dialect can deliver (PROTOCOLS.md section 3): the oximeter dialects
#: SpO2 and pulse rate only; the Chairside line every parameter, NIBP included.
SERIAL_PARAMETERS: dict[str, frozenset[str] | None] = {
    "masimo": frozenset({"spo2", "pr"}), "nonin": frozenset({"spo2", "pr"}),
    "nellcor": frozenset({"spo2", "pr"}), "chairside": None,
}


class ConfigError(CoreError):
    """A configuration that cannot be used; the message names file, key and problem."""


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"must be 1-32 letters, digits, '_' or '-' (got {value!r})")
    return value


Name = Annotated[str, AfterValidator(_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Certificate subject attributes an ``allow`` entry may name, as Python's ssl names them
SUBJECT_KEYS = {"CN": "commonName", "O": "organizationName", "OU": "organizationalUnitName",
                "C": "countryName", "ST": "stateOrProvinceName", "L": "localityName",
                "DC": "domainComponent", "SERIALNUMBER": "serialNumber",
                "EMAILADDRESS": "emailAddress", "UID": "userId"}


def parse_allow_entry(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network \
        | tuple[tuple[str, str], ...]:
    """An HL7 ``allow`` entry: an address or network, or a certificate subject
    (``CN=gateway-1`` or ``CN=gw,O=Hospital``: (ssl attribute name, value) pairs, all of
    which the peer's subject must have). Raises ValueError naming the problem."""
    text = entry.strip()
    if "=" not in text:
        try:
            return ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is neither an address, a network (10.1.2.0/24) nor a "
                             f"certificate subject (CN=gateway-1): {exc}") from None
    pairs = []
    for part in text.split(","):
        key, sep, value = part.partition("=")
        name = SUBJECT_KEYS.get(key.strip().upper())
        if not sep or name is None or not value.strip():
            where = "" if part.strip() == text else f"{entry!r}: "
            raise ValueError(f"{where}{part.strip()!r} is not ATTRIBUTE=value with ATTRIBUTE "
                             f"one of {', '.join(SUBJECT_KEYS)}")
        pairs.append((name, value.strip()))
    return tuple(pairs)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rules(value: Any) -> tuple[LimitRule, ...]:
    if isinstance(value, tuple) and all(isinstance(r, LimitRule) for r in value):
        return value
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of rule tables")
    return rules_from_dicts(value, where="")  # the key path comes first: rules[0].low


class BaySection(_Model):
    id: Name = "bay1"
    name: str = "Infusion bay"
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


class StoreSection(_Model):
    path: Path = Path("chairside.db")
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

    @property
    def key_file(self) -> Path:
        return self.audit_key_file or Path(f"{self.path}.audit-key")

    @property
    def file_mode(self) -> int:
        return int(self.mode, 8)


class BufferSection(_Model):
    continuous_hours: float = Field(12, gt=0, le=48)
    continuous_rate_hz: float = Field(1, gt=0, le=10)
    intermittent_capacity: int = Field(1024, ge=16, le=100_000)


class AlarmSection(_Model):
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


class DisplaySection(_Model):
    stale_after_s: float = Field(10, gt=0)  # a value this old is shown as stale
    offline_after_s: float = Field(60, gt=0)  # a chair with no reading this long is offline
    baseline_minutes: float = Field(5, gt=0, le=60)  # baseline = mean of the first minutes


class IngestSection(_Model):
    max_future_skew_s: float = Field(300, ge=0)  # further ahead: refused (future_time)
    # further ahead of the monitor's clock than this (and not refused): stored with its device
    # time and the CLOCK_SKEW flag, shown at its arrival, a "device clock wrong" alarm
    clock_skew_s: float = Field(5, ge=0)


class DashboardSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)


class AuthSection(_Model):
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


class LimitProfile(_Model):
    label: str = ""
    rules: tuple[LimitRule, ...]

    _check = field_validator("rules", mode="before")(classmethod(lambda cls, v: _rules(v)))

    @field_validator("rules")
    @classmethod
    def _rule_set(cls, rules: tuple[LimitRule, ...]) -> tuple[LimitRule, ...]:
        check_rule_set(rules, where="")
        return rules


class ProtocolPreset(_Model):
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

    _check = field_validator("limits", mode="before")(classmethod(lambda cls, v: _rules(v)))


class ChairConfig(_Model):
    id: Name
    label: str = ""
    profile: str | None = None  # limit profile; None: the bay default

    @property
    def title(self) -> str:
        return self.label or self.id


class SerialSource(_Model):
    """A bedside device on a serial line (USB-serial adapter, or a simulator's pty)."""

    kind: Literal["serial"]
    name: Name
    chair: Name
    port: str  # /dev/ttyUSB0, /dev/serial/by-id/..., or a pty path
    protocol: Literal["masimo", "nonin", "nellcor", "chairside"]
    baudrate: int = Field(9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    device: str = ""  # device id in the record; default: the source name (or the SN sent)
    use_device_time: bool = False  # serial devices' clocks are often unset: receive time
    reconnect_max_s: float = Field(30, gt=0)


class MqttSource(_Model):
    """A Mosquitto (or other MQTT) broker carrying chairside/<bay>/<chair>/vitals."""

    kind: Literal["mqtt"]
    name: Name
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    bay: Name = "bay1"  # the <bay> of the topics
    topic_prefix: Name = "chairside"
    client_id: Name = "chairside-monitor"
    protocol: Literal["5", "3.1.1"] = "5"
    session_expiry_s: int = Field(7 * 24 * 3600, gt=0)  # MQTT 5: the broker keeps our queue
    keepalive_s: int = Field(30, ge=5)
    username: str | None = None
    password_file: Path | None = None  # first line is the password (kept out of this file)
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    reconnect_max_s: float = Field(30, gt=0)
    chairs: dict[Name, Name] = Field(default_factory=dict)  # topic chair -> chair id, if they differ


class Hl7Source(_Model):
    """A TCP listener for HL7 v2 ORU^R01 (IHE PCD-01) over MLLP from monitor gateways."""

    kind: Literal["hl7"]
    name: Name
    host: str = "127.0.0.1"
    port: int = Field(2575, ge=0, le=65535)  # 0: any free port (tests)
    max_message_bytes: int = Field(1 << 20, ge=1024, le=16 << 20)
    idle_timeout_s: float = Field(300, gt=0)
    # OBX segments per message; a message with more is answered AR (too_many_observations)
    max_observations: int = Field(500, ge=1, le=100_000)
    # a frame begun must be complete within this, or its connection is closed (frame_deadline)
    frame_deadline_s: float = Field(10, gt=0, le=600)
    beds: dict[str, Name] = Field(default_factory=dict)  # PV1-3 (as sent) -> chair id
    devices: dict[str, Name] = Field(default_factory=dict)  # MSH-3 or OBX-18 -> chair id
    accept_demo: bool = False  # OBX-8 DEMO values are refused unless this is set
    # MLLP over TLS: the listener's certificate chain and key (PEM); tls_client_ca: the CA
    # the gateways' client certificates must be signed by (set: a certificate is required)
    tls_cert: Path | None = None
    tls_key: Path | None = None  # None: the key is in tls_cert's file
    tls_client_ca: Path | None = None
    tls_min_version: Literal["1.2", "1.3"] = "1.2"
    # peers allowed to connect: addresses or networks ("10.1.2.0/24", "10.1.2.7", "fd00::/8")
    # and client certificate subjects ("CN=gateway-1", "CN=gw,O=Hospital"); with both kinds
    # a peer must match one of each; empty: every peer (that passes TLS, if configured)
    allow: tuple[str, ...] = ()
    # a listener on a non-loopback address without TLS: refused unless this is set
    insecure_plain: bool = False

    @field_validator("allow")
    @classmethod
    def _allow(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            parse_allow_entry(entry)
        return entries

    @model_validator(mode="after")
    def _transport_security(self) -> Hl7Source:
        subjects = [e for e in self.allow if isinstance(parse_allow_entry(e), tuple)]
        networks = [e for e in self.allow if not isinstance(parse_allow_entry(e), tuple)]
        if self.tls_cert is None:
            for key in ("tls_key", "tls_client_ca"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} needs tls_cert (the listener's certificate)")
        if subjects and self.tls_client_ca is None:
            raise ValueError(f"allow: a certificate subject ({subjects[0]!r}) needs tls_client_ca "
                             f"(client certificates are then required)")
        if _loopback(self.host):
            return self
        if self.tls_cert is None and not self.insecure_plain:
            raise ValueError(f"host {self.host!r} is not a loopback address: set tls_cert and "
                             f"tls_key (MLLP over TLS), or insecure_plain = true for a "
                             f"segmented network or a TLS proxy in front")
        if self.tls_client_ca is None and not networks:
            raise ValueError(f"host {self.host!r} is not a loopback address: say who may send, "
                             f"with tls_client_ca (client certificates) and/or allow = "
                             f"[\"<gateway address or network>\", ...]")
        return self


SourceConfig = Annotated[SerialSource | MqttSource | Hl7Source, Field(discriminator="kind")]


class BayConfig(_Model):
    bay: BaySection = BaySection()
    store: StoreSection = StoreSection()
    buffers: BufferSection = BufferSection()
    alarms: AlarmSection = AlarmSection()
    display: DisplaySection = DisplaySection()
    ingest: IngestSection = IngestSection()
    dashboard: DashboardSection = DashboardSection()
    auth: AuthSection = AuthSection()
    limit_profiles: dict[Name, LimitProfile] = Field(default_factory=dict)
    protocols: dict[Name, ProtocolPreset] = Field(default_factory=dict)
    chairs: tuple[ChairConfig, ...] = Field(min_length=1)
    sources: tuple[SourceConfig, ...] = ()

    @model_validator(mode="after")
    def _cross_checks(self) -> BayConfig:
        ids = [c.id for c in self.chairs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"chairs: duplicate chair id(s) {', '.join(dupes)}")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: duplicate source name(s) {', '.join(dupes)}")
        known = set(ids)
        for i, src in enumerate(self.sources):
            targets = {"serial": lambda s: [s.chair], "mqtt": lambda s: list(s.chairs.values()),
                       "hl7": lambda s: [*s.beds.values(), *s.devices.values()]}[src.kind](src)
            for chair in targets:
                if chair not in known:
                    raise ValueError(f"sources[{i}] ({src.name}): no chair {chair!r} in [[chairs]]")
        profiles = self.profiles()
        if self.bay.default_profile not in profiles:
            raise ValueError(f"bay.default_profile: no limit profile {self.bay.default_profile!r}"
                             f" (known: {', '.join(sorted(profiles))})")
        for i, chair in enumerate(self.chairs):
            if chair.profile is not None and chair.profile not in profiles:
                raise ValueError(f"chairs[{i}].profile: no limit profile {chair.profile!r}")
        in_use = sorted({c.profile or self.bay.default_profile for c in self.chairs})
        for key, preset in self.presets().items():
            for name in in_use:  # a preset may run on any chair: over each profile in use
                _check_preset(key, preset, name, profiles[name], shipped=not self.protocols)
        return self

    def profiles(self) -> dict[str, tuple[LimitRule, ...]]:
        """Limit profiles; ``adult`` is built in (CLINICAL.md defaults) unless redefined."""
        return {"adult": DEFAULT_RULES} | {k: p.rules for k, p in self.limit_profiles.items()}

    def chair_rules(self, chair: str) -> tuple[LimitRule, ...]:
        cfg = self.chair(chair)
        return self.profiles()[cfg.profile or self.bay.default_profile]

    def source_parameters(self, name: str) -> frozenset[str] | None:
        """The parameters the configured source ``name`` can deliver; None: any (MQTT,
        HL7, the Chairside line, or a name not in the configuration such as ``mqtt:c1``)."""
        for src in self.sources:
            if src.name == name:
                return SERIAL_PARAMETERS[src.protocol] if isinstance(src, SerialSource) else None
        return None

    def source_kind(self, name: str) -> str:
        """The kind (``mqtt``, ``serial``, ``hl7``) of the source ``name``: a configured one's,
        ``mqtt`` for a name such as ``mqtt:c1``; empty when unknown."""
        for src in self.sources:
            if src.name == name:
                return src.kind
        return "mqtt" if name.startswith("mqtt:") else ""

    def nibp_can_arrive(self, chair: str) -> bool:
        """Whether a configured source can deliver NIBP for ``chair``. A chair no source
        names (fed by MQTT topic, or by a simulator) may get NIBP from anywhere: True."""
        named = [src for src in self.sources
                 if (isinstance(src, SerialSource) and src.chair == chair)
                 or (isinstance(src, MqttSource) and chair in src.chairs.values())
                 or (isinstance(src, Hl7Source) and chair in (*src.beds.values(), *src.devices.values()))]
        if not named:
            return True
        return any(not isinstance(src, SerialSource) or SERIAL_PARAMETERS[src.protocol] is None
                   for src in named)

    def chair(self, chair: str) -> ChairConfig:
        for c in self.chairs:
            if c.id == chair:
                return c
        raise KeyError(chair)

    def presets(self) -> dict[str, ProtocolPreset]:
        """The site's protocol presets, or the shipped examples when it defines none."""
        return dict(self.protocols) if self.protocols else example_presets()

    def with_store_path(self, path: Path) -> BayConfig:
        return self.model_copy(update={"store": self.store.model_copy(update={"path": path})})


def merge_rules(base: tuple[LimitRule, ...], *overrides: tuple[LimitRule, ...]) -> tuple[LimitRule, ...]:
    """Rules of ``base`` with each override replacing the rule of the same id (or added)."""
    merged = {r.id: r for r in base}
    for layer in overrides:
        merged.update({r.id: r for r in layer})
    return tuple(merged.values())


def _check_preset(key: str, preset: ProtocolPreset, profile: str, base: tuple[LimitRule, ...],
                  shipped: bool) -> None:
    """A protocol preset's limits merged over a limit profile must form a sound rule set."""
    try:
        check_rule_set(merge_rules(base, preset.limits))
    except RuleError as exc:
        at = exc.path_in(preset.limits, "")
        where = (f"shipped example protocol {key!r} (limits{at})" if shipped
                 else f"protocols.{key}.limits{at}")
        hint = "; define [protocols] for this bay" if shipped else ""
        raise ValueError(f"{where}: over limit profile {profile!r}, {exc.problem}{hint}") from None


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "tuple[", "list[", "dict[")):
            out += f".{part}" if out else str(part)
    return out


def describe_errors(exc: ValidationError, source: str) -> str:
    """A pydantic error as lines of ``source: key.path: what is wrong``."""
    problems = []
    for err in exc.errors():
        where = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "too_short":
            msg = "must have at least one entry"
        if where and msg.startswith("["):  # a rule's own path: limit_profiles.p.rules[0].low
            problems.append(f"{source}: {where}{msg}")
        else:
            problems.append(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")
    return "\n".join(problems)


def parse_config(data: dict[str, Any], source: str = "<config>", base: Path | None = None) -> BayConfig:
    try:
        config = BayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, source)) from None
    if base is not None and not config.store.path.is_absolute():
        config = config.with_store_path(base / config.store.path)
    if base is not None:
        config = _hl7_paths(config, base)
    ledger_key = config.store.audit_key_file
    if base is not None and ledger_key is not None and not ledger_key.is_absolute():
        store = config.store.model_copy(update={"audit_key_file": base / ledger_key})
        config = config.model_copy(update={"store": store})
    key = config.auth.secret_key_file
    if base is not None and key is not None and not key.is_absolute():
        auth = config.auth.model_copy(update={"secret_key_file": base / key})
        config = config.model_copy(update={"auth": auth})
    return config


def _hl7_paths(config: BayConfig, base: Path) -> BayConfig:
    """HL7 listeners' TLS files relative to the configuration file's folder."""
    sources = []
    for src in config.sources:
        if isinstance(src, Hl7Source):
            update = {k: base / p for k in ("tls_cert", "tls_key", "tls_client_ca")
                      if (p := getattr(src, k)) is not None and not p.is_absolute()}
            src = src.model_copy(update=update) if update else src
        sources.append(src)
    return config.model_copy(update={"sources": tuple(sources)})


def load_config(path: str | Path) -> BayConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path), path.parent)


def example_presets() -> dict[str, ProtocolPreset]:
    text = resources.files("monitor").joinpath("example_protocols.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return {k: ProtocolPreset.model_validate(v) for k, v in data["protocols"].items()}
