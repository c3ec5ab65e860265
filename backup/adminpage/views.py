"""Views of Admin > Backup. Each one checks access, validates a form and calls one service.

The site wraps every view with `admin_view` (staff only, else the admin login). Which tenants a
user may act on is `backup.access`: a tenant the user has no membership in is a 404, a plain
membership a 403.

Between an upload and its import the preview is kept in the session, so that the preview page
is a plain GET (reloadable, reached by POST/redirect) and the file itself stays in storage
(`backup.uploads`).

The schedule of the tenant's automatic backups is edited on the same page; its form only
parses the inputs, and `update_schedule` decides what is valid.

Stored backups and their restores are jobs (`backup.stored`): an action only asks for one and
redirects to a page that shows it. A page showing a queued or running job reloads itself every
few seconds with a `<meta http-equiv="refresh">`, so that progress shows without JavaScript.
"""

import datetime as dt
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
from django.utils.http import content_disposition_header, urlencode
from django.utils.text import capfirst
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backup.access import Access, access_to, managed_tenants, may_create_master_data
from backup.adminpage.forms import (
    ConfirmationForm,
    ConfirmImportForm,
    ExportForm,
    ImportForm,
    KeepForm,
    PasswordForm,
    PendingForm,
    ScheduleForm,
    StoredRestoreForm,
)
from backup.errors import (
    BackupError,
    BackupNotFound,
    ConfirmationRequired,
    DailyLimitReached,
    EncryptedFile,
    ImportRunning,
    InvalidKey,
    InvalidSchedule,
    JobActive,
    NotPermitted,
    PasswordRequired,
    UploadNotFound,
    UploadTooLarge,
    WrongKey,
)
from backup.export import download_name, iter_export
from backup.models import Restore, Schedule, StoredBackup, Trigger
from backup.registry import registry
from backup.restore import Mode
from backup.statistics import tenant_statistics
from backup.stored import alerts, backups, keys, links, restores, schedules
from backup.stored.slots import zone_named
from backup.throttles import EXPORT, IMPORT, wait_before
from backup.uploads import discard, get_pending, import_pending, preview_upload
from backup.web_requests import refuse_large_body, refuse_repeated_fields
from tenants.models import Tenant

PREVIEWS = "backup_previews"
RESULT = "backup_import_result"
KEPT_PREVIEWS = 5  # a few tabs' worth; older previews are dropped from the session
PICKER_LIMIT = 50  # superusers may have thousands of tenants: search, then pick
BACKUPS_SHOWN = 50
RESTORES_SHOWN = 10
REFRESH_SECONDS = 2


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
    return _managed(request, Tenant.objects.filter(slug=slug).first())


def _managed(request: HttpRequest, tenant: Tenant | None) -> Tenant:
    access = access_to(request.user, tenant) if tenant is not None else Access.NONE
    if access is Access.NONE:
        raise Http404("No such tenant here.")  # other tenants are not revealed
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
    wanted = request.GET.get("tenant")
    if wanted is not None:
        # The links in the emails about backups and restores name the tenant by its id.
        tenant = Tenant.objects.filter(pk=wanted).first() if backups.is_uuid(wanted) else None
        return HttpResponseRedirect(_tenant_url(_managed(request, tenant)))
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
    create_failure: BackupError | None = None,
    schedule_form: ScheduleForm | None = None,
    status: int = 200,
) -> HttpResponse:
    reg = registry()
    schedule = schedules.schedule_of(tenant)  # the defaults, unsaved, until one is saved
    described = schedules.describe(schedule)
    if schedule_form is None:
        schedule_form = ScheduleForm(initial=ScheduleForm.initial_from(described))
    stored = list(backups.backups_of(tenant)[: BACKUPS_SHOWN + 1])
    recent_restores = list(restores.restores_of(tenant)[:RESTORES_SHOWN])
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
            "export_form": export_form or _export_form(),
            "import_form": import_form or _import_form(request),
            "failure": failure,
            "result": result and {**_report_context(result["report"]), "caption": _caption(result)},
            "result_tenant_url": result and result.get("tenant_url"),
            "create_failure": create_failure,
            "daily_limit": backups.daily_limit(),
            "stored_backups": stored[:BACKUPS_SHOWN],
            "more_backups": len(stored) > BACKUPS_SHOWN,
            "backups_shown": BACKUPS_SHOWN,
            "restores": recent_restores,
            "schedule": schedule,
            "weekday": described and described["weekday"],
            "schedule_form": schedule_form,
            "schedule_window": schedules.window_minutes(),
            "alerts": list(alerts.open_alerts(tenant)),
            **_refresh(
                _tenant_url(tenant),
                result is None and any(job.active for job in (*stored, *recent_restores)),
                status,
            ),
        },
        status=status,
    )


