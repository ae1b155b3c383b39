"""The Assay server: a Django project serving the web UI, the REST API and the admin."""
