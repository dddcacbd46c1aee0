package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the reference time of most tests.
var testNow = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// Claim values that must never leak into error messages.
const (
	leakPatient = "PatientLeak-42"
	leakOrg     = "OrgLeak-7"
	leakSub     = "sub-leak-1234"
	leakRPPS    = "10101010101"
)

// sign signs claims with method and key, setting kid when non-empty.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// base returns valid claims for role at testNow.
func base(role Role) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":  leakSub,
		"role": string(role),
		"iat":  testNow.Unix(),
		"exp":  testNow.Add(time.Hour).Unix(),
		"jti":  "tok-1",
	}
	switch role {
	case RoleProfessional:
		c["rpps"] = leakRPPS
		c["profession"] = "10"
	case RolePatient, RoleRepresentative:
		c["patient"] = leakPatient
	case RoleIntegration:
		c["org"] = leakOrg
	}
	return c
}

// with returns a copy of c with the given changes; a nil value deletes.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

func hsVerifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := NewHS256Verifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkRejected asserts err is an ErrUnauthenticated free of claim values.
func checkRejected(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("token accepted, want rejection")
	}
	t.Logf("rejected: %v", err)
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("error %q does not wrap ErrUnauthenticated", err)
	}
	for _, leak := range []string{leakPatient, leakOrg, leakSub, leakRPPS, "../", "bad/id"} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error %q leaks claim value %q", err, leak)
		}
	}
}

func TestVerifyHS256Roles(t *testing.T) {
	v := hsVerifier(t)
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   Requester
	}{
		{"professional default mode", base(RoleProfessional), Requester{Role: RoleProfessional, RPPS: leakRPPS, Profession: "10", Mode: ModeNormal}},
		{"professional bris de glace", with(base(RoleProfessional), "mode", ModeBrisDeGlace, "specialty", "SM26"),
			Requester{Role: RoleProfessional, RPPS: leakRPPS, Profession: "10", Specialty: "SM26", Mode: ModeBrisDeGlace}},
		{"professional centre 15", with(base(RoleProfessional), "mode", ModeCentre15), Requester{Role: RoleProfessional, RPPS: leakRPPS, Profession: "10", Mode: ModeCentre15}},
		{"professional normal", with(base(RoleProfessional), "mode", ModeNormal), Requester{Role: RoleProfessional, RPPS: leakRPPS, Profession: "10", Mode: ModeNormal}},
		{"patient", base(RolePatient), Requester{Role: RolePatient, Patient: leakPatient}},
		{"representative", base(RoleRepresentative), Requester{Role: RoleRepresentative, Patient: leakPatient}},
		{"campaign", base(RoleCampaign), Requester{Role: RoleCampaign}},
		{"integration", base(RoleIntegration), Requester{Role: RoleIntegration, Org: leakOrg}},
		{"admin", base(RoleAdmin), Requester{Role: RoleAdmin}},
		{"scopes", with(base(RolePatient), "scope", "patient/Observation.rs  patient/Patient.r"),
			Requester{Role: RolePatient, Patient: leakPatient, Scopes: []string{"patient/Observation.rs", "patient/Patient.r"}}},
		{"irrelevant claims ignored", with(base(RoleAdmin), "patient", "p1", "org", "o1", "rpps", "1"), Requester{Role: RoleAdmin}},
		{"no iat no jti", with(base(RoleCampaign), "iat", nil, "jti", nil), Requester{Role: RoleCampaign}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, "", tt.claims), testNow)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tt.want
			want.Subject = leakSub
			want.Expires = testNow.Add(time.Hour)
			if _, ok := tt.claims["iat"]; ok {
				want.IssuedAt = testNow
			}
			if _, ok := tt.claims["jti"]; ok {
				want.TokenID = "tok-1"
			}
			if r.Subject != want.Subject || r.Role != want.Role || r.RPPS != want.RPPS ||
				r.Profession != want.Profession || r.Specialty != want.Specialty || r.Mode != want.Mode ||
				r.Patient != want.Patient || r.Org != want.Org || r.TokenID != want.TokenID ||
				!r.IssuedAt.Equal(want.IssuedAt) || !r.Expires.Equal(want.Expires) ||
				len(r.Scopes) != len(want.Scopes) || (len(want.Scopes) > 0 && !slices.Equal(r.Scopes, want.Scopes)) {
				t.Fatalf("got %+v\nwant %+v", *r, want)
			}
		})
	}
}

