// Package pki is the broker's certificate authority: it makes the CA, checks
// one given by the operator, and issues each instance a server certificate
// for the names and addresses its clients connect to (RFC 5280 profiles;
// keys are ECDSA P-256, encoded as PKCS #8 PEM, which PostgreSQL's OpenSSL
// and the JDBC driver both read). It keeps nothing: callers store the PEM.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// backdate is how far before "now" certificates start, so a client whose
// clock is a little behind still accepts them.
const backdate = 5 * time.Minute

// CA is a certificate authority able to issue server certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte // Cert, PEM ("CERTIFICATE"): what credentials carry as ca_certificate
	key     crypto.Signer
}

// NewCA makes a self-signed CA named commonName, valid from now for lifetime,
// and returns its certificate and private key as PEM.
func NewCA(commonName string, lifetime time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// ParseCA reads a CA from PEM. Errors: not PEM, not a CA certificate (basic
// constraints), key not matching the certificate, expired.
func ParseCA(certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("CA certificate: not a CA (basic constraints CA:TRUE missing)")
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate: expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("CA private key: not PEM")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("CA private key: unsupported PEM type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("CA private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA private key: cannot sign")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("CA private key does not match the CA certificate")
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), key: signer}, nil
}

// ServerRequest is what a server certificate is for.
type ServerRequest struct {
	CommonName string   // subject CN, e.g. the instance's node service name
	Hosts      []string // DNS names and IP addresses clients connect to; IPs become IP SANs
	NotAfter   time.Time
	// IPsAsDNS also writes each IP address of Hosts as a DNS SAN: pgBackRest
	// 2.45 matches the host it connects to against DNS SANs (and the CN)
	// only, never IP SANs.
	IPsAsDNS bool
}

// Issue signs a new server certificate (ExtKeyUsage serverAuth, and
// clientAuth: a node presents its own when it replicates from another) with
// a fresh key and returns both as PEM. now is when it starts (less a small
// backdate).
func (ca *CA) Issue(req ServerRequest, now time.Time) (certPEM, keyPEM []byte, err error) {
	if len(req.Hosts) == 0 {
		return nil, nil, errors.New("issue server certificate: no host")
	}
	if !req.NotAfter.After(now) {
		return nil, nil, errors.New("issue server certificate: NotAfter is not in the future")
	}
	notAfter := req.NotAfter
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // a certificate cannot outlive its issuer
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range req.Hosts {
		ip := net.ParseIP(h)
		if ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
		if ip == nil || req.IPsAsDNS {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.sign(tmpl, key)
}

// IssueClient signs a new client certificate (ExtKeyUsage clientAuth) named
// commonName, valid from now until notAfter (at most the CA's end), with a
// fresh key, and returns both as PEM. pgBackRest's TLS server authorizes a
// client by this CN (tls-server-auth).
func (ca *CA) IssueClient(commonName string, notAfter, now time.Time) (certPEM, keyPEM []byte, err error) {
	if !notAfter.After(now) {
		return nil, nil, errors.New("issue client certificate: notAfter is not in the future")
	}
	if ca.Cert.NotAfter.Before(notAfter) {
		notAfter = ca.Cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate client key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	return ca.sign(&x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, key)
}

// sign signs tmpl for key with the CA and returns certificate and key as PEM.
func (ca *CA) sign(tmpl *x509.Certificate, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// Signed reports whether cert was issued by ca (its signature verifies with
// the CA's key).
func (ca *CA) Signed(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, ca.Cert.RawSubject) && cert.CheckSignatureFrom(ca.Cert) == nil
}

// Pool returns a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ParseCertificate reads the first certificate of a PEM document.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM CERTIFICATE")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Covers reports whether cert names host: an IP SAN equal to it when host is
// an IP address, else a DNS SAN (RFC 6125 exact match; no wildcards are issued).
func Covers(cert *x509.Certificate, host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return slices.ContainsFunc(cert.IPAddresses, ip.Equal)
	}
	return slices.Contains(cert.DNSNames, host)
}

// Fingerprint is the SHA-256 of the certificate's DER, hex: safe to log.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("draw certificate serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
