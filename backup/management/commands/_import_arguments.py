"""The options `import_tenant` and `backup_restore` share: how a backup goes into a tenant."""

from django.core.management.base import CommandParser


def add_restore_arguments(parser: CommandParser) -> None:
    parser.add_argument("--name", default="", help="name of the new tenant")
    parser.add_argument(
        "--no-undo",
        action="store_true",
        help="do not store a backup of the tenant's current data before a merge or replace "
        "(saves one export; for operators who know better)",
    )
    parser.add_argument(
        "--create-missing-master-data",
        action="store_true",
        help="create master data the backup references but this database lacks",
    )
