package provisioner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// PITRS3 is pgBackRest's repository in an S3-compatible bucket (issue #4
// "Backups", item 3 "Storage"; config PGBROKER_PITR_S3_*), reached over TLS
// with path-style requests. The node and base backup jobs get Host, Port,
// Region, Bucket, Path and CAPEM as job variables; the keys only through
// their Nomad Variable (items itemPITRS3Key and itemPITRS3KeySecret),
// rendered into the task's secrets directory.
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

// pitr reports whether point-in-time recovery is on: pgBackRest's
// repository is a directory on the clients or an S3 bucket.
func (p *Provisioner) pitr() bool { return p.cfg.PITRRepo != "" || p.cfg.PITRS3 != nil }

// setPITRVars sets the job variables locating pgBackRest's repository
// (nodes.nomad.hcl, basebackup.nomad.hcl): pitr_repo, and with S3 the
// pitr_s3_* variables, pitr_repo then being the path in the bucket.
func (p *Provisioner) setPITRVars(vars map[string]any) {
	s3 := p.cfg.PITRS3
	if s3 == nil {
		vars["pitr_repo"] = p.cfg.PITRRepo
		return
	}
	vars["pitr_repo"] = s3.Path
	vars["pitr_s3_endpoint"] = s3.Host
	vars["pitr_s3_port"] = s3.Port
	vars["pitr_s3_region"] = s3.Region
	vars["pitr_s3_bucket"] = s3.Bucket
	vars["pitr_s3_ca"] = s3.CAPEM
}

// pitrSecrets returns the Variable items of the S3 keys, nil without S3.
func (p *Provisioner) pitrSecrets() api.VariableItems {
	s3 := p.cfg.PITRS3
	if s3 == nil {
		return nil
	}
	return api.VariableItems{itemPITRS3Key: s3.AccessKeyID, itemPITRS3KeySecret: s3.SecretAccessKey}
}

// ensurePITRKeys writes the S3 keys into the node job's Nomad Variable
// (which must exist) when they are missing or differ from the configured
// ones (a key rotation), so that the node job renders them, and, with any
// pgBackRest repository, the certificate of the nodes' pgBackRest TLS
// server (for the addresses of the nodes registered now; a base backup from
// a standby makes sure it names the primary's): a Business node job renders
// it, and a job must not wait for a missing item. Errors: Nomad's, naming
// the Variable.
func (p *Provisioner) ensurePITRKeys(ctx context.Context, short string) error {
	if _, err := p.SyncPITRKeys(ctx, short); err != nil {
		return err
	}
	if !p.pitr() || p.ca == nil {
		return nil
	}
	hosts, err := p.nodeAddresses(ctx, short)
	if err != nil {
		return err
	}
	_, err = p.ensurePgBackRestServerCertificate(ctx, short, hosts)
	return err
}

// SyncPITRKeys is ensurePITRKeys reporting whether it wrote: the periodic
// renewal sweep (and its run at broker start) calls it for every instance,
// so keys rotated in the broker's PGBROKER_PITR_S3_* settings reach running
// nodes without a new job version. Their pgbackrest.conf is rendered from
// the Variable (change_mode noop), and pgBackRest reads it at each command,
// archive-push included. False without S3.
func (p *Provisioner) SyncPITRKeys(ctx context.Context, short string) (bool, error) {
	want := p.pitrSecrets()
	if want == nil {
		return false, nil
	}
	changed := false
	_, err := p.updateSecret(ctx, nodesSecretPath(short), func(items api.VariableItems) bool {
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

// deleteS3Stanza deletes every object of the instance's stanza from the S3
// repository (what pgbackrest stanza-delete removes): no point-in-time
// restore of a deprovisioned instance is offered. The node job must be
// stopped (nothing archives any more). Without S3 it does nothing; a stanza
// already gone is not an error. Errors: S3's, worth retrying.
func (p *Provisioner) deleteS3Stanza(ctx context.Context, short string) error {
	s3 := p.cfg.PITRS3
	if s3 == nil {
		return nil
	}
	client, err := s3Client(s3)
	if err != nil {
		return err
	}
	prefix := strings.Trim(s3.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	for _, dir := range []string{"archive", "backup"} {
		objects := make(chan minio.ObjectInfo)
		listErr := make(chan error, 1)
		go func() {
			defer close(objects)
			for obj := range client.ListObjects(ctx, s3.Bucket, minio.ListObjectsOptions{Prefix: prefix + dir + "/" + short + "/", Recursive: true}) {
				if obj.Err != nil {
					listErr <- obj.Err
					return
				}
				objects <- obj
			}
			listErr <- nil
		}()
		// Read every result: RemoveObjects consumes objects to the end.
		var removeErr error
		for e := range client.RemoveObjects(ctx, s3.Bucket, objects, minio.RemoveObjectsOptions{}) {
			if e.Err != nil && removeErr == nil && minio.ToErrorResponse(e.Err).Code != minio.NoSuchKey {
				removeErr = fmt.Errorf("delete %s from the pgBackRest S3 repository: %w", e.ObjectName, e.Err)
			}
		}
		if err := <-listErr; err != nil {
			return fmt.Errorf("list the %s of stanza %s in the pgBackRest S3 repository: %w", dir, short, err)
		}
		if removeErr != nil {
			return removeErr
		}
	}
	return nil
}

// s3Client is a client of the S3 repository trusting CAPEM (else the
// system's CAs), with path-style requests as pgBackRest makes them.
func s3Client(s3 *PITRS3) (*minio.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if s3.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s3.CAPEM)) {
			return nil, errors.New("the CA certificates of the pgBackRest S3 repository do not parse")
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	client, err := minio.New(net.JoinHostPort(s3.Host, strconv.Itoa(s3.Port)), &minio.Options{
		Creds:        credentials.NewStaticV4(s3.AccessKeyID, s3.SecretAccessKey, ""),
		Secure:       true,
		Region:       s3.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    transport,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client of the pgBackRest repository: %w", err)
	}
	return client, nil
}
