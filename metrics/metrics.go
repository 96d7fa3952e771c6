// Package metrics serves the broker's Prometheus metrics (/metrics):
// pgbroker_backup_last_success_timestamp_seconds per instance, read from the
// state database at each scrape, beside the Go runtime and process metrics.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgbroker/pgbroker/store"
)

// BackupHealth is what the backup collector reads; *store.Backups is one.
type BackupHealth interface {
	LastSuccessfulBackups(ctx context.Context) ([]store.BackupHealth, error)
}

var lastSuccess = prometheus.NewDesc("pgbroker_backup_last_success_timestamp_seconds",
	"Unix time (seconds) at which the newest successful dump of the instance finished; absent when it has none.",
	[]string{"instance_id"}, nil)

type backupCollector struct {
	src BackupHealth
	log *slog.Logger
}

func (c backupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lastSuccess }

func (c backupCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	health, err := c.src.LastSuccessfulBackups(ctx)
	if err != nil {
		c.log.Warn("collect backup metrics", slog.String("error", err.Error()))
		ch <- prometheus.NewInvalidMetric(lastSuccess, err)
		return
	}
	for _, h := range health {
		ch <- prometheus.MustNewConstMetric(lastSuccess, prometheus.GaugeValue, float64(h.LastSuccess.UnixNano())/1e9, h.InstanceID)
	}
}

// Handler returns the /metrics handler (Prometheus text exposition format),
// serving extra collectors too (the reconcile loop's).
func Handler(src BackupHealth, log *slog.Logger, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(backupCollector{src: src, log: log}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
