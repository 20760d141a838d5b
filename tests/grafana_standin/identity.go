package main

// Grafana's identity side, as the plugin meets it:
//
//   - ID tokens signed as Grafana's idimpl signs them (go-jose, ES256, the key's id in "kid", typ
//     "jwt"; claims iss = the app URL, aud = ["org:<id>"], sub = "<type>:<uid>", exp = +10 min,
//     iat, namespace, identifier, type, and for users email/username/name, plus role). Tests mint
//     them with POST /standin/id-token, overriding any claim to build a wrong one.
//   - GET /api/signing-keys/keys: the public JWK set, no login. POST /standin/rotate-key makes a new
//     current key (the previous one stays published, as during Grafana's own rotation).
//   - GET /api/access-control/users/permissions/search: answered as Grafana answers it
//     ({"<user id>": {"<action>": [scopes]}}) from a per-identity table, for the service-account
//     token only; the second token (-token-no-rbac) gets Grafana's 403, and -no-permission-search
//     makes it a 404 (an old open-source Grafana). POST /standin/permissions changes one identity's
//     scopes.
//
// The /standin/ routes are the tests' controls; they exist only here, on 127.0.0.1.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const queryAction = "datasources:query"

// permissionTable is every identity the stand-in knows, with its datasources:query scopes.
type identityRow struct {
	id     int64
	scopes []string
}

func defaultIdentities() map[string]*identityRow {
	return map[string]*identityRow{
		"user:u-admin":                {1, []string{"datasources:*"}},
		"user:u-alice":                {2, []string{"datasources:uid:standin", "datasources:uid:prom"}},
		"user:u-reader":               {3, []string{"datasources:uid:*"}},
		"user:u-bob":                  {4, nil}, // a member without datasources:query on any target
		"user:u-none":                 {5, nil},
		"service-account:sa-reporter": {6, []string{"datasources:uid:standin"}},
	}
}

type signingKey struct {
	kid string
	key *ecdsa.PrivateKey
}

type identityState struct {
	mu         sync.Mutex
	keys       []signingKey // current last; the one before it is still published
	identities map[string]*identityRow
	nextKey    int
	nextUser   int64
}

func newIdentityState() *identityState {
	s := &identityState{identities: defaultIdentities(), nextUser: 100}
	s.rotate()
	return s
}

func (s *identityState) rotate() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	s.nextKey++
	kid := fmt.Sprintf("id-standin-%d", s.nextKey)
	s.keys = append(s.keys, signingKey{kid, key})
	if len(s.keys) > 2 {
		s.keys = s.keys[len(s.keys)-2:]
	}
	return kid
}

func (c config) signingKeys(w http.ResponseWriter, _ *http.Request) {
	c.ids.mu.Lock()
	defer c.ids.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, k := range c.ids.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	writeJSON(w, http.StatusOK, set)
}

func (c config) rotateKey(w http.ResponseWriter, _ *http.Request) {
	c.ids.mu.Lock()
	kid := c.ids.rotate()
	c.ids.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
}

// tokenRequest is what a test asks to be signed; empty fields take Grafana's values.
type tokenRequest struct {
	Subject   string   `json:"subject"`
	Type      string   `json:"type"`
	Org       int64    `json:"org"`
	Role      string   `json:"role"`
	ExpiresIn *int64   `json:"expiresIn"` // seconds from now; negative: already expired
	Issuer    string   `json:"issuer"`
	Audience  []string `json:"audience"`
	Namespace *string  `json:"namespace"`
}

type idClaims struct {
	jwt.Claims
	Namespace  string `json:"namespace"`
	Identifier string `json:"identifier"`
	Type       string `json:"type"`
	Email      string `json:"email,omitempty"`
	Username   string `json:"username,omitempty"`
	Name       string `json:"name,omitempty"`
	Role       string `json:"role,omitempty"`
}

// namespaceOf is Grafana's namespace of an org on a self-hosted server.
func namespaceOf(org int64) string {
	if org == 1 {
		return "default"
	}
	return fmt.Sprintf("org-%d", org)
}

