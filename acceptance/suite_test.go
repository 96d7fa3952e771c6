package acceptance

import (
	"sync"

	"github.com/pgbroker/pgbroker/acceptance/leak"
)

// suite collects, across every test, the passwords bind handed out and the
// logs of every broker started, so TestMain can check that no password ever
// reached a log (issue: secrets never appear in a log).
var suite = &suiteRecord{}

type suiteRecord struct {
	mu      sync.Mutex
	secrets []string
	logs    []*syncBuffer
}

func (s *suiteRecord) addSecret(pw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, pw)
}

func (s *suiteRecord) addLog(b *syncBuffer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, b)
}

func (s *suiteRecord) secretCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.secrets)
}

func (s *suiteRecord) logCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logs)
}

// leaks counts the passwords found in any broker log, in any of their
// forms (leak.Forms: as written, JSON-escaped, base64).
func (s *suiteRecord) leaks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, pw := range s.secrets {
		for _, l := range s.logs {
			if len(leak.Find(l.String(), []string{"pw"}, map[string]string{"pw": pw})) > 0 {
				n++
				break
			}
		}
	}
	return n
}
