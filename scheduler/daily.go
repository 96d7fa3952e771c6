// Package scheduler decides when backups run: each paid instance's daily dump
// at its own time of day in its own time zone (robfig/cron/v3 schedules), and
// which scheduled runs are due at a tick. It never runs pg_dump itself: due
// runs are recorded as backups and enqueued as River jobs by the worker.
package scheduler

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
)

// Defaults of the daily dump time (the seeds: "around 1:00 AM Central
// European Time").
const (
	DefaultBackupTime     = "01:00"
	DefaultBackupTimeZone = "Europe/Paris"
)

// Parameter names of the daily dump time (catalog.yaml provision and update schemas).
const (
	ParamBackupTime     = "backup_time"
	ParamBackupTimeZone = "backup_time_zone"
)

var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// FieldError names the parameter that is wrong; the broker and the
// management API answer it with 400.
type FieldError struct {
	Field string // parameter name, e.g. "backup_time"
	Msg   string // a sentence naming the field
}

// Error returns Msg.
func (e *FieldError) Error() string { return e.Msg }

// Daily is when an instance's daily dump runs: a time of day in a named
// time zone.
type Daily struct {
	Time  string // "HH:MM", 24-hour clock
	Zone  string // IANA time zone name
	sched cron.Schedule
}

// ParseDaily checks hhmm ("HH:MM", "" for DefaultBackupTime) and zone (an
// IANA name, "" for DefaultBackupTimeZone). Errors: *FieldError naming
// backup_time or backup_time_zone.
func ParseDaily(hhmmText, zone string) (Daily, error) {
	if hhmmText == "" {
		hhmmText = DefaultBackupTime
	}
	if zone == "" {
		zone = DefaultBackupTimeZone
	}
	m := hhmm.FindStringSubmatch(hhmmText)
	if m == nil {
		return Daily{}, &FieldError{Field: ParamBackupTime,
			Msg: fmt.Sprintf("backup_time %q must be a time of day as HH:MM (24-hour clock), e.g. \"01:00\"", hhmmText)}
	}
	if _, err := time.LoadLocation(zone); err != nil || zone == "Local" || zone == "" {
		return Daily{}, &FieldError{Field: ParamBackupTimeZone,
			Msg: fmt.Sprintf("backup_time_zone %q is not an IANA time zone name, e.g. \"Europe/Paris\" or \"UTC\"", zone)}
	}
	hour, _ := strconv.Atoi(m[1])
	minute, _ := strconv.Atoi(m[2])
	sched, err := cron.ParseStandard(fmt.Sprintf("CRON_TZ=%s %d %d * * *", zone, minute, hour))
	if err != nil {
		return Daily{}, &FieldError{Field: ParamBackupTimeZone,
			Msg: fmt.Sprintf("backup_time_zone %q cannot be scheduled: %v", zone, err)}
	}
	return Daily{Time: hhmmText, Zone: zone, sched: sched}, nil
}

// Next returns the first run strictly after t.
func (d Daily) Next(t time.Time) time.Time { return d.sched.Next(t) }

// Latest returns the last run at or before t, or the zero time when there is
// none in the 26 hours before t (a day skipped by a time-zone change).
func (d Daily) Latest(t time.Time) time.Time {
	var last time.Time
	for n := d.sched.Next(t.Add(-26*time.Hour - time.Second)); !n.IsZero() && !n.After(t); n = d.sched.Next(n) {
		last = n
	}
	return last
}

// FromParameters returns the daily schedule stored in an instance's or an
// update's parameters (backup_time, backup_time_zone; defaults for absent
// keys). Errors: *FieldError.
func FromParameters(params map[string]any) (Daily, error) {
	t, _ := params[ParamBackupTime].(string)
	z, _ := params[ParamBackupTimeZone].(string)
	return Cached(t, z)
}

// Location is the time zone of the schedule.
func (d Daily) Location() *time.Location {
	if s, ok := d.sched.(*cron.SpecSchedule); ok {
		return s.Location
	}
	return time.UTC
}
