from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "apps.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.subscriptions.models import Subscription
        from apps.subscriptions.services import event_types_heard, subscription_written
        from openspc.events import fanout_heard_register

        # The calculation queues a fan-out only for events someone hears.
        fanout_heard_register(event_types_heard)
        post_save.connect(subscription_written, sender=Subscription, dispatch_uid="subscription_saved")
        post_delete.connect(subscription_written, sender=Subscription, dispatch_uid="subscription_deleted")
