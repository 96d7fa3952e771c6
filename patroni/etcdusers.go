package patroni

import (
	"context"
	"fmt"
	"slices"
)

// etcdPermission is one key range a role is granted (authpb.Permission in
// the gateway's JSON: key and range_end base64, permType READ, WRITE or
// READWRITE).
type etcdPermission struct {
	PermType string `json:"permType"`
	Key      string `json:"key"`
	RangeEnd string `json:"range_end"`
}

// EnsureUser makes the etcd user scope, with password, the only holder of
// role scope, which grants READWRITE on the cluster's keys (Namespace +
// scope + "/", a prefix range) and nothing else. Idempotent; on a user and
// role as they should be it only reads, since any change to etcd's auth
// store voids the tokens in use, the running Patroni's too. A wider role or
// another role of the user is revoked. No endpoint: nothing to do. Errors:
// etcd's (*EtcdError), naming the step.
func (d *DCS) EnsureUser(ctx context.Context, scope, password string) error {
	if len(d.endpoints) == 0 {
		return nil
	}
	if err := d.ensureRole(ctx, scope); err != nil {
		return fmt.Errorf("etcd role %s: %w", scope, err)
	}
	roles, err := d.ensureUserPassword(ctx, scope, password)
	if err != nil {
		return fmt.Errorf("etcd user %s: %w", scope, err)
	}
	if err := d.ensureOnlyRole(ctx, scope, roles); err != nil {
		return fmt.Errorf("etcd user %s: %w", scope, err)
	}
	return nil
}

// ensureRole makes role scope grant READWRITE on the cluster's prefix range
// and nothing else.
func (d *DCS) ensureRole(ctx context.Context, scope string) error {
	var out struct{}
	var role struct {
		Perm []etcdPermission `json:"perm"`
	}
	err := d.call(ctx, "/v3/auth/role/get", map[string]string{"role": scope}, &role)
	if etcdSays(err, "role name not found") {
		err = d.call(ctx, "/v3/auth/role/add", map[string]string{"name": scope}, &out)
	}
	if err != nil {
		return err
	}
	r := prefixRange(Namespace + scope + "/")
	want := etcdPermission{PermType: "READWRITE", Key: r["key"], RangeEnd: r["range_end"]}
	if !slices.Contains(role.Perm, want) {
		if err := d.call(ctx, "/v3/auth/role/grant", map[string]any{"name": scope, "perm": want}, &out); err != nil {
			return fmt.Errorf("grant %s: %w", Namespace+scope+"/", err)
		}
	}
	for _, p := range role.Perm {
		if p == want {
			continue
		}
		if err := d.call(ctx, "/v3/auth/role/revoke", map[string]string{"role": scope, "key": p.Key, "range_end": p.RangeEnd}, &out); err != nil &&
			!etcdSays(err, "permission is not granted to the role") {
			return fmt.Errorf("revoke a permission beyond its prefix: %w", err)
		}
	}
	return nil
}

// ensureUserPassword adds user name with password, or sets the password of
// the user that exists unless it logs in with it already, and returns the
// user's roles.
func (d *DCS) ensureUserPassword(ctx context.Context, name, password string) ([]string, error) {
	var out struct{}
	var user struct {
		Roles []string `json:"roles"`
	}
	body := map[string]string{"name": name, "password": password}
	err := d.call(ctx, "/v3/auth/user/get", map[string]string{"name": name}, &user)
	if etcdSays(err, "user name not found") {
		return nil, d.call(ctx, "/v3/auth/user/add", body, &out)
	}
	if err != nil {
		return nil, err
	}
	var token struct {
		Token string `json:"token"`
	}
	err = d.post(ctx, "/v3/auth/authenticate", "", body, &token)
	if err == nil && token.Token != "" {
		return user.Roles, nil
	}
	if err != nil && !etcdSays(err, "authentication failed, invalid user ID or password") {
		return nil, err
	}
	return user.Roles, d.call(ctx, "/v3/auth/user/changepw", body, &out)
}

// ensureOnlyRole grants user name, which holds roles, its role name and
// revokes any other.
func (d *DCS) ensureOnlyRole(ctx context.Context, name string, roles []string) error {
	var out struct{}
	if !slices.Contains(roles, name) {
		if err := d.call(ctx, "/v3/auth/user/grant", map[string]string{"user": name, "role": name}, &out); err != nil {
			return fmt.Errorf("grant role %s: %w", name, err)
		}
	}
	for _, role := range roles {
		if role == name {
			continue
		}
		if err := d.call(ctx, "/v3/auth/user/revoke", map[string]string{"name": name, "role": role}, &out); err != nil &&
			!etcdSays(err, "role is not granted to the user") {
			return fmt.Errorf("revoke role %s: %w", role, err)
		}
	}
	return nil
}

// DeleteUser deletes the etcd user scope and its role scope (EnsureUser).
// Idempotent: either being gone already is success. No endpoint: nothing
// to do. Errors: etcd's (*EtcdError).
func (d *DCS) DeleteUser(ctx context.Context, scope string) error {
	if len(d.endpoints) == 0 {
		return nil
	}
	var out struct{}
	if err := d.call(ctx, "/v3/auth/user/delete", map[string]string{"name": scope}, &out); err != nil && !etcdSays(err, "user name not found") {
		return fmt.Errorf("delete etcd user %s: %w", scope, err)
	}
	if err := d.call(ctx, "/v3/auth/role/delete", map[string]string{"role": scope}, &out); err != nil && !etcdSays(err, "role name not found") {
		return fmt.Errorf("delete etcd role %s: %w", scope, err)
	}
	return nil
}
