"""Demo data: two tenants with rows in every tenant-scoped table, fast enough for 1M readings.

Design, in short:

* Rows are plain tuples generated in Python and streamed to the database (COPY on PostgreSQL,
  `executemany` elsewhere); no model instances, so memory stays flat however many readings.
* Everything is deterministic: a primary key is a UUID whose first 80 bits come from
  uuid5(tenant slug + table) and whose last 48 bits number the row, and values come from
  `random.Random` seeded with the same pair. A rerun generates the very same rows and inserts
  them ignoring conflicts, so nothing is added or changed; a rerun with bigger sizes adds only
  the rows with new numbers. Because the numbering is known, a table whose rows are all there
  already is recognised by counting ids and not generated at all, which keeps reruns short.
* Rows are numbered by index (`i`), or for the big per-vehicle tables by (vehicle, k) where k
  counts the vehicle's rows: those are generated vehicle by vehicle, so the ids and the natural
  keys (which start with tenant and vehicle) reach the B-trees in order instead of scattered,
  and a rerun with more readings per vehicle adds exactly the missing (vehicle, k) rows.
* Natural keys of parent tables (vehicles, work orders, components...) derive from the row
  number alone, so an id always comes with the same natural key. Child tables space their
  timestamps per parent (`k * step + jitter`, jitter < step) so their natural keys never collide.
* All timestamps count back from a fixed ANCHOR, not from "now": a rerun next week must produce
  the same rows.
* On PostgreSQL, when the role may, foreign-key triggers are off while loading and every key is
  checked afterwards with one anti-join per column (see _PostgresCopyWriter).
"""

from __future__ import annotations

import abc
import collections
import contextlib
import itertools
import random
import time
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.db.models.functions import Cast, Right, Substr

from masterdata.models import (
    ComponentCatalog,
    EquipmentModel,
    MachineFamily,
    MachinePosition,
    WorkActivity,
)

from .models import (
    Attachment,
    AuditLog,
    Component,
    ComponentEvent,
    DowntimeEvent,
    FinancialRecord,
    Forecast,
    FuelTransaction,
    IntegrationCredential,
    MaintenanceLog,
    Membership,
    MeterReading,
    Notification,
    Part,
    Profile,
    ProfileComponent,
    ProfileEvent,
    Site,
    TCOScenario,
    Tenant,
    TenantScopedModel,
    TenantSettings,
    Vehicle,
    WorkOrder,
)

FIXTURE = Path("fixtures") / "masterdata.json"
SECOND_TENANT_SLUG = "acme-quarries"
SECOND_TENANT_NAME = "Acme Quarries"

# Every generated timestamp is at or before this instant (forecasts excepted): a fixed point,
# so that reruns on another day regenerate identical rows.
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
ANCHOR_DATE = ANCHOR.date()

_NAMESPACE = uuid.UUID("6f1d3c52-8b7e-4c1a-9a55-2d0c7e3b9f10")
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR

# Spacing between successive rows of one vehicle (or component). A row's timestamp is
# `ANCHOR - (k * step + jitter)` with `jitter < step`, so rows of one parent never share a
# timestamp and their natural keys cannot collide.
_READING_STEP = 12 * _US_PER_HOUR
_LOG_STEP = 9 * _US_PER_DAY
_WORK_ORDER_STEP = 23 * _US_PER_DAY
_DOWNTIME_STEP = 17 * _US_PER_DAY
_FUEL_STEP = 3 * _US_PER_DAY
_COMPONENT_EVENT_STEP = 41 * _US_PER_DAY
_NOTIFICATION_STEP = 7 * _US_PER_HOUR
_AUDIT_STEP = 5 * _US_PER_HOUR
_ATTACHMENT_STEP = 11 * _US_PER_HOUR

# PostgreSQL: rows per COPY into the staging table when the target already has rows.
_STAGING_CHUNK = 100_000
# Other databases: rows per executemany().
_INSERT_CHUNK = 2_000


# --------------------------------------------------------------------------------------------
# Sizes and tenants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSizes:
    """How much to generate for one tenant; the other tables are sized from these."""

    vehicles: int = 40
    readings: int = 5_000
    components: int = 240
    logs: int = 1_000
    work_orders: int = 200

    def __post_init__(self) -> None:
        # Two vehicles and two work orders are the least that still leaves one alive and one
        # soft-deleted row in each; every other table needs one row to be non-empty.
        for name, least in (
            ("vehicles", 2),
            ("work_orders", 2),
            ("readings", 1),
            ("components", 1),
            ("logs", 1),
        ):
            object.__setattr__(self, name, max(least, int(getattr(self, name))))

    def scaled(self, ratio: float) -> DemoSizes:
        return DemoSizes(
            vehicles=round(self.vehicles * ratio),
            readings=round(self.readings * ratio),
            components=round(self.components * ratio),
            logs=round(self.logs * ratio),
            work_orders=round(self.work_orders * ratio),
        )

    @property
    def sites(self) -> int:
        return min(2 + self.vehicles // 250, 80)

    @property
    def parts(self) -> int:
        return 20 + self.vehicles // 4

    @property
    def component_events(self) -> int:
        return self.components

    @property
    def forecasts(self) -> int:
        return self.vehicles * 3

    @property
    def downtime_events(self) -> int:
        return 2 + self.work_orders // 2

    @property
    def attachments(self) -> int:
        return 3 + self.work_orders // 5

    @property
    def notifications(self) -> int:
        return 10 + self.vehicles // 2

    @property
    def financial_records(self) -> int:
        return self.work_orders + 1 + self.vehicles // 2

    @property
    def fuel_transactions(self) -> int:
        return self.vehicles * 5

    @property
    def audit_logs(self) -> int:
        return 20 + self.logs // 50


@dataclass(frozen=True)
class SiteTemplate:
    name: str
    kind: str
    latitude: float
    longitude: float
    address: str


@dataclass(frozen=True)
class Flavour:
    """What makes one demo tenant look different from the other."""

    currency: str
    timezone: str
    distance_unit: str
    sites: tuple[SiteTemplate, ...]
    fuel_price: tuple[float, float]


MINING = Flavour(
    currency="AUD",
    timezone="Australia/Perth",
    distance_unit=TenantSettings.DistanceUnit.KILOMETRES,
    sites=(
        SiteTemplate("Pilbara North Pit", Site.Kind.MINE, -22.31, 118.35, "Great Northern Hwy"),
        SiteTemplate("Newman Central Workshop", Site.Kind.WORKSHOP, -23.36, 119.73, "Newman"),
        SiteTemplate("Pilbara South Pit", Site.Kind.MINE, -22.95, 118.71, "Tom Price Rd"),
        SiteTemplate("Port Hedland Depot", Site.Kind.DEPOT, -20.31, 118.58, "Wilson St"),
        SiteTemplate("Karratha Expansion", Site.Kind.CONSTRUCTION, -20.74, 116.85, "Karratha"),
        SiteTemplate("Kalgoorlie Super Pit", Site.Kind.MINE, -30.78, 121.50, "Goldfields Hwy"),
    ),
    fuel_price=(1.55, 2.15),
)
QUARRYING = Flavour(
    currency="GBP",
    timezone="Europe/London",
    distance_unit=TenantSettings.DistanceUnit.MILES,
    sites=(
        SiteTemplate("Mendip Quarry", Site.Kind.QUARRY, 51.25, -2.52, "Shepton Mallet"),
        SiteTemplate("Peak Workshop", Site.Kind.WORKSHOP, 53.25, -1.91, "Buxton"),
        SiteTemplate("Shap Quarry", Site.Kind.QUARRY, 54.52, -2.68, "Shap, Penrith"),
        SiteTemplate("Leeds Depot", Site.Kind.DEPOT, 53.80, -1.55, "Stourton, Leeds"),
    ),
    fuel_price=(1.05, 1.45),
)


@dataclass(frozen=True)
class TenantSpec:
    slug: str
    name: str
    sizes: DemoSizes
    flavour: Flavour = MINING


@dataclass
class TenantReport:
    slug: str
    name: str
    # Model label -> (rows before, rows after).
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class SeedReport:
    tenants: list[TenantReport]
    admin_username: str
    admin_password: str
    user_logins: list[str]
    seconds: float


def demo_tenants(
    sizes: DemoSizes,
    *,
    slug: str = "demo",
    name: str = "Demo Mining Co",
    second_tenant_ratio: float = 0.1,
) -> list[TenantSpec]:
    """The demo tenant at `sizes` and the second tenant at a fraction of them."""
    return [
        TenantSpec(slug=slug, name=name, sizes=sizes, flavour=MINING),
        TenantSpec(
            slug=SECOND_TENANT_SLUG,
            name=SECOND_TENANT_NAME,
            sizes=sizes.scaled(second_tenant_ratio),
            flavour=QUARRYING,
        ),
    ]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def seed_demo(
    tenants: Sequence[TenantSpec],
    *,
    admin_password: str = "admin",
    fixture: Path | str | None = None,
    log: Callable[[str], None] | None = None,
) -> SeedReport:
    """Load the master data, then create (or complete) the users and the tenants' data."""
    started = time.perf_counter()
    slugs = [spec.slug for spec in tenants]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"Tenant slugs must differ: {slugs}")
    say = log or (lambda _message: None)

    fixture_path = Path(settings.BASE_DIR) / (fixture or FIXTURE)
    call_command("loaddata", str(fixture_path), verbosity=0)
    catalogue = Catalogue.load()

    passwords = _PasswordSetter(admin_password)
    passwords.ensure_user("admin", "admin@example.com", is_staff=True, is_superuser=True)

    reports = []
    logins = []
    for spec in tenants:
        with transaction.atomic():
            tenant = _ensure_tenant(spec)
            users = {
                role: passwords.ensure_user(
                    f"{role}@{spec.slug}.example",
                    f"{role}@{spec.slug}.example",
                    # Owners and admins manage backups, on a page inside the Django admin.
                    is_staff=role in (Membership.Role.OWNER, Membership.Role.ADMIN),
                )
                for role in Membership.Role.values
            }
            logins.extend(user.get_username() for user in users.values())
            before = count_rows(tenant)
            ctx = _TenantContext(spec, tenant, catalogue, users)
            with _writer() as writer:
                if isinstance(writer, _PostgresCopyWriter):
                    how = "set-wise per table" if writer.triggers_off else "by per-row triggers"
                    say(f"  {spec.slug:<16} foreign keys checked {how}")
                for table in TABLES:
                    t0 = time.perf_counter()
                    rows = table.rows(ctx)
                    if _is_complete(table, ctx):
                        note = "already complete"
                        if table.feeds_children:
                            collections.deque(rows, maxlen=0)
                    else:
                        note = "written"
                        writer.write(table.model, table.fields, tenant.pk, rows)
                    elapsed = time.perf_counter() - t0
                    say(f"  {spec.slug:<16} {table.model.__name__:<22} {elapsed:7.2f}s  {note}")
        after = count_rows(tenant)
        reports.append(
            TenantReport(
                slug=spec.slug,
                name=spec.name,
                counts={label: (before[label], after[label]) for label in after},
            )
        )
    return SeedReport(
        tenants=reports,
        admin_username="admin",
        admin_password=admin_password,
        user_logins=logins,
        seconds=time.perf_counter() - started,
    )


