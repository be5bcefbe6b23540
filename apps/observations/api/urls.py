from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.observations.api import views

# A SimpleRouter: the API root view comes from apps.config's DefaultRouter already.
router = SimpleRouter()
router.register("lots", views.LotViewSet)
router.register("items", views.ItemViewSet)
router.register("observations", views.ObservationViewSet)
router.register("invalidations", views.InvalidationViewSet)
router.register("scheduled-samples", views.ScheduledSampleViewSet)
router.register("testers", views.TesterViewSet, basename="tester")
router.register("device/observations", views.DeviceObservationViewSet, basename="device-observation")

urlpatterns = [path("me/items/", views.MyItemsView.as_view(), name="me-items"), *router.urls]
