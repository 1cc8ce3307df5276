//go:build soak

package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The drills of `make soak`: each prints one summary line and fails when the
// controller loses its bounds.

// rssMiB is the resident memory of process pid.
func rssMiB(t *testing.T, pid int) float64 { return float64(procStatus(t, pid, "VmRSS")) / (1 << 20) }

func hostileBodies(r *rand.Rand) []string {
	deep := func(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }
	garbage := make([]byte, 1+r.IntN(4096))
	for i := range garbage {
		garbage[i] = byte(r.IntN(256))
	}
	wide := strings.TrimSuffix(strings.Repeat("[0],", 16000), ",")
	return []string{
		`{"operation":"ping","request_id":` + deep(100000) + `}`,
		`{"operation":"ping","request_id":"` + strings.Repeat("x", 900<<10) + `"}`,
		`{"operation":"createJobInstance","job":{"job_spec":{"command":"success","job_data":{"x":` + deep(63) + `}}}}`,
		`{"operation":"createJobInstance","job":{"job_spec":{"command":"success","job_data":{"x":[` + wide + `]}}}}`,
		`{"operation":"authenticateWithPassword","user_name":"ad\u200bmin","password":"` + strings.Repeat("p", 100000) + `"}`,
		string(garbage),
		`{"operation":"getJobInstances","limit":1000000000,"offset":-5}`,
		strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50),
	}
}

// TestSoakHostileInput sends thousands of hostile requests from many clients.
func TestSoakHostileInput(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	jar, _ := os.ReadFile(admin.jar)
	cookie := ""
	for line := range strings.SplitSeq(string(jar), "\n") {
		if f := strings.Fields(line); len(f) == 7 && f[5] == "cmon-sid" {
			cookie = "cmon-sid=" + f[6]
		}
	}
	before := rssMiB(t, c.cmd.Process.Pid)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}}
	var (
		mu       sync.Mutex
		maxReply int
		internal int
		sent     int
		peak     float64
	)
	var wg sync.WaitGroup
	modules := []string{"controller", "auth", "users", "clusters", "jobs", "tree"}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 40 {
				for _, body := range hostileBodies(r) {
					req, _ := http.NewRequest("POST", c.URL+"/v2/"+modules[r.IntN(len(modules))], strings.NewReader(body))
					req.Header.Set("Cookie", cookie)
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					reply, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					sent++
					maxReply = max(maxReply, len(reply))
					if bytes.Contains(reply, []byte(`"UnknownError"`)) {
						internal++
					}
					mu.Unlock()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(200 * time.Millisecond):
			peak = max(peak, rssMiB(t, c.cmd.Process.Pid))
		}
	}
	after := rssMiB(t, c.cmd.Process.Pid)
	fmt.Printf("hostile-input: %d requests, largest reply %d KiB, %d internal errors, RSS %.0f MiB before, %.0f MiB peak, %.0f MiB after\n",
		sent, maxReply>>10, internal, before, max(peak, after), after)
	mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`))
	if internal > 0 || maxReply > 8<<20 || max(peak, after)-before > 200 {
		t.Fatalf("the controller lost its bounds under hostile input")
	}
}

// TestSoakConnectionFlood holds thousands of slow-body TLS connections from
// many loopback addresses while another client pings.
func TestSoakConnectionFlood(t *testing.T) {
	c := startController(t, controllerOptions{})
	addr := strings.TrimPrefix(c.URL, "https://")
	before := rssMiB(t, c.cmd.Process.Pid)
	var (
		mu            sync.Mutex
		held, refused int
		conns         []net.Conn
	)
	t.Cleanup(func() {
		for _, conn := range conns {
			conn.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for a := 2; a < 10; a++ { // eight flooding addresses, within the total bound
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.1.%d", a))}}
			for range 250 {
				if ctx.Err() != nil {
					return
				}
				conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
				if err == nil {
					_, err = fmt.Fprintf(conn, "POST /v2/controller HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
				}
				mu.Lock()
				if err != nil {
					refused++
				} else {
					held++
					conns = append(conns, conn)
				}
				mu.Unlock()
			}
		}()
	}
	var pings []time.Duration
	flooding := make(chan struct{})
	go func() { wg.Wait(); close(flooding) }()
	for waiting := true; waiting; {
		start := time.Now()
		if out, err := runCurl("-sk", "--max-time", "20", "--interface", "127.0.0.2", "-d", `{"operation":"ping"}`, c.URL+"/v2/controller"); err != nil ||
			!strings.Contains(out, `"Ok"`) {
			t.Errorf("ping during the flood: %v: %.200s", err, out)
		}
		pings = append(pings, time.Since(start))
		select {
		case <-flooding:
			waiting = false
		default:
		}
	}
	peak := rssMiB(t, c.cmd.Process.Pid)
	slices.Sort(pings)
	p99 := pings[len(pings)*99/100]
	fmt.Printf("connection-flood: %d connections held, %d refused, %d pings (p99 %s) from another address, RSS %.0f MiB before, %.0f MiB during\n",
		held, refused, len(pings), p99.Round(time.Millisecond), before, peak)
	if held > 2000 || peak-before > 400 {
		t.Fatalf("the controller lost its bounds under a connection flood")
	}
}