def tenant_scoped_models() -> list[type[TenantScopedModel]]:
    """Every concrete tenant-scoped model, in the order the seed fills them."""
    return [table.model for table in TABLES]


def count_rows(tenant: Tenant) -> dict[str, int]:
    return {
        model._meta.label: model.objects.filter(tenant=tenant).count()
        for model in tenant_scoped_models()
    }


def format_report(report: SeedReport) -> str:
    """A table of row counts per tenant, with how many rows this run added."""

    def cell(before: int, after: int) -> str:
        added = f"+{after - before:,}" if after != before else ""
        return f"  {after:>13,} {added:>12}"

    labels = list(report.tenants[0].counts) if report.tenants else []
    width = max((len(label) for label in labels), default=10)
    header = f"{'table':<{width}}" + "".join(f"  {t.slug + ' (added)':>26}" for t in report.tenants)
    lines = [header, "-" * len(header)]
    for label in labels:
        lines.append(f"{label:<{width}}" + "".join(cell(*t.counts[label]) for t in report.tenants))
    lines.append("-" * len(header))
    totals = [
        cell(sum(b for b, _ in t.counts.values()), sum(a for _, a in t.counts.values()))
        for t in report.tenants
    ]
    lines.append(f"{'total':<{width}}" + "".join(totals))
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------
# Users and tenants
# --------------------------------------------------------------------------------------------


class _PasswordSetter:
    """Creates users with a password, and leaves existing users untouched if it already fits.

    Hashing is deliberately slow, so the hash is computed once and shared by every new user,
    and the check of an existing hash is remembered.
    """

    def __init__(self, password: str) -> None:
        self.password = password
        self._hash: str | None = None
        self._checked: dict[str, bool] = {}

    def _new_hash(self) -> str:
        if self._hash is None:
            self._hash = make_password(self.password)
        return self._hash

    def _fits(self, encoded: str) -> bool:
        if encoded not in self._checked:
            self._checked[encoded] = check_password(self.password, encoded)
        return self._checked[encoded]

    def ensure_user(
        self, username: str, email: str, *, is_staff: bool = False, is_superuser: bool = False
    ) -> Any:
        user_model = get_user_model()
        wanted = {"email": email, "is_staff": is_staff, "is_superuser": is_superuser}
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            user = user_model(**{user_model.USERNAME_FIELD: username}, **wanted)
            user.password = self._new_hash()
            user.save()
            return user
        changed = [name for name, value in wanted.items() if getattr(user, name) != value]
        for name in changed:
            setattr(user, name, wanted[name])
        if not self._fits(user.password):
            user.password = self._new_hash()
            changed.append("password")
        if changed:
            user.save(update_fields=changed)
        return user


def _ensure_tenant(spec: TenantSpec) -> Tenant:
    tenant = Tenant.objects.filter(slug=spec.slug).first()
    if tenant is None:
        return Tenant.objects.create(
            id=uuid.uuid5(_NAMESPACE, f"tenant/{spec.slug}"),
            slug=spec.slug,
            name=spec.name,
            created_at=ANCHOR - timedelta(days=3 * 365),
        )
    if tenant.name != spec.name:
        tenant.name = spec.name
        tenant.save(update_fields=["name"])
    return tenant


# --------------------------------------------------------------------------------------------
# Master data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EquipmentModelRow:
    id: int
    label: str
    category: str
    power_kw: int


@dataclass(frozen=True)
class _CatalogRow:
    id: int
    code: str
    name: str
    life_hours: int


@dataclass(frozen=True)
class _ActivityRow:
    id: int
    code: str
    name: str
    duration_hours: float


@dataclass(frozen=True)
class Catalogue:
    """The master-data rows the generators pick from, in natural-key order (stable across DBs)."""

    equipment_models: tuple[_EquipmentModelRow, ...]
    families: tuple[int, ...]
    components: tuple[_CatalogRow, ...]
    positions: tuple[int, ...]
    activities: tuple[_ActivityRow, ...]

    @classmethod
    def load(cls) -> Catalogue:
        catalogue = cls(
            equipment_models=tuple(
                _EquipmentModelRow(pk, f"{oem} {name}", category, power or 300)
                for pk, oem, name, category, power in EquipmentModel.objects.order_by(
                    "oem__name", "name"
                ).values_list("pk", "oem__name", "name", "category", "rated_power_kw")
            ),
            families=tuple(MachineFamily.objects.order_by("name").values_list("pk", flat=True)),
            components=tuple(
                _CatalogRow(pk, code, name, life or 10_000)
                for pk, code, name, life in ComponentCatalog.objects.order_by("code").values_list(
                    "pk", "code", "name", "expected_life_hours"
                )
            ),
            positions=tuple(MachinePosition.objects.order_by("code").values_list("pk", flat=True)),
            activities=tuple(
                _ActivityRow(pk, code, name, float(hours) if hours is not None else 2.0)
                for pk, code, name, hours in WorkActivity.objects.order_by("code").values_list(
                    "pk", "code", "name", "default_duration_hours"
                )
            ),
        )
        empty = [name for name, rows in vars(catalogue).items() if not rows]
        if empty:
            raise ValueError(
                "The master-data catalogue has no rows in: "
                + ", ".join(empty)
                + ". Load a complete fixtures/masterdata.json first."
            )
        return catalogue


