"""The browser pages, included at the site root by openspc/urls.py."""

from django.contrib.auth import views as auth_views
from django.urls import path

from apps.web import views

urlpatterns = [
    path("", views.OverviewView.as_view(), name="web-overview"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="web-login"),
    # Django's LogoutView answers GET with 405: signing out is a POST from the form in base.html.
    path("logout/", auth_views.LogoutView.as_view(), name="web-logout"),
    path("charts/<int:pk>/", views.ChartView.as_view(), name="web-chart"),
    # The operations pages: lots, their items, assignment and status.
    path("lots/", views.LotListView.as_view(), name="web-lots"),
    path("lots/new/", views.LotCreateView.as_view(), name="web-lot-create"),
    path("lots/<int:pk>/", views.LotDetailView.as_view(), name="web-lot"),
    path("work/", views.WorklistView.as_view(), name="web-worklist"),
    path("work/samples/<int:pk>/close/", views.ScheduledSampleCloseView.as_view(), name="web-sample-close"),
    path("violations/", views.ViolationsView.as_view(), name="web-violations"),
    path("audit/", views.AuditLogView.as_view(), name="web-audit"),
    # The inbox and the subscriptions that fill it.
    path("notifications/", views.NotificationsView.as_view(), name="web-notifications"),
    path("notifications/subscriptions/", views.SubscriptionsView.as_view(), name="web-subscriptions"),
    path("kiosk/", views.KioskView.as_view(), name="web-kiosk"),
    # QA package runs against integration targets.
    path("qa/", views.QaRunsView.as_view(), name="web-qa-runs"),
    path("qa/runs/<uuid:plan_id>/", views.QaRunView.as_view(), name="web-qa-run"),
]
