package rbac

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cmon-dev/cmon/sql"
)

// MinRSABits is the smallest RSA key accepted for key login.
const MinRSABits = 2048

// maxKeyText bounds a public key's text; a 16384-bit key in PEM is under 3 KiB.
const maxKeyText = 16 << 10

// PublicKey is a user's registered login key.
type PublicKey struct {
	ID          int64
	Name        string
	Text        string // as the user gave it
	Fingerprint string // hex SHA-256 of the key's DER
	rsa         *rsa.PublicKey
}

// ParsePublicKey reads an RSA public key in any form clients send: PEM "RSA
// PUBLIC KEY" (PKCS#1), PEM "PUBLIC KEY" (PKIX) or an OpenSSH authorized_keys line.
func ParsePublicKey(text string) (*PublicKey, error) {
	if len(text) > maxKeyText {
		return nil, errors.New("public key is too long")
	}
	pub, err := parseRSA(strings.TrimSpace(text))
	if err != nil {
		return nil, err
	}
	if pub.N.BitLen() < MinRSABits {
		return nil, fmt.Errorf("RSA key has %d bits; at least %d are needed", pub.N.BitLen(), MinRSABits)
	}
	der := x509.MarshalPKCS1PublicKey(pub)
	sum := sha256.Sum256(der)
	return &PublicKey{Text: text, Fingerprint: hex.EncodeToString(sum[:]), rsa: pub}, nil
}

func parseRSA(text string) (*rsa.PublicKey, error) {
	if block, _ := pem.Decode([]byte(text)); block != nil {
		switch block.Type {
		case "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("malformed RSA public key: %w", err)
			}
			return pub, nil
		case "PUBLIC KEY":
			any, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("malformed public key: %w", err)
			}
			pub, ok := any.(*rsa.PublicKey)
			if !ok {
				return nil, errors.New("only RSA public keys are supported for key login")
			}
			return pub, nil
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
		}
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, errors.New("not a PEM or OpenSSH public key")
	}
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return nil, errors.New("unsupported OpenSSH key")
	}
	pub, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("only RSA public keys are supported for key login")
	}
	return pub, nil
}

// Verify checks a base64 RSA PKCS#1 v1.5 SHA-256 signature of challenge.
func (k *PublicKey) Verify(challenge, signatureB64 string) bool {
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signatureB64))
	if err != nil || k.rsa == nil || len(sig) != k.rsa.Size() {
		return false
	}
	digest := sha256.Sum256([]byte(challenge))
	return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig) == nil
}

// AddKey registers a parsed key for a user under a name.
// KeyError is a key, or a key's name, that the store refuses; Msg is lower
// case, for the client.
type KeyError struct{ Msg string }

func (e *KeyError) Error() string { return "invalid public key: " + e.Msg }

func (s *Store) AddKey(ctx context.Context, userID int64, name string, key *PublicKey) error {
	key.Name = name
	return insertKey(ctx, s.db, userID, key, s.now())
}

func insertKey(ctx context.Context, db sql.Execer, userID int64, key *PublicKey, now time.Time) error {
	if len(key.Name) > 255 {
		return &KeyError{Msg: "the key name is longer than 255 characters"}
	}
	_, err := db.ExecContext(ctx, `INSERT INTO user_keys (user_id, name, public_key, fingerprint, created)
		VALUES (?, ?, ?, ?, ?)`, userID, key.Name, key.Text, key.Fingerprint, sql.Millis(now))
	if sql.IsUniqueViolation(err) {
		return fmt.Errorf("key: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	return nil
}

// Keys lists a user's keys in the order they were added.
func (s *Store) Keys(ctx context.Context, userID int64) ([]*PublicKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT key_id, name, public_key FROM user_keys WHERE user_id = ? ORDER BY key_id", userID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []*PublicKey
	for rows.Next() {
		var id int64
		var name, text string
		if err := rows.Scan(&id, &name, &text); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		k, err := ParsePublicKey(text)
		if err != nil {
			continue // stored keys were parsed on the way in; a key that no longer parses cannot log in
		}
		k.ID, k.Name = id, name
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteKey removes a user's key named name, or whose text is text.
func (s *Store) DeleteKey(ctx context.Context, userID int64, name, text string) error {
	var res interface{ RowsAffected() (int64, error) }
	var err error
	if text != "" {
		k, perr := ParsePublicKey(text)
		if perr != nil {
			return &KeyError{Msg: perr.Error()}
		}
		res, err = s.db.ExecContext(ctx, "DELETE FROM user_keys WHERE user_id = ? AND fingerprint = ?", userID, k.Fingerprint)
	} else {
		res, err = s.db.ExecContext(ctx, "DELETE FROM user_keys WHERE user_id = ? AND name = ?", userID, name)
	}
	if err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key: %w", ErrNotFound)
	}
	return nil
}
