from django.contrib import admin

from .models import Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "affiliation", "address_country")
    search_fields = ("user__username", "user__email", "affiliation")
