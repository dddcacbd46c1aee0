// Package access turns bearer tokens into requesters and decides what they
// may see.
//
// This file verifies JSON Web Tokens (RFC 7519). Two kinds of verifiers exist:
//
//   - an HS256 verifier holding a shared secret (single-node deployments, the
//     `dossier token` command and tests);
//   - a JWKS verifier (RFC 7517) holding RSA (RS256) and EC P-256 (ES256)
//     public keys, read from a file or an http(s) URL.
//
// Each verifier accepts only its own algorithms, which defeats `alg: none`
// and algorithm confusion (e.g. an HS256 token whose HMAC secret is an RSA
// public key).
//
// Errors returned by Verify all wrap ErrUnauthenticated and carry a short
// reason that never contains claim values: those can be patient ids.
package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// Role of a requester, from the token's `role` claim.
type Role string

// The six roles a token may carry.
const (
	RoleProfessional   Role = "professional"
	RolePatient        Role = "patient"
	RoleRepresentative Role = "representative"
	RoleCampaign       Role = "campaign"
	RoleIntegration    Role = "integration"
	RoleAdmin          Role = "admin"
)

// Valid reports whether r is one of the six known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleProfessional, RolePatient, RoleRepresentative, RoleCampaign, RoleIntegration, RoleAdmin:
		return true
	}
	return false
}

// Access modes of a professional (TRE_R248).
const (
	ModeNormal      = "normal"
	ModeBrisDeGlace = "bris_de_glace"
	ModeCentre15    = "centre_15"
)

// ErrUnauthenticated is wrapped by every error returned by Verify.
var ErrUnauthenticated = errors.New("unauthenticated")

// Tuning constants.
const (
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second
	// MinSecretLen is the minimum HS256 secret length, in bytes.
	MinSecretLen = 32
	// JWKSRefreshInterval is the minimum delay between two fetches of a URL
	// JWKS triggered by unknown key ids.
	JWKSRefreshInterval = 5 * time.Minute

	defaultTTL      = time.Hour
	maxTokenLen     = 16 << 10 // bytes
	maxJWKSLen      = 1 << 20  // bytes
	maxClaimLen     = 256      // characters, free-text claims (sub, rpps...)
	minRSABits      = 2048
	jwksHTTPTimeout = 10 * time.Second
)

// fhirID is the FHIR id pattern.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)

// Requester is who asks, built from a verified token.
type Requester struct {
	Subject    string // sub
	Role       Role
	RPPS       string // professionals
	Profession string // TRE_G15 code, professionals
	Specialty  string // optional, professionals
	Mode       string // professionals: normal (default when absent) | bris_de_glace | centre_15; empty for other roles
	Patient    string // patient and representative: the Patient id
	Org        string // integration: Organization id
	Scopes     []string
	TokenID    string // jti if present
	IssuedAt   time.Time
	Expires    time.Time
}

// Claims used to mint a token (for `dossier token` and tests).
// A zero TTL means one hour.
type Claims struct {
	Subject, Role, RPPS, Profession, Specialty, Mode, Patient, Org, Scope string
	TTL                                                                   time.Duration
}

// tokenClaims is the JSON payload of a Dossier token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role       string `json:"role,omitempty"`
	RPPS       string `json:"rpps,omitempty"`
	Profession string `json:"profession,omitempty"`
	Specialty  string `json:"specialty,omitempty"`
	Mode       string `json:"mode,omitempty"`
	Patient    string `json:"patient,omitempty"`
	Org        string `json:"org,omitempty"`
	Scope      string `json:"scope,omitempty"`
}

// Verifier checks bearer tokens. It is safe for concurrent use.
type Verifier struct {
	methods []string

	// HS256
	secret []byte

	// JWKS
	source string
	remote bool
	client *http.Client

	mu        sync.RWMutex
	keys      []jwk
	lastFetch time.Time

	refreshMu sync.Mutex // serialises refreshes

	// verified remembers tokens whose signature was checked (by SHA-256
	// of the token): a client sends the same token with every request,
	// and checking its signature again was most of authentication's cost.
	// An entry serves at most verifiedTTL and never past the token's exp;
	// new JWKS keys forget them all; at verifiedMax entries the map is
	// emptied.
	verifiedMu sync.RWMutex
	verified   map[[sha256.Size]byte]verifiedToken
}

// verifiedToken is a remembered verification.
type verifiedToken struct {
	req *Requester
	at  time.Time
}

const (
	verifiedTTL = time.Minute
	verifiedMax = 10000
)

