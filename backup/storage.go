// Dump storage: where dumps live once made. A small Storage interface, its
// filesystem backend (a directory the Nomad clients' dump jobs write into
// and the broker reads: the same host in development, a shared mount in
// production) and its S3 backend (s3.go: any S3-compatible object storage;
// dump jobs stream multipart uploads with rclone, the broker reads with
// minio-go, seeking with ranged GETs). Keys are relative slash-separated
// paths, "<instance short id>/<backup id>.dump" (naming.DumpKey).

package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrNotFound: no dump under that key. It also matches fs.ErrNotExist, so a
// reader that declares its own small interface (mgmtapi.Dumps) tells it
// apart without importing this package.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string        { return "no dump under that key" }
func (notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// Storage holds dumps by key. Implementations are safe for concurrent use.
type Storage interface {
	// Open returns the dump at key and its size in bytes. The reader seeks,
	// so a download can serve byte ranges and resume. Errors: ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
	// Delete removes the dump at key; a missing dump is not an error.
	Delete(ctx context.Context, key string) error
}

// Digest reads the dump at key through and returns its size in bytes and
// its hex SHA-256. Errors: ErrNotFound, read errors.
func Digest(ctx context.Context, s Storage, key string) (int64, string, error) {
	rc, _, err := s.Open(ctx, key)
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return 0, "", fmt.Errorf("read dump %s: %w", key, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Filesystem stores dumps as files under a root directory.
type Filesystem struct{ root string }

// NewFilesystem returns the filesystem storage rooted at dir (absolute).
func NewFilesystem(dir string) (*Filesystem, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("backup directory %q is not an absolute path", dir)
	}
	return &Filesystem{root: filepath.Clean(dir)}, nil
}

// checkKey refuses keys that are not clean relative paths.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || strings.HasPrefix(key, "../") || key == ".." {
		return fmt.Errorf("invalid dump key %q", key)
	}
	return nil
}

// Open implements Storage.
func (f *Filesystem) Open(_ context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	// Within the root only: a symbolic link leading out of it is refused.
	file, err := os.OpenInRoot(f.root, filepath.FromSlash(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open dump: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, fmt.Errorf("stat dump: %w", err)
	}
	if !st.Mode().IsRegular() {
		file.Close()
		return nil, 0, ErrNotFound
	}
	return file, st.Size(), nil
}

// Delete implements Storage. It also removes a leftover partial file and
// the key's directory once empty. Like Open, it stays within the root: a
// symbolic link leading out of it is an error, and nothing outside is
// removed.
func (f *Filesystem) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	root, err := os.OpenRoot(f.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete dump: %w", err)
	}
	defer root.Close()
	name := filepath.FromSlash(key)
	for _, n := range []string{name, name + ".partial"} {
		if err := root.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete dump: %w", err)
		}
	}
	if dir := filepath.Dir(name); dir != "." {
		_ = root.Remove(dir) // fails while other dumps are there: fine
	}
	return nil
}
