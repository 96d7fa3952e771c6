// Package operation defines, once, the payload of each operation kind: what
// the front doors store in store.Operation.Parameters when they enqueue an
// operation, and what the worker reads back when it carries it out. It is a
// leaf: it imports nothing of pgbroker.
//
// Payloads are JSON. A provision's and an update's payloads are their OSB
// parameters as validated against the plan's schema (catalog.yaml, closed:
// additionalProperties false), field for field; the instance keeps them.
package operation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Provision is the payload of a provision (store.KindProvision): its
// validated provision parameters. nil: not given.
type Provision struct {
	BackupTime     *string      `json:"backup_time,omitempty"`      // "HH:MM" in BackupTimeZone
	BackupTimeZone *string      `json:"backup_time_zone,omitempty"` // IANA zone
	Extensions     *[]string    `json:"extensions,omitempty"`       // extensions.Contrib names
	ForceTLS       *bool        `json:"force_tls,omitempty"`
	RestoreFrom    *RestoreFrom `json:"restore_from,omitempty"`
}

// RestoreFrom is the restore_from provision parameter: the new instance
// starts with the data of another instance of the same organization and
// space, from one of its succeeded dumps (BackupID) or from its WAL archive
// at a point in time (PointInTime); the broker admits exactly one of the
// two (catalog.yaml, provision schema of paid plans; broker/restorefrom.go).
type RestoreFrom struct {
	InstanceID  string `json:"instance_id"`             // OSB instance id of the source
	BackupID    string `json:"backup_id,omitempty"`     // a succeeded dump of the source
	PointInTime string `json:"point_in_time,omitempty"` // RFC 3339, as sent
}

// At is PointInTime parsed (RFC 3339, fractions allowed), in UTC and cut to
// PostgreSQL's microseconds. Errors when PointInTime is not RFC 3339.
func (r RestoreFrom) At() (time.Time, error) {
	at, err := time.Parse(time.RFC3339Nano, r.PointInTime)
	if err != nil {
		return time.Time{}, err
	}
	return at.UTC().Truncate(time.Microsecond), nil
}

// Update is the payload of an update (store.KindUpdate), a plan change to
// the operation's PlanID with settings: the validated OSB update parameters,
// or the management API's extension change. nil leaves a setting as it is;
// on success the store merges them into the instance's parameters.
// PostgresVersion is not a parameter: the broker sets it from the update's
// maintenance_info (a minor upgrade) or parameter postgresql_version (a
// major upgrade), and on success the store records it as the instance's
// version.
type Update struct {
	BackupTime      *string   `json:"backup_time,omitempty"`
	BackupTimeZone  *string   `json:"backup_time_zone,omitempty"`
	Extensions      *[]string `json:"extensions,omitempty"` // the instance's whole set afterwards
	ForceTLS        *bool     `json:"force_tls,omitempty"`
	PostgresVersion *string   `json:"postgres_version,omitempty"` // "15.20": the upgrade's target
	// PostgresqlVersion is the update parameter naming a major to upgrade
	// to ("18"). The broker turns it into PostgresVersion (the newest offered
	// minor of that major) and leaves it out of the stored payload: it is
	// not a setting the instance keeps.
	PostgresqlVersion *string `json:"postgresql_version,omitempty"`
}

// FromParameters reads validated OSB parameters (catalog.ValidateParameters)
// as payload P. Errors when they do not fit P: a schema that admits more
// than P holds.
func FromParameters[P Provision | Update](params map[string]any) (P, error) {
	var p P
	raw, err := json.Marshal(params)
	if err != nil {
		return p, fmt.Errorf("encode parameters: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("read parameters as %T: %w", p, err)
	}
	return p, nil
}

// Restore is the payload of an in-place restore of a dump (store.KindRestore).
type Restore struct {
	BackupID string `json:"backup_id"` // a succeeded dump of the same instance
}

// PITR is the payload of an in-place point-in-time restore (store.KindPITR).
type PITR struct {
	TargetTime time.Time `json:"target_time"` // the moment to recover to, within the PITR window
}

// Encode is payload p as stored in store.Operation.Parameters.
func Encode[P Provision | Update | Restore | PITR](p P) json.RawMessage {
	raw, err := json.Marshal(p)
	if err != nil { // only strings, times, bools: cannot fail
		panic(fmt.Sprintf("operation: encode %T: %v", p, err))
	}
	return raw
}

// Decode reads a payload of type P from raw; empty raw is the zero payload.
// Errors name the payload type when raw is not its JSON.
func Decode[P Provision | Update | Restore | PITR](raw json.RawMessage) (P, error) {
	var p P
	if len(raw) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("read %T payload: %w", p, err)
	}
	return p, nil
}
