package idp

// PostgresStorage's authorization codes, grant families, refresh tokens and access token records.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateCode implements CodeStorage.
func (s *PostgresStorage) CreateCode(ctx context.Context, hash string, rec codeRecord) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `
INSERT INTO mcpgate_codes (hash, client_id, sub, family_id, exp, used, purge_at, rec)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (hash) DO UPDATE SET client_id = EXCLUDED.client_id, sub = EXCLUDED.sub,
	family_id = EXCLUDED.family_id, exp = EXCLUDED.exp, used = EXCLUDED.used,
	purge_at = EXCLUDED.purge_at, rec = EXCLUDED.rec`,
		hash, rec.ClientID, rec.Sub, rec.FamilyID, rec.Exp, rec.Used, rec.PurgeAt, b)
	return err
}

// GetCode implements CodeStorage. A used code is its columns: what RedeemCode kept of it.
func (s *PostgresStorage) GetCode(ctx context.Context, hash string) (codeRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec codeRecord
	if !pgStorable([]any{hash}) {
		return rec, ErrNotFound
	}
	var used bool
	var b []byte
	err := s.pool.QueryRow(ctx, "SELECT client_id, sub, family_id, exp, used, purge_at, rec FROM mcpgate_codes WHERE hash = $1", hash).
		Scan(&rec.ClientID, &rec.Sub, &rec.FamilyID, &rec.Exp, &used, &rec.PurgeAt, &b)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, s.fault(err)
	}
	if b == nil {
		rec.Used = true
		return rec, nil
	}
	var full codeRecord
	if err := json.Unmarshal(b, &full); err != nil {
		return rec, fmt.Errorf("%w: mcpgate_codes: %w", errUndecodable, err)
	}
	return full, nil
}

// RedeemCode implements CodeStorage. One statement locks the unused code, returns its record and
// marks it used, dropping the record: the columns that stay (client, sub, family, exp, purge_at)
// are what replay detection needs, as the KV storage keeps it. A concurrent redeemer waits for
// the row lock, finds the code used (READ COMMITTED checks the condition again on the new row)
// and touches nothing; it then reads the used code and gets ErrAlreadyUsed.
func (s *PostgresStorage) RedeemCode(ctx context.Context, hash string, purgeAt time.Time) (codeRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec codeRecord
	err := s.getJSON(ctx, s.pool, "mcpgate_codes", &rec, `
WITH unused AS (
	SELECT hash, rec FROM mcpgate_codes WHERE hash = $1 AND NOT used FOR UPDATE
)
UPDATE mcpgate_codes c SET used = true, purge_at = $2, rec = NULL
FROM unused WHERE c.hash = unused.hash
RETURNING unused.rec`, hash, purgeAt.Unix())
	if err == nil {
		rec.Used = true
		return rec, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return rec, err
	}
	// Not redeemed now: missing, or used before.
	if rec, err = s.GetCode(ctx, hash); err != nil {
		return rec, err
	}
	if !rec.Used {
		// Unused, yet it was not there to redeem: created since; it was missing when asked.
		return codeRecord{}, ErrNotFound
	}
	return rec, ErrAlreadyUsed
}

// CreateFamily implements GrantStorage.
func (s *PostgresStorage) CreateFamily(ctx context.Context, id string, rec familyRecord) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	_, err := s.exec(ctx, `
INSERT INTO mcpgate_families (id, client_id, sub, revoked, exp) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET client_id = EXCLUDED.client_id, sub = EXCLUDED.sub,
	revoked = EXCLUDED.revoked, exp = EXCLUDED.exp`,
		id, rec.ClientID, rec.Sub, rec.Revoked, rec.Exp)
	return err
}

// GetFamily implements GrantStorage.
func (s *PostgresStorage) GetFamily(ctx context.Context, id string) (familyRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec familyRecord
	if !pgStorable([]any{id}) {
		return rec, ErrNotFound
	}
	err := s.pool.QueryRow(ctx, "SELECT client_id, sub, revoked, exp FROM mcpgate_families WHERE id = $1", id).
		Scan(&rec.ClientID, &rec.Sub, &rec.Revoked, &rec.Exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrNotFound
	}
	return rec, s.fault(err)
}

// pgRevokeFamilies is the one statement every revocation of families runs, with its condition.
const pgRevokeFamilies = `UPDATE mcpgate_families SET revoked = true WHERE NOT revoked AND `

// RevokeFamily implements GrantStorage.
func (s *PostgresStorage) RevokeFamily(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	err := s.execMissingOK(ctx, pgRevokeFamilies+"id = $1", id)
	return err
}

