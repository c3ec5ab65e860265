"""Every broken backup of the corpus gets its own error and exit code, and changes nothing."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.models import AuditLog, MeterReading, Tenant

from .backup_support import snapshot
from .broken_backups import CASES, CORPUS

pytestmark = pytest.mark.django_db


def import_command(path, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_tenant", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_backup_is_refused_with_its_error(corpus_tenant, case):
    before = snapshot(audit=False)
    targets = ["--mode=merge", "--mode=replace"]
    if case.as_new_tenant:
        targets.append("--new-tenant=corpus-copy")
    for target in targets:
        err = io.StringIO()
        where = [] if target.startswith("--new-tenant") else ["--tenant=corpus"]
        with pytest.raises(CommandError) as caught:
            call_command(
                "import_tenant",
                str(CORPUS / case.name),
                *where,
                target,
                "--yes",
                stdout=io.StringIO(),
                stderr=err,
            )
        assert caught.value.returncode == case.exit_code, str(caught.value)
        assert case.message in str(caught.value) + err.getvalue()
        assert "Traceback" not in err.getvalue()
    assert snapshot(audit=False) == before
    failed = AuditLog.objects.filter(tenant=corpus_tenant, details__outcome="failed")
    # One per attempt into the tenant, whatever the error (a new tenant that failed is gone).
    assert failed.count() == 2


def test_the_valid_file_of_the_corpus_imports(corpus_tenant):
    out, _err = import_command(CORPUS / "valid.json", "--tenant=corpus", "--mode=replace", "--yes")
    assert "Import into 'corpus' done." in out
    assert MeterReading.objects.filter(tenant=corpus_tenant).count() == 2


def test_preview_prints_the_table_and_writes_nothing(corpus_tenant):
    before = snapshot(audit=False)
    out, _err = import_command(
        CORPUS / "valid.json", "--tenant=corpus", "--mode=replace", "--preview"
    )
    assert "in_file" in out and "meter_reading" in out
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert total.split()[1:] == ["4", "4", "0", "0", "4"]
    assert snapshot(audit=False) == before


def test_without_terminal_and_without_yes_it_refuses(corpus_tenant):
    before = snapshot(audit=False)
    with pytest.raises(CommandError, match="run with --yes") as caught:
        import_command(CORPUS / "valid.json", "--tenant=corpus", "--mode=replace")
    assert caught.value.returncode == 5
    assert snapshot(audit=False) == before


def test_restore_as_new_tenant_from_the_command(corpus_tenant):
    out, _err = import_command(CORPUS / "valid.json", "--new-tenant=corpus-copy", "--yes")
    copy = Tenant.objects.get(slug="corpus-copy")
    assert copy.name == "Corpus Quarry"
    assert MeterReading.objects.filter(tenant=copy).count() == 2
    assert "corpus-copy" in out
