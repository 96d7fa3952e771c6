package pgadmin

import (
	"crypto/tls"
	"testing"
)

// With TLS the superuser's login is bound to the TLS channel
// (channel_binding=require) and resolves names in pg_catalog and pg_temp
// only; without TLS (a test double's plaintext) there is no channel to
// bind.
func TestAdminLogsInBoundToItsTLSChannel(t *testing.T) {
	cfg, err := New("10.0.0.7", 31000, "pgbroker_admin", "pw", &tls.Config{ServerName: "pg-abc-node"}).config("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChannelBinding != "require" || cfg.TLSConfig == nil || cfg.TLSConfig.ServerName != "pg-abc-node" {
		t.Errorf("channel_binding %q, TLS %v: want require over TLS checked as pg-abc-node", cfg.ChannelBinding, cfg.TLSConfig)
	}
	if cfg.RuntimeParams["search_path"] != "pg_catalog, pg_temp" || len(cfg.Fallbacks) != 0 {
		t.Errorf("search_path %q, %d fallbacks: want pg_catalog, pg_temp and none", cfg.RuntimeParams["search_path"], len(cfg.Fallbacks))
	}
	plain, err := New("10.0.0.7", 31000, "pgbroker_admin", "pw", nil).config("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if plain.ChannelBinding == "require" {
		t.Error("a plaintext connection asks for channel binding")
	}
}
