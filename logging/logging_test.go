package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestContextAttributesReachEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo).With(slog.String("component", "test"))
	ctx := With(context.Background(), slog.String("request_id", "req-1"))
	ctx = With(ctx, slog.String("instance_id", "i-1"))
	log.InfoContext(ctx, "one")
	log.Info("two")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var first, second map[string]any
	_ = json.Unmarshal(lines[0], &first)
	_ = json.Unmarshal(lines[1], &second)
	if first["request_id"] != "req-1" || first["instance_id"] != "i-1" || first["component"] != "test" {
		t.Fatalf("first line %s lacks context attributes", lines[0])
	}
	if _, ok := second["request_id"]; ok {
		t.Fatalf("second line %s has attributes of another context", lines[1])
	}
}
