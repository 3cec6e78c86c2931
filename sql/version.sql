-- The package's version: the one place it is written. pyproject.toml (through
-- setup.py), the runner and `jobqueue migrate` read it from this line. A
-- release that adds a migration raises the minor version.
set "jobqueue.package_version" = '0.3.0';
