"""What every tenant-scoped table shares: a UUID id, a `tenant` FK and a natural key.

The natural key is declared once, as the model's UniqueConstraint named `<model>_natural_key`
whose first field is `tenant`; `natural_key_fields` is read from it, so the database and the
backup engine cannot disagree about what identifies a row.
"""

import uuid
from typing import Any, ClassVar, NamedTuple

from django.db import models
from django.utils import timezone

NATURAL_KEY_SUFFIX = "_natural_key"


def natural_key(model_name: str, *fields: str) -> models.UniqueConstraint:
    """The per-tenant natural key of a model, as a unique constraint."""
    return models.UniqueConstraint(
        fields=["tenant", *fields], name=f"{model_name}{NATURAL_KEY_SUFFIX}"
    )


class ImportStamp(NamedTuple):
    """The fields an import sets itself on each row it creates, whatever the file says: when
    (`at`), by whom (`by`, an email) and by which import (`import_id`, named again in that
    import's own audit entry with the backup's SHA-256)."""

    at: str
    by: str
    import_id: str


class TenantScopedQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Any) -> "TenantScopedQuerySet":
        return self.filter(tenant=tenant)

    def alive(self) -> "TenantScopedQuerySet":
        if any(f.name == "deleted_at" for f in self.model._meta.get_fields()):
            return self.filter(deleted_at__isnull=True)
        return self


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):
    def get_by_natural_key(self, tenant: Any, *key: Any) -> models.Model:
        return self.get(
            tenant=tenant, **dict(zip(self.model.natural_key_fields(), key, strict=True))
        )


class TenantScopedModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Every natural key starts with the tenant, so its unique index serves tenant-scoped reads;
    # a second index on the FK alone would only slow down writes.
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    # Fields whose value must never leave the database in clear (the backup marks them present).
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # The fields that decide where those secrets are sent (an endpoint, a user name, a kind of
    # service): an import that changes any of them clears the secrets, so that a backup cannot
    # redirect a kept secret. A model with secrets must declare them (the registry checks).
    secret_destination_fields: ClassVar[tuple[str, ...] | None] = None
    # Rows that an import marks as imported (`ImportStamp`), e.g. an audit trail's entries.
    import_stamp: ClassVar[ImportStamp | None] = None

    objects = TenantScopedManager()

    class Meta:
        abstract = True

    @classmethod
    def natural_key_constraint(cls) -> models.UniqueConstraint | None:
        for constraint in cls._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint) and constraint.name.endswith(
                NATURAL_KEY_SUFFIX
            ):
                return constraint
        return None

    @classmethod
    def natural_key_fields(cls) -> tuple[str, ...]:
        """The natural key within the tenant (without `tenant`)."""
        constraint = cls.natural_key_constraint()
        if constraint is None:
            return ()
        return tuple(f for f in constraint.fields if f != "tenant")

    def natural_key(self) -> tuple[Any, ...]:
        return (
            self.tenant_id,
            *(getattr(self, self._meta.get_field(f).attname) for f in self.natural_key_fields()),
        )


class SoftDeleteModel(models.Model):
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def soft_delete(self) -> None:
        self.deleted_at = timezone.now()
        self.save(update_fields=["deleted_at"])
