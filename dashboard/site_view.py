"""The site view's view model: every string and class of every bay's card, as one flat dict
of strings keyed ``"<bay>|<field>"`` (and ``as_of``), the shape the push channel sends
(only what changed) and ``assets/site.js`` writes into the elements marked ``data-sf``.

The card's alarm classes are the bay tile's (``dashboard.bay_view.tile_view``): ``alarm-<top
priority>``, ``flash-high``/``flash-medium`` while an alarm at the top priority waits for a
nurse, ``acked`` once all at the top are acknowledged, ``tech`` when all at the top are
technical. Pure: summaries and a time in, strings out.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.formatting import fmt_age, fmt_clock
from monitor.records import Priority
from monitor.site import BaySummary

__all__ = ["CARD_FIELDS", "card_class", "card_view", "site_view"]

#: A card's live fields: (field, property) as in ``dashboard.bay_view.TILE_FIELDS``.
CARD_FIELDS: tuple[tuple[str, str], ...] = (
    ("card", "className"), ("status", "children"), ("status", "className"),
    ("chairs", "children"),
    ("high", "children"), ("high", "className"), ("medium", "children"), ("medium", "className"),
    ("low", "children"), ("low", "className"),
    ("tech", "children"), ("tech", "className"), ("oldest", "children"), ("oldest", "className"),
)


def card_class(s: BaySummary) -> str:
    """The card's classes: the bay tile's alarm classes over every open alarm of the bay."""
    if not s.reachable:
        return "site-card unreachable"
    # (priority, technical, waiting) of every open alarm, clinical from the counts
    alarms = [(p, False, i < s.clinical_unacknowledged[p]) for p, n in s.clinical.items() for i in range(n)]
    alarms += [(t.priority, True, not t.acknowledged) for t in s.technical]
    cls = "site-card"
    if alarms:
        top = max(p for p, _, _ in alarms)
        at_top = [a for a in alarms if a[0] is top]
        cls += f" alarm-{top.label}"
        if any(waiting for _, _, waiting in at_top):
            cls += f" flash-{top.label}" if top is not Priority.LOW else ""
        else:
            cls += " acked"
        if all(tech for _, tech, _ in at_top):
            cls += " tech"
    return cls


def card_view(s: BaySummary, now: float) -> dict[str, str]:
    """One card's strings and classes (``_cls`` suffix: a class)."""
    out = {"card_cls": card_class(s)}
    if not s.reachable:
        out |= {"status": f"UNREACHABLE: {s.error}", "status_cls": "site-status unreachable",
                "chairs": "", "tech": "", "tech_cls": "site-tech none", "oldest": "",
                "oldest_cls": "site-oldest none"}
        for p in Priority:
            out[p.label], out[f"{p.label}_cls"] = "–", f"site-count prio-{p.label} none"
        return out
    out["status"], out["status_cls"] = "", "site-status"
    out["chairs"] = f"{s.chairs_in_use} chair{'s' if s.chairs_in_use != 1 else ''} in use"
    for p in Priority:
        n = s.clinical[p]
        out[p.label] = f"{p.marker} {n}"
        out[f"{p.label}_cls"] = f"site-count prio-{p.label}" + (" zero" if not n else "")
    if s.technical:
        out["tech"] = "Technical: " + "; ".join(f"{t.chair} {t.priority.marker} {t.message}"
                                                 for t in s.technical)
        out["tech_cls"] = "site-tech"
    else:
        out["tech"], out["tech_cls"] = "No technical problems", "site-tech none"
    o = s.oldest_unacknowledged
    if o is None:
        out["oldest"], out["oldest_cls"] = "No alarm waiting", "site-oldest none"
    else:
        waited = fmt_age(now - o.since)
        out["oldest"] = f"Waiting longest: {o.chair} {o.priority.marker} {o.message}, {waited} ago"
        out["oldest_cls"] = f"site-oldest prio-{o.priority.label}"
    return out


def site_view(summaries: Sequence[BaySummary], now: float) -> dict[str, str]:
    """The whole site for one moment: every card's fields, and the time it shows."""
    view = {"as_of": f"As of {fmt_clock(now)}"}
    for s in summaries:
        for key, value in card_view(s, now).items():
            view[f"{s.ref.id}|{key}"] = value
    return view
