package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DashboardBase is the URL, without a trailing slash, that users' browsers
// reach this broker at: PGBROKER_EXTERNAL_URL, or http(s)://PGBROKER_LISTEN
// (https when PGBROKER_TLS_CERT_FILE is set; an empty listen host becomes
// localhost). Each instance's dashboard_url starts with it. The error names
// PGBROKER_EXTERNAL_URL: it must be an absolute http or https URL with a
// host and no query, fragment or credentials.
func (c Config) DashboardBase() (string, error) {
	if c.ExternalURL == "" {
		scheme := "http"
		if c.TLSCertFile != "" {
			scheme = "https"
		}
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return "", fmt.Errorf("PGBROKER_LISTEN %q is not host:port", c.Listen)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	u, err := url.Parse(c.ExternalURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("PGBROKER_EXTERNAL_URL %q must be an absolute http or https URL with a host and no query, fragment or credentials, e.g. https://pgbroker.example.com", c.ExternalURL)
	}
	return strings.TrimRight(c.ExternalURL, "/"), nil
}
