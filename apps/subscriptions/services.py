"""Writes: a user's own subscriptions, reading notifications, the fan-out of calculation events
into notifications, and the e-mail digest.

The fan-out (`notifications_fanout`) is fed by the `subscriptions.fanout` task, which
openspc.events sends once per channel-layer send. For each event it finds the
subscriptions whose scope covers it (a product: its characteristics' and lots' events; a test:
its characteristics in any product; a lot: that lot's; a characteristic: its own) and whose kinds
include it, and makes one notification per user per event however many subscriptions match.

Redelivery adds nothing: a discrete event (a violation, a limits version, a disposition) has a
dedup key, unique per user. Results are coalesced: a lot's (or a product's) statistics of one
characteristic update the user's unread notification for them instead of adding one per
calculation run; once read, the next update makes a new one. An older or repeated update is
ignored (the event timestamp decides), so a redelivered task changes nothing.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.config.models import Characteristic
from apps.observations.models import Lot
from apps.subscriptions import messages
from apps.subscriptions.alarms import alarms_not_shelved, store_folded, within_alarm_budget
from apps.subscriptions.choices import SubscriptionEvent, SubscriptionScope
from apps.subscriptions.drafts import Draft
from apps.subscriptions.models import Notification, Subscription
from apps.subscriptions.selectors import SCOPE_MODELS, subscription_target_readable, subscriptions_concerned
from openspc.api import Conflict
from openspc.events import EventType, event, events_send, events_send_on_commit
from openspc.kept import generation_changed, kept_one
from openspc.roles import Role

logger = logging.getLogger(__name__)

# The channel-layer events that make notifications, and the kind a subscription names them by.
EVENT_KINDS: dict[str, str] = {
    EventType.VIOLATION_CREATED: SubscriptionEvent.VIOLATIONS,
    EventType.VIOLATION_ACKNOWLEDGED: SubscriptionEvent.VIOLATIONS,
    EventType.VIOLATION_EVENT_UPDATED: SubscriptionEvent.VIOLATIONS,
    EventType.VIOLATION_EVENT_ACKNOWLEDGED: SubscriptionEvent.VIOLATIONS,
    EventType.STATISTICS_UPDATED: SubscriptionEvent.RESULTS,
    EventType.LIMITS_CHANGED: SubscriptionEvent.LIMITS,
    EventType.LOT_DISPOSITION: SubscriptionEvent.DISPOSITION,
    EventType.DATA_REJECTED: SubscriptionEvent.DATA_HEALTH,
    EventType.DATA_STALE: SubscriptionEvent.DATA_HEALTH,
    EventType.SOURCE_OFFLINE: SubscriptionEvent.DATA_HEALTH,
    EventType.SPEC_VIOLATED: SubscriptionEvent.SPEC,
    EventType.SPEC_WARNING: SubscriptionEvent.SPEC,
    EventType.SAMPLE_OVERDUE: SubscriptionEvent.SCHEDULE,
}

# The kinds each scope can hear: limits belong to characteristics (no lot has its own), a
# disposition to a lot (no test or characteristic has one).
SCOPE_KINDS: dict[str, frozenset[str]] = {
    SubscriptionScope.PRODUCT: frozenset(SubscriptionEvent.values),
    SubscriptionScope.TEST: frozenset({"results", "violations", "limits", "data_health", "spec", "schedule"}),
    SubscriptionScope.LOT: frozenset({"results", "violations", "disposition", "spec", "schedule"}),
    SubscriptionScope.CHARACTERISTIC: frozenset(
        {"results", "violations", "limits", "data_health", "spec", "schedule"}
    ),
}
# Events told to people by role, with no subscription: a release request to whoever approves lot
# dispositions, a locked signing to the quality specialists (who look after the signatures).
DIRECT_EVENTS: dict[str, Callable[[dict[str, Any]], messages.Message]] = {
    EventType.LOT_RELEASE_REQUESTED: messages.release_requested,
    EventType.SIGNING_LOCKED: messages.signing_locked,
}
APPROVE_LOT_DISPOSITION = ("records", "approve_lotdisposition")
# The generation (openspc.kept) of the subscriptions: replaced by every write of one.
GENERATION = "subscriptions"
TARGET_FIELDS = ("product", "test", "lot", "characteristic")
UPDATABLE = ("events", "email", "active")


# --- Subscriptions --------------------------------------------------------------------------------


def _kinds_load(keys: Sequence[str]) -> dict[str, frozenset[str]]:
    lists = Subscription.objects.filter(active=True).values_list("events", flat=True)
    return {key: frozenset(kind for kinds in lists for kind in kinds) for key in keys}


def event_types_heard() -> frozenset[str]:
    """The event types someone hears now: those of the kinds some active subscription names, and
    those told by role. Kept in each process until a subscription is written (openspc.kept): the
    calculation asks on every commit."""
    kinds = kept_one(GENERATION, "kinds", "active", _kinds_load) or frozenset()
    return frozenset(t for t, kind in EVENT_KINDS.items() if kind in kinds) | frozenset(DIRECT_EVENTS)


def subscription_written(sender: type[Subscription], **kwargs: Any) -> None:
    """post_save and post_delete of a subscription."""
    generation_changed(GENERATION)


def _events_clean(scope: str, events: Any) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationError({"events": f"Give a non-empty list of: {', '.join(SubscriptionEvent.values)}."})
    unknown = sorted(set(events) - set(SubscriptionEvent.values))
    if unknown:
        raise ValidationError(
            {"events": f"Unknown kind(s) {', '.join(unknown)}; use {', '.join(SubscriptionEvent.values)}."}
        )
    unheard = sorted(set(events) - SCOPE_KINDS[scope])
    if unheard:
        raise ValidationError(
            {"events": f"A {scope} subscription hears no {', '.join(unheard)} events; "
             f"it can have {', '.join(sorted(SCOPE_KINDS[scope]))}."}
        )  # fmt: skip
    return [kind for kind in SubscriptionEvent.values if kind in events]  # canonical order, no repeats


def _email_clean(user: User, email: bool) -> bool:
    if email and not user.email:
        raise ValidationError(
            {"email": "Your account has no e-mail address; ask an administrator to add one."}
        )
    return email


def subscription_create(
    *,
    user: User,
    scope: str,
    product: int | None = None,
    test: int | None = None,
    lot: int | None = None,
    characteristic: int | None = None,
    events: list[str] | None = None,
    email: bool = False,
    active: bool = True,
) -> Subscription:
    """Subscribe `user` (the authenticated one) to one target they may read."""
    if scope not in SubscriptionScope.values:
        raise ValidationError({"scope": f"Scope must be one of {', '.join(SubscriptionScope.values)}."})
    targets = {"product": product, "test": test, "lot": lot, "characteristic": characteristic}
    extra = {name: value for name, value in targets.items() if name != scope and value is not None}
    if extra:
        raise ValidationError(
            {name: f"A {scope} subscription names only its {scope}; leave {name} out." for name in extra}
        )
    target_id = targets[scope]
    if target_id is None:
        raise ValidationError({scope: f"A {scope} subscription needs a {scope} (its id)."})
    target = subscription_target_readable(user=user, scope=scope, target_id=target_id)
    if target is None:
        name = SCOPE_MODELS[scope]._meta.verbose_name
        raise ValidationError(
            {scope: f"{str(name).capitalize()} {target_id} does not exist or you may not read it."}
        )
    kinds = _events_clean(scope, events if events is not None else [SubscriptionEvent.VIOLATIONS.value])
    existing = Subscription.objects.filter(user=user, scope=scope, **{scope: target_id}).first()
    if existing is not None:
        raise Conflict(
            f"You already subscribe to this {scope} (subscription {existing.pk}); change its events instead."
        )
    return Subscription.objects.create(
        user=user,
        scope=scope,
        events=kinds,
        email=_email_clean(user, email),
        active=active,
        **{scope: target},
    )


def subscription_update(*, subscription: Subscription, data: dict[str, Any]) -> Subscription:
    """Change what a subscription hears and how; its scope and target stay (subscribe anew instead)."""
    fixed = sorted(set(data) - set(UPDATABLE))
    if fixed:
        message = "The scope and target of a subscription cannot change; delete it and subscribe again."
        raise ValidationError(dict.fromkeys(fixed, message))
    if "events" in data:
        subscription.events = _events_clean(subscription.scope, data["events"])
    if "email" in data:
        subscription.email = _email_clean(subscription.user, bool(data["email"]))
    if "active" in data:
        subscription.active = bool(data["active"])
    subscription.save(update_fields=[name for name in UPDATABLE if name in data])
    return subscription


def subscription_delete(*, subscription: Subscription) -> None:
    """Its notifications stay in the inbox (they point at nothing any more)."""
    subscription.delete()


# --- The inbox -----------------------------------------------------------------------------------


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        unread_push_on_commit([notification.user_id])
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    marked = Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
    if marked:
        unread_push_on_commit([user.pk])
    return marked


def unread_push_on_commit(user_ids: Iterable[int]) -> None:
    """`notifications.unread` ({"unread": n}) to each user's group once the change is committed:
    every open page keeps its badge from this, never by asking (issue #21: pages asked for the
    count about 4 times a second under a burst). One COUNT for all the users, after commit."""
    users = sorted(set(user_ids))
    if not users:
        return

    def push() -> None:
        unread = Notification.objects.filter(user__in=users, read_at__isnull=True).order_by()
        counts = dict(unread.values("user").annotate(n=Count("id")).values_list("user", "n"))
        events_send(
            [
                event(EventType.NOTIFICATIONS_UNREAD, [f"user.{user}"], unread=counts.get(user, 0))
                for user in users
            ]
        )

    transaction.on_commit(push)


def notification_data(notification: Notification) -> dict[str, Any]:
    """What `notification.created` carries (and the API shows)."""
    return {
        "id": notification.pk,
        "event": notification.event,
        "title": notification.title,
        "message": notification.message,
        "link": notification.link,
        "data": notification.data,
        "created_at": notification.created_at.isoformat(),
        "read": notification.read_at is not None,
    }


def notifications_push_on_commit(notifications: Iterable[Notification]) -> None:
    """`notification.created` to each user's group, after commit. An updated (coalesced) one is
    pushed again under its id: clients replace what they hold by id."""
    notifications = list(notifications)
    events_send_on_commit(
        [
            event(EventType.NOTIFICATION_CREATED, [f"user.{n.user_id}"], notification=notification_data(n))
            for n in notifications
        ]
    )
    unread_push_on_commit(n.user_id for n in notifications)


# --- The fan-out ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Anchor:
    """Where an event happened: what a subscription's scope is compared with."""

    characteristic: Characteristic | None
    lot: Lot | None

    @property
    def product_id(self) -> int | None:
        if self.characteristic is not None:
            return self.characteristic.product_id
        return self.lot.product_id if self.lot is not None else None

    @property
    def test_id(self) -> int | None:
        return self.characteristic.test_id if self.characteristic is not None else None


