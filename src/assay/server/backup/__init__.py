"""``assay admin backup`` / ``restore``: the database and every stored file in one portable tar.

``archive`` holds the format (members, manifest, checks), ``dump`` writes a snapshot, ``load`` restores
one into an empty instance. Rows are Django's serializer output as JSON lines, so an archive made on
SQLite restores into PostgreSQL and back.
"""
