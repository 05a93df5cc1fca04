package idp

// PostgresStorage's schema and its migrations.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgMigrations are the schema's versions in order: version i+1 is pgMigrations[i]. A released
// entry is never edited; a change is a new entry appended.
//
// Every table keys on what the protocol looks records up by and has a column for each field a
// statement compares (exp, used, purge_at, rotated_at, revoked, client_id, sub), next to rec, the
// record as records.go's JSON tags encode it (the KV storage's value), kept as bytes (bytea, not
// jsonb, which refuses a \u0000 that a client's state parameter may carry). Families and access
// records are all columns; a used code keeps only its columns. Keys derived from secrets are
// hashes; sealed values are stored as given.
var pgMigrations = []string{
	`
CREATE TABLE mcpgate_clients (
	client_id text PRIMARY KEY,
	rec bytea NOT NULL
);
-- The number of registered clients, kept in the statements that insert and delete one, so the
-- cap holds under concurrent registrations.
CREATE TABLE mcpgate_counters (
	name text PRIMARY KEY,
	n bigint NOT NULL CHECK (n >= 0)
);
INSERT INTO mcpgate_counters (name, n) VALUES ('clients', 0);

CREATE TABLE mcpgate_codes (
	hash text PRIMARY KEY,
	client_id text NOT NULL,
	sub text NOT NULL,
	family_id text NOT NULL,
	exp bigint NOT NULL,
	used boolean NOT NULL DEFAULT false,
	purge_at bigint NOT NULL DEFAULT 0,
	rec bytea -- NULL once used: the columns are all a used code keeps
);
CREATE INDEX mcpgate_codes_end ON mcpgate_codes ((GREATEST(exp, purge_at)));

CREATE TABLE mcpgate_families (
	id text PRIMARY KEY,
	client_id text NOT NULL,
	sub text NOT NULL,
	revoked boolean NOT NULL DEFAULT false,
	exp bigint NOT NULL
);
CREATE INDEX mcpgate_families_client ON mcpgate_families (client_id) WHERE NOT revoked;
CREATE INDEX mcpgate_families_sub ON mcpgate_families (sub) WHERE NOT revoked;
CREATE INDEX mcpgate_families_exp ON mcpgate_families (exp);

CREATE TABLE mcpgate_refresh (
	hash text PRIMARY KEY,
	family_id text NOT NULL,
	client_id text NOT NULL,
	exp bigint NOT NULL,
	rotated_at bigint NOT NULL DEFAULT 0,
	rec bytea NOT NULL
);
CREATE INDEX mcpgate_refresh_exp ON mcpgate_refresh (exp);

CREATE TABLE mcpgate_access (
	jti text PRIMARY KEY,
	family_id text NOT NULL,
	client_id text NOT NULL,
	sub text NOT NULL,
	exp bigint NOT NULL,
	revoked boolean NOT NULL DEFAULT false
);
CREATE INDEX mcpgate_access_exp ON mcpgate_access (exp);

CREATE TABLE mcpgate_users (
	sub text PRIMARY KEY,
	created_at bigint NOT NULL, -- authoritative: UpsertUser keeps it, GetUser puts it in the record
	rec bytea NOT NULL
);

-- Sealed per-user tokens (AES-256-GCM, AAD = sub), bytes exactly as given.
CREATE TABLE mcpgate_sealed (
	kind text NOT NULL,
	sub text NOT NULL,
	sealed bytea NOT NULL,
	PRIMARY KEY (kind, sub)
);

-- Signing keys, the private key sealed (AAD = kid) inside rec.
CREATE TABLE mcpgate_keys (
	kid text PRIMARY KEY,
	rec bytea NOT NULL
);

-- Keyed by the SHA-256 of sub, client_id and resource (pgConsentKey): a client_id may be a
-- 2048-character URL and a resource is the client's to choose, and a btree entry holds at most
-- about 2.7 kB.
CREATE TABLE mcpgate_consents (
	key text PRIMARY KEY,
	sub text NOT NULL,
	client_id text NOT NULL,
	resource text NOT NULL,
	rec bytea NOT NULL
);

CREATE TABLE mcpgate_sessions (
	hash text PRIMARY KEY,
	exp bigint NOT NULL,
	rec bytea NOT NULL
);
CREATE INDEX mcpgate_sessions_exp ON mcpgate_sessions (exp);

CREATE TABLE mcpgate_auth_requests (
	id text PRIMARY KEY,
	exp bigint NOT NULL,
	rec bytea NOT NULL
);
CREATE INDEX mcpgate_auth_requests_exp ON mcpgate_auth_requests (exp);

CREATE TABLE mcpgate_login_states (
	hash text PRIMARY KEY,
	exp bigint NOT NULL,
	rec bytea NOT NULL
);
CREATE INDEX mcpgate_login_states_exp ON mcpgate_login_states (exp);

CREATE TABLE mcpgate_jti (
	key text PRIMARY KEY,
	exp bigint NOT NULL
);
CREATE INDEX mcpgate_jti_exp ON mcpgate_jti (exp);
`,
}

// migrate brings the schema to len(pgMigrations) in one transaction that first takes an advisory
// lock (pg_advisory_xact_lock, a fixed key): replicas that start at once run it one after the
// other, and every one after the first finds nothing left to do. The applied versions are rows of
// mcpgate_schema_migrations. A database migrated by a newer build is refused rather than guessed
// at.
//
// A database already at this build's version is only read: no lock, no DDL, so a runtime role
// that may read and write rows but not create tables starts once the schema is in place.
func (s *PostgresStorage) migrate(ctx context.Context) error {
	var have int
	var exists bool
	err := s.pool.QueryRow(ctx, "SELECT to_regclass('mcpgate_schema_migrations') IS NOT NULL").Scan(&exists)
	if err == nil && exists {
		err = s.pool.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM mcpgate_schema_migrations").Scan(&have)
	}
	if err != nil {
		return s.fault(err)
	}
	if have > len(pgMigrations) {
		return fmt.Errorf("idp: the PostgreSQL schema is at version %d, newer than this build's %d: upgrade mcpgate", have, len(pgMigrations))
	}
	if have == len(pgMigrations) {
		return nil
	}
	// Behind: take the lock, and look again under it (another replica may have just migrated).
	var tooNew error
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgLockMigrate); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mcpgate_schema_migrations (
			version integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM mcpgate_schema_migrations").Scan(&have); err != nil {
			return err
		}
		if have > len(pgMigrations) {
			tooNew = fmt.Errorf("idp: the PostgreSQL schema is at version %d, newer than this build's %d: upgrade mcpgate", have, len(pgMigrations))
			return tooNew
		}
		for v := have + 1; v <= len(pgMigrations); v++ {
			if _, err := tx.Exec(ctx, pgMigrations[v-1]); err != nil {
				return fmt.Errorf("schema migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO mcpgate_schema_migrations (version) VALUES ($1)", v); err != nil {
				return err
			}
		}
		return nil
	})
	if tooNew != nil {
		return tooNew
	}
	return err
}
