"""Real servers on 127.0.0.1 for the integration tests (marker ``servers``).

- ``nginx.NginxServer``: HTTP with range requests over a directory, byte-counting access log
- ``s3.MotoS3Server``: S3-compatible API (moto server mode) for GDAL's /vsis3/
- ``stac.StacApiServer``: stac-fastapi-pgstac on a throw-away PostgreSQL + PostGIS cluster
- ``faults``: a server that never answers, and a proxy that injects HTTP errors
- ``terrascope``: the small Terrascope-like NDVI archive and its STAC items
- ``fixtures``: session-scoped pytest fixtures over all of the above
"""
