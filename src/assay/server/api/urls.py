from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import submission_views, token_views, worker_views

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("phases/<int:phase_id>/submissions", submission_views.PhaseSubmissionsView.as_view()),
    path("submissions/<int:submission_id>", submission_views.SubmissionDetailView.as_view()),
    path("challenges/<int:challenge_id>/worker-tokens", token_views.ChallengeWorkerTokensView.as_view()),
    path("worker-tokens/<int:token_id>", token_views.WorkerTokenDetailView.as_view()),
    path("worker/claim", worker_views.ClaimView.as_view()),
    path("worker/jobs/<int:submission_id>/heartbeat", worker_views.HeartbeatView.as_view()),
    path("worker/jobs/<int:submission_id>/release", worker_views.ReleaseView.as_view()),
    path("worker/jobs/<int:submission_id>/complete", worker_views.CompleteView.as_view()),
    path("worker/files/<str:sha256>", worker_views.FileView.as_view()),
]