def _covers(subscription: Subscription, name: str, anchor: _Anchor) -> bool:
    if EVENT_KINDS[name] not in subscription.events:
        return False
    match subscription.scope:
        case SubscriptionScope.PRODUCT:
            return anchor.product_id is not None and anchor.product_id == subscription.product_id
        case SubscriptionScope.TEST:
            return anchor.test_id is not None and anchor.test_id == subscription.test_id
        case SubscriptionScope.LOT:
            return anchor.lot is not None and anchor.lot.pk == subscription.lot_id
        case SubscriptionScope.CHARACTERISTIC:
            return (
                anchor.characteristic is not None
                and anchor.characteristic.pk == subscription.characteristic_id
            )
    return False


def _anchors(events: Sequence[dict[str, Any]]) -> list[_Anchor]:
    characteristic_ids = {e["characteristic"] for e in events if e.get("characteristic")}
    lot_ids = {e["lot"] for e in events if e.get("lot")}
    characteristics = Characteristic.objects.select_related("product", "test").in_bulk(characteristic_ids)
    lots = Lot.objects.select_related("product").in_bulk(lot_ids)
    return [_Anchor(characteristics.get(e.get("characteristic")), lots.get(e.get("lot"))) for e in events]


def _drafts(events: Sequence[dict[str, Any]]) -> list[Draft]:
    """One draft per user and event (or coalesce key), from the first matching subscription,
    preferring one that e-mails."""
    subscriptions = list(
        subscriptions_concerned(
            characteristics={e["characteristic"] for e in events if e.get("characteristic")},
            lots={e["lot"] for e in events if e.get("lot")},
        )
    )
    if not subscriptions:
        return []
    anchors = _anchors(events)
    drafts: dict[tuple[int, str], Draft] = {}
    for data, anchor in zip(events, anchors, strict=True):
        if anchor.characteristic is None and anchor.lot is None:
            continue  # its characteristic or lot is gone
        matching = [s for s in subscriptions if _covers(s, data["type"], anchor)]
        if not matching:
            continue
        message = messages.message_for(data, characteristic=anchor.characteristic, lot=anchor.lot)
        stored = {key: value for key, value in data.items() if key != "type"}
        for subscription in matching:
            draft = Draft(subscription, message, stored)
            held = drafts.get(draft.key)
            if held is None:
                drafts[draft.key] = draft
                continue
            if message.coalesce_key or message.grows:  # a later update of the same: its figures win
                held.message, held.data = message, stored
            if subscription.email and not held.subscription.email:
                held.subscription = subscription
    return list(drafts.values())


