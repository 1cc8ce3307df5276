package integration

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// jar is a curl cookie jar file in the test's temporary directory.
func jar(t *testing.T) string { return filepath.Join(t.TempDir(), "cookies.jar") }

// login runs authenticateWithPassword as the protocol document shows it, saving the cookie.
func (c *controller) login(t *testing.T, user, password, cookies string) curlResult {
	t.Helper()
	return c.curl(t, "auth", fmt.Sprintf(`{"operation":"authenticateWithPassword","user_name":%q,"password":%q}`, user, password), "-c", cookies)
}

// createUser makes a user with a password as admin, inline-authenticated.
func (c *controller) createUser(t *testing.T, name, password string, groups ...string) {
	t.Helper()
	var gs []string
	for _, g := range groups {
		gs = append(gs, fmt.Sprintf(`{"group_name":%q}`, g))
	}
	mustOk(t, c.curl(t, "users", fmt.Sprintf(`{"operation":"createUser","create_group":true,"new_password":%q,
		"user":{"class_name":"CmonUser","user_name":%q,"first_name":"Test","groups":[%s]},
		"authenticate":{"username":"admin","password":%q}}`, password, name, strings.Join(gs, ","), adminPassword)))
}

func TestSeedSessionFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		c.createUser(t, "readeruser", "s3cr3tP455", "readers")
		cookies := jar(t)
		r := mustOk(t, c.login(t, "readeruser", "s3cr3tP455", cookies))
		if r.Reply["is_superuser"] != false || r.Reply["user"].(map[string]any)["user_name"] != "readeruser" {
			t.Fatalf("login reply: %s", r.Raw)
		}
		if !strings.Contains(r.Header, "Set-Cookie: cmon-sid=") || !strings.Contains(r.Header, "Secure") ||
			!strings.Contains(r.Header, "HttpOnly") || !strings.Contains(r.Header, "SameSite=Strict") || !strings.Contains(r.Header, "Path=/") {
			t.Fatalf("session cookie attributes: %s", r.Header)
		}
		r = mustOk(t, c.curl(t, "clusters", `{"operation":"getallclusterinfo"}`, "-b", cookies))
		if r.Reply["request_user_id"] == nil {
			t.Fatalf("no request_user_id: %s", r.Raw)
		}
		if dm, _ := r.Reply["debug_messages"].([]any); len(dm) != 1 || dm[0] != "RPC V2 authenticated user is 'readeruser'." {
			t.Fatalf("debug_messages: %s", r.Raw)
		}
		// A second login from the same client issues a new session id and ends the old one.
		old := copyFile(t, cookies)
		mustOk(t, c.curl(t, "auth", `{"operation":"authenticateWithPassword","user_name":"readeruser","password":"s3cr3tP455"}`,
			"-b", cookies, "-c", cookies))
		if cookieValue(t, old) == cookieValue(t, cookies) {
			t.Fatal("login reused the session id")
		}
		if r := c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", old); r.Status() != "AuthRequired" {
			t.Fatalf("session replaced by a new login still works: %s", r.Raw)
		}
	})
}

func TestInlineAuthenticate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		c.createUser(t, "readeruser", "s3cr3tP455")
		body := `{"operation": "getAllClusterInfo", "authenticate": {"password": "s3cr3tP455","username": "readeruser"}}`
		for i := 0; i < 3; i++ {
			r := mustOk(t, c.curl(t, "clusters", body))
			if dm, _ := r.Reply["debug_messages"].([]any); len(dm) != 1 || dm[0] != "RPC V2 authenticated user is 'readeruser'." {
				t.Fatalf("debug_messages: %s", r.Raw)
			}
			if strings.Contains(r.Header, "Set-Cookie") {
				t.Fatalf("inline authentication created a session: %s", r.Header)
			}
		}
		r := c.curl(t, "clusters", `{"operation":"getAllClusterInfo","authenticate":{"user_name":"readeruser","password":"nope"}}`)
		if r.Status() != "AccessDenied" || r.Reply["error_string"] != "Username or password is incorrect." {
			t.Fatalf("wrong inline password: %s", r.Raw)
		}
	})
}

func TestKeyLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		c.createUser(t, "pipas", "pw-pipas-1")
		dir := t.TempDir()
		key, pub := filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
		run(t, "openssl", "genrsa", "-out", key, "2048")
		run(t, "openssl", "rsa", "-in", key, "-pubout", "-out", pub)
		pubPEM, err := os.ReadFile(pub)
		if err != nil {
			t.Fatal(err)
		}
		cookies := jar(t)
		mustOk(t, c.login(t, "pipas", "pw-pipas-1", cookies))
		mustOk(t, c.curl(t, "users", fmt.Sprintf(`{"operation":"addKey","public_key":{"name":"laptop","key":%q}}`, pubPEM), "-b", cookies))
		keys := mustOk(t, c.curl(t, "users", `{"operation":"getKeys"}`, "-b", cookies))
		if keys.Reply["total"] != float64(1) {
			t.Fatalf("getKeys: %s", keys.Raw)
		}

		keyJar := jar(t)
		ch := mustOk(t, c.curl(t, "auth", `{"operation":"authenticate","username":"pipas"}`, "-c", keyJar))
		challenge, _ := ch.Reply["challenge"].(string)
		if challenge == "" || ch.Reply["user_name"] != "pipas" {
			t.Fatalf("challenge reply: %s", ch.Raw)
		}
		sig := sign(t, key, challenge)
		r := mustOk(t, c.curl(t, "auth", fmt.Sprintf(`{"operation":"authenticateResponse","signature":%q}`, sig), "-b", keyJar, "-c", keyJar))
		if r.Reply["user"].(map[string]any)["user_name"] != "pipas" {
			t.Fatalf("key login reply: %s", r.Raw)
		}
		who := mustOk(t, c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", keyJar))
		if who.Reply["user"].(map[string]any)["user_name"] != "pipas" {
			t.Fatalf("whoAmI after key login: %s", who.Raw)
		}

		// The challenge is single-use, and a signature by another key fails.
		ch = mustOk(t, c.curl(t, "auth", `{"operation":"authenticate","user_name":"pipas"}`, "-c", keyJar))
		other := filepath.Join(dir, "other.pem")
		run(t, "openssl", "genrsa", "-out", other, "2048")
		bad := c.curl(t, "auth", fmt.Sprintf(`{"operation":"response","signature":%q}`, sign(t, other, ch.Reply["challenge"].(string))), "-b", keyJar, "-c", keyJar)
		if bad.Status() != "AccessDenied" {
			t.Fatalf("foreign key signature: %s", bad.Raw)
		}
		replay := c.curl(t, "auth", fmt.Sprintf(`{"operation":"response","signature":%q}`, sign(t, key, ch.Reply["challenge"].(string))), "-b", keyJar)
		if replay.Status() == "Ok" {
			t.Fatalf("a used challenge was accepted again: %s", replay.Raw)
		}
	})
}

func TestLogoutAndDisable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		c.createUser(t, "bob", "bob-password")
		cookies := jar(t)
		mustOk(t, c.login(t, "bob", "bob-password", cookies))
		old := copyFile(t, cookies)
		mustOk(t, c.curl(t, "auth", `{"operation":"logout"}`, "-b", cookies, "-c", cookies))
		if r := c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", old); r.Status() != "AuthRequired" {
			t.Fatalf("logged-out cookie still works: %s", r.Raw)
		}
		if !strings.Contains(c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", old).Header, "401") {
			t.Fatal("AuthRequired should answer HTTP 401")
		}

		mustOk(t, c.login(t, "bob", "bob-password", cookies))
		mustOk(t, c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", cookies))
		admin := jar(t)
		mustOk(t, c.login(t, "admin", adminPassword, admin))
		mustOk(t, c.curl(t, "users", `{"operation":"disable","user":{"user_name":"bob"}}`, "-b", admin))
		if r := c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", cookies); r.Status() != "AuthRequired" {
			t.Fatalf("disabled user's session still works: %s", r.Raw)
		}
		if r := c.login(t, "bob", "bob-password", jar(t)); r.Status() != "AccessDenied" {
			t.Fatalf("disabled user logged in: %s", r.Raw)
		}
		mustOk(t, c.curl(t, "users", `{"operation":"enable","user":{"user_name":"bob"}}`, "-b", admin))
		mustOk(t, c.login(t, "bob", "bob-password", jar(t)))
	})
}