// RevokeClientFamilies implements GrantStorage: one statement (index mcpgate_families_client),
// so a family is revoked entirely or not at all.
func (s *PostgresStorage) RevokeClientFamilies(ctx context.Context, clientID string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	err := s.execMissingOK(ctx, pgRevokeFamilies+"client_id = $1", clientID)
	return err
}

// RevokeUserFamilies implements GrantStorage (index mcpgate_families_sub).
func (s *PostgresStorage) RevokeUserFamilies(ctx context.Context, sub string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	err := s.execMissingOK(ctx, pgRevokeFamilies+"sub = $1", sub)
	return err
}

// CreateRefresh implements GrantStorage: an existing record is left as it is.
func (s *PostgresStorage) CreateRefresh(ctx context.Context, hash string, rec refreshRecord) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `
INSERT INTO mcpgate_refresh (hash, family_id, client_id, exp, rotated_at, rec) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (hash) DO NOTHING`, hash, rec.FamilyID, rec.ClientID, rec.Exp, rec.RotatedAt, b)
	return err
}

// GetRefresh implements GrantStorage.
func (s *PostgresStorage) GetRefresh(ctx context.Context, hash string) (refreshRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec refreshRecord
	err := s.getJSON(ctx, s.pool, "mcpgate_refresh", &rec, "SELECT rec FROM mcpgate_refresh WHERE hash = $1", hash)
	return rec, err
}

// RotateRefresh implements GrantStorage in one transaction: the token's row is locked (SELECT
// ... FOR UPDATE), so concurrent rotations of one token take turns and exactly one finds it
// current; seal runs while the lock is held.
func (s *PostgresStorage) RotateRefresh(ctx context.Context, hash, clientID string, now time.Time, grace time.Duration,
	seal func(familyID string) ([]byte, error)) (refreshRecord, RefreshOutcome, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec refreshRecord
	var outcome RefreshOutcome
	var verdict, sealErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.getJSON(ctx, tx, "mcpgate_refresh", &rec, "SELECT rec FROM mcpgate_refresh WHERE hash = $1 FOR UPDATE", hash); err != nil {
			return err
		}
		switch {
		case rec.ClientID != clientID:
			verdict = ErrWrongClient
		case now.Unix() >= rec.Exp:
			verdict = ErrExpired
		case rec.RotatedAt == 0:
			sealed, err := seal(rec.FamilyID)
			if err != nil {
				sealErr = err
				return err
			}
			rec.RotatedAt = now.UnixMilli()
			rec.Successor = sealed
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "UPDATE mcpgate_refresh SET rotated_at = $2, rec = $3 WHERE hash = $1", hash, rec.RotatedAt, b); err != nil {
				return err
			}
			outcome = RefreshRotated
		case now.UnixMilli()-rec.RotatedAt <= grace.Milliseconds():
			outcome = RefreshGrace
		default:
			verdict = ErrAlreadyUsed
		}
		return nil
	})
	switch {
	case sealErr != nil:
		return rec, 0, sealErr
	case err != nil:
		return rec, 0, err
	case verdict != nil:
		return rec, 0, verdict
	}
	return rec, outcome, nil
}

// PutAccess implements GrantStorage.
func (s *PostgresStorage) PutAccess(ctx context.Context, jti string, rec accessRecord) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	_, err := s.exec(ctx, `
INSERT INTO mcpgate_access (jti, family_id, client_id, sub, exp, revoked) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (jti) DO UPDATE SET family_id = EXCLUDED.family_id, client_id = EXCLUDED.client_id,
	sub = EXCLUDED.sub, exp = EXCLUDED.exp, revoked = EXCLUDED.revoked`,
		jti, rec.FamilyID, rec.ClientID, rec.Sub, rec.Exp, rec.Revoked)
	return err
}

// GetAccess implements GrantStorage.
func (s *PostgresStorage) GetAccess(ctx context.Context, jti string) (accessRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec accessRecord
	if !pgStorable([]any{jti}) {
		return rec, ErrNotFound
	}
	err := s.pool.QueryRow(ctx, "SELECT family_id, client_id, sub, exp, revoked FROM mcpgate_access WHERE jti = $1", jti).
		Scan(&rec.FamilyID, &rec.ClientID, &rec.Sub, &rec.Exp, &rec.Revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrNotFound
	}
	return rec, s.fault(err)
}

// RevokeAccess implements GrantStorage.
func (s *PostgresStorage) RevokeAccess(ctx context.Context, jti string) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	err := s.execMissingOK(ctx, "UPDATE mcpgate_access SET revoked = true WHERE jti = $1", jti)
	return err
}
