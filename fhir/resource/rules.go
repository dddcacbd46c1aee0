package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

// structuralIssues checks the JSON rules of FHIR that the google/fhir
// validator leaves out: no empty strings, objects or arrays (ele-1: an
// element has a value or children), no null outside primitive arrays, and
// an extension has a value or nested extensions, not both (ext-1).
// Expressions are FHIRPath-like element paths.
func structuralIssues(typ string, data []byte) []outcome.Issue {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil // reported by the parser
	}
	var issues []outcome.Issue
	walkRules(typ, "", v, false, &issues)
	return issues
}

func walkRules(path, key string, v any, inPrimitiveArray bool, issues *[]outcome.Issue) {
	add := func(msg string) {
		if len(*issues) < 100 {
			*issues = append(*issues, outcome.Issue{Severity: "error", Code: "invalid", Diagnostics: msg, Expression: []string{path}})
		}
	}
	switch x := v.(type) {
	case nil:
		if !inPrimitiveArray {
			add("null is not allowed here")
		}
	case string:
		if x == "" {
			add("empty strings are not allowed (ele-1)")
		} else if strings.TrimSpace(x) == "" && key != "div" {
			add("a value may not be only whitespace")
		}
	case []any:
		if len(x) == 0 {
			add("empty arrays are not allowed (ele-1)")
		}
		prim := strings.HasPrefix(key, "_")
		for i, e := range x {
			if e == nil && !prim {
				// primitive arrays may hold null to align with their _ twin
				prim = hasScalar(x)
			}
			walkRules(fmt.Sprintf("%s[%d]", path, i), key, e, prim, issues)
		}
	case map[string]any:
		if len(x) == 0 {
			add("empty objects are not allowed (ele-1)")
			return
		}
		if key == "extension" || key == "modifierExtension" {
			values, nested := 0, false
			for k := range x {
				if strings.HasPrefix(k, "value") {
					values++
				}
				if k == "extension" {
					nested = true
				}
			}
			if _, ok := x["url"]; !ok {
				add("an extension needs a url")
			}
			if (values == 0) == !nested || values > 1 {
				add("an extension has either one value[x] or nested extensions, not both (ext-1)")
			}
		}
		for k, e := range x {
			if k == "resourceType" {
				continue
			}
			child := path + "." + k
			if k == "contained" || (key == "entry" && k == "resource") {
				// contained resources are checked with their own type
				if arr, ok := e.([]any); ok {
					for i, r := range arr {
						rt, _ := r.(map[string]any)["resourceType"].(string)
						walkRules(fmt.Sprintf("%s[%d](%s)", child, i, rt), "", r, false, issues)
					}
					continue
				}
			}
			walkRules(child, k, e, false, issues)
		}
	}
}

func hasScalar(arr []any) bool {
	for _, e := range arr {
		switch e.(type) {
		case string, json.Number, bool:
			return true
		}
	}
	return false
}
