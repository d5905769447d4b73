"""Reports: pure functions over the results JSON (schema, atomic writes, tables). No framework."""
