package profile

import (
	"math/big"
	"strings"
)

// ValidNIRKey reports whether a 15-character NIR (13 characters, 2A/2B
// allowed for Corsica at positions 6–7, then a 2-digit key) has the right
// key: 97 − (the first 13 digits mod 97), with 2A read as 19 and 2B as 18.
// Profiles cannot express this (the regex only checks the shape); callers
// that want it call this.
func ValidNIRKey(nir string) bool {
	if len(nir) != 15 {
		return false
	}
	body := nir[:13]
	switch strings.ToUpper(body[5:7]) {
	case "2A":
		body = body[:5] + "19" + body[7:]
	case "2B":
		body = body[:5] + "18" + body[7:]
	}
	n, ok := new(big.Int).SetString(body, 10)
	if !ok || strings.ContainsAny(body, "+-") {
		return false
	}
	key, ok := new(big.Int).SetString(nir[13:], 10)
	if !ok || strings.ContainsAny(nir[13:], "+-") {
		return false
	}
	want := 97 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return key.Int64() == want
}
