package rbac

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParsePublicKeyFormats(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkix, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ecPKIX, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	sshPub, _ := ssh.NewPublicKey(&key.PublicKey)
	tests := []struct {
		name string
		text string
		ok   bool
	}{
		{name: "pkcs1 pem", text: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})), ok: true},
		{name: "pkix pem", text: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})), ok: true},
		{name: "openssh", text: string(ssh.MarshalAuthorizedKey(sshPub)), ok: true},
		{name: "too small", text: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&small.PublicKey)}))},
		{name: "not rsa", text: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPKIX}))},
		{name: "garbage", text: "hello"},
		{name: "bad pem body", text: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
		{name: "private key", text: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))},
	}
	var fingerprints []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePublicKey(tt.text)
			if (err == nil) != tt.ok {
				t.Fatalf("ParsePublicKey: %v, want ok=%v", err, tt.ok)
			}
			if tt.ok {
				fingerprints = append(fingerprints, k.Fingerprint)
			}
		})
	}
	for _, f := range fingerprints {
		if f != fingerprints[0] {
			t.Fatal("one key in three formats gave different fingerprints")
		}
	}
}

func TestVerifySignature(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, err := ParsePublicKey(string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("challenge-1"))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	good := base64.StdEncoding.EncodeToString(sig)
	tests := []struct {
		name, challenge, sig string
		want                 bool
	}{
		{name: "good", challenge: "challenge-1", sig: good, want: true},
		{name: "other challenge", challenge: "challenge-2", sig: good},
		{name: "not base64", challenge: "challenge-1", sig: "!!!"},
		{name: "truncated", challenge: "challenge-1", sig: good[:40]},
		{name: "empty", challenge: "challenge-1", sig: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pub.Verify(tt.challenge, tt.sig); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}
