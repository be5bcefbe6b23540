from rest_framework.routers import SimpleRouter

from apps.mqtt_bridge.api import views

router = SimpleRouter()
router.register("mqtt/dead-letters", views.DeadLetterViewSet)
router.register("mqtt/edge-nodes", views.EdgeNodeViewSet)
router.register("mqtt/data-health-alarms", views.DataHealthAlarmViewSet)

urlpatterns = router.urls
