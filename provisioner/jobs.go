package provisioner

import "github.com/pgbroker/pgbroker/naming"

// MetaPatroni is the node job Meta key saying its nodes run under Patroni.
const MetaPatroni = naming.MetaPatroni
