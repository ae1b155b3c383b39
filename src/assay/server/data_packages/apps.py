from django.apps import AppConfig


class DataPackagesConfig(AppConfig):
    """Datasets published by a host team as versioned, hashed, access-controlled packages."""

    name = "assay.server.data_packages"
    label = "data_packages"
    verbose_name = "Data packages"
