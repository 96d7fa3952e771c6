package httpapi

import (
	"context"
	"log/slog"

	"code.cloudfoundry.org/lager/v3"
)

// slogSink bridges brokerapi's lager logs to slog, one JSON event a line.
// It is wrapped in lager's RedactingSink, which masks values that look like
// secrets (passwords, keys, tokens) before they reach it.
type slogSink struct{ log *slog.Logger }

func (s slogSink) Log(f lager.LogFormat) {
	level := slog.LevelInfo
	switch f.LogLevel {
	case lager.DEBUG:
		level = slog.LevelDebug
	case lager.ERROR, lager.FATAL:
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, len(f.Data)+1)
	attrs = append(attrs, slog.String("source", "brokerapi"))
	for k, v := range f.Data {
		attrs = append(attrs, slog.Any(k, v))
	}
	s.log.LogAttrs(context.Background(), level, f.Message, attrs...)
}