def _refresh(url: str, active: bool, status: int) -> dict[str, Any]:
    """The page reloads itself (to `url`, a GET) while it shows a job that is not finished; not
    when it answers a form with an error or shows a result once, which a reload would lose."""
    return {"refresh_url": url if active and status == 200 else None, "refresh": REFRESH_SECONDS}


def _caption(result: dict[str, Any]) -> str:
    report = result["report"]
    if report["mode"] == Mode.NEW_TENANT:
        target = report["tenant"]
        return f"Restored as new tenant {target['name']} ({target['slug']})"
    return f"Import done ({report['mode']}): what the import did"


def _export_form(*args: Any) -> ExportForm:
    return ExportForm(*args, deployment_keys=keys.encrypting_at_rest())


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
    form = _export_form(request.POST)
    if not form.is_valid():
        return _tenant_page(request, tenant, export_form=form, status=400)
    try:
        encryption = keys.download_encryption(tenant, *form.how_encrypted())
    except InvalidKey as exc:
        form.add_error("encryption", exc.message)
        return _tenant_page(request, tenant, export_form=form, status=400)
    if throttled := _throttled(request, tenant, EXPORT):
        return throttled
    # Encrypted: compressed first, since what is encrypted no longer compresses.
    sealed = encryption is not None
    options = form.options()
    filename, content_type = download_name(tenant.slug, options, compress=sealed, encrypted=sealed)
    response = StreamingHttpResponse(
        iter_export(
            tenant, options=options, actor=request.user, compress=sealed, encryption=encryption
        ),
        content_type=content_type,
    )
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=filename
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
            form.cleaned_data["file"],
            tenant=tenant,
            user=request.user,
            options=form.options(),
            passphrase=form.cleaned_data["passphrase"],
            identities=keys.deployment_identities,
        )
    except BackupError as exc:
        return _tenant_page(request, tenant, import_form=form, failure=exc, status=400)
    previews = request.session.get(PREVIEWS, {})
    previews[pending.id] = {
        "tenant": tenant.slug,
        "filename": pending.filename,
        "size": pending.size,
        "report": report.as_dict(),
        # Opened with a passphrase: the import asks for it again (it is kept nowhere).
        "passphrase": bool(form.cleaned_data["passphrase"]),
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
            passphrase=form.cleaned_data["passphrase"],
            identities=keys.deployment_identities,
        )
    except ConfirmationRequired as exc:
        form.add_error("confirmation", exc.message)
        return _preview_page(request, tenant, pending_id, form, 400)
    except (EncryptedFile, WrongKey) as exc:
        form.add_error("passphrase", exc.message)
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


# -- stored backups ----------------------------------------------------------------------------


def _backup(tenant: Tenant, backup_id: str) -> StoredBackup:
    try:
        return backups.get_backup(tenant, backup_id)
    except BackupNotFound as exc:
        raise Http404(exc.message) from None


def _restore(tenant: Tenant, restore_id: str) -> Restore:
    try:
        return restores.get_restore(tenant, restore_id)
    except BackupNotFound as exc:
        raise Http404(exc.message) from None


def _restore_url(restore: Restore) -> str:
    return reverse(
        "admin:backup_restore", kwargs={"slug": restore.tenant.slug, "restore_id": restore.id}
    )


def _field_message(exc: BackupError, field: str) -> str:
    """The message of an error that names the field it is about ("password: ..."), without
    the name, for display beside that field."""
    message = exc.message.removeprefix(f"{field}: ")
    return message[:1].upper() + message[1:]


