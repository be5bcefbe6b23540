"""What a notification says: a title and a message a manager understands, a link to look at,
and the key that makes it once per event (or the key its results are coalesced under)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.config.models import Characteristic
from apps.observations.models import Lot
from openspc.events import EventType

API = "/api/v1"

# What each Nelson rule's pattern means on the chart (parameters are per characteristic, so no counts).
RULES = {
    1: "a point beyond a control limit",
    2: "a run of points on one side of the centre line",
    3: "a steady trend up or down",
    4: "points alternating up and down",
    5: "points close to a control limit (beyond 2σ)",
    6: "points away from the centre on one side (beyond 1σ)",
    7: "points hugging the centre line (within 1σ)",
    8: "points avoiding the centre line on both sides",
}


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    text: str
    link: str
    dedup_key: str = ""
    coalesce_key: str = ""
    grows: bool = False  # a later message under the same dedup key updates it (a growing event)


def _label(characteristic: Characteristic | None) -> str:
    if characteristic is None:
        return "a characteristic"
    return f"{characteristic.test.code} {characteristic.test.name} of {characteristic.product.code}"


def _lot(lot: Lot | None) -> str:
    return f", lot {lot.number}" if lot is not None else ""


def _number(value: Any, decimals: int) -> str:
    return "—" if value is None else f"{float(value):.{decimals}f}"


def _acknowledged_text(data: dict[str, Any]) -> str:
    """Who acknowledged a violation or an event, why, and what they did about it."""
    who = data.get("acknowledged_by_name") or "someone"
    text = f"{who} acknowledged it (reason: {data.get('reason') or '—'})."
    if data.get("comment"):
        text += f" Comment: {data['comment']}"
    if data.get("corrective_action"):
        text += f" Corrective action: {data['corrective_action']}"
    return text


def _violation(data: dict[str, Any], characteristic: Characteristic | None, lot: Lot | None) -> Message:
    rule = int(data.get("rule") or 0)
    chart = "dispersion" if data.get("chart") == "dispersion" else "location"
    pattern = RULES.get(rule, "a pattern")
    if data["type"] == EventType.VIOLATION_ACKNOWLEDGED:
        text = _acknowledged_text(data)
        return Message(
            event=data["type"],
            title=f"Rule {rule} violation acknowledged on {_label(characteristic)}{_lot(lot)}",
            text=text,
            link=f"{API}/violations/{data['id']}/",
            dedup_key=f"violation.acknowledged:{data['id']}",
        )
    severity = data.get("severity") or "warning"
    return Message(
        event=data["type"],
        title=f"Rule {rule} violation on {_label(characteristic)}{_lot(lot)}",
        text=f"Sample {data.get('sequence')} shows {pattern} on the {chart} chart ({severity}).",
        link=f"{API}/violations/{data['id']}/",
        dedup_key=f"violation.created:{data['id']}",
    )


def _violation_event(data: dict[str, Any], characteristic: Characteristic | None, lot: Lot | None) -> Message:
    """One notification per event: started, then updated in place as it grows and when it ends."""
    rule = int(data.get("rule") or 0)
    rules = [int(r) for r in data.get("rules") or [rule]]
    named = f"Rule {rule}" if len(rules) < 2 else f"Rules {', '.join(map(str, rules))}"
    also = [r for r in rules if r != rule]
    chart = "dispersion" if data.get("chart") == "dispersion" else "location"
    link = f"{API}/violation-events/{data['id']}/"
    if data["type"] == EventType.VIOLATION_EVENT_ACKNOWLEDGED:
        text = _acknowledged_text(data)
        return Message(
            event=data["type"],
            title=f"{named} event acknowledged on {_label(characteristic)}{_lot(lot)}",
            text=text, link=link, dedup_key=f"violation_event.acknowledged:{data['id']}",
        )  # fmt: skip
    points = len(data.get("points") or [])
    span = f"samples {data.get('first_point')}–{data.get('last_point')}" if points > 1 else (
        f"sample {data.get('first_point')}"
    )  # fmt: skip
    state = "going on" if data.get("ongoing") else "ended"
    return Message(
        event=data["type"],
        title=f"{named} event, {data.get('priority') or 'medium'} priority, on "
        f"{_label(characteristic)}{_lot(lot)}",
        text=f"{RULES.get(rule, 'a pattern').capitalize()}"
        + "".join(f"; rule {r}: {RULES.get(r, 'a pattern')}" for r in also)
        + f" on the {chart} chart: {points} point{'s' if points != 1 else ''} ({span}), {state}.",
        link=link, dedup_key=f"violation_event:{data['id']}", grows=True,
    )  # fmt: skip


def _statistics(data: dict[str, Any], characteristic: Characteristic | None, lot: Lot | None) -> Message:
    decimals = characteristic.test.decimals if characteristic is not None else 3
    unit = f" {characteristic.test.unit}" if characteristic is not None and characteristic.test.unit else ""
    figures = (
        f"n = {data.get('n')}, mean {_number(data.get('mean'), decimals)}{unit}, "
        f"SD {_number(data.get('sd'), decimals + 1)}, Cpk {_number(data.get('cpk'), 2)}, "
        f"{data.get('out_of_spec') or 0} out of spec"
    )
    c = data.get("characteristic")
    if data.get("scope") == "lot":
        return Message(
            event=data["type"],
            title=f"New results on {_label(characteristic)}{_lot(lot)}",
            text=f"{figures}; disposition hint: {data.get('disposition') or 'pending'}.",
            link=f"{API}/lot-statistics/?lot={data.get('lot')}&characteristic={c}",
            coalesce_key=f"results:lot:{data.get('lot')}:{c}",
        )
    return Message(
        event=data["type"],
        title=f"Product statistics updated on {_label(characteristic)}",
        text=f"{figures}; Ppk {_number(data.get('ppk'), 2)}.",
        link=f"{API}/characteristics/{c}/chart-data/",
        coalesce_key=f"results:product:{c}",
    )


def _limits(data: dict[str, Any], characteristic: Characteristic | None) -> Message:
    decimals = characteristic.test.decimals if characteristic is not None else 3
    c, version, method = data.get("characteristic"), data.get("version"), data.get("method") or "set"
    return Message(
        event=data["type"],
        title=f"Control limits changed on {_label(characteristic)}",
        text=(
            f"Version {version} ({method}): centre {_number(data.get('center'), decimals)}, "
            f"UCL {_number(data.get('ucl'), decimals)}, LCL {_number(data.get('lcl'), decimals)}"
            + (", frozen." if data.get("frozen") else ".")
        ),
        link=f"{API}/characteristics/{c}/chart-data/",
        dedup_key=f"limits.changed:{c}:{version}",
    )


def _disposition(data: dict[str, Any], lot: Lot | None) -> Message:
    status = data.get("status") or "changed"
    product = f" of {lot.product.code}" if lot is not None else ""
    number = lot.number if lot is not None else data.get("lot")
    who = f" by {data['by_name']}" if data.get("by_name") else ""
    return Message(
        event=data["type"],
        title=f"Lot {number}{product} {status}",
        text=f"Lot {number}{product} was {status}{who}.",
        link=f"{API}/lots/{data.get('lot')}/",
        dedup_key=f"lot.disposition:{data.get('lot')}:{status}",
    )


def _spec_violated(data: dict[str, Any], characteristic: Characteristic | None, lot: Lot | None) -> Message:
    decimals = characteristic.test.decimals if characteristic is not None else 3
    unit = f" {characteristic.test.unit}" if characteristic is not None and characteristic.test.unit else ""
    lsl, usl = data.get("lsl"), data.get("usl")

    def said(value: float) -> str:
        if usl is not None and value > usl:
            return f"{_number(value, decimals)}{unit} is above the USL {_number(usl, decimals)}"
        return f"{_number(value, decimals)}{unit} is below the LSL {_number(lsl, decimals)}"

    return Message(
        event=data["type"],
        title=f"Value out of specification on {_label(characteristic)}{_lot(lot)}",
        text=f"{'; '.join(said(float(v)) for v in data.get('outside') or [])} (result {data.get('id')}).",
        link=f"/charts/{data.get('characteristic')}/",
        dedup_key=f"spec.violated:{data.get('id')}",
    )


def _spec_warning(data: dict[str, Any], characteristic: Characteristic | None, lot: Lot | None) -> Message:
    decimals = characteristic.test.decimals if characteristic is not None else 3
    near = ", ".join(_number(v, decimals) for v in data.get("near") or [])
    return Message(
        event=data["type"],
        title=f"Value near a spec limit on {_label(characteristic)}{_lot(lot)}",
        text=f"{near} is within {_number(data.get('margin'), decimals)} of a spec limit "
        f"(LSL {_number(data.get('lsl'), decimals)}, USL {_number(data.get('usl'), decimals)}; "
        f"result {data.get('id')}).",
        link=f"/charts/{data.get('characteristic')}/",
        dedup_key=f"spec.warning:{data.get('id')}",
    )


def _data_rejected(data: dict[str, Any], characteristic: Characteristic | None) -> Message:
    minutes = max(1, round(int(data.get("window_seconds") or 0) / 60))
    total = int(data.get("confirmed") or 0) + int(data.get("rejected") or 0)
    reasons = "; ".join(f"{r['message']} ({r['count']})" for r in data.get("reasons") or [])
    return Message(
        event=data["type"],
        title=f"Values of {_label(characteristic)} are being rejected",
        text=f"{data.get('rejected')} of {total} values in the last {minutes} min were rejected "
        f"({data.get('rejected_percent')} %). Reasons: {reasons or '—'}.",
        link=f"/charts/{data.get('characteristic')}/",
        dedup_key=f"data.rejected:{data.get('characteristic')}:{data.get('since')}",
    )


def _data_quiet(data: dict[str, Any], characteristic: Characteristic | None) -> Message:
    """data.stale and source.offline: the health summary says since when."""
    offline = data["type"] == EventType.SOURCE_OFFLINE
    return Message(
        event=data["type"],
        title=f"{'Data source offline' if offline else 'No data'}: {_label(characteristic)}",
        text=f"{data.get('summary')}."
        + (" The Sparkplug B node feeding it is offline." if offline else " Its schedule expects values."),
        link=f"/charts/{data.get('characteristic')}/",
        dedup_key=f"{data['type']}:{data.get('characteristic')}:{data.get('since')}",
    )


def _sample_overdue(data: dict[str, Any], characteristic: Characteristic | None, lot: Lot | None) -> Message:
    due = f"{timezone.localtime(datetime.fromisoformat(data['due_at'])):%H:%M}" if data.get("due_at") else ""
    return Message(
        event=data["type"],
        title=f"Sample overdue: {_label(characteristic)}{_lot(lot)}",
        text=f"The sample due at {due or 'its time'} was not taken within its grace time (scheduled "
        f"sample {data.get('id')}). Take it, or close it as missed with a reason.",
        link="/work/",
        dedup_key=f"sample.overdue:{data.get('id')}",
    )


def message_for(data: dict[str, Any], *, characteristic: Characteristic | None, lot: Lot | None) -> Message:
    name = data["type"]
    if name.startswith("violation_event."):
        return _violation_event(data, characteristic, lot)
    if name.startswith("violation."):
        return _violation(data, characteristic, lot)
    if name == EventType.STATISTICS_UPDATED:
        return _statistics(data, characteristic, lot)
    if name == EventType.LIMITS_CHANGED:
        return _limits(data, characteristic)
    if name == EventType.LOT_DISPOSITION:
        return _disposition(data, lot)
    if name == EventType.DATA_REJECTED:
        return _data_rejected(data, characteristic)
    if name in (EventType.DATA_STALE, EventType.SOURCE_OFFLINE):
        return _data_quiet(data, characteristic)
    if name == EventType.SPEC_VIOLATED:
        return _spec_violated(data, characteristic, lot)
    if name == EventType.SPEC_WARNING:
        return _spec_warning(data, characteristic, lot)
    if name == EventType.SAMPLE_OVERDUE:
        return _sample_overdue(data, characteristic, lot)
    raise ValueError(f"no notification for {name}")


# --- Told to people by role, without a subscription (services.DIRECT_EVENTS) ------------------------


def release_requested(data: dict[str, Any]) -> Message:
    product = f" of {data['product_code']}" if data.get("product_code") else ""
    blocking = data.get("blocking") or []
    still = f" Still blocking: {' '.join(blocking)}" if blocking else " Nothing blocks its release."
    note = f" Note: {data['note']}" if data.get("note") else ""
    return Message(
        event=data["type"],
        title=f"Release of lot {data.get('number')}{product} requested",
        text=f"{data.get('by_name') or 'An operations lead'} asks for the release of lot "
        f"{data.get('number')}.{note}{still}",
        link=f"/lots/{data.get('lot')}/",
        dedup_key=f"lot.release_requested:{data.get('request')}",
    )


def signing_locked(data: dict[str, Any]) -> Message:
    who = data.get("full_name") or data.get("username") or "A user"
    return Message(
        event=data["type"],
        title=f"Signing locked for {who}",
        text=f"{who} gave {data.get('failures')} wrong signatures; their signing is locked until "
        f"{data.get('until')}. Check whether someone else tried to sign as them.",
        link="/audit/",
        dedup_key=f"signing.locked:{data.get('user')}:{data.get('until')}",
    )
