from django.urls import path

from ratings import views

app_name = "ratings"

urlpatterns = [
    path("", views.home, name="home"),
    path("join/<str:token>/", views.join, name="join"),
    path("s/<int:study_id>/", views.study_entry, name="study"),
    path("s/<int:study_id>/consent/", views.consent, name="consent"),
    path("s/<int:study_id>/profile/", views.profile, name="profile"),
    path("s/<int:study_id>/guide/", views.guide, name="guide"),
    path("s/<int:study_id>/guide/<slug:structure>-<int:level>-<slug:variant>.png", views.guide_png,
         name="guide-png"),
    path("s/<int:study_id>/practice/<int:n>/", views.practice, name="practice"),
    path("s/<int:study_id>/practice/<int:n>/<str:name>.png", views.practice_png, name="practice-png"),
    path("s/<int:study_id>/check/", views.blinding, name="blinding"),
    path("s/<int:study_id>/check/<str:token>.png", views.blinding_png, name="blinding-png"),
    path("a/<str:token>/", views.item, name="item"),
    path("a/<str:token>/<str:name>.png", views.item_png, name="item-png"),
]
