//go:build soak

package integration

import "testing"

// The Galera drills of `make soak` at full size: the same drills as the
// reduced ones of `make test`, a thousand and more each.

func TestSoakGaleraJobs(t *testing.T) {
	ctrls := galeraControllers(t)
	sessions := adminSessions(t, ctrls)
	ids := submitJobs(t, sessions, 1200, nil)
	waitJobsRanOnce(t, sessions, ids)
	t.Logf("galera-jobs: %d jobs through 3 controllers ran once each; conflicts retried: %d", len(ids), conflictsRetried(t, ctrls))
}

func TestSoakGaleraLogins(t *testing.T) {
	galeraLogins(t, galeraControllers(t), 1200)
}

func TestSoakGaleraChanges(t *testing.T) {
	galeraVisibility(t, galeraControllers(t, "CMON_LOGIN_MAX_FAILURES=1000"), 150)
}

func TestSoakGaleraNodeKill(t *testing.T) {
	galeraKillDrill(t, 1000)
}
