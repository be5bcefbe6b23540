from rest_framework.routers import SimpleRouter

from apps.qa_runs.api import views

router = SimpleRouter()
router.register("qa/packages", views.QaPackageViewSet, basename="qa-package")
router.register("qa/runs", views.QaRunViewSet, basename="qa-run")

urlpatterns = router.urls
