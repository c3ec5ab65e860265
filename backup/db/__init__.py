"""What differs between databases: session settings (`session`), bulk writers (`writers`) and
the export rows each database writes as JSON itself (`postgresql_export`, `sqlite_export`)."""
