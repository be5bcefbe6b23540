"""WebSocket routes. Each app with live updates contributes its consumers here."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
