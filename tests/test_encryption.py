"""Backups encrypted with age: by `export_tenant` to public keys or with a passphrase, decrypted
by `import_tenant`, and interchangeable with the real `age` command both ways. A wrong key, a
damaged file, an encrypted file given without a key and a key given with a plain file are each
refused with their reason, the database left as it was."""

import gzip
import io
import os
import pty
import subprocess
from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command

from backup.format.encryption import AGE_MAGIC
from tenants.models import MeterReading, Tenant

from .backup_support import as_plain, export_bytes, parse, snapshot

pytestmark = pytest.mark.django_db
PASSPHRASE = "correct horse battery staple"


def keypair(folder: Path, name: str = "key") -> tuple[Path, str]:
    """An identity file made by `age-keygen`, and its public key."""
    identity = folder / f"{name}.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return identity, public


@pytest.fixture
def key(tmp_path):
    return keypair(tmp_path)


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "passphrase.txt"
    path.write_text(PASSPHRASE + "\n")
    return path


def export(tenant, output: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("export_tenant", tenant.slug, "-o", str(output), *args, stdout=out)
    return out.getvalue()


def restore(path: Path, *args: str, slug: str = "copy") -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_tenant", str(path), f"--new-tenant={slug}", "--yes", *args, stdout=out, stderr=err
    )
    return out.getvalue()


def refused(path: Path, *args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        restore(path, *args)
    return caught.value


def tenant_data(document: bytes) -> dict:
    return parse(document)["tenant_data"]


def exported_readings(tenant) -> int:
    """The meter readings a backup of `tenant` holds (soft-deleted vehicles' ones left out)."""
    count = len(tenant_data(export_bytes(tenant))["meter_reading"])
    assert count
    return count


def test_exported_to_a_public_key_the_age_command_decrypts_it(tenant, key, tmp_path):
    identity, public = key
    target = tmp_path / "backup.json.age"
    assert "(encrypted with age)" in export(tenant, target, "--recipient", public)
    sealed = target.read_bytes()
    assert sealed.startswith(AGE_MAGIC) and b"tenant_data" not in sealed
    opened = subprocess.run(
        ["age", "-d", "-i", str(identity), str(target)], check=True, capture_output=True
    ).stdout
    assert as_plain(tenant_data(opened)) == tenant_data(export_bytes(tenant))


def test_several_recipients_each_open_it_and_gzip_goes_inside(tenant, tmp_path):
    first, first_public = keypair(tmp_path, "first")
    second, second_public = keypair(tmp_path, "second")
    target = tmp_path / "backup.json.gz.age"
    export(tenant, target, "--recipient", first_public, "--recipient", second_public)
    for identity in (first, second):
        opened = subprocess.run(
            ["age", "-d", "-i", str(identity), str(target)], check=True, capture_output=True
        ).stdout
        assert as_plain(tenant_data(gzip.decompress(opened))) == tenant_data(export_bytes(tenant))


@pytest.mark.parametrize("compress", [False, True], ids=["json", "gzip"])
def test_a_file_the_age_command_encrypted_imports(tenant, key, tmp_path, compress):
    identity, public = key
    plain = tmp_path / ("plain.json.gz" if compress else "plain.json")
    export(tenant, plain)
    sealed = tmp_path / "sealed.age"
    subprocess.run(["age", "-r", public, "-o", str(sealed), str(plain)], check=True)
    assert "Import into 'copy' done." in restore(sealed, "--identity", str(identity))
    copy = Tenant.objects.get(slug="copy")
    assert MeterReading.objects.filter(tenant=copy).count() == exported_readings(tenant)


def test_a_passphrase_round_trip_through_the_commands(tenant, passphrase_file, tmp_path):
    target = tmp_path / "backup.json.zst.age"
    export(tenant, target, "--passphrase-file", str(passphrase_file))
    assert target.read_bytes().startswith(AGE_MAGIC)
    restore(target, "--passphrase-file", str(passphrase_file))
    copy = Tenant.objects.get(slug="copy")
    assert MeterReading.objects.filter(tenant=copy).count() == exported_readings(tenant)


def _age_with_passphrase(args: list[str], passphrase: str) -> bytes:
    """Run `age` with a pseudo-terminal as its controlling terminal (`setsid --ctty`: age reads
    passphrases from the terminal only) and type the passphrase, twice when it asks to confirm
    it."""
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        ["setsid", "--ctty", "age", *args], stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    seen = b""
    typed = 0
    while True:
        try:
            chunk = os.read(main, 1024)
        except OSError:  # age closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        while seen.lower().count(b"passphrase") > typed:
            os.write(main, passphrase.encode() + b"\n")
            typed += 1
    os.close(main)
    assert process.wait(timeout=60) == 0, seen
    return seen


def test_a_passphrase_file_opens_with_the_age_command_and_back(tenant, passphrase_file, tmp_path):
    ours = tmp_path / "ours.json.age"
    export(tenant, ours, "--passphrase-file", str(passphrase_file))
    opened = tmp_path / "opened.json"
    _age_with_passphrase(["-d", "-o", str(opened), str(ours)], PASSPHRASE)
    assert as_plain(tenant_data(opened.read_bytes())) == tenant_data(export_bytes(tenant))
    theirs = tmp_path / "theirs.age"
    _age_with_passphrase(["-p", "-o", str(theirs), str(opened)], PASSPHRASE)
    restore(theirs, "--passphrase-file", str(passphrase_file))
    assert Tenant.objects.filter(slug="copy").exists()


# -- refused ------------------------------------------------------------------------------------


@pytest.fixture
def sealed(tenant, key, tmp_path):
    """An encrypted backup of `tenant`, and the identity it opens with."""
    identity, public = key
    target = tmp_path / "sealed.json.age"
    export(tenant, target, "--recipient", public)
    return target, identity


def _unchanged(check):
    before = snapshot(audit=False)
    error = check()
    assert snapshot(audit=False) == before
    return error


def test_an_encrypted_file_without_a_key_is_refused(sealed):
    path, _identity = sealed
    error = _unchanged(lambda: refused(path))
    assert error.returncode == 3
    assert "The file is encrypted (age): give the identity" in str(error)


def test_a_plain_file_with_a_key_is_refused(tenant, key, tmp_path):
    identity, _public = key
    plain = tmp_path / "plain.json"
    export(tenant, plain)
    error = _unchanged(lambda: refused(plain, "--identity", str(identity)))
    assert error.returncode == 3 and "The file is not encrypted" in str(error)


def test_the_wrong_identity_is_refused(sealed, tmp_path):
    path, _identity = sealed
    other, _ = keypair(tmp_path, "other")
    error = _unchanged(lambda: refused(path, "--identity", str(other)))
    assert error.returncode == 3
    assert "cannot be decrypted with the identities given" in str(error)


def test_the_wrong_passphrase_is_refused(tenant, passphrase_file, tmp_path):
    target = tmp_path / "backup.json.age"
    export(tenant, target, "--passphrase-file", str(passphrase_file))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    error = _unchanged(lambda: refused(target, "--passphrase-file", str(wrong)))
    assert error.returncode == 3 and "the passphrase is wrong" in str(error)


def test_a_passphrase_for_a_file_encrypted_to_keys_is_refused(sealed, passphrase_file):
    path, _identity = sealed
    error = _unchanged(lambda: refused(path, "--passphrase-file", str(passphrase_file)))
    assert "encrypted to age public keys, not with a passphrase" in str(error)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut-in-half"),
        pytest.param(lambda data: data[:-1], id="last-byte-missing"),
        pytest.param(
            lambda data: data[:-40] + bytes([data[-40] ^ 1]) + data[-39:], id="one-bit-changed"
        ),
    ],
)
def test_a_damaged_encrypted_file_is_refused(sealed, tmp_path, damage):
    path, identity = sealed
    damaged = tmp_path / "damaged.age"
    damaged.write_bytes(damage(path.read_bytes()))
    error = _unchanged(lambda: refused(damaged, "--identity", str(identity)))
    assert error.returncode == 3
    assert "The encrypted file is damaged: it was cut short or changed" in str(error)
    assert not Tenant.objects.filter(slug="copy").exists()


