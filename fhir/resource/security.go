package resource

import "encoding/json"

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// SecurityLabels returns meta.security and, for documents,
// securityLabel codings, as "system|code".
func SecurityLabels(obj Object) []string {
	var out []string
	if raw, ok := obj.Get("meta"); ok {
		var m struct {
			Security []coding `json:"security"`
		}
		if json.Unmarshal(raw, &m) == nil {
			for _, c := range m.Security {
				out = append(out, c.System+"|"+c.Code)
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
					out = append(out, c.System+"|"+c.Code)
				}
			}
		}
	}
	return out
}
