"""Account pages of our own (allauth serves sign-up, login, e-mail and password pages): profile, tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from assay.server.accounts.models import ApiToken
from assay.server.accounts.services import missing_profile_fields, profile_of
from assay.server.accounts.tokens import TokenRefused, create_token, revoke_token

from ..forms import ProfileForm, TokenForm


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    instance = profile_of(request.user)
    form = ProfileForm(request.POST or None, instance=instance, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect("web:profile")
    context = {"form": form, "missing": missing_profile_fields(request.user)}
    return render(request, "web/account/profile.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    context: dict = {"form": form}
    if request.method == "POST":
        if form.is_valid():
            try:
                row, token = create_token(request.user, form.cleaned_data["name"], form.cleaned_data["days"] or None)
                context.update(new_token=token, new_row=row)
                form = TokenForm()
                context["form"] = form
            except TokenRefused as exc:
                form.add_error(None, exc.message)
    context["tokens"] = ApiToken.objects.filter(user=request.user)
    context["server_url"] = request.build_absolute_uri("/").rstrip("/")
    return render(request, "web/account/tokens.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    row = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    revoke_token(request.user, row)
    messages.success(request, f"Token {row.name} revoked.")
    return redirect("web:tokens")
