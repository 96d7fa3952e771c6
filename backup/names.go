package backup

// DumpJobID, RestoreJobID and BaseBackupJobID name the batch jobs of one
// dump, one restore (by operation id) and one base backup.
func DumpJobID(short, backupID string) string       { return "pg-" + short + "-dump-" + backupID }
func RestoreJobID(short, operationID string) string { return "pg-" + short + "-restore-" + operationID }
func BaseBackupJobID(short, baseBackupID string) string {
	return "pg-" + short + "-basebackup-" + baseBackupID
}

// jobSecretPath is the Nomad Variable of a batch job, which only it reads.
func jobSecretPath(jobID string) string { return "nomad/jobs/" + jobID }
