from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.audit.api import views

router = SimpleRouter()
router.register("audit", views.AuditEntryViewSet)

urlpatterns = [
    path("audit/entries.csv", views.AuditEntryViewSet.as_view({"get": "export"}), name="auditentry-csv"),
    *router.urls,
]
