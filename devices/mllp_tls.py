"""Who may talk to an HL7 listener: MLLP over TLS and the per-listener allow-list.

- :func:`server_context` builds the listener's TLS context from its configuration
  (certificate chain and key, TLS 1.2 or 1.3 at least, and, with ``tls_client_ca``, a
  client certificate signed by that CA required of every peer).
- a gateway's (the simulators', the tests') context is
  :func:`simulators.mllp_client.client_context`: the CA
  that signed the listener's certificate, and optionally the client certificate and key.
- :class:`PeerPolicy` applies ``allow``: address and network entries are checked when a
  connection is accepted (before any byte of it is read), certificate subject entries once
  its TLS handshake is done. With entries of both kinds a peer must match one of each.

Pure except for reading the certificate files.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from typing import Any

from monitor.config import SUBJECT_KEYS, Hl7Source, parse_allow_entry

__all__ = ["PeerPolicy", "describe_subject", "server_context"]

_SHORT = {v: k for k, v in SUBJECT_KEYS.items()}
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def server_context(config: Hl7Source) -> ssl.SSLContext | None:
    """The listener's TLS context, None without ``tls_cert``. Raises ValueError naming the
    key and the file that cannot be used."""
    if config.tls_cert is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[config.tls_min_version]
    key = "tls_key" if config.tls_key is not None else "tls_cert"
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls_cert {config.tls_cert} / {key} {config.tls_key or config.tls_cert}: "
                         f"cannot load the certificate and its key: {exc}") from None
    if config.tls_client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=config.tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"tls_client_ca {config.tls_client_ca}: cannot load: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def describe_subject(cert: dict[str, Any] | None) -> str:
    """A peer certificate's subject as ``CN=gateway-1,O=Hospital`` ("" without one)."""
    if not cert:
        return ""
    return ",".join(f"{_SHORT.get(k, k)}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)


@dataclass(frozen=True, slots=True)
class PeerPolicy:
    networks: tuple[Network, ...] = ()
    subjects: tuple[tuple[tuple[str, str], ...], ...] = ()

    @classmethod
    def from_config(cls, config: Hl7Source) -> PeerPolicy:
        parsed = [parse_allow_entry(e) for e in config.allow]
        return cls(tuple(p for p in parsed if not isinstance(p, tuple)),
                   tuple(p for p in parsed if isinstance(p, tuple)))

    def address_allowed(self, host: str) -> bool:
        """Whether a peer at ``host`` may connect (always, without address entries)."""
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def subject_allowed(self, cert: dict[str, Any] | None) -> bool:
        """Whether a peer with this (verified) certificate may send (always, without subject
        entries): its subject has every attribute of one entry."""
        if not self.subjects:
            return True
        if not cert:
            return False
        have = {(k, v) for rdn in cert.get("subject", ()) for k, v in rdn}
        return any(all(pair in have for pair in entry) for entry in self.subjects)
