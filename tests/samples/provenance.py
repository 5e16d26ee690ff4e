"""Where each sample came from: a :class:`Sample` is the sample's text (a ``str``, so the
tests use it as they would the plain text) carrying its :class:`Provenance`.

Kinds (tests/samples/README.md):

``capture``
    bytes a real device or gateway sent, as published by someone who captured them (a public
    repository's log, test data or comment); ``url`` says where, ``licence`` under what terms.
``vendor_doc``
    an example printed in the maker's own documentation (operator or service manual,
    interface specification), possibly quoted by a public repository (``url``).
``spec``
    an example from a public interface specification (IHE, HL7, this project's own contract
    in docs/protocols.md).
``synthetic``
    written for Chairside; ``source`` names what it was written after (a manual's layout, a
    specification's section, a capture) and what was made up.

``tests/test_samples.py`` fails for a sample without one, and for a capture or vendor example
without the address it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["KINDS", "Provenance", "Sample", "capture", "spec", "synthetic", "vendor_doc"]

Kind = Literal["capture", "vendor_doc", "spec", "synthetic"]
KINDS: tuple[str, ...] = ("capture", "vendor_doc", "spec", "synthetic")


@dataclass(frozen=True, slots=True)
class Provenance:
    kind: Kind
    source: str  # what it came from, or what a synthetic sample was written after
    url: str = ""  # where it was published (a commit-pinned address where there is one)
    licence: str = ""  # the terms it was published under, as far as known
    changed: str = ""  # what was changed from the source (e.g. "joined two comment lines")


class Sample(str):
    """A sample's text with its provenance. Behaves as the ``str`` it is."""

    provenance: Provenance

    def __new__(cls, text: str, provenance: Provenance) -> Sample:
        self = super().__new__(cls, text)
        self.provenance = provenance
        return self


def synthetic(after: str, made_up: str = "identifiers, dates and values") -> Provenance:
    return Provenance("synthetic", f"written for Chairside after {after}; made up: {made_up}")


def capture(source: str, url: str, licence: str, changed: str = "") -> Provenance:
    return Provenance("capture", source, url, licence, changed)


def vendor_doc(source: str, url: str = "", licence: str = "", changed: str = "") -> Provenance:
    return Provenance("vendor_doc", source, url, licence, changed)


def spec(source: str, url: str = "", licence: str = "") -> Provenance:
    return Provenance("spec", source, url, licence)