func TestVerifyHS256InvalidClaims(t *testing.T) {
	v := hsVerifier(t)
	long := strings.Repeat("a", 65)
	tests := []struct {
		name   string
		claims jwt.MapClaims
		reason string
	}{
		{"missing sub", with(base(RoleAdmin), "sub", nil), "missing sub"},
		{"empty sub", with(base(RoleAdmin), "sub", ""), "missing sub"},
		{"missing role", with(base(RoleAdmin), "role", nil), "missing role"},
		{"unknown role", with(base(RoleAdmin), "role", "superuser"), "invalid role"},
		{"role case", with(base(RoleAdmin), "role", "Admin"), "invalid role"},
		{"role not a string", with(base(RoleAdmin), "role", 3), "malformed"},
		{"professional missing rpps", with(base(RoleProfessional), "rpps", nil), "missing rpps"},
		{"professional missing profession", with(base(RoleProfessional), "profession", nil), "missing profession"},
		{"professional bad mode", with(base(RoleProfessional), "mode", "god_mode"), "invalid mode"},
		{"professional rpps control char", with(base(RoleProfessional), "rpps", "1\n2"), "invalid rpps"},
		{"patient missing patient", with(base(RolePatient), "patient", nil), "missing patient"},
		{"patient bad id", with(base(RolePatient), "patient", "bad/id"), "invalid patient"},
		{"patient traversal id", with(base(RolePatient), "patient", "../"+leakPatient), "invalid patient"},
		{"patient id too long", with(base(RolePatient), "patient", long), "invalid patient"},
		{"patient with mode", with(base(RolePatient), "mode", ModeBrisDeGlace), "mode claim not allowed"},
		{"representative missing patient", with(base(RoleRepresentative), "patient", nil), "missing patient"},
		{"representative bad id", with(base(RoleRepresentative), "patient", "a b"), "invalid patient"},
		{"integration missing org", with(base(RoleIntegration), "org", nil), "missing org"},
		{"integration bad org", with(base(RoleIntegration), "org", "bad/id"), "invalid org"},
		{"missing exp", with(base(RoleAdmin), "exp", nil), "missing exp"},
		{"expired", with(base(RoleAdmin), "exp", testNow.Add(-31*time.Second).Unix()), "expired"},
		{"nbf in future", with(base(RoleAdmin), "nbf", testNow.Add(time.Minute).Unix()), "not yet valid"},
		{"iat in future", with(base(RoleAdmin), "iat", testNow.Add(time.Minute).Unix()), "issued in the future"},
		{"exp not a number", with(base(RoleAdmin), "exp", "tomorrow"), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, "", tt.claims), testNow)
			checkRejected(t, err)
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q, want reason containing %q", err, tt.reason)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	v := hsVerifier(t)
	for name, c := range map[string]jwt.MapClaims{
		"exp within leeway": with(base(RoleAdmin), "exp", testNow.Add(-20*time.Second).Unix()),
		"nbf within leeway": with(base(RoleAdmin), "nbf", testNow.Add(20*time.Second).Unix()),
		"iat within leeway": with(base(RoleAdmin), "iat", testNow.Add(20*time.Second).Unix()),
		"nbf in past":       with(base(RoleAdmin), "nbf", testNow.Add(-time.Minute).Unix()),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, "", c), testNow); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	v := hsVerifier(t)
	good := sign(t, jwt.SigningMethodHS256, testSecret, "", base(RoleAdmin))
	for name, tok := range map[string]string{
		"empty":       "",
		"garbage":     "not-a-jwt",
		"two parts":   "a.b",
		"bad base64":  "!!!.###.$$$",
		"huge":        strings.Repeat("a", maxTokenLen+1),
		"extra part":  good + ".x",
		"unknown alg": rawToken(`{"alg":"HS999","typ":"JWT"}`, `{"sub":"x"}`, "c2ln"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(tok, testNow)
			checkRejected(t, err)
		})
	}
	var nilV *Verifier
	_, err := nilV.Verify(good, testNow)
	checkRejected(t, err)
}

