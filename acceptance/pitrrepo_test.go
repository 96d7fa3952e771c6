package acceptance

import (
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// pitrRepo is pgBackRest's repository in a point-in-time recovery case: the
// directory under the data root (the stack's default) or an S3 bucket on
// versitygw over HTTPS (startPITRS3).
type pitrRepo struct {
	name string        // "Filesystem" or "S3"
	s3   *pitrS3Server // nil for the directory
}

// openPITRRepo starts what the repository named storage needs.
func openPITRRepo(t *testing.T, storage string) pitrRepo {
	t.Helper()
	if storage != "S3" {
		return pitrRepo{name: storage}
	}
	s3 := startPITRS3(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("versitygw log:\n%s", tail(s3.logs.String(), 50))
		}
	})
	return pitrRepo{name: storage, s3: s3}
}

// env is the broker's settings for the repository (none: the directory).
func (r pitrRepo) env() []string {
	if r.s3 == nil {
		return nil
	}
	return r.s3.env
}

// secrets are the repository's secrets, none of which may leak.
func (r pitrRepo) secrets() []string {
	if r.s3 == nil {
		return nil
	}
	return []string{r.s3.secret}
}

// dir is where the files of the stanza's kind ("archive", "backup") lie on
// disk: under the data root, or in versitygw's posix backend.
func (r pitrRepo) dir(kind, short string) string {
	if r.s3 == nil {
		return filepath.Join(dataRoot, "pgbackrest", kind, short)
	}
	return filepath.Join(r.s3.root, r.s3.bucket, pitrS3Prefix, kind, short)
}

// files lists the files of the stanza's kind, sorted, as paths below
// dir(kind, short) starting with "/"; in S3 as the bucket lists them.
func (r pitrRepo) files(t *testing.T, kind, short string) []string {
	t.Helper()
	if r.s3 != nil {
		prefix := pitrS3Prefix + "/" + kind + "/" + short
		names := r.s3.objects(t, prefix+"/")
		for i := range names {
			names[i] = strings.TrimPrefix(names[i], prefix)
		}
		return names
	}
	var names []string
	root := r.dir(kind, short)
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, strings.TrimPrefix(path, root))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// assertStanza: the instance's stanza is in the repository (archive.info,
// backup.info, one full backup's manifest, whose path on disk it returns);
// with S3, in the bucket and in versitygw's backend, not in the directory.
func (r pitrRepo) assertStanza(t *testing.T, short string) string {
	t.Helper()
	archive, backup := r.files(t, "archive", short), r.files(t, "backup", short)
	t.Logf("in the %s repository: %d archive files, %d backup files", r.name, len(archive), len(backup))
	if !slices.Contains(archive, "/archive.info") || !slices.Contains(backup, "/backup.info") || !hasSuffix(backup, "/backup.manifest") {
		t.Fatalf("the stanza is not in the %s repository: archive %v, backup %v", r.name, archive, backup)
	}
	if r.s3 != nil && (exists(filepath.Join(dataRoot, "pgbackrest", "archive", short)) || exists(filepath.Join(dataRoot, "pgbackrest", "backup", short))) {
		t.Error("the stanza is (also) in the directory repository on the client")
	}
	manifests, err := filepath.Glob(filepath.Join(r.dir("backup", short), "*F", "backup.manifest"))
	if err != nil || len(manifests) != 1 {
		t.Fatalf("base backup manifests %v (%v), want one", manifests, err)
	}
	return manifests[0]
}

// hasArchiveInfo reports whether the instance's stanza has its archive.info
// in the repository.
func (r pitrRepo) hasArchiveInfo(t *testing.T, short string) bool {
	t.Helper()
	return slices.Contains(r.files(t, "archive", short), "/archive.info")
}

// assertNoStanza: nothing of the instance's stanza is left in the repository.
func (r pitrRepo) assertNoStanza(t *testing.T, short string) {
	t.Helper()
	for _, kind := range []string{"archive", "backup"} {
		left := r.files(t, kind, short)
		if len(left) != 0 || (r.s3 == nil && exists(r.dir(kind, short))) {
			t.Errorf("%d files of the stanza's %s left in the %s repository after deprovisioning: %v", len(left), kind, r.name, left[:min(len(left), 5)])
		}
	}
}
