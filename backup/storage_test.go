package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestFilesystemOpenDigestDelete(t *testing.T) {
	dir := t.TempDir()
	fsys, err := NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	content := []byte("PGDMP fake dump")
	if err := os.MkdirAll(filepath.Join(dir, "abc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "abc", "b1.dump"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, size, err := fsys.Open(ctx, "abc/b1.dump")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != string(content) || size != int64(len(content)) {
		t.Errorf("Open = %q (%d bytes)", got, size)
	}
	n, sum, err := Digest(ctx, fsys, "abc/b1.dump")
	want := sha256.Sum256(content)
	if err != nil || n != int64(len(content)) || sum != hex.EncodeToString(want[:]) {
		t.Errorf("Digest = %d, %s, %v", n, sum, err)
	}
	if err := fsys.Delete(ctx, "abc/b1.dump"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Delete(ctx, "abc/b1.dump"); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if _, _, err := fsys.Open(ctx, "abc/b1.dump"); !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Delete = %v, want ErrNotFound, which is also fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "abc")); !os.IsNotExist(err) {
		t.Errorf("empty instance directory left behind: %v", err)
	}
}

func TestFilesystemRefusesKeysOutsideItsRoot(t *testing.T) {
	fsys, _ := NewFilesystem(t.TempDir())
	for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", ".."} {
		if _, _, err := fsys.Open(context.Background(), key); err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want an invalid key error", key, err)
		}
		if err := fsys.Delete(context.Background(), key); err == nil {
			t.Errorf("Delete(%q) = nil, want an invalid key error", key)
		}
	}
	if _, err := NewFilesystem("relative/dir"); err == nil {
		t.Error("NewFilesystem(relative) = nil error")
	}
}

func TestFilesystemOpenRefusesALinkOutOfItsRoot(t *testing.T) {
	dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("not a dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "abc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "abc", "b1.dump")); err != nil {
		t.Fatal(err)
	}
	fsys, _ := NewFilesystem(dir)
	if rc, _, err := fsys.Open(context.Background(), "abc/b1.dump"); err == nil {
		rc.Close()
		t.Fatal("Open followed a symbolic link out of the backup directory")
	}
}

// TestFilesystemDeleteRefusesADirectoryLinkOutOfItsRoot: an instance
// directory replaced by a symbolic link to a directory elsewhere does not
// lead Delete (retention) to remove a file outside the backup directory.
func TestFilesystemDeleteRefusesADirectoryLinkOutOfItsRoot(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "b1.dump")
	if err := os.WriteFile(victim, []byte("not a dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "abc")); err != nil {
		t.Fatal(err)
	}
	fsys, _ := NewFilesystem(dir)
	if err := fsys.Delete(context.Background(), "abc/b1.dump"); err == nil {
		t.Error("Delete through a link out of the backup directory = nil, want an error")
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("Delete removed a file outside the backup directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "abc")); err != nil {
		t.Errorf("the link itself is gone: %v", err)
	}
}
