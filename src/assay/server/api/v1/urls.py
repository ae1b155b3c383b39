"""The URL map of /api/v1: one path per route, one view class per path, grouped by resource module."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import (
    accounts,
    audits,
    challenges,
    data_packages,
    evaluations,
    files,
    leaderboards,
    model_zoo,
    notifications,
    phases,
    statistics,
    submissions,
    teams,
    uploads,
    worker,
    worker_tokens,
)

submission = "submissions/<int:submission_id>"
phase_split = "phase-splits/<int:phase_split_id>/leaderboard"

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # accounts: signing in, who am I, personal API tokens
    path("auth/login", accounts.LoginView.as_view()),
    path("auth/whoami", accounts.WhoamiView.as_view()),
    path("tokens", accounts.TokenListView.as_view()),
    path("tokens/<int:token_id>", accounts.TokenDetailView.as_view()),
    # teams
    path("teams", teams.TeamListView.as_view()),
    path("teams/<int:team_id>/invitations", teams.TeamInvitationsView.as_view()),
    path("host-teams", teams.HostTeamListView.as_view()),
    path("host-teams/<int:team_id>/invitations", teams.HostTeamInvitationsView.as_view()),
    # challenges and taking part
    path("challenges", challenges.ChallengeListView.as_view()),
    path("challenges/validate", challenges.ValidateBundleView.as_view()),
    path("challenges/<int:challenge_id>", challenges.ChallengeDetailView.as_view()),
    path("challenges/<int:challenge_id>/bundle", challenges.ChallengeBundleView.as_view()),
    path("challenges/<int:challenge_id>/participation", challenges.ParticipationView.as_view()),
    # phases, dataset splits, phase-splits
    path("challenges/<int:challenge_id>/phases", phases.PhaseListView.as_view()),
    path("challenges/<int:challenge_id>/splits", phases.SplitListView.as_view()),
    path("challenges/<int:challenge_id>/phase-splits", phases.PhaseSplitListView.as_view()),
    path("phases/<int:phase_id>", phases.PhaseDetailView.as_view()),
    path("phases/<int:phase_id>/remaining", phases.RemainingView.as_view()),
    # submissions
    path("phases/<int:phase_id>/submissions", submissions.PhaseSubmissionsView.as_view()),
    path("me/submissions", submissions.MySubmissionsView.as_view()),
    path("phases/<int:phase_id>/submissions/export.csv", leaderboards.PhaseSubmissionsExportView.as_view()),
    path("challenges/<int:challenge_id>/submissions", submissions.ChallengeSubmissionsView.as_view()),
    path(submission, submissions.SubmissionDetailView.as_view()),
    path(f"{submission}/visibility", submissions.SubmissionView.as_view()),
    path(f"{submission}/cancel", submissions.CancelView.as_view()),
    path(f"{submission}/rerun", submissions.RerunView.as_view()),
    path(f"{submission}/resume", submissions.ResumeView.as_view()),
    path(f"{submission}/marks", submissions.MarksView.as_view()),
    path(f"{submission}/stdout", submissions.StdoutView.as_view()),
    path(f"{submission}/stderr", submissions.StderrView.as_view()),
    path(f"{submission}/result", submissions.ResultView.as_view()),
    path(f"{submission}/cases", submissions.CasesView.as_view()),
    path(f"{submission}/evaluations", evaluations.EvaluationsView.as_view()),
    path(
        f"{submission}/evaluations/<int:number>/files/<str:kind>",
        evaluations.EvaluationFileView.as_view(),
        name="api-v1-evaluation-file",
    ),
    # models: registered once, versioned, submitted to many phases (assay.server.models_zoo)
    path("models", model_zoo.ModelListView.as_view()),
    path("models/<int:model_id>", model_zoo.ModelDetailView.as_view()),
    path("models/<int:model_id>/publish", model_zoo.PublishView.as_view()),
    path("models/<int:model_id>/versions", model_zoo.VersionListView.as_view()),
    path("models/<int:model_id>/versions/<int:number>/submit", model_zoo.SubmitView.as_view()),
    path("models/<int:model_id>/results", model_zoo.ResultsView.as_view()),
    path("models/<int:model_id>/phases", model_zoo.PhasesView.as_view()),
    # data packages: versioned, hashed, access-controlled datasets (assay.server.data_packages)
    path("data-packages", data_packages.PackageListView.as_view()),
    path("data-packages/<slug:slug>", data_packages.PackageDetailView.as_view()),
    path("data-packages/<slug:slug>/versions", data_packages.VersionListView.as_view()),
    path("data-packages/<slug:slug>/versions/<int:number>", data_packages.VersionDetailView.as_view()),
    path("data-packages/<slug:slug>/versions/<int:number>/files/<path:path>", data_packages.FileView.as_view()),
    path("data-packages/<slug:slug>/access-requests", data_packages.AccessRequestListView.as_view()),
    path(
        "data-packages/<slug:slug>/access-requests/<int:request_id>", data_packages.AccessRequestDecisionView.as_view()
    ),
    path("data-packages/<slug:slug>/downloads", data_packages.DownloadLogView.as_view()),
    # audits: auditors, the team's answers, reviews, release (assay.server.audits.services)
    path("challenges/<int:challenge_id>/auditors", audits.ChallengeAuditorsView.as_view()),
    path("challenges/<int:challenge_id>/auditors/<int:user_id>", audits.ChallengeAuditorDetailView.as_view()),
    path(f"{submission}/audit", audits.SubmissionAuditView.as_view()),
    path(f"{submission}/audit/answers", audits.AnswersView.as_view()),
    path(f"{submission}/audit/answers/submit", audits.AnswersSubmitView.as_view()),
    path(f"{submission}/audit/reviews", audits.ReviewsView.as_view()),
    path(f"{submission}/audit/reviews/<int:review_round>", audits.ReviewDetailView.as_view()),
    path(f"{submission}/audit/reviews/<int:review_round>/decide", audits.ReviewDecideView.as_view()),
    path(f"{submission}/audit/release", audits.ReleaseView.as_view()),
    path(f"{submission}/audit/retract", audits.RetractView.as_view()),
    path(f"{submission}/audit/manifest", audits.ManifestView.as_view()),
    path(f"{submission}/audit/trail", audits.TrailView.as_view()),
    # notifications: my e-mail settings; a challenge's webhooks and their delivery log (hosts)
    path("notification-settings", notifications.NotificationSettingsView.as_view()),
    path("challenges/<int:challenge_id>/webhooks", notifications.ChallengeWebhooksView.as_view()),
    path("challenges/<int:challenge_id>/webhooks/<int:webhook_id>", notifications.ChallengeWebhookView.as_view()),
    path(
        "challenges/<int:challenge_id>/webhooks/<int:webhook_id>/deliveries",
        notifications.WebhookDeliveriesView.as_view(),
    ),
    # resumable uploads of large files
    path("phases/<int:phase_id>/uploads", uploads.PhaseUploadsView.as_view()),
    path("uploads/<str:upload_id>", uploads.UploadView.as_view()),
    path("uploads/<str:upload_id>/parts/<int:part>", uploads.UploadPartView.as_view()),
    path("uploads/<str:upload_id>/complete", uploads.UploadCompleteView.as_view()),
    path("signed/upload-parts/<str:token>", uploads.SignedUploadPartView.as_view(), name="api-upload-part-signed"),
    # stored files by signed URL
    path("signed/files/<str:token>/<str:filename>", files.SignedFileView.as_view(), name="api-signed-file"),
    # leaderboards: pages, history and exports (anonymous readers allowed where visibility permits)
    path("challenges/<int:challenge_id>/leaderboards", leaderboards.ChallengeLeaderboardsView.as_view()),
    path(phase_split, leaderboards.PhaseSplitLeaderboardView.as_view()),
    path(f"{phase_split}/history", leaderboards.PhaseSplitHistoryView.as_view()),
    path(f"{phase_split}/export.csv", leaderboards.PhaseSplitLeaderboardExportView.as_view(), {"fmt": "csv"}),
    path(f"{phase_split}/export.json", leaderboards.PhaseSplitLeaderboardExportView.as_view(), {"fmt": "json"}),
    # remote evaluation: hosts' worker tokens, and the worker protocol
    path("challenges/<int:challenge_id>/worker-tokens", worker_tokens.ChallengeWorkerTokensView.as_view()),
    path("challenges/<int:challenge_id>/workers", worker_tokens.ChallengeWorkersView.as_view()),
    path("challenges/<int:challenge_id>/statistics", statistics.ChallengeStatisticsView.as_view()),
    path("worker-tokens/<int:token_id>", worker_tokens.WorkerTokenDetailView.as_view()),
    path("worker/claim", worker.ClaimView.as_view()),
    path("worker/complete", worker.CompleteSeveralView.as_view()),
    path("worker/heartbeat", worker.HeartbeatSeveralView.as_view()),
    path("worker/leave", worker.LeaveView.as_view()),
    path("worker/jobs/<int:submission_id>/heartbeat", worker.HeartbeatView.as_view()),
    path("worker/jobs/<int:submission_id>/release", worker.ReleaseView.as_view()),
    path("worker/jobs/<int:submission_id>/complete", worker.CompleteView.as_view()),
    path("worker/files/<str:sha256>", worker.FileView.as_view()),
]
