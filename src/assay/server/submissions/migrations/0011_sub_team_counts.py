# The index every submit's counts read alone (status, number and id in it, no table row per submission the team
# made to the phase); it replaces sub_team_time, whose columns lead it, so the team's lists keep their order.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("submissions", "0010_attempt_worker"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="submission",
            index=models.Index(
                fields=["phase", "participant_team", "submitted_at", "id", "status", "submission_number"],
                name="sub_team_counts",
            ),
        ),
        migrations.RemoveIndex(model_name="submission", name="sub_team_time"),
    ]
