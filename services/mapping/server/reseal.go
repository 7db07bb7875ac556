package server

import (
	"context"
	"maps"
	"slices"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/redis/go-redis/v9"
)

// replaceSecretScript swaps a sealed secret only if it is still the value that was read, so a
// reseal never overwrites a secret stored meanwhile.
var replaceSecretScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0`)

// ResealSecrets seals every secret of a tenant again under the primary key.
func (s *Server) ResealSecrets(ctx context.Context, req *mappingv1.ResealSecretsRequest) (*mappingv1.ResealSecretsResponse, error) {
	if _, err := s.loadTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	k := key(req.GetTenantId(), "secrets")
	all, err := s.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return nil, internal("read secrets", err)
	}
	res := &mappingv1.ResealSecretsResponse{PrimaryKeyId: s.keys.PrimaryKeyID()}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		sealed := all[name]
		seal := &mappingv1.SecretSeal{Name: name, KeyId: secretbox.KeyIDOf(sealed)}
		res.Secrets = append(res.Secrets, seal)
		if seal.KeyId == s.keys.PrimaryKeyID() {
			continue
		}
		aad := secretAAD(req.GetTenantId(), name)
		plain, err := s.keys.Open(sealed, aad)
		if err != nil {
			// Kept as it is: a key put back in the ring opens it again.
			seal.Problem = err.Error()
			continue
		}
		seal.Resealed = true
		if req.GetDryRun() {
			continue
		}
		again, err := s.keys.Seal(plain, aad)
		if err != nil {
			return nil, internal("seal secret", err)
		}
		swapped, err := replaceSecretScript.Run(ctx, s.rdb, []string{k}, name, sealed, again).Int()
		if err != nil {
			return nil, internal("reseal secret", err)
		}
		if swapped == 0 {
			// Stored again meanwhile, which sealed it under the primary key already.
			seal.Resealed = false
		}
	}
	return res, nil
}