// rawToken assembles a token from a JSON header, a JSON payload and an
// already-encoded signature.
func rawToken(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

func TestVerifyWrongSignature(t *testing.T) {
	v := hsVerifier(t)
	other := []byte("ffffffffffffffffffffffffffffffff")
	good := sign(t, jwt.SigningMethodHS256, testSecret, "", base(RolePatient))
	parts := strings.Split(good, ".")
	forged, _ := json.Marshal(with(base(RolePatient), "patient", "someone-else"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	for name, tok := range map[string]string{
		"other secret":   sign(t, jwt.SigningMethodHS256, other, "", base(RolePatient)),
		"tampered":       tampered,
		"no signature":   parts[0] + "." + parts[1] + ".",
		"signature only": parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("xx")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(tok, testNow)
			checkRejected(t, err)
		})
	}
}

func TestAlgNoneRejected(t *testing.T) {
	keys := newTestKeys(t)
	jv := keys.fileVerifier(t, rsaJWKOf("r1", &keys.rsa1.PublicKey), ecJWKOf(t, "e1", &keys.ec1.PublicKey))
	hv := hsVerifier(t)
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", base(RoleAdmin))
	handmade := rawToken(`{"alg":"none","typ":"JWT"}`, mustJSON(t, base(RoleAdmin)), "")
	handmadeUpper := rawToken(`{"alg":"NONE","typ":"JWT"}`, mustJSON(t, base(RoleAdmin)), "")
	for _, v := range []*Verifier{hv, jv} {
		for _, tok := range []string{none, handmade, handmadeUpper} {
			_, err := v.Verify(tok, testNow)
			checkRejected(t, err)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testKeys holds real key pairs for JWKS tests.
type testKeys struct {
	rsa1, rsa2 *rsa.PrivateKey
	ec1, ec2   *ecdsa.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  *testKeys
	keysErr  error
)

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		k := &testKeys{}
		if k.rsa1, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if k.rsa2, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if k.ec1, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); keysErr != nil {
			return
		}
		if k.ec2, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); keysErr != nil {
			return
		}
		keysVal = k
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keysVal
}

func rsaJWKOf(kid string, pub *rsa.PublicKey) map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256",
		"n": enc(pub.N.Bytes()),
		"e": enc(big.NewInt(int64(pub.E)).Bytes()),
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

func ecJWKOf(t *testing.T, kid string, pub *ecdsa.PublicKey) map[string]any {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{
		"kty": "EC", "crv": "P-256", "use": "sig",
		"x": enc(b[1:33]), "y": enc(b[33:65]),
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

func jwksJSON(t *testing.T, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileVerifier writes a JWKS file in a temp dir and loads it.
func (k *testKeys) fileVerifier(t *testing.T, keys ...map[string]any) *Verifier {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, keys...), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := NewJWKSVerifier(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("NewJWKSVerifier: %v", err)
	}
	return v
}

func TestJWKSFileRS256AndES256(t *testing.T) {
	k := newTestKeys(t)
	v := k.fileVerifier(t,
		rsaJWKOf("r1", &k.rsa1.PublicKey),
		ecJWKOf(t, "e1", &k.ec1.PublicKey),
		// Unusable keys, ignored.
		map[string]any{"kty": "oct", "kid": "s1", "k": "c2VjcmV0"},
		map[string]any{"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
	)
	tests := []struct {
		name   string
		token  string
		wantOK bool
		reason string
	}{
		{"RS256 with kid", sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", base(RolePatient)), true, ""},
		{"ES256 with kid", sign(t, jwt.SigningMethodES256, k.ec1, "e1", base(RoleProfessional)), true, ""},
		{"RS256 without kid", sign(t, jwt.SigningMethodRS256, k.rsa1, "", base(RoleIntegration)), true, ""},
		{"ES256 without kid", sign(t, jwt.SigningMethodES256, k.ec1, "", base(RoleAdmin)), true, ""},
		{"RS256 unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa1, "nope", base(RoleAdmin)), false, "unknown key id"},
		{"RS256 wrong key", sign(t, jwt.SigningMethodRS256, k.rsa2, "r1", base(RoleAdmin)), false, "invalid signature"},
		{"ES256 wrong key", sign(t, jwt.SigningMethodES256, k.ec2, "e1", base(RoleAdmin)), false, "invalid signature"},
		{"RS256 kid of EC key", sign(t, jwt.SigningMethodRS256, k.rsa1, "e1", base(RoleAdmin)), false, "unknown key id"},
		{"ES256 kid of RSA key", sign(t, jwt.SigningMethodES256, k.ec1, "r1", base(RoleAdmin)), false, "unknown key id"},
		{"RS512 not allowed", sign(t, jwt.SigningMethodRS512, k.rsa1, "r1", base(RoleAdmin)), false, "algorithm not allowed"},
		{"PS256 not allowed", sign(t, jwt.SigningMethodPS256, k.rsa1, "r1", base(RoleAdmin)), false, "algorithm not allowed"},
		{"HS256 rejected", sign(t, jwt.SigningMethodHS256, testSecret, "", base(RoleAdmin)), false, "algorithm not allowed"},
		{"HS256 with kid rejected", sign(t, jwt.SigningMethodHS256, testSecret, "r1", base(RoleAdmin)), false, "algorithm not allowed"},
		{"expired RS256", sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", with(base(RoleAdmin), "exp", testNow.Add(-time.Hour).Unix())), false, "expired"},
		{"missing claims RS256", sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", with(base(RolePatient), "patient", nil)), false, "missing patient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := v.Verify(tt.token, testNow)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if r.Subject != leakSub {
					t.Fatalf("subject %q", r.Subject)
				}
				return
			}
			checkRejected(t, err)
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q, want reason containing %q", err, tt.reason)
			}
		})
	}
}

func TestJWKSCritHeaderRejected(t *testing.T) {
	k := newTestKeys(t)
	v := k.fileVerifier(t, rsaJWKOf("r1", &k.rsa1.PublicKey))
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, base(RoleAdmin))
	tok.Header["kid"] = "r1"
	tok.Header["crit"] = []string{"exp"}
	s, err := tok.SignedString(k.rsa1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(s, testNow)
	checkRejected(t, err)
}

func TestAlgorithmConfusionRejected(t *testing.T) {
	k := newTestKeys(t)
	v := k.fileVerifier(t, rsaJWKOf("r1", &k.rsa1.PublicKey))
	der, err := x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa1.PublicKey)})
	for name, secret := range map[string][]byte{"PKIX PEM": pemBytes, "PKCS1 PEM": pkcs1, "DER": der} {
		for _, kid := range []string{"r1", ""} {
			t.Run(name+"/kid="+kid, func(t *testing.T) {
				tok := sign(t, jwt.SigningMethodHS256, secret, kid, base(RoleAdmin))
				_, err := v.Verify(tok, testNow)
				checkRejected(t, err)
				if !strings.Contains(err.Error(), "algorithm not allowed") {
					t.Fatalf("error %q, want algorithm rejection", err)
				}
			})
		}
	}
}

func TestJWKSKidSelection(t *testing.T) {
	k := newTestKeys(t)
	v := k.fileVerifier(t,
		rsaJWKOf("a", &k.rsa1.PublicKey),
		rsaJWKOf("b", &k.rsa2.PublicKey),
	)
	tests := []struct {
		name   string
		key    *rsa.PrivateKey
		kid    string
		wantOK bool
	}{
		{"key a as a", k.rsa1, "a", true},
		{"key b as b", k.rsa2, "b", true},
		{"key a labelled b", k.rsa1, "b", false},
		{"key b labelled a", k.rsa2, "a", false},
		{"key a without kid", k.rsa1, "", true},
		{"key b without kid", k.rsa2, "", true},
		{"unknown kid", k.rsa1, "c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, jwt.SigningMethodRS256, tt.key, tt.kid, base(RoleCampaign)), testNow)
			if tt.wantOK && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.wantOK {
				checkRejected(t, err)
			}
		})
	}
	// A kid that is not a string.
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, base(RoleCampaign))
	tok.Header["kid"] = 7
	s, err := tok.SignedString(k.rsa1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(s, testNow)
	checkRejected(t, err)
}

