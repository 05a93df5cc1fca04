package mcpidp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/mcpgate/idp"
)

// IDPStorage selects the backend that keeps the server's state. Exactly one backend is set;
// without a storage block the embedded bbolt store <data_dir>/idp.db is used.
type IDPStorage struct {
	// Postgres keeps clients, codes, grants, sessions and signing keys in a PostgreSQL database
	// that several Caddy replicas share (behind any load balancer). The schema is created and
	// migrated at start. Every replica must use the same encryption key (see
	// IDP.EncryptionKey), which mcp_idp then never generates.
	Postgres *IDPPostgres `json:"postgres,omitempty"`
}

// IDPPostgres is the PostgreSQL backend.
type IDPPostgres struct {
	// DSN names the database: a postgres:// URL or libpq keyword=value pairs (sslmode and
	// pool_max_conns among them). Placeholders are expanded, so the password can stay out of the
	// config: dsn {env.MCPGATE_PG_DSN}; an expansion to nothing is refused at load. The DSN never
	// appears in a log line or an error. Required.
	DSN string `json:"dsn,omitempty"`
}

// validate requires exactly one backend and, for postgres, a dsn.
func (s *IDPStorage) validate() error {
	if s == nil {
		return nil
	}
	if s.Postgres == nil {
		return errors.New("mcp_idp: storage names no backend: storage postgres { dsn {env.MCPGATE_PG_DSN} }")
	}
	if s.Postgres.DSN == "" {
		return errors.New("mcp_idp: storage postgres needs a dsn, e.g. dsn {env.MCPGATE_PG_DSN}")
	}
	return nil
}

// postgres reports whether the PostgreSQL backend is configured.
func (m *IDP) postgres() bool { return m.Storage != nil && m.Storage.Postgres != nil }

// idpStores holds the open stores: bbolt stores by file path, PostgreSQL pools by "postgres:"
// and the SHA-256 of the DSN (never the DSN itself). bbolt locks its file, so a config reload
// (which provisions the new handler before cleaning up the old one) must share the open store;
// a pool is shared for the same reason, so a reload neither reconnects nor holds twice the
// connections. A store is closed when its last handler is cleaned up.
var idpStores = caddy.NewUsagePool()

type idpStore struct{ *idp.BoltStore }

func (s idpStore) Destruct() error { return s.Close() }

type idpPostgres struct{ *idp.PostgresStorage }

func (s idpPostgres) Destruct() error { s.Close(); return nil }

// postgresPoolKey is the UsagePool key of a DSN.
func postgresPoolKey(dsn string) string {
	h := sha256.Sum256([]byte(dsn))
	return "postgres:" + hex.EncodeToString(h[:])
}

// provisionBolt loads (or, with dev_login, creates) the encryption key and opens or shares the
// bbolt store in dataDir.
func (m *IDP) provisionBolt(repl *caddy.Replacer, dataDir string, opts *idp.Options) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("mcp_idp: data directory: %w", err)
	}
	var key []byte
	var err error
	if m.EncryptionKey != "" {
		key, err = idp.ParseEncryptionKey(repl.ReplaceAll(m.EncryptionKey, ""))
	} else {
		key, err = idp.LoadOrCreateEncryptionKey(dataDir, m.DevLogin)
	}
	if err != nil {
		return fmt.Errorf("mcp_idp: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dataDir, "idp.db"))
	if err != nil {
		return fmt.Errorf("mcp_idp: %w", err)
	}
	v, _, err := idpStores.LoadOrNew(path, func() (caddy.Destructor, error) {
		s, err := idp.OpenBoltStore(path)
		if err != nil {
			return nil, err
		}
		return idpStore{s}, nil
	})
	if err != nil {
		return fmt.Errorf("mcp_idp: open store: %w", err)
	}
	m.storeKey = path
	opts.Store, opts.EncryptionKey = v.(idpStore).BoltStore, key
	return nil
}

// provisionPostgres loads the encryption key, which it never generates (every replica must
// hold the same one), and opens or shares the pool for the DSN.
func (m *IDP) provisionPostgres(ctx caddy.Context, repl *caddy.Replacer, dataDir string, opts *idp.Options) error {
	dsn := repl.ReplaceAll(m.Storage.Postgres.DSN, "")
	if dsn == "" {
		return errors.New("mcp_idp: storage postgres: dsn expands to nothing (is its environment variable set?)")
	}
	key, err := m.replicaKey(repl, dataDir)
	if err != nil {
		return err
	}
	poolKey := postgresPoolKey(dsn)
	v, _, err := idpStores.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		s, err := idp.OpenPostgresStorage(ctx, dsn, idp.PostgresOptions{})
		if err != nil {
			return nil, err
		}
		return idpPostgres{s}, nil
	})
	if err != nil {
		// OpenPostgresStorage's errors name neither the DSN nor its password or user.
		return fmt.Errorf("mcp_idp: storage postgres: %w", err)
	}
	m.storeKey = poolKey
	opts.Storage, opts.EncryptionKey = v.(idpPostgres).PostgresStorage, key
	return nil
}

// replicaKey returns the encryption key for shared storage: encryption_key, else
// MCPGATE_IDP_KEY, else an existing <data_dir>/idp.key. Generating one, as bbolt does with
// dev_login, would give each replica its own key: none could read the signing keys, upstream
// tokens or login forms of another.
func (m *IDP) replicaKey(repl *caddy.Replacer, dataDir string) ([]byte, error) {
	if m.EncryptionKey != "" {
		v := repl.ReplaceAll(m.EncryptionKey, "")
		if v == "" {
			return nil, errors.New("mcp_idp: encryption_key expands to nothing (is its environment variable set?)")
		}
		key, err := idp.ParseEncryptionKey(v)
		if err != nil {
			return nil, fmt.Errorf("mcp_idp: %w", err)
		}
		return key, nil
	}
	path := filepath.Join(dataDir, "idp.key")
	if os.Getenv(idp.EncryptionKeyEnv) == "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("mcp_idp: storage postgres needs the same encryption key on every replica, so none is generated: "+
				"set encryption_key (e.g. {env.%s}), the %s environment variable, or %s, on every replica",
				idp.EncryptionKeyEnv, idp.EncryptionKeyEnv, path)
		}
	}
	key, err := idp.LoadOrCreateEncryptionKey(dataDir, false)
	if err != nil {
		return nil, fmt.Errorf("mcp_idp: %w", err)
	}
	return key, nil
}
