package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the LISTEN/NOTIFY channel on which key changes are announced.
// The payload is the changed kid, or "*" when every key may have changed
// (TRUNCATE).
const Channel = "jwtgate_keys"

// RevisionChannel carries the change revision (jwtgate_revision.rev) of
// every transaction that changed keys, sent at its commit after all its
// kids on Channel: a node that has received revision r on it has applied
// every change up to r.
const RevisionChannel = "jwtgate_revision"

// migrationLockID is the pg_advisory_xact_lock key that serialises schema
// migrations between nodes starting at once ("jwtgate" in ASCII).
const migrationLockID int64 = 0x6a77746761746531

// migrations are applied in order, each in the same transaction as its row
// in jwtgate_schema_migrations. Never edit a released migration: append.
var migrations = []string{
	// 1: the key registry and its change notifications.
	`CREATE TABLE jwtgate_keys (
		kid            text        PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
		project        text        NOT NULL CHECK (length(project) BETWEEN 1 AND 63),
		label          text        NOT NULL DEFAULT '',
		status         text        NOT NULL CHECK (status IN ('active', 'inactive')),
		public_key     bytea       NOT NULL, -- DER SubjectPublicKeyInfo
		created_at     timestamptz NOT NULL,
		updated_at     timestamptz NOT NULL,
		last_used_at   timestamptz,
		verified_count bigint      NOT NULL DEFAULT 0 CHECK (verified_count >= 0)
	);
	CREATE INDEX jwtgate_keys_project ON jwtgate_keys (project, created_at, kid COLLATE "C");

	-- Every change that can matter to a verifier is announced on the
	-- channel, in the changing transaction (delivered at commit), whoever
	-- makes it: jwtgate or an operator with psql. Usage updates
	-- (verified_count, last_used_at) are not announced.
	CREATE FUNCTION jwtgate_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF TG_LEVEL = 'STATEMENT' THEN
			PERFORM pg_notify('jwtgate_keys', '*');
			RETURN NULL;
		END IF;
		IF TG_OP = 'DELETE' THEN
			PERFORM pg_notify('jwtgate_keys', OLD.kid);
			RETURN OLD;
		END IF;
		IF TG_OP = 'UPDATE' AND OLD.kid IS DISTINCT FROM NEW.kid THEN
			PERFORM pg_notify('jwtgate_keys', OLD.kid);
		END IF;
		PERFORM pg_notify('jwtgate_keys', NEW.kid);
		RETURN NEW;
	END $$;
	CREATE TRIGGER jwtgate_keys_notify_ins_del AFTER INSERT OR DELETE ON jwtgate_keys
		FOR EACH ROW EXECUTE FUNCTION jwtgate_keys_notify();
	CREATE TRIGGER jwtgate_keys_notify_upd AFTER UPDATE ON jwtgate_keys
		FOR EACH ROW
		WHEN ((OLD.kid, OLD.project, OLD.label, OLD.status, OLD.public_key)
		      IS DISTINCT FROM (NEW.kid, NEW.project, NEW.label, NEW.status, NEW.public_key))
		EXECUTE FUNCTION jwtgate_keys_notify();
	CREATE TRIGGER jwtgate_keys_notify_truncate AFTER TRUNCATE ON jwtgate_keys
		FOR EACH STATEMENT EXECUTE FUNCTION jwtgate_keys_notify();`,

	// 2: a change revision, the source of truth that every node polls;
	// NOTIFY is only the wake-up. The counter is bumped once per changing
	// transaction, at its commit (a deferred trigger: after every kid of the
	// transaction was announced, and so that a bulk change does not update
	// the counter row once per key), and announced on jwtgate_revision.
	`CREATE TABLE jwtgate_revision (
		id  boolean PRIMARY KEY DEFAULT true CHECK (id),
		rev bigint  NOT NULL
	);
	INSERT INTO jwtgate_revision (rev) VALUES (0);

	CREATE FUNCTION jwtgate_keys_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		r bigint;
	BEGIN
		IF TG_LEVEL = 'ROW' AND current_setting('jwtgate.revision_bumped', true) = 'on' THEN
			RETURN NULL; -- this transaction has its revision already
		END IF;
		UPDATE jwtgate_revision SET rev = rev + 1 RETURNING rev INTO r;
		PERFORM pg_notify('jwtgate_revision', r::text);
		IF TG_LEVEL = 'ROW' THEN
			PERFORM set_config('jwtgate.revision_bumped', 'on', true);
		END IF;
		RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER jwtgate_keys_revision_ins_del AFTER INSERT OR DELETE ON jwtgate_keys
		DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION jwtgate_keys_bump_revision();
	CREATE CONSTRAINT TRIGGER jwtgate_keys_revision_upd AFTER UPDATE ON jwtgate_keys
		DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW
		WHEN ((OLD.kid, OLD.project, OLD.label, OLD.status, OLD.public_key)
		      IS DISTINCT FROM (NEW.kid, NEW.project, NEW.label, NEW.status, NEW.public_key))
		EXECUTE FUNCTION jwtgate_keys_bump_revision();
	-- Fires after jwtgate_keys_notify_truncate (triggers run in name order).
	CREATE TRIGGER jwtgate_keys_revision_truncate AFTER TRUNCATE ON jwtgate_keys
		FOR EACH STATEMENT EXECUTE FUNCTION jwtgate_keys_bump_revision();`,

	// 3: the audit trail of admin changes and the scoped admin tokens
	// (only the SHA-256 of a token's secret is kept).
	`CREATE TABLE jwtgate_audit (
		id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at         timestamptz NOT NULL,
		actor_type text        NOT NULL,
		actor_id   text        NOT NULL DEFAULT '',
		action     text        NOT NULL,
		project    text        NOT NULL DEFAULT '',
		kid        text        NOT NULL DEFAULT '',
		token_id   text        NOT NULL DEFAULT '',
		forced     boolean     NOT NULL DEFAULT false,
		before     jsonb,
		after      jsonb
	);
	CREATE INDEX jwtgate_audit_project ON jwtgate_audit (project, id);
	CREATE INDEX jwtgate_audit_kid ON jwtgate_audit (kid, id) WHERE kid <> '';

	CREATE TABLE jwtgate_admin_tokens (
		id         text        PRIMARY KEY,
		project    text        NOT NULL,
		scope      text        NOT NULL CHECK (scope IN ('read', 'write')),
		label      text        NOT NULL DEFAULT '',
		hash       bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
		created_at timestamptz NOT NULL,
		revoked_at timestamptz
	);`,

	// 4: the projects' JWKS sources (admin.JWKSSource as a JSON document;
	// the importer changes it under a row lock, so nodes take turns).
	`CREATE TABLE jwtgate_jwks_sources (
		project text  PRIMARY KEY CHECK (length(project) BETWEEN 1 AND 63),
		doc     jsonb NOT NULL
	);`,
}

// SchemaVersion is the schema version this build creates and expects.
var SchemaVersion = len(migrations)

// migrate brings the schema to SchemaVersion. Nodes starting at once take
// turns on a transaction-scoped advisory lock; DDL is transactional in
// PostgreSQL, so a migration is applied completely or not at all.
func migrate(ctx context.Context, pool *pgxpool.Pool) (applied int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockID); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS jwtgate_schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create jwtgate_schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM jwtgate_schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(migrations) {
			return fmt.Errorf("the database schema is version %d, newer than this jwtgate knows (%d): upgrade jwtgate", current, len(migrations))
		}
		for v := current + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("schema migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO jwtgate_schema_migrations (version) VALUES ($1)", v); err != nil {
				return fmt.Errorf("record schema migration %d: %w", v, err)
			}
			applied++
		}
		return nil
	})
	return applied, err
}
