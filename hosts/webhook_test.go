package hosts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// receiver answers events about alarm failFor with 500 always, others with
// 500 for their first failFirst attempts, and counts attempts by alarm id.
type receiver struct {
	mu        sync.Mutex
	failFor   int64
	failFirst int
	attempts  map[int64]int
	delivered map[int64]string // the event, once accepted
	badSig    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte("hook-secret"))
	mac.Write(body)
	var e struct {
		Event string `json:"event"`
		Alarm struct {
			ID int64 `json:"alarm_id"`
		} `json:"alarm"`
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Header.Get("X-Cmon-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) || json.Unmarshal(body, &e) != nil {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	rc.attempts[e.Alarm.ID]++
	if e.Alarm.ID == rc.failFor || rc.attempts[e.Alarm.ID] <= rc.failFirst {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	rc.delivered[e.Alarm.ID] = e.Event
}

func (rc *receiver) state(id int64) (attempts int, event string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.attempts[id], rc.delivered[id]
}

// waitUntil polls ok until it holds, for at most 30s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	err := services.WaitFor(context.Background(), 30*time.Second, func() error {
		if !ok() {
			return errors.New(what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWebhookRetriesThenGivesUp(t *testing.T) {
	rc := &receiver{failFor: 1, failFirst: 2, attempts: map[int64]int{}, delivered: map[int64]string{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w, logs := startWebhook(t, srv.URL+"/hook?token=url-secret")

	// Events go one at a time: the second is tried only after the first
	// was given up.
	w.Notify("alarm.raised", Alarm{ID: 1, Title: "never accepted"})
	w.Notify("alarm.cleared", Alarm{ID: 2, Title: "accepted on the third try"})
	waitUntil(t, "alarm 2 delivered", func() bool { _, e := rc.state(2); return e != "" })
	if n, e := rc.state(2); n != 3 || e != "alarm.cleared" {
		t.Fatalf("alarm 2: %d attempts, event %q; want 3, alarm.cleared", n, e)
	}
	if n, e := rc.state(1); n != webhookAttempts || e != "" {
		t.Fatalf("alarm 1: %d attempts, event %q; want %d and none", n, e, webhookAttempts)
	}
	if rc.badSig != 0 {
		t.Fatalf("%d requests with a bad signature", rc.badSig)
	}
	if !strings.Contains(logs.String(), "event not delivered") {
		t.Fatalf("giving up is not logged:\n%s", logs.String())
	}
}

func TestWebhookKeepsItsURLOutOfTheLog(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook?token=url-secret"
	srv.Close() // nothing listens: every attempt fails to connect
	w, logs := startWebhook(t, url)
	w.Notify("alarm.raised", Alarm{ID: 3})
	waitUntil(t, "the event given up", func() bool { return strings.Contains(logs.String(), "event not delivered") })
	if strings.Contains(logs.String(), "url-secret") {
		t.Fatalf("the webhook URL reached the log:\n%s", logs.String())
	}
	if got := strings.Count(logs.String(), "retrying"); got != webhookAttempts-1 {
		t.Fatalf("%d retries logged, want %d", got, webhookAttempts-1)
	}
}

// TestWebhookDoesNotFollowRedirects: a receiver answering with a redirect
// fails the delivery, retried and given up as other failures are; the
// signed POST never reaches the URL it points to.
func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{name: "301 moved permanently", status: http.StatusMovedPermanently},
		{name: "302 found", status: http.StatusFound},
		{name: "307 temporary redirect", status: http.StatusTemporaryRedirect},
		{name: "308 permanent redirect", status: http.StatusPermanentRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			redirected, elsewhere := 0, 0
			target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				elsewhere++
			}))
			defer target.Close()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				redirected++
				mu.Unlock()
				http.Redirect(w, r, target.URL+"/elsewhere?token=location-secret", tt.status)
			}))
			defer srv.Close()
			w, logs := startWebhook(t, srv.URL+"/hook")
			w.Notify("alarm.raised", Alarm{ID: 4})
			waitUntil(t, "the event given up or redirected", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return elsewhere > 0 || strings.Contains(logs.String(), "event not delivered")
			})
			mu.Lock()
			defer mu.Unlock()
			if redirected != webhookAttempts || elsewhere != 0 {
				t.Fatalf("%d posts to the receiver, %d to where it redirects; want %d and 0", redirected, elsewhere, webhookAttempts)
			}
			if !strings.Contains(logs.String(), http.StatusText(tt.status)) || strings.Contains(logs.String(), "location-secret") {
				t.Fatalf("the log does not name the status, or names the redirect's URL:\n%s", logs.String())
			}
		})
	}
}

// startWebhook runs a webhook to url, retrying after a millisecond, until the
// test ends; logs holds what it logged.
func startWebhook(t *testing.T, url string) (*Webhook, *services.SyncBuffer) {
	logs := &services.SyncBuffer{}
	w := NewWebhook(url, "hook-secret", slog.New(slog.NewTextHandler(logs, nil)))
	w.backoff = time.Millisecond
	go w.Run(t.Context())
	return w, logs
}
