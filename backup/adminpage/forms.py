"""Forms of the Backup page: what the user asks for, checked before any service is called."""

import functools
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from backup.export import ExportOptions
from backup.models import Schedule
from backup.restore import ImportOptions, Mode
from backup.stored.keys import NOT_ENCRYPTED, TO_KEYS, WITH_PASSPHRASE
from backup.stored.schedules import EDITABLE, LIMITS, WEEKDAYS
from tenants.models import Tenant

MODE_CHOICES = [
    (Mode.MERGE.value, "Merge: add what is new, update what differs, keep everything else"),
    (Mode.REPLACE.value, "Replace: delete this tenant's current data, then load the file"),
    (Mode.NEW_TENANT.value, "Restore as new tenant: load the file into a new tenant"),
]


def _passphrase(label: str, help_text: str = "", *, new: bool = False) -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=False,  # a passphrase is what was typed, spaces included
        max_length=1024,
        label=label,
        help_text=help_text,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "new-password" if new else "off"}, render_value=False
        ),
    )


INCLUDE_FILES_HELP = "A ZIP archive of the backup and the tenant's attachment files."


class ExportForm(forms.Form):
    include_audit_logs = forms.BooleanField(required=False, label="Include audit logs")
    include_deleted = forms.BooleanField(required=False, label="Include deleted records")
    include_files = forms.BooleanField(
        required=False, label="Include attachment files", help_text=INCLUDE_FILES_HELP
    )
    encryption = forms.ChoiceField(
        required=False,
        initial=NOT_ENCRYPTED,
        label="Encrypt the download",
        help_text="Export JSON only. An encrypted download (age) is compressed, then encrypted: "
        "<slug>-backup-<time>.json.gz.age (.zip.age with the files). Stored backups are "
        "encrypted at rest when this deployment has age keys.",
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    passphrase = _passphrase(
        "Passphrase",
        "With a passphrase: it is never kept; without it the file cannot be read.",
        new=True,
    )
    passphrase_again = _passphrase("Passphrase again", new=True)

    def __init__(self, *args: Any, deployment_keys: bool = False, **kwargs: Any) -> None:
        # Its own ids: the import form on the same page has a passphrase too.
        kwargs.setdefault("auto_id", "id_export_%s")
        super().__init__(*args, **kwargs)
        choices = [(NOT_ENCRYPTED, "Not encrypted")]
        if deployment_keys:
            choices.append((TO_KEYS, "To this deployment's age keys (and the tenant's own)"))
        choices.append((WITH_PASSPHRASE, "With a passphrase"))
        self.fields["encryption"].choices = choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("encryption") == WITH_PASSPHRASE:
            if not data.get("passphrase"):
                self.add_error("passphrase", "Type the passphrase to encrypt the download with.")
            elif data.get("passphrase") != data.get("passphrase_again"):
                self.add_error("passphrase_again", "The two passphrases differ.")
        return data

    def options(self) -> ExportOptions:
        return ExportOptions(
            include_audit_logs=self.cleaned_data["include_audit_logs"],
            include_deleted=self.cleaned_data["include_deleted"],
            include_files=self.cleaned_data["include_files"],
        )

    def how_encrypted(self) -> tuple[str, str]:
        """(how, passphrase) for `keys.download_encryption`."""
        how = self.cleaned_data.get("encryption") or NOT_ENCRYPTED
        return how, self.cleaned_data["passphrase"] if how == WITH_PASSPHRASE else ""


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

    field_order = ["file", "passphrase"]

    file = forms.FileField(
        label="Backup file",
        help_text="A backup exported by this application (.json, .json.gz or .json.zst, or .zip "
        "with the attachment files; encrypted with age or not).",
    )
    passphrase = _passphrase(
        "Passphrase",
        "Only for a file encrypted with a passphrase. A file encrypted to this deployment's "
        "age keys needs none.",
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

    passphrase = _passphrase(
        "Passphrase", "The file's passphrase again: it was not kept after the preview."
    )


@functools.cache
def time_zones() -> list[str]:
    """The IANA names offered as suggestions for the schedule's time zone."""
    return sorted(zoneinfo.available_timezones())


def _number(name: str, label: str, help_text: str) -> forms.IntegerField:
    # No min_value or max_value: the service checks the range and says what it allows; the
    # attributes only help the browser.
    low, high = LIMITS[name]
    return forms.IntegerField(
        label=label,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"min": low, "max": high}),
    )


