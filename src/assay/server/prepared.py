"""Queries compiled once and run again with other values, for the few queries every result runs.

Building a queryset with joins and JSON expressions and compiling it to SQL costs Django about a
millisecond, several times what the database takes to run it. The standings run the same three
queries for every result written, so they compile each once (per phase-split where the rules shape
it) and run it with the submission's, team's or phase's id; the queue's claim, once per kind of
worker, run with the queue's name and the time. The rows go through the same converters Django
applies (a SQLite date stays a datetime), so they equal what the queryset returns, and
:meth:`Prepared.instances` makes model instances of them as iterating the queryset would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django.db.backends.sqlite3.operations import DatabaseOperations as SQLiteOperations
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet, signals
from django.db.models.base import ModelState
from django.db.models.fields.files import FileDescriptor
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import get_related_populators
from django.db.models.query_utils import DeferredAttribute

from assay.server.sqlite_backend.base import QueuedCursor, execute_raw

# SQL in Django's "format" style (%s) -> SQLite's "qmark" style (?), rewritten once per statement text.
_QMARK: dict[str, str] = {}
_QMARK_KEPT = 1024  # statements; past that the cache starts over (this module's callers build a few dozen)
_SQLITE_CURSORS = (SQLiteCursorWrapper, QueuedCursor)  # Django's, and the embedded default's (writers queued)


def execute(cursor: CursorWrapper, sql: str, params: Sequence[Any]) -> None:
    """``cursor.execute(sql, params)``; on SQLite, when nothing records or wraps statements, without Django's
    rewrite of every statement's ``%s`` into ``?`` (a regular expression over the whole SQL, per statement: a
    tenth of the embedded worker's CPU went there). The rewrite is Django's own, done once per statement text;
    the statement runs as Django runs it (a broken transaction refused, errors as Django's). Where statements
    are recorded (``DEBUG``, ``CaptureQueriesContext``) or wrapped (``execute_wrapper``), Django runs it as ever,
    so those see every statement."""
    db = cursor.db
    raw = cursor.cursor
    if type(cursor) is not CursorWrapper or type(raw) not in _SQLITE_CURSORS or db.execute_wrappers:
        cursor.execute(sql, params)
        return
    qmark = _qmark(raw, sql)
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        execute_raw(raw, qmark, params)


def _qmark(raw: SQLiteCursorWrapper, sql: str) -> str:
    qmark = _QMARK.get(sql)
    if qmark is None:
        if len(_QMARK) >= _QMARK_KEPT:
            _QMARK.clear()
        qmark = _QMARK[sql] = raw.convert_query(sql)
    return qmark


def _kept_cursor(connection) -> SQLiteCursorWrapper | None:
    """The SQLite cursor this connection object keeps for :func:`fetch` and :func:`write`, or None where a
    statement must take Django's path: not SQLite, not connected yet, statements recorded or wrapped, or the
    connection object shared between threads (one cursor must not serve two threads)."""
    raw_connection = connection.connection
    if (
        connection.vendor != "sqlite"
        or raw_connection is None
        or connection.execute_wrappers
        or connection.queries_logged
        or connection.allow_thread_sharing
    ):
        return None
    kept = getattr(connection, "_prepared_cursor", None)  # (on the connection object, not a ConnectionProxy)
    if kept is None or kept[0] is not raw_connection:  # a new connection (the old one closed): a new cursor
        kept = connection._prepared_cursor = (raw_connection, raw_connection.cursor(factory=SQLiteCursorWrapper))
    return kept[1]


def fetch(connection, sql: str, params: Sequence[Any]) -> list[tuple]:
    """The rows of ``sql`` run with ``params`` on ``connection`` (a Django connection object), as
    ``with connection.cursor() as c: c.execute(sql, params); c.fetchall()`` gives them; on SQLite, where
    :func:`execute` may skip the rewrite, on a cursor the connection keeps, not a new cursor and its Django
    wrapper per statement (half the cost of running a small statement, every statement of a claim and a result)."""
    raw = _kept_cursor(connection)
    if raw is None:
        with connection.cursor() as cursor:
            execute(cursor, sql, params)
            return cursor.fetchall()
    qmark = _qmark(raw, sql)
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        execute_raw(raw, qmark, params)
        return raw.fetchall()


def write(connection, sql: str, params: Sequence[Any]) -> int:
    """:func:`fetch` for a statement that returns no rows: the number of rows it changed."""
    raw = _kept_cursor(connection)
    if raw is None:
        with connection.cursor() as cursor:
            execute(cursor, sql, params)
            return cursor.rowcount
    qmark = _qmark(raw, sql)
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        execute_raw(raw, qmark, params)
        return raw.rowcount


# Descriptors whose __set__ on a new instance only stores the value in its __dict__ (or that have none).
_PLAIN = (DeferredAttribute, ForeignKeyDeferredAttribute, FileDescriptor)


def _maker(model: type[Model], names: list[str]) -> Callable[[str, Sequence[Any]], Model] | None:
    """``model.from_db(db, names, values)`` for a row of every concrete field, as a function that sets the
    instance's ``__dict__`` at once; None where that would not be the same instance (a model with its own
    ``__init__`` or ``from_db``, a field whose descriptor does more than store, a deferred field). Why: the
    claim builds five instances per job and Django's generic ``__init__`` (signals, a ``setattr`` per field)
    was most of their cost. ``pre_init``/``post_init`` receivers are looked for on every use (:meth:`instances`)."""
    fields = model._meta.concrete_fields
    if model.__init__ is not Model.__init__ or model.from_db.__func__ is not Model.from_db.__func__:
        return None
    if names != [f.attname for f in fields]:
        return None
    for name in names:
        descriptor = next((k.__dict__[name] for k in model.__mro__ if name in k.__dict__), None)
        if type(descriptor) not in _PLAIN:
            return None

    def make(db: str, values: Sequence[Any]) -> Model:
        obj = object.__new__(model)
        state = ModelState()
        state.adding = False
        state.db = db
        attrs = obj.__dict__
        attrs["_state"] = state
        attrs.update(zip(names, values, strict=True))
        return obj

    return make


def _quiet(model: type[Model]) -> bool:
    """No receiver of ``model``'s ``pre_init`` or ``post_init`` (``Model.__init__`` would send them)."""
    return not (signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model))


