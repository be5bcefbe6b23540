"""WebSocket routes. Each app with live updates contributes its consumers here.

Both accept the seed's spelling without the trailing slash (`/ws/samples?token=…`) too.
"""

from django.urls import URLPattern, re_path

from apps.subscriptions.consumers import NotificationsConsumer, SamplesConsumer
from apps.subscriptions.middleware import JwtAuthMiddleware

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ws/samples/?$", JwtAuthMiddleware(SamplesConsumer.as_asgi())),
    re_path(r"^ws/notifications/?$", JwtAuthMiddleware(NotificationsConsumer.as_asgi())),
]
