package idp

// PostgresStorage's users and sealed upstream tokens, signing keys, consents, sessions,
// authorization requests, login states and replay records.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GetUser implements UserStorage; created_at is the column's.
func (s *PostgresStorage) GetUser(ctx context.Context, sub string) (userRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec userRecord
	if !pgStorable([]any{sub}) {
		return rec, ErrNotFound
	}
	var createdAt int64
	var b []byte
	err := s.pool.QueryRow(ctx, "SELECT created_at, rec FROM mcpgate_users WHERE sub = $1", sub).Scan(&createdAt, &b)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, s.fault(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%w: mcpgate_users: %w", errUndecodable, err)
	}
	rec.CreatedAt = createdAt
	return rec, nil
}

// UpsertUser implements UserStorage in one statement: an existing user keeps its created_at
// column (which GetUser reports), a new one gets now unless u has one.
func (s *PostgresStorage) UpsertUser(ctx context.Context, u userRecord, now time.Time) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if u.CreatedAt == 0 {
		u.CreatedAt = now.Unix()
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `
INSERT INTO mcpgate_users (sub, created_at, rec) VALUES ($1, $2, $3)
ON CONFLICT (sub) DO UPDATE SET rec = EXCLUDED.rec,
	created_at = CASE WHEN mcpgate_users.created_at = 0 THEN EXCLUDED.created_at ELSE mcpgate_users.created_at END`,
		u.Sub, u.CreatedAt, b)
	return err
}

// CreateUser implements UserStorage.
func (s *PostgresStorage) CreateUser(ctx context.Context, u userRecord) (bool, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	b, err := json.Marshal(u)
	if err != nil {
		return false, err
	}
	n, err := s.exec(ctx, `INSERT INTO mcpgate_users (sub, created_at, rec) VALUES ($1, $2, $3) ON CONFLICT (sub) DO NOTHING`,
		u.Sub, u.CreatedAt, b)
	return n == 1, err
}

func pgSealedKind(kind SealedKind) error {
	if kind != SealedGitHub && kind != SealedUpstream {
		return fmt.Errorf("idp: unknown sealed token kind %q", kind)
	}
	return nil
}

// GetSealed implements UserStorage.
func (s *PostgresStorage) GetSealed(ctx context.Context, kind SealedKind, sub string) ([]byte, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if err := pgSealedKind(kind); err != nil {
		return nil, err
	}
	if !pgStorable([]any{sub}) {
		return nil, ErrNotFound
	}
	var b []byte
	err := s.pool.QueryRow(ctx, "SELECT sealed FROM mcpgate_sealed WHERE kind = $1 AND sub = $2", string(kind), sub).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return b, s.fault(err)
}

// PutSealed implements UserStorage.
func (s *PostgresStorage) PutSealed(ctx context.Context, kind SealedKind, sub string, sealed []byte) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if err := pgSealedKind(kind); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO mcpgate_sealed (kind, sub, sealed) VALUES ($1, $2, $3)
ON CONFLICT (kind, sub) DO UPDATE SET sealed = EXCLUDED.sealed`, string(kind), sub, sealed)
	return err
}

// DeleteSealed implements UserStorage.
func (s *PostgresStorage) DeleteSealed(ctx context.Context, kind SealedKind, sub string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if err := pgSealedKind(kind); err != nil {
		return err
	}
	err := s.execMissingOK(ctx, "DELETE FROM mcpgate_sealed WHERE kind = $1 AND sub = $2", string(kind), sub)
	return err
}

// ReplaceSealed implements UserStorage: an UPDATE conditional on the stored bytes.
func (s *PostgresStorage) ReplaceSealed(ctx context.Context, kind SealedKind, sub string, prev, next []byte) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if err := pgSealedKind(kind); err != nil {
		return err
	}
	var n int64
	var err error
	if next == nil {
		n, err = s.exec(ctx, "DELETE FROM mcpgate_sealed WHERE kind = $1 AND sub = $2 AND sealed = $3", string(kind), sub, prev)
	} else {
		n, err = s.exec(ctx, "UPDATE mcpgate_sealed SET sealed = $4 WHERE kind = $1 AND sub = $2 AND sealed = $3", string(kind), sub, prev, next)
	}
	if err == nil && n == 0 {
		err = ErrChanged
	}
	return err
}

// ListKeys implements KeyStorage.
func (s *PostgresStorage) ListKeys(ctx context.Context) ([]keyRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return s.listKeys(ctx, s.pool)
}

func (s *PostgresStorage) listKeys(ctx context.Context, q pgQueryer) ([]keyRecord, error) {
	rows, err := q.Query(ctx, "SELECT rec FROM mcpgate_keys")
	if err != nil {
		return nil, s.fault(err)
	}
	defer rows.Close()
	var out []keyRecord
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, s.fault(err)
		}
		var rec keyRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("%w: mcpgate_keys: %w", errUndecodable, err)
		}
		out = append(out, rec)
	}
	return out, s.fault(rows.Err())
}

// AddKey implements KeyStorage: in one transaction that holds an advisory lock (a fixed key, so
// every AddKey on the database takes turns), it reads the keys, compares the newest with
// newestKid and inserts rec only if they match.
func (s *PostgresStorage) AddKey(ctx context.Context, rec keyRecord, newestKid string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgLockKeys); err != nil {
			return err
		}
		keys, err := s.listKeys(ctx, tx)
		if err != nil {
			return err
		}
		if newestKeyKid(keys) != newestKid {
			return ErrChanged
		}
		_, err = tx.Exec(ctx, "INSERT INTO mcpgate_keys (kid, rec) VALUES ($1, $2)", rec.Kid, b)
		return err
	})
}

// RetireKeys implements KeyStorage.
func (s *PostgresStorage) RetireKeys(ctx context.Context, kids []string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if len(kids) == 0 {
		return nil
	}
	_, err := s.exec(ctx, "DELETE FROM mcpgate_keys WHERE kid = ANY($1)", kids)
	return err
}

// GetConsent implements ConsentStorage.
func (s *PostgresStorage) GetConsent(ctx context.Context, sub, clientID, resource string) (consentRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec consentRecord
	err := s.getJSON(ctx, s.pool, "mcpgate_consents", &rec,
		"SELECT rec FROM mcpgate_consents WHERE key = $1", pgConsentKey(sub, clientID, resource))
	return rec, err
}

// pgConsentKey is the consent's primary key: the hex SHA-256 of its three parts, NUL-separated
// (none of them holds a NUL that PostgreSQL would accept).
func pgConsentKey(sub, clientID, resource string) string {
	return hashSecret(sub + "\x00" + clientID + "\x00" + resource)
}

// PutConsent implements ConsentStorage.
func (s *PostgresStorage) PutConsent(ctx context.Context, sub, clientID, resource string, rec consentRecord) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO mcpgate_consents (key, sub, client_id, resource, rec) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key) DO UPDATE SET rec = EXCLUDED.rec`, pgConsentKey(sub, clientID, resource), sub, clientID, resource, b)
	return err
}