class _Related:
    """One ``select_related`` model of a :class:`Prepared` (Django's ``RelatedPopulator``, built once per query,
    not once per run), its instances made by :func:`_maker` where that is the same."""

    def __init__(self, populator) -> None:
        self.populator = populator
        self.make = None if populator.reorder_for_init else _maker(populator.model_cls, populator.init_list)
        self.children = [_Related(p) for p in populator.related_populators]

    def models(self) -> list[type[Model]]:
        return [self.populator.model_cls, *(m for child in self.children for m in child.models())]

    def populate(self, row: Sequence[Any], from_obj: Model, fast: bool) -> None:
        """``RelatedPopulator.populate``; with ``fast`` (no model of the query has init receivers) by :func:`_maker`."""
        p = self.populator
        if self.make is None or not fast:
            p.populate(row, from_obj)
            return
        values = row[p.cols_start : p.cols_end]
        obj = None
        if values[p.pk_idx] is not None:
            obj = self.make(p.db, values)
            for child in self.children:
                child.populate(row, obj, fast)
        p.local_setter(from_obj, obj)
        if obj is not None:
            p.remote_setter(obj, from_obj)


_fromisoformat = dt.datetime.fromisoformat


def _sqlite_datetime(converter) -> bool:
    """Whether ``converter`` is SQLite's datetime converter (``parse_datetime``, then aware in the connection's
    time zone), which :meth:`Prepared._run` reads inline."""
    return getattr(converter, "__func__", None) is SQLiteOperations.convert_datetimefield_value