def _store_discrete(drafts: Sequence[Draft]) -> list[Notification]:
    """Insert the notifications not there yet; a unique (user, dedup key) makes a race harmless."""
    if not drafts:
        return []
    users = {d.subscription.user_id for d in drafts}
    keys = {d.message.dedup_key for d in drafts}
    existing = set(
        Notification.objects.filter(user__in=users, dedup_key__in=keys).values_list("user_id", "dedup_key")
    )
    new = [d for d in drafts if d.key not in existing]
    if not new:
        return []
    Notification.objects.bulk_create([d.row() for d in new], ignore_conflicts=True)
    wanted = {d.key for d in new}
    rows = Notification.objects.filter(
        user__in={d.subscription.user_id for d in new}, dedup_key__in={d.message.dedup_key for d in new}
    ).order_by("id")
    return [row for row in rows if (row.user_id, row.dedup_key) in wanted]


def _store_grown(drafts: Sequence[Draft]) -> list[Notification]:
    """Update the notifications of growing events in place (read or not: the inbox shows the
    event's latest state, and growth alone does not make it unread again)."""
    if not drafts:
        return []
    by_key = {d.key: d for d in drafts}
    rows = Notification.objects.select_for_update().filter(
        user__in={d.subscription.user_id for d in drafts}, dedup_key__in={d.message.dedup_key for d in drafts}
    )
    grown = []
    for row in rows.order_by("id"):
        draft = by_key.get((row.user_id, row.dedup_key))
        if draft is None or not _newer(draft.data, row.data):
            continue
        m = draft.message
        row.title, row.message, row.data = m.title[:200], m.text, draft.data
        row.save(update_fields=["title", "message", "data", "updated_at"])
        grown.append(row)
    return grown


