package idp

// kvStorage's codes, refresh families, refresh tokens and access token records.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CreateCode implements CodeStorage.
func (s *kvStorage) CreateCode(ctx context.Context, hash string, rec codeRecord) error {
	return s.put(ctx, bucketCodes, hash, rec)
}

// GetCode implements CodeStorage.
func (s *kvStorage) GetCode(ctx context.Context, hash string) (codeRecord, error) {
	var rec codeRecord
	err := s.get(ctx, bucketCodes, hash, &rec)
	return rec, err
}

// RedeemCode implements CodeStorage.
func (s *kvStorage) RedeemCode(ctx context.Context, hash string, purgeAt time.Time) (codeRecord, error) {
	var rec codeRecord
	reused := false
	err := s.kv.Update(ctx, bucketCodes, hash, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, ErrNotFound
		}
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUndecodable, bucketCodes, err)
		}
		if rec.Used {
			reused = true
			return old, nil
		}
		rec.Used = true
		// Keep only what replay detection needs (no challenge, redirect URI or scope).
		return json.Marshal(codeRecord{
			ClientID: rec.ClientID, Sub: rec.Sub, Exp: rec.Exp, Used: true, FamilyID: rec.FamilyID,
			PurgeAt: purgeAt.Unix(),
		})
	})
	if err == nil && reused {
		err = ErrAlreadyUsed
	}
	return rec, err
}

// --- grants ---

// CreateFamily implements GrantStorage.
func (s *kvStorage) CreateFamily(ctx context.Context, id string, rec familyRecord) error {
	return s.put(ctx, bucketFamilies, id, rec)
}

// GetFamily implements GrantStorage.
func (s *kvStorage) GetFamily(ctx context.Context, id string) (familyRecord, error) {
	var rec familyRecord
	err := s.get(ctx, bucketFamilies, id, &rec)
	return rec, err
}

// RevokeFamily implements GrantStorage.
func (s *kvStorage) RevokeFamily(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	_, err := kvUpdate(ctx, s.kv, bucketFamilies, id, func(f *familyRecord) error {
		f.Revoked = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// RevokeClientFamilies implements GrantStorage.
func (s *kvStorage) RevokeClientFamilies(ctx context.Context, clientID string) error {
	return s.revokeFamiliesWhere(ctx, func(f familyRecord) bool { return f.ClientID == clientID })
}

// RevokeUserFamilies implements GrantStorage.
func (s *kvStorage) RevokeUserFamilies(ctx context.Context, sub string) error {
	return s.revokeFamiliesWhere(ctx, func(f familyRecord) bool { return f.Sub == sub })
}

// revokeFamiliesWhere revokes every unrevoked family for which match holds. Each revocation is
// atomic on its own; a family created while this runs is not covered.
func (s *kvStorage) revokeFamiliesWhere(ctx context.Context, match func(familyRecord) bool) error {
	var ids []string
	err := s.kv.ForEach(ctx, bucketFamilies, func(k string, v []byte) error {
		var f familyRecord
		if json.Unmarshal(v, &f) == nil && !f.Revoked && match(f) {
			ids = append(ids, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.RevokeFamily(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// CreateRefresh implements GrantStorage.
func (s *kvStorage) CreateRefresh(ctx context.Context, hash string, rec refreshRecord) error {
	nb, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.kv.Update(ctx, bucketRefresh, hash, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil
		}
		return nb, nil
	})
}

// GetRefresh implements GrantStorage.
func (s *kvStorage) GetRefresh(ctx context.Context, hash string) (refreshRecord, error) {
	var rec refreshRecord
	err := s.get(ctx, bucketRefresh, hash, &rec)
	return rec, err
}

// RotateRefresh implements GrantStorage.
func (s *kvStorage) RotateRefresh(ctx context.Context, hash, clientID string, now time.Time, grace time.Duration,
	seal func(familyID string) ([]byte, error)) (refreshRecord, RefreshOutcome, error) {
	var rec refreshRecord
	var outcome RefreshOutcome
	reused := false
	err := s.kv.Update(ctx, bucketRefresh, hash, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, ErrNotFound
		}
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUndecodable, bucketRefresh, err)
		}
		if rec.ClientID != clientID {
			return nil, ErrWrongClient
		}
		if now.Unix() >= rec.Exp {
			return nil, ErrExpired
		}
		switch {
		case rec.RotatedAt == 0:
			sealed, err := seal(rec.FamilyID)
			if err != nil {
				return nil, err
			}
			rec.RotatedAt = now.UnixMilli()
			rec.Successor = sealed
			outcome = RefreshRotated
			return json.Marshal(rec)
		case now.UnixMilli()-rec.RotatedAt <= grace.Milliseconds():
			outcome = RefreshGrace
		default:
			reused = true
		}
		return old, nil
	})
	if err == nil && reused {
		err = ErrAlreadyUsed
	}
	return rec, outcome, err
}

// PutAccess implements GrantStorage.
func (s *kvStorage) PutAccess(ctx context.Context, jti string, rec accessRecord) error {
	return s.put(ctx, bucketAccess, jti, rec)
}

// GetAccess implements GrantStorage.
func (s *kvStorage) GetAccess(ctx context.Context, jti string) (accessRecord, error) {
	var rec accessRecord
	err := s.get(ctx, bucketAccess, jti, &rec)
	return rec, err
}

// RevokeAccess implements GrantStorage.
func (s *kvStorage) RevokeAccess(ctx context.Context, jti string) error {
	_, err := kvUpdate(ctx, s.kv, bucketAccess, jti, func(a *accessRecord) error {
		a.Revoked = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// --- users ---
