"""Subscription API: the user's own subscriptions (CRUD) and notification inbox.

Nobody sees or changes another user's subscriptions or notifications: the querysets hold the
authenticated user's rows only, so anything else is a 404.
"""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from apps.subscriptions import selectors, services
from apps.subscriptions.api import serializers
from apps.subscriptions.filtersets import NotificationFilterSet, SubscriptionFilterSet
from apps.subscriptions.models import Notification, Subscription
from openspc.api import acting_user, instance_of
from openspc.permissions import IsHuman, RoleModelPermissions


class SubscriptionViewSet(viewsets.ModelViewSet):
    """Subscribe to a product, a test (across products), a lot or a characteristic you may read."""

    queryset = Subscription.objects.none()
    serializer_class = serializers.SubscriptionSerializer
    permission_classes = [IsHuman, RoleModelPermissions]
    filterset_class = SubscriptionFilterSet
    ordering_fields = ["created_at", "scope"]
    search_fields: list[str] = []

    def get_queryset(self) -> QuerySet[Subscription]:
        return selectors.subscription_queryset(user=self.request.user).order_by("-created_at", "-id")

    def perform_create(self, serializer: BaseSerializer) -> None:
        created = services.subscription_create(user=acting_user(self.request), **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=created.pk)

    def perform_update(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        subscription = instance_of(serializer)
        # Target fields sent unchanged are no change; anything else the service refuses.
        for name in ("scope", "product", "test", "lot", "characteristic"):
            current = getattr(subscription, name if name == "scope" else f"{name}_id")
            if name in data and data[name] == current:
                del data[name]
        services.subscription_update(subscription=subscription, data=data)
        serializer.instance = self.get_queryset().get(pk=subscription.pk)

    def perform_destroy(self, instance: Subscription) -> None:
        services.subscription_delete(subscription=instance)


class HasInbox(BasePermission):
    """The roles that may subscribe (selectors.inbox_readable); others have no inbox to read."""

    message = "Your role has no notifications: only the roles that subscribe get them."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return selectors.inbox_readable(user=request.user)


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The inbox, newest first; `?unread=true` for the unread ones. New ones are also pushed live
    (`notification.created` on the user's WebSocket group)."""

    queryset = Notification.objects.none()
    serializer_class = serializers.NotificationSerializer
    # Everyone reads their own inbox only; only subscriptions (which need the role) fill it.
    permission_classes = [IsAuthenticated, IsHuman, HasInbox]
    filterset_class = NotificationFilterSet
    ordering_fields: list[str] = []
    search_fields = ["title", "message"]

    def get_queryset(self) -> QuerySet[Notification]:
        return selectors.notification_queryset(user=self.request.user)

    @extend_schema(
        request=None, responses=serializers.NotificationSerializer, summary="Mark one notification read"
    )
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = services.notification_mark_read(notification=self.get_object())
        return Response(serializers.NotificationSerializer(notification).data)

    @extend_schema(
        request=None, responses=serializers.MarkedReadSerializer, summary="Mark all notifications read"
    )
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None)
    def read_all(self, request: Request) -> Response:
        return Response({"marked": services.notifications_mark_all_read(user=acting_user(request))})

    @extend_schema(responses=serializers.UnreadCountSerializer, summary="How many notifications are unread")
    @action(
        detail=False, methods=["get"], url_path="unread-count", filterset_class=None, pagination_class=None
    )
    def unread_count(self, request: Request) -> Response:
        return Response({"unread": selectors.notification_unread_count(user=request.user)})
