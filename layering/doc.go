// Package layering holds no code: its test keeps pgbroker's package graph
// one-way (issue 13). The front doors (broker, the management API, the HTTP
// router, the dashboard) declare the interfaces they need and never import
// the executor (orchestration, adapters to Nomad, PostgreSQL administration,
// backup storage); the executor never imports a front door; the leaf
// packages import nothing of pgbroker. README.md "Package map" draws it.
package layering
