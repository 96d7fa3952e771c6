package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// The S3-compatible repository of pgBackRest (issue #4 "Backups", item 3
// "Storage"): PGBROKER_PITR_S3_ENDPOINT set puts the WAL archive and the base
// backups in a bucket instead of the directory PGBROKER_PITR_REPO. Every
// value but the keys ends up in pgBackRest's configuration file, so each is
// checked against a strict pattern (no spaces, no line breaks); the keys reach
// the jobs through Nomad Variables only.

var (
	s3Host     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
	s3Bucket   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	s3Region   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	s3Segment  = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	s3KeyChars = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`) // printable ASCII, no space
)

// PITRS3Location is where pgBackRest's S3 repository is, as its options
// want it: Host (repo1-s3-endpoint), Port (repo1-storage-port, 443 unless
// the endpoint names one) and Path (repo1-path: "/" followed by the prefix
// without its leading and trailing slashes, "/pgbackrest" by default).
type PITRS3Location struct {
	Host string
	Port int
	Path string
}

// PITRS3 returns the location of the S3 repository given by
// PGBROKER_PITR_S3_ENDPOINT and PGBROKER_PITR_S3_PREFIX; ok is false when
// the endpoint is unset (the repository is the directory PITRRepository).
// Errors name the variable.
func (c Config) PITRS3() (loc PITRS3Location, ok bool, err error) {
	if c.PITRS3Endpoint == "" {
		return PITRS3Location{}, false, nil
	}
	u, err := url.Parse(c.PITRS3Endpoint)
	if err != nil || u.Scheme != "https" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" ||
		!s3Host.MatchString(u.Hostname()) {
		return PITRS3Location{}, false, fmt.Errorf("PGBROKER_PITR_S3_ENDPOINT %q must be https://host[:port] (pgBackRest reaches S3 over TLS only)", c.PITRS3Endpoint)
	}
	loc = PITRS3Location{Host: u.Hostname(), Port: 443}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return PITRS3Location{}, false, fmt.Errorf("PGBROKER_PITR_S3_ENDPOINT %q has a port outside 1 to 65535", c.PITRS3Endpoint)
		}
		loc.Port = n
	}
	// Not empty: the jobs' pitr_repo is a path other than /.
	prefix := strings.Trim(c.PITRS3Prefix, "/")
	for _, seg := range strings.Split(prefix, "/") {
		if !s3Segment.MatchString(seg) || seg == "." || seg == ".." {
			return PITRS3Location{}, false, fmt.Errorf("PGBROKER_PITR_S3_PREFIX %q must be slash-separated names of letters, digits, dots, dashes and underscores (not empty, no empty, . or .. names)", c.PITRS3Prefix)
		}
	}
	loc.Path = "/" + prefix
	return loc, true, nil
}

// PITRS3CACertificates returns the CERTIFICATE blocks of
// PGBROKER_PITR_S3_CA_FILE re-encoded as PEM (nothing else of the file: it is
// handed to the jobs as a file pgBackRest trusts), "" when the variable is
// unset (the system's CAs). Errors name the variable: an unreadable file, no
// certificate, a certificate that does not parse.
func (c Config) PITRS3CACertificates() (string, error) {
	if c.PITRS3CAFile == "" {
		return "", nil
	}
	return certificatesOf("PGBROKER_PITR_S3_CA_FILE", c.PITRS3CAFile)
}

// checkPITRS3 checks the PGBROKER_PITR_S3_* settings. The keys are never
// quoted in errors.
func (c Config) checkPITRS3() error {
	if c.PITRS3Endpoint == "" {
		for name, v := range map[string]string{"PGBROKER_PITR_S3_BUCKET": c.PITRS3Bucket, "PGBROKER_PITR_S3_ACCESS_KEY_ID": c.PITRS3AccessKeyID,
			"PGBROKER_PITR_S3_SECRET_ACCESS_KEY": c.PITRS3SecretAccessKey, "PGBROKER_PITR_S3_CA_FILE": c.PITRS3CAFile} {
			if v != "" {
				return fmt.Errorf("%s is set but PGBROKER_PITR_S3_ENDPOINT is not", name)
			}
		}
		return nil
	}
	if c.PITRRepo != "" {
		return fmt.Errorf("PGBROKER_PITR_REPO %q and PGBROKER_PITR_S3_ENDPOINT are both set: the repository is either a directory or a bucket", c.PITRRepo)
	}
	if _, _, err := c.PITRS3(); err != nil {
		return err
	}
	if !s3Bucket.MatchString(c.PITRS3Bucket) {
		return fmt.Errorf("PGBROKER_PITR_S3_BUCKET %q must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and dashes (required with PGBROKER_PITR_S3_ENDPOINT)", c.PITRS3Bucket)
	}
	if !s3Region.MatchString(c.PITRS3Region) {
		return fmt.Errorf("PGBROKER_PITR_S3_REGION %q must be 1 to 64 letters, digits, dashes and underscores", c.PITRS3Region)
	}
	for name, v := range map[string]string{"PGBROKER_PITR_S3_ACCESS_KEY_ID": c.PITRS3AccessKeyID, "PGBROKER_PITR_S3_SECRET_ACCESS_KEY": c.PITRS3SecretAccessKey} {
		if !s3KeyChars.MatchString(v) {
			return fmt.Errorf("%s must be 1 to 256 printable ASCII characters without spaces (required with PGBROKER_PITR_S3_ENDPOINT)", name)
		}
	}
	_, err := c.PITRS3CACertificates()
	return err
}
