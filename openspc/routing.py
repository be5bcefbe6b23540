"""WebSocket routes. Each app with live updates contributes its consumers here.

Each accepts the seed's spelling without the trailing slash (`/ws/samples?token=…`) too.
"""

from django.urls import URLPattern, re_path

from apps.qa_runs.consumers import QaRunConsumer
from apps.subscriptions.consumers import NotificationsConsumer, SamplesConsumer
from openspc.socket_auth import JwtAuthMiddleware

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ws/samples/?$", JwtAuthMiddleware(SamplesConsumer.as_asgi())),
    re_path(r"^ws/notifications/?$", JwtAuthMiddleware(NotificationsConsumer.as_asgi())),
    re_path(
        r"^ws/qa-runs/(?P<plan_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/?$",
        JwtAuthMiddleware(QaRunConsumer.as_asgi()),
    ),
]
