from django.apps import AppConfig


class ChallengesConfig(AppConfig):
    name = "assay.server.challenges"
    label = "challenges"

    def ready(self) -> None:
        from assay.server.teams import signals as teams

        from .services.participation import refuse_ineligible_invitation, refuse_ineligible_member
        from .services.read_versions import connect as connect_read_versions

        # teams (a layer below) announces; the challenges a team takes part in decide who may join it
        teams.inviting.connect(refuse_ineligible_invitation, dispatch_uid="assay-challenges-inviting")
        teams.joining.connect(refuse_ineligible_member, dispatch_uid="assay-challenges-joining")
        connect_read_versions()  # writes that change the cached challenge list and leaderboards
