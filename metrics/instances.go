package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgbroker/pgbroker/stats"
)

// Snapshots gives the last sampled figures of every live instance, by
// instance id (sampler.Sampler).
type Snapshots interface {
	Latest() map[string]stats.Snapshot
}

var (
	nodeLabels     = []string{"instance_id", "node"}
	instanceLabels = []string{"instance_id"}

	cpuPercent  = prometheus.NewDesc("pgbroker_instance_cpu_percent", "CPU of the node's Nomad allocation, percent of one core (Nomad CpuStats.Percent).", nodeLabels, nil)
	memoryBytes = prometheus.NewDesc("pgbroker_instance_memory_bytes", "Memory of the node's Nomad allocation in bytes (Nomad MemoryStats.Usage, cgroups v2 memory.current).", nodeLabels, nil)
	memoryMax   = prometheus.NewDesc("pgbroker_instance_memory_max_bytes", "Highest memory of the node's allocation in bytes seen by this broker since the allocation started.", nodeLabels, nil)
	memoryLimit = prometheus.NewDesc("pgbroker_instance_memory_limit_bytes", "Memory Nomad allocated to the node's allocation in bytes.", nodeLabels, nil)
	swapBytes   = prometheus.NewDesc("pgbroker_instance_swap_bytes", "Swap of the node's Nomad allocation in bytes (Nomad MemoryStats.Swap).", nodeLabels, nil)
	swapMax     = prometheus.NewDesc("pgbroker_instance_swap_max_bytes", "Highest swap of the node's allocation in bytes seen by this broker since the allocation started.", nodeLabels, nil)
	connections = prometheus.NewDesc("pgbroker_instance_connections", "Client backends in the instance's pg_stat_activity.", instanceLabels, nil)
	maxConns    = prometheus.NewDesc("pgbroker_instance_max_connections", "The instance's max_connections setting.", instanceLabels, nil)
	dataSize    = prometheus.NewDesc("pgbroker_instance_data_size_bytes", "pg_database_size of the instance's database in bytes (logical size).", instanceLabels, nil)
	diskSize    = prometheus.NewDesc("pgbroker_instance_disk_size_bytes", "Bytes of every file under the instance's data directory, WAL included (physical size).", instanceLabels, nil)
)

// instanceCollector exports the sampler's last figures of each instance:
// what the dashboard shows, as of the last sampling round.
type instanceCollector struct{ src Snapshots }

// InstanceCollector is the collector of the per-instance gauges, for
// Handler's extra collectors.
func InstanceCollector(src Snapshots) prometheus.Collector { return instanceCollector{src} }

func (c instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cpuPercent, memoryBytes, memoryMax, memoryLimit, swapBytes, swapMax, connections, maxConns, dataSize, diskSize} {
		ch <- d
	}
}

func (c instanceCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for id, s := range c.src.Latest() {
		for _, n := range s.Nodes {
			gauge(cpuPercent, n.CPUPercent, id, n.Name)
			gauge(memoryBytes, float64(n.MemoryBytes), id, n.Name)
			gauge(memoryMax, float64(n.MemoryMaxBytes), id, n.Name)
			gauge(memoryLimit, float64(n.MemoryLimitBytes), id, n.Name)
			gauge(swapBytes, float64(n.SwapBytes), id, n.Name)
			gauge(swapMax, float64(n.SwapMaxBytes), id, n.Name)
		}
		d := s.Database
		if d.MaxConnections == 0 {
			continue // not read yet
		}
		gauge(connections, float64(d.Connections), id)
		gauge(maxConns, float64(d.MaxConnections), id)
		gauge(dataSize, float64(d.DataSizeBytes), id)
		gauge(diskSize, float64(d.DiskSizeBytes), id)
	}
}
