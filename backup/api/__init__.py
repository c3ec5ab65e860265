"""The REST API of tenant backups: a thin adapter over the services of `backup`.

Under `/api/v1/tenants/<slug>/`: `backup/` (the synchronous export and import, for small files)
and `backups/` and `restores/` (stored backups and restores, run by a worker); see
`docs/api.md`.
"""
