"""``GET /v2/images`` query parameters → a validated :class:`ListQuery` → one SQL select.

Every rule of Glance's list API is here: exact and ``in:``/``eq:`` filters on base columns,
``size_min``/``size_max``, ``gt:``… on timestamps, repeated ``tag``, ``visibility``,
``member_status``, ``os_hidden``, ``protected``, extra-property filters, sorting, ``limit`` and
``marker``. Pages are fetched by keyset on (sort keys…, id), so a page costs the same at any depth.

The query plan keeps the cost of a page independent of the number of images in the region:

- a property or tag filter that matches few images (at most ``DRIVE_LIMIT``) drives the query: its
  index on ``(name, value, image_id)`` yields the candidates, each is fetched by primary key and
  checked, and only those are sorted;
- otherwise what the caller may see is a UNION of index walks, one per kind of visibility (owner,
  public, community: ``(owner | visibility, created_at, id)``; shared with the caller: its member
  index), each walked in the page's order and stopped after ``limit`` rows; the remaining filters
  are checked on the rows walked (a property or tag by a primary-key probe).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from imagehop.db import images
from imagehop.identity.caller import Caller
from imagehop.images import store
from imagehop.images.errors import BadRequest

DEFAULT_LIMIT = 25
DRIVE_LIMIT = 1000  # a lookup matching at most this many images drives the query (see above)
MAX_LIMIT = 1000
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
NULLABLE_SORT_KEYS = frozenset({"name", "container_format", "disk_format", "size"})
IN_FILTERS = frozenset({"name", "id", "status", "container_format", "disk_format"})
EXACT_FILTERS = frozenset({"owner", "checksum", "os_hash_value", "os_hash_algo", "size", "virtual_size",
                           "min_ram", "min_disk"})  # fmt: skip
INTEGER_COLUMNS = frozenset({"size", "virtual_size", "min_ram", "min_disk"})
TIME_OPERATORS = ("gt", "gte", "eq", "neq", "lt", "lte")
VISIBILITY_FILTERS = ("public", "private", "shared", "community", "all")
MEMBER_STATUS_FILTERS = ("pending", "accepted", "rejected", "all")
PAGING_KEYS = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort"})

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_STRINGS = frozenset({"0", "f", "false", "off", "n", "no"})


@dataclass
class ListQuery:
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    visibility: str | None = None
    member_status: str = "accepted"
    os_hidden: bool | None = False
    conditions: list[sa.ColumnElement[bool]] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Lookup:
    """A property or tag filter, in its two forms: the ids it matches (an index walk that can drive
    the query), and a condition on ``images.id`` (a primary-key probe per row walked).

    ``name`` and ``value`` are strings, or bind parameters in a statement built once per shape (see
    :func:`prepared`); ``key`` is then the bind parameter of the value's indexed prefix."""

    kind: str  # "property" or "tag"
    name: Any
    value: Any
    key: Any = None

    @property
    def ids(self) -> sa.Select:
        if self.kind == "tag":
            return store.tag_ids(self.value)
        return store.property_ids(self.name, self.value, self.key)

    @property
    def exists(self) -> sa.ColumnElement[bool]:
        if self.kind == "tag":
            return store.tag_exists(self.value)
        return store.property_exists(self.name, self.value)


@dataclass(frozen=True)
class Branch:
    """One kind of visibility the caller may list: conditions on ``images`` and, for images shared
    with the caller, the member statuses to walk (``members`` is False for the other kinds)."""

    conditions: tuple[sa.ColumnElement[bool], ...]
    members: bool = False
    statuses: tuple[str, ...] | None = None


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE_STRINGS:
        return True
    if lowered in FALSE_STRINGS:
        return False
    raise BadRequest(f"Invalid value '{value}' for parameter '{name}'; expected a boolean (true or false).")


