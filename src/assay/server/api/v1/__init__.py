"""/api/v1, Assay's own REST API: one module per resource, one URL list (:mod:`.urls`)."""
