"""Request validation and the documented shapes of responses and errors."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backup.models import Alert, Drill, Schedule
from backup.restore import Mode
from backup.stored.keys import NOT_ENCRYPTED, TO_KEYS, WITH_PASSPHRASE
from backup.stored.schedules import LIMITS, WEEKDAYS
from tenants.models import Tenant

_slug_field = Tenant._meta.get_field("slug")


def _passphrase(help_text: str) -> serializers.CharField:
    return serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        max_length=1024,
        write_only=True,
        style={"input_type": "password"},
        help_text=help_text,
    )


_name_field = Tenant._meta.get_field("name")


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable machine-readable code, e.g. invalid_file, validation_failed, refused, "
        "import_running, confirmation_required, upload_not_found, upload_too_large, "
        "not_authenticated, permission_denied, not_found, throttled, invalid_request, "
        "daily_limit_reached, job_active, not_restorable, link_refused, password_required, "
        "invalid_schedule, storage_failed."
    )
    message = serializers.CharField(help_text="What went wrong, for a person.")
    details = serializers.JSONField(
        allow_null=True,
        help_text="validation_failed: list of problems {table, row, field, message}; "
        "invalid_request: {field: [messages]}; invalid_schedule: {field: message}; "
        "throttled and daily_limit_reached: {retry_after}; otherwise null.",
    )
    more_problems = serializers.IntegerField(
        required=False, help_text="validation_failed only: problems beyond the listed ones."
    )


class TenantRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()


class StatsSerializer(serializers.Serializer):
    tenant = TenantRefSerializer()
    tables = serializers.DictField(
        child=serializers.IntegerField(), help_text="Record count per table."
    )
    total = serializers.IntegerField()


class ExportOptionsSerializer(serializers.Serializer):
    include_audit_logs = serializers.BooleanField(default=False)
    include_deleted = serializers.BooleanField(
        default=False, help_text="Include soft-deleted rows (and the rows that depend on them)."
    )
    include_files = serializers.BooleanField(
        default=False,
        help_text="A ZIP archive of the backup document and the tenant's attachment files.",
    )
    gzip = serializers.BooleanField(
        default=False,
        help_text="Send the backup gzip-compressed (always, when it is encrypted).",
    )
    encryption = serializers.ChoiceField(
        choices=[NOT_ENCRYPTED, TO_KEYS, WITH_PASSPHRASE],
        default=NOT_ENCRYPTED,
        help_text="none; keys: encrypted (age) to this deployment's public keys "
        "(BACKUP_AGE_RECIPIENTS) and the tenant's own; passphrase: encrypted with `passphrase`. "
        "An encrypted backup is gzip-compressed, then encrypted: .json.gz.age.",
    )
    passphrase = _passphrase("With encryption passphrase: the passphrase, never kept.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["encryption"] == WITH_PASSPHRASE and not attrs.get("passphrase"):
            raise serializers.ValidationError(
                {"passphrase": "Encryption with a passphrase needs the passphrase."}
            )
        if attrs["encryption"] != WITH_PASSPHRASE and attrs.get("passphrase"):
            raise serializers.ValidationError(
                {"passphrase": "Only used with encryption passphrase; leave it out."}
            )
        return attrs


class ImportModeSerializer(serializers.Serializer):
    """The mode of an import and what it needs; shared by the upload preview and restores."""

    mode = serializers.ChoiceField(
        choices=[m.value for m in Mode],
        help_text="merge: update and add rows; replace: delete the tenant's data first; "
        "new_tenant: restore this tenant's backup as a new tenant.",
    )
    new_tenant_slug = serializers.SlugField(
        required=False, allow_blank=True, max_length=_slug_field.max_length
    )
    new_tenant_name = serializers.CharField(
        required=False, allow_blank=True, max_length=_name_field.max_length
    )
    create_missing_master_data = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        is_new = attrs["mode"] == Mode.NEW_TENANT
        if is_new and not attrs.get("new_tenant_slug"):
            raise serializers.ValidationError(
                {"new_tenant_slug": "A new-tenant restore needs the new tenant's slug."}
            )
        if not is_new:
            for name in ("new_tenant_slug", "new_tenant_name"):
                if attrs.get(name):
                    raise serializers.ValidationError(
                        {name: "Only used with mode new_tenant; leave it out."}
                    )
        return attrs


class PreviewOptionsSerializer(ImportModeSerializer):
    file = serializers.FileField(
        help_text="The backup, .json, .json.gz or .json.zst, encrypted with age or not "
        "(recognised by its content)."
    )
    passphrase = _passphrase(
        "The passphrase of a file encrypted with one (a file encrypted to this deployment's "
        "age keys needs none); never kept: the import asks for it again."
    )


class ImportUploadSerializer(serializers.Serializer):
    upload_id = serializers.CharField(
        max_length=64, help_text="The upload_id returned by import/preview/."
    )
    confirmation = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=_name_field.max_length,
        help_text="Replace only: the tenant's name, typed exactly.",
    )
    passphrase = _passphrase("The passphrase the preview was given, again.")


class TableCountsSerializer(serializers.Serializer):
    in_file = serializers.IntegerField()
    create = serializers.IntegerField()
    update = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    delete = serializers.IntegerField()


class MasterCountsSerializer(serializers.Serializer):
    in_file = serializers.IntegerField()
    missing = serializers.IntegerField()
    create = serializers.IntegerField()


class ProblemSerializer(serializers.Serializer):
    table = serializers.CharField()
    row = serializers.CharField()
    field = serializers.CharField()
    message = serializers.CharField()


class FileCountsSerializer(serializers.Serializer):
    listed = serializers.IntegerField()
    restored = serializers.IntegerField()
    kept = serializers.IntegerField()
    renamed = serializers.IntegerField()
    bytes = serializers.IntegerField()


class RowChangesSerializer(serializers.Serializer):
    row = serializers.CharField(help_text="Its position in the file and its natural key.")
    changes = serializers.DictField(
        child=serializers.ListField(min_length=2, max_length=2),
        help_text="field: [value here, value in the backup]; a secret's values are not shown.",
    )


class TableSampleSerializer(serializers.Serializer):
    create = serializers.ListField(child=serializers.CharField())
    update = RowChangesSerializer(many=True)
    delete = serializers.ListField(child=serializers.CharField())


class ImportReportSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=[m.value for m in Mode])
    tenant = TenantRefSerializer(help_text="The tenant imported into (the new one for new_tenant).")
    source_tenant = TenantRefSerializer(help_text="The tenant the backup was taken from.")
    applied = serializers.BooleanField(help_text="False for a preview.")
    sha256 = serializers.CharField(help_text="SHA-256 of the uploaded file.")
    tables = serializers.DictField(child=TableCountsSerializer())
    totals = TableCountsSerializer()
    master_data = serializers.DictField(child=MasterCountsSerializer())
    problems = ProblemSerializer(many=True)
    more_problems = serializers.IntegerField()
    notices = serializers.ListField(
        child=serializers.CharField(),
        help_text="What to know before importing, e.g. credentials whose secret it will clear.",
    )
    samples = serializers.DictField(
        child=TableSampleSerializer(),
        help_text="A preview's first rows per table that it would create, update (the fields "
        "that change) and delete (BACKUP_PREVIEW_SAMPLE_ROWS of each); tables with none left "
        "out. Empty for an import.",
    )
    files = FileCountsSerializer(
        allow_null=True,
        help_text="An archive's files (null for a backup without files): listed in it, written "
        "to storage (renamed: under a new name, theirs taken), kept (already in storage with "
        "the same bytes), and the bytes checked.",
    )


class PreviewSerializer(serializers.Serializer):
    upload_id = serializers.CharField(help_text="Pass it to import/ to run the import.")
    expires_at = serializers.DateTimeField(help_text="The upload is discarded after this time.")
    preview = ImportReportSerializer()


# Stored backups and restores -----------------------------------------------------------------


class StoredBackupOptionsSerializer(serializers.Serializer):
    include_audit_logs = serializers.BooleanField(default=False)
    include_deleted = serializers.BooleanField(
        default=False, help_text="Include soft-deleted rows (and the rows that depend on them)."
    )
    include_files = serializers.BooleanField(
        default=False,
        help_text="A ZIP archive of the backup document and the tenant's attachment files.",
    )


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(source="progress_done", help_text="Rows done so far.")
    total = serializers.IntegerField(
        source="progress_total", help_text="Rows expected; 0 while not yet known."
    )
    percent = serializers.IntegerField(
        source="progress_percent", allow_null=True, help_text="Null while the total is unknown."
    )
    table = serializers.CharField(source="progress_table", help_text="The table being worked on.")


class StrictBooleanField(serializers.BooleanField):
    """true or false only: DRF's BooleanField also takes "yes", "on", 1 and the like."""

    default_error_messages = {"invalid": "Must be true or false (a JSON boolean), not {input!r}."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class VerificationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Drill.Status.values, help_text="queued, running, passed or failed."
    )
    label = serializers.CharField(
        source="get_status_display",
        help_text="The status for a person: Queued, Verifying, Verified, Verification failed.",
    )
    seconds = serializers.FloatField(
        allow_null=True, help_text="How long the drill took; null until it has finished."
    )
    finished_at = serializers.DateTimeField(allow_null=True)
    problems = serializers.ListField(
        child=serializers.CharField(),
        help_text="Failed: what did not match (file checksum, rows per table), as sentences.",
    )


class StoredBackupSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    created_by = serializers.EmailField(
        source="created_by.email", allow_null=True, help_text="Null for scheduled backups."
    )
    trigger = serializers.CharField(help_text="page, api, command, schedule or before_restore.")
    status = serializers.CharField(help_text="queued, running, succeeded or failed.")
    options = StoredBackupOptionsSerializer()
    format_version = serializers.CharField()
    rows = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows per table, once succeeded."
    )
    total_rows = serializers.IntegerField()
    size = serializers.IntegerField(
        allow_null=True, help_text="Bytes as stored (zstd-compressed); null until succeeded."
    )
    sha256 = serializers.CharField(help_text="SHA-256 of the stored file; empty until succeeded.")
    encrypted = serializers.BooleanField(
        help_text="Encrypted at rest with age, to the deployment's keys (BACKUP_AGE_RECIPIENTS)."
    )
    progress = ProgressSerializer(source="*")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the retention rules delete it at the latest (its maximum age); null "
        "while it is kept.",
    )
    scheduled_for = serializers.DateTimeField(
        allow_null=True, help_text="Scheduled backups: the slot it was made for; null otherwise."
    )
    keep = serializers.BooleanField(
        help_text='Kept whatever the retention rules say; set it with PATCH {"keep": true}.'
    )
    verification = VerificationSerializer(
        source="last_drill",
        allow_null=True,
        help_text="Its latest restore drill; null when it has none.",
    )
    error = serializers.CharField(help_text="Why it failed; empty otherwise.")


