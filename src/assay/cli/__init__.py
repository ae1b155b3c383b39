"""The ``assay`` command. Imports neither Django nor the server, except lazily for server commands."""