class ScheduleForm(forms.Form):
    """The schedule's settings as HTML inputs. It only parses them: `update_schedule` checks
    the values (a time of day, a known time zone, the ranges) and names what is wrong."""

    # The export options are one setting of the schedule, two checkboxes here.
    OPTION_FIELDS = ("include_audit_logs", "include_deleted", "include_files")
    TIME_ZONE_LIST = "backup-time-zones"

    enabled = forms.BooleanField(required=False, label="Automatic backups on")
    frequency = forms.ChoiceField(choices=Schedule.Frequency.choices)
    weekday = forms.ChoiceField(
        required=False,
        label="Day of the week",
        choices=[("", "—"), *((day, day.capitalize()) for day in WEEKDAYS)],
        help_text="Weekly backups only.",
    )
    time = forms.CharField(
        max_length=5,
        label="Local time",
        help_text="HH:MM, 24-hour clock, in the time zone below.",
        widget=forms.TextInput(attrs={"placeholder": "HH:MM", "size": 5}),
    )
    timezone = forms.CharField(
        max_length=64,
        label="Time zone",
        help_text="An IANA name, such as Europe/Berlin or UTC.",
        widget=forms.TextInput(attrs={"list": TIME_ZONE_LIST, "autocomplete": "off"}),
    )
    include_audit_logs = forms.BooleanField(required=False, label="Include audit logs")
    include_deleted = forms.BooleanField(required=False, label="Include deleted records")
    include_files = forms.BooleanField(
        required=False, label="Include attachment files", help_text=INCLUDE_FILES_HELP
    )
    drill = forms.BooleanField(
        required=False,
        label="Verify each backup with a restore drill",
        help_text="The backup is restored in a transaction that is rolled back, and its rows "
        "counted table by table.",
    )
    keep_last = _number("keep_last", "Keep the last", "Scheduled backups, the newest ones.")
    keep_monthly = _number(
        "keep_monthly", "Keep monthly", "The last backup of each month, for as many months."
    )
    max_age_days = _number(
        "max_age_days",
        "Maximum age (days)",
        "Older backups are deleted whatever the rules above, unless marked Keep.",
    )

    @classmethod
    def initial_from(cls, described: dict[str, Any]) -> dict[str, Any]:
        """The form's initial values from `describe(schedule)`."""
        initial = {name: described[name] for name in EDITABLE if name != "options"}
        initial["weekday"] = described["weekday"] or ""
        options = described["options"] or {}
        initial.update({name: bool(options.get(name)) for name in cls.OPTION_FIELDS})
        return initial

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The export form on the same page has fields of the same names: their ids must differ.
        kwargs.setdefault("auto_id", "id_schedule_%s")
        super().__init__(*args, **kwargs)

    def changes(self) -> dict[str, Any]:
        """The cleaned values as `update_schedule` takes them."""
        data = self.cleaned_data
        changes = {name: data[name] for name in EDITABLE if name != "options"}
        changes["weekday"] = data["weekday"] or None
        changes["options"] = {name: data[name] for name in self.OPTION_FIELDS}
        return changes

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Show each of `InvalidSchedule.errors` beside its field."""
        for name, message in errors.items():
            sentence = message[:1].upper() + message[1:]
            if name == "options":
                self.add_error(self.OPTION_FIELDS[0], f"Export options: {sentence}")
            elif name in self.fields:
                self.add_error(name, sentence)
            else:
                self.add_error(None, f"{name}: {message}")

    def time_zones(self) -> list[str]:
        return time_zones()


class KeepForm(forms.Form):
    """Keep a stored backup whatever the retention rules say, or release it to them."""

    action = forms.ChoiceField(choices=[("keep", "Keep"), ("release", "Release")])
