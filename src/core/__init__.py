"""hexmarket core: pure domain, use cases and ports. Imports only the standard library and attrs."""