# --------------------------------------------------------------------------------------------
# Generation context
# --------------------------------------------------------------------------------------------


_ODOMETER_SPEED_KMH = {
    EquipmentModel.Category.HAUL_TRUCK: 17.0,
    EquipmentModel.Category.LIGHT_VEHICLE: 38.0,
    EquipmentModel.Category.GRADER: 9.0,
    EquipmentModel.Category.WHEEL_LOADER: 6.0,
}
_PRICE_RANGE = {
    EquipmentModel.Category.HAUL_TRUCK: (3_800_000, 6_200_000),
    EquipmentModel.Category.EXCAVATOR: (5_500_000, 12_500_000),
    EquipmentModel.Category.WHEEL_LOADER: (1_900_000, 4_200_000),
    EquipmentModel.Category.DOZER: (900_000, 2_100_000),
    EquipmentModel.Category.GRADER: (750_000, 1_450_000),
    EquipmentModel.Category.DRILL: (1_200_000, 3_100_000),
    EquipmentModel.Category.LIGHT_VEHICLE: (58_000, 118_000),
}
_FLEET_PREFIX = {
    EquipmentModel.Category.HAUL_TRUCK: "HT",
    EquipmentModel.Category.EXCAVATOR: "EX",
    EquipmentModel.Category.WHEEL_LOADER: "WL",
    EquipmentModel.Category.DOZER: "DZ",
    EquipmentModel.Category.GRADER: "GR",
    EquipmentModel.Category.DRILL: "DR",
    EquipmentModel.Category.LIGHT_VEHICLE: "LV",
}
_TECHNICIANS = (
    "A. Nguyen",
    "B. O'Connor",
    "C. Singh",
    "D. Kowalski",
    "E. Mbeki",
    "F. Rossi",
    "G. Tanaka",
    "H. Smith",
    "I. Haddad",
    "J. García",
    "",
)
_COLOURS = ("CAT yellow", "Komatsu yellow", "White", "Safety orange", "Liebherr grey")


class _Rng(random.Random):
    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def chance(self, p: float) -> bool:
        return self.random() < p

    def money(self, low: float, high: float) -> Decimal:
        return Decimal(f"{self.uniform(low, high):.2f}")

    def weighted(self, table: Sequence[tuple[Any, float]]) -> Any:
        x = self.random()
        for value, weight in table:
            x -= weight
            if x < 0:
                return value
        return table[-1][0]


@dataclass
class _VehicleFacts:
    """What the child tables need to know about each vehicle (index = vehicle index)."""

    categories: list[str] = field(default_factory=list)
    fleet_numbers: list[str] = field(default_factory=list)
    # Engine hours at ANCHOR and hours run per day, to backdate meter values.
    hours: array = field(default_factory=lambda: array("d"))
    hours_per_day: array = field(default_factory=lambda: array("d"))
    # Odometer at ANCHOR, or -1 for machines without one.
    odometer: array = field(default_factory=lambda: array("d"))


class _TenantContext:
    def __init__(
        self, spec: TenantSpec, tenant: Tenant, catalogue: Catalogue, users: dict[str, Any]
    ) -> None:
        self.spec = spec
        self.sizes = spec.sizes
        self.flavour = spec.flavour
        self.tenant_id = str(tenant.pk)
        self.catalogue = catalogue
        self.users = users
        self.vehicles = _VehicleFacts()
        # Filled by the component and work-order generators for their children.
        self.component_installed_back = array("q")
        self.component_hours = array("d")
        self.work_order_opened_back = array("q")
        self._prefixes: dict[type[models.Model], str] = {}

    def rng(self, model: type[models.Model]) -> _Rng:
        return _Rng(f"{self.spec.slug}/{model._meta.label_lower}")

    def prefix(self, model: type[models.Model]) -> str:
        """The first 80 bits of every id of `model` in this tenant, as `xxxxxxxx-...-xxxx-`."""
        if model not in self._prefixes:
            base = str(uuid.uuid5(_NAMESPACE, f"{self.spec.slug}/{model._meta.label_lower}"))
            self._prefixes[model] = base[:24]
        return self._prefixes[model]

    def id_of(self, model: type[models.Model], index: int) -> str:
        return f"{self.prefix(model)}{index:012x}"

    def child_id(self, model: type[models.Model], parent: int, k: int) -> str:
        """The id of the k-th row of `model` that belongs to parent number `parent`."""
        return f"{self.prefix(model)}{parent:06x}{k:06x}"

    # Vehicle index -> parents, as pure functions of the index so no table has to be kept.
    def site_index(self, vehicle: int) -> int:
        return vehicle % self.sizes.sites

    def work_orders_of(self, vehicle: int) -> int:
        """How many work orders vehicle `vehicle` has (work order w belongs to w % vehicles)."""
        n_wo, n_v = self.sizes.work_orders, self.sizes.vehicles
        return (n_wo - vehicle + n_v - 1) // n_v if vehicle < n_wo else 0


_CHILD_LIMIT = 1 << 24


def _per_parent(total: int, parents: int) -> list[int]:
    """How many of `total` rows each of `parents` gets, shared as evenly as possible."""
    share, rest = divmod(total, parents)
    if parents > _CHILD_LIMIT or share + 1 > _CHILD_LIMIT:
        raise ValueError(f"{total} rows over {parents} parents exceeds the id space")
    return [share + 1 if parent < rest else share for parent in range(parents)]


def _spread(total: int, parents: int) -> Iterator[tuple[int, int]]:
    """(parent, k) for `total` rows shared evenly by `parents`, parent by parent."""
    for parent, count in enumerate(_per_parent(total, parents)):
        for k in range(count):
            yield parent, k


def _dec(value: float, places: int) -> Decimal:
    return Decimal(f"{value:.{places}f}")


def _back(microseconds: int) -> datetime:
    return ANCHOR - timedelta(microseconds=microseconds)


# --------------------------------------------------------------------------------------------
# Generators, one per table, in dependency order. Each yields tuples in the order of `fields`.
# --------------------------------------------------------------------------------------------

Row = tuple[Any, ...]


def _tenant_settings(ctx: _TenantContext) -> Iterator[Row]:
    f = ctx.flavour
    yield (
        ctx.id_of(TenantSettings, 0),
        ctx.tenant_id,
        f.currency,
        f.timezone,
        f.distance_unit,
        7 if f.currency == "AUD" else 4,
        Decimal("19.50"),
        True,
        {
            "dashboard": {"default_range_days": 30, "show_costs": True},
            "alerts": {"downtime_hours": 6, "overdue_service_pct": 10},
            "locale": "en-AU" if f.currency == "AUD" else "en-GB",
        },
    )


def _memberships(ctx: _TenantContext) -> Iterator[Row]:
    for i, role in enumerate(Membership.Role.values):
        yield (
            ctx.id_of(Membership, i),
            ctx.tenant_id,
            ctx.users[role].pk,
            role,
            _back((900 - 200 * i) * _US_PER_DAY + 123_456 * (i + 1)),
        )


def _sites(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Site)
    templates = ctx.flavour.sites
    for i in range(ctx.sizes.sites):
        t = templates[i % len(templates)]
        lap = i // len(templates)
        name = t.name if lap == 0 else f"{t.name} {lap + 1}"
        yield (
            ctx.id_of(Site, i),
            ctx.tenant_id,
            name,
            f"S{i + 1:03d}",
            t.kind,
            f"{t.address}, lot {rng.randint(1, 400)}",
            _dec(t.latitude + rng.uniform(-0.4, 0.4), 6),
            _dec(t.longitude + rng.uniform(-0.4, 0.4), 6),
            ctx.flavour.timezone,
            lap < 3 or rng.chance(0.7),
        )


