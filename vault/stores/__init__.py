"""Token stores: one Protocol (`base.TokenStore`), SQLite and PostgreSQL backends."""
