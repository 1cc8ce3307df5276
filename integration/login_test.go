package integration

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginClient posts logins from one loopback address, many at once.
func loginClient(from string) *http.Client {
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
		MaxIdleConnsPerHost: 256,
	}}
}

// parallelLogins sends the logins at once and returns each reply's status.
func parallelLogins(t *testing.T, c *controller, from string, passwords []string, user string) []string {
	t.Helper()
	client := loginClient(from)
	statuses := make([]string, len(passwords))
	var wg sync.WaitGroup
	for i, pw := range passwords {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]string{"operation": "authenticateWithPassword", "user_name": user, "password": pw})
			resp, err := client.Post(c.URL+"/v2/auth", "application/json", bytes.NewReader(body))
			if err != nil {
				statuses[i] = "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			var reply map[string]any
			b, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(b, &reply) != nil {
				statuses[i] = "not JSON"
				return
			}
			statuses[i] = fmt.Sprint(reply["request_status"])
			if statuses[i] == "AccessDenied" && reply["error_string"] != "Username or password is incorrect." {
				statuses[i] = "Throttled"
			}
		})
	}
	wg.Wait()
	return statuses
}

func count(statuses []string, want string) int {
	n := 0
	for _, s := range statuses {
		if s == want {
			n++
		}
	}
	return n
}

// TestParallelWrongPasswordsCannotSlipPast: attempts are counted
// before the password is checked, so 60 at once check at most the limit, and
// the right password after them is refused.
func TestParallelWrongPasswordsCannotSlipPast(t *testing.T) {
	c := startController(t, controllerOptions{env: []string{"CMON_LOGIN_MAX_FAILURES=10"}})
	wrong := make([]string, 60)
	for i := range wrong {
		wrong[i] = fmt.Sprintf("wrong-%d", i)
	}
	statuses := parallelLogins(t, c, "127.0.0.1", wrong, "admin")
	if checked := count(statuses, "AccessDenied"); checked > 10 {
		t.Fatalf("%d wrong passwords were checked, want at most 10: %v", checked, statuses)
	}
	for _, s := range statuses {
		if s != "AccessDenied" && s != "Throttled" && s != "TryAgain" {
			t.Fatalf("a login got %s", s)
		}
	}
	if r := c.login(t, "admin", adminPassword, jar(t)); r.Status() != "AccessDenied" ||
		!strings.Contains(fmt.Sprint(r.Reply["error_string"]), "try again after") {
		t.Fatalf("the right password after 60 wrong ones: %s", r.Raw)
	}
}

// TestLockoutIsPerAddressSharedAndClearable: a lockout holds on
// every controller sharing the database, only for the address it came from,
// and an administrator's enable ends it.
func TestLockoutIsPerAddressSharedAndClearable(t *testing.T) {
	dsn := sharedDSN(t)
	env := []string{"CMON_LOGIN_MAX_FAILURES=3"}
	a := startController(t, controllerOptions{backend: backend{name: "mariadb", dsn: dsn}, env: env})
	b := startController(t, controllerOptions{backend: backend{name: "mariadb", dsn: dsn}, env: env})
	a.createUser(t, "carol", "carol-password")
	for range 3 {
		a.login(t, "carol", "wrong", jar(t))
	}
	login := func(c *controller, from string) curlResult {
		return c.curl(t, "auth", `{"operation":"authenticateWithPassword","user_name":"carol","password":"carol-password"}`,
			"--interface", from)
	}
	if r := login(b, "127.0.0.1"); r.Status() != "AccessDenied" || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), "try again after") {
		t.Fatalf("the other controller, same address: %s", r.Raw)
	}
	inline := b.curl(t, "users", `{"operation":"whoAmI","authenticate":{"username":"carol","password":"carol-password"}}`)
	if inline.Status() != "AccessDenied" {
		t.Fatalf("inline credentials from the locked address: %s", inline.Raw)
	}
	mustOk(t, login(a, "127.0.0.2")) // another address is not locked out
	admin := a.session(t, "admin", adminPassword)
	mustOk(t, admin.call(t, "users", `{"operation":"enable","user":{"user_name":"carol"}}`))
	mustOk(t, login(b, "127.0.0.1"))
}

