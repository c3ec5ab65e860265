"""Forms of the Backup page: what the user asks for, checked before any service is called."""

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from backup.export import ExportOptions
from backup.restore import ImportOptions, Mode
from tenants.models import Tenant

MODE_CHOICES = [
    (Mode.MERGE.value, "Merge: add what is new, update what differs, keep everything else"),
    (Mode.REPLACE.value, "Replace: delete this tenant's current data, then load the file"),
    (Mode.NEW_TENANT.value, "Restore as new tenant: load the file into a new tenant"),
]


class ExportForm(forms.Form):
    include_audit_logs = forms.BooleanField(required=False, label="Include audit logs")
    include_deleted = forms.BooleanField(required=False, label="Include deleted records")

    def options(self) -> ExportOptions:
        return ExportOptions(
            include_audit_logs=self.cleaned_data["include_audit_logs"],
            include_deleted=self.cleaned_data["include_deleted"],
        )


class RestoreOptionsForm(forms.Form):
    """How a backup is restored: the options an upload and a stored backup share."""

    mode = forms.ChoiceField(
        choices=MODE_CHOICES,
        initial=Mode.MERGE.value,
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    new_tenant_slug = forms.SlugField(
        required=False, max_length=80, label="New tenant's slug", help_text="Restore only."
    )
    new_tenant_name = forms.CharField(
        required=False,
        max_length=200,
        label="New tenant's name",
        help_text="Restore only; the name in the file when left empty.",
    )
    create_missing_master_data = forms.BooleanField(
        required=False,
        label="Create missing master data",
        help_text="Add catalogue entries the file references but this database lacks. Master "
        "data is shared by all tenants, so only superusers may.",
    )

    def __init__(self, *args: Any, may_create_master_data: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_create_master_data:
            del self.fields["create_missing_master_data"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("mode") == Mode.NEW_TENANT:
            slug = data.get("new_tenant_slug")
            if not slug:
                self.add_error("new_tenant_slug", "A restore as new tenant needs a slug.")
            elif Tenant.slug_taken(slug):
                self.add_error(
                    "new_tenant_slug",
                    f"A tenant with slug '{slug}' already exists (ignoring case).",
                )
        return data

    def options(self) -> ImportOptions:
        data = self.cleaned_data
        new_tenant = data["mode"] == Mode.NEW_TENANT
        return ImportOptions(
            mode=Mode(data["mode"]),
            create_missing_master_data=data.get("create_missing_master_data", False),
            new_tenant_slug=data["new_tenant_slug"] if new_tenant else "",
            new_tenant_name=data["new_tenant_name"].strip() if new_tenant else "",
        )


class ImportForm(RestoreOptionsForm):
    """An upload, previewed and imported within the request."""

    field_order = ["file"]

    file = forms.FileField(
        label="Backup file",
        help_text="A backup exported by this application (.json, .json.gz or .json.zst).",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.BACKUP_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                "The file is %(size)s; the largest backup this page accepts is %(limit)s "
                "(BACKUP_UPLOAD_MAX_BYTES). Import it with `manage.py import_tenant` instead.",
                code="too_large",
                params={"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            )
        return upload


class StoredRestoreForm(RestoreOptionsForm):
    """A stored backup, previewed and then imported by a worker."""

    undo = forms.BooleanField(
        required=False,
        initial=True,
        label="Store a backup of the current data first (undo)",
        help_text="Merge and replace: before the import, a backup of this tenant's data as it "
        "is now is stored, so that the restore can be undone by restoring it. It costs one "
        "export; a new tenant has nothing to undo.",
    )


class PasswordForm(forms.Form):
    """The account's password, asked again before a download link is issued."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


class PendingForm(forms.Form):
    """Names an upload waiting between its preview and its import."""

    pending_id = forms.CharField(widget=forms.HiddenInput, max_length=64)


class ConfirmationForm(forms.Form):
    """The typed confirmation of a replace (any other mode leaves it empty)."""

    confirmation = forms.CharField(
        required=False,
        max_length=200,
        label="Type the tenant's name to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class ConfirmImportForm(PendingForm, ConfirmationForm):
    """Confirms the import of an upload previewed within the request."""
