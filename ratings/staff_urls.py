from django.urls import path

from ratings import dashboard

app_name = "ratings_staff"

urlpatterns = [
    path("", dashboard.index, name="index"),
    path("<int:study_id>/", dashboard.study_dashboard, name="dashboard"),
    path("<int:study_id>/unlock/", dashboard.unlock, name="unlock"),
    path("<int:study_id>/export/<str:kind>.csv", dashboard.export_csv, name="export"),
    path("<int:study_id>/table/<str:fingerprint>/<str:name>.csv", dashboard.table_csv, name="table-csv"),
    path("<int:study_id>/plot/<str:fingerprint>/<str:name>.png", dashboard.plot_png, name="plot"),
]
