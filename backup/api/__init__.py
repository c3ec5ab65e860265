"""The REST API of tenant backups: a thin adapter over the services of `backup`.

Everything lives under `/api/v1/tenants/<slug>/backup/`; see `docs/api.md`.
"""
