package reconcile

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the loop's Prometheus metrics; register them with
// Collectors.
type Metrics struct {
	repairs  *prometheus.CounterVec
	seconds  prometheus.Histogram
	degraded prometheus.Gauge
}

func newMetrics() *Metrics {
	return &Metrics{
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgbroker_reconcile_repairs_total",
			Help: "Repairs of instances, by reason (lost: Nomad lacked a job or a Variable; drift: a job's definition differed from the broker's) and result (repaired, failed)."},
			[]string{"reason", "result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgbroker_reconcile_repair_duration_seconds",
			Help:    "Time (seconds) from the start of a successful repair until the instance answered again.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300}}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgbroker_reconcile_degraded_instances",
			Help: "Instances the last reconcile pass of this broker found degraded (Nomad lacks something it may not repair, or a repair failed)."}),
	}
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.repairs, m.seconds, m.degraded}
}
