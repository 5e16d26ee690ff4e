"""What a serial source's ``port`` may name: a local device path, or a serial port served
over the network by a terminal server (Moxa NPort, Lantronix, ser2net), as a pyserial URL.

Checked here, at load time, so a typo in the bay's file is a configuration error naming the
key instead of a source that retries a URL pyserial can never open. Only the two URL
schemes a terminal server speaks are accepted:

- ``socket://host:port``: the raw TCP server mode. Bytes only: the baud rate, framing and
  parity are set on the terminal server itself, the source's settings are not sent.
- ``rfc2217://host:port``: Telnet with the RFC 2217 COM port control: the source's baud
  rate, byte size, parity and stop bits are set on the remote port. Options pyserial takes
  after ``?``: ``ign_set_control`` (a server that never answers modem-control requests),
  ``poll_modem``, ``timeout=<seconds>`` (how long to wait for the server's answers).

pyserial's other handlers (``loop://``, ``spy://``, ``hwgrep://``, ``alt://``, ``cp2110://``)
are for testing or local discovery, not for a bedside device, and are refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["NETWORK_SCHEMES", "check_port", "is_network_port"]

NETWORK_SCHEMES = ("socket", "rfc2217")
_RFC2217_FLAGS = {"ign_set_control", "poll_modem"}


def is_network_port(port: str) -> bool:
    """True for a terminal server's URL, False for a local device path."""
    return "://" in port


def check_port(port: str) -> str:
    """``port`` unchanged when usable; else ValueError saying what is wrong with it."""
    if not port.strip():
        raise ValueError("must be a device path (/dev/serial/by-id/...) or a terminal "
                         "server's URL (socket://host:port, rfc2217://host:port)")
    if not is_network_port(port):
        return port
    parts = urlsplit(port)
    scheme = parts.scheme.lower()
    if scheme not in NETWORK_SCHEMES:
        raise ValueError(f"{port!r}: unsupported scheme {parts.scheme!r}: use socket://host:port "
                         f"(raw TCP) or rfc2217://host:port (RFC 2217) for a terminal server")
    if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{port!r}: a terminal server's URL is {scheme}://host:port only")
    if not parts.hostname:
        raise ValueError(f"{port!r}: the host is missing ({scheme}://host:port)")
    try:
        number = parts.port
    except ValueError:
        number = -1
    if number is None:
        raise ValueError(f"{port!r}: the TCP port number is missing ({scheme}://host:port)")
    if not 1 <= number <= 65535:
        raise ValueError(f"{port!r}: the TCP port must be a number from 1 to 65535")
    _check_options(port, scheme, parts.query)
    return port


def _check_options(port: str, scheme: str, query: str) -> None:
    if not query:
        return
    if scheme == "socket":
        raise ValueError(f"{port!r}: socket:// takes no options (after '?')")
    for option in query.split("&"):
        key, sep, value = option.partition("=")
        if key in _RFC2217_FLAGS and not sep:
            continue
        if key == "timeout" and sep:
            try:
                ok = float(value) > 0
            except ValueError:
                ok = False
            if ok:
                continue
            raise ValueError(f"{port!r}: timeout must be a number of seconds above 0")
        raise ValueError(f"{port!r}: unknown rfc2217 option {option!r} (ign_set_control, "
                         f"poll_modem or timeout=<seconds>)")
