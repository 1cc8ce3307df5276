package rpc

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/sessions"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rbac/names"
)

// SessionCookie is the session cookie's name in the RPC v2 protocol.
const SessionCookie = "cmon-sid"

// isToken tells whether s has the shape of the tokens cmon issues (43
// characters of unpadded URL-safe base64); anything else in the cookie is
// refused without a lookup.
func isToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Logins checks credentials and changes passwords (rbac.Authn).
type Logins interface {
	Password(ctx context.Context, name, password, remote string) (*rbac.User, error)
	Inline(ctx context.Context, name, password, remote string) (*rbac.User, error)
	Challenge(ctx context.Context, name, remote string) (token, challenge string, err error)
	Respond(ctx context.Context, token, signature, remote string) (*rbac.User, error)
	SetPassword(ctx context.Context, u *rbac.User, password, keep string) error
}

// SessionStore keeps login sessions by token (rbac.Sessions).
type SessionStore interface {
	Create(ctx context.Context, userID int64) (string, error)
	User(ctx context.Context, token string) (*rbac.User, error)
	Delete(ctx context.Context, token string) error
	Limits() rbac.SessionLimits
}

// sessionStore is a gorilla/sessions Store whose session data lives in the
// database (rbac.Sessions): the cookie carries only the random session token.
type sessionStore struct {
	sessions SessionStore
	options  sessions.Options
}

var _ sessions.Store = (*sessionStore)(nil)

func newSessionStore(s SessionStore) *sessionStore {
	return &sessionStore{sessions: s, options: sessions.Options{
		Path:     "/",
		MaxAge:   int(s.Limits().Absolute.Seconds()),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}}
}

// Get returns the request's session, cached per request by gorilla's registry.
func (s *sessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New reads the token from the cookie; the session is new when there is none.
func (s *sessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	opts := s.options
	sess.Options = &opts
	sess.IsNew = true
	if token := sessionToken(r, name); token != "" {
		sess.ID = token
		sess.IsNew = false
	}
	return sess, nil
}

// sessionToken is the session token in the request's cookie name, "" for none.
func sessionToken(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil && isToken(c.Value) {
		return c.Value
	}
	return ""
}

// Save sets the cookie for the session's token, or with MaxAge < 0 deletes the
// session server-side and expires the cookie.
func (s *sessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.sessions.Delete(r.Context(), sess.ID); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, sess.Options))
	return nil
}

// authenticator identifies callers by inline credentials or by session cookie.
type authenticator struct {
	authn    Logins
	sessions SessionStore
	store    *sessionStore
	metrics  *Metrics // nil: not counted
}

func newAuthenticator(authn Logins, sessions SessionStore, metrics *Metrics) *authenticator {
	return &authenticator{authn: authn, sessions: sessions, store: newSessionStore(sessions), metrics: metrics}
}

