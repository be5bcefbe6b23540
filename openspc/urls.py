"""URLs: the browser pages at the root, the API under /api/v1/, its schema and docs, the admin."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from openspc.api import not_found
from openspc.api_docs import RedocView, SwaggerView
from openspc.signin import TokenObtainPairView, TokenRefreshView

api_v1: list[URLPattern | URLResolver] = [
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("", include("apps.config.api.urls")),
    path("", include("apps.observations.api.urls")),
    path("", include("apps.calculations.api.urls")),
    path("", include("apps.subscriptions.api.urls")),
    path("", include("apps.records.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.mqtt_bridge.api.urls")),
    path("", include("apps.qa_runs.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    # Anything else under /api/ answers in the API's error format, DEBUG or not. It ends in a
    # slash so that CommonMiddleware still redirects /api/v1/products to /api/v1/products/.
    re_path(r"^api/.*/$", not_found),
    path("", include("apps.web.urls")),
]

handler404 = "openspc.api.not_found"
handler500 = "openspc.api.server_error"
