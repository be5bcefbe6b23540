"""A notification about to be stored: one user's message made from one event by a subscription
(the fan-out's unit, shared by apps.subscriptions.services and .alarms)."""

from dataclasses import dataclass
from typing import Any

from apps.subscriptions import messages
from apps.subscriptions.models import Notification, Subscription


@dataclass
class Draft:
    subscription: Subscription
    message: messages.Message
    data: dict[str, Any]

    @property
    def key(self) -> tuple[int, str]:
        return self.subscription.user_id, self.message.dedup_key or self.message.coalesce_key

    def row(self) -> Notification:
        m = self.message
        return Notification(
            user_id=self.subscription.user_id, subscription=self.subscription, event=m.event,
            title=m.title[:200], message=m.text, link=m.link, data=self.data, dedup_key=m.dedup_key,
            coalesce_key=m.coalesce_key,
        )  # fmt: skip
