"""Django's SQLite backend with writers that queue on locks which wake them (``DATABASES`` ENGINE
``assay.server.sqlite_backend``; :mod:`.base`)."""
