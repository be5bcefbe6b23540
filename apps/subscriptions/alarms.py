"""What keeps alarm notifications within what a person can handle (issue #21, docs/alarms.md): the
hourly budget per user with "N more alarms" folding (EEMUA 191), and shelving (ISA-18.2), applied
to the fan-out's drafts before they are stored."""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from apps.calculations.services.shelving import characteristics_shelved
from apps.subscriptions.drafts import Draft
from apps.subscriptions.models import Notification
from openspc.events import EventType

ALARM_EVENTS = (
    EventType.VIOLATION_EVENT_UPDATED,
    EventType.DATA_REJECTED,
    EventType.DATA_STALE,
    EventType.SOURCE_OFFLINE,
    EventType.SPEC_VIOLATED,
    EventType.SPEC_WARNING,
    EventType.SAMPLE_OVERDUE,
)
FOLDED_KEY = "alarms.folded"
FOLDED_LISTED = 5  # the latest folded alarms' titles a folded notification lists
FOLDED_KEYS_KEPT = 1000  # the folded alarms it remembers, so that one growing is not counted twice


def within_alarm_budget(drafts: list[Draft]) -> tuple[list[Draft], dict[int, list[Draft]]]:
    """The drafts to store, and per user the new alarm notifications past their hourly budget
    (NOTIFICATION_ALARMS_PER_HOUR), to be folded. An alarm already notified (a growing event) is
    never held back: it updates what the user has. Queries only when there are new alarms."""
    alarms = [d for d in drafts if d.message.event in ALARM_EVENTS]
    if not alarms:
        return drafts, {}
    users = {d.subscription.user_id for d in alarms}
    known = set(
        Notification.objects.filter(user__in=users, dedup_key__in={d.message.dedup_key for d in alarms})
        .values_list("user_id", "dedup_key")
    )  # fmt: skip
    recent = (
        Notification.objects.filter(
            user__in=users, event__in=ALARM_EVENTS, created_at__gte=timezone.now() - timedelta(hours=1)
        )
        .values("user")
        .annotate(n=Count("id"))
        .values_list("user", "n")
        .order_by()
    )
    used = dict(recent)
    kept: list[Draft] = []
    folded: dict[int, list[Draft]] = defaultdict(list)
    for draft in drafts:
        user = draft.subscription.user_id
        if draft.message.event not in ALARM_EVENTS or draft.key in known:
            kept.append(draft)
        elif used.get(user, 0) < settings.NOTIFICATION_ALARMS_PER_HOUR:
            used[user] = used.get(user, 0) + 1
            kept.append(draft)
        else:
            folded[user].append(draft)
    return kept, folded


def store_folded(folded: dict[int, list[Draft]]) -> list[Notification]:
    """Add each user's held-back alarms to their unread "N more alarms" notification (one per
    user, updated in place), or start one."""
    rows = []
    for user, drafts in folded.items():
        current = (
            Notification.objects.select_for_update()
            .filter(user=user, coalesce_key=FOLDED_KEY, read_at__isnull=True)
            .first()
        )
        before = dict(current.data) if current is not None else {}
        # An alarm folded before that grows (the same event) is not counted again.
        seen = list(before.get("keys", []))
        new = {d.message.dedup_key: d for d in drafts if d.message.dedup_key not in seen}
        if not new:
            continue
        keys = [*seen, *new][-FOLDED_KEYS_KEPT:]
        count = int(before.get("count", 0)) + len(new)
        titles = [*[d.message.title for d in new.values()], *before.get("titles", [])][:FOLDED_LISTED]
        limit = settings.NOTIFICATION_ALARMS_PER_HOUR
        data = {"count": count, "titles": titles, "limit": limit, "keys": keys}
        title = f"{count} more alarm{'s' if count != 1 else ''} this hour"
        text = (
            f"You get at most {limit} new alarm notifications an hour; these were folded here. "
            f"Latest: {'; '.join(titles)}."
        )
        link = "/api/v1/violation-events/?acknowledged=false"
        if current is None:
            current = Notification.objects.create(
                user_id=user, subscription=drafts[0].subscription, event="alarms.folded", title=title[:200],
                message=text, link=link, data=data, coalesce_key=FOLDED_KEY,
            )  # fmt: skip
        else:
            current.title, current.message, current.data = title[:200], text, data
            current.save(update_fields=["title", "message", "data", "updated_at"])
        rows.append(current)
    return rows


SHELVED_KINDS = ("violation", "spec.")  # what a shelf silences: rule violations, events, spec alarms


def alarms_not_shelved(drafts: list[Draft]) -> list[Draft]:
    """Leave out what a characteristic whose alarms are shelved would tell (ISA-18.2 shelving):
    its violations, events and spec alarms notify nobody. A query only when there are alarms."""
    alarms = {d.data.get("characteristic") for d in drafts if d.message.event.startswith(SHELVED_KINDS)}
    shelved = characteristics_shelved(ids={pk for pk in alarms if pk})
    return [
        d
        for d in drafts
        if not (d.message.event.startswith(SHELVED_KINDS) and d.data.get("characteristic") in shelved)
    ]
