"""The Content-Security-Policy header (django-csp), with the page's own WebSocket origin allowed.

The policy itself is CONTENT_SECURITY_POLICY in openspc/settings.py. `connect-src 'self'` covers
ws:// and wss:// of the page's host only in browsers that implement CSP level 3 on that point,
so the host the request came to (already checked against ALLOWED_HOSTS) is named for both.
"""

from typing import Any

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class WebSocketCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts  # answered 400 already; nothing of the page's will connect anywhere
        update: dict[str, Any] = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), f"ws://{host}", f"wss://{host}"]
        parts.update = update
        return parts
