// Package extensions is the allow-list of PostgreSQL contrib extensions
// users may enable (seed 003 "Managing Extensions") and its pure rules:
// which names are allowed, which need shared_preload_libraries, and whether
// going from one set to another restarts the node. It imports nothing of
// pgbroker's, so that front doors (broker, mgmtapi) check extensions without
// the executor (pgadmin creates and drops them).
package extensions

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Extension is one PostgreSQL contrib extension users may enable (seed 003
// "Managing Extensions"): the extensions installed on the nodes by Debian's
// postgresql-contrib for PostgreSQL 15 (/usr/share/postgresql/15/extension),
// less those that reach the server's files or repair and inspect storage
// internals (adminpack, file_fdw, pg_surgery, pageinspect, old_snapshot,
// pg_walinspect) and plpgsql, which every database has.
type Extension struct {
	Name string
	// Preload: the extension's library must be in shared_preload_libraries,
	// which PostgreSQL reads only at start: enabling or disabling it restarts
	// the node.
	Preload bool
}

// Contrib is the allow-list, sorted by name.
var Contrib = []Extension{
	{Name: "amcheck"}, {Name: "autoinc"}, {Name: "bloom"}, {Name: "btree_gin"}, {Name: "btree_gist"},
	{Name: "citext"}, {Name: "cube"}, {Name: "dblink"}, {Name: "dict_int"}, {Name: "dict_xsyn"},
	{Name: "earthdistance"}, {Name: "fuzzystrmatch"}, {Name: "hstore"}, {Name: "insert_username"},
	{Name: "intagg"}, {Name: "intarray"}, {Name: "isn"}, {Name: "lo"}, {Name: "ltree"}, {Name: "moddatetime"},
	{Name: "pg_buffercache"}, {Name: "pg_freespacemap"}, {Name: "pg_prewarm"},
	{Name: "pg_stat_statements", Preload: true}, {Name: "pg_trgm"}, {Name: "pg_visibility"},
	{Name: "pgcrypto"}, {Name: "pgrowlocks"}, {Name: "pgstattuple"}, {Name: "postgres_fdw"}, {Name: "refint"},
	{Name: "seg"}, {Name: "sslinfo"}, {Name: "tablefunc"}, {Name: "tcn"}, {Name: "tsm_system_rows"},
	{Name: "tsm_system_time"}, {Name: "unaccent"}, {Name: "uuid-ossp"}, {Name: "xml2"},
}

// LookupExtension returns the allowed extension called name.
func LookupExtension(name string) (Extension, bool) {
	i, ok := slices.BinarySearchFunc(Contrib, name, func(e Extension, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return Extension{}, false
	}
	return Contrib[i], true
}

// AllowedExtensionNames lists Contrib's names, comma-separated, for messages.
func AllowedExtensionNames() string {
	names := make([]string, len(Contrib))
	for i, e := range Contrib {
		names[i] = e.Name
	}
	return strings.Join(names, ", ")
}

// CheckExtensions returns an error naming the first of names that is not in
// Contrib, and the allowed ones.
func CheckExtensions(names []string) error {
	for _, n := range names {
		if _, ok := LookupExtension(n); !ok {
			return fmt.Errorf("extension %q is not installed on the nodes; allowed extensions: %s", n, AllowedExtensionNames())
		}
	}
	return nil
}

// PreloadLibraries returns, sorted, the shared_preload_libraries that the
// extensions names need.
func PreloadLibraries(names []string) []string {
	var libs []string
	for _, n := range names {
		if e, ok := LookupExtension(n); ok && e.Preload && !slices.Contains(libs, n) {
			libs = append(libs, n)
		}
	}
	slices.Sort(libs)
	return libs
}

// NeedsRestart reports whether going from the extensions from to to changes
// shared_preload_libraries.
func NeedsRestart(from, to []string) bool {
	return !slices.Equal(PreloadLibraries(from), PreloadLibraries(to))
}

// InstalledExtension is one row of pg_extension in the instance's database.
type InstalledExtension struct {
	Name    string // pg_extension.extname
	Version string // pg_extension.extversion
}

// ErrExtensionInUse: objects depend on the extension (SQLSTATE 2BP01); the
// error wrapping it quotes PostgreSQL's detail.
var ErrExtensionInUse = errors.New("other objects depend on the extension")