def test_a_damaged_file_is_refused_by_the_preview_too(sealed, tmp_path, tenant):
    path, identity = sealed
    damaged = tmp_path / "damaged.age"
    damaged.write_bytes(path.read_bytes()[:-1])
    before = snapshot(audit=False)
    with pytest.raises(CommandError, match="damaged"):
        call_command(
            "import_tenant",
            str(damaged),
            f"--tenant={tenant.slug}",
            "--mode=replace",
            "--preview",
            "--identity",
            str(identity),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert snapshot(audit=False) == before


def test_a_key_that_is_no_key_is_refused_before_anything_is_written(tenant, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(CommandError, match=r"Recipient 1 \('age1nope'\) is not an age public"):
        export(tenant, folder / "backup.json.age", "--recipient", "age1nope")
    assert list(folder.iterdir()) == []
    not_a_key = tmp_path / "identity.txt"
    not_a_key.write_text("# a comment\nAGE-SECRET-KEY-1NOTAKEY\n")
    plain = tmp_path / "plain.json"
    export(tenant, plain)
    error = _unchanged(lambda: refused(plain, "--identity", str(not_a_key)))
    assert error.returncode == 2 and "Identity 1 is not an age secret key" in str(error)
    assert "NOTAKEY" not in str(error)  # a secret key never goes into a message


def test_recipients_and_a_passphrase_at_once_are_refused(tenant, key, passphrase_file, tmp_path):
    _identity, public = key
    with pytest.raises(CommandError, match="not both"):
        export(
            tenant,
            tmp_path / "b.age",
            "--recipient",
            public,
            "--passphrase-file",
            str(passphrase_file),
        )


def test_an_encrypted_export_leaves_no_secret_in_clear(tenant, key, tmp_path):
    _identity, public = key
    target = tmp_path / "backup.json.age"
    export(tenant, target, "--recipient", public)
    sealed = target.read_bytes()
    document = export_bytes(tenant)
    some_value = orjson.loads(document)["tenant_data"]["vehicle"][0]["serial_number"].encode()
    assert some_value in document and some_value not in sealed


def test_a_passphrase_backup_above_the_limit_is_refused_both_ways(
    tenant, passphrase_file, tmp_path, settings
):
    target = tmp_path / "out" / "backup.json.age"
    target.parent.mkdir()
    export(tenant, target, "--passphrase-file", str(passphrase_file))
    settings.BACKUP_PASSPHRASE_MAX_BYTES = target.stat().st_size // 2
    error = _unchanged(lambda: refused(target, "--passphrase-file", str(passphrase_file)))
    assert "larger than BACKUP_PASSPHRASE_MAX_BYTES" in str(error)
    target.unlink()
    with pytest.raises(CommandError, match="encrypt it to recipients"):
        export(tenant, target, "--passphrase-file", str(passphrase_file))
    assert list(target.parent.iterdir()) == []  # no file, not even a partial one
