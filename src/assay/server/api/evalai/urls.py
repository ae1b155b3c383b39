"""EvalAI's paths (mounted at /api/), exactly as its clients spell them — trailing slashes and all."""

from django.urls import path, re_path

from . import push
from . import views as v

urlpatterns = [
    # accounts
    path("auth/login", v.LoginView.as_view()),
    path("auth/login/", v.LoginView.as_view()),
    path("accounts/user/get_auth_token", v.AuthTokenView.as_view()),
    path("accounts/user/get_auth_token/", v.AuthTokenView.as_view()),
    # challenges, phases, splits
    re_path(
        r"^challenges/challenge/(?P<time>all|past|present|future)/(?P<approved>[a-z]+)/(?P<published>[a-z]+)/?$",
        v.ChallengeListView.as_view(),
    ),
    re_path(r"^challenges/challenge/(?P<challenge_id>\d+)/?$", v.ChallengeDetailView.as_view()),
    re_path(r"^challenges/challenge_host_team/(?P<team_id>\d+)/challenge/?$", v.HostTeamChallengesView.as_view()),
    re_path(r"^participants/participant_team/(?P<team_id>\d+)/challenge/?$", v.ParticipantTeamChallengesView.as_view()),
    re_path(r"^challenges/challenge/(?P<challenge_id>\d+)/challenge_phase/?$", v.PhaseListView.as_view()),
    re_path(
        r"^challenges/challenge/(?P<challenge_id>\d+)/challenge_phase/(?P<phase_id>\d+)/?$", v.PhaseDetailView.as_view()
    ),
    re_path(r"^challenges/challenge/phase/(?P<phase_id>\d+)/?$", v.PhaseDetailView.as_view()),
    re_path(r"^challenges/phase/(?P<slug>[-\w]+)/?$", v.PhaseBySlugView.as_view()),
    re_path(r"^challenges/(?P<challenge_id>\d+)/phases/?$", v.PhaseListPlainView.as_view()),
    re_path(r"^challenges/(?P<challenge_id>\d+)/challenge_phase_split/?$", v.PhaseSplitListView.as_view()),
    re_path(r"^challenges/challenge/queues/(?P<queue_name>[-\w]+)/?$", v.ChallengeByQueueView.as_view()),
    # teams and participation
    re_path(r"^participants/participant_team/?$", v.ParticipantTeamsView.as_view()),
    re_path(r"^hosts/challenge_host_team/?$", v.HostTeamsView.as_view()),
    re_path(r"^hosts/create_challenge_host_team/?$", v.HostTeamsView.as_view()),
    re_path(
        r"^challenges/challenge/(?P<challenge_id>\d+)/participant_team/(?P<team_id>\d+)/?$", v.ParticipateView.as_view()
    ),
    re_path(r"^jobs/(?P<challenge_id>\d+)/remaining_submissions/?$", v.RemainingView.as_view()),
    # submissions
    re_path(
        r"^jobs/challenge/(?P<challenge_id>\d+)/challenge_phase/(?P<phase_id>\d+)/submission/?$",
        v.PhaseSubmissionsView.as_view(),
    ),
    re_path(
        r"^jobs/challenge/(?P<challenge_id>\d+)/challenge_phase/(?P<phase_id>\d+)/submission/(?P<submission_id>\d+)/?$",
        v.SubmissionVisibilityView.as_view(),
    ),
    re_path(r"^jobs/submission/(?P<submission_id>\d+)/?$", v.SubmissionView.as_view()),
    re_path(
        r"^jobs/challenges/(?P<challenge_id>\d+)/submissions/(?P<submission_id>\d+)/update_submission_meta/?$",
        v.SubmissionMetaView.as_view(),
    ),
    re_path(r"^jobs/submissions/(?P<submission_id>\d+)/re-run/?$", v.RerunView.as_view()),
    re_path(r"^jobs/submissions/(?P<submission_id>\d+)/resume/?$", v.ResumeView.as_view()),
    re_path(r"^jobs/submission_files/?$", v.SubmissionFileView.as_view()),
    re_path(
        r"^jobs/phases/(?P<phase_id>\d+)/get_submission_file_presigned_url/?$", v.PresignedSubmissionView.as_view()
    ),
    re_path(
        r"^jobs/phases/(?P<phase_id>\d+)/finish_submission_file_upload/(?P<submission_id>\d+)/?$",
        v.FinishUploadView.as_view(),
    ),
    re_path(
        r"^jobs/phases/(?P<phase_id>\d+)/send_submission_message/(?P<submission_id>\d+)/?$",
        v.SendSubmissionMessageView.as_view(),
    ),
    re_path(
        r"^challenges/phases/(?P<phase_id>\d+)/get_annotation_file_presigned_url/?$", v.AnnotationUploadView.as_view()
    ),
    re_path(r"^challenges/phases/(?P<phase_id>\d+)/finish_annotation_file_upload/?$", v.AnnotationUploadView.as_view()),
    re_path(
        r"^challenges/phases/(?P<phase_id>\d+)/participant_team/aws/credentials/?$", push.PushRepositoryView.as_view()
    ),
    # leaderboards
    re_path(r"^jobs/challenge_phase_split/(?P<phase_split_id>\d+)/leaderboard/?$", v.LeaderboardView.as_view()),
    re_path(
        r"^jobs/phase_split/(?P<phase_split_id>\d+)/public_leaderboard_all_entries/?$",
        v.AllEntriesLeaderboardView.as_view(),
    ),
    # remote evaluation
    re_path(r"^jobs/challenge/queues/(?P<queue_name>[-\w]+)/?$", v.QueueMessageView.as_view()),
    re_path(r"^jobs/queues/(?P<queue_name>[-\w]+)/?$", v.QueueAckView.as_view()),
    re_path(r"^jobs/challenge/(?P<challenge_id>\d+)/update_submission/?$", v.UpdateSubmissionView.as_view()),
    re_path(
        r"^jobs/challenges/(?P<challenge_id>\d+)/update_partially_evaluated_submission/?$",
        v.PartialUpdateView.as_view(),
    ),
    re_path(r"^jobs/submission/(?P<submission_id>\d+)/update_started_at/?$", v.StartedAtView.as_view()),
    # GitHub (EvalAI-Starters) and zip upload
    re_path(
        r"^challenges/challenge/challenge_host_team/(?P<team_id>\d+)/validate_challenge_config/?$",
        v.ValidateConfigView.as_view(),
    ),
    re_path(
        r"^challenges/challenge/challenge_host_team/(?P<team_id>\d+)/create_or_update_github_challenge/?$",
        v.GithubBundleView.as_view(),
    ),
    re_path(r"^challenges/challenge/challenge_host_team/(?P<team_id>\d+)/zip_upload/?$", v.GithubBundleView.as_view()),
]
