package jobs

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strings"

	"time"

	"github.com/cmon-dev/cmon/sql"
)

// Controller is a live controller sharing the database.
type Controller struct {
	ID        string
	Addresses string
	Port      int
	Version   string
	Hostname  string // the machine's
	Started   time.Time
	Heartbeat time.Time
	// Leader is the controller that runs the health monitor: the live one
	// with the lowest id, so that another takes over once it goes silent.
	Leader bool
	// Self is this controller.
	Self bool
}

// BindAddresses are the addresses the controller listens on, the first
// being where clients reach it; [] when it announced none.
func (c Controller) BindAddresses() []string {
	if c.Addresses == "" {
		return []string{}
	}
	return strings.Split(c.Addresses, ",")
}

// Controllers lists the controllers whose heartbeat is within StaleAfter,
// by id.
func (s *Service) Controllers(ctx context.Context) ([]Controller, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT controller_id, addresses, port, version, hostname, started, heartbeat
		FROM job_controllers WHERE heartbeat >= ? ORDER BY controller_id`, sql.Millis(s.clock.Now().Add(-s.cfg.StaleAfter)))
	if err != nil {
		return nil, fmt.Errorf("list controllers: %w", err)
	}
	defer rows.Close()
	var out []Controller
	for rows.Next() {
		var c Controller
		var started, heartbeat int64
		if err := rows.Scan(&c.ID, &c.Addresses, &c.Port, &c.Version, &c.Hostname, &started, &heartbeat); err != nil {
			return nil, fmt.Errorf("list controllers: %w", err)
		}
		c.Started, c.Heartbeat = sql.Time(started), sql.Time(heartbeat)
		c.Leader, c.Self = len(out) == 0, c.ID == s.cfg.ControllerID
		out = append(out, c)
	}
	return out, rows.Err()
}

// Leads tells whether this controller is the live one with the lowest id,
// which runs the health monitor's rounds.
func (s *Service) Leads(ctx context.Context) (bool, error) {
	var first stdsql.NullString // NULL: no live controller, not even this one yet
	err := s.db.QueryRowContext(ctx, "SELECT MIN(controller_id) FROM job_controllers WHERE heartbeat >= ?",
		sql.Millis(s.clock.Now().Add(-s.cfg.StaleAfter))).Scan(&first)
	if err != nil {
		return false, fmt.Errorf("find the monitor's leader: %w", err)
	}
	return first.String == s.cfg.ControllerID, nil
}

// Alive tells whether this controller's heartbeat is current: its jobs are
// its own, and the other controllers count it as live.
func (s *Service) Alive(ctx context.Context) error {
	list, err := s.Controllers(ctx)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.Self {
			return nil
		}
	}
	return fmt.Errorf("this controller's heartbeat is older than %s", s.cfg.StaleAfter)
}
