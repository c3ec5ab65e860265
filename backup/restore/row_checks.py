"""What turns each row of a backup file into a staging tuple: validated, decoded, references to
master data and users looked up, every problem logged with the row's label.

It runs once for every row of the file (millions of them for a large tenant), so it is built
once per table as the source of one function (`row_stager`): one statement block per field, its
checks decided when the function is built, the row's values kept in local variables, and a row's
label only made when it has a problem. The loop over the fields that it replaces decided the
same things again for every value, which made every row of every table slower.
"""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections

from backup.db.dialect import Preparation, dialect
from backup.format.values import decoder
from backup.registry import FieldSpec, TableSpec
from backup.restore.master_data import MasterData
from backup.restore.options import Mode, replaced
from backup.restore.report import ProblemLog, row_label
from backup.restore.staging import CREATE

Stager = Callable[[int, Any], tuple]


class Users:
    """Users named by email in a backup, looked up once each, among the members of `tenant_id`
    (None: among every account). Either way, an email nobody here may be named by is answered
    alike, whether or not it has an account elsewhere: an import must not reveal that."""

    def __init__(self, tenant_id: Any = None) -> None:
        self.ids: dict[str, Any] = {}
        self.model = get_user_model()
        self.accounts = self.model.objects.all()
        if tenant_id is not None:
            self.accounts = self.accounts.filter(memberships__tenant_id=tenant_id)
        self.where = "here" if tenant_id is None else "among this tenant's members"

    def get(self, email: str) -> Any:
        if email not in self.ids:
            found = list(self.accounts.filter(email__iexact=email).values_list("pk", flat=True)[:2])
            self.ids[email] = found[0] if len(found) == 1 else None
        return self.ids[email]


class Label:
    """A row's label for problems ("row 12 (serial_number='X')"), built only when needed."""

    __slots__ = ("key", "position", "raw")

    def __init__(self, position: int, raw: dict[str, Any], key: tuple[str, ...]) -> None:
        self.position, self.raw, self.key = position, raw, key

    def __str__(self) -> str:
        return row_label(self.position, {k: self.raw[k] for k in self.key if k in self.raw})


_MISSING = object()

# A reference looked up for a row: (value, position, row) -> id, or None when there is none.
Lookup = Callable[[Any, int, dict[str, Any]], Any]


def _master_ref(masters: MasterData, problems: ProblemLog, spec: TableSpec, f: FieldSpec) -> Lookup:
    local = masters.local[f.target]

    def lookup(file_id: Any, position: int, raw: dict[str, Any]) -> Any:
        if file_id not in local:
            label = str(Label(position, raw, spec.natural_key))
            message = f"refers to {f.target} {file_id}, which is not in master_data"
            problems.add(spec.name, label, f.name, message)
            return None
        return local[file_id]  # None when missing: already reported with the master data

    return lookup


def _user_ref(users: Users, problems: ProblemLog, spec: TableSpec, f: FieldSpec) -> Lookup:
    def lookup(email: str, position: int, raw: dict[str, Any]) -> Any:
        found = users.get(email)
        if found is None and not f.null:
            label = str(Label(position, raw, spec.natural_key))
            message = f"no user with email {email!r} {users.where}"
            problems.add(spec.name, label, f.name, message)
        return found

    return lookup


def _problem(field: str, message: str, indent: str) -> list[str]:
    """Statements logging a problem of the row (`message` is an expression) and marking it bad."""
    return [
        f"{indent}add(table, str(Label(position, raw, key)), {field}, {message})",
        f"{indent}bad = True",
    ]


def _field_block(
    i: int, f: FieldSpec, *, lookup: bool, prep: Preparation | None, fixed: bool = False
) -> list[str]:
    """The statements that leave field number `i` of a row, checked, in the local `v{i}`;
    `fixed`: the import's own value (`fixed{i}`), whatever the file says."""
    v, name = f"v{i}", repr(f.name)
    if fixed:
        lines = [f"{v} = fixed{i}"]
        return lines + ([f"if {v} is not None:", f"    {v} = prep{i}({v})"] if prep else [])
    lines = [f"{v} = get({name}, _MISSING)", f"if {v} is _MISSING:"]
    if f.required:
        lines += _problem(name, "'required field missing'", "    ")
    lines += [f"    {v} = default{i}", f"elif {v} is None:"]
    lines += ["    pass"] if f.null else _problem(name, "'must not be null'", "    ")
    lines += ["else:", "    try:", f"        {v} = decode{i}({v})", "    except ValueError as exc:"]
    lines += [*_problem(name, "str(exc)", "        "), f"        {v} = None"]
    if lookup:
        lines += ["    else:", f"        {v} = lookup{i}({v}, position, raw)"]
        if not f.null:
            lines += [f"        if {v} is None:", "            bad = True"]
    if prep is not None:
        text_as_is = f" and type({v}) is not str" if prep.text_as_is else ""
        lines += [f"if {v} is not None{text_as_is}:", f"    {v} = prep{i}({v})"]
    return lines


