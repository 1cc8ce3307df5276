package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/sql"
)

// Permitter decides, when a job is about to run or a recurring template to
// fire, whether its owner may still run it: the check at create time says
// nothing of a user deleted, disabled or refused since.
type Permitter interface {
	Permit(ctx context.Context, j *Job, d *Draft) error
}

// RefusedError is why a job's owner may not run it now.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// OwnerCheck is the Permitter over the user store, the access policy and the
// inventory as they are now: the owner must exist, be enabled, and pass the
// command's declared Access on the job's cluster.
type OwnerCheck struct {
	Users interface {
		UserByID(ctx context.Context, id int64) (*rbac.User, error)
	}
	Policies interface {
		Current(ctx context.Context) (*rbac.Policy, error)
	}
	Clusters interface {
		Get(ctx context.Context, id int64) (*hosts.Cluster, error)
	}
}

var _ Permitter = OwnerCheck{}

// Permit returns a *RefusedError when the owner may not run j, another error
// when it cannot tell.
func (o OwnerCheck) Permit(ctx context.Context, j *Job, d *Draft) error {
	if j.UserID == 0 {
		return &RefusedError{"the job has no owner"}
	}
	u, err := o.Users.UserByID(ctx, j.UserID)
	switch {
	case errors.Is(err, rbac.ErrNotFound):
		return &RefusedError{fmt.Sprintf("its owner %s (user %d) no longer exists", j.UserName, j.UserID)}
	case err != nil:
		return fmt.Errorf("load owner of job %d: %w", j.ID, err)
	case u.Disabled:
		return &RefusedError{fmt.Sprintf("its owner %s is disabled", u.Name)}
	}
	var c *hosts.Cluster
	if d.ClusterID != 0 {
		c, err = o.Clusters.Get(ctx, d.ClusterID)
		if errors.Is(err, hosts.ErrClusterNotFound) {
			return &RefusedError{fmt.Sprintf("cluster %d no longer exists", d.ClusterID)}
		}
		if err != nil {
			return fmt.Errorf("load cluster of job %d: %w", j.ID, err)
		}
	}
	p, err := o.Policies.Current(ctx)
	if err != nil {
		return err
	}
	var denied *rbac.DeniedError
	if err := d.Authorize(p, u, c); errors.As(err, &denied) {
		return &RefusedError{strings.TrimSuffix(denied.Message, ".")} // the reason goes inside a sentence
	} else if err != nil {
		return err
	}
	return nil
}

// permit asks the configured Permitter, if any, about running j now.
func (s *Service) permit(ctx context.Context, j *Job) error {
	if s.cfg.Permit == nil {
		return nil
	}
	d, err := s.reg.DraftOf(j)
	if err != nil {
		return &RefusedError{err.Error()}
	}
	// Not yet run: an unreachable database is waited for, not taken for a
	// refusal or a failure.
	ctx, cancel := context.WithTimeout(ctx, finishRetryFor)
	defer cancel()
	return s.whileUnreachable(ctx, func() error { return s.cfg.Permit.Permit(ctx, j, d) })
}

// pauseRefused pauses a recurring template whose owner may no longer run it,
// with the reason in its status text and log, so it stops firing until a
// user with the right resumes it.
func (s *Service) pauseRefused(ctx context.Context, templateID int64, reason string) {
	text := "Paused: " + reason + "."
	res, err := s.db.ExecContext(ctx, "UPDATE jobs SET status = ?, status_text = ? WHERE job_id = ? AND status = ?",
		StatusPaused, sql.Clip(text, 255), templateID, StatusScheduled)
	if err != nil {
		s.log.Error("pause refused recurring job", "job_id", templateID, "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n == 1 {
		s.addMessage(ctx, templateID, MessageFailed, "Not run: "+reason+". The schedule is paused.")
		s.log.Warn("recurring job paused: its owner may not run it", "job_id", templateID, "reason", reason)
	}
}
