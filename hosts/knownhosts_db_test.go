package hosts

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
	"golang.org/x/crypto/ssh"
)

func TestKnownHostsStore(t *testing.T) {
	ctx := context.Background()
	newKey := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherType, err := ssh.NewPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, store remote.KnownHosts) {
		a, b := newKey(), newKey()
		const hp = "db1.example.com:22"
		if keys, err := store.Lookup(ctx, hp); err != nil || len(keys) != 0 {
			t.Fatalf("empty store: %v %v", keys, err)
		}
		if err := store.Record(ctx, hp, a); err != nil {
			t.Fatal(err)
		}
		if err := store.Record(ctx, hp, a); err != nil {
			t.Errorf("recording the same key again: %v", err)
		}
		if err := store.Record(ctx, hp, b); !errors.Is(err, remote.ErrHostKey) {
			t.Errorf("recording a different key of the same type: %v", err)
		}
		if err := store.Record(ctx, hp, otherType); err != nil {
			t.Errorf("recording a key of another type: %v", err)
		}
		if err := store.Record(ctx, "db2.example.com:22", b); err != nil {
			t.Errorf("another host: %v", err)
		}
		keys, err := store.Lookup(ctx, hp)
		if err != nil || len(keys) != 2 {
			t.Fatalf("lookup: %v %v", keys, err)
		}
		if !slices.ContainsFunc(keys, func(k ssh.PublicKey) bool { return remote.CheckSameKey("", k, a) == nil }) ||
			!slices.ContainsFunc(keys, func(k ssh.PublicKey) bool { return remote.CheckSameKey("", k, otherType) == nil }) {
			t.Errorf("lookup returned other keys")
		}

		// Concurrent first sightings of one host agree, or one of them fails.
		const racers = 8
		key := newKey()
		var wg sync.WaitGroup
		errs := make(chan error, racers)
		for range racers {
			wg.Go(func() { errs <- store.Record(ctx, "db3.example.com:22", key) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent record of one key: %v", err)
			}
		}
	}
	t.Run("memory", func(t *testing.T) { check(t, remote.NewMemoryKnownHosts()) })
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		store := NewDBKnownHosts(db)
		check(t, store)
		if err := store.Forget(ctx, "db1.example.com:22"); err != nil {
			t.Fatal(err)
		}
		if keys, err := store.Lookup(ctx, "db1.example.com:22"); err != nil || len(keys) != 0 {
			t.Errorf("after forget: %v %v", keys, err)
		}
	})
}

func TestTargetOf(t *testing.T) {
	c := &Cluster{Name: "prod", SSHUser: "cmon", SSHKeyFile: "/etc/cmon/id", SSHPort: 2222}
	got := TargetOf(c, Host{Hostname: "db1", Port: 3306})
	want := remote.Target{Host: "db1", Port: 2222, User: "cmon", KeyFile: "/etc/cmon/id", Cluster: "prod"}
	if !reflect.DeepEqual(got, want) || got.Addr() != "db1:2222" {
		t.Errorf("TargetOf = %+v", got)
	}
	if a := (remote.Target{Host: "DB1.Example.com"}).Addr(); a != "db1.example.com:22" {
		t.Errorf("default port and case: %s", a)
	}
	if a := (remote.Target{Host: "::1", Port: 22}).Addr(); a != "[::1]:22" {
		t.Errorf("IPv6: %s", a)
	}
}
