"""The backup endpoints of one tenant. Each view validates its request, calls one service of
`backup` and shapes the answer; the backup logic itself lives in the services."""

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from backup.api.errors import SqlExportGone
from backup.api.permissions import ManagesTenantBackup
from backup.api.serializers import (
    AlertSerializer,
    ConfirmSerializer,
    DownloadLinkRequestSerializer,
    DownloadLinkSerializer,
    DownloadQuerySerializer,
    ErrorSerializer,
    ExportOptionsSerializer,
    ImportReportSerializer,
    ImportUploadSerializer,
    JobAcceptedSerializer,
    KeepSerializer,
    PreviewOptionsSerializer,
    PreviewSerializer,
    RestoreOptionsSerializer,
    RestoreSerializer,
    RestoreUploadSerializer,
    ScheduleSerializer,
    ScheduleSettingsSerializer,
    StatsSerializer,
    StoredBackupOptionsSerializer,
    StoredBackupSerializer,
)
from backup.api.throttles import BackupRateThrottle
from backup.export import ExportOptions, download_name, iter_export
from backup.models import Restore, StoredBackup, Trigger
from backup.restore import ImportOptions, Mode
from backup.statistics import tenant_statistics
from backup.stored import keys, links
from backup.stored.alerts import open_alerts
from backup.stored.backups import backups_of, delete_backup, get_backup, request_backup, set_keep
from backup.stored.restores import (
    cancel_restore,
    confirm_restore,
    get_restore,
    request_restore,
    restores_of,
)
from backup.stored.schedules import EDITABLE, describe, schedule_of, update_schedule
from backup.stored.storage import download_name as stored_download_name
from backup.throttles import EXPORT, IMPORT
from backup.uploads import import_pending, preview_upload
from backup.web_requests import refuse_large_body, refuse_large_file, refuse_repeated_fields
from tenants.models import Tenant

TENANT_PARAMETER = OpenApiParameter(
    "tenant",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The tenant's slug.",
    pattern=r"^[-a-zA-Z0-9_]+$",
    examples=[OpenApiExample("Demo tenant", value="demo")],
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ACCESS_ERRORS = {
    401: _error("Not authenticated (no or a bad token or session): not_authenticated."),
    403: _error(
        "A member of the tenant without backup rights, or an option only superusers may use "
        "(checked again when the import runs): permission_denied."
    ),
    404: _error("No such tenant, or not one of yours: not_found."),
}
THROTTLED = {429: _error("Too many requests: throttled; see the Retry-After header.")}


def _tenant_dict(tenant: Tenant) -> dict[str, str]:
    return {"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug}


def import_options(data: dict[str, Any]) -> ImportOptions:
    """The options of an import, from the validated fields of an `ImportModeSerializer`."""
    return ImportOptions(
        mode=Mode(data["mode"]),
        create_missing_master_data=data["create_missing_master_data"],
        new_tenant_slug=data.get("new_tenant_slug", ""),
        new_tenant_name=data.get("new_tenant_name", ""),
    )


class TenantBackupView(APIView):
    """Base of the endpoints: the tenant comes from the URL, access from `backup.access`."""

    permission_classes = [ManagesTenantBackup]
    tenant: Tenant  # set by ManagesTenantBackup

    @staticmethod
    def fields(request: Request) -> Any:
        """The request's data, each form field and file part sent once."""
        if isinstance(request.data, MultiValueDict):
            refuse_repeated_fields(request.data)
        return request.data


class StatsView(TenantBackupView):
    @extend_schema(
        operation_id="backup_stats",
        tags=["backup"],
        summary="Record counts of the tenant, per table",
        description="What a backup of the tenant would hold, counted per table.",
        parameters=[TENANT_PARAMETER],
        responses={200: StatsSerializer, **ACCESS_ERRORS},
    )
    def get(self, request: Request, tenant: str) -> Response:
        tables = tenant_statistics(self.tenant)
        return Response(
            {"tenant": _tenant_dict(self.tenant), "tables": tables, "total": sum(tables.values())}
        )


class ExportView(TenantBackupView):
    throttle_classes = [BackupRateThrottle]
    throttle_scope = EXPORT
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="backup_export",
        tags=["backup"],
        summary="Download the tenant's backup",
        description="The backup document, streamed as it is written (gzip-compressed when "
        "`gzip` is true; compressed, then encrypted with age, when `encryption` is keys or "
        "passphrase), as an attachment named `<slug>-backup-<UTC time>.json[.gz][.age]`; with "
        "`include_files`, a ZIP archive of the document and the tenant's files, "
        "`<slug>-backup-<UTC time>.zip[.age]`.",
        parameters=[TENANT_PARAMETER],
        request=ExportOptionsSerializer,
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The backup document (format version 2)."
            ),
            (200, "application/gzip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The same, gzip-compressed."
            ),
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="With include_files: the archive."
            ),
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The same, compressed and encrypted (age)."
            ),
            400: _error(
                "Invalid options: invalid_request; invalid_key (encryption keys, but this "
                "deployment has none)."
            ),
            **ACCESS_ERRORS,
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str) -> StreamingHttpResponse:
        serializer = ExportOptionsSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        encryption = keys.download_encryption(self.tenant, data["encryption"], data["passphrase"])
        # Encrypted: compressed first, since what is encrypted no longer compresses.
        compress = data["gzip"] or encryption is not None
        options = ExportOptions(
            include_audit_logs=data["include_audit_logs"],
            include_deleted=data["include_deleted"],
            include_files=data["include_files"],
        )
        chunks = iter_export(
            self.tenant,
            options=options,
            actor=request.user,
            compress=compress,
            encryption=encryption,
        )
        filename, content_type = download_name(
            self.tenant.slug, options, compress=compress, encrypted=encryption is not None
        )
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        # A backup holds all of a tenant's data: no cache may keep a copy.
        response["Cache-Control"] = "no-store"
        return response


