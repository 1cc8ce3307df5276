package hosts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// WireAlarm is the CmonAlarm object of replies and webhook events, with the
// names and JSON types the reference controller's clients decode (s9s's
// S9sAlarm, cmon-proxy's api.Alarm): ignored is 0 or 1, not a boolean.
type WireAlarm struct {
	ClassName         string `json:"class_name"`
	AlarmID           int64  `json:"alarm_id"`
	ClusterID         int64  `json:"cluster_id"`
	HostID            int64  `json:"host_id"`
	Hostname          string `json:"hostname"`
	Subject           string `json:"subject"`
	TypeName          string `json:"type_name"`
	ComponentName     string `json:"component_name"`
	SeverityName      string `json:"severity_name"`
	Title             string `json:"title"`
	Message           string `json:"message"`
	Recommendation    string `json:"recommendation"`
	Counter           int    `json:"counter"`
	Created           string `json:"created"`
	Reported          string `json:"reported"`
	Ignored           int    `json:"ignored"`
	DuringMaintenance bool   `json:"during_maintenance"`
	Cleared           bool   `json:"cleared"`
	ClearedAt         string `json:"cleared_at,omitempty"`
}

// Wire is a's CmonAlarm.
func (a Alarm) Wire() WireAlarm {
	w := WireAlarm{ClassName: "CmonAlarm", AlarmID: a.ID, ClusterID: a.ClusterID, HostID: a.HostID, Hostname: a.Hostname,
		Subject: a.Subject, TypeName: a.Type, ComponentName: a.Component, SeverityName: a.Severity, Title: a.Title,
		Message: a.Message, Recommendation: a.Recommendation, Counter: a.Counter,
		Created: a.Created.UTC().Format(time.RFC3339), Reported: a.Reported.UTC().Format(time.RFC3339),
		DuringMaintenance: a.InMaintenance, Cleared: !a.Cleared.IsZero()}
	if a.Ignored {
		w.Ignored = 1
	}
	if w.Cleared {
		w.ClearedAt = a.Cleared.UTC().Format(time.RFC3339)
	}
	return w
}

// Webhook posts alarm events as JSON to an operator's URL, signed with a
// shared secret (X-Cmon-Signature: sha256=<hex HMAC of the body>), retrying
// with backoff. Events wait in a bounded queue; past it they are dropped
// and logged, so a dead receiver never slows the monitor.
type Webhook struct {
	url, secret string
	log         *slog.Logger
	client      *http.Client
	queue       chan []byte
	// backoff is the wait before the first retry, doubled for each next.
	backoff time.Duration
}

// webhookAttempts bounds the tries of one event.
const webhookAttempts = 6

// NewWebhook makes a notifier for url; Run delivers.
func NewWebhook(url, secret string, log *slog.Logger) *Webhook {
	// Redirects are not followed: a 301 or 302 would turn the signed POST
	// into a GET to another URL, carrying the signature there; the 3xx is
	// the receiver's answer, and a failed delivery.
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Webhook{url: url, secret: secret, log: log, client: client, queue: make(chan []byte, 1000), backoff: time.Second}
}

// Notify queues an event about an alarm.
func (w *Webhook) Notify(event string, a Alarm) {
	body, _ := json.Marshal(map[string]any{"event": event, "sent": time.Now().UTC().Format(time.RFC3339Nano), "alarm": a.Wire()})
	select {
	case w.queue <- body:
	default:
		w.log.Warn("webhook queue full: event dropped", "event", event, "alarm_id", a.ID)
	}
}

// Run delivers queued events until ctx ends.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-w.queue:
			w.deliver(ctx, body)
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, body []byte) {
	mac := hmac.New(sha256.New, []byte(w.secret))
	mac.Write(body)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	wait := w.backoff
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, body, signature)
		if err == nil {
			return
		}
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // the URL may hold a token: it stays out of the log
		}
		if attempt == webhookAttempts || ctx.Err() != nil {
			w.log.Error("webhook: event not delivered", "attempts", attempt, "err", err)
			return
		}
		w.log.Warn("webhook: delivery failed, retrying", "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (w *Webhook) post(ctx context.Context, body []byte, signature string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cmon-webhook")
	req.Header.Set("X-Cmon-Signature", signature)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		// Its Location stays out of the error: it may hold a token too.
		return fmt.Errorf("receiver answered %s: redirects are not followed", resp.Status)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
