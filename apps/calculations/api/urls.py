from rest_framework.routers import SimpleRouter

from apps.calculations.api import views

router = SimpleRouter()
router.register("samples", views.SampleViewSet)
router.register("violations", views.ViolationViewSet)
router.register("violation-events", views.ViolationEventViewSet)
router.register("alarm-shelves", views.AlarmShelfViewSet)
router.register("acknowledgement-reasons", views.AcknowledgementReasonViewSet)
router.register("lot-statistics", views.LotStatisticsViewSet)
router.register("product-statistics", views.ProductStatisticsViewSet)
# Only extra actions (recalculate-limits, set-limits, freeze-limits, chart-data) under the
# characteristics that apps.config serves.
router.register("characteristics", views.CharacteristicChartViewSet, basename="characteristic-chart")

urlpatterns = router.urls