def _newer(data: dict[str, Any], than: dict[str, Any]) -> bool:
    try:
        return datetime.fromisoformat(data["timestamp"]) > datetime.fromisoformat(than["timestamp"])
    except (KeyError, TypeError, ValueError):
        return True


def _store_coalesced(draft: Draft) -> Notification | None:
    """Update the user's unread notification for these results, or start one. None: nothing new."""
    user_id, key = draft.key
    for _ in range(2):
        current = (
            Notification.objects.select_for_update()
            .filter(user=user_id, coalesce_key=key, read_at__isnull=True)
            .first()
        )
        if current is None:
            try:
                with transaction.atomic():
                    return Notification.objects.create(**_fields(draft.row()))
            except IntegrityError:
                continue  # a concurrent fan-out started it first: update that one
        if not _newer(draft.data, current.data):
            return None  # a redelivery, or an update older than the one shown
        m = draft.message
        current.title, current.message, current.link, current.data = m.title[:200], m.text, m.link, draft.data
        current.subscription = draft.subscription
        current.emailed_at = None  # the next digest carries the latest figures
        current.save(
            update_fields=["title", "message", "link", "data", "subscription", "emailed_at", "updated_at"]
        )
        return current
    return None


def _fields(row: Notification) -> dict[str, Any]:
    names = [
        "user_id",
        "subscription",
        "event",
        "title",
        "message",
        "link",
        "data",
        "dedup_key",
        "coalesce_key",
    ]
    return {name: getattr(row, name) for name in names}


def direct_recipients(name: str) -> QuerySet[User]:
    """Who hears of a direct event: the approvers of lot dispositions (by group or by their own
    permission), or the quality specialists. Active users only."""
    if name == EventType.LOT_RELEASE_REQUESTED:
        app_label, codename = APPROVE_LOT_DISPOSITION
        holds = Q(
            groups__permissions__content_type__app_label=app_label, groups__permissions__codename=codename
        ) | Q(user_permissions__content_type__app_label=app_label, user_permissions__codename=codename)
        return User.objects.filter(holds, is_active=True).distinct()
    return User.objects.filter(groups__name=str(Role.QUALITY_SPECIALIST), is_active=True).distinct()


