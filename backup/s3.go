package backup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates the S3-compatible bucket of the dumps: dump jobs upload
// to it and restore jobs fetch from it (their keys reach them only through
// their own Nomad Variable), the broker reads and deletes there (S3).
type S3Config struct {
	Endpoint        string // base URL, "https://s3.example.com" or "http://127.0.0.1:7070"
	Region          string // signing region, "us-east-1" when the server has none
	Bucket          string
	Prefix          string // prepended to every key ("" or a path; a missing final "/" is added)
	AccessKeyID     string
	SecretAccessKey string
	PartSizeMiB     int // part size of a dump job's multipart upload in MiB (5 to 5120); 0: the job's default
}

// ObjectName is the object name of the dump key key: the prefix, then the
// key.
func (c *S3Config) ObjectName(key string) string {
	if c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/") {
		return c.Prefix + "/" + key
	}
	return c.Prefix + key
}

// setDumpVars sets the backup job's S3 variables (nomad-jobs/backup.nomad.hcl)
// for the dump key; nothing when c is nil (dumps in the backup directory).
func (c *S3Config) setDumpVars(vars map[string]any, mode, key string) {
	if c == nil {
		return
	}
	vars["s3_endpoint"], vars["s3_region"], vars["s3_bucket"] = c.Endpoint, c.Region, c.Bucket
	vars["s3_object"] = c.ObjectName(key)
	if mode == "dump" && c.PartSizeMiB > 0 {
		vars["s3_part_size_mib"] = c.PartSizeMiB
	}
}

// s3Endpoint is what newS3Client needs to reach a bucket's server.
type s3Endpoint struct {
	host      string // host[:port]
	secure    bool   // HTTPS
	region    string
	keyID     string
	keySecret string
	caPEM     string // PEM certificates the server's certificate chains to; "": the system's CAs
}

// newS3Client is the one S3 client of the broker (minio-go, SigV4,
// path-style requests as pgBackRest makes them), for the dump storage and
// for pgBackRest's repository alike.
func newS3Client(e s3Endpoint) (*minio.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(e.caPEM)) {
			return nil, errors.New("the CA certificates of the S3 endpoint do not parse")
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
		// As minio-go's own transport: bodies byte for byte, so sizes and
		// ranges are those of the object.
		DisableCompression:    true,
		ResponseHeaderTimeout: time.Minute,
	}
	client, err := minio.New(e.host, &minio.Options{
		Creds:        credentials.NewStaticV4(e.keyID, e.keySecret, ""),
		Secure:       e.secure,
		Region:       e.region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    transport,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	return client, nil
}

// S3 stores dumps as objects of one bucket.
type S3 struct {
	client *minio.Client
	cfg    S3Config
}

// NewS3 returns the S3 storage of cfg. It does not contact the server.
// Errors: an endpoint that is not http(s)://host[:port], an empty bucket.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("S3 endpoint %q must be http(s)://host[:port]", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("S3 bucket is empty")
	}
	client, err := newS3Client(s3Endpoint{host: u.Host, secure: u.Scheme == "https", region: cfg.Region,
		keyID: cfg.AccessKeyID, keySecret: cfg.SecretAccessKey})
	if err != nil {
		return nil, err
	}
	return &S3{client: client, cfg: cfg}, nil
}

// ObjectKey is the object name of a dump key (S3Config.ObjectName).
func (s *S3) ObjectKey(key string) string { return s.cfg.ObjectName(key) }

// Open implements Storage. The object reads (and, after a Seek, re-reads)
// with ranged GETs.
func (s *S3) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.ObjectKey(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("get dump from S3: %w", err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("get dump from S3: %w", err)
	}
	return obj, info.Size, nil
}

// Delete implements Storage.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.ObjectKey(key), minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("delete dump from S3: %w", err)
	}
	return nil
}

// removePrefix deletes every object of bucket under prefix (none is not an
// error). Errors name what: "the archive of stanza x in ...".
func removePrefix(ctx context.Context, client *minio.Client, bucket, prefix, what string) error {
	objects := make(chan minio.ObjectInfo)
	listErr := make(chan error, 1)
	go func() {
		defer close(objects)
		for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
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
	for e := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && removeErr == nil && minio.ToErrorResponse(e.Err).Code != minio.NoSuchKey {
			removeErr = fmt.Errorf("delete %s from %s: %w", e.ObjectName, what, e.Err)
		}
	}
	if err := <-listErr; err != nil {
		return fmt.Errorf("list %s: %w", what, err)
	}
	return removeErr
}