def _flag_blocks(spec: TableSpec) -> list[str]:
    """The statements that leave each secret's "was set" flag of a row in `flag{j}`."""
    body = []
    for j, secret in enumerate(spec.secrets):
        flag = f"flag{j}"
        body += [
            f"{flag} = get({secret.present_field!r}, False)",
            f"if type({flag}) is not bool:",
            *_problem(repr(secret.present_field), "'expected true or false'", "    "),
            f"    {flag} = False",
        ]
    return body


def _front(mode: Mode, spec: TableSpec) -> list[str]:
    """What the staged tuple has before the row's values. What is known before any planning is
    written with the row, not updated later: in a new tenant the staging table gives each row
    its fresh id itself (`StagingTable`); a replace creates every row under its own id; a merge
    targets the row's own id until matching says otherwise."""
    if mode == Mode.NEW_TENANT:
        return ["position", "bad", "CREATE"]
    if replaced(mode, spec):
        return ["position", "bad", "v0", "CREATE"]
    return ["position", "bad", "v0", "None"]


def row_stager(
    spec: TableSpec,
    mode: Mode,
    masters: MasterData,
    users: Users,
    problems: ProblemLog,
    fixed: dict[str, Any] | None = None,
) -> Stager:
    """A function turning a file row (position, value) into the staging table's tuple, logging
    what is wrong: (position, bad, [target, action,] *values, *secret flags). `fixed`: values
    by field name that the import sets itself (its stamp), whatever the file says."""
    fixed = fixed or {}
    db = dialect()
    # The connection itself, not the proxy, which costs a look-up on every use (per value).
    conn = connections[DEFAULT_DB_ALIAS]
    table = spec.name
    names: dict[str, Any] = {
        "_MISSING": _MISSING,
        "Label": Label,
        "row_label": row_label,
        "add": problems.add,
        "table": table,
        "key": spec.natural_key,
        "known": frozenset(spec.file_fields()),
        "CREATE": CREATE,
    }
    body: list[str] = [
        "if type(raw) is not dict:",
        "    add(table, row_label(position), '', 'a row must be a JSON object')",
        "    return (position, True, *unknown)",
        "get = raw.get",
        "bad = False",
        "if not known.issuperset(raw):",
        "    for name in sorted(raw.keys() - known):",
        *_problem("name", "'unknown field'", "        "),
    ]
    for i, f in enumerate(spec.fields):
        names[f"default{i}"] = None if f.required else f.model_field.get_default()
        names[f"decode{i}"] = db.text_decoder(f) or decoder(f)
        lookup = None
        if f.kind == "master_fk":
            lookup = names[f"lookup{i}"] = _master_ref(masters, problems, spec, f)
        elif f.kind == "user_fk":
            lookup = names[f"lookup{i}"] = _user_ref(users, problems, spec, f)
        prep = db.preparation(f.type, f.model_field, conn)
        if prep is not None:
            names[f"prep{i}"] = prep.call
        if f.name in fixed:
            names[f"fixed{i}"] = fixed[f.name]
        body += _field_block(i, f, lookup=lookup is not None, prep=prep, fixed=f.name in fixed)
    values = [f"v{i}" for i in range(len(spec.fields))]
    flags = [f"flag{j}" for j in range(len(spec.secrets))]
    body += _flag_blocks(spec)
    front = _front(mode, spec)
    names["unknown"] = (None,) * (len(front) - 2 + len(values) + len(flags))
    body.append(f"return ({', '.join([*front, *values, *flags])},)")
    source = "def stage(position, raw):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, f"<stager of {table}>", "exec"), names)
    return names["stage"]
