package provisioner

// bindingSecretPrefix holds one variable per binding role.
func bindingSecretPrefix(short string) string { return "pgbroker/instances/" + short + "/bindings/" }