// jwksServer serves a JWKS that tests can swap, counting requests.
type jwksServer struct {
	*httptest.Server
	body atomic.Pointer[[]byte]
	hits atomic.Int32
	fail atomic.Bool
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.body.Store(&body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.fail.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func TestJWKSFromURL(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, rsaJWKOf("r1", &k.rsa1.PublicKey), ecJWKOf(t, "e1", &k.ec1.PublicKey)))
	v, err := NewJWKSVerifier(context.Background(), srv.URL+"/jwks.json", srv.Client())
	if err != nil {
		t.Fatalf("NewJWKSVerifier: %v", err)
	}
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", base(RolePatient)),
		sign(t, jwt.SigningMethodES256, k.ec1, "e1", base(RolePatient)),
	} {
		r, err := v.Verify(tok, testNow)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if r.Patient != leakPatient {
			t.Fatalf("patient %q", r.Patient)
		}
	}
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, "r1", base(RoleAdmin)), testNow)
	checkRejected(t, err)
}

func TestJWKSURLRefresh(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, rsaJWKOf("r1", &k.rsa1.PublicKey)))
	v, err := NewJWKSVerifier(context.Background(), srv.URL, nil)
	if err != nil {
		t.Fatalf("NewJWKSVerifier: %v", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits after creation = %d, want 1", got)
	}
	start := time.Now()
	claims := with(base(RoleAdmin), "iat", start.Unix(), "exp", start.Add(time.Hour).Unix())
	rotated := sign(t, jwt.SigningMethodRS256, k.rsa2, "r2", claims)
	known := sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", claims)

	// Key rotation at the IdP.
	newSet := jwksJSON(t, rsaJWKOf("r1", &k.rsa1.PublicKey), rsaJWKOf("r2", &k.rsa2.PublicKey))
	srv.body.Store(&newSet)

	// Within 5 minutes of the last fetch: no refetch, unknown kid rejected.
	_, err = v.Verify(rotated, start.Add(time.Minute))
	checkRejected(t, err)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1 (rate limited)", got)
	}
	// A known kid never triggers a fetch.
	if _, err := v.Verify(known, start.Add(10*time.Minute)); err != nil {
		t.Fatalf("Verify known kid: %v", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1 (known kid)", got)
	}
	// After 5 minutes: refetched, new key accepted.
	if _, err := v.Verify(rotated, start.Add(6*time.Minute)); err != nil {
		t.Fatalf("Verify after refresh: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}
	// Another unknown kid right after: rate limited again.
	other := sign(t, jwt.SigningMethodRS256, k.rsa2, "r3", claims)
	_, err = v.Verify(other, start.Add(7*time.Minute))
	checkRejected(t, err)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (rate limited)", got)
	}
	// A failed refresh keeps the current keys.
	srv.fail.Store(true)
	_, err = v.Verify(other, start.Add(20*time.Minute))
	checkRejected(t, err)
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("hits = %d, want 3", got)
	}
	if _, err := v.Verify(rotated, start.Add(21*time.Minute)); err != nil {
		t.Fatalf("Verify after failed refresh: %v", err)
	}
}

