"""The store: one database object, its migrations, and the repositories
(calls, campaigns) and the routing journal."""
