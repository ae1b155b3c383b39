from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "assay.server.accounts"
    label = "accounts"
    verbose_name = "Profiles and API tokens"  # allauth's app is "Accounts" already: two such admin sections

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
        from .cachetable import create_cache_table

        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="assay.accounts.cache_table")