def _direct_notifications(events: Sequence[dict[str, Any]]) -> list[Notification]:
    """One notification per recipient and event, once (the dedup key), with no subscription."""
    rows: list[Notification] = []
    for data in events:
        message = DIRECT_EVENTS[data["type"]](data)
        stored = {key: value for key, value in data.items() if key != "type"}
        users = list(direct_recipients(data["type"]).values_list("pk", flat=True))
        existing = set(
            Notification.objects.filter(user__in=users, dedup_key=message.dedup_key).values_list(
                "user_id", flat=True
            )
        )
        rows += [
            Notification(
                user_id=user,
                event=message.event,
                title=message.title[:200],
                message=message.text,
                link=message.link,
                data=stored,
                dedup_key=message.dedup_key,
            )
            for user in users
            if user not in existing
        ]
    if not rows:
        return []
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    keys = {row.dedup_key for row in rows}
    wanted = {(row.user_id, row.dedup_key) for row in rows}
    stored_rows = Notification.objects.filter(user__in={row.user_id for row in rows}, dedup_key__in=keys)
    return [row for row in stored_rows.order_by("id") if (row.user_id, row.dedup_key) in wanted]


def notifications_fanout(*, events: Sequence[dict[str, Any]]) -> list[Notification]:
    """Turn calculation events into the subscribers' notifications, and direct events into their
    recipients' (DIRECT_EVENTS), and push them after commit. Returns the notifications created or
    updated (none for a redelivered batch)."""
    direct = [e for e in events if isinstance(e, dict) and e.get("type") in DIRECT_EVENTS]
    told: list[Notification] = []
    if direct:
        with transaction.atomic():
            told = _direct_notifications(direct)
            notifications_push_on_commit(told)
    relevant = [e for e in events if isinstance(e, dict) and e.get("type") in EVENT_KINDS]
    if not relevant:
        return told
    relevant = [e for e in relevant if not e["type"].startswith("violation.") or e.get("id")]
    # A violation of an event is told through its event (one notification per event, issue #21).
    relevant = [e for e in relevant if not (e["type"].startswith("violation.") and e.get("event"))]
    drafts = alarms_not_shelved(_drafts(relevant))
    if not drafts:
        return told
    with transaction.atomic():
        discrete = [d for d in drafts if d.message.dedup_key]
        discrete, folded = within_alarm_budget(discrete)
        stored = _store_discrete(discrete) + store_folded(folded)
        created = {(row.user_id, row.dedup_key) for row in stored}
        stored += _store_grown([d for d in discrete if d.message.grows and d.key not in created])
        for draft in drafts:
            if draft.message.coalesce_key:
                row = _store_coalesced(draft)
                if row is not None:
                    stored.append(row)
        notifications_push_on_commit(stored)
    return told + stored


# --- The e-mail digest ---------------------------------------------------------------------------

DIGEST_MAX_LISTED = 100  # notifications listed in one e-mail; the rest are counted


def _digest_text(rows: Sequence[Notification]) -> str:
    lines = [f"{len(rows)} new notification(s) from OpenSPC:", ""]
    for row in rows[:DIGEST_MAX_LISTED]:
        lines.append(f"- {row.title}")
        if row.message:
            lines.append(f"  {row.message}")
        if row.link:
            lines.append(f"  {settings.NOTIFICATION_LINK_BASE_URL}{row.link}")
    if len(rows) > DIGEST_MAX_LISTED:
        lines.append(f"… and {len(rows) - DIGEST_MAX_LISTED} more in your inbox.")
    return "\n".join(lines)


def notifications_email_digest() -> int:
    """One e-mail per user with everything their e-mailing subscriptions produced since the last
    digest; marks them e-mailed. Returns the number of e-mails sent. A failed send leaves the
    user's notifications for the next interval."""
    pending = Notification.objects.filter(
        emailed_at__isnull=True, subscription__email=True, subscription__active=True
    ).exclude(user__email="")
    sent = 0
    for user_id in sorted(set(pending.values_list("user_id", flat=True))):
        with transaction.atomic():
            rows = list(
                pending.filter(user=user_id)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("created_at", "id")
            )
            if not rows:
                continue  # another digest run has them
            user = User.objects.get(pk=user_id)
            subject = f"OpenSPC: {len(rows)} new notification" + ("s" if len(rows) != 1 else "")
            send_mail(subject, _digest_text(rows), None, [user.email])
            Notification.objects.filter(pk__in=[row.pk for row in rows]).update(emailed_at=timezone.now())
        sent += 1
    if sent:
        logger.info("e-mailed notification digests to %d user(s)", sent)
    return sent
