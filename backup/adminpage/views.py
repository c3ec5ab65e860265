"""Views of Admin > Backup. Each one checks access, validates a form and calls one service.

The site wraps every view with `admin_view` (staff only, else the admin login). Which tenants a
user may act on is `backup.access`: a tenant the user has no membership in is a 404, a plain
membership a 403.

Between an upload and its import the preview is kept in the session, so that the preview page
is a plain GET (reloadable, reached by POST/redirect) and the file itself stays in storage
(`backup.uploads`).
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from backup.access import Access, access_to, managed_tenants, may_create_master_data
from backup.adminpage.forms import ConfirmImportForm, ExportForm, ImportForm, PendingForm
from backup.errors import (
    BackupError,
    ConfirmationRequired,
    ImportRunning,
    UploadNotFound,
    UploadTooLarge,
)
from backup.export import iter_export
from backup.registry import registry
from backup.restore import Mode
from backup.statistics import tenant_statistics
from backup.throttles import EXPORT, IMPORT, wait_before
from backup.uploads import discard, get_pending, import_pending, preview_upload
from backup.web_requests import refuse_large_body, refuse_repeated_fields
from tenants.models import Tenant

PREVIEWS = "backup_previews"
RESULT = "backup_import_result"
KEPT_PREVIEWS = 5  # a few tabs' worth; older previews are dropped from the session
PICKER_LIMIT = 50  # superusers may have thousands of tenants: search, then pick


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> TemplateResponse:
    return TemplateResponse(
        request,
        f"admin/backup/{template}",
        {**admin.site.each_context(request), **context},
        status=status,
    )


def _tenant(request: HttpRequest, slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    access = access_to(request.user, tenant) if tenant is not None else Access.NONE
    if access is Access.NONE:
        raise Http404("No tenant here with this slug.")  # other tenants are not revealed
    if access is Access.MEMBER:
        raise PermissionDenied("Only owners and admins of a tenant may back it up or restore it.")
    return tenant


def _tenant_url(tenant: Tenant | str) -> str:
    slug = tenant.slug if isinstance(tenant, Tenant) else tenant
    return reverse("admin:backup_tenant", kwargs={"slug": slug})


def _table_labels() -> dict[str, str]:
    return {
        spec.name: capfirst(spec.model._meta.verbose_name_plural)
        for spec in (*registry().tenant_tables, *registry().master_tables)
    }


@require_GET
def choose_tenant(request: HttpRequest) -> HttpResponse:
    tenants = managed_tenants(request.user)
    if not request.user.is_superuser:
        mine = list(tenants[:2])
        if not mine:
            raise PermissionDenied("You are not an owner or admin of any tenant.")
        if len(mine) == 1:
            return HttpResponseRedirect(_tenant_url(mine[0]))
    query = request.GET.get("q", "").strip()
    if query:
        tenants = tenants.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    return _render(
        request,
        "choose_tenant.html",
        {
            "title": "Backup",
            "subtitle": "Choose a tenant",
            "query": query,
            "tenants": tenants[:PICKER_LIMIT],
            "total": tenants.count(),
            "limit": PICKER_LIMIT,
        },
    )


def _tenant_page(
    request: HttpRequest,
    tenant: Tenant,
    *,
    export_form: ExportForm | None = None,
    import_form: ImportForm | None = None,
    failure: BackupError | None = None,
    status: int = 200,
) -> HttpResponse:
    reg = registry()
    labels = _table_labels()
    statistics = tenant_statistics(tenant)
    result = request.session.get(RESULT)
    if result is not None and result["tenant"] == tenant.slug:
        del request.session[RESULT]  # shown once
    else:
        result = None
    return _render(
        request,
        "tenant.html",
        {
            "title": f"Backup of {tenant.name}",
            "subtitle": None,
            "tenant": tenant,
            "statistics": [(labels[name], count) for name, count in statistics.items()],
            "total_rows": sum(statistics.values()),
            "exported_tables": [labels[t.name] for t in reg.tenant_tables if not t.optional],
            "optional_tables": [labels[t.name] for t in reg.tenant_tables if t.optional],
            "soft_delete_tables": [labels[t.name] for t in reg.tenant_tables if t.soft_delete],
            "secret_tables": [labels[t.name] for t in reg.tenant_tables if t.secrets],
            "master_tables": [labels[t.name] for t in reg.master_tables],
            "export_form": export_form or ExportForm(),
            "import_form": import_form or _import_form(request),
            "failure": failure,
            "result": result and {**_report_context(result["report"]), "caption": _caption(result)},
            "result_tenant_url": result and result.get("tenant_url"),
        },
        status=status,
    )


def _caption(result: dict[str, Any]) -> str:
    report = result["report"]
    if report["mode"] == Mode.NEW_TENANT:
        target = report["tenant"]
        return f"Restored as new tenant {target['name']} ({target['slug']})"
    return f"Import done ({report['mode']}): what the import did"


def _import_form(request: HttpRequest, *args: Any) -> ImportForm:
    return ImportForm(*args, may_create_master_data=may_create_master_data(request.user))


@require_GET
def tenant_page(request: HttpRequest, slug: str) -> HttpResponse:
    return _tenant_page(request, _tenant(request, slug))


def _throttled(request: HttpRequest, tenant: Tenant, scope: str) -> HttpResponse | None:
    """The 429 page when the user or the tenant has done `scope` too often (`backup.throttles`,
    the API's limits), or None."""
    wait = wait_before(scope, user=request.user, tenant=tenant)
    if wait is None:
        return None
    seconds = int(wait + 0.999)
    failure = BackupError(
        f"Too many {'exports' if scope == EXPORT else 'uploads and imports'} of this tenant or "
        f"by you for now: try again in {seconds} seconds."
    )
    response = _tenant_page(request, tenant, failure=failure, status=429)
    response["Retry-After"] = str(seconds)
    return response


@require_POST
def export(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _tenant_page(request, tenant, export_form=form, status=400)
    if throttled := _throttled(request, tenant, EXPORT):
        return throttled
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        iter_export(tenant, options=form.options(), actor=request.user),
        content_type="application/json",
    )
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"{tenant.slug}-backup-{stamp}.json"
    )
    return response


