package idp

// PostgresStorage's dynamically registered clients.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// GetClient implements ClientStorage.
func (s *PostgresStorage) GetClient(ctx context.Context, id string) (clientRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	var rec clientRecord
	err := s.getJSON(ctx, s.pool, "mcpgate_clients", &rec, "SELECT rec FROM mcpgate_clients WHERE client_id = $1", id)
	return rec, err
}

// errClientExists: CreateClient with the id of a stored client (ids are random: a caller's bug).
var errClientExists = errors.New("idp: a client with this id exists")

// CreateClient implements ClientStorage. One statement takes a slot from the clients counter
// (its row lock orders concurrent registrations; the condition n < max is checked again under
// it) and inserts the client; no slot, no row.
func (s *PostgresStorage) CreateClient(ctx context.Context, rec clientRecord, maxClients int) error {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if !pgStorable([]any{rec.ClientID}) {
		return errUnstorable
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `
WITH slot AS (
	UPDATE mcpgate_counters SET n = n + 1 WHERE name = 'clients' AND n < $3 RETURNING n
)
INSERT INTO mcpgate_clients (client_id, rec) SELECT $1, $2 FROM slot`, rec.ClientID, b, maxClients)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: the whole statement is undone
		return fmt.Errorf("%w: %s", errClientExists, rec.ClientID)
	}
	if err != nil {
		return s.fault(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLimitReached
	}
	return nil
}

// UpdateClient implements ClientStorage.
func (s *PostgresStorage) UpdateClient(ctx context.Context, id string, fn func(*clientRecord) error) (clientRecord, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	return pgUpdate(ctx, s, "mcpgate_clients", "client_id", id, nil, fn)
}

// DeleteClient implements ClientStorage. The client goes and its slot is given back in one
// statement, so the counter never drifts.
func (s *PostgresStorage) DeleteClient(ctx context.Context, id string) (bool, error) {
	ctx, cancel := s.bound(ctx, 1)
	defer cancel()
	if !pgStorable([]any{id}) {
		return false, nil
	}
	var deleted bool
	err := s.pool.QueryRow(ctx, `
WITH gone AS (
	DELETE FROM mcpgate_clients WHERE client_id = $1 RETURNING 1
), slot AS (
	UPDATE mcpgate_counters SET n = GREATEST(n - 1, 0) WHERE name = 'clients' AND EXISTS (SELECT 1 FROM gone)
)
SELECT EXISTS (SELECT 1 FROM gone)`, id).Scan(&deleted)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, s.fault(err)
	}
	return deleted, nil
}
