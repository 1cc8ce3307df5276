// Package integration holds cmon's end-to-end tests: the real cmon binary over
// real TLS, called with real curl, against real MariaDB and OpenSSH sshd
// started on loopback by the services package.
package integration
