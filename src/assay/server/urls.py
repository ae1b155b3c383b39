"""URL map: the admin, the web pages (and, later, the REST APIs)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("assay.server.api.v1.urls")),
    # EvalAI-compatible API (evalai CLI, remote workers, EvalAI-Starters); listed after api/v1/ so it never shadows it
    path("api/", include("assay.server.api.evalai.urls")),
    path("web/", include("assay.server.api.evalai.web_urls")),  # EvalAI's page addresses its CLI prints
    path("accounts/", include("assay.server.accounts.oidc")),  # OIDC sign-in checking every ID token (first)
    path("accounts/", include("allauth.urls")),  # sign-up, login, e-mail verification, OpenID Connect
    path("", include("assay.server.observability.urls")),  # /metrics and /readyz (README "Monitoring")
    path("", include("assay.server.web.urls")),
]

# Django's own error pages in the site's layout (under /api/ the guard answers JSON instead)
handler400 = "assay.server.web.views.errors.bad_request"
handler403 = "assay.server.web.views.errors.forbidden"
handler404 = "assay.server.web.views.errors.not_found"
handler500 = "assay.server.web.views.errors.server_error"
