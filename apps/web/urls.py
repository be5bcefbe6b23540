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
    path("kiosk/", views.KioskView.as_view(), name="web-kiosk"),
]