// credentials are a user name (either spelling) and a password.
type credentials struct {
	UserName string `json:"user_name"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func (c credentials) name() string {
	if c.UserName != "" {
		return c.UserName
	}
	return c.Username
}

// validate refuses credentials that could never be right, before any work.
func (c credentials) validate() error {
	if err := names.Check(names.User, c.name()); err != nil {
		return InvalidRequest("Invalid user name: %s.", err)
	}
	if err := rbac.CheckPasswordInput(c.Password); err != nil {
		return InvalidRequest("Invalid password: %s.", err)
	}
	return nil
}

func (a *authenticator) Authenticate(ctx context.Context, req *Request) (*rbac.User, error) {
	if req.head.Authenticate != nil {
		var in struct {
			Authenticate credentials `json:"authenticate"`
		}
		if err := req.Decode(&in); err != nil {
			return nil, err
		}
		if err := in.Authenticate.validate(); err != nil {
			return nil, err
		}
		u, err := a.authn.Inline(ctx, in.Authenticate.name(), in.Authenticate.Password, req.RemoteIP)
		return u, loginError(err)
	}
	token := sessionToken(req.HTTP, SessionCookie)
	if token == "" {
		return nil, &Error{Status: StatusAuthRequired, Message: "Authentication required."}
	}
	u, err := a.sessions.User(ctx, token)
	if errors.Is(err, rbac.ErrNoSession) {
		return nil, &Error{Status: StatusAuthRequired, Message: "The session is expired, logged out or unknown; log in again."}
	}
	return u, err
}

// badCredentials is the error_string of a failed login, word for word the
// reference controller's (its web UI's backend shows it as it comes).
const badCredentials = "Username or password is incorrect."

// loginError maps a failed login to the protocol: a wrong name or password
// gets the reference controller's AccessDenied text, which names neither, so
// the reply never tells which of the two was wrong.
func loginError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rbac.ErrBadCredentials):
		return AccessDenied("%s", badCredentials)
	case errors.Is(err, rbac.ErrThrottled):
		var throttled *rbac.ThrottledError
		if errors.As(err, &throttled) {
			return AccessDenied("Too many failed login attempts; try again after %s (in %s).",
				jobs.FormatTime(throttled.Until), time.Until(throttled.Until).Round(time.Second))
		}
		return AccessDenied("Too many failed login attempts; try again later.")
	case errors.Is(err, rbac.ErrBusy), errors.Is(err, rbac.ErrTooManyChallenges):
		return newError(StatusTryAgain, "The controller is busy with other logins; try again in a moment.")
	default:
		return err
	}
}

// sessionToken is the session token the request's cookie carries, "" when none.
func (a *authenticator) sessionToken(req *Request) string {
	sess, _ := a.store.New(req.HTTP, SessionCookie) // read only: no need for gorilla's per-request registry
	if sess.IsNew {
		return ""
	}
	return sess.ID
}

// authOperations is the /v2/auth table.
func (a *authenticator) authOperations() []Operation {
	return []Operation{
		{Name: "authenticateWithPassword", Auth: AuthNone, Serve: anyone(func(ctx context.Context, req *Request, in *credentials) (Reply, error) {
			if err := in.validate(); err != nil {
				return nil, err
			}
			req.audit.userName = in.name()
			u, err := a.authn.Password(ctx, in.name(), in.Password, req.RemoteIP)
			a.metrics.login(err)
			if err != nil {
				return nil, loginError(err)
			}
			return a.startSession(ctx, req, u)
		})},
		{Name: "authenticate", ReadOnly: true, Auth: AuthNone, Serve: anyone(a.challenge)},
		{Name: "authenticateResponse", Auth: AuthNone, Serve: anyone(a.respond)},
		{Name: "response", Auth: AuthNone, Serve: anyone(a.respond)},
		{Name: "logout", Auth: AuthNone, Serve: anyone(a.logout)},
	}
}

// startSession logs u in: any session the client held ends, and a new token is
// issued, so a token planted before login is worth nothing after it.
func (a *authenticator) startSession(ctx context.Context, req *Request, u *rbac.User) (Reply, error) {
	sess, _ := a.store.Get(req.HTTP, SessionCookie)
	if !sess.IsNew {
		if err := a.sessions.Delete(ctx, sess.ID); err != nil {
			return nil, err
		}
	}
	token, err := a.sessions.Create(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	sess.ID = token
	if err := sess.Save(req.HTTP, req.Writer); err != nil {
		return nil, err
	}
	req.Caller = u
	return &loginReply{IsSuperuser: u.IsSuperuser(), User: renderUser(u)}, nil
}

// loginReply is a successful login's: who logged in.
type loginReply struct {
	Envelope
	IsSuperuser bool     `json:"is_superuser"`
	User        wireUser `json:"user"`
}

// challengeReply is the first step of a key login: what to sign.
type challengeReply struct {
	Envelope
	Challenge string `json:"challenge"`
	UserName  string `json:"user_name"`
}

func (a *authenticator) challenge(ctx context.Context, req *Request, in *credentials) (Reply, error) {
	if err := names.Check(names.User, in.name()); err != nil {
		return nil, InvalidRequest("Invalid user name: %s.", err)
	}
	token, challenge, err := a.authn.Challenge(ctx, in.name(), req.RemoteIP)
	if err != nil {
		return nil, loginError(err)
	}
	sess, _ := a.store.Get(req.HTTP, SessionCookie)
	sess.ID = token
	sess.Options.MaxAge = int(rbac.ChallengeTTL.Seconds())
	if err := sess.Save(req.HTTP, req.Writer); err != nil {
		return nil, err
	}
	return &challengeReply{Challenge: challenge, UserName: in.name()}, nil
}

// signature is the answer to a login challenge.
type signature struct {
	Signature string `json:"signature"`
}

func (a *authenticator) respond(ctx context.Context, req *Request, in *signature) (Reply, error) {
	if in.Signature == "" || len(in.Signature) > 4096 {
		return nil, InvalidRequest("Field 'signature' must be a base64 RSA signature of the challenge.")
	}
	sess, _ := a.store.New(req.HTTP, SessionCookie) // read only: no need for gorilla's per-request registry
	if sess.IsNew {
		return nil, InvalidRequest("No challenge to answer: call 'authenticate' first and send its cookie.")
	}
	u, err := a.authn.Respond(ctx, sess.ID, in.Signature, req.RemoteIP)
	a.metrics.login(err)
	if err != nil {
		return nil, loginError(err)
	}
	sess.IsNew = true // the challenge session is gone; startSession issues a new token
	return a.startSession(ctx, req, u)
}

func (a *authenticator) logout(ctx context.Context, req *Request, _ *none) (Reply, error) {
	sess, _ := a.store.Get(req.HTTP, SessionCookie)
	if !sess.IsNew {
		req.Caller, _ = a.sessions.User(ctx, sess.ID) // who logs out, for the audit trail
	}
	sess.Options.MaxAge = -1
	if err := sess.Save(req.HTTP, req.Writer); err != nil {
		return nil, err
	}
	return done(), nil
}
