from rest_framework.routers import SimpleRouter

from apps.audit.api import views

router = SimpleRouter()
router.register("audit", views.AuditEntryViewSet)

urlpatterns = router.urls
