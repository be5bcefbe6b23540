from rest_framework.routers import SimpleRouter

from apps.subscriptions.api import views

router = SimpleRouter()
router.register("subscriptions", views.SubscriptionViewSet, basename="subscription")
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = router.urls
