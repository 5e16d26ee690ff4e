"""Vital-sign parameters as data: one frozen row per parameter (docs/protocols.md#parameters).

Nothing else in the project hard-codes a unit, a code or a range: adapters map wire codes
to keys through :func:`by_mdc_code`, the core validates against :attr:`Parameter.plausible`,
exports take LOINC and MDC codes from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "PARAMETERS",
    "Parameter",
    "Sampling",
    "by_key",
    "by_mdc_code",
]

# IEEE 11073 unit codes (MDC_DIM_*).
MDC_DIM_BEAT_PER_MIN = 264864
MDC_DIM_PERCENT = 262688
MDC_DIM_MMHG = 266016


class Sampling(Enum):
    CONTINUOUS = "continuous"  # about 1 Hz from the device
    INTERMITTENT = "intermittent"  # one value per NIBP cuff cycle


@dataclass(frozen=True, slots=True)
class Parameter:
    key: str
    label: str
    unit: str  # UCUM-style display unit
    ucum: str  # UCUM code (FHIR Quantity.code)
    mdc_unit: int
    mdc_codes: tuple[tuple[int, str], ...]  # (code, reference id), first is the preferred one
    loinc: tuple[str, ...]  # first is the primary code
    plausible: tuple[float, float]  # inclusive range; outside it a value is rejected
    precision: int  # decimals shown
    sampling: Sampling
    hysteresis: float  # default band before a limit alarm clears
    unit_aliases: frozenset[str]  # unit spellings accepted on the wire (lower case)

    @property
    def continuous(self) -> bool:
        return self.sampling is Sampling.CONTINUOUS

    def is_plausible(self, value: float) -> bool:
        low, high = self.plausible
        return low <= value <= high

    def format(self, value: float | None) -> str:
        return "---" if value is None else f"{value:.{self.precision}f}"


_BPM_UNITS = frozenset({"/min", "bpm", "{beats}/min", "{beat}/min", "1/min", "min-1", "/m",
                        "mdc_dim_beat_per_min", "264864"})
_PERCENT_UNITS = frozenset({"%", "percent", "mdc_dim_percent", "262688"})
_MMHG_UNITS = frozenset({"mmhg", "mm[hg]", "mdc_dim_mmhg", "266016"})

PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        key="hr", label="HR", unit="/min", ucum="/min", mdc_unit=MDC_DIM_BEAT_PER_MIN,
        mdc_codes=((147842, "MDC_ECG_HEART_RATE"), (147842, "MDC_ECG_CARD_BEAT_RATE")),
        loinc=("8867-4",), plausible=(20, 300), precision=0,
        sampling=Sampling.CONTINUOUS, hysteresis=3, unit_aliases=_BPM_UNITS,
    ),
    Parameter(
        key="pr", label="PR", unit="/min", ucum="/min", mdc_unit=MDC_DIM_BEAT_PER_MIN,
        mdc_codes=((149530, "MDC_PULS_OXIM_PULS_RATE"), (149546, "MDC_PULS_RATE_NON_INV")),
        loinc=("8889-8",), plausible=(20, 300), precision=0,
        sampling=Sampling.CONTINUOUS, hysteresis=3, unit_aliases=_BPM_UNITS,
    ),
    Parameter(
        key="spo2", label="SpO2", unit="%", ucum="%", mdc_unit=MDC_DIM_PERCENT,
        mdc_codes=((150456, "MDC_PULS_OXIM_SAT_O2"),),
        loinc=("59408-5", "2708-6"), plausible=(50, 100), precision=0,
        sampling=Sampling.CONTINUOUS, hysteresis=1, unit_aliases=_PERCENT_UNITS,
    ),
    Parameter(
        key="nibp_sys", label="NIBP sys", unit="mmHg", ucum="mm[Hg]", mdc_unit=MDC_DIM_MMHG,
        mdc_codes=((150021, "MDC_PRESS_BLD_NONINV_SYS"), (150301, "MDC_PRESS_CUFF_SYS")),
        loinc=("8480-6",), plausible=(40, 300), precision=0,
        sampling=Sampling.INTERMITTENT, hysteresis=5, unit_aliases=_MMHG_UNITS,
    ),
    Parameter(
        key="nibp_dia", label="NIBP dia", unit="mmHg", ucum="mm[Hg]", mdc_unit=MDC_DIM_MMHG,
        mdc_codes=((150022, "MDC_PRESS_BLD_NONINV_DIA"), (150302, "MDC_PRESS_CUFF_DIA")),
        loinc=("8462-4",), plausible=(15, 200), precision=0,
        sampling=Sampling.INTERMITTENT, hysteresis=5, unit_aliases=_MMHG_UNITS,
    ),
    Parameter(
        key="nibp_map", label="NIBP MAP", unit="mmHg", ucum="mm[Hg]", mdc_unit=MDC_DIM_MMHG,
        mdc_codes=((150023, "MDC_PRESS_BLD_NONINV_MEAN"), (150303, "MDC_PRESS_CUFF_MEAN")),
        loinc=("8478-0",), plausible=(25, 250), precision=0,
        sampling=Sampling.INTERMITTENT, hysteresis=5, unit_aliases=_MMHG_UNITS,
    ),
)

_BY_KEY = {p.key: p for p in PARAMETERS}
_BY_MDC = {code: p for p in PARAMETERS for code, _ in p.mdc_codes}


def by_key(key: str) -> Parameter | None:
    return _BY_KEY.get(key)


def by_mdc_code(code: int) -> Parameter | None:
    return _BY_MDC.get(code)