@csrf_exempt  # checked in `_upload`, once the body is known to be small enough to read
@require_POST
def upload(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    try:
        refuse_large_body(request.META)
    except UploadTooLarge as exc:
        return _tenant_page(request, tenant, failure=exc, status=413)
    return _upload(request, tenant)


@csrf_protect
def _upload(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    slug = tenant.slug
    form = _import_form(request, request.POST, request.FILES)
    try:
        refuse_repeated_fields(request.POST, request.FILES)
    except BackupError as exc:
        return _tenant_page(request, tenant, import_form=form, failure=exc, status=400)
    if not form.is_valid():
        status = 413 if form.has_error("file", "too_large") else 400
        return _tenant_page(request, tenant, import_form=form, status=status)
    if throttled := _throttled(request, tenant, IMPORT):
        return throttled
    try:
        pending, report = preview_upload(
            form.cleaned_data["file"], tenant=tenant, user=request.user, options=form.options()
        )
    except BackupError as exc:
        return _tenant_page(request, tenant, import_form=form, failure=exc, status=400)
    previews = request.session.get(PREVIEWS, {})
    previews[pending.id] = {
        "tenant": tenant.slug,
        "filename": pending.filename,
        "size": pending.size,
        "report": report.as_dict(),
    }
    request.session[PREVIEWS] = dict(list(previews.items())[-KEPT_PREVIEWS:])
    return HttpResponseRedirect(
        reverse("admin:backup_import_preview", kwargs={"slug": slug, "pending_id": pending.id})
    )


def _report_context(report: dict[str, Any]) -> dict[str, Any]:
    labels = _table_labels()
    return {
        **report,
        "rows": [(labels.get(name, name), counts) for name, counts in report["tables"].items()],
        "master_rows": [
            (labels.get(name, name), counts)
            for name, counts in report["master_data"].items()
            if counts["in_file"]
        ],
        "deletes": report["totals"]["delete"] > 0,
    }


def _preview_page(
    request: HttpRequest, tenant: Tenant, pending_id: str, form: ConfirmImportForm, status: int
) -> HttpResponse:
    try:
        get_pending(pending_id, tenant=tenant, user=request.user)
    except UploadNotFound as exc:
        _forget_preview(request, pending_id)
        messages.error(request, exc.message)
        return HttpResponseRedirect(_tenant_url(tenant))
    stored = request.session.get(PREVIEWS, {}).get(pending_id)
    if stored is None or stored["tenant"] != tenant.slug:
        # The upload is there, but its preview was shown in another session: nobody has seen
        # what it would do, so it is not imported.
        discard(pending_id)
        messages.error(request, "This preview is no longer available. Upload the file again.")
        return HttpResponseRedirect(_tenant_url(tenant))
    report = _report_context(stored["report"])
    return _render(
        request,
        "preview.html",
        {
            "title": f"Import into {tenant.name}: preview",
            "subtitle": None,
            "tenant": tenant,
            "upload": stored,
            "report": report,
            "replace": report["mode"] == Mode.REPLACE,
            "new_tenant": report["mode"] == Mode.NEW_TENANT,
            "form": form,
        },
        status=status,
    )


@require_GET
def preview(request: HttpRequest, slug: str, pending_id: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    form = ConfirmImportForm(initial={"pending_id": pending_id})
    return _preview_page(request, tenant, pending_id, form, 200)


def _forget_preview(request: HttpRequest, pending_id: str) -> dict[str, Any] | None:
    previews = request.session.get(PREVIEWS, {})
    stored = previews.pop(pending_id, None)
    if stored is not None:
        request.session[PREVIEWS] = previews
    return stored


@require_POST
def confirm(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    form = ConfirmImportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The confirmation form was incomplete. Upload the file again.")
        return HttpResponseRedirect(_tenant_url(tenant))
    pending_id = form.cleaned_data["pending_id"]
    if pending_id not in request.session.get(PREVIEWS, {}):
        messages.error(request, "This preview is no longer available. Upload the file again.")
        return HttpResponseRedirect(_tenant_url(tenant))
    if throttled := _throttled(request, tenant, IMPORT):
        return throttled
    try:
        report = import_pending(
            pending_id,
            tenant=tenant,
            user=request.user,
            confirmation=form.cleaned_data["confirmation"],
        )
    except ConfirmationRequired as exc:
        form.add_error("confirmation", exc.message)
        return _preview_page(request, tenant, pending_id, form, 400)
    except ImportRunning as exc:
        form.add_error(None, exc.message)
        return _preview_page(request, tenant, pending_id, form, 409)
    except BackupError as exc:
        _forget_preview(request, pending_id)
        return _tenant_page(request, tenant, failure=exc, status=400)
    _forget_preview(request, pending_id)
    result_tenant = Tenant.objects.filter(pk=report.tenant["id"]).first()
    request.session[RESULT] = {
        "tenant": tenant.slug,
        "report": report.as_dict(),
        "tenant_url": (
            _tenant_url(result_tenant)
            if result_tenant is not None
            and result_tenant != tenant
            and access_to(request.user, result_tenant) is Access.MANAGE
            else None
        ),
    }
    messages.success(request, _done_message(report.mode, report.tenant, report.totals()))
    return HttpResponseRedirect(_tenant_url(tenant))


def _done_message(mode: Mode, target: dict[str, str], totals: Any) -> str:
    counts = f"{totals.create} created, {totals.update} updated, {totals.unchanged} unchanged"
    if totals.delete:
        counts += f", {totals.delete} deleted"
    if mode == Mode.NEW_TENANT:
        return f"Restored as new tenant '{target['name']}' ({target['slug']}): {counts}."
    return f"Imported into '{target['name']}' ({mode}): {counts}."


@require_POST
def cancel(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    form = PendingForm(request.POST)
    if form.is_valid():
        pending_id = form.cleaned_data["pending_id"]
        try:
            get_pending(pending_id, tenant=tenant, user=request.user)
        except UploadNotFound:
            pass  # already gone: nothing left to cancel
        else:
            discard(pending_id)
        _forget_preview(request, pending_id)
    messages.info(request, "Import cancelled; nothing was changed.")
    return HttpResponseRedirect(_tenant_url(tenant))
