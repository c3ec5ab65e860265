"""Every admin page opens, and the changelists stay cheap as tables grow."""

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.checks import Tags, run_checks
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from masterdata.models import MasterDataModel
from tenants.admin import TenantScopedAdmin
from tenants.models import IntegrationCredential, TenantScopedModel
from tests import factories
from tests.factories import FACTORIES

# The task queue's own admin (django-tasks-db) is that library's to test.
REGISTERED = sorted(
    (m for m in admin.site._registry if m._meta.app_label != "django_tasks_database"),
    key=lambda m: m._meta.label,
)
OUR_MODELS = [m for m in REGISTERED if m._meta.app_label in {"masterdata", "tenants"}]
AUTOCOMPLETE = [
    pytest.param(model, name, id=f"{model._meta.label}.{name}")
    for model in OUR_MODELS
    for name in admin.site._registry[model].autocomplete_fields
]


def model_id(model: type[models.Model]) -> str:
    return model._meta.label


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def admin_client(client: Client, db: None) -> Client:
    # pytest-django's own admin_client hashes a password for every test.
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def rows(db: None) -> dict[type[models.Model], models.Model]:
    return {model: FACTORIES[model]() for model in REGISTERED}


def test_admin_system_checks_pass() -> None:
    assert run_checks(tags=[Tags.admin]) == []


def test_every_model_is_registered() -> None:
    ours = [
        *apps.get_app_config("masterdata").get_models(),
        *apps.get_app_config("tenants").get_models(),
    ]
    missing = [model_id(m) for m in ours if m not in admin.site._registry]
    assert missing == []


@pytest.mark.parametrize("model", OUR_MODELS, ids=model_id)
def test_tenant_scoped_admin_filters_by_tenant(model: type[models.Model]) -> None:
    model_admin = admin.site._registry[model]
    if not issubclass(model, TenantScopedModel):
        assert issubclass(model, MasterDataModel) or model._meta.model_name == "tenant"
        return
    assert isinstance(model_admin, TenantScopedAdmin)
    assert model_admin.list_filter[0] == "tenant"
    assert "tenant" in model_admin.list_display
    assert "tenant" in model_admin.list_select_related
    assert "tenant" in model_admin.autocomplete_fields


@pytest.mark.parametrize("model", REGISTERED, ids=model_id)
def test_admin_pages_open(model: type[models.Model], admin_client: Client, rows: dict) -> None:
    obj = rows[model]
    for url in (
        admin_url(model, "changelist"),
        admin_url(model, "changelist") + "?q=x",
        admin_url(model, "add"),
        admin_url(model, "change", obj.pk),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
    listing = admin_client.get(admin_url(model, "changelist"))
    assert admin_url(model, "change", obj.pk) in listing.content.decode()


@pytest.mark.parametrize("model", REGISTERED, ids=model_id)
def test_changelist_queries_do_not_grow_with_rows(
    model: type[models.Model], admin_client: Client, db: None
) -> None:
    url = admin_url(model, "changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    FACTORIES[model]()
    one_row = queries()
    for _ in range(3):
        FACTORIES[model]()
    assert queries() == one_row


@pytest.mark.parametrize(("model", "field_name"), AUTOCOMPLETE)
def test_autocomplete_finds_rows(
    model: type[models.Model], field_name: str, admin_client: Client, db: None
) -> None:
    target = FACTORIES[model._meta.get_field(field_name).related_model]()
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": model._meta.app_label,
            "model_name": model._meta.model_name,
            "field_name": field_name,
            "term": "",
        },
    )
    assert response.status_code == 200
    assert str(target.pk) in {row["id"] for row in response.json()["results"]}


SECRET = "tk_live_9f8e7d6c5b4a3210"


@pytest.mark.django_db
def test_integration_secret_is_never_rendered(admin_client: Client) -> None:
    credential = factories.IntegrationCredentialFactory(secret=SECRET)
    for url in (
        admin_url(IntegrationCredential, "changelist"),
        admin_url(IntegrationCredential, "change", credential.pk),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert SECRET not in response.content.decode()


def credential_form(credential: IntegrationCredential, secret: str) -> dict[str, Any]:
    return {
        "tenant": str(credential.tenant_id),
        "provider": credential.provider,
        "name": credential.name,
        "endpoint_url": credential.endpoint_url,
        "username": credential.username,
        "secret": secret,
        "secret_needs_reentry": "on",
        "is_active": "on",
        "last_used_at_0": "",
        "last_used_at_1": "",
        "config": "{}",
    }


@pytest.mark.django_db
def test_empty_secret_field_keeps_the_stored_secret(admin_client: Client) -> None:
    credential = factories.IntegrationCredentialFactory(secret=SECRET)
    url = admin_url(IntegrationCredential, "change", credential.pk)
    response = admin_client.post(url, credential_form(credential, ""))
    assert response.status_code == 302, response.context["adminform"].form.errors
    credential.refresh_from_db()
    assert credential.secret == SECRET
    assert credential.secret_needs_reentry


@pytest.mark.django_db
def test_new_secret_replaces_the_stored_one(admin_client: Client) -> None:
    credential = factories.IntegrationCredentialFactory(secret=SECRET, secret_needs_reentry=True)
    url = admin_url(IntegrationCredential, "change", credential.pk)
    response = admin_client.post(url, credential_form(credential, "new-key"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    credential.refresh_from_db()
    assert credential.secret == "new-key"
    assert not credential.secret_needs_reentry
