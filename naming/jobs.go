package naming

import "strconv"

// The Nomad objects of an instance (DESIGN.md "Nomad jobs"): its node and
// gateway jobs, the batch job that removes its data, the services its nodes
// and gateways register, and the Nomad Variable its node job reads.

// NodesJobID is the instance's node job, "pg-<short>-nodes".
func NodesJobID(short string) string { return "pg-" + short + "-nodes" }

// GatewaysJobID is the instance's gateway job, "pg-<short>-gateways".
func GatewaysJobID(short string) string { return "pg-" + short + "-gateways" }

// CleanupJobID is the batch job that deletes the instance's data, "pg-<short>-cleanup".
func CleanupJobID(short string) string { return "pg-" + short + "-cleanup" }

// NodeService is the Nomad service every node registers, "pg-<short>-node";
// it is also the name in the nodes' server certificates.
func NodeService(short string) string { return "pg-" + short + "-node" }

// GatewayService is the Nomad service the gateways register, "pg-<short>-gateway".
func GatewayService(short string) string { return "pg-" + short + "-gateway" }

// NodesSecretPath is the node job's Nomad Variable (its tasks may read it):
// the admin and replication passwords, the pgBackRest repository keys.
func NodesSecretPath(short string) string { return "nomad/jobs/" + NodesJobID(short) }

// Member is Patroni's name of node i of an instance, "node-<i>", which is
// also the name of its task group in the node job (nodes.nomad.hcl: one
// group per node).
func Member(i int) string { return "node-" + strconv.Itoa(i) }

// Keys of the broker's jobs' Meta. Every job carries MetaBroker, the broker
// deployment that owns it (PGBROKER_BROKER_NAME; several brokers may share
// one Nomad cluster), and MetaDeployment, the identity of the deployment
// that registered it (store.DeploymentID: a name can be reused by mistake,
// an identity cannot); the nomad adapter stamps both. A node job says what
// its registered version is with MetaPatroni and MetaPITRRestore.
const (
	MetaBroker      = "pgbroker"
	MetaDeployment  = "pgbroker_deployment"
	MetaPatroni     = "pgbroker_patroni"      // "true": the nodes run under Patroni
	MetaPITRRestore = "pgbroker_pitr_restore" // the point-in-time restore (operation id) the version carries out
)
