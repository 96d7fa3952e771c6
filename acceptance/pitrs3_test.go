package acceptance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

// pitrS3Server is a versitygw (scripts/build-versitygw.sh) serving HTTPS on
// loopback, with a certificate for localhost from a CA of its own, and one
// bucket for pgBackRest's repository.
type pitrS3Server struct {
	env     []string // the broker's PGBROKER_PITR_S3_* settings
	client  *minio.Client
	bucket  string
	root    string // versitygw's posix backend: <root>/<bucket>/<object name>
	secret  string // the secret access key
	keyID   string
	logs    *syncBuffer
	address string
	bin     string
	dir     string // certificates and the backend
	pool    *x509.CertPool
	cmd     *exec.Cmd
}

const pitrS3Prefix = "acceptance/pgbackrest"

func startPITRS3(t *testing.T) *pitrS3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		// Never skipped: the S3 repository is not tested without it.
		t.Fatal("versitygw is not on PATH: run scripts/build-versitygw.sh (make test does) and eval \"$(scripts/stack.sh env)\"")
	}
	dir := t.TempDir()
	now := time.Now()
	caPEM, caKeyPEM, err := pki.NewCA("acceptance S3 CA", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCA(caPEM, caKeyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.ServerRequest{CommonName: "localhost", Hosts: []string{"localhost", "127.0.0.1"}, NotAfter: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &pitrS3Server{bucket: "pitr-acceptance", root: filepath.Join(dir, "posix"), logs: &syncBuffer{},
		address: fmt.Sprintf("localhost:%d", port), bin: bin, dir: dir, pool: x509.NewCertPool()}
	s.pool.AppendCertsFromPEM(caPEM)
	if err := os.Mkdir(s.root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	s.launch(t, "pitr-acceptance")
	return s
}

// launch starts versitygw with keys keyID and a new secret, waits until it
// answers, creates the bucket when missing, and sets env to match.
func (s *pitrS3Server) launch(t *testing.T, keyID string) {
	t.Helper()
	s.keyID, s.secret = keyID, "pitr/S3+secret-"+uuid.NewString()[:8]
	suite.addSecret(s.secret)
	port := s.address[strings.LastIndexByte(s.address, ':')+1:]
	s.cmd = exec.Command(s.bin, "--port", "127.0.0.1:"+port, "--cert", filepath.Join(s.dir, "cert.pem"),
		"--key", filepath.Join(s.dir, "key.pem"), "posix", s.root)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.keyID, "ROOT_SECRET_KEY="+s.secret)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var err error
	s.client, err = minio.New(s.address, &minio.Options{Creds: credentials.NewStaticV4(s.keyID, s.secret, ""), Region: "us-east-1",
		Secure: true, BucketLookup: minio.BucketLookupPath,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		found, err := s.client.BucketExists(context.Background(), s.bucket)
		if err == nil && !found {
			err = s.client.MakeBucket(context.Background(), s.bucket, minio.MakeBucketOptions{Region: "us-east-1"})
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create bucket on versitygw over HTTPS: %v\n%s", err, s.logs.String())
		}
	}
	s.env = []string{"PGBROKER_PITR_S3_ENDPOINT=https://" + s.address, "PGBROKER_PITR_S3_BUCKET=" + s.bucket,
		"PGBROKER_PITR_S3_PREFIX=" + pitrS3Prefix, "PGBROKER_PITR_S3_ACCESS_KEY_ID=" + s.keyID,
		"PGBROKER_PITR_S3_SECRET_ACCESS_KEY=" + s.secret, "PGBROKER_PITR_S3_CA_FILE=" + filepath.Join(s.dir, "ca.pem")}
}

// rotate restarts versitygw with new keys: the old ones stop working.
func (s *pitrS3Server) rotate(t *testing.T) {
	t.Helper()
	s.stop()
	s.launch(t, "pitr-rotated")
}

func (s *pitrS3Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// objects lists the object names under prefix in the bucket, sorted.
func (s *pitrS3Server) objects(t *testing.T, prefix string) []string {
	t.Helper()
	var names []string
	for obj := range s.client.ListObjects(context.Background(), s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s in the bucket: %v", prefix, obj.Err)
		}
		names = append(names, obj.Key)
	}
	sort.Strings(names)
	return names
}

// rotateS3Keys: the S3 server now takes new keys only, and the broker,
// restarted with them, brings them to the running node (the renewal sweep at
// start) without a new job version: a point-in-time restore, whose
// pgbackrest check and restore run with the node's pgbackrest.conf, reaches
// a moment after the rotation.
func rotateS3Keys(t *testing.T, in *pitrInstance, repo pitrRepo, at rowsAt) {
	t.Helper()
	s3 := repo.s3
	versions := len(jobVersions(t, naming.NodesJobID(in.short)))
	s3.rotate(t)
	in.b.stop()
	in.b.env = append(in.b.env, s3.env...) // the last value of a key wins
	in.b.start()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		v, _, err := nomadClient(t).Variables().Read("nomad/jobs/"+naming.NodesJobID(in.short), nil)
		if err == nil && v.Items["pitr_s3_key"] == s3.keyID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated S3 keys did not reach the node job's Variable within a minute (%v)", err)
		}
	}
	restoreInPlace(t, in, in.momentAfter(t, at, "after the rotation"), "")
	if n := len(jobVersions(t, naming.NodesJobID(in.short))); n != versions+1 {
		t.Errorf("%d node job versions after the rotation and a restore, want %d (the rotation needs none)", n, versions+1)
	}
}

// assertKeysFromVariable: with an S3 repository, the keys reach the node job
// through its Nomad Variable: the Variable holds them and the node's
// pgbackrest.conf template reads them from it.
func (r pitrRepo) assertKeysFromVariable(t *testing.T, short string) {
	t.Helper()
	if r.s3 == nil {
		return
	}
	v, _, err := nomadClient(t).Variables().Read("nomad/jobs/"+naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Items["pitr_s3_key_secret"] != r.s3.secret || v.Items["pitr_s3_key"] != r.s3.keyID {
		t.Error("the node job's Variable does not hold the S3 keys")
	}
	job, _, err := nomadClient(t).Jobs().Info(naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	conf := ""
	for _, task := range job.TaskGroups[0].Tasks {
		for _, tmpl := range task.Templates {
			if *tmpl.DestPath == "secrets/pgbackrest.conf" {
				conf += *tmpl.EmbeddedTmpl
			}
		}
	}
	if !strings.Contains(conf, "repo1-type=s3") || !strings.Contains(conf, "repo1-s3-key-secret={{ .pitr_s3_key_secret.Value }}") {
		t.Errorf("the node job's pgbackrest.conf does not read the repository's keys from its Variable:\n%s", conf)
	}
}

// jobVersions returns the versions Nomad keeps of job jobID.
func jobVersions(t *testing.T, jobID string) []*api.Job {
	t.Helper()
	versions, _, _, err := nomadClient(t).Jobs().Versions(jobID, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return versions
}
