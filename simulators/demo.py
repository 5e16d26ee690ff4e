"""A demonstration bay: simulated patients on every chair, fed straight into the core.

Used by ``chairside demo`` (headless: prints the bay once a second) until the dashboard
serves it, and by tests and benchmarks that need a bay full of plausible data.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import BayConfig, parse_config
from monitor.readings import QualityFlag, Reading
from simulators.patient import Effect, PatientModel

__all__ = ["DemoBay", "demo_config"]

PRESETS = ("magnesium", "ketamine", "dhe", "antiemetic", "fluids")

#: What happens in the demo, by chair index (simulated seconds from the start).
DEMO_EVENTS: dict[int, list[Effect]] = {
    1: [Effect(45, 120, "spo2", -11, 15)],  # a desaturation episode
    2: [Effect(0, 3600, "nibp_sys", -45, 0)],  # hypotension on magnesium
    3: [Effect(60, 300, "hr", 55, 30)],  # tachycardia with ketamine
    4: [Effect(90, 40, "*", flags=QualityFlag.SENSOR_OFF, no_value=True)],  # sensor off
}


def demo_config(chairs: int, store_path: str) -> BayConfig:
    return parse_config({
        "bay": {"id": "demo", "name": "Demo infusion bay"},
        "store": {"path": store_path},
        "chairs": [{"id": f"c{i:02d}", "label": f"Chair {i}"} for i in range(1, chairs + 1)],
    }, "<demo>")


@dataclass
class DemoBay:
    config: BayConfig
    start: float  # UNIX time of simulated second 0
    seed: int = 7
    nibp_interval_s: float = 300.0  # short, so the demo shows a few cuff cycles

    def __post_init__(self) -> None:
        self.models = {
            chair.id: PatientModel(seed=self.seed * 1000 + i, nibp_interval_s=self.nibp_interval_s,
                                   effects=DEMO_EVENTS.get(i, []))
            for i, chair in enumerate(self.config.chairs)
        }

    def readings(self, sim_t: float, receive_time: float) -> list[Reading]:
        """Every chair's readings for simulated second ``sim_t``."""
        out = []
        for chair, model in self.models.items():
            sample = model.sample(sim_t)
            values = dict(sample.values)
            bp = model.nibp(sim_t)
            if bp:
                values.update(bp)
            seq = int(sim_t)
            for key, value in values.items():
                device = f"sim-{chair}-{'nibp' if key.startswith('nibp') else 'ox'}"
                out.append(Reading(chair, key, value, self.start + sim_t, receive_time, device,
                                   seq, sample.flags))
        return out

    def preset_for(self, index: int) -> str:
        return PRESETS[index % len(PRESETS)]
