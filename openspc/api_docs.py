"""The API docs pages (Swagger UI at /api/docs/, ReDoc at /api/redoc/), from drf-spectacular-sidecar.

Our templates (templates/api_docs/) keep them within the site's Content-Security-Policy: no
inline script or style, nothing loaded from another host. ReDoc alone needs two exceptions,
for its page only: its styles are injected at run time as <style> elements (styled-components),
so style-src allows inline styles; and it searches in a Web Worker started from a blob: URL.
"""

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI; the split view serves its start script as a file (?script), not inline."""

    template_name = "api_docs/swagger_ui.html"


@method_decorator(csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}), name="dispatch")
class RedocView(SpectacularRedocView):
    """ReDoc; its settings (SPECTACULAR_SETTINGS["REDOC_UI_SETTINGS"]) name no font from elsewhere."""

    template_name = "api_docs/redoc.html"
