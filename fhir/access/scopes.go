package access

import (
	"strings"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

// checkScopes narrows by the token's SMART scopes (v2 "patient/Observation.rs",
// "user/*.cruds", and the v1 forms ".read", ".write", ".*"). A token with no
// resource scope is not narrowed; otherwise one scope must grant the
// interaction on the type: c create, r read/vread/history, u update/patch
// (and close/reopen on Patient), d delete, s search. Scopes never widen
// what the role allows. A v2 scope with search parameters ("?category=…")
// grants nothing (its restriction is not supported, so it narrows to
// nothing rather than being ignored). The context prefix (patient/,
// user/, system/) is not checked against the role: the role's own rules
// already bind a patient to his record.
func checkScopes(r *Requester, act Action, typ string) error {
	want := map[Action]byte{
		Create: 'c', Read: 'r', VRead: 'r', History: 'r', Update: 'u', Patch: 'u', Delete: 'd', Search: 's',
		Close: 'u', Reopen: 'u',
	}[act]
	resourceScopes := 0
	for _, sc := range r.Scopes {
		ctx, rest, ok := strings.Cut(sc, "/")
		if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
			continue // openid, fhirUser, launch, offline_access...
		}
		resourceScopes++
		rtype, perms, ok := strings.Cut(rest, ".")
		if !ok || strings.Contains(perms, "?") {
			continue
		}
		switch perms {
		case "read":
			perms = "rs"
		case "write":
			perms = "cud"
		case "*":
			perms = "cruds"
		}
		if !validPerms(perms) {
			continue
		}
		if (rtype == "*" || (typ != "" && rtype == typ)) && strings.IndexByte(perms, want) >= 0 {
			return nil
		}
	}
	if resourceScopes == 0 || want == 0 {
		return nil
	}
	return outcome.New(outcome.Forbidden, "forbidden", "the token's scopes do not grant this interaction on %s", orAll(typ))
}

// validPerms: v2 permissions are a subsequence of "cruds".
func validPerms(p string) bool {
	if p == "" {
		return false
	}
	i := 0
	for _, c := range []byte(p) {
		j := strings.IndexByte("cruds"[i:], c)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return true
}

func orAll(typ string) string {
	if typ == "" {
		return "the system"
	}
	return typ
}
