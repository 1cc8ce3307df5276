package rpc

import (
	"context"
	"errors"

	"github.com/cmon-dev/cmon/rbac"
)

// wireKey is a public key in requests and replies.
type wireKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

func (h *users) getKeys(ctx context.Context, _ *Request, u *rbac.User, _ *userField) (Reply, error) {
	keys, err := h.store.Keys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := renderList(keys, func(k *rbac.PublicKey) wireKey { return wireKey{Name: k.Name, Key: k.Text} })
	return &keysReply{Total: len(out), PublicKeys: out, User: renderUser(u)}, nil
}

// keysReply is getKeys': a user's public keys.
type keysReply struct {
	Envelope
	Total      int       `json:"total"`
	PublicKeys []wireKey `json:"public_keys"`
	User       wireUser  `json:"user"`
}

// keyRequest is addKey's and deleteKey's input.
type keyRequest struct {
	userField
	PublicKey *wireKey `json:"public_key"`
}

func (h *users) addKey(ctx context.Context, _ *Request, u *rbac.User, in *keyRequest) (Reply, error) {
	if in.PublicKey == nil || in.PublicKey.Key == "" {
		return nil, InvalidRequest("Field 'public_key' with 'key' and 'name' is required.")
	}
	key, err := rbac.ParsePublicKey(in.PublicKey.Key)
	if err != nil {
		return nil, InvalidRequest("Invalid public key: %s.", err)
	}
	name := in.PublicKey.Name
	if name == "" {
		name = "No Name"
	}
	if err := h.store.AddKey(ctx, u.ID, name, key); err != nil {
		if errors.Is(err, rbac.ErrExists) {
			return nil, InvalidRequest("User '%s' already has this key.", u.Name)
		}
		return nil, keyError(err)
	}
	return done(), nil
}

func (h *users) deleteKey(ctx context.Context, _ *Request, u *rbac.User, in *keyRequest) (Reply, error) {
	if in.PublicKey == nil || (in.PublicKey.Key == "" && in.PublicKey.Name == "") {
		return nil, InvalidRequest("Field 'public_key' with 'name' or 'key' is required.")
	}
	err := h.store.DeleteKey(ctx, u.ID, in.PublicKey.Name, in.PublicKey.Key)
	if errors.Is(err, rbac.ErrNotFound) {
		return nil, NotFound("User '%s' has no such key.", u.Name)
	}
	if err != nil {
		return nil, keyError(err)
	}
	return done(), nil
}

// keyError shows the key store's refusals to the client and passes any
// other error on, as an internal one.
func keyError(err error) error {
	var refused *rbac.KeyError
	if errors.As(err, &refused) {
		return InvalidRequest("Invalid public key: %s.", refused.Msg)
	}
	return err
}