# Profiles: the first ones are alive, one per equipment model; the soft-deleted "legacy" ones
# sit at fixed indices so that a bigger catalogue never renumbers them.
_MAX_PROFILES = 12
_LEGACY_PROFILES = (100, 101)


def _profile_indices(ctx: _TenantContext) -> list[int]:
    alive = min(len(ctx.catalogue.equipment_models), _MAX_PROFILES)
    return [*range(alive), *_LEGACY_PROFILES]


def _alive_profiles(ctx: _TenantContext) -> int:
    return min(len(ctx.catalogue.equipment_models), _MAX_PROFILES)


def _profile_model(ctx: _TenantContext, index: int) -> _EquipmentModelRow:
    models_ = ctx.catalogue.equipment_models
    return models_[index % len(models_)]


def _profiles(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Profile)
    for p in _profile_indices(ctx):
        model = _profile_model(ctx, p)
        legacy = p >= _LEGACY_PROFILES[0]
        name = f"{model.label} — {'legacy ' + str(2016 + p % 10) if legacy else 'standard'}"
        yield (
            ctx.id_of(Profile, p),
            ctx.tenant_id,
            _back(rng.randint(30, 400) * _US_PER_DAY + rng.randint(0, _US_PER_DAY))
            if legacy
            else None,
            name,
            model.id,
            f"OEM-recommended intervals for the {model.label}, adjusted for site conditions.",
            _dec(rng.uniform(14, 22), 2),
            p == 0,
        )