@require_POST
def create_backup(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    form = _export_form(request.POST)
    if not form.is_valid():
        return _tenant_page(request, tenant, export_form=form, status=400)
    try:
        backups.request_backup(
            tenant, user=request.user, trigger=Trigger.PAGE, options=form.options()
        )
    except DailyLimitReached as exc:
        response = _tenant_page(request, tenant, export_form=form, create_failure=exc, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    messages.success(
        request,
        "Backup queued: a worker makes it in the background, and the list below shows its "
        "progress. You get an email when it is ready.",
    )
    return HttpResponseRedirect(_tenant_url(tenant))


def _backup_page(
    request: HttpRequest,
    template: str,
    title: str,
    backup: StoredBackup,
    context: dict[str, Any],
    status: int = 200,
) -> TemplateResponse:
    return _render(
        request,
        template,
        {
            "title": f"{title}: backup of {backup.tenant.name}",
            "subtitle": None,
            "tenant": backup.tenant,
            "backup": backup,
            **context,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def download_backup(request: HttpRequest, slug: str, backup_id: str) -> HttpResponse:
    """Asks for the account's password again, then sends the browser to a signed link of the
    API, which streams the file."""
    tenant = _tenant(request, slug)
    backup = _backup(tenant, backup_id)
    if request.method == "GET":
        return _backup_page(request, "download.html", "Download", backup, {"form": PasswordForm()})
    form = PasswordForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            token, _expires_at = links.issue(
                backup,
                user=request.user,
                password=form.cleaned_data["password"],
                check_password=True,
            )
        except PasswordRequired as exc:
            form.add_error("password", _field_message(exc, "password"))
        except BackupError as exc:  # the backup has no file (failed, or not made yet)
            form.add_error(None, exc.message)
            status = 409
        else:
            url = reverse(
                "backup-api:backup-download", kwargs={"tenant": tenant.slug, "id": backup.id}
            )
            return HttpResponseRedirect(f"{url}?{urlencode({'token': token})}")
    return _backup_page(request, "download.html", "Download", backup, {"form": form}, status)


@require_http_methods(["GET", "POST"])
def delete_backup(request: HttpRequest, slug: str, backup_id: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    backup = _backup(tenant, backup_id)
    if request.method == "GET":
        return _backup_page(request, "delete.html", "Delete", backup, {"failure": None})
    try:
        backups.delete_backup(backup, user=request.user)
    except JobActive as exc:
        return _backup_page(request, "delete.html", "Delete", backup, {"failure": exc}, 409)
    messages.success(
        request, f"The backup of {backup.created_at:%Y-%m-%d %H:%M:%S} UTC was deleted."
    )
    return HttpResponseRedirect(_tenant_url(tenant))


def _restore_form(request: HttpRequest, *args: Any) -> StoredRestoreForm:
    return StoredRestoreForm(*args, may_create_master_data=may_create_master_data(request.user))


@require_http_methods(["GET", "POST"])
def restore_backup(request: HttpRequest, slug: str, backup_id: str) -> HttpResponse:
    """Asks how to restore the backup, then for its preview (a job), shown by the restore's
    page."""
    tenant = _tenant(request, slug)
    backup = _backup(tenant, backup_id)
    if request.method == "GET":
        context = {"form": _restore_form(request), "failure": None}
        return _backup_page(request, "restore_backup.html", "Restore", backup, context)
    form = _restore_form(request, request.POST)
    status, failure = 400, None
    if form.is_valid():
        if throttled := _throttled(request, tenant, IMPORT):
            return throttled
        try:
            restore = restores.request_restore(
                tenant,
                user=request.user,
                trigger=Trigger.PAGE,
                options=form.options(),
                backup=backup,
                undo=form.cleaned_data["undo"],
            )
        except NotPermitted as exc:
            status, failure = 403, exc
        except BackupError as exc:  # a backup that did not succeed has nothing to restore
            status, failure = 409, exc
        else:
            return HttpResponseRedirect(_restore_url(restore))
    context = {"form": form, "failure": failure}
    return _backup_page(request, "restore_backup.html", "Restore", backup, context, status)


def _restore_page(
    request: HttpRequest,
    tenant: Tenant,
    restore: Restore,
    form: ConfirmationForm,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    preview = restore.preview and _report_context(restore.preview)
    report = restore.report and {
        **_report_context(restore.report),
        "caption": _caption({"report": restore.report}),
    }
    details = restore.error_details or {}
    result_tenant = None
    if report and restore.mode == Mode.NEW_TENANT:
        result_tenant = Tenant.objects.filter(pk=report["tenant"]["id"]).first()
        if result_tenant is not None and access_to(request.user, result_tenant) != Access.MANAGE:
            result_tenant = None
    return _render(
        request,
        "restore.html",
        {
            "title": f"Restore into {_target_name(restore)}",
            "subtitle": None,
            "tenant": tenant,
            "restore": restore,
            "preview": preview,
            "report": report,
            "failure": restore.status == Restore.Status.FAILED
            and {
                "message": restore.error,
                "problems": details.get("problems", []),
                "more": details.get("more", 0),
            },
            "replace": restore.mode == Mode.REPLACE,
            "new_tenant": restore.mode == Mode.NEW_TENANT,
            "result_tenant": result_tenant,
            "form": form,
            "error": error,
            **_refresh(_restore_url(restore), restore.active, status),
        },
        status=status,
    )


def _target_name(restore: Restore) -> str:
    if restore.mode == Mode.NEW_TENANT:
        options = restore.options
        return f"new tenant {options.get('new_tenant_name') or options['new_tenant_slug']}"
    return restore.tenant.name


@require_GET
def restore_status(request: HttpRequest, slug: str, restore_id: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    return _restore_page(request, tenant, _restore(tenant, restore_id), ConfirmationForm())


@require_POST
def confirm_restore(request: HttpRequest, slug: str, restore_id: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    restore = _restore(tenant, restore_id)
    form = ConfirmationForm(request.POST)
    if not form.is_valid():
        return _restore_page(request, tenant, restore, form, 400)
    if throttled := _throttled(request, tenant, IMPORT):
        return throttled
    try:
        restores.confirm_restore(
            restore, user=request.user, confirmation=form.cleaned_data["confirmation"]
        )
    except ConfirmationRequired as exc:
        form.add_error("confirmation", exc.message)
        return _restore_page(request, tenant, restore, form, 400)
    except NotPermitted as exc:
        return _restore_page(request, tenant, restore, form, 403, exc.message)
    except BackupError as exc:  # confirmed already, or cancelled
        return _restore_page(request, tenant, restore, form, 409, exc.message)
    messages.success(request, "Restore confirmed: a worker imports the backup now.")
    return HttpResponseRedirect(_restore_url(restore))


# -- the schedule and retention -------------------------------------------------------------------


@require_POST
def edit_schedule(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    form = ScheduleForm(request.POST)
    if form.is_valid():
        try:
            schedule = schedules.update_schedule(tenant, form.changes(), user=request.user)
        except InvalidSchedule as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"Schedule saved. {_next_backup(schedule)}")
            return HttpResponseRedirect(f"{_tenant_url(tenant)}#backup-schedule")
    return _tenant_page(request, tenant, schedule_form=form, status=400)


def _next_backup(schedule: Schedule) -> str:
    if not schedule.enabled or schedule.next_slot_at is None:
        return "Automatic backups are off."
    local = schedule.next_slot_at.astimezone(zone_named(schedule.timezone) or dt.UTC)
    return (
        f"The next backup is due on {local:%Y-%m-%d at %H:%M} {schedule.timezone} "
        f"({schedule.next_slot_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)."
    )


@require_POST
def keep_backup(request: HttpRequest, slug: str, backup_id: str) -> HttpResponse:
    """Marks the backup to be kept whatever the retention rules say, or releases it."""
    tenant = _tenant(request, slug)
    backup = _backup(tenant, backup_id)
    form = KeepForm(request.POST)
    back = f"{_tenant_url(tenant)}#backup-{backup.id}"
    if not form.is_valid():
        messages.error(request, "Nothing was changed: the form said neither keep nor release.")
        return HttpResponseRedirect(back)
    keep = form.cleaned_data["action"] == "keep"
    backup = backups.set_keep(backup, keep, user=request.user)
    made = f"{backup.created_at:%Y-%m-%d %H:%M:%S} UTC"
    if keep:
        messages.success(request, f"The backup of {made} is kept until you release it.")
    else:
        until = f" It expires on {backup.expires_at:%Y-%m-%d}." if backup.expires_at else ""
        messages.success(
            request, f"The backup of {made} is released to the retention rules.{until}"
        )
    return HttpResponseRedirect(back)


@require_POST
def cancel_restore(request: HttpRequest, slug: str, restore_id: str) -> HttpResponse:
    tenant = _tenant(request, slug)
    restore = _restore(tenant, restore_id)
    try:
        restores.cancel_restore(restore, user=request.user)
    except JobActive as exc:
        return _restore_page(request, tenant, restore, ConfirmationForm(), 409, exc.message)
    messages.info(request, "Restore cancelled; nothing was changed.")
    return HttpResponseRedirect(_tenant_url(tenant))
