package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"
)

// Etcd returns the etcd endpoints (host:port) Patroni uses, without empty
// entries; none means Business plans are not offered.
func (c Config) Etcd() []string {
	var out []string
	for _, ep := range c.EtcdEndpoints {
		if ep = strings.TrimSpace(ep); ep != "" {
			out = append(out, ep)
		}
	}
	return out
}

// EtcdCACertificates returns the CERTIFICATE blocks of PGBROKER_ETCD_CA_FILE
// re-encoded as PEM (the broker verifies etcd against them, and the node
// jobs' Patroni gets them as a file), "" when the variable is unset. Errors
// name the variable: an unreadable file, no certificate, one that does not
// parse.
func (c Config) EtcdCACertificates() (string, error) {
	if c.EtcdCAFile == "" {
		return "", nil
	}
	return certificatesOf("PGBROKER_ETCD_CA_FILE", c.EtcdCAFile)
}

// checkEtcd checks the PGBROKER_ETCD_* settings: with endpoints, etcd is
// reached over TLS verified against a readable CA file and with a user and
// password (its authentication on); without, none of them is set. The
// password is never quoted.
func (c Config) checkEtcd() error {
	endpoints := c.Etcd()
	for _, ep := range endpoints {
		if _, port, err := net.SplitHostPort(ep); err != nil || port == "" {
			return fmt.Errorf("PGBROKER_ETCD_ENDPOINTS entry %q is not host:port", ep)
		}
	}
	if len(endpoints) == 0 {
		for name, v := range map[string]string{"PGBROKER_ETCD_CA_FILE": c.EtcdCAFile, "PGBROKER_ETCD_PASSWORD": c.EtcdPassword} {
			if v != "" {
				return fmt.Errorf("%s is set but PGBROKER_ETCD_ENDPOINTS is not", name)
			}
		}
		return nil
	}
	for name, v := range map[string]string{"PGBROKER_ETCD_CA_FILE": c.EtcdCAFile, "PGBROKER_ETCD_USERNAME": c.EtcdUsername,
		"PGBROKER_ETCD_PASSWORD": c.EtcdPassword} {
		if v == "" {
			return fmt.Errorf("%s is required with PGBROKER_ETCD_ENDPOINTS (etcd is reached over TLS with authentication on)", name)
		}
	}
	_, err := c.EtcdCACertificates()
	return err
}

// certificatesOf returns the CERTIFICATE blocks of the PEM file named by
// the setting variable, re-encoded as PEM, nothing else of the file.
// Errors name the variable: an unreadable file, no certificate, a
// certificate that does not parse.
func certificatesOf(variable, file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %v", variable, err)
	}
	var out strings.Builder
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("%s %q: a certificate does not parse: %v", variable, file, err)
		}
		if err := pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}); err != nil {
			return "", fmt.Errorf("%s: %v", variable, err)
		}
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("%s %q holds no PEM certificate", variable, file)
	}
	return out.String(), nil
}
