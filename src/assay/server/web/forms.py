"""Forms of the web pages. They only parse and bound input; the rules live in the services."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model

from assay.server.accounts.models import Profile
from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# what people type or older pages post; all read as UTC (settings.TIME_ZONE), the zone every page shows
DATETIME_INPUTS = [DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]


class DateTimeInput(forms.TextInput):
    """A date and time in the one format every page shows, with seconds, in UTC.

    Not ``datetime-local``: that control shows the browser's local format with no zone, and its minute
    step silently turned an end date of 23:59:59 into 23:59:00 on every save."""

    def __init__(self, **kwargs) -> None:
        attrs = {"placeholder": "YYYY-MM-DD HH:MM:SS", "pattern": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?",
                 "inputmode": "numeric", "autocomplete": "off", **kwargs.pop("attrs", {})}  # fmt: skip
        super().__init__(attrs=attrs, **kwargs)

    def format_value(self, value):
        if hasattr(value, "strftime"):
            from django.utils import timezone

            if timezone.is_aware(value):
                value = timezone.localtime(value)
            return value.strftime(DATETIME_FORMAT)
        return super().format_value(value)


def utc_datetime_field(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=f"{label} (UTC)", widget=DateTimeInput(), input_formats=DATETIME_INPUTS,
        help_text="UTC, as YYYY-MM-DD HH:MM:SS.",
    )  # fmt: skip


class ListField(forms.CharField):
    """A list of short strings typed one per line or comma-separated (domains, e-mail addresses)."""

    widget = forms.Textarea(attrs={"rows": 2})

    def __init__(self, *, item_max: int = 254, max_items: int = 1000, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.item_max = item_max
        self.max_items = max_items

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        items = [item.strip() for item in re.split(r"[\s,;]+", text) if item.strip()]
        if len(items) > self.max_items:
            raise forms.ValidationError(f"at most {self.max_items} entries")
        for item in items:
            if len(item) > self.item_max or any(ord(c) < 32 for c in item):
                raise forms.ValidationError(f"{item[:40]!r} is not a valid entry")
        return list(dict.fromkeys(items))


def _initial(instance, names) -> dict:
    return {name: getattr(instance, name) for name in names}


class ChallengeSettingsForm(forms.Form):
    short_description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    end_date = utc_datetime_field("End date")
    published = forms.BooleanField(required=False, help_text="Listed once an administrator has approved it.")
    is_registration_open = forms.BooleanField(required=False, label="Registration open")
    manual_participant_approval = forms.BooleanField(required=False, label="Approve each team by hand")
    invite_only = forms.BooleanField(required=False, label="Invite-only (only invited e-mail addresses)")
    require_complete_profile = forms.BooleanField(required=False, label="Require complete profiles")
    max_team_members = forms.IntegerField(required=False, min_value=1, max_value=10000)
    allowed_email_domains = ListField(item_max=253, help_text="One per line; example.org also admits cs.example.org.")
    blocked_email_domains = ListField(item_max=253)
    banned_email_ids = ListField(label="Banned e-mail addresses")
    leaderboard_description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    forum_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    allow_host_cancel_submissions = forms.BooleanField(required=False)
    allow_cancel_running_submissions = forms.BooleanField(required=False)
    allow_participants_resubmissions = forms.BooleanField(required=False, label="Participants may re-run")

    @classmethod
    def for_challenge(cls, challenge: Challenge, data=None) -> ChallengeSettingsForm:
        return cls(data=data, initial=_initial(challenge, cls.base_fields), prefix="challenge")

    def clean_banned_email_ids(self) -> list[str]:
        return [e.lower() for e in self.cleaned_data["banned_email_ids"]]

    def clean_max_team_members(self):
        return self.cleaned_data["max_team_members"] or None


class PhaseSettingsForm(forms.Form):
    start_date = utc_datetime_field("Start date")
    end_date = utc_datetime_field("End date")
    is_public = forms.BooleanField(required=False, label="Open to participants")
    leaderboard_public = forms.BooleanField(required=False, label="Leaderboard public")
    is_submission_public = forms.BooleanField(required=False, label="Submissions public by default")
    is_submission_paused = forms.BooleanField(required=False, label="Submissions paused")
    max_submissions_per_day = forms.IntegerField(min_value=0, max_value=10**9)
    max_submissions_per_month = forms.IntegerField(min_value=0, max_value=10**9)
    max_submissions = forms.IntegerField(min_value=0, max_value=10**9)
    max_concurrent_submissions_allowed = forms.IntegerField(min_value=1, max_value=10**6)
    count_failed_submissions = forms.BooleanField(required=False, label="Failed submissions count against limits")
    allowed_email_ids = ListField(label="Only these e-mail addresses may submit (empty: anyone registered)")
    disable_logs = forms.BooleanField(required=False, label="Hide stdout/stderr from participants")
    is_restricted_to_select_one_submission = forms.BooleanField(required=False, label="One public submission per team")
    submission_artifact_retention_policy = forms.ChoiceField(
        choices=ChallengePhase.RETENTION_CHOICES,
        required=False,  # a form that leaves it out keeps the phase's policy
        label="Keep submission files",
        help_text="After this, a settled submission's file and logs are removed; results and rankings stay.",
    )

    @classmethod
    def for_phase(cls, phase: ChallengePhase, data=None) -> PhaseSettingsForm:
        return cls(data=data, initial=_initial(phase, cls.base_fields), prefix=f"phase-{phase.pk}")

    def clean_allowed_email_ids(self) -> list[str]:
        return [e.lower() for e in self.cleaned_data["allowed_email_ids"]]

    def clean_submission_artifact_retention_policy(self) -> str:
        return self.cleaned_data["submission_artifact_retention_policy"] or self.initial.get(
            "submission_artifact_retention_policy", "keep_forever"
        )


class PhaseSplitSettingsForm(forms.Form):
    visibility = forms.TypedChoiceField(choices=ChallengePhaseSplit.Visibility.choices, coerce=int)
    leaderboard_decimal_precision = forms.IntegerField(min_value=0, max_value=20, label="Decimal places")
    is_leaderboard_order_descending = forms.BooleanField(required=False, label="Higher is better")
    show_leaderboard_by_latest_submission = forms.BooleanField(required=False, label="Rank each team's latest entry")
    show_execution_time = forms.BooleanField(required=False)
    show_scores_on_leaderboard = forms.BooleanField(required=False)

    @classmethod
    def for_split(cls, ps: ChallengePhaseSplit, data=None) -> PhaseSplitSettingsForm:
        return cls(data=data, initial=_initial(ps, cls.base_fields), prefix=f"split-{ps.pk}")


class BundleUploadForm(forms.Form):
    bundle = forms.FileField(help_text="A challenge bundle zip (EvalAI format), or challenge_config.yaml to check it.")
    host_team = forms.ModelChoiceField(queryset=None, required=False, empty_label=None)

    def __init__(self, *args, host_teams=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if host_teams is None:
            del self.fields["host_team"]
        else:
            self.fields["host_team"].queryset = host_teams
            self.fields["host_team"].required = True


class ProfileForm(forms.ModelForm):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)

    class Meta:
        model = Profile
        fields = [
            "affiliation", "address_street", "address_city", "address_state", "address_country",
            "github_url", "google_scholar_url", "linkedin_url",
        ]  # fmt: skip
        labels = {
            "address_street": "Street address",
            "address_city": "City",
            "address_state": "State or region",
            "address_country": "Country",
            "github_url": "GitHub",
            "google_scholar_url": "Google Scholar",
            "linkedin_url": "LinkedIn",
        }

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if user is not None:
            self.fields["first_name"].initial = user.first_name
            self.fields["last_name"].initial = user.last_name
        for name in ("github_url", "google_scholar_url", "linkedin_url"):
            self.fields[name].widget.attrs["placeholder"] = "https://"

    def clean(self):
        data = super().clean()
        for name, value in list(data.items()):
            if isinstance(value, str) and any(ord(c) < 32 for c in value):
                self.add_error(name, "control characters are not allowed")
        return data

    def save(self, commit: bool = True):
        profile = super().save(commit=commit)
        user = get_user_model().objects.get(pk=self.user.pk)
        user.first_name = self.cleaned_data.get("first_name", "")
        user.last_name = self.cleaned_data.get("last_name", "")
        user.save(update_fields=["first_name", "last_name"])
        return profile


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    days = forms.TypedChoiceField(
        choices=[(30, "30 days"), (90, "90 days"), (365, "1 year"), (0, "never")], coerce=int, initial=90
    )


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name")
    team_url = forms.URLField(required=False, max_length=200, label="Team web page", assume_scheme="https")


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="E-mail address to invite")


def _html_field(label: str, rows: int = 8) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, strip=False, widget=forms.Textarea(attrs={"rows": rows, "spellcheck": "true"}),
        help_text="HTML, as in the bundle's .html file; scripts, styles and forms are removed when shown.",
    )  # fmt: skip


class ChallengeTextsForm(forms.Form):
    """The challenge's title, texts and dates (challenges.services.editing checks them as a bundle's)."""

    title = forms.CharField(max_length=1000)
    short_description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    start_date = utc_datetime_field("Start date")
    end_date = utc_datetime_field("End date")
    description = _html_field("Overview")
    evaluation_details = _html_field("Evaluation")
    terms_and_conditions = _html_field("Terms and conditions")
    submission_guidelines = _html_field("Submission guidelines")

    @classmethod
    def for_challenge(cls, challenge: Challenge, data=None) -> ChallengeTextsForm:
        return cls(data=data, initial=_initial(challenge, cls.base_fields), prefix="texts")


class PhaseEditForm(forms.Form):
    """A phase's name, description, dates, limits, visibility defaults and file types."""

    name = forms.CharField(max_length=1000)
    description = _html_field("Description", rows=4)
    start_date = utc_datetime_field("Start date")
    end_date = utc_datetime_field("End date")
    max_submissions_per_day = forms.IntegerField(label="Submissions per day", min_value=0, max_value=2**31 - 1)
    max_submissions_per_month = forms.IntegerField(label="Submissions per month", min_value=0, max_value=2**31 - 1)
    max_submissions = forms.IntegerField(label="Submissions in total", min_value=0, max_value=2**31 - 1)
    is_public = forms.BooleanField(required=False, label="Open to participants")
    leaderboard_public = forms.BooleanField(required=False, label="Leaderboard public")
    is_submission_public = forms.BooleanField(required=False, label="Submissions public by default")
    allowed_submission_file_types = forms.CharField(
        label="Allowed file types", max_length=1000, help_text="Extensions separated by commas, as .json, .zip."
    )

    @classmethod
    def for_phase(cls, phase: ChallengePhase, data=None) -> PhaseEditForm:
        return cls(data=data, initial=_initial(phase, cls.base_fields), prefix=f"edit-phase-{phase.pk}")
