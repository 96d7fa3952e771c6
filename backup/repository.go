package backup

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// PITRS3 is pgBackRest's repository in an S3-compatible bucket (config
// PGBROKER_PITR_S3_*), reached over TLS with path-style requests. The node
// and base backup jobs get Host, Port, Region, Bucket, Path and CAPEM as
// job variables; the keys only through their Nomad Variable (items
// itemPITRS3Key and itemPITRS3KeySecret), rendered into the task's secrets
// directory.
type PITRS3 struct {
	Host   string // repo1-s3-endpoint: host name or IPv4 address
	Port   int    // repo1-storage-port
	Region string // repo1-s3-region
	Bucket string // repo1-s3-bucket
	Path   string // repo1-path: "/<prefix>"; a stanza's objects are <prefix>/archive/<stanza>/... and <prefix>/backup/<stanza>/...
	CAPEM  string // PEM certificates the endpoint's certificate chains to (repo1-storage-ca-file); "": the system's CAs

	AccessKeyID     string // repo1-s3-key
	SecretAccessKey string // repo1-s3-key-secret
}

// Items of a job's Nomad Variable holding the keys of PITRS3.
const (
	itemPITRS3Key       = "pitr_s3_key"
	itemPITRS3KeySecret = "pitr_s3_key_secret"
)

// Repository is pgBackRest's repository: a directory on every Nomad client
// or an S3 bucket (S3 set), or none (PITR off).
type Repository struct {
	Dir string  // directory on every Nomad client; "" with S3 or without PITR
	S3  *PITRS3 // when set, the repository is this bucket
}

// Repository is the pgBackRest repository of the configuration.
func (b *Backups) Repository() Repository { return Repository{Dir: b.cfg.PITRRepo, S3: b.cfg.PITRS3} }

// On reports whether point-in-time recovery is on: there is a repository.
func (r Repository) On() bool { return r.Dir != "" || r.S3 != nil }

// SetVars sets the job variables locating the repository (nodes.nomad.hcl,
// basebackup.nomad.hcl): pitr_repo, and with S3 the pitr_s3_* variables,
// pitr_repo then being the path in the bucket. The keys are never among
// them (Secrets).
func (r Repository) SetVars(vars map[string]any) {
	s3 := r.S3
	if s3 == nil {
		vars["pitr_repo"] = r.Dir
		return
	}
	vars["pitr_repo"] = s3.Path
	vars["pitr_s3_endpoint"] = s3.Host
	vars["pitr_s3_port"] = s3.Port
	vars["pitr_s3_region"] = s3.Region
	vars["pitr_s3_bucket"] = s3.Bucket
	vars["pitr_s3_ca"] = s3.CAPEM
}

// Secrets returns the Variable items of the repository's S3 keys, nil
// without S3.
func (r Repository) Secrets() api.VariableItems {
	s3 := r.S3
	if s3 == nil {
		return nil
	}
	return api.VariableItems{itemPITRS3Key: s3.AccessKeyID, itemPITRS3KeySecret: s3.SecretAccessKey}
}

// SyncPITRKeys writes the repository's S3 keys into the node job's Nomad
// Variable of instance short (which must exist) when they are missing or
// differ from the configured ones (a key rotation), and reports whether it
// wrote. Running nodes render pgbackrest.conf from the Variable (change_mode
// noop) and pgBackRest reads it at each command, archive-push included, so
// rotated keys reach them without a new job version. False without S3.
// Errors: Nomad's, naming the Variable.
func (b *Backups) SyncPITRKeys(ctx context.Context, short string) (bool, error) {
	want := b.Repository().Secrets()
	if want == nil {
		return false, nil
	}
	changed := false
	_, err := b.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		changed = false
		for k, v := range want {
			if items[k] != v {
				items[k] = v
				changed = true
			}
		}
		return changed
	})
	return changed && err == nil, err
}

// DeleteStanza deletes every object of the instance's stanza from the S3
// repository (what pgbackrest stanza-delete removes): no point-in-time
// restore of a deprovisioned instance is offered. The node job must be
// stopped (nothing archives any more). Without S3 it does nothing (a
// directory repository goes with the cleanup job); a stanza already gone is
// not an error. Errors: S3's, worth retrying.
func (r Repository) DeleteStanza(ctx context.Context, short string) error {
	s3 := r.S3
	if s3 == nil {
		return nil
	}
	client, err := newS3Client(s3Endpoint{host: net.JoinHostPort(s3.Host, strconv.Itoa(s3.Port)), secure: true,
		region: s3.Region, keyID: s3.AccessKeyID, keySecret: s3.SecretAccessKey, caPEM: s3.CAPEM})
	if err != nil {
		return fmt.Errorf("the pgBackRest S3 repository: %w", err)
	}
	for _, dir := range []string{"archive", "backup"} {
		what := fmt.Sprintf("the %s of stanza %s in the pgBackRest S3 repository", dir, short)
		if err := removePrefix(ctx, client, s3.Bucket, stanzaPrefix(s3.Path, dir, short), what); err != nil {
			return err
		}
	}
	return nil
}

// stanzaPrefix is the object prefix of dir ("archive" or "backup") of
// stanza short in a repository at path in its bucket.
func stanzaPrefix(path, dir, short string) string {
	prefix := strings.Trim(path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return prefix + dir + "/" + short + "/"
}
