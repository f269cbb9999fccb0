"""The registry's Alembic migrations, applied by `RegistryStore.migrate` at start-up."""
