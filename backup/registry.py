"""The description of the tables that drives export, preview, merge and replace.

Built from Django's model metadata, never kept by hand: every model with a foreign key to
`tenants.Tenant` is a tenant table, every model of the `masterdata` app is a master table, and
every other foreign key must point at one of those or at the user model, or the registry refuses
to build. The order of the tables is a topological sort of their foreign keys.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from graphlib import CycleError, TopologicalSorter
from typing import Literal

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q

from tenants.models import AuditLog, ImportStamp, Tenant, TenantScopedModel

FieldKind = Literal["id", "value", "tenant_fk", "master_fk", "user_fk"]
# JSON type of a value in the file, named after the Django field it comes from.
ValueType = Literal[
    "uuid", "string", "integer", "decimal", "date", "datetime", "boolean", "json", "file"
]

MASTER_APP = "masterdata"


class RegistryError(Exception):
    """The models have something the engine does not know how to back up."""


@dataclass(frozen=True)
class FieldSpec:
    name: str  # name in the file and in the model
    column: str
    kind: FieldKind
    type: ValueType
    model_field: models.Field = field(repr=False, compare=False)
    null: bool = False
    required: bool = True  # must appear in every row of the file
    target: str | None = None  # table name an FK points at
    enum: str | None = None  # name of the enum in the schema
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    max_digits: int | None = None
    decimal_places: int | None = None


@dataclass(frozen=True)
class SecretSpec:
    field: str  # the secret column; never written to a file
    present_field: str  # boolean in the file: a secret was set
    flag_field: str  # the model's "needs re-entry" flag set when a secret cannot come back
    # The columns that decide where the secret is sent: an import changing one clears it.
    destination: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    name: str
    model: type[models.Model] = field(repr=False)
    db_table: str
    fields: tuple[FieldSpec, ...]  # stored fields, in file order (id first)
    natural_key: tuple[str, ...]
    soft_delete: str | None = None
    secrets: tuple[SecretSpec, ...] = ()
    # Rows are only ever added: replace leaves them, merge never rewrites them.
    append_only: bool = False
    # An append-only table's time of writing: its rows newer than a backup were written since.
    appended_at: str | None = None
    optional: bool = False  # exported only when asked (audit logs)
    # Fields an import sets itself on the rows it creates, whatever the file says.
    stamp: ImportStamp | None = None

    @property
    def field_map(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def file_fields(self) -> list[str]:
        """Field names as they appear in a row of the backup file."""
        names = [f.name for f in self.fields]
        names.extend(s.present_field for s in self.secrets)
        return names

    def fields_of_kind(self, kind: FieldKind) -> list[FieldSpec]:
        return [f for f in self.fields if f.kind == kind]


@dataclass(frozen=True)
class Registry:
    tenant_tables: tuple[TableSpec, ...]  # dependency order: referenced tables first
    master_tables: tuple[TableSpec, ...]

    def table(self, name: str) -> TableSpec:
        for spec in (*self.tenant_tables, *self.master_tables):
            if spec.name == name:
                return spec
        raise KeyError(name)

    def tenant_table(self, name: str) -> TableSpec | None:
        """The tenant table a file names, or None when there is none of that name."""
        return next((spec for spec in self.tenant_tables if spec.name == name), None)

    def master_table(self, name: str) -> TableSpec | None:
        """The master-data table a file names, or None when there is none of that name."""
        return next((spec for spec in self.master_tables if spec.name == name), None)

    def tenant_table_names(self) -> list[str]:
        return [t.name for t in self.tenant_tables]

    def is_referenced(self, name: str) -> bool:
        """Whether some tenant table refers to the tenant table `name`."""
        return any(
            f.target == name
            for spec in self.tenant_tables
            for f in spec.fields_of_kind("tenant_fk")
        )

    def enums(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for spec in (*self.master_tables, *self.tenant_tables):
            for f in spec.fields:
                if f.enum:
                    result[f.enum] = list(f.choices)
        return dict(sorted(result.items()))


def table_name(model: type[models.Model]) -> str:
    """`MeterReading` -> `meter_reading`, `TCOScenario` -> `tco_scenario`."""
    name = model.__name__
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def value_type(f: models.Field) -> ValueType:
    """How the format writes the field's values (a foreign key: as its target's key)."""
    if f.is_relation:
        return value_type(f.target_field)  # type: ignore[attr-defined]
    match f:
        case models.UUIDField():
            return "uuid"
        case models.BooleanField():
            return "boolean"
        case models.DecimalField():
            return "decimal"
        case models.DateTimeField():
            return "datetime"
        case models.DateField():
            return "date"
        case models.JSONField():
            return "json"
        case models.FileField():
            return "file"
        case models.IntegerField() | models.AutoField() | models.BigAutoField():
            return "integer"
        case models.CharField() | models.TextField():
            return "string"
    raise RegistryError(
        f"{f.model.__name__}.{f.name}: field type {type(f).__name__} is not supported by the backup"
    )


def _has_default(f: models.Field) -> bool:
    return (
        f.has_default()
        or f.null
        or (f.blank and isinstance(f, models.CharField | models.TextField))
    )


def _field_spec(model: type[models.Model], f: models.Field, masters: set[type]) -> FieldSpec:
    common = {"name": f.name, "column": f.column, "model_field": f, "null": f.null}
    if f.primary_key:
        return FieldSpec(kind="id", type=value_type(f), **common)
    if f.is_relation:
        target = f.related_model
        if target is Tenant:
            raise RegistryError(f"{model.__name__}.{f.name}: a second FK to Tenant")
        target_pk = target._meta.pk
        pk_type = "uuid" if isinstance(target_pk, models.UUIDField) else "integer"
        if issubclass(target, TenantScopedModel):
            kind: FieldKind = "tenant_fk"
        elif target in masters:
            kind = "master_fk"
        elif target is apps.get_model(settings.AUTH_USER_MODEL):
            # Users are not tenant data: a row names its user by email.
            return FieldSpec(kind="user_fk", type="string", required=not f.null, **common)
        else:
            raise RegistryError(
                f"{model.__name__}.{f.name}: foreign key to {target.__name__}, which is neither "
                "a tenant table, master data nor the user model"
            )
        return FieldSpec(
            kind=kind, type=pk_type, target=table_name(target), required=not f.null, **common
        )
    choices = tuple(str(value) for value, _label in f.flatchoices) if f.choices else ()
    return FieldSpec(
        kind="value",
        type=value_type(f),
        required=not _has_default(f),
        enum=f"{table_name(model)}.{f.name}" if choices else None,
        choices=choices,
        max_length=getattr(f, "max_length", None)
        if isinstance(f, models.CharField | models.FileField)
        else None,
        max_digits=getattr(f, "max_digits", None),
        decimal_places=getattr(f, "decimal_places", None),
        **common,
    )


def _check_relations(model: type[models.Model]) -> None:
    for f in model._meta.get_fields():
        if f.many_to_many and not f.auto_created:
            raise RegistryError(f"{model.__name__}.{f.name}: many-to-many fields are not supported")
        if isinstance(f, models.ForeignObject) and not isinstance(f, models.ForeignKey):
            raise RegistryError(f"{model.__name__}.{f.name}: unsupported relation type")


def _tenant_spec(
    model: type[TenantScopedModel], masters: set[type], *, with_secrets: bool = False
) -> TableSpec:
    _check_relations(model)
    specs = []
    for f in model._meta.concrete_fields:
        if f.name == "tenant" or (f.name in model.secret_fields and not with_secrets):
            continue
        specs.append(_field_spec(model, f, masters))
    names = {s.name for s in specs}
    secrets = _secret_specs(model, {s.name: s for s in specs})
    if with_secrets:
        # The secrets travel as values of their own: nothing to flag for re-entry.
        secrets = ()
    for stamped in model.import_stamp or ():
        if stamped not in names:
            raise RegistryError(f"{model.__name__}: import stamp field {stamped} is not a field")
    natural_key = model.natural_key_fields()
    if model.natural_key_constraint() is None:
        raise RegistryError(f"{model.__name__} has no natural key constraint")
    return TableSpec(
        name=table_name(model),
        model=model,
        db_table=model._meta.db_table,
        fields=tuple(specs),
        natural_key=natural_key,
        soft_delete="deleted_at" if "deleted_at" in names else None,
        secrets=tuple(secrets),
        append_only=model is AuditLog,
        appended_at="created_at" if model is AuditLog else None,
        optional=model is AuditLog,
        stamp=model.import_stamp,
    )


def _secret_specs(
    model: type[TenantScopedModel], fields: dict[str, FieldSpec]
) -> tuple[SecretSpec, ...]:
    if not model.secret_fields:
        return ()
    destination = model.secret_destination_fields
    if destination is None:
        raise RegistryError(
            f"{model.__name__} has secrets: declare which fields decide where they are sent "
            "(secret_destination_fields), so that an import changing one clears them"
        )
    unknown = [name for name in destination if name not in fields]
    if unknown:
        raise RegistryError(f"{model.__name__}.secret_destination_fields: no field {unknown[0]}")
    secrets = []
    for secret in model.secret_fields:
        flag = f"{secret}_needs_reentry"
        if flag not in fields:
            raise RegistryError(f"{model.__name__}: secret field {secret} needs a {flag} flag")
        columns = tuple(fields[name].column for name in destination)
        secrets.append(
            SecretSpec(
                field=secret,
                present_field=f"has_{secret}",
                flag_field=flag,
                destination=columns,
            )
        )
    return tuple(secrets)


def _master_spec(model: type[models.Model], masters: set[type]) -> TableSpec:
    _check_relations(model)
    specs = tuple(_field_spec(model, f, masters) for f in model._meta.concrete_fields)
    for s in specs:
        if s.kind not in ("id", "value", "master_fk"):
            raise RegistryError(
                f"{model.__name__}.{s.name}: master data may only point at master data"
            )
    return TableSpec(
        name=table_name(model),
        model=model,
        db_table=model._meta.db_table,
        fields=specs,
        natural_key=tuple(model.natural_key_fields),
    )


def _ordered(specs: list[TableSpec]) -> tuple[TableSpec, ...]:
    by_name = {s.name: s for s in specs}
    graph: TopologicalSorter[str] = TopologicalSorter()
    # Sorted insertion keeps the order stable from one run to the next.
    for spec in sorted(specs, key=lambda s: s.name):
        deps = sorted(
            {f.target for f in spec.fields if f.target in by_name and f.target != spec.name}
        )
        graph.add(spec.name, *deps)
    try:
        return tuple(by_name[name] for name in graph.static_order())
    except CycleError as exc:
        raise RegistryError(f"foreign keys form a cycle: {exc.args[1]}") from exc


def build_registry(
    all_models: list[type[models.Model]] | None = None, *, with_secrets: bool = False
) -> Registry:
    """The registry of the installed models (or of `all_models`, for tests). `with_secrets`:
    the tables of an encrypted backup, where each secret field is a value like any other
    (a plain backup has, instead of it, whether it was set)."""
    masters = set(apps.get_app_config(MASTER_APP).get_models())
    tenant_models = []
    for model in apps.get_models() if all_models is None else all_models:
        if getattr(model, "backup_out_of_scope", ""):
            continue  # declared, with the reason, on the model
        tenant_data = sorted(
            f.related_model.__name__
            for f in model._meta.get_fields()
            if f.is_relation
            and f.concrete
            and isinstance(f.related_model, type)
            and (f.related_model is Tenant or issubclass(f.related_model, TenantScopedModel))
        )
        if not tenant_data:
            continue
        if not issubclass(model, TenantScopedModel):
            raise RegistryError(
                f"{model.__name__} refers to tenant data ({', '.join(tenant_data)}) but is not "
                "tenant-scoped, so the backup would leave it out: derive it from "
                "TenantScopedModel, or declare why it is not tenant data "
                "(backup_out_of_scope = '...' on the model)"
            )
        tenant_models.append(model)
    return Registry(
        tenant_tables=_ordered(
            [_tenant_spec(m, masters, with_secrets=with_secrets) for m in tenant_models]
        ),
        master_tables=_ordered([_master_spec(m, masters) for m in masters]),
    )


@cache
def registry(*, with_secrets: bool = False) -> Registry:
    return build_registry(with_secrets=with_secrets)


# A fast path's export of one table: its rows as blocks of JSON rows joined by ",\n".
RowBlocks = Callable[[TableSpec, models.QuerySet], Iterator[bytes]]


def alive_paths(spec: TableSpec, reg: Registry) -> list[str]:
    """Lookups that are null for a live row: its own `deleted_at` and that of required parents."""
    paths = [spec.soft_delete] if spec.soft_delete else []
    for f in spec.fields_of_kind("tenant_fk"):
        if not f.null and f.target != spec.name:
            paths.extend(f"{f.name}__{p}" for p in alive_paths(reg.table(f.target), reg))
    return paths


def alive(paths: list[str]) -> Q:
    return Q(**{f"{p}__isnull": True for p in paths})