// putExpiring stores rec under key in one of the tables of (key, exp, rec), replacing any
// previous one. table and keyCol are constants of this package.
func (s *PostgresStorage) putExpiring(ctx context.Context, table, keyCol, key string, exp int64, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, "INSERT INTO "+table+" ("+keyCol+", exp, rec) VALUES ($1, $2, $3) ON CONFLICT ("+keyCol+
		") DO UPDATE SET exp = EXCLUDED.exp, rec = EXCLUDED.rec", key, exp, b)
	return err
}

// GetSession implements SessionStorage.
func (s *PostgresStorage) GetSession(ctx context.Context, hash string) (sessionRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec sessionRecord
	err := s.getJSON(ctx, s.pool, "mcpgate_sessions", &rec, "SELECT rec FROM mcpgate_sessions WHERE hash = $1", hash)
	return rec, err
}

// PutSession implements SessionStorage.
func (s *PostgresStorage) PutSession(ctx context.Context, hash string, rec sessionRecord) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return s.putExpiring(ctx, "mcpgate_sessions", "hash", hash, rec.Exp, rec)
}

// DeleteSession implements SessionStorage.
func (s *PostgresStorage) DeleteSession(ctx context.Context, hash string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	err := s.execMissingOK(ctx, "DELETE FROM mcpgate_sessions WHERE hash = $1", hash)
	return err
}

// PutAuthRequest implements SessionStorage.
func (s *PostgresStorage) PutAuthRequest(ctx context.Context, id string, rec authRequest) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return s.putExpiring(ctx, "mcpgate_auth_requests", "id", id, rec.Exp, rec)
}

// GetAuthRequest implements SessionStorage.
func (s *PostgresStorage) GetAuthRequest(ctx context.Context, id string) (authRequest, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec authRequest
	err := s.getJSON(ctx, s.pool, "mcpgate_auth_requests", &rec, "SELECT rec FROM mcpgate_auth_requests WHERE id = $1", id)
	return rec, err
}

// TakeAuthRequest implements SessionStorage (DELETE ... RETURNING).
func (s *PostgresStorage) TakeAuthRequest(ctx context.Context, id string) (authRequest, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return pgTake[authRequest](ctx, s, "mcpgate_auth_requests", "id", id)
}

// UpdateAuthRequest implements SessionStorage (SELECT ... FOR UPDATE, fn, UPDATE).
func (s *PostgresStorage) UpdateAuthRequest(ctx context.Context, id string, fn func(*authRequest) error) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	_, err := pgUpdate(ctx, s, "mcpgate_auth_requests", "id", id, func(r *authRequest) int64 { return r.Exp }, fn)
	return err
}

// PutLoginState implements SessionStorage.
func (s *PostgresStorage) PutLoginState(ctx context.Context, hash string, rec loginState) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return s.putExpiring(ctx, "mcpgate_login_states", "hash", hash, rec.Exp, rec)
}

// TakeLoginState implements SessionStorage (DELETE ... RETURNING).
func (s *PostgresStorage) TakeLoginState(ctx context.Context, hash string) (loginState, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return pgTake[loginState](ctx, s, "mcpgate_login_states", "hash", hash)
}

// UseJTI implements ReplayStorage in one statement: the insert, or the update of a record that
// has expired, happens only if the jti is not recorded as unexpired; no row touched is a replay.
func (s *PostgresStorage) UseJTI(ctx context.Context, key string, exp, now time.Time) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	n, err := s.exec(ctx, `INSERT INTO mcpgate_jti (key, exp) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET exp = EXCLUDED.exp WHERE mcpgate_jti.exp < $3`, key, exp.Unix(), now.Unix())
	if err == nil && n == 0 {
		err = ErrAlreadyUsed
	}
	return err
}
