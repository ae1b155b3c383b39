"""URL map of the native endpoints built here (included by :mod:`.urls`)."""

from django.urls import path

from . import files, native_accounts, native_challenges, native_submissions, native_uploads

# Paths the lead's views already serve with one method; these subclasses add the others.
overrides = [
    path("phases/<int:phase_id>/submissions", native_submissions.PhaseSubmissionsView.as_view()),
]

urlpatterns = [
    path("auth/login", native_accounts.LoginView.as_view()),
    path("auth/whoami", native_accounts.WhoamiView.as_view()),
    path("tokens", native_accounts.TokenListView.as_view()),
    path("tokens/<int:token_id>", native_accounts.TokenDetailView.as_view()),
    path("teams", native_accounts.TeamListView.as_view()),
    path("teams/<int:team_id>/invitations", native_accounts.TeamInvitationsView.as_view()),
    path("host-teams", native_accounts.HostTeamListView.as_view()),
    path("host-teams/<int:team_id>/invitations", native_accounts.HostTeamInvitationsView.as_view()),
    path("challenges", native_challenges.ChallengeListView.as_view()),
    path("challenges/validate", native_challenges.ValidateBundleView.as_view()),
    path("challenges/<int:challenge_id>", native_challenges.ChallengeDetailView.as_view()),
    path("challenges/<int:challenge_id>/bundle", native_challenges.ChallengeBundleView.as_view()),
    path("challenges/<int:challenge_id>/phases", native_challenges.PhaseListView.as_view()),
    path("challenges/<int:challenge_id>/splits", native_challenges.SplitListView.as_view()),
    path("challenges/<int:challenge_id>/phase-splits", native_challenges.PhaseSplitListView.as_view()),
    path("challenges/<int:challenge_id>/participation", native_challenges.ParticipationView.as_view()),
    path("challenges/<int:challenge_id>/submissions", native_submissions.ChallengeSubmissionsView.as_view()),
    path("phases/<int:phase_id>", native_challenges.PhaseDetailView.as_view()),
    path("phases/<int:phase_id>/remaining", native_challenges.RemainingView.as_view()),
    path("phases/<int:phase_id>/uploads", native_uploads.PhaseUploadsView.as_view()),
    path("uploads/<str:upload_id>", native_uploads.UploadView.as_view()),
    path("uploads/<str:upload_id>/parts/<int:part>", native_uploads.UploadPartView.as_view()),
    path("uploads/<str:upload_id>/complete", native_uploads.UploadCompleteView.as_view()),
    path(
        "signed/upload-parts/<str:token>", native_uploads.SignedUploadPartView.as_view(), name="api-upload-part-signed"
    ),
    path("signed/files/<str:token>/<str:filename>", files.SignedFileView.as_view(), name="api-signed-file"),
    path("submissions/<int:submission_id>/visibility", native_submissions.SubmissionView.as_view()),
    path("submissions/<int:submission_id>/cancel", native_submissions.CancelView.as_view()),
    path("submissions/<int:submission_id>/rerun", native_submissions.RerunView.as_view()),
    path("submissions/<int:submission_id>/resume", native_submissions.ResumeView.as_view()),
    path("submissions/<int:submission_id>/marks", native_submissions.MarksView.as_view()),
    path("submissions/<int:submission_id>/stdout", native_submissions.StdoutView.as_view()),
    path("submissions/<int:submission_id>/stderr", native_submissions.StderrView.as_view()),
    path("submissions/<int:submission_id>/result", native_submissions.ResultView.as_view()),
]
