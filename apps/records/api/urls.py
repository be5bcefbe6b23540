from rest_framework.routers import SimpleRouter

from apps.records.api import views

router = SimpleRouter()
# Detail actions only (lots/{id}/review/, disposition/, request-release/): the lots themselves are
# apps.observations' routes.
router.register("lots", views.LotRecordsViewSet, basename="lot-records")
router.register("oos-investigations", views.OosInvestigationViewSet, basename="oos-investigation")

urlpatterns = router.urls