class KeepSerializer(serializers.Serializer):
    keep = StrictBooleanField(
        help_text="true: never delete it by the retention rules; false: leave it to them."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: "Unknown field: only keep can be changed." for name in unknown}
            )
        return attrs


class JobAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    url = serializers.URLField(help_text="Where to follow the job: GET it until it has finished.")


class DownloadLinkRequestSerializer(serializers.Serializer):
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=4096,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your account's password: required with a browser session, not with a token.",
    )


class DownloadLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="GET it, with the same credentials, to download.")
    expires_at = serializers.DateTimeField()


class DownloadQuerySerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1000, help_text="From the download link.")


class RestoreOptionsSerializer(ImportModeSerializer):
    undo = serializers.BooleanField(
        default=True,
        help_text="merge and replace: store a backup of the tenant's current data first "
        "(trigger before_restore), so that the restore can be undone.",
    )


class RestoreUploadSerializer(RestoreOptionsSerializer):
    file = serializers.FileField(
        help_text="The backup, .json, .json.gz or .json.zst (recognised by its content)."
    )


class ConfirmSerializer(serializers.Serializer):
    confirmation = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=_name_field.max_length,
        help_text="Replace only: the tenant's name, typed exactly.",
    )


class RestoreSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    created_by = serializers.EmailField(source="created_by.email", allow_null=True)
    trigger = serializers.CharField()
    status = serializers.CharField(
        help_text="previewing, awaiting_confirmation, importing, succeeded, failed or cancelled."
    )
    mode = serializers.ChoiceField(choices=[m.value for m in Mode])
    backup = serializers.UUIDField(
        source="backup_id", allow_null=True, help_text="The stored backup restored, if any."
    )
    upload = serializers.SerializerMethodField(help_text="True for the restore of an upload.")
    undo = serializers.BooleanField()
    undo_backup = serializers.UUIDField(
        source="undo_backup_id",
        allow_null=True,
        help_text="The stored backup of the data as it was before the import: restore it to undo.",
    )
    progress = ProgressSerializer(source="*")
    preview = ImportReportSerializer(
        allow_null=True, help_text="What the import would do; set once awaiting_confirmation."
    )
    report = ImportReportSerializer(allow_null=True, help_text="What it did; set once succeeded.")
    error = serializers.CharField(help_text="Why it failed; empty otherwise.")
    error_details = serializers.JSONField(
        allow_null=True,
        help_text="Once failed: {code, and for validation_failed problems, more, stopped}.",
    )
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_upload(self, restore: Any) -> bool:
        return bool(restore.upload_id)


