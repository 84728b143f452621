"""The search service: the HTTP API, the request pipeline, model reloading, and the catalog the service
holds (indexes it builds, entity writes it keeps)."""