func (c config) idToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Subject == "" {
		apiError(w, http.StatusBadRequest, "want {subject, type, org, role, expiresIn, issuer, audience, namespace}", "")
		return
	}
	typ, uid, _ := strings.Cut(req.Subject, ":")
	if req.Type != "" {
		typ = req.Type
	}
	if req.Org == 0 {
		req.Org = c.orgID
	}
	now := time.Now()
	ttl := int64(600)
	if req.ExpiresIn != nil {
		ttl = *req.ExpiresIn
	}
	claims := idClaims{
		Claims: jwt.Claims{
			Issuer: c.issuer, Subject: req.Subject, Audience: jwt.Audience{fmt.Sprintf("org:%d", req.Org)},
			Expiry: jwt.NewNumericDate(now.Add(time.Duration(ttl) * time.Second)), IssuedAt: jwt.NewNumericDate(now),
		},
		Namespace: namespaceOf(req.Org), Identifier: uid, Type: typ, Role: req.Role,
	}
	if req.Issuer != "" {
		claims.Issuer = req.Issuer
	}
	if req.Audience != nil {
		claims.Audience = req.Audience
	}
	if req.Namespace != nil {
		claims.Namespace = *req.Namespace
	}
	if typ == "user" {
		claims.Email, claims.Username, claims.Name = uid+"@example.com", uid, uid
	}
	c.ids.mu.Lock()
	current := c.ids.keys[len(c.ids.keys)-1]
	c.ids.mu.Unlock()
	opts := (&jose.SignerOptions{}).WithType("jwt").WithHeader("kid", current.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: current.key}, opts)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token, "kid": current.kid})
}

// setPermissions replaces one identity's datasources:query scopes (adding the identity if new).
func (c config) setPermissions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Subject string   `json:"subject"`
		Scopes  []string `json:"scopes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Subject == "" {
		apiError(w, http.StatusBadRequest, "want {subject, scopes}", "")
		return
	}
	c.ids.mu.Lock()
	defer c.ids.mu.Unlock()
	row, ok := c.ids.identities[req.Subject]
	if !ok {
		c.ids.nextUser++
		row = &identityRow{id: c.ids.nextUser}
		c.ids.identities[req.Subject] = row
	}
	row.scopes = req.Scopes
	w.WriteHeader(http.StatusNoContent)
}

// permissionSearch answers as Grafana's searchUsersPermissions does: the filters validated the
// same way, the result keyed by numeric user id, only identities with the action listed.
func (c config) permissionSearch(w http.ResponseWriter, r *http.Request) {
	if c.noPermissionSearch {
		apiError(w, http.StatusNotFound, "Not found", "")
		return
	}
	if strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") == c.tokenNoRBAC {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"accessErrorId": "ACE0000000001", "title": "Access denied",
			"message": "You'll need additional permissions to perform this action. Permissions needed: users.permissions:read",
		})
		return
	}
	q := r.URL.Query()
	action, prefix, subject := q.Get("action"), q.Get("actionPrefix"), q.Get("namespacedId")
	if action != "" && prefix != "" {
		writeJSON(w, http.StatusBadRequest, "'action' and 'actionPrefix' are mutually exclusive")
		return
	}
	if subject == "" && action == "" && prefix == "" {
		writeJSON(w, http.StatusBadRequest, "at least one search option must be provided")
		return
	}
	c.ids.mu.Lock()
	defer c.ids.mu.Unlock()
	subjects := make([]string, 0, len(c.ids.identities))
	for s := range c.ids.identities {
		subjects = append(subjects, s)
	}
	if subject != "" {
		if _, ok := c.ids.identities[subject]; !ok {
			writeJSON(w, http.StatusBadRequest, "user not found")
			return
		}
		subjects = []string{subject}
	}
	sort.Strings(subjects)
	matches := action == queryAction || (action == "" && strings.HasPrefix(queryAction, prefix))
	out := map[string]map[string][]string{}
	for _, s := range subjects {
		row := c.ids.identities[s]
		if matches && len(row.scopes) > 0 {
			out[fmt.Sprint(row.id)] = map[string][]string{queryAction: row.scopes}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
