"""The bay configuration: one TOML file, validated on load.

Every error names the file, the key and what is wrong, e.g.::

    bay.toml: chairs[2].id: must be 1-32 letters, digits, '_' or '-' (got 'chair 3')

Relative paths in the file (the store) are relative to the file's folder.
"""

from __future__ import annotations

import ipaddress
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.alarm_rules import (
    DEFAULT_RULES,
    LimitRule,
    RuleError,
    check_rule_set,
)
from monitor.config_sections import (
    AlarmSection,
    AuthSection,
    BaySection,
    BufferSection,
    ChairConfig,
    DashboardSection,
    DisplaySection,
    HaSection,
    IngestSection,
    LimitProfile,
    Model,
    ProtocolPreset,
    StoreSection,
    loopback,
)
from monitor.serial_port import check_port
from monitor.validation import ConfigError, Name, describe_errors
from wire.registry import DIALECTS, SERIAL_PROTOCOLS

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
    "example_presets",
    "load_config",
    "merge_rules",
    "parse_allow_entry",
    "parse_config",
    "parse_endpoint",
]


#: What each serial dialect can deliver (docs/protocols.md#serial-lines), from the wire-format
#: registry: the oximeter dialects SpO2 and pulse rate only; the Chairside line every
#: parameter (None), NIBP included.
SERIAL_PARAMETERS: dict[str, frozenset[str] | None] = {
    name: DIALECTS[name].parameters for name in SERIAL_PROTOCOLS}



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



class SerialSource(Model):
    """A bedside device on a serial line (USB-serial adapter, a simulator's pty, or a
    terminal server's port over TCP: ``monitor.serial_port``)."""

    kind: Literal["serial"]
    name: Name
    chair: Name
    # /dev/ttyUSB0, /dev/serial/by-id/..., a pty path, socket://host:port or rfc2217://host:port
    port: Annotated[str, AfterValidator(check_port)]
    protocol: Literal[SERIAL_PROTOCOLS]  # type: ignore[valid-type]  # the registry's names
    baudrate: int = Field(9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    device: str = ""  # device id in the record; default: the source name (or the SN sent)
    use_device_time: bool = False  # serial devices' clocks are often unset: receive time
    reconnect_max_s: float = Field(30, gt=0)
    # a terminal server's link silent this long is closed and reopened without an alarm (a
    # cut network or a rebooted terminal server sends nothing to notice); 0: never. Local
    # ports ignore it.
    link_idle_s: float = Field(60, ge=0)


def parse_endpoint(entry: str) -> tuple[str, int]:
    """A broker endpoint of an MQTT source's ``brokers``: ``host:port`` (``[::1]:1883`` for an
    IPv6 address) as (host, port). Raises ValueError naming the problem."""
    host, sep, port = entry.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{entry!r} is not host:port (e.g. \"mqtt-1.example:1883\", "
                         f"\"[fd00::7]:8883\")")
    if ":" in host and not entry.strip().startswith("["):
        raise ValueError(f"{entry!r}: write an IPv6 address in brackets, [{host}]:{port}")
    return host, int(port)


class MqttSource(Model):
    """A Mosquitto (or other MQTT) broker carrying chairside/<bay>/<chair>/vitals; or a
    clustered broker's nodes (``brokers``), between which the source fails over."""

    kind: Literal["mqtt"]
    name: Name
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    # a clustered broker: its nodes as "host:port", tried in turn (docs/mqtt.md#clustered-brokers);
    # instead of host and port
    brokers: tuple[str, ...] = ()
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

    @field_validator("brokers")
    @classmethod
    def _brokers(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            parse_endpoint(entry)
        dupes = sorted({e for e in entries if entries.count(e) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed twice")
        return entries

    @model_validator(mode="after")
    def _one_way_to_the_broker(self) -> MqttSource:
        both = sorted({"host", "port"} & self.model_fields_set)
        if self.brokers and both:
            raise ValueError(f"brokers and {' and '.join(both)} are both set: list a clustered "
                             f"broker's nodes in brokers, or name one broker with host and port")
        return self

    @property
    def endpoints(self) -> tuple[tuple[str, int], ...]:
        """The broker endpoints (host, port) in the order they are tried: ``brokers``, or
        ``host`` and ``port``."""
        if self.brokers:
            return tuple(parse_endpoint(e) for e in self.brokers)
        return ((self.host, self.port),)


class Hl7Source(Model):
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
        if loopback(self.host):
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


class BayConfig(Model):
    bay: BaySection = BaySection()
    store: StoreSection = StoreSection()
    buffers: BufferSection = BufferSection()
    alarms: AlarmSection = AlarmSection()
    display: DisplaySection = DisplaySection()
    ingest: IngestSection = IngestSection()
    dashboard: DashboardSection = DashboardSection()
    auth: AuthSection = AuthSection()
    ha: HaSection = HaSection()
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
        if self.ha.enabled and self.store.url is None:
            raise ValueError("ha: a standby needs the PostgreSQL store: set [store] url (the two "
                             "servers of a bay share its database)")
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
        """Limit profiles; ``adult`` is built in (docs/clinical.md defaults) unless redefined."""
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
