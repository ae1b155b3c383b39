"""URL map: the admin, the web pages (and, later, the REST APIs)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("assay.server.api.urls")),
    path("", include("assay.server.web.urls")),
]
