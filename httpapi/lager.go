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

// slogLevel maps lager's levels: brokerapi logs every request at INFO, which
// is request-level detail (Debug); its ERROR lines are mostly refused
// requests (Warn); FATAL is Error.
func slogLevel(l lager.LogLevel) slog.Level {
	switch l {
	case lager.DEBUG, lager.INFO:
		return slog.LevelDebug
	case lager.ERROR:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (s slogSink) Log(f lager.LogFormat) {
	attrs := make([]slog.Attr, 0, len(f.Data)+1)
	attrs = append(attrs, slog.String("source", "brokerapi"))
	for k, v := range f.Data {
		attrs = append(attrs, slog.Any(k, v))
	}
	s.log.LogAttrs(context.Background(), slogLevel(f.LogLevel), f.Message, attrs...)
}

// enabledSink drops records slog would not write before the redacting sink
// spends time (JSON round trips, regular expressions) on them.
type enabledSink struct {
	log  *slog.Logger
	next lager.Sink
}

func (s enabledSink) Log(f lager.LogFormat) {
	if s.log.Enabled(context.Background(), slogLevel(f.LogLevel)) {
		s.next.Log(f)
	}
}
