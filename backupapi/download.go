package backupapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

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