// remembered returns the requester of a token verified less than
// verifiedTTL before now and not expired at now.
func (v *Verifier) remembered(sum [sha256.Size]byte, now time.Time) (*Requester, bool) {
	v.verifiedMu.RLock()
	e, ok := v.verified[sum]
	v.verifiedMu.RUnlock()
	if !ok || now.Before(e.at) || now.Sub(e.at) >= verifiedTTL || !now.Before(e.req.Expires.Add(Leeway)) {
		return nil, false
	}
	r := *e.req
	r.Scopes = slices.Clone(r.Scopes)
	return &r, true
}

func (v *Verifier) remember(sum [sha256.Size]byte, r *Requester, now time.Time) {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	v.verifiedMu.Lock()
	defer v.verifiedMu.Unlock()
	if v.verified == nil || len(v.verified) >= verifiedMax {
		v.verified = map[[sha256.Size]byte]verifiedToken{}
	}
	v.verified[sum] = verifiedToken{req: &c, at: now}
}

// forget drops every remembered verification.
func (v *Verifier) forget() {
	v.verifiedMu.Lock()
	v.verified = nil
	v.verifiedMu.Unlock()
}

// jwk is a usable public key from a JWKS.
type jwk struct {
	kid string
	alg string // RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// NewHS256Verifier returns a verifier of HS256 tokens signed with secret,
// which must be at least 32 bytes long.
func NewHS256Verifier(secret []byte) (*Verifier, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("access: HS256 secret must be at least %d bytes", MinSecretLen)
	}
	return &Verifier{
		methods: []string{jwt.SigningMethodHS256.Alg()},
		secret:  append([]byte(nil), secret...),
	}, nil
}

// NewJWKSVerifier returns a verifier of RS256 and ES256 tokens whose keys come
// from a JWKS (RFC 7517). source is a file path or an http(s) URL. Only RSA
// keys (at least 2048 bits) and EC P-256 keys are kept; others are ignored.
// When a token names a `kid`, only the key(s) with that kid are tried.
// A URL source is fetched again, at most every 5 minutes, when a token names
// an unknown kid. client may be nil (a client with a 10 s timeout is used).
func NewJWKSVerifier(ctx context.Context, source string, client *http.Client) (*Verifier, error) {
	if source == "" {
		return nil, errors.New("access: empty JWKS source")
	}
	lower := strings.ToLower(source)
	remote := strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://")
	if client == nil {
		client = &http.Client{Timeout: jwksHTTPTimeout}
	}
	v := &Verifier{
		methods: []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()},
		source:  source,
		remote:  remote,
		client:  client,
	}
	keys, err := v.loadJWKS(ctx)
	if err != nil {
		return nil, err
	}
	v.keys = keys
	v.lastFetch = time.Now()
	return v, nil
}

// loadJWKS reads and parses the JWKS from the verifier's source.
func (v *Verifier) loadJWKS(ctx context.Context) ([]jwk, error) {
	var data []byte
	if v.remote {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.source, nil)
		if err != nil {
			return nil, fmt.Errorf("access: JWKS request: %w", err)
		}
		req.Header.Set("Accept", "application/jwk-set+json, application/json")
		resp, err := v.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("access: fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("access: fetch JWKS: HTTP status %d", resp.StatusCode)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSLen+1))
		if err != nil {
			return nil, fmt.Errorf("access: read JWKS: %w", err)
		}
	} else {
		f, err := os.Open(v.source)
		if err != nil {
			return nil, fmt.Errorf("access: open JWKS: %w", err)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxJWKSLen+1))
		if err != nil {
			return nil, fmt.Errorf("access: read JWKS: %w", err)
		}
	}
	if len(data) > maxJWKSLen {
		return nil, errors.New("access: JWKS too large")
	}
	return parseJWKS(data)
}

