package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CertPaths are the certificate and key cmon generates in its data directory
// when none is configured.
func CertPaths(dataDir string) (cert, key string) {
	return filepath.Join(dataDir, "tls", "cmon.crt"), filepath.Join(dataDir, "tls", "cmon.key")
}

// LoadCertificate loads the configured pair, or when certFile is empty the
// generated pair in dataDir, generating it first if it is missing, expired, or
// does not name every address and name in names (see CertNames).
func LoadCertificate(log *slog.Logger, certFile, keyFile, dataDir string, names []string) (tls.Certificate, error) {
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("load TLS certificate %s: %w", certFile, err)
		}
		return cert, nil
	}
	certFile, keyFile = CertPaths(dataDir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil && covers(cert, names) {
		return cert, nil
	}
	if err == nil {
		log.Info("regenerating the self-signed certificate: its names changed", "cert", certFile, "names", names)
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("load generated TLS certificate %s: %w", certFile, err)
	}
	if err := generateSelfSigned(certFile, keyFile, names); err != nil {
		return tls.Certificate{}, err
	}
	log.Info("generated a self-signed TLS certificate", "cert", certFile)
	return tls.LoadX509KeyPair(certFile, keyFile)
}

// CertNames are the names a generated certificate carries: every bind address
// (every interface address for 0.0.0.0 or ::), loopback, localhost, the host
// name, and extra (CMON_TLS_NAMES), so clients reach the controller by any of
// them with verification on.
func CertNames(bindAddrs, extra []string) []string {
	names := []string{"127.0.0.1", "::1", "localhost"}
	if host, err := os.Hostname(); err == nil && host != "" {
		names = append(names, host)
	}
	for _, a := range bindAddrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.IsUnspecified() {
			names = append(names, a)
			continue
		}
		ifaddrs, _ := net.InterfaceAddrs()
		for _, ia := range ifaddrs {
			if p, err := netip.ParsePrefix(ia.String()); err == nil {
				names = append(names, p.Addr().String())
			}
		}
	}
	names = append(names, extra...)
	var out []string
	for _, n := range names {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// covers tells whether cert is still valid for every name.
func covers(cert tls.Certificate, names []string) bool {
	if cert.Leaf == nil || time.Now().After(cert.Leaf.NotAfter) {
		return false
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			if !slices.ContainsFunc(cert.Leaf.IPAddresses, func(c net.IP) bool { return c.Equal(ip.AsSlice()) }) {
				return false
			}
		} else if !slices.Contains(cert.Leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

// generateSelfSigned writes an ECDSA P-256 certificate valid for ten years
// for names (IP addresses and DNS names).
func generateSelfSigned(certFile, keyFile string, names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "cmon", Organization: []string{"cmon"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode TLS key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("create TLS directory: %w", err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves half a key behind.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// TLSConfig is the listeners' configuration: TLS 1.2 at least, modern AEAD
// suites only for 1.2 (1.3 suites are not configurable and all good).
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
	}
}

// Listen opens one TCP listener per bind address, all bounded together by
// limits. They are opened before anything is written, so a busy port stops
// start-up first; Serve speaks TLS on them, and only TLS.
func Listen(log *slog.Logger, addrs []string, port int, limits ConnLimits) ([]net.Listener, error) {
	var out []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("listen on %s port %d: %w", a, port, err)
		}
		out = append(out, l)
	}
	return LimitConnections(log, limits, out...), nil
}

// HTTPServer is an http.Server for h with the controller's timeouts and
// limits, which the benchmarks' bare server shares.
func HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h,
		// Also the TLS handshake's deadline (the least of the three read and
		// write timeouts): a connection that stalls in it is closed.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve answers on every listener until ctx ends, then stops accepting and
// gives in-flight requests up to grace to finish.
func Serve(ctx context.Context, log *slog.Logger, h http.Handler, listeners []net.Listener, cfg *tls.Config, grace time.Duration) error {
	srv := HTTPServer(h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug) // TLS handshake noise from scanners
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	srv.ConnState = trackConnState // which connections the limits may shed
	errs := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("listening", "address", l.Addr().String(), "tls", true)
			if err := srv.Serve(tls.NewListener(l, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serve %s: %w", l.Addr(), err)
			}
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("in-flight requests did not finish in time", "grace", grace, "err", err)
	}
	wg.Wait()
	return serveErr
}
