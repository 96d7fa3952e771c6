package backupstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates an S3-compatible bucket.
type S3Config struct {
	Endpoint        string // base URL, "https://s3.example.com" or "http://127.0.0.1:7070"
	Region          string // signing region, "us-east-1" when the server has none
	Bucket          string
	Prefix          string // prepended to every key, "" or ending in "/"
	AccessKeyID     string
	SecretAccessKey string
}

// S3 stores dumps as objects of one bucket (path-style requests, SigV4).
type S3 struct {
	client *minio.Client
	cfg    S3Config
}

// NewS3 returns the S3 storage of cfg. It does not contact the server.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("S3 endpoint %q must be http(s)://host[:port]", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("S3 bucket is empty")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	return &S3{client: client, cfg: cfg}, nil
}

// ObjectKey is the object name of a dump key (the prefix and the key).
func (s *S3) ObjectKey(key string) string { return s.cfg.Prefix + key }

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
