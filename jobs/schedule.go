package jobs

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// everyHour is the hour field of a schedule that matches every hour.
const everyHour = 1<<24 - 1

// maxZoneOffset bounds how far any zone's clock is from UTC: every instant
// with a given wall clock lies within it.
const maxZoneOffset = 24 * time.Hour

// schedule is a parsed recurrence in its time zone.
//
// robfig/cron v3.0.1 walks a day in real time, so a time of day that the
// clock skips when it springs forward is lost for that day, and one it shows
// twice when it falls back fires twice. A schedule that names hours (such as
// "30 2 * * *") therefore fires, as ISC cron does, once per matching wall
// clock: at its first occurrence, or right after the jump when that day's
// clock skips it. A schedule that fires every hour (such as "*/15 * * * *")
// follows real time instead, as ISC cron does too: it fires at each instant
// whose wall clock matches, so never at a skipped time and in both passes of
// a repeated hour; in zones that shift by a whole hour it keeps its real
// period across both transitions.
type schedule struct {
	// cron is matched against wall clocks written as UTC times when it is a
	// *cron.SpecSchedule; an @every interval is real time and ignores loc.
	cron cron.Schedule
	loc  *time.Location
}

// parseSchedule parses a 5-field cron expression (or a descriptor such as
// @daily) evaluated in the IANA time zone tz, UTC when tz is "". A TZ= or
// CRON_TZ= prefix on the expression names its zone instead of tz.
func parseSchedule(expr, tz string) (*schedule, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, invalid(ErrBadSchedule, "unknown time zone %q", tz)
		}
		loc = l
	}
	// The parser slices up to the first space after a zone prefix and panics
	// when there is none.
	if (strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=")) && !strings.Contains(expr, " ") {
		return nil, invalid(ErrBadSchedule, "recurrence %q names a time zone but no schedule", expr)
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, invalid(ErrBadSchedule, "recurrence %q is not a valid 5-field cron expression: %v", expr, err)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		if spec.Location != time.Local {
			loc = spec.Location
		}
		spec.Location = time.UTC
	}
	return &schedule{cron: sched, loc: loc}, nil
}

// next is the first firing strictly after t, in UTC; zero if it never fires.
func (s *schedule) next(t time.Time) time.Time {
	spec, ok := s.cron.(*cron.SpecSchedule)
	if !ok {
		return s.cron.Next(t).UTC()
	}
	if spec.Hour&everyHour == everyHour {
		return s.nextReal(spec, t)
	}
	return s.nextWall(spec, t)
}

// nextWall is the first matching wall clock whose firing instant is after t.
// That instant never decreases as the wall clock grows, so the first one
// after t is the answer; a wall clock already seen before t (in the first
// pass of a repeated hour) is passed over.
func (s *schedule) nextWall(spec *cron.SpecSchedule, t time.Time) time.Time {
	w := wallClock(t.In(s.loc))
	for {
		if w = spec.Next(w); w.IsZero() {
			return w
		}
		if at := s.firstInstant(w); at.After(t) {
			return at.UTC()
		}
	}
}

// nextReal is the first instant after t whose wall clock matches, found
// zone period by zone period: within one the offset is fixed, so wall clocks
// and instants run together.
func (s *schedule) nextReal(spec *cron.SpecSchedule, t time.Time) time.Time {
	local := t.In(s.loc)
	after := wallClock(local)
	for {
		_, end := local.ZoneBounds()
		w := spec.Next(after)
		if w.IsZero() {
			return w
		}
		at := w.Add(-offset(local))
		if end.IsZero() || at.Before(end) {
			return at.UTC()
		}
		// Search the next period from its very first second on.
		local = end.In(s.loc)
		after = wallClock(local).Add(-time.Nanosecond)
	}
}

// firstInstant is the first instant at which the clock in s.loc shows w (a
// wall clock written as a UTC time) or, when the clock skips w, the instant
// it jumps past it. The zone periods are walked from before any instant
// showing w, so the first one that shows w, or starts past it, decides.
func (s *schedule) firstInstant(w time.Time) time.Time {
	local := w.Add(-maxZoneOffset).In(s.loc)
	for {
		start, end := local.ZoneBounds()
		if !start.IsZero() && wallClock(start).After(w) {
			return start
		}
		at := w.Add(-offset(local))
		if end.IsZero() || at.Before(end) {
			return at
		}
		local = end.In(s.loc)
	}
}

// wallClock is the clock reading of t in its location, written as UTC.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// offset is how far t's clock is ahead of UTC.
func offset(t time.Time) time.Duration {
	_, sec := t.Zone()
	return time.Duration(sec) * time.Second
}
