from django.urls import path

from .views import (
    account,
    audits,
    host,
    host_editing,
    host_statistics,
    leaderboard,
    notifications,
    pages,
    participant,
    teams,
)

app_name = "web"
challenge = "challenges/<int:pk>/"
urlpatterns = [
    path("", pages.challenge_list, name="challenge-list"),
    path("healthz", pages.healthz, name="healthz"),
    # a challenge, for everyone who may see it
    path(challenge, pages.overview, name="challenge"),
    path(challenge + "logo", pages.logo, name="challenge-logo"),
    path(challenge + "evaluation", pages.evaluation, name="evaluation"),
    path(challenge + "terms", pages.terms, name="terms"),
    path(challenge + "phases", pages.phases, name="phases"),
    path(challenge + "leaderboard", leaderboard.leaderboard_page, name="leaderboard"),
    # participants
    path(challenge + "participate", participant.participate, name="participate"),
    path(challenge + "withdraw", participant.withdraw, name="withdraw"),
    path(challenge + "accept-terms", participant.accept_terms, name="accept-terms"),
    path(challenge + "submit", participant.submit_page, name="submit"),
    path(challenge + "uploads", participant.upload_begin, name="upload-begin"),
    path("uploads/<uuid:upload_id>", participant.upload_status, name="upload-status"),
    path("uploads/<uuid:upload_id>/parts/<int:number>", participant.upload_part, name="upload-part"),
    path("uploads/<uuid:upload_id>/finish", participant.upload_finish, name="upload-finish"),
    path(challenge + "submissions", participant.my_submissions, name="my-submissions"),
    path(challenge + "submissions/rows", participant.my_submission_rows, name="my-submission-rows"),
    path("submissions/<int:submission_id>/files/<str:kind>", participant.submission_file, name="submission-file"),
    # audits (before submissions/<id>/<action>, which would take "audit" for an action)
    path("audits/", audits.my_audits, name="audits"),
    path("submissions/<int:submission_id>/audit", audits.audit_page, name="audit"),
    path("submissions/<int:submission_id>/audit/answers", audits.save_answers, name="audit-answers"),
    path("submissions/<int:submission_id>/audit/review/<str:action>", audits.review, name="audit-review"),
    path("submissions/<int:submission_id>/audit/release/<str:action>", audits.release_action, name="audit-release"),
    path("submissions/<int:submission_id>/audit/report", audits.report_page, name="audit-report"),
    path("submissions/<int:submission_id>/audit/report.pdf", audits.report_pdf, name="audit-report-pdf"),
    path("submissions/<int:submission_id>/audit/manifest.json", audits.manifest_json, name="audit-manifest"),
    path("submissions/<int:submission_id>/audit/trail.json", audits.trail_json, name="audit-trail"),
    path("submissions/<int:submission_id>/<str:action>", participant.submission_action, name="submission-action"),
    # hosts
    path("host/", host.dashboard, name="host-dashboard"),
    path("host/challenges/new", host.new_challenge, name="host-new-challenge"),
    path(challenge + "host/", host.challenge_settings, name="host-challenge"),
    path(challenge + "host/settings", host.save_challenge_settings, name="host-save-challenge"),
    path(challenge + "host/phases/<int:phase_id>", host.save_phase_settings, name="host-save-phase"),
    path(challenge + "host/splits/<int:split_id>", host.save_split_settings, name="host-save-split"),
    path(challenge + "host/pause", host.pause, name="host-pause"),
    path(challenge + "host/edit", host_editing.edit_page, name="host-edit"),
    path(challenge + "host/edit/texts", host_editing.save_texts, name="host-edit-texts"),
    path(challenge + "host/edit/phases/<int:phase_id>", host_editing.save_phase, name="host-edit-phase"),
    path(challenge + "host/edit/splits/<int:split_id>/remove", host_editing.remove_split, name="host-remove-split"),
    path(challenge + "host/bundle", host.update_bundle, name="host-update-bundle"),
    path(challenge + "host/invitations", host.invitations, name="host-invitations"),
    path(challenge + "host/submissions", host.submissions, name="host-submissions"),
    path(challenge + "host/submissions/rerun", host.bulk_rerun, name="host-bulk-rerun"),
    path(
        challenge + "host/submissions/<int:submission_id>/<str:action>",
        host.submission_action,
        name="host-submission-action",
    ),  # fmt: skip
    path(challenge + "host/participants", host.participants, name="host-participants"),
    path(
        challenge + "host/participants/<int:participation_id>/<str:action>",
        host.participant_action,
        name="host-participant-action",
    ),  # fmt: skip
    path(challenge + "host/export/<str:kind>.csv", host.export, name="host-export"),
    path(challenge + "host/workers", host.workers, name="host-workers"),
    path(challenge + "host/errors", host.errors, name="host-errors"),
    path(challenge + "host/statistics", host_statistics.statistics, name="host-statistics"),
    path(challenge + "host/audits", audits.host_audits, name="host-audits"),
    path(challenge + "host/webhooks", notifications.webhooks_page, name="host-webhooks"),
    path(
        challenge + "host/webhooks/<int:webhook_id>/<str:action>",
        notifications.webhook_action,
        name="host-webhook-action",
    ),
    path(challenge + "host/auditors", audits.host_add_auditor, name="host-add-auditor"),
    path(challenge + "host/auditors/<int:user_id>/remove", audits.host_remove_auditor, name="host-remove-auditor"),
    # teams and invitations
    path("teams/", teams.my_teams, name="teams"),
    path("teams/<int:pk>/", teams.team, name="team"),
    path("host-teams/<int:pk>/", teams.host_team, name="host-team"),
    path("teams/<int:pk>/members/<int:user_id>/remove/<str:kind>", teams.remove_member, name="remove-member"),
    path("invitations/<int:invitation_id>/revoke", teams.revoke_invitation, name="revoke-invitation"),
    path("invitations/<str:token>", teams.invitation, name="invitation"),
    # account pages of our own (allauth's are under /accounts/)
    path("account/profile", account.profile, name="profile"),
    path("account/tokens", account.tokens, name="tokens"),
    path("account/notifications", notifications.notification_settings, name="notification-settings"),
    path("me/submissions", participant.all_my_submissions, name="all-my-submissions"),
    path("account/tokens/<int:token_id>/revoke", account.revoke, name="revoke-token"),
]
