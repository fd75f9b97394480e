"""The demo: a portal with demo data on one machine (cluster in a box, identity provider, seed data).

Nothing outside this package imports it; the running portal does not need it."""
