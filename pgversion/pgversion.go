// Package pgversion knows the PostgreSQL versions the broker offers and
// where each one's binaries live on the Nomad clients
// (PGBROKER_POSTGRES_VERSIONS), and which version changes an instance may
// make: a newer minor release of its own major only, never a downgrade
// (PostgreSQL's versioning policy, https://www.postgresql.org/support/versioning/:
// minor releases of a major share the data directory format).
package pgversion

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Version is a PostgreSQL release, major.minor ("15.18").
type Version struct {
	Major int // 15
	Minor int // 18
}

// Parse reads "15.18", or the semver form OSB's maintenance_info.version
// carries ("15.18.0", patch 0). Errors name the text.
func Parse(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) == 3 && parts[2] == "0" {
		parts = parts[:2]
	}
	if len(parts) != 2 {
		return Version{}, fmt.Errorf("version %q is not a PostgreSQL version such as 15.18", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 10 || minor < 0 || parts[0] != strconv.Itoa(major) || parts[1] != strconv.Itoa(minor) {
		return Version{}, fmt.Errorf("version %q is not a PostgreSQL version such as 15.18", s)
	}
	return Version{Major: major, Minor: minor}, nil
}

// String is "15.18".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Semver is "15.18.0", the form of OSB's maintenance_info.version (OSB 2.17,
// "Maintenance Info Object": semantic versioning).
func (v Version) Semver() string { return v.String() + ".0" }

// Compare is -1, 0 or +1 as v is older than, the same as, or newer than o.
func (v Version) Compare(o Version) int {
	if v.Major != o.Major {
		return cmpInt(v.Major, o.Major)
	}
	return cmpInt(v.Minor, o.Minor)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Offered is the set of versions the broker offers, each with the directory
// of its binaries (postgres, pg_ctl, initdb, pg_dump...) on the clients.
// Build it with ParseOffered; the zero Offered offers nothing.
type Offered struct {
	versions     []Version          // newest first
	bins         map[Version]string // absolute, clean
	defaultMajor int                // the first entry's major
}

// DefaultOffered is what a broker offers when PGBROKER_POSTGRES_VERSIONS is
// unset: Debian bookworm's postgresql-15.
const DefaultOffered = "15.18=/usr/lib/postgresql/15/bin"

// ParseOffered reads "15.18=/usr/lib/postgresql/15/bin,15.20=/opt/pg/15.20/bin":
// comma-separated version=bin directory entries. The first entry's major is
// the default major: new instances get its newest minor. Errors name the
// entry: a bad version, a directory that is not a clean absolute path, a
// version given twice, no entry at all.
func ParseOffered(s string) (Offered, error) {
	o := Offered{bins: map[Version]string{}}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, dir, ok := strings.Cut(entry, "=")
		if !ok {
			return Offered{}, fmt.Errorf("entry %q is not version=bin directory", entry)
		}
		v, err := Parse(strings.TrimSpace(name))
		if err != nil {
			return Offered{}, fmt.Errorf("entry %q: %w", entry, err)
		}
		dir = strings.TrimSpace(dir)
		if !strings.HasPrefix(dir, "/") || path.Clean(dir) != dir {
			return Offered{}, fmt.Errorf("entry %q: bin directory %q is not a clean absolute path", entry, dir)
		}
		if _, dup := o.bins[v]; dup {
			return Offered{}, fmt.Errorf("version %s is given twice", v)
		}
		if len(o.versions) == 0 {
			o.defaultMajor = v.Major
		}
		o.bins[v] = dir
		o.versions = append(o.versions, v)
	}
	if len(o.versions) == 0 {
		return Offered{}, errors.New("no version given")
	}
	slices.SortFunc(o.versions, func(a, b Version) int { return b.Compare(a) })
	return o, nil
}

// Newest is the newest version offered, of the default major: what new
// instances get and what the catalog's maintenance_info names. The zero
// Version when nothing is offered.
func (o Offered) Newest() Version {
	for _, v := range o.versions {
		if v.Major == o.defaultMajor {
			return v
		}
	}
	return Version{}
}

// Versions lists the versions offered, newest first.
func (o Offered) Versions() []Version { return slices.Clone(o.versions) }

// BinDir is the directory of v's binaries on the clients; false when v is
// not offered.
func (o Offered) BinDir(v Version) (string, bool) {
	dir, ok := o.bins[v]
	return dir, ok
}

// BinDirs maps each version offered ("15.18") to its bin directory: what
// the job renderers take.
func (o Offered) BinDirs() map[string]string {
	out := make(map[string]string, len(o.bins))
	for v, dir := range o.bins {
		out[v.String()] = dir
	}
	return out
}

// Kinds of refusal of CheckUpgrade, for errors.Is.
var (
	ErrNotOffered = errors.New("version not offered")
	ErrDowngrade  = errors.New("downgrade")
	ErrMajor      = errors.New("major upgrade")
)

// RefusalError is CheckUpgrade's error: Reason is a sentence a user can act
// on, Kind one of ErrNotOffered, ErrDowngrade, ErrMajor.
type RefusalError struct {
	Kind   error
	Reason string
}

func (e *RefusalError) Error() string { return e.Reason }
func (e *RefusalError) Unwrap() error { return e.Kind }

// CheckUpgrade returns nil when an instance on from may move to to: to is
// newer, offered, and of the same major. Otherwise a *RefusalError, checked
// in that order: a downgrade (to == from counts as one; callers treat it as
// "nothing to do" first), a version not offered, another major.
func (o Offered) CheckUpgrade(from, to Version) error {
	if to.Compare(from) <= 0 {
		return &RefusalError{ErrDowngrade, fmt.Sprintf("the instance runs PostgreSQL %s and cannot go to %s: PostgreSQL versions only go forward", from, to)}
	}
	if _, ok := o.bins[to]; !ok {
		return &RefusalError{ErrNotOffered, fmt.Sprintf("PostgreSQL %s is not offered by this broker (offered: %s)", to, o.list())}
	}
	if to.Major != from.Major {
		return &RefusalError{ErrMajor, fmt.Sprintf("the instance runs PostgreSQL %s: maintenance_info cannot take it to major %d, only to a newer %d.x; a major upgrade is the update parameter postgresql_version (\"%d\")", from, to.Major, from.Major, to.Major)}
	}
	return nil
}

// list is the versions offered, "15.20, 15.18".
func (o Offered) list() string {
	names := make([]string, len(o.versions))
	for i, v := range o.versions {
		names[i] = v.String()
	}
	return strings.Join(names, ", ")
}

// Kinds of refusal of CheckMajorUpgrade, beside ErrDowngrade and
// ErrNotOffered, for errors.Is.
var ErrNotLatestMinor = errors.New("not on the latest minor")

// ParseMajor reads a major version as a user names it, "18". Errors name
// the text.
func ParseMajor(s string) (int, error) {
	major, err := strconv.Atoi(s)
	if err != nil || major < 10 || strconv.Itoa(major) != s {
		return 0, fmt.Errorf("%q is not a PostgreSQL major version such as 18", s)
	}
	return major, nil
}

// NewestOf is the newest version offered of major; false when none is.
func (o Offered) NewestOf(major int) (Version, bool) {
	for _, v := range o.versions {
		if v.Major == major {
			return v, true
		}
	}
	return Version{}, false
}

// CheckMajorUpgrade returns the version an instance on from goes to when
// asked for major (the newest offered minor of major), or a *RefusalError,
// checked in this order: major not newer than from's (ErrDowngrade; the
// same major too: callers treat it as "nothing to do" first), major not
// offered (ErrNotOffered), from not the newest offered minor of its own
// major (ErrNotLatestMinor: PostgreSQL's pg_upgrade goes from any minor, but
// the product upgrades the newest one only, so that the fixes of the old
// major are in the data pg_upgrade carries over).
func (o Offered) CheckMajorUpgrade(from Version, major int) (Version, error) {
	if major <= from.Major {
		return Version{}, &RefusalError{ErrDowngrade, fmt.Sprintf("the instance runs PostgreSQL %s and cannot go to major %d: PostgreSQL versions only go forward", from, major)}
	}
	to, ok := o.NewestOf(major)
	if !ok {
		return Version{}, &RefusalError{ErrNotOffered, fmt.Sprintf("PostgreSQL %d is not offered by this broker (offered: %s)", major, o.list())}
	}
	if newest, ok := o.NewestOf(from.Major); ok && newest.Compare(from) > 0 {
		return Version{}, &RefusalError{ErrNotLatestMinor, fmt.Sprintf("the instance runs PostgreSQL %s: upgrade it to %s, the newest %d.x, first (cf update-service --upgrade), then to %d",
			from, newest, from.Major, major)}
	}
	return to, nil
}

// Upgrade is a version an instance may move to (Offered.Upgrades).
type Upgrade struct {
	To    Version // the newest offered minor of its major
	Major bool    // another major: pg_upgrade (update parameter postgresql_version); else a minor upgrade (maintenance_info)
	// Blocked is why the instance cannot take it yet, a sentence it can act
	// on ("upgrade it to 15.20 ... first"); "" when it can.
	Blocked string
}

// Upgrades lists what an instance on from may move to, minor first: the
// newest offered minor of from's major when it is newer, then the newest
// minor of each newer major offered, newest major last, each Blocked by
// CheckMajorUpgrade's reason while from is not the newest minor of its
// major. None when from is the newest of everything offered. Source:
// issue 15 (the dashboard's version block shows the available upgrades).
func (o Offered) Upgrades(from Version) []Upgrade {
	var out []Upgrade
	if newest, ok := o.NewestOf(from.Major); ok && newest.Compare(from) > 0 {
		out = append(out, Upgrade{To: newest})
	}
	var majors []int
	for _, v := range o.versions {
		if v.Major > from.Major && !slices.Contains(majors, v.Major) {
			majors = append(majors, v.Major)
		}
	}
	slices.Sort(majors)
	for _, major := range majors {
		to, _ := o.NewestOf(major)
		u := Upgrade{To: to, Major: true}
		if _, err := o.CheckMajorUpgrade(from, major); err != nil {
			u.Blocked = err.Error()
		}
		out = append(out, u)
	}
	return out
}

// PgBackRestMaxMajor is the newest PostgreSQL major the pgBackRest on the
// clients archives and backs up: Debian bookworm's pgbackrest 2.45 knows
// PostgreSQL up to 15 (18 needs 2.55 or later). An instance on a newer major
// runs without WAL archiving and base backups, so without point-in-time
// recovery, until the clients have a newer pgBackRest and this is raised.
const PgBackRestMaxMajor = 15

// Archived reports whether the clients' pgBackRest archives an instance
// running version ("18.6"; "" is the default major's): its major is at most
// PgBackRestMaxMajor. A version that does not parse counts as archived (the
// job renderers refuse it anyway).
func Archived(version string) bool {
	v, err := Parse(version)
	return err != nil || v.Major <= PgBackRestMaxMajor
}