class SqlExportView(TenantBackupView):
    @extend_schema(
        operation_id="backup_export_sql",
        tags=["backup"],
        summary="Former SQL export (not supported)",
        description="Kept so that old clients get a clear answer: always 410 Gone with code "
        "`sql_export_not_supported`. Use `POST .../backup/export/` instead.",
        parameters=[TENANT_PARAMETER],
        deprecated=True,
        responses={410: _error("Always: sql_export_not_supported."), **ACCESS_ERRORS},
    )
    def get(self, request: Request, tenant: str) -> Response:
        replacement = f"/api/v1/tenants/{self.tenant.slug}/backup/export/"
        raise SqlExportGone(
            "SQL export is not supported. Download a JSON backup with "
            f"POST {replacement} instead (or use pg_dump for a raw database dump).",
            details={"method": "POST", "url": replacement},
        )


class ImportPreviewView(TenantBackupView):
    throttle_classes = [BackupRateThrottle]
    throttle_scope = IMPORT
    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before anything reads the body: an oversized upload is refused without being received.
        refuse_large_body(request.META)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="backup_import_preview",
        tags=["backup"],
        summary="Upload a backup and preview its import",
        description="Checks the whole file and computes what the import would do, per table, "
        "writing nothing. The upload is kept until it is imported or expires; pass the "
        "returned `upload_id` to `import/`.",
        parameters=[TENANT_PARAMETER],
        request={"multipart/form-data": PreviewOptionsSerializer},
        responses={
            200: PreviewSerializer,
            400: _error(
                "invalid_request (fields), ambiguous_request (a part sent twice), invalid_file, "
                "unsupported_version, or validation_failed (details lists the problems); "
                "encrypted_file (no passphrase for an encrypted file), not_encrypted (a "
                "passphrase for a plain one), decryption_failed (the wrong passphrase, or a "
                "damaged file)."
            ),
            **ACCESS_ERRORS,
            409: _error("refused: a backup of another tenant, or the new slug is taken."),
            413: _error("upload_too_large."),
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str) -> Response:
        serializer = PreviewOptionsSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        refuse_large_file(upload.size)
        pending, report = preview_upload(
            upload,
            tenant=self.tenant,
            user=request.user,
            options=import_options(data),
            passphrase=data["passphrase"],
            identities=keys.deployment_identities,
        )
        return Response(
            {"upload_id": pending.id, "expires_at": pending.expires_at, "preview": report.as_dict()}
        )


