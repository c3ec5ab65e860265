from django.apps import AppConfig


class BackupConfig(AppConfig):
    name = "backup"

    def ready(self) -> None:
        from backup import checks  # noqa: F401 - registers the system checks
