"""Subscriptions and notifications in the admin: read-mostly. Users manage their own through the
API; an administrator may remove a subscription (someone who left), nothing else."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.subscriptions.models import Notification, Subscription
from openspc.admin import ReadOnlyAdmin


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "scope",
        "product",
        "test",
        "lot",
        "characteristic",
        "events",
        "email",
        "active",
    ]
    list_filter = ["scope", "active", "email"]
    search_fields = ["user__username"]
    list_select_related = [
        "user",
        "product",
        "test",
        "lot",
        "characteristic__product",
        "characteristic__test",
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("subscriptions.delete_subscription")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "event", "title", "created_at", "read_at", "emailed_at"]
    list_filter = ["event"]
    search_fields = ["user__username", "title"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
