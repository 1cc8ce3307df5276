package hosts

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/sql"
)

// DBKnownHosts keeps host keys in the database's host_keys table, so that
// every controller sharing the database trusts the same keys.
type DBKnownHosts struct {
	db *sql.DB
}

var _ remote.KnownHosts = (*DBKnownHosts)(nil)

// NewDBKnownHosts returns a store on a migrated database.
func NewDBKnownHosts(db *sql.DB) *DBKnownHosts { return &DBKnownHosts{db: db} }

func (s *DBKnownHosts) Lookup(ctx context.Context, hostport string) ([]ssh.PublicKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT public_key FROM host_keys WHERE host_port = ? ORDER BY key_type", hostport)
	if err != nil {
		return nil, fmt.Errorf("look up host keys of %s: %w", hostport, err)
	}
	defer rows.Close()
	var keys []ssh.PublicKey
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			return nil, fmt.Errorf("look up host keys of %s: %w", hostport, err)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("host key of %s on record is unreadable: %w", hostport, err)
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up host keys of %s: %w", hostport, err)
	}
	return keys, nil
}

func (s *DBKnownHosts) Record(ctx context.Context, hostport string, key ssh.PublicKey) error {
	if err := s.compare(ctx, hostport, key); !errors.Is(err, errNotOnRecord) {
		return err
	}
	text := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	_, err := s.db.ExecContext(ctx, "INSERT INTO host_keys (host_port, key_type, public_key, fingerprint, created) VALUES (?, ?, ?, ?, ?)",
		hostport, key.Type(), text, ssh.FingerprintSHA256(key), sql.Millis(time.Now()))
	if sql.IsUniqueViolation(err) {
		// Another connection (or controller) learned this host at the same
		// moment: what counts is whether it saw the same key.
		if err := s.compare(ctx, hostport, key); !errors.Is(err, errNotOnRecord) {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("record host key of %s: %w", hostport, err)
	}
	return nil
}

var errNotOnRecord = errors.New("no key of this type on record")

// compare checks key against the key of its type on record: nil when equal,
// errNotOnRecord when there is none, a mismatch error otherwise.
func (s *DBKnownHosts) compare(ctx context.Context, hostport string, key ssh.PublicKey) error {
	var text string
	err := s.db.QueryRowContext(ctx, "SELECT public_key FROM host_keys WHERE host_port = ? AND key_type = ?", hostport, key.Type()).Scan(&text)
	if errors.Is(err, stdsql.ErrNoRows) {
		return errNotOnRecord
	}
	if err != nil {
		return fmt.Errorf("look up host key of %s: %w", hostport, err)
	}
	old, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return fmt.Errorf("host key of %s on record is unreadable: %w", hostport, err)
	}
	return remote.CheckSameKey(hostport, key, old)
}

// Forget removes every key of hostport, for an operator who has checked that
// a node really was reinstalled; the next registration learns its new key.
func (s *DBKnownHosts) Forget(ctx context.Context, hostport string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM host_keys WHERE host_port = ?", hostport); err != nil {
		return fmt.Errorf("forget host keys of %s: %w", hostport, err)
	}
	return nil
}