class Prepared:
    """``qs`` compiled to SQL; each ``marks`` name is a value used in ``qs`` (one no real value can
    take, say a negative id, as the database is given it) to be replaced by the value :meth:`rows` is
    given under that name."""

    def __init__(self, qs: QuerySet, **marks: Any) -> None:
        self.db = qs.db
        self.compiler = qs.query.get_compiler(self.db)
        sql, params = self.compiler.as_sql()
        self.sql, self.params = sql, tuple(params)
        self.slots = {name: [i for i, p in enumerate(params) if p == mark] for name, mark in marks.items()}
        unused = sorted(name for name, at in self.slots.items() if not at)
        if unused:
            raise ValueError(f"marks {unused} are not parameters of the query")
        self.converters = self.compiler.get_converters([s[0] for s in self.compiler.select[: self.compiler.col_count]])
        # per converted column: (position, converters, expression, whether SQLite's datetime converter alone)
        self._plan = [
            (pos, tuple(convs), expression, len(convs) == 1 and _sqlite_datetime(convs[0]))
            for pos, (convs, expression) in self.converters.items()
        ]
        self._related: list[_Related] | None = None  # built at the first instances(), with:
        self._make: Callable[[str, Sequence[Any]], Model] | None = None
        self._models: list[type[Model]] = []
        self._names: list[str] = []

    def rows(self, **values: Any) -> list[tuple]:
        return self._run(self._params(values))

    def _params(self, values: dict[str, Any]) -> list[Any]:
        params = list(self.params)
        for name, value in values.items():
            for i in self.slots[name]:
                params[i] = value
        return params

    def _run(self, params: list[Any]) -> list[tuple]:
        connection = connections[self.db]
        rows = fetch(connection, self.sql, params)
        if not self._plan:
            return rows
        # Django's apply_converters, but a SQLite datetime string is read as its converter reads it (fromisoformat,
        # then the connection's time zone where it has none) without its four calls per value: a claim reads ~28
        zone = connection.timezone if connection.vendor == "sqlite" and settings.USE_TZ else None
        found = []
        for row in rows:
            row = list(row)
            for pos, convs, expression, datetime_only in self._plan:
                value = row[pos]
                if datetime_only and zone is not None and type(value) is str:
                    try:
                        when = _fromisoformat(value)
                    except ValueError:  # another spelling: the converter's own parsing
                        pass
                    else:
                        row[pos] = when if when.tzinfo is not None else when.replace(tzinfo=zone)
                        continue
                for converter in convs:
                    value = converter(value, expression, connection)
                row[pos] = value
            found.append(tuple(row))
        return found

    def instances(self, **values: Any) -> list[Model]:
        """The rows as model instances, their ``select_related`` rows attached and annotations set
        (Django's ``ModelIterable``)."""
        info = self.compiler.klass_info
        fields = info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        model, names = info["model"], self._names
        if self._related is None:
            select = self.compiler.select
            self._names = names = [f[0].target.attname for f in select[start:end]]
            self._make = _maker(model, names)
            self._related = [_Related(p) for p in get_related_populators(info, select, self.db)]
            self._models = [model, *(m for related in self._related for m in related.models())]
        fast = all(map(_quiet, self._models))  # receivers may be connected at any time: looked for on each run
        make = self._make if fast else None
        annotations = self.compiler.annotation_col_map.items()
        found = []
        for row in self.rows(**values):
            obj = make(self.db, row[start:end]) if make is not None else model.from_db(self.db, names, row[start:end])
            for related in self._related:
                related.populate(row, obj, fast)
            for name, at in annotations:
                setattr(obj, name, row[at])
            found.append(obj)
        return found