def _profile_components(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(ProfileComponent)
    comps, positions = ctx.catalogue.components, ctx.catalogue.positions
    per_profile = min(5, len(comps) * len(positions))
    for p in _profile_indices(ctx):
        for j in range(per_profile):
            # (j mod comps, j div comps) is one-to-one, so (component, position) never repeats.
            comp = comps[(p + j) % len(comps)]
            position = positions[(p + j // len(comps)) % len(positions)]
            yield (
                ctx.id_of(ProfileComponent, p * 100 + j),
                ctx.tenant_id,
                ctx.id_of(Profile, p),
                comp.id,
                position,
                rng.pick((1, 1, 1, 2, 4, 6)),
                max(250, round(comp.life_hours * rng.uniform(0.8, 1.1) / 250) * 250),
            )


def _profile_events(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(ProfileEvent)
    activities = ctx.catalogue.activities
    for p in _profile_indices(ctx):
        for j in range(min(4, len(activities))):
            activity = activities[(p + j) % len(activities)]
            by_hours = rng.chance(0.75)
            yield (
                ctx.id_of(ProfileEvent, p * 100 + j),
                ctx.tenant_id,
                ctx.id_of(Profile, p),
                activity.id,
                activity.name,
                rng.pick((250, 500, 1000, 2000)) if by_hours else None,
                None if by_hours else rng.pick((7, 30, 90, 365)),
                rng.money(150, 25_000),
            )


def _vehicles(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Vehicle)
    catalogue = ctx.catalogue
    facts = ctx.vehicles
    n_profiles = _alive_profiles(ctx)
    for v in range(ctx.sizes.vehicles):
        if v % 13 == 7:
            profile_id = None
            model = catalogue.equipment_models[(v * 7) % len(catalogue.equipment_models)]
        else:
            p = v % n_profiles
            profile_id = ctx.id_of(Profile, p)
            model = _profile_model(ctx, p)
        category = model.category
        commissioned_days = rng.randint(120, 12 * 365)
        hours_per_day = rng.uniform(8, 21) if category != "light_vehicle" else rng.uniform(3, 9)
        hours = commissioned_days * hours_per_day * rng.uniform(0.75, 0.95)
        speed = _ODOMETER_SPEED_KMH.get(category)
        odometer = hours * speed * rng.uniform(0.8, 1.2) if speed else -1.0
        deleted = v % 50 == 1
        if deleted:
            status = Vehicle.Status.RETIRED
        else:
            status = rng.weighted(
                (
                    (Vehicle.Status.ACTIVE, 0.82),
                    (Vehicle.Status.STANDBY, 0.09),
                    (Vehicle.Status.DOWN, 0.07),
                    (Vehicle.Status.RETIRED, 0.02),
                )
            )
        low, high = _PRICE_RANGE.get(category, (500_000, 2_000_000))
        fleet_number = f"{_FLEET_PREFIX.get(category, 'EQ')}-{v + 1:05d}"
        facts.categories.append(category)
        facts.fleet_numbers.append(fleet_number)
        facts.hours.append(hours)
        facts.hours_per_day.append(hours_per_day)
        facts.odometer.append(odometer)
        attributes: dict[str, Any] = {
            "colour": rng.pick(_COLOURS),
            "rated_power_kw": model.power_kw,
            "telematics": {
                "provider": rng.pick(("VisionLink", "KOMTRAX", "MineStar", "Trimble")),
                "unit_id": f"TX{rng.getrandbits(40):010X}",
            },
            "tags": sorted(
                rng.sample(["night-shift", "hire", "rebuild-2025", "pit-a", "pit-b"], 2)
            ),
        }
        if odometer >= 0:
            attributes["tyres"] = {
                "size": rng.pick(("59/80R63", "40.00R57", "265/70R16")),
                "psi": 102,
            }
        if rng.chance(0.15):
            attributes["notes"] = "Fitted with fire suppression upgrade."
        yield (
            ctx.id_of(Vehicle, v),
            ctx.tenant_id,
            _back(rng.randint(1, 200) * _US_PER_DAY + rng.randint(0, _US_PER_DAY))
            if deleted
            else None,
            ctx.id_of(Site, ctx.site_index(v)),
            profile_id,
            model.id,
            catalogue.families[v % len(catalogue.families)] if v % 9 else None,
            f"{model.label.split()[0][:3].upper()}{v:08d}",
            fleet_number,
            status,
            ANCHOR_DATE - timedelta(days=commissioned_days),
            rng.money(low, high),
            _dec(hours, 1),
            _dec(odometer, 1) if odometer >= 0 else None,
            rng.chance(0.18),
            attributes,
        )


def _components(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Component)
    catalogue = ctx.catalogue
    facts = ctx.vehicles
    n_v = ctx.sizes.vehicles
    status_weights = (
        (Component.Status.INSTALLED, 0.8),
        (Component.Status.REMOVED, 0.1),
        (Component.Status.REBUILDING, 0.06),
        (Component.Status.SCRAPPED, 0.04),
    )
    for c in range(ctx.sizes.components):
        v = c % n_v
        item = rng.pick(catalogue.components)
        position = rng.pick(catalogue.positions) if rng.chance(0.85) else None
        back = rng.randint(60 * _US_PER_DAY, 4 * 365 * _US_PER_DAY)
        hours = max(0.0, facts.hours[v] - back / _US_PER_DAY * facts.hours_per_day[v])
        ctx.component_installed_back.append(back)
        ctx.component_hours.append(hours)
        yield (
            ctx.id_of(Component, c),
            ctx.tenant_id,
            ctx.id_of(Vehicle, v),
            item.id,
            position,
            f"{item.code}-{c:08d}",
            rng.weighted(status_weights),
            _back(back),
            _dec(hours, 1),
            rng.money(800, 450_000) if rng.chance(0.9) else None,
        )


_COMPONENT_NOTES = {
    ComponentEvent.EventType.INSPECTION: "Visual inspection, no defects found.",
    ComponentEvent.EventType.REPAIR: "Seal kit replaced, pressure tested OK.",
    ComponentEvent.EventType.REPLACEMENT: "Replaced with exchange unit.",
    ComponentEvent.EventType.OIL_SAMPLE: "Oil sample sent to lab; iron 18 ppm, silicon 6 ppm.",
    ComponentEvent.EventType.FAILURE: "Failed in service; root-cause analysis opened.",
}


def _component_events(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(ComponentEvent)
    n_c = ctx.sizes.components
    types = (
        ComponentEvent.EventType.INSPECTION,
        ComponentEvent.EventType.INSPECTION,
        ComponentEvent.EventType.OIL_SAMPLE,
        ComponentEvent.EventType.OIL_SAMPLE,
        ComponentEvent.EventType.REPAIR,
        ComponentEvent.EventType.REPLACEMENT,
        ComponentEvent.EventType.FAILURE,
    )
    for c, k in _spread(ctx.sizes.component_events, n_c):
        # Counted forward from installation, one step per event of the component.
        after = k * _COMPONENT_EVENT_STEP + int(rng.random() * (_COMPONENT_EVENT_STEP - 1))
        event_type = rng.pick(types)
        hours = ctx.component_hours[c] + after / _US_PER_DAY * 14
        yield (
            ctx.child_id(ComponentEvent, c, k),
            ctx.tenant_id,
            ctx.id_of(Component, c),
            event_type,
            _back(ctx.component_installed_back[c] - after),
            _dec(hours, 1) if rng.chance(0.9) else None,
            _COMPONENT_NOTES[event_type] if rng.chance(0.7) else "",
        )


def _work_orders(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(WorkOrder)
    n_v = ctx.sizes.vehicles
    activities = ctx.catalogue.activities
    S = WorkOrder.Status
    for w in range(ctx.sizes.work_orders):
        v, k = w % n_v, w // n_v
        back = k * _WORK_ORDER_STEP + int(rng.random() * (_WORK_ORDER_STEP - 1))
        ctx.work_order_opened_back.append(back)
        opened = _back(back)
        recent = back < 21 * _US_PER_DAY
        deleted = w % 40 == 1
        if deleted:
            status = S.CANCELLED
        elif recent:
            status = rng.weighted(((S.OPEN, 0.4), (S.IN_PROGRESS, 0.35), (S.ON_HOLD, 0.15)))
        else:
            status = rng.weighted(((S.DONE, 0.92), (S.CANCELLED, 0.05), (S.ON_HOLD, 0.03)))
        closed = None
        if status in (S.DONE, S.CANCELLED):
            closed = opened + timedelta(microseconds=rng.randint(_US_PER_HOUR, 9 * _US_PER_DAY))
        activity = rng.pick(activities)
        yield (
            ctx.id_of(WorkOrder, w),
            ctx.tenant_id,
            closed + timedelta(days=rng.randint(1, 30)) if deleted and closed else None,
            f"WO-{w + 1:07d}",
            ctx.id_of(Vehicle, v),
            ctx.id_of(Site, ctx.site_index(v)) if rng.chance(0.95) else None,
            status,
            rng.weighted(
                (
                    (WorkOrder.Priority.NORMAL, 0.6),
                    (WorkOrder.Priority.LOW, 0.15),
                    (WorkOrder.Priority.HIGH, 0.2),
                    (WorkOrder.Priority.URGENT, 0.05),
                )
            ),
            opened,
            closed,
            f"{activity.name} on {ctx.vehicles.fleet_numbers[v]}",
            rng.money(200, 60_000) if rng.chance(0.8) else None,
        )


def _work_order_of_vehicle(ctx: _TenantContext, rng: _Rng, vehicle: int, k: int) -> str | None:
    """One of the vehicle's own work orders (or none), so a log never points across vehicles."""
    count = ctx.work_orders_of(vehicle)
    if count == 0 or rng.random() < 0.35:
        return None
    return ctx.id_of(WorkOrder, vehicle + (k % count) * ctx.sizes.vehicles)


def _maintenance_logs(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(MaintenanceLog)
    n_v = ctx.sizes.vehicles
    facts = ctx.vehicles
    activities = ctx.catalogue.activities
    for v, k in _spread(ctx.sizes.logs, n_v):
        back = k * _LOG_STEP + int(rng.random() * (_LOG_STEP - 1))
        activity = rng.pick(activities)
        hours = max(0.0, facts.hours[v] - back / _US_PER_DAY * facts.hours_per_day[v])
        labour = activity.duration_hours * rng.uniform(0.6, 1.6)
        yield (
            ctx.child_id(MaintenanceLog, v, k),
            ctx.tenant_id,
            ctx.id_of(Vehicle, v),
            _work_order_of_vehicle(ctx, rng, v, k),
            activity.id,
            _back(back),
            _dec(hours, 1) if rng.chance(0.95) else None,
            rng.pick(_TECHNICIANS),
            _dec(labour, 2),
            _dec(labour * rng.uniform(95, 160) + rng.uniform(0, 4_000), 2),
            ""
            if rng.chance(0.6)
            else f"{activity.name} completed; next due in {rng.pick((250, 500))} h.",
        )


def _meter_readings(ctx: _TenantContext) -> Iterator[Row]:
    # The hot loop of the seed (a million rows): keep it free of attribute look-ups.
    rng = ctx.rng(MeterReading)
    random_ = rng.random
    n_v = ctx.sizes.vehicles
    tenant_id = ctx.tenant_id
    prefix = ctx.prefix(MeterReading)
    vehicle_prefix = ctx.prefix(Vehicle)
    hours, per_day, odometer = ctx.vehicles.hours, ctx.vehicles.hours_per_day, ctx.vehicles.odometer
    speeds = [_ODOMETER_SPEED_KMH.get(c, 0.0) * 0.8 for c in ctx.vehicles.categories]
    step = _READING_STEP
    jitter_span = step - 1
    per_hour = float(_US_PER_HOUR)
    engine, odo, fuel = (
        MeterReading.MeterType.ENGINE_HOURS.value,
        MeterReading.MeterType.ODOMETER.value,
        MeterReading.MeterType.FUEL_LEVEL.value,
    )
    telematics, manual, imported = (
        MeterReading.Source.TELEMATICS.value,
        MeterReading.Source.MANUAL.value,
        MeterReading.Source.IMPORT.value,
    )
    anchor = ANCHOR
    for v, count in enumerate(_per_parent(ctx.sizes.readings, n_v)):
        row_prefix = f"{prefix}{v:06x}"
        vehicle_id = f"{vehicle_prefix}{v:012x}"
        vehicle_hours, vehicle_per_hour = hours[v], per_day[v] / 24.0
        vehicle_odometer, speed = odometer[v], speeds[v]
        for k in range(count):
            back = k * step + int(random_() * jitter_span)
            elapsed_h = back / per_hour
            phase = k & 3
            if phase == 1 and vehicle_odometer >= 0:
                meter, value = odo, vehicle_odometer - elapsed_h * speed
            elif phase == 3:
                meter, value = fuel, 5.0 + random_() * 95.0
            else:
                meter, value = engine, vehicle_hours - elapsed_h * vehicle_per_hour
            s = random_()
            yield (
                f"{row_prefix}{k:06x}",
                tenant_id,
                vehicle_id,
                meter,
                anchor - timedelta(microseconds=back),
                Decimal(f"{value if value > 0 else 0.0:.2f}"),
                telematics if s < 0.9 else manual if s < 0.97 else imported,
            )


def _forecasts(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Forecast)
    n_v = ctx.sizes.vehicles
    facts = ctx.vehicles
    activities = ctx.catalogue.activities
    for v, k in _spread(ctx.sizes.forecasts, n_v):
        # Each k owns a disjoint 30-day window, so (vehicle, activity, due_on) is unique.
        days = k * 30 + rng.randint(1, 29)
        activity = rng.pick(activities)
        yield (
            ctx.child_id(Forecast, v, k),
            ctx.tenant_id,
            ctx.id_of(Vehicle, v),
            activity.id,
            ANCHOR_DATE + timedelta(days=days),
            _dec(facts.hours[v] + days * facts.hours_per_day[v], 1) if rng.chance(0.85) else None,
            rng.money(300, 40_000),
            _dec(rng.uniform(0.55, 0.99), 3),
            _back(rng.randint(0, 6 * _US_PER_HOUR)),
        )


_PART_NAMES = (
    "Hydraulic hose 1in",
    "Primary air filter",
    "Fuel filter",
    "Engine oil 15W-40 (205 L)",
    "Brake pad set",
    "Cutting edge",
    "Bucket tooth",
    "Idler bearing",
    "Alternator",
    "Starter motor",
)


def _parts(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Part)
    comps = ctx.catalogue.components
    for i in range(ctx.sizes.parts):
        linked = rng.chance(0.6)
        item = rng.pick(comps)
        yield (
            ctx.id_of(Part, i),
            ctx.tenant_id,
            _back(rng.randint(1, 300) * _US_PER_DAY + rng.randint(0, _US_PER_DAY))
            if i % 25 == 1
            else None,
            f"PN-{100_000 + i * 7}",
            item.name if linked else rng.pick(_PART_NAMES),
            item.id if linked else None,
            ctx.id_of(Site, i % ctx.sizes.sites) if rng.chance(0.8) else None,
            rng.randint(0, 120),
            rng.randint(0, 20),
            rng.money(4, 85_000),
        )


def _financial_records(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(FinancialRecord)
    n_v, n_wo = ctx.sizes.vehicles, ctx.sizes.work_orders
    C = FinancialRecord.Category
    currency = ctx.flavour.currency
    for i in range(ctx.sizes.financial_records):
        if i < n_wo:
            # One booking per work order, on the work order's vehicle.
            vehicle_id = ctx.id_of(Vehicle, i % n_v)
            work_order_id = ctx.id_of(WorkOrder, i)
            category = rng.pick((C.PARTS, C.PARTS, C.LABOUR))
            booked = (ANCHOR - timedelta(microseconds=ctx.work_order_opened_back[i])).date()
            amount = rng.money(120, 48_000)
            description = f"WO-{i + 1:07d} {category}"
        else:
            j = i - n_wo
            vehicle_id = ctx.id_of(Vehicle, j % n_v) if j % 7 else None
            category = rng.pick((C.LEASE, C.INSURANCE, C.FUEL, C.OTHER))
            booked = ANCHOR_DATE - timedelta(days=rng.randint(0, 730))
            amount = rng.money(-2_500, 95_000) if category == C.OTHER else rng.money(900, 95_000)
            work_order_id = None
            description = f"{category.label} {booked:%B %Y}"
        yield (
            ctx.id_of(FinancialRecord, i),
            ctx.tenant_id,
            f"FIN-{i + 1:08d}",
            vehicle_id,
            work_order_id,
            category,
            amount,
            currency,
            booked,
            description,
        )


def _notifications(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Notification)
    n_v = ctx.sizes.vehicles
    L = Notification.Level
    for i in range(ctx.sizes.notifications):
        v = (i * 7) % n_v
        back = i * _NOTIFICATION_STEP + int(rng.random() * (_NOTIFICATION_STEP - 1))
        level = rng.weighted(((L.INFO, 0.6), (L.WARNING, 0.3), (L.CRITICAL, 0.1)))
        with_vehicle = rng.chance(0.8)
        fleet = ctx.vehicles.fleet_numbers[v]
        title = {
            L.INFO: f"Service completed on {fleet}",
            L.WARNING: f"Service due soon on {fleet}",
            L.CRITICAL: f"{fleet} is down",
        }[level]
        created = _back(back)
        yield (
            ctx.id_of(Notification, i),
            ctx.tenant_id,
            ctx.id_of(Vehicle, v) if with_vehicle else None,
            level,
            title if with_vehicle else f"Weekly fleet summary #{i + 1}",
            "" if rng.chance(0.3) else "Open the vehicle page for details.",
            created,
            created + timedelta(minutes=rng.randint(2, 3000)) if rng.chance(0.6) else None,
        )


_ATTACHMENT_KINDS = (
    ("inspection-report", "pdf", "application/pdf"),
    ("photo", "jpg", "image/jpeg"),
    ("oil-analysis", "pdf", "application/pdf"),
    ("parts-quote", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("wiring-diagram", "png", "image/png"),
)


def _attachments(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(Attachment)
    n_v, n_wo = ctx.sizes.vehicles, ctx.sizes.work_orders
    for a in range(ctx.sizes.attachments):
        if a % 4 != 3:
            w = a % n_wo
            work_order_id, vehicle_id = ctx.id_of(WorkOrder, w), ctx.id_of(Vehicle, w % n_v)
        else:
            work_order_id, vehicle_id = None, ctx.id_of(Vehicle, a % n_v)
        stem, ext, content_type = rng.pick(_ATTACHMENT_KINDS)
        uploaded = _back(a * _ATTACHMENT_STEP + int(rng.random() * (_ATTACHMENT_STEP - 1)))
        yield (
            ctx.id_of(Attachment, a),
            ctx.tenant_id,
            work_order_id,
            vehicle_id,
            # The tenant's own names: a backup may only name files its tenant's rows name.
            f"attachments/{uploaded:%Y/%m}/{ctx.spec.slug}-{stem}-{a + 1:06d}.{ext}",
            f"{stem}.{ext}",
            content_type,
            rng.randint(8_000, 12_000_000),
            f"{rng.getrandbits(256):064x}",
            uploaded,
        )


def _downtime_events(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(DowntimeEvent)
    n_v = ctx.sizes.vehicles
    R = DowntimeEvent.Reason
    for v, k in _spread(ctx.sizes.downtime_events, n_v):
        back = k * _DOWNTIME_STEP + int(rng.random() * (_DOWNTIME_STEP - 1))
        started = _back(back)
        duration = rng.randint(_US_PER_HOUR // 2, 5 * _US_PER_DAY)
        ongoing = k == 0 and duration > back
        reason = rng.weighted(
            (
                (R.BREAKDOWN, 0.35),
                (R.SCHEDULED, 0.3),
                (R.WAITING_PARTS, 0.15),
                (R.WEATHER, 0.1),
                (R.OPERATIONAL, 0.1),
            )
        )
        yield (
            ctx.child_id(DowntimeEvent, v, k),
            ctx.tenant_id,
            ctx.id_of(Vehicle, v),
            _work_order_of_vehicle(ctx, rng, v, k),
            reason,
            started,
            None if ongoing else started + timedelta(microseconds=duration),
            "" if rng.chance(0.5) else f"{R(reason).label}; crew notified.",
        )


def _fuel_transactions(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(FuelTransaction)
    n_v = ctx.sizes.vehicles
    facts = ctx.vehicles
    low, high = ctx.flavour.fuel_price
    for v, k in _spread(ctx.sizes.fuel_transactions, n_v):
        back = k * _FUEL_STEP + int(rng.random() * (_FUEL_STEP - 1))
        category = facts.categories[v]
        litres = rng.uniform(45, 95) if category == "light_vehicle" else rng.uniform(380, 4_200)
        yield (
            ctx.child_id(FuelTransaction, v, k),
            ctx.tenant_id,
            f"RC{v + 1:07d}-{k + 1:04d}",
            ctx.id_of(Vehicle, v),
            ctx.id_of(Site, ctx.site_index(v)) if rng.chance(0.9) else None,
            _back(back),
            _dec(litres, 2),
            _dec(rng.uniform(low, high), 4),
            _dec(max(0.0, facts.hours[v] - back / _US_PER_DAY * facts.hours_per_day[v]), 1),
        )


_SCENARIOS = ("Base case", "High fuel price", "Extended component life", "Lease instead of buy")


def _tco_scenarios(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(TCOScenario)
    low, high = ctx.flavour.fuel_price
    for i, title in enumerate(_SCENARIOS):
        model = ctx.catalogue.equipment_models[i % len(ctx.catalogue.equipment_models)]
        yield (
            ctx.id_of(TCOScenario, i),
            ctx.tenant_id,
            f"{model.label}: {title}",
            model.id,
            rng.pick((5, 7, 10)),
            rng.randint(40, 70) * 100,
            _dec(rng.uniform(low, high) * (1.3 if "fuel" in title else 1), 4),
            _dec(rng.uniform(0.04, 0.11), 4),
            {
                "residual_value_pct": rng.randint(10, 30),
                "maintenance_cost_per_hour": float(_dec(rng.uniform(35, 120), 2)),
                "availability_pct": round(rng.uniform(82, 94), 1),
                "inflation": [0.03, 0.028, 0.025],
                "financing": {"lease": "lease" in title.lower(), "term_months": 60},
            },
            _back(rng.randint(1, 200) * _US_PER_DAY + rng.randint(0, _US_PER_DAY)),
        )


def _integration_credentials(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(IntegrationCredential)
    P = IntegrationCredential.Provider
    rows = (
        (P.TELEMATICS, "VisionLink", "https://api.visionlink.example/v2", "fleet-sync"),
        (P.ERP, "SAP S/4HANA", "https://erp.example/sap/opu/odata", "SVC_FLEET"),
        (P.FUEL_CARD, "FuelCo card feed", "https://fuelco.example/api", ""),
        (P.WEBHOOK, "Downtime alerts", "https://hooks.example/services/T000/B000", ""),
    )
    for i, (provider, name, url, username) in enumerate(rows):
        yield (
            ctx.id_of(IntegrationCredential, i),
            ctx.tenant_id,
            provider,
            name,
            url,
            username,
            f"demo_{provider}_{rng.getrandbits(160):040x}",
            False,
            i != 2,
            _back(rng.randint(0, 72) * _US_PER_HOUR + rng.randint(0, _US_PER_HOUR)),
            {"poll_interval_s": rng.pick((60, 300, 900)), "verify_tls": True, "scopes": ["read"]},
        )


_AUDIT_ACTIONS = (
    "user.login",
    "vehicle.updated",
    "workorder.created",
    "workorder.closed",
    "part.adjusted",
    "report.exported",
    "settings.changed",
)


def _audit_logs(ctx: _TenantContext) -> Iterator[Row]:
    rng = ctx.rng(AuditLog)
    users = [ctx.users[role] for role in Membership.Role.values]
    n_v = ctx.sizes.vehicles
    for i in range(ctx.sizes.audit_logs):
        back = i * _AUDIT_STEP + int(rng.random() * (_AUDIT_STEP - 1))
        user = None if rng.chance(0.1) else rng.pick(users)
        action = rng.pick(_AUDIT_ACTIONS)
        details: dict[str, Any] = {"ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7"}
        if action.startswith("vehicle"):
            details["vehicle"] = ctx.vehicles.fleet_numbers[i % n_v]
            details["changed"] = ["status"]
        elif action.startswith("workorder"):
            details["number"] = f"WO-{i % ctx.sizes.work_orders + 1:07d}"
        yield (
            ctx.id_of(AuditLog, i),
            ctx.tenant_id,
            user.pk if user else None,
            user.email if user else "",
            action,
            details,
            _back(back),
            None,  # written here, not imported
            "",
            None,
        )


@dataclass(frozen=True)
class _Table:
    model: type[TenantScopedModel]
    # Field attnames, in the order of the generated tuples; must cover every concrete field.
    fields: tuple[str, ...]
    rows: Callable[[_TenantContext], Iterator[Row]]
    # How the big tables number their rows, so that a rerun can tell cheaply that a table is
    # complete and skip generating it: `size` rows numbered 0..size-1 (`id_of`), or, with
    # `parents`, shared over that many parents and numbered (parent, k) (`child_id`).
    size: Callable[[DemoSizes], int] | None = None
    parents: Callable[[DemoSizes], int] | None = None
    # The generator records facts that later tables use, so it runs even when skipped.
    feeds_children: bool = False


def _table(
    model: type[TenantScopedModel],
    fields: str,
    rows: Callable[..., Iterator[Row]],
    size: Callable[[DemoSizes], int] | None = None,
    parents: Callable[[DemoSizes], int] | None = None,
    feeds_children: bool = False,
) -> _Table:
    return _Table(model, ("id", "tenant_id", *fields.split()), rows, size, parents, feeds_children)


TABLES: tuple[_Table, ...] = (
    _table(
        TenantSettings,
        "currency timezone distance_unit fiscal_year_start_month default_utilisation_hours"
        " forecasting_enabled preferences",
        _tenant_settings,
    ),
    _table(Membership, "user_id role joined_at", _memberships),
    _table(
        Site,
        "name code kind address latitude longitude timezone is_active",
        _sites,
        size=lambda s: s.sites,
    ),
    _table(
        Profile,
        "deleted_at name equipment_model_id description operating_hours_per_day is_default",
        _profiles,
    ),
    _table(
        ProfileComponent,
        "profile_id component_id position_id quantity replacement_interval_hours",
        _profile_components,
    ),
    _table(
        ProfileEvent,
        "profile_id activity_id name interval_hours interval_days estimated_cost",
        _profile_events,
    ),
    _table(
        Vehicle,
        "deleted_at site_id profile_id equipment_model_id machine_family_id serial_number"
        " fleet_number status commissioned_on purchase_price engine_hours odometer_km is_leased"
        " attributes",
        _vehicles,
        size=lambda s: s.vehicles,
        feeds_children=True,
    ),
    _table(
        Component,
        "vehicle_id catalog_item_id position_id serial_number status installed_at"
        " hours_at_install cost",
        _components,
        size=lambda s: s.components,
        feeds_children=True,
    ),
    _table(
        ComponentEvent,
        "component_id event_type occurred_at hours notes",
        _component_events,
        size=lambda s: s.component_events,
        parents=lambda s: s.components,
    ),
    _table(
        WorkOrder,
        "deleted_at number vehicle_id site_id status priority opened_at closed_at description"
        " estimated_cost",
        _work_orders,
        size=lambda s: s.work_orders,
        feeds_children=True,
    ),
    _table(
        MaintenanceLog,
        "vehicle_id work_order_id activity_id performed_at engine_hours technician labour_hours"
        " cost notes",
        _maintenance_logs,
        size=lambda s: s.logs,
        parents=lambda s: s.vehicles,
    ),
    _table(
        MeterReading,
        "vehicle_id meter_type read_at value source",
        _meter_readings,
        size=lambda s: s.readings,
        parents=lambda s: s.vehicles,
    ),
    _table(
        Forecast,
        "vehicle_id activity_id due_on due_hours estimated_cost confidence generated_at",
        _forecasts,
        size=lambda s: s.forecasts,
        parents=lambda s: s.vehicles,
    ),
    _table(
        Part,
        "deleted_at part_number name catalog_item_id site_id quantity_on_hand reorder_level"
        " unit_cost",
        _parts,
        size=lambda s: s.parts,
    ),
    _table(
        FinancialRecord,
        "reference vehicle_id work_order_id category amount currency booked_on description",
        _financial_records,
        size=lambda s: s.financial_records,
    ),
    _table(
        Notification,
        "vehicle_id level title body created_at read_at",
        _notifications,
        size=lambda s: s.notifications,
    ),
    _table(
        Attachment,
        "work_order_id vehicle_id file filename content_type size_bytes sha256 uploaded_at",
        _attachments,
        size=lambda s: s.attachments,
    ),
    _table(
        DowntimeEvent,
        "vehicle_id work_order_id reason started_at ended_at notes",
        _downtime_events,
        size=lambda s: s.downtime_events,
        parents=lambda s: s.vehicles,
    ),
    _table(
        FuelTransaction,
        "receipt_number vehicle_id site_id transacted_at litres unit_price engine_hours",
        _fuel_transactions,
        size=lambda s: s.fuel_transactions,
        parents=lambda s: s.vehicles,
    ),
    _table(
        TCOScenario,
        "name equipment_model_id horizon_years annual_hours fuel_price discount_rate"
        " assumptions created_at",
        _tco_scenarios,
    ),
    _table(
        IntegrationCredential,
        "provider name endpoint_url username secret secret_needs_reentry is_active"
        " last_used_at config",
        _integration_credentials,
    ),
    _table(
        AuditLog,
        "actor_id actor_email action details created_at imported_at imported_by import_id",
        _audit_logs,
        size=lambda s: s.audit_logs,
    ),
)


def _is_complete(table: _Table, ctx: _TenantContext) -> bool:
    """Whether the tenant already has every row `table` would generate (checked by id only).

    Ids of one table and tenant share their first 80 bits, and the rest numbers the row, so
    counting the tenant's ids that fall in the expected numbering is enough: they are distinct.
    """
    if table.size is None:
        return False
    size = table.size(ctx.sizes)
    model = table.model
    rows = model._default_manager.filter(tenant_id=ctx.tenant_id)
    if table.parents is None:
        expected = rows.filter(id__gte=ctx.id_of(model, 0), id__lte=ctx.id_of(model, size - 1))
        return expected.count() == size
    parents = table.parents(ctx.sizes)
    share, rest = divmod(size, parents)
    # The last 12 hex digits of the id are 6 for the parent and 6 for k (see `child_id`);
    # fixed-width lower-case hex compares as text in the same order as the numbers.
    numbered = rows.filter(
        id__gte=ctx.child_id(model, 0, 0), id__lte=ctx.child_id(model, parents - 1, share)
    ).annotate(_hex=Right(Cast("id", models.CharField()), 12))
    expected = numbered.annotate(_parent=Substr("_hex", 1, 6), _k=Substr("_hex", 7, 6)).filter(
        Q(_k__lt=f"{share:06x}") | Q(_k=f"{share:06x}", _parent__lt=f"{rest:06x}"),
        _parent__lt=f"{parents:06x}",
    )
    return expected.count() == size


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _concrete_fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    missing = set(by_attname) - set(names)
    unknown = set(names) - set(by_attname)
    # Django's `default=` lives in Python, not in the table, so a column left out of a COPY
    # would be NULL: every column has to be generated.
    if missing or unknown:
        raise ValueError(
            f"{model.__name__}: columns not generated {sorted(missing)}, unknown {sorted(unknown)}"
        )
    return [by_attname[name] for name in names]


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class _Writer(abc.ABC):
    def open(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Called inside the transaction the writer serves, before the first table."""

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Called after the last table, if all went well."""

    @abc.abstractmethod
    def write(
        self, model: type[models.Model], names: Sequence[str], tenant_id: Any, rows: Iterable[Row]
    ) -> None:
        """Insert the rows that are not there yet."""


class _InsertIgnoreWriter(_Writer):
    """Any database: executemany of an INSERT that skips rows already there."""

    def write(
        self, model: type[models.Model], names: Sequence[str], tenant_id: Any, rows: Iterable[Row]
    ) -> None:
        fields = _concrete_fields(model, names)
        ops = connection.ops
        columns = ", ".join(ops.quote_name(f.column) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = (
            f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} "
            f"{ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({placeholders}) "
            f"{ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)}"
        )
        preps = [f.get_db_prep_save for f in fields]
        with connection.cursor() as cursor:
            for chunk in _chunks(rows, _INSERT_CHUNK):
                cursor.executemany(
                    sql,
                    [
                        tuple(
                            None if value is None else prep(value, connection)
                            for prep, value in zip(preps, row, strict=True)
                        )
                        for row in chunk
                    ],
                )


class _PostgresCopyWriter(_Writer):
    """PostgreSQL: COPY straight into the table when the tenant has no rows there yet,
    otherwise COPY into a staging table and INSERT ... ON CONFLICT DO NOTHING from it.

    Its settings are transaction-local, and `close` restores them, so that a caller's own
    transaction around the seed is left as it was.
    """

    triggers_off = False

    def open(self) -> None:
        with connection.cursor() as cursor:
            # Django declares foreign keys DEFERRABLE INITIALLY DEFERRED; a million queued
            # checks cost far more at commit than at the end of each COPY.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SELECT current_setting('session_replication_role')")
            (self._previous_role,) = cursor.fetchone()
        self.triggers_off = self._disable_triggers()

    def close(self) -> None:
        with connection.cursor() as cursor:
            if self.triggers_off:
                cursor.execute(
                    "SELECT set_config('session_replication_role', %s, true)",
                    [self._previous_role],
                )
            # Back to how Django creates foreign keys (INITIALLY DEFERRED).
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    @staticmethod
    def _disable_triggers() -> bool:
        # Foreign keys are checked by one trigger call per row and key, which doubles the time
        # of a big load. Like pg_restore --disable-triggers, switch them off for this
        # transaction when the role may (a superuser, or one granted SET on the parameter),
        # and check every key of the new rows set-wise after each table instead (_validate).
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            return False
        return True

    def write(
        self, model: type[models.Model], names: Sequence[str], tenant_id: Any, rows: Iterable[Row]
    ) -> None:
        from psycopg.types.json import Jsonb

        fields = _concrete_fields(model, names)
        qn = connection.ops.quote_name
        table = qn(model._meta.db_table)
        columns = ", ".join(qn(f.column) for f in fields)
        json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
        if json_positions:

            def adapt(row: Row) -> Row:
                values = list(row)
                for i in json_positions:
                    if values[i] is not None:
                        values[i] = Jsonb(values[i])
                return tuple(values)

            rows = map(adapt, rows)

        with connection.cursor() as wrapper:
            cursor = wrapper.cursor
            cursor.execute(f"SELECT 1 FROM {table} WHERE tenant_id = %s LIMIT 1", [tenant_id])
            if cursor.fetchone() is None:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                inserted = True
            else:
                inserted = False
                staging = qn(f"seed_{model._meta.db_table}")
                cursor.execute(f"CREATE TEMP TABLE {staging} (LIKE {table}) ON COMMIT DROP")
                pending = iter(rows)
                while True:
                    copied = 0
                    with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                        for row in itertools.islice(pending, _STAGING_CHUNK):
                            copy.write_row(row)
                            copied += 1
                    if not copied:
                        break
                    cursor.execute(
                        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
                        "ON CONFLICT DO NOTHING"
                    )
                    inserted = inserted or cursor.rowcount > 0
                    cursor.execute(f"TRUNCATE {staging}")
                cursor.execute(f"DROP TABLE {staging}")
            if inserted and self.triggers_off:
                self._validate(cursor, model, fields, tenant_id)

    @staticmethod
    def _validate(
        cursor: Any, model: type[models.Model], fields: Sequence[models.Field], tenant_id: Any
    ) -> None:
        """Every foreign key of the tenant's rows resolves, to a row of the same tenant when
        the target is tenant-scoped; one anti-join per key, as VALIDATE CONSTRAINT would do."""
        qn = connection.ops.quote_name
        table = qn(model._meta.db_table)
        for f in fields:
            if not f.is_relation:
                continue
            target = f.related_model
            match = f"p.{qn(f.target_field.column)} = c.{qn(f.column)}"
            if issubclass(target, TenantScopedModel):
                match += " AND p.tenant_id = c.tenant_id"
            cursor.execute(
                f"SELECT count(*) FROM {table} c WHERE c.tenant_id = %s "
                f"AND c.{qn(f.column)} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {qn(target._meta.db_table)} p WHERE {match})",
                [tenant_id],
            )
            (dangling,) = cursor.fetchone()
            if dangling:
                raise IntegrityError(
                    f"{model.__name__}.{f.name}: {dangling} rows point to no row of "
                    f"{target.__name__} (of the same tenant)"
                )


@contextlib.contextmanager
def _writer() -> Iterator[_Writer]:
    writer = _PostgresCopyWriter() if connection.vendor == "postgresql" else _InsertIgnoreWriter()
    writer.open()
    yield writer
    # Not in a `finally`: after an error the transaction is rolled back, which undoes the
    # settings anyway, and a statement now would only hide the original error.
    writer.close()


__all__ = [
    "ANCHOR",
    "FIXTURE",
    "TABLES",
    "Catalogue",
    "DemoSizes",
    "Flavour",
    "SeedReport",
    "TenantReport",
    "TenantSpec",
    "count_rows",
    "demo_tenants",
    "format_report",
    "seed_demo",
    "tenant_scoped_models",
]
