"""The ways an import is carried out, and the one order in which they are tried.

A good file is imported the fastest way that fits; a file with anything wrong ends in the full
check, whose problems are exactly the ones a preview lists. Every attempt but the last trusts the
file in some way: when it finds anything wrong it raises `Retry`, everything it did is rolled
back, and the next attempt runs.
"""

from enum import Enum

from backup.db.dialect import dialect
from backup.registry import Registry
from backup.restore.options import Mode, straight
from backup.restore.planner import unique_in_database


class Retry(Exception):
    """The attempt found something wrong with the file: roll it back and try the next."""


class Attempt(Enum):
    # Straight into the tenant tables, checked as the rows are written (`direct_load`): an
    # applied replace or new tenant, from a file that can be read twice (the next attempt reads
    # it again).
    DIRECT = "direct"
    # Through staging tables, leaving to the tables' unique constraints what they check on
    # write anyway (an id twice, another tenant's id, a natural key twice): an applied replace.
    # The next attempt plans the same staging tables again, from a savepoint.
    CONSTRAINTS = "constraints"
    # Through staging tables, every check made: the last attempt, and a preview's only one.
    CHECKED = "checked"


def applies(reg: Registry, mode: Mode, apply: bool) -> bool:
    """Whether an import may load straight into the tenant tables (`Attempt.DIRECT`): an
    applied replace or new tenant with the fast paths on. A staged table is planned as in any
    import, so it may neither refer to a table loaded straight nor be referred to by one; and a
    table loaded straight needs a natural key that its unique constraint enforces as the staging
    path's check does (no condition, no nullable column)."""
    if not (apply and mode in (Mode.REPLACE, Mode.NEW_TENANT)):
        return False
    if not dialect().loads_directly:
        return False
    for spec in reg.tenant_tables:
        if straight(mode, spec) and not unique_in_database(spec):
            return False
        for f in spec.fields_of_kind("tenant_fk"):
            if straight(mode, spec) != straight(mode, reg.table(f.target)):
                return False
    return True


def attempts(reg: Registry, mode: Mode, *, apply: bool, rewindable: bool) -> list[Attempt]:
    """The attempts, in order, for an import (`apply`) or a preview of a file that can be read
    again (`rewindable`) or not. A file that failed the direct load is checked in full at
    once: trusting the constraints would most likely fail again."""
    if apply and rewindable and applies(reg, mode, apply):
        return [Attempt.DIRECT, Attempt.CHECKED]
    if apply and mode == Mode.REPLACE:
        return [Attempt.CONSTRAINTS, Attempt.CHECKED]
    return [Attempt.CHECKED]


def passes(order: list[Attempt]) -> list[list[Attempt]]:
    """The order in passes over the file: the direct load reads it alone; the staged attempts
    share one reading, each planning its staging tables anew."""
    result: list[list[Attempt]] = []
    for attempt in order:
        if attempt is Attempt.DIRECT or not result or result[-1] == [Attempt.DIRECT]:
            result.append([attempt])
        else:
            result[-1].append(attempt)
    return result
