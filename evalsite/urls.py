from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from evalsite.ratelimit import RateLimitedLoginView, rate_limited_login

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ratings:home", permanent=False)),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("rate/", include("ratings.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("segmentation/", include("segmentation.urls")),
    path("staff/ratings/", include("ratings.staff_urls")),
    # the admin's own log-in form, rate-limited like the site's (matched before admin.site.urls)
    path("admin/login/", rate_limited_login(admin.site.login)),
    path("admin/", admin.site.urls),
]
