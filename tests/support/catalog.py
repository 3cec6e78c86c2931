"""What an install made of a database, by definition rather than by oid:
the catalog snapshot that install and upgrade tests compare."""

from __future__ import annotations

import psycopg

# Everything install.sql creates or sets, by definition rather than by oid.
SNAPSHOT = """
select 'function', p.oid::regprocedure::text,
    pg_catalog.pg_get_functiondef(p.oid) || coalesce(p.proacl::text, '')
from pg_catalog.pg_proc as p
where p.pronamespace in ('public'::regnamespace, 'jobqueue'::regnamespace)
union all
select 'relation', c.oid::regclass::text,
    c.relkind::text || ' ' || c.relrowsecurity || ' ' || coalesce(c.relacl::text, '')
    || ' ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '')
from pg_catalog.pg_class as c
where c.relnamespace in ('public'::regnamespace, 'jobqueue'::regnamespace, 'pgmq'::regnamespace)
union all
select 'column', a.attrelid::regclass::text || '.' || a.attname,
    pg_catalog.format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
    || ' ' || coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
from pg_catalog.pg_attribute as a
inner join pg_catalog.pg_class as c on a.attrelid = c.oid
left join pg_catalog.pg_attrdef as d on (a.attrelid, a.attnum) = (d.adrelid, d.adnum)
where c.relnamespace in ('public'::regnamespace, 'jobqueue'::regnamespace, 'pgmq'::regnamespace)
    and a.attnum > 0 and not a.attisdropped
union all
select 'constraint', c.conrelid::regclass::text || '.' || c.conname,
    pg_catalog.pg_get_constraintdef(c.oid)
from pg_catalog.pg_constraint as c
where c.connamespace in ('public'::regnamespace, 'jobqueue'::regnamespace, 'pgmq'::regnamespace)
union all
select 'index', i.indexrelid::regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid)
from pg_catalog.pg_index as i
inner join pg_catalog.pg_class as c on i.indrelid = c.oid
where c.relnamespace in ('public'::regnamespace, 'jobqueue'::regnamespace, 'pgmq'::regnamespace)
union all
select 'trigger', t.tgrelid::regclass::text || '.' || t.tgname, pg_catalog.pg_get_triggerdef(t.oid)
from pg_catalog.pg_trigger as t
where not t.tgisinternal
union all
select 'view', c.oid::regclass::text, pg_catalog.pg_get_viewdef(c.oid)
from pg_catalog.pg_class as c
where c.relkind = 'v' and c.relnamespace = 'jobqueue'::regnamespace
union all
select 'policy', p.polrelid::regclass::text || '.' || p.polname,
    coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' ' || p.polroles::text
from pg_catalog.pg_policy as p
union all
select 'extension', e.extname, e.extversion from pg_catalog.pg_extension as e
union all
select 'schema', n.nspname, coalesce(n.nspacl::text, '') || ' '
    || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '')
from pg_catalog.pg_namespace as n
where n.nspname in ('public', 'jobqueue', 'pgmq')
union all
select 'row', 'job_types.' || t.name, pg_catalog.to_jsonb(t.*)::text from public.job_types as t
union all
select 'row', 'settings', pg_catalog.to_jsonb(s.*)::text from jobqueue.settings as s
union all
select 'row', 'schema_versions.' || v.version, pg_catalog.to_jsonb(v.*)::text
from jobqueue.schema_versions as v
union all
select 'row', 'pgmq.meta.' || m.queue_name, pg_catalog.to_jsonb(m.*)::text from pgmq.meta as m
order by 1, 2, 3
"""


def snapshot(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(SNAPSHOT).fetchall()