class PreparedSlice(Prepared):
    """``qs[:n]`` compiled once and run from any offset (a deep page of a list). Django writes a slice's
    bounds into the SQL, not as parameters, so a query compiled with its offset would serve one page only:
    here the offset is the last parameter (``LIMIT n OFFSET %s``, which PostgreSQL and SQLite both take)."""

    def __init__(self, qs: QuerySet, **marks: Any) -> None:
        high = qs.query.high_mark
        if qs.query.low_mark or high is None:
            raise ValueError("PreparedSlice takes a queryset sliced as qs[:n]")
        super().__init__(qs, **marks)
        if not self.sql.endswith(f"LIMIT {high}"):
            raise ValueError("the query must end with its LIMIT")
        self.sql += " OFFSET %s"

    def rows(self, offset: int, /, **values: Any) -> list[tuple]:  # type: ignore[override]
        """The rows from ``offset`` on (at most ``n``), the marks replaced by ``values``."""
        if offset < 0:
            raise ValueError("an offset is not negative")
        return self._run([*self._params(values), int(offset)])


_INSERTS: dict[tuple[str, type[Model], int], tuple[str, list]] = {}


def insert(objs: list[Model]) -> None:
    """Insert ``objs`` (new instances of one model) by one ``INSERT`` built once per database, model and
    number of rows: ``bulk_create`` without its per-call compiling. As ``bulk_create``, no signals; unlike it,
    their ids are not set back (a caller that needs them uses ``bulk_create``). Values are prepared as the
    ORM prepares them (``pre_save``, so ``auto_now_add`` fills in; ``get_db_prep_save``)."""
    if not objs:
        return
    model = type(objs[0])
    if any(type(obj) is not model or obj.pk is not None for obj in objs):
        raise ValueError("insert() takes new instances of one model, their ids not set")
    connection = connections[router.db_for_write(model)]
    key = (connection.alias, model, len(objs))
    if key not in _INSERTS:
        opts, qn = model._meta, connection.ops.quote_name
        fields = [f for f in opts.concrete_fields if f is not opts.pk and not getattr(f, "generated", False)]
        row = f"({', '.join(['%s'] * len(fields))})"
        columns = ", ".join(qn(f.column) for f in fields)
        _INSERTS[key] = (f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES {', '.join([row] * len(objs))}", fields)
    sql, fields = _INSERTS[key]
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]
    write(connection, sql, params)


_SAVES: dict[tuple[str, type[Model]], tuple[str, list, Any]] = {}


def save_new(obj: Model) -> None:
    """``obj.save()`` of a new row, by an ``INSERT`` built once per database and model: its ``pre_save`` and
    ``post_save`` signals sent as ``save()`` sends them, its id set from ``RETURNING`` (or the cursor's last
    id where the database cannot return it), its state that of a saved row. For a model that keeps
    ``Model.save`` (an override would be skipped), has no parent model and no column the database fills
    but its id; the values are prepared as :func:`insert` prepares them."""
    model = type(obj)
    opts = model._meta
    if model.save is not Model.save or opts.parents or opts.db_returning_fields != [opts.pk] or obj.pk is not None:
        raise ValueError("save_new() takes a new instance of a plain model that keeps Model.save")
    using = router.db_for_write(model, instance=obj)
    connection = connections[using]
    if (using, model) not in _SAVES:
        qn = connection.ops.quote_name
        fields = [f for f in opts.concrete_fields if f is not opts.pk and not getattr(f, "generated", False)]
        sql = (
            f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))})"
        )
        returning = None
        if connection.features.can_return_columns_from_insert:
            returning_sql, returning = connection.ops.return_insert_columns([opts.pk])
            sql += f" {returning_sql}"
        _SAVES[using, model] = (sql, fields, returning)
    sql, fields, returning = _SAVES[using, model]
    obj._prepare_related_fields_for_save(operation_name="save")
    signals.pre_save.send(sender=model, instance=obj, raw=False, using=using, update_fields=None)
    with transaction.mark_for_rollback_on_error(using=using):
        params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
        with connection.cursor() as cursor:
            execute(cursor, sql, params)
            if returning is not None:
                obj.pk = connection.ops.fetch_returned_insert_columns(cursor, returning)[0]
            else:
                obj.pk = connection.ops.last_insert_id(cursor, opts.db_table, opts.pk.column)
    obj._state.db = using
    obj._state.adding = False
    signals.post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False, using=using)
