package keycloaktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// AdminToken returns an access token of the master realm's administrator (password grant at the
// admin-cli client), for the admin REST API under /admin/realms.
func (s *Server) AdminToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type": {"password"}, "client_id": {"admin-cli"},
		"username": {s.AdminUser}, "password": {s.AdminPassword},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/realms/master/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("keycloaktest: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("keycloaktest: admin token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("keycloaktest: admin token: %s, error %q", resp.Status, tok.Error)
	}
	return tok.AccessToken, nil
}

// Admin calls the admin REST API: method on s.URL+"/admin/realms"+path with in (if not nil) as a
// JSON body, decoding a JSON answer into out (if not nil). A status >= 300 is an error that
// carries the answer's body (admin answers hold no secrets of the tests' users).
func (s *Server) Admin(ctx context.Context, token, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("keycloaktest: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+"/admin/realms"+path, body)
	if err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("keycloaktest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("keycloaktest: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("keycloaktest: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("keycloaktest: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// ClientID returns the internal id of the client with this clientId in realm.
func (s *Server) ClientID(ctx context.Context, token, realm, clientID string) (string, error) {
	var list []struct {
		ID string `json:"id"`
	}
	if err := s.Admin(ctx, token, http.MethodGet, "/"+realm+"/clients?clientId="+url.QueryEscape(clientID), nil, &list); err != nil {
		return "", err
	}
	if len(list) != 1 {
		return "", fmt.Errorf("keycloaktest: %d clients named %q in realm %s", len(list), clientID, realm)
	}
	return list[0].ID, nil
}

// AllowTokenExchangeV1 configures the legacy token exchange (features token-exchange and
// admin-fine-grained-authz:v1) so that the confidential client may exchange a user's token for
// the token stored from identity provider alias: it enables the provider's admin permissions and
// attaches a client policy naming the client to the provider's "token-exchange" permission, as the
// Keycloak documentation's "external token" procedure does in the admin console.
func (s *Server) AllowTokenExchangeV1(ctx context.Context, realm, alias, client string) error {
	tok, err := s.AdminToken(ctx)
	if err != nil {
		return err
	}
	var perms struct {
		Enabled          bool              `json:"enabled"`
		ScopePermissions map[string]string `json:"scopePermissions"`
	}
	if err := s.Admin(ctx, tok, http.MethodPut, "/"+realm+"/identity-provider/instances/"+alias+"/management/permissions",
		map[string]any{"enabled": true}, &perms); err != nil {
		return err
	}
	permID := perms.ScopePermissions["token-exchange"]
	if permID == "" {
		return fmt.Errorf("keycloaktest: identity provider %s has no token-exchange permission (is admin-fine-grained-authz:v1 on?)", alias)
	}
	rm, err := s.ClientID(ctx, tok, realm, "realm-management")
	if err != nil {
		return err
	}
	gw, err := s.ClientID(ctx, tok, realm, client)
	if err != nil {
		return err
	}
	authz := "/" + realm + "/clients/" + rm + "/authz/resource-server"
	var policy struct {
		ID string `json:"id"`
	}
	if err := s.Admin(ctx, tok, http.MethodPost, authz+"/policy/client", map[string]any{
		"name": client + " may exchange for " + alias, "clients": []string{gw}, "logic": "POSITIVE",
	}, &policy); err != nil {
		return err
	}
	var perm map[string]any
	if err := s.Admin(ctx, tok, http.MethodGet, authz+"/permission/scope/"+permID, nil, &perm); err != nil {
		return err
	}
	var resources []struct {
		ID string `json:"_id"`
	}
	if err := s.Admin(ctx, tok, http.MethodGet, authz+"/policy/"+permID+"/resources", nil, &resources); err != nil {
		return err
	}
	var scopes []struct {
		ID string `json:"id"`
	}
	if err := s.Admin(ctx, tok, http.MethodGet, authz+"/policy/"+permID+"/scopes", nil, &scopes); err != nil {
		return err
	}
	perm["policies"] = []string{policy.ID}
	perm["resources"] = []string{}
	for _, r := range resources {
		perm["resources"] = append(perm["resources"].([]string), r.ID)
	}
	perm["scopes"] = []string{}
	for _, sc := range scopes {
		perm["scopes"] = append(perm["scopes"].([]string), sc.ID)
	}
	return s.Admin(ctx, tok, http.MethodPut, authz+"/permission/scope/"+permID, perm, nil)
}