class ImportView(TenantBackupView):
    throttle_classes = [BackupRateThrottle]
    throttle_scope = IMPORT
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="backup_import",
        tags=["backup"],
        summary="Import a previewed upload",
        description="Runs the import of an upload previewed by you for this tenant, in one "
        "transaction. A replace needs `confirmation`: the tenant's name. A new-tenant restore "
        "answers 201; `tenant.slug` is the new tenant's.",
        parameters=[TENANT_PARAMETER],
        request=ImportUploadSerializer,
        responses={
            200: ImportReportSerializer,
            201: ImportReportSerializer,
            400: _error(
                "invalid_request, ambiguous_request, confirmation_required (replace), "
                "invalid_file or validation_failed; encrypted_file or decryption_failed (the "
                "passphrase missing or wrong: the upload is kept, send it again)."
            ),
            **ACCESS_ERRORS,
            409: _error("refused (e.g. slug taken) or import_running (try again later)."),
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str) -> Response:
        serializer = ImportUploadSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        report = import_pending(
            data["upload_id"],
            tenant=self.tenant,
            user=request.user,
            confirmation=data["confirmation"],
            passphrase=data["passphrase"],
            identities=keys.deployment_identities,
        )
        created = report.mode == Mode.NEW_TENANT
        return Response(
            report.as_dict(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# Stored backups and restores: each request only records and enqueues the job (or reads its
# state); a worker does the work (`backup.stored`).

BACKUP_ID = OpenApiParameter(
    "id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The stored backup's id."
)
RESTORE_ID = OpenApiParameter(
    "id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The restore's id."
)
STORED_TAGS = ["stored backups"]
BACKUP_NOT_FOUND = {
    404: _error(
        "No such tenant, or not one of yours; or the tenant has no backup with this id: not_found."
    )
}
RESTORE_NOT_FOUND = {
    404: _error(
        "No such tenant, or not one of yours; or the tenant has no restore with this id: not_found."
    )
}
STORAGE_FAILED = {503: _error("The backup storage cannot be reached: storage_failed; retry.")}
SCHEDULE_TAGS = ["automatic backups"]
SCHEDULE_ERRORS = {
    400: _error(
        "invalid_schedule: a setting is unknown or its value cannot be used; details is "
        "{field: message} naming each, and nothing was saved. invalid_request: the body is not "
        "a JSON object; malformed_request: not JSON."
    ),
    **ACCESS_ERRORS,
}


def _accepted(request: Request, name: str, job: StoredBackup | Restore) -> Response:
    """202 for a job just enqueued: where to follow it."""
    url = request.build_absolute_uri(
        reverse(f"backup-api:{name}", kwargs={"tenant": job.tenant.slug, "id": job.id})
    )
    return Response(
        {"id": job.id, "status": job.status, "url": url},
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": url},
    )


class StoredJobView(TenantBackupView):
    """Base of the stored-backup endpoints. Only the methods that start work (`throttled_methods`)
    count towards the view's `throttle_scope`; reading a job's state is free."""

    throttle_classes = [BackupRateThrottle]
    throttle_scope = EXPORT
    throttled_methods: tuple[str, ...] = ("POST",)
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_throttles(self) -> list[BaseThrottle]:
        if self.request.method not in self.throttled_methods:
            return []
        return super().get_throttles()


class BackupsView(StoredJobView):
    @extend_schema(
        operation_id="stored_backups_list",
        tags=STORED_TAGS,
        summary="List the tenant's stored backups, newest first",
        description="Every stored backup of the tenant, with its status and progress; jobs "
        "whose worker died are marked failed first.",
        parameters=[TENANT_PARAMETER],
        responses={200: StoredBackupSerializer(many=True), **ACCESS_ERRORS},
    )
    def get(self, request: Request, tenant: str) -> Response:
        return Response(StoredBackupSerializer(backups_of(self.tenant), many=True).data)

    @extend_schema(
        operation_id="stored_backups_create",
        tags=STORED_TAGS,
        summary="Make a stored backup (in the background)",
        description="Enqueues the backup and answers at once with its id, its status (`queued`) "
        "and the URL to follow it at (also the `Location` header). Backups made by hand or by "
        "the API count towards the tenant's daily limit (`BACKUP_DAILY_LIMIT` over the last 24 "
        "hours).",
        parameters=[TENANT_PARAMETER],
        request=StoredBackupOptionsSerializer,
        responses={
            202: JobAcceptedSerializer,
            400: _error("invalid_request, ambiguous_request."),
            **ACCESS_ERRORS,
            429: _error(
                "daily_limit_reached (the message says from when the next backup can be made) "
                "or throttled; see the Retry-After header."
            ),
        },
    )
    def post(self, request: Request, tenant: str) -> Response:
        serializer = StoredBackupOptionsSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        backup = request_backup(
            self.tenant,
            user=request.user,
            trigger=Trigger.API,
            options=ExportOptions(**serializer.validated_data),
        )
        return _accepted(request, "backup", backup)


class BackupView(StoredJobView):
    # Only PATCH has a body: a JSON object, so that keep is a JSON boolean, not a form's text.
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="stored_backup_retrieve",
        tags=STORED_TAGS,
        summary="One stored backup",
        description="Its status and progress; once made, its rows per table, size and SHA-256. "
        "Poll it after creating a backup until `succeeded` or `failed` (`error`).",
        parameters=[TENANT_PARAMETER, BACKUP_ID],
        responses={200: StoredBackupSerializer, **ACCESS_ERRORS, **BACKUP_NOT_FOUND},
    )
    def get(self, request: Request, tenant: str, id: str) -> Response:
        return Response(StoredBackupSerializer(get_backup(self.tenant, id)).data)

    @extend_schema(
        operation_id="stored_backup_delete",
        tags=STORED_TAGS,
        summary="Delete a stored backup and its file",
        description="The file is removed from the backups storage, then the record. A backup "
        "still queued or running cannot be deleted.",
        parameters=[TENANT_PARAMETER, BACKUP_ID],
        responses={
            204: OpenApiResponse(description="Deleted."),
            **ACCESS_ERRORS,
            **BACKUP_NOT_FOUND,
            409: _error("job_active: the backup is queued or running; delete it once finished."),
            **STORAGE_FAILED,
        },
    )
    def delete(self, request: Request, tenant: str, id: str) -> Response:
        delete_backup(get_backup(self.tenant, id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="stored_backup_keep",
        tags=STORED_TAGS,
        summary="Keep a stored backup, or leave it to the retention rules",
        description="`keep: true` exempts the backup from the retention rules (keep last, "
        "monthly, maximum age): it stays until deleted by hand, and `expires_at` is null. "
        "`keep: false` leaves it to the rules again. Audited.",
        parameters=[TENANT_PARAMETER, BACKUP_ID],
        request=KeepSerializer,
        responses={
            200: StoredBackupSerializer,
            400: _error(
                "invalid_request: keep missing or not a JSON boolean, or another field sent; "
                "malformed_request: the body is not JSON."
            ),
            **ACCESS_ERRORS,
            **BACKUP_NOT_FOUND,
        },
    )
    def patch(self, request: Request, tenant: str, id: str) -> Response:
        backup = get_backup(self.tenant, id)
        serializer = KeepSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        backup = set_keep(backup, serializer.validated_data["keep"], user=request.user)
        return Response(StoredBackupSerializer(backup).data)


class DownloadLinkView(StoredJobView):
    @extend_schema(
        operation_id="stored_backup_download_link",
        tags=STORED_TAGS,
        summary="A signed link to download a stored backup",
        description="The link is valid for `BACKUP_DOWNLOAD_LINK_SECONDS` (default 600), for "
        "you and this backup only. A browser session must send the account's `password`, "
        "checked again; a token client need not (its token is its credential).",
        parameters=[TENANT_PARAMETER, BACKUP_ID],
        request=DownloadLinkRequestSerializer,
        responses={
            200: DownloadLinkSerializer,
            400: _error("invalid_request, ambiguous_request."),
            **ACCESS_ERRORS,
            403: _error(
                "password_required: a session without the right password; or "
                "permission_denied (a member without backup rights)."
            ),
            **BACKUP_NOT_FOUND,
            409: _error("not_restorable: the backup did not succeed, it has no file."),
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str, id: str) -> Response:
        backup = get_backup(self.tenant, id)
        serializer = DownloadLinkRequestSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        token, expires_at = links.issue(
            backup,
            user=request.user,
            password=serializer.validated_data["password"],
            # A session cookie is anyone's who sits at the browser: the password is asked again.
            check_password=isinstance(request.successful_authenticator, SessionAuthentication),
        )
        path = reverse(
            "backup-api:backup-download", kwargs={"tenant": self.tenant.slug, "id": backup.id}
        )
        url = request.build_absolute_uri(f"{path}?{urlencode({'token': token})}")
        return Response({"url": url, "expires_at": expires_at})


class AnyAccept(DefaultContentNegotiation):
    """The file is the answer whatever the client says it accepts; only an error is
    rendered, and a client that accepts nothing of the API's gets it as JSON."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


class DownloadView(StoredJobView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        operation_id="stored_backup_download",
        tags=STORED_TAGS,
        summary="Download a stored backup through its link",
        description="Follow the `url` of `download-link/` with the same credentials. The file "
        "is streamed as stored: zstd-compressed JSON, attachment "
        "`<slug>-<YYYYmmdd-HHMMSS>.json.zst` (the backup's creation time, UTC), with `.age` after "
        "it when stored backups are encrypted at rest (BACKUP_AGE_RECIPIENTS).",
        parameters=[
            TENANT_PARAMETER,
            BACKUP_ID,
            OpenApiParameter(
                "token",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                description="The signed token of the download link.",
            ),
        ],
        responses={
            (200, "application/zstd"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The backup document, zstd-compressed."
            ),
            400: _error("invalid_request: no token; ambiguous_request: two tokens."),
            **ACCESS_ERRORS,
            403: _error(
                "link_refused: the link was altered, has expired, or was issued to another "
                "user or for another backup; or permission_denied."
            ),
            **BACKUP_NOT_FOUND,
            **STORAGE_FAILED,
        },
    )
    def get(self, request: Request, tenant: str, id: str) -> FileResponse:
        backup = get_backup(self.tenant, id)
        refuse_repeated_fields(request.query_params)
        query = DownloadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        handle = links.open_download(
            query.validated_data["token"], backup=backup, user=request.user
        )
        stamp = backup.created_at.astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
        filename, content_type = stored_download_name(
            backup.storage_name, f"{self.tenant.slug}-{stamp}"
        )
        response = FileResponse(
            handle, as_attachment=True, filename=filename, content_type=content_type
        )
        response["Cache-Control"] = "no-store"
        return response


RESTORE_REQUEST_ERRORS = {
    400: _error("invalid_request (fields, naming each), ambiguous_request."),
    **ACCESS_ERRORS,
    403: _error(
        "permission_denied: a member without backup rights, or create_missing_master_data "
        "asked for by a user who is not a superuser."
    ),
}


class BackupRestoreView(StoredJobView):
    throttle_scope = IMPORT

    @extend_schema(
        operation_id="stored_backup_restore",
        tags=STORED_TAGS,
        summary="Restore a stored backup: its preview first (in the background)",
        description="Enqueues the preview of the restore and answers with the restore's id and "
        "URL. Poll the restore until `awaiting_confirmation`, read its `preview`, then POST "
        "`restores/{id}/confirm/` to run the import (or `cancel/`).",
        parameters=[TENANT_PARAMETER, BACKUP_ID],
        request=RestoreOptionsSerializer,
        responses={
            202: JobAcceptedSerializer,
            **RESTORE_REQUEST_ERRORS,
            **BACKUP_NOT_FOUND,
            409: _error("not_restorable: only a backup that succeeded can be restored."),
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str, id: str) -> Response:
        backup = get_backup(self.tenant, id)
        serializer = RestoreOptionsSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        restore = request_restore(
            self.tenant,
            user=request.user,
            trigger=Trigger.API,
            options=import_options(data),
            backup=backup,
            undo=data["undo"],
        )
        return _accepted(request, "restore", restore)


class RestoresView(StoredJobView):
    throttle_scope = IMPORT

    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "POST":
            # Before anything reads the body: an oversized upload is refused unread.
            refuse_large_body(request.META)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="restores_list",
        tags=STORED_TAGS,
        summary="List the tenant's restores, newest first",
        description="Every restore into (or, for a new tenant, from) the tenant, with its status.",
        parameters=[TENANT_PARAMETER],
        responses={200: RestoreSerializer(many=True), **ACCESS_ERRORS},
    )
    def get(self, request: Request, tenant: str) -> Response:
        return Response(RestoreSerializer(restores_of(self.tenant), many=True).data)

    @extend_schema(
        operation_id="restores_create",
        tags=STORED_TAGS,
        summary="Restore an uploaded backup: its preview first (in the background)",
        description="The upload is kept until the restore ends; then as for a stored backup: "
        "poll the restore, read its `preview`, confirm.",
        parameters=[TENANT_PARAMETER],
        request={"multipart/form-data": RestoreUploadSerializer},
        responses={
            202: JobAcceptedSerializer,
            **RESTORE_REQUEST_ERRORS,
            413: _error("upload_too_large."),
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str) -> Response:
        serializer = RestoreUploadSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refuse_large_file(data["file"].size)
        restore = request_restore(
            self.tenant,
            user=request.user,
            trigger=Trigger.API,
            options=import_options(data),
            upload=data["file"],
            undo=data["undo"],
        )
        return _accepted(request, "restore", restore)


class RestoreView(StoredJobView):
    @extend_schema(
        operation_id="restore_retrieve",
        tags=STORED_TAGS,
        summary="One restore",
        description="Its status and progress; `preview` once `awaiting_confirmation`, `report` "
        "and `undo_backup` once `succeeded`, `error` and `error_details` once `failed`.",
        parameters=[TENANT_PARAMETER, RESTORE_ID],
        responses={200: RestoreSerializer, **ACCESS_ERRORS, **RESTORE_NOT_FOUND},
    )
    def get(self, request: Request, tenant: str, id: str) -> Response:
        return Response(RestoreSerializer(get_restore(self.tenant, id)).data)


class RestoreConfirmView(StoredJobView):
    throttle_scope = IMPORT

    @extend_schema(
        operation_id="restore_confirm",
        tags=STORED_TAGS,
        summary="Confirm a previewed restore: the import runs (in the background)",
        description="Only a restore `awaiting_confirmation`. A replace needs `confirmation`: "
        "the tenant's name, typed exactly. Poll the restore until `succeeded` (its `report`) "
        "or `failed`.",
        parameters=[TENANT_PARAMETER, RESTORE_ID],
        request=ConfirmSerializer,
        responses={
            202: JobAcceptedSerializer,
            400: _error(
                "confirmation_required (replace without the tenant's name; nothing changed, "
                "confirm again), invalid_request, ambiguous_request."
            ),
            **ACCESS_ERRORS,
            **RESTORE_NOT_FOUND,
            409: _error("job_active: the restore is not awaiting confirmation."),
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str, id: str) -> Response:
        restore = get_restore(self.tenant, id)
        serializer = ConfirmSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        restore = confirm_restore(
            restore, user=request.user, confirmation=serializer.validated_data["confirmation"]
        )
        return _accepted(request, "restore", restore)


class RestoreCancelView(StoredJobView):
    throttled_methods = ()

    @extend_schema(
        operation_id="restore_cancel",
        tags=STORED_TAGS,
        summary="Cancel a restore awaiting confirmation",
        description="Nothing is imported; the upload of an upload's restore is discarded.",
        parameters=[TENANT_PARAMETER, RESTORE_ID],
        request=None,
        responses={
            200: RestoreSerializer,
            **ACCESS_ERRORS,
            **RESTORE_NOT_FOUND,
            409: _error("job_active: the restore is not awaiting confirmation."),
        },
    )
    def post(self, request: Request, tenant: str, id: str) -> Response:
        restore = cancel_restore(get_restore(self.tenant, id), user=request.user)
        return Response(RestoreSerializer(restore).data)


# Automatic backups ---------------------------------------------------------------------------


class ScheduleView(TenantBackupView):
    """The tenant's automatic backups. PUT and PATCH both change only the settings sent: the
    schedule always has every setting, so there is nothing for a PUT to reset."""

    parser_classes = [JSONParser]

    def schedule_answer(self, schedule: Any) -> Response:
        alerts = AlertSerializer(open_alerts(self.tenant), many=True).data
        return Response({**describe(schedule), "alerts": alerts})

    @extend_schema(
        operation_id="backup_schedule_retrieve",
        tags=SCHEDULE_TAGS,
        summary="The tenant's backup schedule and its open alerts",
        description="When automatic backups run (a local time in the schedule's time zone, "
        "daily or on one weekday), their export options, whether each is restore-drilled, the "
        "retention rules, the next slot, and the alerts that are open (a scheduled backup or "
        "drill that failed, a slot missed). A tenant without a schedule gets the deployment's "
        "defaults.",
        parameters=[TENANT_PARAMETER],
        responses={200: ScheduleSerializer, **ACCESS_ERRORS},
    )
    def get(self, request: Request, tenant: str) -> Response:
        return self.schedule_answer(schedule_of(self.tenant))

    @extend_schema(
        operation_id="backup_schedule_update",
        tags=SCHEDULE_TAGS,
        summary="Change the tenant's backup schedule",
        description="Send any of the settings, as a JSON object; the others keep their values. "
        "Every value is checked before anything is saved, and every wrong one is named. The "
        "next slot is planned again, and `expires_at` of the tenant's backups follows a new "
        "`max_age_days`. Audited (backup.schedule.updated, with before and after).",
        parameters=[TENANT_PARAMETER],
        request=ScheduleSettingsSerializer,
        responses={200: ScheduleSerializer, **SCHEDULE_ERRORS},
    )
    def put(self, request: Request, tenant: str) -> Response:
        return self.schedule_answer(
            update_schedule(self.tenant, _settings_sent(request), user=request.user)
        )

    @extend_schema(
        operation_id="backup_schedule_partial_update",
        tags=SCHEDULE_TAGS,
        summary="Change some of the tenant's backup schedule",
        description="The same as PUT: only the settings sent change.",
        parameters=[TENANT_PARAMETER],
        request=ScheduleSettingsSerializer,
        responses={200: ScheduleSerializer, **SCHEDULE_ERRORS},
    )
    def patch(self, request: Request, tenant: str) -> Response:
        return self.put(request, tenant)


def _settings_sent(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise ValidationError(
            f"The body must be a JSON object of schedule settings ({', '.join(EDITABLE)}), "
            f"not {_json_kind(data)}."
        )
    return data


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"
