package broker

import (
	"encoding/json"
	"slices"

	"github.com/pgbroker/pgbroker/extensions"
)

// settings are the parameters of provision and update that configure the
// instance rather than size it (catalog.yaml schemas; issue #6): force_tls
// (update only) and extensions. A nil field was not asked for.
type settings struct {
	forceTLS   *bool
	extensions []string // sorted, without repeats; nil when not asked for
}

// settingsOf reads the validated parameters (the catalog's JSON Schema has
// checked types, patterns and uniqueness).
func settingsOf(params map[string]any) settings {
	var s settings
	if v, ok := params["force_tls"].(bool); ok {
		s.forceTLS = &v
	}
	if list, ok := params["extensions"].([]any); ok {
		s.extensions = []string{}
		for _, e := range list {
			if name, ok := e.(string); ok {
				s.extensions = append(s.extensions, name)
			}
		}
		slices.Sort(s.extensions)
		s.extensions = slices.Compact(s.extensions)
	}
	return s
}

// check is 422 ExtensionNotAvailable naming the allowed extensions when one
// asked for is not installed on the nodes (seed 003 "Managing Extensions").
func (s settings) check() error {
	if err := extensions.CheckExtensions(s.extensions); err != nil {
		return unprocessable("ExtensionNotAvailable", "%s", err.Error())
	}
	return nil
}

// changes reports whether applying s to an instance with forceTLS and
// extensions changes anything.
func (s settings) changes(forceTLS bool, extensions []string) bool {
	if s.forceTLS != nil && *s.forceTLS != forceTLS {
		return true
	}
	return s.extensions != nil && !slices.Equal(s.extensions, extensions)
}

// scheduleChanges reports whether params set backup_time or
// backup_time_zone to a value other than the instance's current one.
func scheduleChanges(params map[string]any, current json.RawMessage) bool {
	var have map[string]any
	_ = json.Unmarshal(orEmpty(current), &have)
	for _, key := range []string{"backup_time", "backup_time_zone"} {
		if v, ok := params[key]; ok && v != have[key] {
			return true
		}
	}
	return false
}