func TestJWKSConcurrentVerify(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, rsaJWKOf("r1", &k.rsa1.PublicKey)))
	v, err := NewJWKSVerifier(context.Background(), srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := with(base(RoleAdmin), "iat", now.Unix(), "exp", now.Add(time.Hour).Unix())
	good := sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", claims)
	unknown := sign(t, jwt.SigningMethodRS256, k.rsa1, "zz", claims)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := now.Add(time.Duration(i) * time.Minute)
			if _, err := v.Verify(good, at); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if _, err := v.Verify(unknown, at); err == nil {
				t.Error("unknown kid accepted")
			}
		}()
	}
	wg.Wait()
}

func TestNewJWKSVerifierErrors(t *testing.T) {
	k := newTestKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srv := newJWKSServer(t, []byte(`{"keys":[]}`))
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	for name, source := range map[string]string{
		"empty source":    "",
		"missing file":    filepath.Join(dir, "nope.json"),
		"not json":        write("bad.json", []byte("nope")),
		"no keys":         write("empty.json", []byte(`{"keys":[]}`)),
		"only oct":        write("oct.json", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)),
		"small RSA":       write("small.json", jwksJSON(t, rsaJWKOf("s", &small.PublicKey))),
		"EC off curve":    write("off.json", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`)),
		"RSA wrong alg":   write("ps.json", jwksJSON(t, map[string]any(with(jwt.MapClaims(rsaJWKOf("r", &k.rsa1.PublicKey)), "alg", "PS256")))),
		"RSA for enc":     write("enc.json", jwksJSON(t, map[string]any(with(jwt.MapClaims(rsaJWKOf("r", &k.rsa1.PublicKey)), "use", "enc")))),
		"EC wrong curve":  write("p384.json", jwksJSON(t, map[string]any(with(jwt.MapClaims(ecJWKOf(t, "e", &k.ec1.PublicKey)), "crv", "P-384")))),
		"URL empty set":   srv.URL,
		"URL 404":         notFound.URL,
		"URL unreachable": "http://127.0.0.1:1/jwks",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewJWKSVerifier(context.Background(), source, nil); err == nil {
				t.Fatal("NewJWKSVerifier succeeded, want error")
			}
		})
	}
}

func TestNewHS256VerifierShortSecret(t *testing.T) {
	if _, err := NewHS256Verifier(make([]byte, 31)); err == nil {
		t.Fatal("31-byte secret accepted")
	}
	if _, err := NewHS256Verifier(nil); err == nil {
		t.Fatal("nil secret accepted")
	}
}

func TestMintHS256(t *testing.T) {
	v := hsVerifier(t)
	valid := []Claims{
		{Subject: "dr-1", Role: "professional", RPPS: "10001234567", Profession: "10", Specialty: "SM54", Mode: ModeCentre15, Scope: "user/*.rs", TTL: 10 * time.Minute},
		{Subject: "p", Role: "patient", Patient: "pat-1"},
		{Subject: "r", Role: "representative", Patient: "pat-1"},
		{Subject: "c", Role: "campaign"},
		{Subject: "i", Role: "integration", Org: "org.1"},
		{Subject: "a", Role: "admin"},
	}
	for _, c := range valid {
		t.Run("valid/"+c.Role, func(t *testing.T) {
			tok, err := MintHS256(testSecret, c, testNow)
			if err != nil {
				t.Fatalf("MintHS256: %v", err)
			}
			r, err := v.Verify(tok, testNow.Add(time.Second))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			ttl := c.TTL
			if ttl == 0 {
				ttl = time.Hour
			}
			if r.Subject != c.Subject || string(r.Role) != c.Role || r.Patient != c.Patient || r.Org != c.Org ||
				r.RPPS != c.RPPS || r.Profession != c.Profession || r.Specialty != c.Specialty ||
				!r.IssuedAt.Equal(testNow) || !r.Expires.Equal(testNow.Add(ttl)) || len(r.TokenID) != 32 {
				t.Fatalf("requester %+v from claims %+v", *r, c)
			}
			if c.Role == "professional" && (r.Mode != ModeCentre15 || !slices.Equal(r.Scopes, []string{"user/*.rs"})) {
				t.Fatalf("mode %q scopes %v", r.Mode, r.Scopes)
			}
			if _, err := v.Verify(tok, testNow.Add(ttl+Leeway+time.Second)); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("expired minted token: err = %v", err)
			}
		})
	}
	invalid := map[string]Claims{
		"no subject":     {Role: "admin"},
		"bad role":       {Subject: "x", Role: "root"},
		"professional":   {Subject: "x", Role: "professional", RPPS: "1"},
		"bad mode":       {Subject: "x", Role: "professional", RPPS: "1", Profession: "10", Mode: "x"},
		"patient no id":  {Subject: "x", Role: "patient"},
		"patient bad id": {Subject: "x", Role: "patient", Patient: "a/b"},
		"integration":    {Subject: "x", Role: "integration"},
		"negative ttl":   {Subject: "x", Role: "admin", TTL: -time.Second},
	}
	for name, c := range invalid {
		t.Run("invalid/"+name, func(t *testing.T) {
			if _, err := MintHS256(testSecret, c, testNow); err == nil {
				t.Fatal("MintHS256 succeeded, want error")
			}
		})
	}
	if _, err := MintHS256(testSecret[:16], Claims{Subject: "a", Role: "admin"}, testNow); err == nil {
		t.Fatal("short secret accepted")
	}
	// Two mints carry different token ids.
	a, _ := MintHS256(testSecret, valid[5], testNow)
	b, _ := MintHS256(testSecret, valid[5], testNow)
	if a == b {
		t.Fatal("two minted tokens are identical")
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"BeArEr   abc  ", "abc", true},
		{"  Bearer abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"Bearer a b", "", false},
		{"", "", false},
		{"abc.def.ghi", "", false},
	}
	for _, tt := range tests {
		got, ok := BearerToken(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || len(b) != 32 || string(a) == string(b) {
		t.Fatalf("secrets %x %x", a, b)
	}
	if _, err := NewHS256Verifier(a); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "keys", "token.secret")
	s1, created, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !created || len(s1) != 32 {
		t.Fatalf("created=%v len=%d", created, len(s1))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("mode %o, want 600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(data)) != hex.EncodeToString(s1) {
		t.Fatalf("file content %q is not the hex secret", data)
	}
	s2, created, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if created || string(s1) != string(s2) {
		t.Fatalf("reload: created=%v same=%v", created, string(s1) == string(s2))
	}
	// The secret works end to end.
	tok, err := MintHS256(s2, Claims{Subject: "a", Role: "admin"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewHS256Verifier(s1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok, testNow); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateSecretBadFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not hex": "zz not hex",
		"short":   hex.EncodeToString(make([]byte, 16)),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadOrCreateSecret(p); err == nil {
				t.Fatal("bad secret file accepted")
			}
			// The bad file is left untouched.
			data, _ := os.ReadFile(p)
			if string(data) != content {
				t.Fatal("bad secret file was overwritten")
			}
		})
	}
}

// A verified token is remembered, never past its exp, and forgotten when
// the JWKS keys change.
func TestVerifyRemembers(t *testing.T) {
	v := hsVerifier(t)
	c := with(base(RoleProfessional), "scope", "a b")
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", c)
	r, err := v.Verify(tok, testNow)
	if err != nil {
		t.Fatal(err)
	}
	r.Scopes[0] = "changed" // a caller's change does not reach the remembered one
	again, err := v.Verify(tok, testNow.Add(30*time.Second))
	if err != nil || again.RPPS != leakRPPS || again.Scopes[0] != "a" {
		t.Fatalf("second Verify = %+v, %v", again, err)
	}
	if len(v.verified) != 1 {
		t.Fatalf("%d remembered tokens, want 1", len(v.verified))
	}
	// Past exp (and its leeway): refused although remembered.
	_, err = v.Verify(tok, testNow.Add(time.Hour+time.Minute))
	checkRejected(t, err)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error %q, want expired", err)
	}
	// The same claims with another signature are not the remembered token.
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", c), testNow.Add(time.Second))
	checkRejected(t, err)

	// JWKS: a key dropped at the IdP stops a remembered token at the refresh.
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, rsaJWKOf("r1", &k.rsa1.PublicKey)))
	jv, err := NewJWKSVerifier(context.Background(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	claims := with(base(RoleAdmin), "iat", start.Unix(), "exp", start.Add(time.Hour).Unix())
	old := sign(t, jwt.SigningMethodRS256, k.rsa1, "r1", claims)
	if _, err := jv.Verify(old, start.Add(5*time.Minute+30*time.Second)); err != nil {
		t.Fatal(err)
	}
	onlyNew := jwksJSON(t, rsaJWKOf("r2", &k.rsa2.PublicKey))
	srv.body.Store(&onlyNew)
	// An unknown kid after the refresh interval refetches the keys.
	if _, err := jv.Verify(sign(t, jwt.SigningMethodRS256, k.rsa2, "r2", claims), start.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err = jv.Verify(old, start.Add(6*time.Minute+10*time.Second))
	checkRejected(t, err)
}
