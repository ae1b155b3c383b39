from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "assay.server.accounts"
    label = "accounts"
