"""The backup endpoints of one tenant. Each view validates its request, calls one service of
`backup` and shapes the answer; the backup logic itself lives in the services."""

import datetime as dt
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.datastructures import MultiValueDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backup.api.errors import SqlExportGone
from backup.api.permissions import ManagesTenantBackup
from backup.api.serializers import (
    ErrorSerializer,
    ExportOptionsSerializer,
    ImportReportSerializer,
    ImportUploadSerializer,
    PreviewOptionsSerializer,
    PreviewSerializer,
    StatsSerializer,
)
from backup.api.throttles import BackupRateThrottle
from backup.export import ExportOptions, iter_export
from backup.restore import ImportOptions, Mode
from backup.statistics import tenant_statistics
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
        "`gzip` is true), as an attachment named `<slug>-backup-<UTC time>.json[.gz]`.",
        parameters=[TENANT_PARAMETER],
        request=ExportOptionsSerializer,
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The backup document (format version 1)."
            ),
            (200, "application/gzip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The same, gzip-compressed."
            ),
            400: _error("Invalid options: invalid_request."),
            **ACCESS_ERRORS,
            **THROTTLED,
        },
    )
    def post(self, request: Request, tenant: str) -> StreamingHttpResponse:
        serializer = ExportOptionsSerializer(data=self.fields(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        compress = data["gzip"]
        chunks = iter_export(
            self.tenant,
            options=ExportOptions(
                include_audit_logs=data["include_audit_logs"],
                include_deleted=data["include_deleted"],
            ),
            actor=request.user,
            compress=compress,
        )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        filename = f"{self.tenant.slug}-backup-{stamp}.json" + (".gz" if compress else "")
        response = StreamingHttpResponse(
            chunks, content_type="application/gzip" if compress else "application/json"
        )
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
                "unsupported_version, or validation_failed (details lists the problems)."
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
            options=ImportOptions(
                mode=Mode(data["mode"]),
                create_missing_master_data=data["create_missing_master_data"],
                new_tenant_slug=data.get("new_tenant_slug", ""),
                new_tenant_name=data.get("new_tenant_name", ""),
            ),
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
                "invalid_file or validation_failed."
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
        )
        created = report.mode == Mode.NEW_TENANT
        return Response(
            report.as_dict(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
