package config

import (
	"slices"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// Variables returns the name of every environment variable Load reads,
// sorted: PGBROKER_<NAME> for each setting of Config, the unprefixed names
// it also accepts (DATABASE_URL, CATALOG_FILE, NOMAD_ADDR, NOMAD_TOKEN, and
// the other settings named with an envconfig tag), and PORT.
func Variables() []string {
	var b strings.Builder
	// Usagef is envconfig's one exported walk over the settings; its
	// template gets each setting's Key (prefixed) and Alt (unprefixed).
	if err := envconfig.Usagef("pgbroker", &Config{}, &b, "{{range .}}{{usage_key .}} {{.Alt}}\n{{end}}"); err != nil {
		panic("list the settings of config.Config: " + err.Error()) // a static struct and template: cannot fail
	}
	names := strings.Fields(b.String())
	names = append(names, "PORT")
	slices.Sort(names)
	return slices.Compact(names)
}
