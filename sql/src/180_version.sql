-- ============================================================================
-- The package version this install brought
-- ============================================================================
-- Recorded last, in the code's transaction: a database reports a version
-- only once its code is that version's (jobqueue.installed_version()).

insert into jobqueue.schema_versions (version)
values (pg_catalog.current_setting('jobqueue.package_version'))
on conflict (version) do nothing;
