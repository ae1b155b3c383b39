from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import leaderboard_views, submission_views, token_views, worker_views

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("phases/<int:phase_id>/submissions", submission_views.PhaseSubmissionsView.as_view()),
    path("submissions/<int:submission_id>", submission_views.SubmissionDetailView.as_view()),
    path("challenges/<int:challenge_id>/worker-tokens", token_views.ChallengeWorkerTokensView.as_view()),
    path("worker-tokens/<int:token_id>", token_views.WorkerTokenDetailView.as_view()),
    path("worker/claim", worker_views.ClaimView.as_view()),
    path("worker/leave", worker_views.LeaveView.as_view()),
    path("worker/jobs/<int:submission_id>/heartbeat", worker_views.HeartbeatView.as_view()),
    path("worker/jobs/<int:submission_id>/release", worker_views.ReleaseView.as_view()),
    path("worker/jobs/<int:submission_id>/complete", worker_views.CompleteView.as_view()),
    path("worker/files/<str:sha256>", worker_views.FileView.as_view()),
]

# Leaderboards: pages, history and exports (anonymous readers allowed where visibility permits).
urlpatterns += [
    path("challenges/<int:challenge_id>/leaderboards", leaderboard_views.ChallengeLeaderboardsView.as_view()),
    path("phase-splits/<int:phase_split_id>/leaderboard", leaderboard_views.PhaseSplitLeaderboardView.as_view()),
    path("phase-splits/<int:phase_split_id>/leaderboard/history", leaderboard_views.PhaseSplitHistoryView.as_view()),
    path(
        "phase-splits/<int:phase_split_id>/leaderboard/export.csv",
        leaderboard_views.PhaseSplitLeaderboardExportView.as_view(),
        {"fmt": "csv"},
    ),
    path(
        "phase-splits/<int:phase_split_id>/leaderboard/export.json",
        leaderboard_views.PhaseSplitLeaderboardExportView.as_view(),
        {"fmt": "json"},
    ),
    path("phases/<int:phase_id>/submissions/export.csv", leaderboard_views.PhaseSubmissionsExportView.as_view()),
]

# Native endpoints of the REST API issue (native_urls.py); its overrides add methods to paths above.
from . import native_urls  # noqa: E402

urlpatterns = [*native_urls.overrides, *urlpatterns, *native_urls.urlpatterns]