// rawJWK is the JSON form of a key (only the members we use).
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS keeps the usable signature-verification keys of a JWKS and fails
// if there is none.
func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("access: parse JWKS: %w", err)
	}
	var keys []jwk
	for _, raw := range set.Keys {
		var k rawJWK
		if err := json.Unmarshal(raw, &k); err != nil {
			continue // malformed member: ignore this key
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if len(k.KeyOps) > 0 && !contains(k.KeyOps, "verify") {
			continue
		}
		switch k.Kty {
		case "RSA":
			if k.Alg != "" && k.Alg != "RS256" {
				continue
			}
			pub, err := parseRSAJWK(k)
			if err != nil {
				continue
			}
			keys = append(keys, jwk{kid: k.Kid, alg: "RS256", key: pub})
		case "EC":
			if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
				continue
			}
			pub, err := parseP256JWK(k)
			if err != nil {
				continue
			}
			keys = append(keys, jwk{kid: k.Kid, alg: "ES256", key: pub})
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("access: JWKS holds no usable RS256 or ES256 key")
	}
	return keys, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func b64(s string) ([]byte, error) {
	// RFC 7515: base64url without padding; tolerate padding.
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func parseRSAJWK(k rawJWK) (*rsa.PublicKey, error) {
	nb, err := b64(k.N)
	if err != nil || len(nb) == 0 {
		return nil, errors.New("bad n")
	}
	eb, err := b64(k.E)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad e")
	}
	n := new(big.Int).SetBytes(nb)
	e := new(big.Int).SetBytes(eb)
	if n.BitLen() < minRSABits {
		return nil, errors.New("RSA key too small")
	}
	if e.Int64() < 3 || e.Bit(0) == 0 {
		return nil, errors.New("bad e")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func parseP256JWK(k rawJWK) (*ecdsa.PublicKey, error) {
	x, err := b64(k.X)
	if err != nil || len(x) == 0 || len(x) > 32 {
		return nil, errors.New("bad x")
	}
	y, err := b64(k.Y)
	if err != nil || len(y) == 0 || len(y) > 32 {
		return nil, errors.New("bad y")
	}
	pt := make([]byte, 65)
	pt[0] = 4
	copy(pt[1+32-len(x):33], x)
	copy(pt[33+32-len(y):], y)
	// Checks that the point is on the curve.
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
}

// keyError carries a reason from a key function to Verify.
type keyError struct{ reason string }

func (e *keyError) Error() string { return e.reason }

// keyFunc returns the key(s) able to verify t.
func (v *Verifier) keyFunc(now time.Time) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, &keyError{"unsupported critical header"}
		}
		alg := t.Method.Alg()
		if !contains(v.methods, alg) { // also enforced by WithValidMethods
			return nil, &keyError{"signing algorithm not allowed"}
		}
		if v.secret != nil {
			if t.Method != jwt.SigningMethodHS256 {
				return nil, &keyError{"signing algorithm not allowed"}
			}
			return v.secret, nil
		}
		kid := ""
		if h, ok := t.Header["kid"]; ok {
			s, ok := h.(string)
			if !ok {
				return nil, &keyError{"invalid key id"}
			}
			kid = s
		}
		keys := v.candidates(kid, alg)
		if len(keys) == 0 && kid != "" && v.remote {
			v.refresh(now)
			keys = v.candidates(kid, alg)
		}
		switch len(keys) {
		case 0:
			if kid != "" {
				return nil, &keyError{"unknown key id"}
			}
			return nil, &keyError{"no key for signing algorithm"}
		case 1:
			return keys[0], nil
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// candidates returns the keys matching kid (any key when kid is empty) and alg.
func (v *Verifier) candidates(kid, alg string) []jwt.VerificationKey {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []jwt.VerificationKey
	for _, k := range v.keys {
		if k.alg != alg || (kid != "" && k.kid != kid) {
			continue
		}
		out = append(out, k.key)
	}
	return out
}

// refresh fetches a URL JWKS again unless it was fetched (or tried) less than
// JWKSRefreshInterval before now. On failure the current keys are kept.
func (v *Verifier) refresh(now time.Time) {
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	v.mu.RLock()
	last := v.lastFetch
	v.mu.RUnlock()
	if now.Sub(last) < JWKSRefreshInterval {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), jwksHTTPTimeout)
	defer cancel()
	keys, err := v.loadJWKS(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastFetch = now
	if err == nil {
		v.keys = keys
		v.forget()
	}
}

// Verify checks token at time now and returns who it identifies. Every error
// wraps ErrUnauthenticated.
func (v *Verifier) Verify(token string, now time.Time) (*Requester, error) {
	if v == nil {
		return nil, fail("no verifier configured")
	}
	if token == "" {
		return nil, fail("missing token")
	}
	if len(token) > maxTokenLen {
		return nil, fail("token too large")
	}
	sum := sha256.Sum256([]byte(token))
	if r, ok := v.remembered(sum, now); ok {
		return r, nil
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var c tokenClaims
	if t, err := parser.ParseWithClaims(token, &c, v.keyFunc(now)); err != nil {
		if t != nil && t.Method != nil && !contains(v.methods, t.Method.Alg()) {
			return nil, fail("signing algorithm not allowed")
		}
		return nil, fail(parseReason(err))
	}
	r, err := requesterFrom(&c)
	if err != nil {
		return nil, fail(err.Error())
	}
	v.remember(sum, r, now)
	return r, nil
}

func fail(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, reason)
}

// parseReason maps a jwt error to a short reason free of claim values.
func parseReason(err error) string {
	var ke *keyError
	switch {
	case errors.As(err, &ke):
		return ke.reason
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing exp claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not yet valid"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrInvalidType):
		return "invalid claim type"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token unverifiable"
	}
	return "invalid token"
}

// sane reports whether s is a plausible free-text claim: short, no control
// characters.
func sane(s string) bool {
	if len(s) > maxClaimLen {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// requesterFrom checks the Dossier-specific claims (the registered time
// claims are already checked) and builds the Requester. Errors are reasons
// without claim values.
func requesterFrom(c *tokenClaims) (*Requester, error) {
	if c.Subject == "" {
		return nil, errors.New("missing sub claim")
	}
	if !sane(c.Subject) {
		return nil, errors.New("invalid sub claim")
	}
	if c.Role == "" {
		return nil, errors.New("missing role claim")
	}
	role := Role(c.Role)
	if !role.Valid() {
		return nil, errors.New("invalid role claim")
	}
	if !sane(c.Scope) || !sane(c.ID) {
		return nil, errors.New("invalid scope or jti claim")
	}
	r := &Requester{
		Subject: c.Subject,
		Role:    role,
		Scopes:  strings.Fields(c.Scope),
		TokenID: c.ID,
	}
	if c.IssuedAt != nil {
		r.IssuedAt = c.IssuedAt.Time
	}
	if c.ExpiresAt != nil {
		r.Expires = c.ExpiresAt.Time
	}
	if role != RoleProfessional && c.Mode != "" {
		return nil, errors.New("mode claim not allowed for role")
	}
	switch role {
	case RoleProfessional:
		if c.RPPS == "" {
			return nil, errors.New("missing rpps claim")
		}
		if !sane(c.RPPS) {
			return nil, errors.New("invalid rpps claim")
		}
		if c.Profession == "" {
			return nil, errors.New("missing profession claim")
		}
		if !sane(c.Profession) {
			return nil, errors.New("invalid profession claim")
		}
		if !sane(c.Specialty) {
			return nil, errors.New("invalid specialty claim")
		}
		mode := c.Mode
		switch mode {
		case "":
			mode = ModeNormal
		case ModeNormal, ModeBrisDeGlace, ModeCentre15:
		default:
			return nil, errors.New("invalid mode claim")
		}
		r.RPPS, r.Profession, r.Specialty, r.Mode = c.RPPS, c.Profession, c.Specialty, mode
	case RolePatient, RoleRepresentative:
		if c.Patient == "" {
			return nil, errors.New("missing patient claim")
		}
		if !fhirID.MatchString(c.Patient) {
			return nil, errors.New("invalid patient claim")
		}
		r.Patient = c.Patient
	case RoleIntegration:
		if c.Org == "" {
			return nil, errors.New("missing org claim")
		}
		if !fhirID.MatchString(c.Org) {
			return nil, errors.New("invalid org claim")
		}
		r.Org = c.Org
	}
	return r, nil
}

// MintHS256 signs an HS256 token carrying c, issued at now, expiring at
// now+c.TTL (one hour when zero), with a random jti. The claims are checked
// with the same rules as Verify so that a minted token is always acceptable.
func MintHS256(secret []byte, c Claims, now time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("access: HS256 secret must be at least %d bytes", MinSecretLen)
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = defaultTTL
	}
	if ttl < 0 {
		return "", errors.New("access: negative token TTL")
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("access: token id: %w", err)
	}
	now = now.Truncate(time.Second)
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			ID:        hex.EncodeToString(jti[:]),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role:       c.Role,
		RPPS:       c.RPPS,
		Profession: c.Profession,
		Specialty:  c.Specialty,
		Mode:       c.Mode,
		Patient:    c.Patient,
		Org:        c.Org,
		Scope:      c.Scope,
	}
	if _, err := requesterFrom(&tc); err != nil {
		return "", fmt.Errorf("access: mint token: %w", err)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("access: sign token: %w", err)
	}
	return s, nil
}

// BearerToken extracts the token of an `Authorization: Bearer <token>`
// header value. The scheme is case-insensitive.
func BearerToken(authorizationHeader string) (string, bool) {
	h := strings.TrimSpace(authorizationHeader)
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" || strings.ContainsFunc(tok, unicode.IsSpace) {
		return "", false
	}
	return tok, true
}

// GenerateSecret returns 32 random bytes suitable as an HS256 secret.
func GenerateSecret() ([]byte, error) {
	b := make([]byte, MinSecretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("access: generate secret: %w", err)
	}
	return b, nil
}

// LoadOrCreateSecret reads the hex-encoded HS256 secret stored at path, or,
// when the file does not exist, generates one and stores it there (mode 0600,
// parent directories created with mode 0700). created reports the latter.
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	secret, err = readSecret(path)
	if err == nil {
		return secret, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	secret, err = GenerateSecret()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("access: create secret directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Created concurrently by someone else: use theirs.
		secret, err = readSecret(path)
		return secret, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("access: create secret file: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(secret) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("access: write secret file: %w", werr)
	}
	return secret, true, nil
}

func readSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("access: read secret file: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, errors.New("access: secret file is not hex-encoded")
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("access: secret in file is shorter than %d bytes", MinSecretLen)
	}
	return secret, nil
}
