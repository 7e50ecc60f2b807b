from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ratings:home", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("rate/", include("ratings.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("segmentation/", include("segmentation.urls")),
    path("admin/", admin.site.urls),
]
