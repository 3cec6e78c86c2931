-- ============================================================================
-- Validation of job parameters
-- ============================================================================

-- jobqueue.check_json_schema
-- Checks p_value against a JSON Schema subset and raises 22023 naming the
-- offending field (p_path) at the first violation. Keywords: type (one name
-- or a list: object, array, string, integer, number, boolean, null), enum,
-- minimum, maximum, minLength, maxLength, properties, required,
-- additionalProperties (false or a schema), items, minItems, maxItems.
-- Other keywords are ignored. A NULL schema accepts anything.
-- No search_path of its own: it runs once per key of every submitted job,
-- only under check_job_parameters()' pinned path, and a SET clause
-- costs more than the checks themselves.
create or replace function jobqueue.check_json_schema(p_schema jsonb, p_value jsonb, p_path text)
returns void
language plpgsql
immutable
as $$
declare
    v_kind text := pg_catalog.jsonb_typeof(p_value);
    v_types jsonb;
    v_number numeric;
    v_length integer;
    v_key text;
    v_item jsonb;
    v_index integer := 0;
begin
    if p_schema is null then
        return;
    end if;
    if v_kind = 'number' then
        v_number := (p_value #>> '{}')::numeric;
    end if;

    -- Containment matches one type name or a list of them, without a query:
    -- '["string", "null"]' @> '"string"' holds, and so does '"string"' @> '"string"'.
    if p_schema ? 'type'
        and not p_schema -> 'type' @> pg_catalog.to_jsonb(v_kind)
        and not (v_kind = 'number' and v_number = pg_catalog.trunc(v_number) and p_schema -> 'type' @> '"integer"')
        then
        v_types := case pg_catalog.jsonb_typeof(p_schema -> 'type')
            when 'array' then p_schema -> 'type'
            else pg_catalog.jsonb_build_array(p_schema -> 'type')
        end;
        raise exception '% must be of type %, not %', p_path,
            pg_catalog.array_to_string(array(select pg_catalog.jsonb_array_elements_text(v_types)), ' or '),
            v_kind
            using errcode = '22023';
    end if;

    if p_schema ? 'enum' and not exists (
        select from pg_catalog.jsonb_array_elements(p_schema -> 'enum') as e (value) where e.value = p_value
    ) then
        raise exception '% must be one of %', p_path, p_schema -> 'enum' using errcode = '22023';
    end if;

    if v_kind = 'number' then
        if p_schema ? 'minimum' and v_number < (p_schema ->> 'minimum')::numeric then
            raise exception '% must be at least %', p_path, p_schema ->> 'minimum' using errcode = '22023';
        end if;
        if p_schema ? 'maximum' and v_number > (p_schema ->> 'maximum')::numeric then
            raise exception '% must be at most %', p_path, p_schema ->> 'maximum' using errcode = '22023';
        end if;
    elsif v_kind = 'string' then
        v_length := pg_catalog.length(p_value #>> '{}');
        if p_schema ? 'minLength' and v_length < (p_schema ->> 'minLength')::integer then
            raise exception '% must be at least % characters long', p_path, p_schema ->> 'minLength'
                using errcode = '22023';
        end if;
        if p_schema ? 'maxLength' and v_length > (p_schema ->> 'maxLength')::integer then
            raise exception '% must be at most % characters long', p_path, p_schema ->> 'maxLength'
                using errcode = '22023';
        end if;
    elsif v_kind = 'object' then
        if p_schema ? 'required' and not p_value ?& array(
            select pg_catalog.jsonb_array_elements_text(p_schema -> 'required')
        ) then
            for v_key in select r.key from pg_catalog.jsonb_array_elements_text(p_schema -> 'required') as r (key) loop
                if not p_value ? v_key then
                    raise exception '%.% is required', p_path, v_key using errcode = '22023';
                end if;
            end loop;
        end if;
        -- The key loop is a query: an empty object, the common case, skips it.
        if p_value <> '{}'::jsonb then
            for v_key in select k.key from pg_catalog.jsonb_object_keys(p_value) as k (key) order by 1 loop
                if p_schema -> 'properties' ? v_key then
                    perform jobqueue.check_json_schema(
                        p_schema -> 'properties' -> v_key, p_value -> v_key, p_path || '.' || v_key
                    );
                elsif p_schema -> 'additionalProperties' = 'false'::jsonb then
                    raise exception '% has an unknown key "%"', p_path, v_key
                        using errcode = '22023',
                        hint = pg_catalog.format('Allowed keys: %s.', (
                            select pg_catalog.string_agg(k.key, ', ' order by k.key)
                            from pg_catalog.jsonb_object_keys(p_schema -> 'properties') as k (key)
                        ));
                elsif pg_catalog.jsonb_typeof(p_schema -> 'additionalProperties') = 'object' then
                    perform jobqueue.check_json_schema(
                        p_schema -> 'additionalProperties', p_value -> v_key, p_path || '.' || v_key
                    );
                end if;
            end loop;
        end if;
    elsif v_kind = 'array' then
        v_length := pg_catalog.jsonb_array_length(p_value);
        if p_schema ? 'minItems' and v_length < (p_schema ->> 'minItems')::integer then
            raise exception '% must have at least % items', p_path, p_schema ->> 'minItems' using errcode = '22023';
        end if;
        if p_schema ? 'maxItems' and v_length > (p_schema ->> 'maxItems')::integer then
            raise exception '% must have at most % items', p_path, p_schema ->> 'maxItems' using errcode = '22023';
        end if;
        if p_schema ? 'items' then
            for v_item in select e.value from pg_catalog.jsonb_array_elements(p_value) as e (value) loop
                perform jobqueue.check_json_schema(p_schema -> 'items', v_item, p_path || '[' || v_index || ']');
                v_index := v_index + 1;
            end loop;
        end if;
    end if;
end;
$$;

-- jobqueue.job_type_schema
-- The parameters_schema of a job type (NULL: any JSON object). Raises 22023
-- for a NULL or unknown job_type.
create or replace function jobqueue.job_type_schema(p_job_type text)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_schema jsonb;
begin
    if p_job_type is null then
        raise exception 'job_type must not be null' using errcode = '22023';
    end if;
    select t.parameters_schema into v_schema
    from public.job_types as t
    where t.name = p_job_type;
    if not found then
        raise exception 'job_type: unknown job type "%"', p_job_type
            using errcode = '22023',
            hint = 'Register it first: insert into job_types (name) values (...).';
    end if;
    return v_schema;
end;
$$;

-- jobqueue.check_job_parameters
-- Checks job parameters against their type's schema (job_type_schema()):
-- raises 22023 naming the field for parameters that are not a JSON object,
-- are larger than 64 KiB as JSON text, or break the schema. NULL
-- parameters mean {}.
create or replace function jobqueue.check_job_parameters(p_schema jsonb, p_parameters jsonb)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_parameters jsonb := coalesce(p_parameters, '{}'::jsonb);
    v_size integer;
begin
    if pg_catalog.jsonb_typeof(v_parameters) <> 'object' then
        raise exception 'job_parameters must be a JSON object, not %', pg_catalog.jsonb_typeof(v_parameters)
            using errcode = '22023';
    end if;
    -- The size of the JSON text, not pg_column_size(): a value read from a
    -- table may arrive compressed, and would pass at a fraction of its size.
    v_size := pg_catalog.octet_length(v_parameters::text);
    if v_size > 65536 then
        raise exception 'job_parameters is too large: % bytes, at most 65536', v_size
            using errcode = '22023', hint = 'Store large data elsewhere and pass a reference.';
    end if;
    perform jobqueue.check_json_schema(p_schema, v_parameters, 'job_parameters');
end;
$$;

-- validate_job_parameters
-- Checks job parameters for a job type, as submit_job() does: raises 22023
-- naming the field (unknown or NULL job_type; parameters that are not a JSON
-- object, larger than 64 KiB as JSON text, or break the type's
-- parameters_schema).
-- NULL parameters mean {}. Writes nothing.
create or replace function public.validate_job_parameters(job_type text, job_parameters jsonb)
returns void
language plpgsql
stable
security definer
-- Definer: the schema checker is a private helper callers may not execute.
set search_path = pg_catalog, pg_temp
as $$
begin
    perform jobqueue.check_job_parameters(
        jobqueue.job_type_schema(validate_job_parameters.job_type), validate_job_parameters.job_parameters
    );
end;
$$;