def parse_time(value: str) -> datetime:
    """An ISO 8601 time as naive UTC; 400 if it is not one, or is outside years 1-9999 once in UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        moment + timedelta(seconds=1)  # the comparisons below round up to the next second
    except ValueError:
        raise BadRequest(f"Invalid date format '{value}': use ISO 8601, e.g. 2016-04-18T21:38:54Z.") from None
    except OverflowError:
        raise BadRequest(f"Invalid date '{value}': it must be between years 1 and 9999 (UTC).") from None
    return moment


def _is_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def time_condition(column: sa.ColumnElement[Any], operator: str, moment: datetime) -> sa.ColumnElement[bool]:
    """Compare as clients see the column: to the second (stored values keep microseconds)."""
    floor = moment.replace(microsecond=0)
    ceil = floor if moment == floor else floor + timedelta(seconds=1)
    next_second = floor + timedelta(seconds=1)
    if operator == "lte":
        return column < next_second
    if operator == "lt":
        return column < ceil
    if operator == "gte":
        return column >= ceil
    if operator == "gt":
        return column >= next_second
    same = sa.and_(column >= floor, column < next_second) if moment == floor else sa.false()
    return same if operator == "eq" else sa.not_(same)


def split_operator(name: str, value: str) -> tuple[str, str]:
    """``in:a,b`` → (``in``, ``a,b``); a value without an operator is ``eq``."""
    if ":" not in value:
        return "eq", value
    operator, _, rest = value.partition(":")
    if operator not in ("in", "eq") and name not in ("created_at", "updated_at"):
        raise BadRequest(f"Unable to filter by unknown operator '{operator}'.")
    return operator, rest


def split_list(value: str) -> list[str]:
    """``a,"b, c"`` → [``a``, ``b, c``] (names containing commas are quoted)."""
    try:
        return next(csv.reader([value], skipinitialspace=True))
    except (csv.Error, StopIteration):
        raise BadRequest(f"Invalid list of values: {value!r}.") from None


def parse(params: list[tuple[str, str]]) -> ListQuery:
    """Validate every parameter; any error is a 400 and nothing is queried."""
    query = ListQuery()
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    sort_param: str | None = None
    tags: list[str] = []
    for name, value in params:
        if name == "limit":
            query.limit = _limit(value)
        elif name == "marker":
            query.marker = value
        elif name == "sort_key":
            sort_keys.append(value)
        elif name == "sort_dir":
            sort_dirs.append(value)
        elif name == "sort":
            sort_param = value if sort_param is None else f"{sort_param},{value}"
        elif name == "tag":
            tags.append(value)
        elif name == "visibility":
            if value not in VISIBILITY_FILTERS:
                raise BadRequest(f"Invalid visibility value: {value}")
            query.visibility = value
        elif name == "member_status":
            if value not in MEMBER_STATUS_FILTERS:
                raise BadRequest(f"Invalid status value: {value}")
            query.member_status = value
        elif name == "os_hidden":
            query.os_hidden = parse_bool(name, value)
        elif name == "protected":
            query.conditions.append(images.c.protected == parse_bool(name, value))
        elif name == "changes-since":
            raise BadRequest("The parameter 'changes-since' is no longer available on v2; use 'updated_at=gte:<time>'.")
        elif name in ("created_at", "updated_at"):
            operator, rest = value.partition(":")[0], value.partition(":")[2]
            if operator not in TIME_OPERATORS and _is_time(value):
                operator, rest = "eq", value  # Glance's split_filter_op: a bare ISO 8601 time means eq
            if operator not in TIME_OPERATORS:
                raise BadRequest(
                    f"Unable to filter on '{name}' with '{value}': use gt|gte|eq|neq|lt|lte:<ISO 8601 time>."
                )
            query.conditions.append(time_condition(images.c[name], operator, parse_time(rest)))
        elif name in ("size_min", "size_max", "virtual_size_min", "virtual_size_max"):
            column = images.c[name.rsplit("_", 1)[0]]
            bound = _integer(name, value)
            query.conditions.append(column >= bound if name.endswith("_min") else column <= bound)
        elif name in IN_FILTERS:
            operator, rest = split_operator(name, value)
            if operator == "in":
                query.conditions.append(images.c[name].in_(split_list(rest)))
            else:
                query.conditions.append(images.c[name] == rest)
        elif name in EXACT_FILTERS:
            column = images.c[name]
            query.conditions.append(column == (_integer(name, value) if name in INTEGER_COLUMNS else value))
        else:
            # Any other key is an exact match on an extra property (?com.mycompany.image-of=db-slave-3).
            query.lookups.append(Lookup("property", name, value))
    for tag in dict.fromkeys(tags):
        query.lookups.append(Lookup("tag", "", tag))
    query.sort = _sorting(sort_keys, sort_dirs, sort_param)
    return query


def _limit(value: str) -> int:
    text = value.strip()
    if not text.lstrip("-").isascii() or not text.lstrip("-").isdigit() or len(text) > 20:
        raise BadRequest(f"limit param must be an integer, got {value!r}")
    limit = int(text)
    if limit < 0:
        raise BadRequest("limit param must be positive")
    return min(limit, MAX_LIMIT)


def _integer(name: str, value: str) -> int:
    """A whole number that fits the column it filters (64-bit sizes, 32-bit min_ram/min_disk)."""
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        raise BadRequest(f"Invalid value '{value}' for parameter '{name}'; expected an integer.")
    number = int(text)
    limit = INT32_MAX if name in ("min_ram", "min_disk") else INT64_MAX
    if not -limit - 1 <= number <= limit:
        raise BadRequest(f"Invalid value '{value}' for parameter '{name}': out of range (at most {limit}).")
    return number


def _sorting(keys: list[str], dirs: list[str], sort: str | None) -> list[tuple[str, str]]:
    if sort is not None and (keys or dirs):
        raise BadRequest("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.")
    pairs: list[tuple[str, str]] = []
    if sort is not None:
        for item in sort.split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        if dirs and len(dirs) not in (1, len(keys)):
            raise BadRequest("The number of sort_dir values must be one or match the number of sort_key values.")
        if dirs and not keys:
            keys = ["created_at"]
        for index, key in enumerate(keys):
            pairs.append((key, dirs[index] if len(dirs) > 1 else (dirs[0] if dirs else "desc")))
        if not keys:
            pairs = [("created_at", dirs[0] if dirs else "desc")]
    seen: set[str] = set()
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
        seen.add(key)
    # A key given twice sorts by its first mention (Glance takes it too).
    pairs = [pair for index, pair in enumerate(pairs) if pair[0] not in {k for k, _ in pairs[:index]}]
    # Tie-breakers, as Glance appends them: the order is total, so keyset paging is exact.
    last = pairs[-1][1] if pairs else "desc"
    for key in ("created_at", "id"):
        if key not in seen:
            pairs.append((key, last))
    return pairs


def branches(caller: Caller, query: ListQuery) -> list[Branch]:
    """What a caller may list, per ``visibility`` and ``member_status``: one branch per index walk."""
    vis, owner = images.c.visibility, images.c.owner
    if caller.is_admin:
        if query.visibility is None:
            return [Branch((sa.or_(vis != "community", owner == caller.tenant_id),))]
        return [Branch(() if query.visibility == "all" else (vis == query.visibility,))]
    statuses = None if query.member_status == "all" else (query.member_status,)
    own = owner == caller.tenant_id
    shared = Branch((store.shared_visibility(),), members=True, statuses=statuses)
    if query.visibility is None:
        return [Branch((own,)), Branch((vis == "public",)), shared]
    if query.visibility == "all":
        return [Branch((own,)), Branch((vis == "public",)), Branch((vis == "community",)), shared]
    if query.visibility in ("public", "community"):
        return [Branch((vis == query.visibility,))]
    if query.visibility == "private":
        return [Branch((own, vis == "private"))]
    return [Branch((own, vis == "shared")), shared]  # visibility=shared


def as_condition(caller: Caller, branch: Branch) -> sa.ColumnElement[bool]:
    """A branch as a condition on one ``images`` row (for a query driven by a lookup)."""
    conditions = list(branch.conditions)
    if branch.members:
        statuses = None if branch.statuses is None else list(branch.statuses)
        conditions.append(store.member_exists(caller.tenant_id, statuses))
    return sa.and_(*conditions)


def ordering(sort: list[tuple[str, str]], columns: sa.ColumnCollection) -> list[sa.ColumnElement[Any]]:
    order = []
    for key, direction in sort:
        column = columns[key]
        term = column.asc() if direction == "asc" else column.desc()
        if key in NULLABLE_SORT_KEYS:  # the same null order on SQLite and PostgreSQL
            term = term.nulls_first() if direction == "asc" else term.nulls_last()
        order.append(term)
    return order


def select(caller: Caller, query: ListQuery, marker: dict[str, Any] | None, driver: Lookup | None = None) -> sa.Select:
    """The page's query. ``driver``, one of ``query.lookups``, is walked first (see the module's doc)."""
    common = list(query.conditions)
    common += [lookup.exists for lookup in query.lookups if lookup is not driver]
    if query.os_hidden is not None:
        common.append(images.c.os_hidden == query.os_hidden)
    if marker is not None:
        common.append(after(query.sort, marker))
    order = ordering(query.sort, images.c)
    kinds = branches(caller, query)
    if driver is not None:
        matched = driver.ids.subquery("matched")
        visible = [as_condition(caller, b) for b in kinds]
        return (
            sa.select(images)
            .select_from(matched.join(images, images.c.id == matched.c.image_id))
            .where(*common, sa.or_(*visible) if len(visible) > 1 else visible[0])
            .order_by(*order)
            .limit(query.limit)
        )
    walks = []
    for branch in kinds:
        source: sa.FromClause = images
        where = [*common, *branch.conditions]
        if branch.members:
            source, on_members = store.shared_with(caller.tenant_id, branch.statuses and list(branch.statuses))
            where += on_members
        walks.append(sa.select(images).select_from(source).where(*where).order_by(*order).limit(query.limit))
    if len(walks) == 1:
        return walks[0]
    union = sa.union(*[sa.select(walk.subquery()) for walk in walks]).subquery("visible")
    return sa.select(union).order_by(*ordering(query.sort, union.c)).limit(query.limit)


# Statements built once per shape of query, run with the caller's and the lookups' values as bind
# parameters: building a page's select costs more than running it (SQLAlchemy's construction and
# coercion of every clause); the compiled form is then found in SQLAlchemy's cache at once.
_PREPARED: dict[tuple[Any, ...], sa.Select] = {}
_PREPARED_MAX = 512
_COUNTS: dict[str, sa.Select] = {}


def prepared(caller: Caller, query: ListQuery, driver: Lookup | None) -> tuple[sa.Select, dict[str, Any]] | None:
    """:func:`select` for a first page without column filters, from the cache; None for other queries.

    The statement is the one :func:`select` builds, with the tenant and every lookup's name and
    value as bind parameters (SQLAlchemy binds those values in either case: the SQL is the same).
    """
    if query.conditions:
        return None
    driver_index = None if driver is None else next(i for i, lookup in enumerate(query.lookups) if lookup is driver)
    shape = (caller.is_admin, query.visibility, query.member_status, query.os_hidden, tuple(query.sort), query.limit,
             tuple(lookup.kind for lookup in query.lookups), driver_index)  # fmt: skip
    statement = _PREPARED.get(shape)
    if statement is None:
        lookups = [
            Lookup(lookup.kind, sa.bindparam(f"name_{i}"), sa.bindparam(f"value_{i}"), sa.bindparam(f"key_{i}"))
            for i, lookup in enumerate(query.lookups)
        ]
        template = ListQuery(limit=query.limit, sort=query.sort, visibility=query.visibility,
                             member_status=query.member_status, os_hidden=query.os_hidden, lookups=lookups)  # fmt: skip
        who = Caller("", "", sa.bindparam("tenant"), frozenset({"admin"} if caller.is_admin else ()), 0.0)  # type: ignore[arg-type]
        statement = select(who, template, None, None if driver_index is None else lookups[driver_index])
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        _PREPARED[shape] = statement
    params: dict[str, Any] = {"tenant": caller.tenant_id}
    for i, lookup in enumerate(query.lookups):
        params.update(_lookup_params(i, lookup))
    return statement, params


def _lookup_params(i: int, lookup: Lookup) -> dict[str, Any]:
    if lookup.kind == "tag":
        return {f"value_{i}": lookup.value}
    return {f"name_{i}": lookup.name, f"value_{i}": lookup.value, f"key_{i}": lookup.value[: store.PROPERTY_PREFIX]}


def count_upto(conn: Any, lookup: Lookup, cap: int) -> int:
    """How many images ``lookup`` matches, counting no further than ``cap`` (so it costs at most ``cap``)."""
    statement = _COUNTS.get(lookup.kind)
    if statement is None:
        template = Lookup(lookup.kind, sa.bindparam("name_0"), sa.bindparam("value_0"), sa.bindparam("key_0"))
        ids = template.ids.limit(sa.bindparam("cap", type_=sa.Integer)).subquery()
        statement = _COUNTS[lookup.kind] = sa.select(sa.func.count()).select_from(ids)
    return conn.execute(statement, {**_lookup_params(0, lookup), "cap": cap}).scalar_one()


def after(sort: list[tuple[str, str]], marker: dict[str, Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after ``marker`` in the order ``sort`` (nulls first ascending, last descending).

    The first key's bound is also stated alone, as a range both databases start an index walk at.
    """
    alternatives = []
    equal_so_far: list[sa.ColumnElement[bool]] = []
    for key, direction in sort:
        column = images.c[key]
        value = marker[key]
        if value is None:
            beyond = column.is_not(None) if direction == "asc" else sa.false()
            same = column.is_(None)
        else:
            beyond = column > value if direction == "asc" else column < value
            if key in NULLABLE_SORT_KEYS and direction == "desc":
                beyond = sa.or_(beyond, column.is_(None))
            same = column == value
        alternatives.append(sa.and_(*equal_so_far, beyond))
        equal_so_far.append(same)
    key, direction = sort[0]
    first, value = images.c[key], marker[key]
    if value is None or (key in NULLABLE_SORT_KEYS and direction == "desc"):
        return sa.or_(*alternatives)
    return sa.and_(first >= value if direction == "asc" else first <= value, sa.or_(*alternatives))
