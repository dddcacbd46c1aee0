package resource

import (
	"encoding/json"
	"strings"
)

// Extracted holds what the store keeps beside a resource's JSON.
type Extracted struct {
	Patient  string
	Security []string
	Keys     map[string][]string
}

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type reference struct {
	Reference string `json:"reference"`
}

// Extract reads the owning patient, the security labels and the search
// keys of a resource. The owning patient is the Patient itself, or the
// Patient named by `subject` or `patient` (the compartment rule of most
// clinical types; the search issue generalises it from the
// CompartmentDefinition).
func Extract(typ, id string, obj Object) Extracted {
	var x Extracted
	if typ == "Patient" {
		x.Patient = id
	} else {
		for _, k := range []string{"subject", "patient"} {
			raw, ok := obj.Get(k)
			if !ok {
				continue
			}
			var r reference
			if json.Unmarshal(raw, &r) == nil {
				if pid, ok := patientRef(r.Reference); ok {
					x.Patient = pid
					break
				}
			}
		}
	}
	if raw, ok := obj.Get("meta"); ok {
		var m struct {
			Security []coding `json:"security"`
		}
		if json.Unmarshal(raw, &m) == nil {
			for _, c := range m.Security {
				x.Security = append(x.Security, c.System+"|"+c.Code)
			}
		}
	}
	if raw, ok := obj.Get("securityLabel"); ok {
		var labels []struct {
			Coding []coding `json:"coding"`
		}
		if json.Unmarshal(raw, &labels) == nil {
			for _, l := range labels {
				for _, c := range l.Coding {
					x.Security = append(x.Security, c.System+"|"+c.Code)
				}
			}
		}
	}
	if raw, ok := obj.Get("identifier"); ok {
		var ids []identifier
		if json.Unmarshal(raw, &ids) != nil {
			var one identifier
			if json.Unmarshal(raw, &one) == nil {
				ids = []identifier{one}
			}
		}
		var keys []string
		for _, i := range ids {
			if i.Value == "" {
				continue
			}
			keys = append(keys, IdentifierKeys(i.System, i.Value)...)
		}
		if len(keys) > 0 {
			x.Keys = map[string][]string{"identifier": dedupe(keys)}
		}
	}
	return x
}

// IdentifierKeys are the keys stored for an identifier: "system|value"
// and "value" (any system); an identifier without system also gets
// "|value" (matches `identifier=|value`).
func IdentifierKeys(system, value string) []string {
	if system == "" {
		return []string{"|" + value, value}
	}
	return []string{system + "|" + value, value}
}

func patientRef(ref string) (string, bool) {
	i := strings.LastIndex(ref, "Patient/")
	if i < 0 || (i > 0 && ref[i-1] != '/') {
		return "", false
	}
	id := ref[i+len("Patient/"):]
	if j := strings.Index(id, "/"); j >= 0 {
		id = id[:j] // Patient/x/_history/n
	}
	return id, ValidID(id)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
