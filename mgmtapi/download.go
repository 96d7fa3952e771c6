package mgmtapi

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"
)

// GET /api/instances/{instance_id}/backups/{backup_id}/download: 200 with
// the dump (pg_restore's custom format), 206 for a byte range; 409 unless
// the backup succeeded, 410 once the dump left the backup storage.
func (a backupRoutes) download(w http.ResponseWriter, r *http.Request) {
	inst, err := a.stored(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := a.succeeded(r, inst, "downloaded")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rc, _, err := a.Dumps.Open(r.Context(), b.StorageKey)
	if errors.Is(err, fs.ErrNotExist) {
		a.fail(w, r, failure(http.StatusGone, "Gone", "the dump of backup_id %s is no longer in the backup storage", b.ID))
		return
	}
	if err != nil {
		a.fail(w, r, &apiError{Status: http.StatusInternalServerError, Rule: "StorageError",
			Msg: "read the dump from the backup storage: " + err.Error(), cause: err})
		return
	}
	defer rc.Close()
	ServeDump(w, r, rc, fmt.Sprintf("%s-%s.dump", inst.ShortID, b.ID), b.SHA256, a.WriteTimeout)
}

// ServeDump writes the dump rs as the answer to r with
// http.ServeContent: Range and If-Range (against etag) work, so a
// client resumes a cut download where it stopped. The server's write
// timeout bounds each write rather than the whole answer: before every
// write the deadline moves to now + writeTimeout, so a download that keeps
// making progress is never cut, and one stalled for writeTimeout is.
func ServeDump(w http.ResponseWriter, r *http.Request, rs io.ReadSeeker, name, etag string, writeTimeout time.Duration) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	w.Header().Set("ETag", `"`+etag+`"`)
	w.Header().Set("X-Checksum-Sha256", etag)
	http.ServeContent(&progressWriter{ResponseWriter: w, rc: rc, timeout: writeTimeout}, r, "", time.Time{}, rs)
}

// progressWriter moves the connection's write deadline forward before each
// write.
type progressWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if p.timeout > 0 {
		if err := p.rc.SetWriteDeadline(time.Now().Add(p.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return 0, err
		}
	}
	return p.ResponseWriter.Write(b)
}

func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
