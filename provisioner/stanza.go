package provisioner

import "context"

// ensureStanza creates the instance's pgBackRest stanza on its (leading)
// node when WAL archiving is on for size, so archive_command succeeds from
// the first WAL segment. Without it every archive attempt fails until the
// first weekly base backup creates the stanza, filling the log, and each
// shutdown (a switchover, a plan change) waits for the archiver's failing
// retries. Idempotent (stanza-create accepts an existing stanza).
// Errors: *ExecError from pgBackRest.
func (p *Provisioner) ensureStanza(ctx context.Context, in Instance, size Size, progress Progress) error {
	if size.PITRDays == 0 || !p.pitr() {
		return nil
	}
	progress("creating the pgBackRest stanza")
	_, err := p.execNode(ctx, in, "set -euo pipefail; "+pgbackrest(in.ShortID)+" stanza-create")
	return err
}