func TestWrongPasswordAndThrottling(t *testing.T) {
	c := startController(t, controllerOptions{env: []string{"CMON_LOGIN_MAX_FAILURES=4", "CMON_LOGIN_LOCKOUT=10m"}})
	c.createUser(t, "carol", "carol-password")
	for _, tc := range []struct{ name, user, password string }{
		{name: "wrong password", user: "carol", password: "nope"},
		{name: "unknown user", user: "nobody-here", password: "nope"},
	} {
		r := c.login(t, tc.user, tc.password, jar(t))
		if r.Status() != "AccessDenied" || r.Reply["error_string"] != "Username or password is incorrect." {
			t.Fatalf("%s: want AccessDenied naming neither part: %s", tc.name, r.Raw)
		}
	}
	for i := 0; i < 3; i++ {
		c.login(t, "carol", "still-wrong", jar(t))
	}
	r := c.login(t, "carol", "carol-password", jar(t))
	if r.Status() != "AccessDenied" || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), "Too many failed login attempts") {
		t.Fatalf("right password during a lockout: %s", r.Raw)
	}
	admin := jar(t)
	mustOk(t, c.login(t, "admin", adminPassword, admin))
	users := mustOk(t, c.curl(t, "users", `{"operation":"getUsers"}`, "-b", admin))
	for _, u := range users.Reply["users"].([]any) {
		u := u.(map[string]any)
		if u["user_name"] == "carol" && (u["n_failed_logins"].(float64) < 4 || u["last_failed_login"] == "") {
			t.Fatalf("failed logins not recorded: %v", u)
		}
	}
}

func TestSessionSharedByControllers(t *testing.T) {
	dsn := backend{name: "mariadb", dsn: sharedDSN(t)}
	a := startController(t, controllerOptions{backend: dsn})
	b := startController(t, controllerOptions{backend: dsn})
	cookies := jar(t)
	mustOk(t, a.login(t, "admin", adminPassword, cookies))
	r := mustOk(t, b.curl(t, "users", `{"operation":"whoAmI"}`, "-b", cookies))
	if r.Reply["controller_id"] != mustOk(t, a.curl(t, "controller", `{"operation":"ping"}`)).Reply["controller_id"] {
		t.Fatal("controllers sharing a database should share a controller_id")
	}
	mustOk(t, b.curl(t, "auth", `{"operation":"logout"}`, "-b", cookies))
	if r := a.curl(t, "users", `{"operation":"whoAmI"}`, "-b", cookies); r.Status() != "AuthRequired" {
		t.Fatalf("logout on one controller did not end the session on the other: %s", r.Raw)
	}
}

func TestAuthBadInput(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := jar(t)
	mustOk(t, c.login(t, "admin", adminPassword, admin))
	tests := []struct {
		name, module, body, want string
	}{
		{name: "missing user name", module: "auth", body: `{"operation":"authenticateWithPassword","password":"x"}`, want: "InvalidRequest"},
		{name: "empty password", module: "auth", body: `{"operation":"authenticateWithPassword","user_name":"admin","password":""}`, want: "InvalidRequest"},
		{name: "password of wrong type", module: "auth", body: `{"operation":"authenticateWithPassword","user_name":"admin","password":12}`, want: "InvalidRequest"},
		{name: "control character in name", module: "auth", body: `{"operation":"authenticateWithPassword","user_name":"ad\u0007min","password":"x"}`, want: "InvalidRequest"},
		{name: "huge password", module: "auth", body: `{"operation":"authenticateWithPassword","user_name":"admin","password":"` + strings.Repeat("p", 900_000) + `"}`, want: "InvalidRequest"},
		{name: "inline object of wrong type", module: "users", body: `{"operation":"whoAmI","authenticate":"admin"}`, want: "InvalidRequest"},
		{name: "response without a challenge", module: "auth", body: `{"operation":"authenticateResponse","signature":"AAAA"}`, want: "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.curl(t, tt.module, tt.body)
			if r.Status() != tt.want || (tt.want == "InvalidRequest" && r.Reply["error_string"] == "") {
				t.Fatalf("want %s with an error_string: %s", tt.want, r.Raw)
			}
		})
	}
	// A user with a malformed key is not created at all.
	r := c.curl(t, "users", `{"operation":"createUser","new_password":"pw-x-1","user":{"user_name":"halfmade",
		"public_keys":[{"name":"k","key":"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"}]}}`, "-b", admin)
	if r.Status() != "InvalidRequest" {
		t.Fatalf("malformed key: %s", r.Raw)
	}
	if r := c.login(t, "halfmade", "pw-x-1", jar(t)); r.Status() != "AccessDenied" {
		t.Fatalf("user with a refused key exists: %s", r.Raw)
	}
	if strings.Contains(c.Log(), adminPassword) {
		t.Fatal("a password appears in the controller log")
	}
}