// TestPasswordChecksAreBounded: logins beyond what the
// controller checks at once get a fast TryAgain, and the controller stays
// responsive.
func TestPasswordChecksAreBounded(t *testing.T) {
	c := startController(t, controllerOptions{env: []string{"CMON_LOGIN_MAX_FAILURES=1000"}})
	passwords := make([]string, 200)
	for i := range passwords {
		passwords[i] = adminPassword
	}
	statuses := parallelLogins(t, c, "127.0.0.3", passwords, "admin")
	if count(statuses, "TryAgain") == 0 || count(statuses, "Ok") == 0 || count(statuses, "Ok")+count(statuses, "TryAgain") != len(statuses) {
		t.Fatalf("200 logins at once: %d Ok, %d TryAgain, all: %v\n%s", count(statuses, "Ok"), count(statuses, "TryAgain"), statuses, grepLog(c.Log(), "level=ERROR"))
	}
	mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`))
}

// TestPasswordChangeEndsSessions: a password change ends every
// other session of the user, an administrator's reset all of them, and the
// loss of superuser ends that user's sessions.
func TestPasswordChangeEndsSessions(t *testing.T) {
	c := startController(t, controllerOptions{})
	c.createUser(t, "bob", "bob-password-1")
	mine, other := c.session(t, "bob", "bob-password-1"), c.session(t, "bob", "bob-password-1")
	mustOk(t, mine.call(t, "users", `{"operation":"changePassword","old_password":"bob-password-1","new_password":"bob-password-2"}`))
	mustOk(t, mine.call(t, "users", `{"operation":"whoAmI"}`))
	if r := other.call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
		t.Fatalf("another session after the user's own change: %s", r.Raw)
	}
	admin := c.session(t, "admin", adminPassword)
	mustOk(t, admin.call(t, "users", `{"operation":"changePassword","user":{"user_name":"bob"},"new_password":"bob-password-3"}`))
	if r := mine.call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
		t.Fatalf("bob's session after an admin reset: %s", r.Raw)
	}
	mustOk(t, admin.call(t, "users", `{"operation":"whoAmI"}`)) // the admin's own goes on

	c.createUser(t, "dave", "dave-password", "admins")
	dave := c.session(t, "dave", "dave-password")
	mustOk(t, admin.call(t, "users", `{"operation":"removeFromGroup","user":{"user_name":"dave"},"group_name":"admins"}`))
	if r := dave.call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
		t.Fatalf("a session opened as superuser after the privilege went: %s", r.Raw)
	}
}

// TestChallengesAreCapped: unanswered key-login challenges from
// one address are bounded, so they cannot grow the database.
func TestChallengesAreCapped(t *testing.T) {
	c := startController(t, controllerOptions{})
	statuses := map[string]int{}
	for range 25 {
		statuses[c.curl(t, "auth", `{"operation":"authenticate","user_name":"ghost"}`, "--interface", "127.0.0.4").Status()]++
	}
	if statuses["Ok"] != 20 || statuses["TryAgain"] != 5 {
		t.Fatalf("25 challenges from one address: %v, want 20 Ok and 5 TryAgain", statuses)
	}
	mustOk(t, c.curl(t, "auth", `{"operation":"authenticate","user_name":"ghost"}`, "--interface", "127.0.0.5"))
}

// TestCreateUserWithEmptyKey: clients send {"name":"No Name","key":""} for
// a user without a key.
func TestCreateUserWithEmptyKey(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	mustOk(t, admin.call(t, "users", `{"operation":"createUser","new_password":"pw-grumio-1","create_group":true,
		"user":{"class_name":"CmonUser","user_name":"grumio","groups":[{"group_name":"plebs"}],"public_keys":[{"name":"No Name","key":""}]}}`))
	keys := mustOk(t, admin.call(t, "users", `{"operation":"getKeys","user":{"user_name":"grumio"}}`))
	if keys.Reply["total"] != float64(0) {
		t.Fatalf("keys of a user created without one: %s", keys.Raw)
	}
}

// grepLog is the lines of a controller's log that contain s.
func grepLog(log, s string) string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestActiveSessionOutlivesItsIdleTime: a session in use keeps
// going past its idle time; last_seen follows the requests closely enough.
func TestActiveSessionOutlivesItsIdleTime(t *testing.T) {
	c := startController(t, controllerOptions{env: []string{"CMON_SESSION_IDLE_TIMEOUT=8s"}})
	s := c.session(t, "admin", adminPassword)
	for start := time.Now(); time.Since(start) < 12*time.Second; {
		mustOk(t, s.call(t, "users", `{"operation":"whoAmI"}`))
	}
}
