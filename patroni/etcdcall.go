package patroni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// EtcdError is an answer of etcd's JSON gateway other than 200: its HTTP
// status and the gRPC error it carries ({"error": ..., "code": ...}).
type EtcdError struct {
	Endpoint string // host:port that answered
	Status   string // HTTP status line, e.g. "403 Forbidden"
	Code     int    // gRPC status code: 7 permission denied, 9 failed precondition, 16 unauthenticated
	Message  string // etcd's text, e.g. "etcdserver: permission denied"
}

func (e *EtcdError) Error() string {
	return fmt.Sprintf("etcd %s answered %s: %s", e.Endpoint, e.Status, e.Message)
}

// etcdSays reports whether err is an answer of etcd whose text is message
// ("etcdserver: " left out).
func etcdSays(err error, message string) bool {
	var e *EtcdError
	return errors.As(err, &e) && e.Message == "etcdserver: "+message
}

// call POSTs body to path as the DCS's user: it authenticates first when it
// holds no token, and once more when etcd refuses the token (a simple token
// expires after 5 minutes unused, and with a restart of etcd).
func (d *DCS) call(ctx context.Context, path string, body, out any) error {
	if d.setupErr != nil {
		return d.setupErr
	}
	token, err := d.authToken(ctx, "")
	if err != nil {
		return err
	}
	err = d.post(ctx, path, token, body, out)
	if !etcdSays(err, "invalid auth token") || d.user == "" {
		return err
	}
	if token, err = d.authToken(ctx, token); err != nil {
		return err
	}
	return d.post(ctx, path, token, body, out)
}

// authToken returns the token to send: the one held, or when none is held
// or it is stale (the one etcd refused), a new one from POST
// /v3/auth/authenticate. No user: "".
func (d *DCS) authToken(ctx context.Context, stale string) (string, error) {
	if d.user == "" {
		return "", nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.token != "" && d.token != stale {
		return d.token, nil
	}
	var answer struct {
		Token string `json:"token"`
	}
	err := d.post(ctx, "/v3/auth/authenticate", "", map[string]string{"name": d.user, "password": d.password}, &answer)
	if err != nil {
		return "", fmt.Errorf("authenticate to etcd as %s: %w", d.user, err)
	}
	if answer.Token == "" {
		return "", fmt.Errorf("authenticate to etcd as %s: no token in the answer (is etcd's authentication on?)", d.user)
	}
	d.token = answer.Token
	return d.token, nil
}

// post POSTs body as JSON to path on the endpoints in turn, with token in
// the Authorization header when set, until one answers 200, and decodes
// that answer into out. An endpoint that does not answer or answers
// otherwise is followed by the next; the last error is returned (an
// *EtcdError when etcd answered).
func (d *DCS) post(ctx context.Context, path, token string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode etcd %s: %w", path, err)
	}
	lastErr := errors.New("no etcd endpoint")
	for _, ep := range d.endpoints {
		text, err := d.postTo(ctx, ep, path, token, payload)
		if err != nil {
			lastErr = err
			continue
		}
		if err := json.Unmarshal(text, out); err != nil {
			return fmt.Errorf("decode etcd %s answer of %s: %w", path, ep, err)
		}
		return nil
	}
	return lastErr
}

// postTo POSTs payload to path on endpoint ep and returns the body of a 200
// answer; another answer is an *EtcdError.
func (d *DCS) postTo(ctx context.Context, ep, path, token string, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ep+path, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("etcd endpoint %q: %w", ep, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read etcd %s answer of %s: %w", path, ep, err)
	}
	if resp.StatusCode == http.StatusOK {
		return text, nil
	}
	e := &EtcdError{Endpoint: ep, Status: resp.Status}
	var answer struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		Code    int    `json:"code"`
	}
	if json.Unmarshal(text, &answer) == nil && (answer.Message != "" || answer.Error != "") {
		e.Code, e.Message = answer.Code, answer.Message
		if e.Message == "" {
			e.Message = answer.Error
		}
	} else {
		e.Message = strings.TrimSpace(string(text))
	}
	return nil, e
}
