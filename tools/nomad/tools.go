//go:build tools

// Package nomadtool pins the Nomad version that the local stack builds from the
// Go module proxy. It is its own module so Nomad's dependencies stay out of pgbroker's.
package nomadtool

import _ "github.com/hashicorp/nomad"
