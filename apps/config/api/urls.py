from django.urls import path
from rest_framework.routers import DefaultRouter

from apps.config.api import views

router = DefaultRouter()
router.register("products", views.ProductViewSet)
router.register("tests", views.TestViewSet)
router.register("test-plans", views.TestPlanViewSet)
router.register("plan-assignments", views.PlanAssignmentViewSet)
router.register("characteristics", views.CharacteristicViewSet, basename="characteristic")
router.register("devices", views.DeviceViewSet)
router.register("sampling-schedules", views.SamplingScheduleViewSet)

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("ping/", views.PingView.as_view(), name="ping"),
    *router.urls,
]
