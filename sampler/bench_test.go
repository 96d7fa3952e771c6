package sampler

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSamplingRound1000 runs sampling rounds over 1,000 simulated
// instances (fake Nomad figures and database reads, in-memory series) at
// the default pace (15s, database every 5m), and reports the CPU of one
// round as a share of one core over the interval (core-%), and the heap
// the sampler holds. Beside it, the reference: what reading every
// instance's database with a fresh login each round would add, from the
// client's side of a TLS 1.3 handshake (ECDSA P-256) and a SCRAM-SHA-256
// proof (PBKDF2, 4,096 iterations) measured here (fresh-login-core-%).
func BenchmarkSamplingRound1000(b *testing.B) {
	src := &fakeSource{insts: someInstances(1000), dbReads: map[string]int{}}
	benchRounds(b, src, src)
}

// BenchmarkSamplingRound1000ThroughNomadHTTP is the same with the container
// figures read through the real adapter (nomad.Cluster, Nomad's api
// client: one allocation list, 1,000 stats requests and their JSON) from
// an in-process fake Nomad, whose serving side is counted too: an upper
// bound of the broker's cost per round.
func BenchmarkSamplingRound1000ThroughNomadHTTP(b *testing.B) {
	src := &fakeSource{insts: someInstances(1000), dbReads: map[string]int{}}
	ns, stop := newNomadSource(b, src)
	defer stop()
	benchRounds(b, ns, src)
}

func benchRounds(b *testing.B, src Source, insts Instances) {
	cfg := Config{Interval: 15 * time.Second, DatabaseInterval: 5 * time.Minute}
	s, err := New(src, insts, newFakeSeries(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for r := range 20 { // every database read once, the tiers warm
		_ = s.Round(context.Background(), now.Add(time.Duration(r)*cfg.Interval))
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := s.Round(context.Background(), now.Add(time.Duration(20+i)*cfg.Interval)); err != nil {
			b.Fatal(err)
		}
	}
	perRound := (cpuTime() - start) / time.Duration(b.N)
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(100*perRound.Seconds()/cfg.Interval.Seconds(), "core-%")
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
	login := freshLoginCPU(b, 20)
	b.ReportMetric(100*1000*login.Seconds()/cfg.Interval.Seconds(), "fresh-login-core-%")
	b.ReportMetric(100*1000*login.Seconds()/cfg.DatabaseInterval.Seconds(), "spread-login-core-%")
}

// freshLoginCPU measures the CPU of the client's side of n logins: a TLS
// handshake over an in-memory pipe and a SCRAM-SHA-256 salted password.
func freshLoginCPU(b *testing.B, n int) time.Duration {
	b.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node"}, DNSNames: []string{"node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	var client time.Duration
	for range n {
		c, sv := net.Pipe()
		done := make(chan struct{})
		go func() { _ = tls.Server(sv, server).Handshake(); close(done) }()
		t0 := cpuTime()
		if err := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "node"}).Handshake(); err != nil {
			b.Fatal(err)
		}
		if _, err := pbkdf2.Key(sha256.New, "password", []byte("salt-of-16-bytes"), 4096, 32); err != nil {
			b.Fatal(err)
		}
		<-done
		client += cpuTime() - t0
		c.Close()
		sv.Close()
	}
	// The server's half ran in the same process during the measure: halve.
	return client / time.Duration(2*n)
}