func TestUsersAndGroupsManagement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		admin := jar(t)
		mustOk(t, c.login(t, "admin", adminPassword, admin))
		c.createUser(t, "sisko", "pw-sisko-1", "ds9")
		mustOk(t, c.curl(t, "users", `{"operation":"createGroup","group":{"group_name":"tmpgroup"}}`, "-b", admin))
		r := mustOk(t, c.curl(t, "users", `{"operation":"addToGroup","group_name":"tmpgroup","user":{"user_name":"sisko"}}`, "-b", admin))
		if len(r.Reply["user"].(map[string]any)["groups"].([]any)) != 2 {
			t.Fatalf("addToGroup: %s", r.Raw)
		}
		if r := c.curl(t, "users", `{"operation":"addToGroup","group_name":"tmpgroup","user":{"user_name":"sisko"}}`, "-b", admin); r.Reply["error_string"] != "User 'sisko' is already a member of group 'tmpgroup'." {
			t.Fatalf("second addToGroup: %s", r.Raw)
		}
		if r := c.curl(t, "users", `{"operation":"deleteGroup","group":{"group_name":"tmpgroup"}}`, "-b", admin); r.Reply["error_string"] != "Group 'tmpgroup' can not be deleted for it has 1 member(s)." {
			t.Fatalf("deleteGroup with members: %s", r.Raw)
		}
		mustOk(t, c.curl(t, "users", `{"operation":"removeFromGroup","group_name":"tmpgroup","user":{"user_name":"sisko"}}`, "-b", admin))
		mustOk(t, c.curl(t, "users", `{"operation":"deleteGroup","group":{"group_name":"tmpgroup"}}`, "-b", admin))

		sisko := jar(t)
		mustOk(t, c.login(t, "sisko", "pw-sisko-1", sisko))
		for _, body := range []string{
			`{"operation":"addToGroup","group_name":"admins","user":{"user_name":"sisko"}}`,
			`{"operation":"createUser","new_password":"x1","user":{"user_name":"intruder"}}`,
			`{"operation":"disable","user":{"user_name":"admin"}}`,
			`{"operation":"changePassword","new_password":"owned-1","user":{"user_name":"admin"}}`,
		} {
			if r := c.curl(t, "users", body, "-b", sisko); r.Status() != "AccessDenied" {
				t.Fatalf("non-superuser allowed %s: %s", body, r.Raw)
			}
		}
		mustOk(t, c.curl(t, "users", `{"operation":"setUser","user":{"user_name":"sisko","email_address":"sisko@ds9.com","timezone":"Europe/Berlin"}}`, "-b", sisko))
		if r := c.curl(t, "users", `{"operation":"changePassword","new_password":"pw-sisko-2","old_password":"wrong"}`, "-b", sisko); r.Status() != "AccessDenied" {
			t.Fatalf("changePassword with a wrong old password: %s", r.Raw)
		}
		mustOk(t, c.curl(t, "users", `{"operation":"changePassword","new_password":"pw-sisko-2","old_password":"pw-sisko-1"}`, "-b", sisko))
		mustOk(t, c.login(t, "sisko", "pw-sisko-2", jar(t)))
		if r := c.login(t, "sisko", "pw-sisko-1", jar(t)); r.Status() != "AccessDenied" {
			t.Fatalf("old password still works: %s", r.Raw)
		}
		if r := c.curl(t, "users", `{"operation":"disable","user":{"user_name":"admin"}}`, "-b", admin); r.Status() != "InvalidRequest" {
			t.Fatalf("disabling the last admin: %s", r.Raw)
		}
		mustOk(t, c.curl(t, "users", `{"operation":"deleteUser","user":{"user_name":"sisko"}}`, "-b", admin))
		if r := c.curl(t, "users", `{"operation":"whoAmI"}`, "-b", sisko); r.Status() != "AuthRequired" {
			t.Fatalf("deleted user's session: %s", r.Raw)
		}
	})
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return string(out)
}

// sign signs challenge with openssl as a client would: RSA PKCS#1 v1.5 over SHA-256, base64.
func sign(t *testing.T, keyFile, challenge string) string {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha256", "-sign", keyFile)
	cmd.Stdin = strings.NewReader(challenge)
	sig, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl dgst -sign: %v", err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func copyFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func cookieValue(t *testing.T, jarFile string) string {
	t.Helper()
	b, err := os.ReadFile(jarFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, "\t"); len(f) == 7 && f[5] == "cmon-sid" {
			return f[6]
		}
	}
	t.Fatalf("no cmon-sid in %s", b)
	return ""
}