# Automatic backups ---------------------------------------------------------------------------
# These describe the schedule for the schema only: `update_schedule` checks what is sent, so that
# the API, the page and the commands refuse the same values with the same messages.


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": list(WEEKDAYS)},
            {"type": "integer", "minimum": 0, "maximum": 6},
        ],
        "nullable": True,
    }
)
class WeekdayField(serializers.Field):
    pass


def _limited(name: str, help_text: str, **kwargs: Any) -> serializers.IntegerField:
    low, high = LIMITS[name]
    return serializers.IntegerField(min_value=low, max_value=high, help_text=help_text, **kwargs)


class ScheduleSettingsSerializer(serializers.Serializer):
    """What PUT and PATCH may send: any of these; the others keep their values."""

    enabled = serializers.BooleanField(
        required=False, help_text="false: no automatic backups (the rules still prune)."
    )
    frequency = serializers.ChoiceField(choices=Schedule.Frequency.values, required=False)
    weekday = WeekdayField(
        required=False,
        help_text="weekly only, and needed then: monday ... sunday, or 0 (Monday) ... 6.",
    )
    time = serializers.RegexField(
        r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$",
        required=False,
        help_text="The local time of day in `timezone`, HH:MM (00:00 to 23:59).",
    )
    timezone = serializers.CharField(
        required=False, max_length=64, help_text="An IANA time zone, e.g. Europe/Berlin or UTC."
    )
    options = StoredBackupOptionsSerializer(
        required=False, help_text="The export options of each scheduled backup."
    )
    drill = serializers.BooleanField(
        required=False, help_text="Restore-drill each scheduled backup (proof that it restores)."
    )
    keep_last = _limited("keep_last", "Keep the newest this many backups.", required=False)
    keep_monthly = _limited(
        "keep_monthly", "And the newest of each of this many months.", required=False
    )
    max_age_days = _limited(
        "max_age_days", "Delete backups older than this (unless kept).", required=False
    )


class AlertSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=Alert.Kind.values,
        help_text="backup_failed, drill_failed or missed (a slot passed without a backup).",
    )
    message = serializers.CharField()
    since = serializers.DateTimeField(source="created_at")


class ScheduleSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    frequency = serializers.ChoiceField(choices=Schedule.Frequency.values)
    weekday = serializers.ChoiceField(
        choices=list(WEEKDAYS), allow_null=True, help_text="weekly only; null for daily."
    )
    time = serializers.CharField(help_text="HH:MM, local time in `timezone`.")
    timezone = serializers.CharField()
    options = StoredBackupOptionsSerializer()
    drill = serializers.BooleanField()
    keep_last = serializers.IntegerField()
    keep_monthly = serializers.IntegerField()
    max_age_days = serializers.IntegerField()
    next_slot_at = serializers.DateTimeField(
        allow_null=True, help_text="The next slot: the local time as an instant."
    )
    next_run_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the next backup is enqueued: the slot plus the tenant's fixed offset "
        "within BACKUP_SCHEDULE_WINDOW_MINUTES.",
    )
    last_slot_at = serializers.DateTimeField(
        allow_null=True, help_text="The last slot a backup was enqueued for."
    )
    alerts = AlertSerializer(
        many=True, help_text="Open alerts of the tenant's automatic backups, newest first."
    )
