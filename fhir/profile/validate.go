package profile

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

// Default profiles applied in strict mode to the core record types, with
// the condition for the resource to be in scope.
var defaults = []struct {
	typ, url string
	applies  func(res map[string]any) bool
}{
	{"Patient", Base + "/StructureDefinition/dossier-patient-ins", nil},
	{"Encounter", Base + "/StructureDefinition/dossier-encounter", nil},
	{"DocumentReference", Base + "/StructureDefinition/dossier-document-reference", nil},
	{"CarePlan", Base + "/StructureDefinition/dossier-careplan-prevention", IsPrevention},
}

// IsPrevention reports whether a CarePlan (decoded JSON) has the prevention
// category of our careplan-category code system.
func IsPrevention(res map[string]any) bool {
	for _, cat := range asList(res["category"]) {
		cm, _ := cat.(map[string]any)
		for _, c := range asList(cm["coding"]) {
			m, _ := c.(map[string]any)
			if m["system"] == Base+"/CodeSystem/careplan-category" && m["code"] == "prevention" {
				return true
			}
		}
	}
	return false
}

// Validate checks a resource of type typ (already valid R4) against every
// profile its meta.profile claims and, when strict, the default profile of
// its type. It returns all issues found: errors for violations, a warning
// (not-supported) for each claimed profile that is not loaded. Expressions
// are FHIRPath locations such as Patient.identifier[1].value.
func (s *Set) Validate(typ string, resourceJSON []byte, strict bool) []outcome.Issue {
	res, err := decode(resourceJSON)
	if err != nil {
		return []outcome.Issue{{Severity: "error", Code: "structure", Diagnostics: "the resource is not a JSON object: " + err.Error()}}
	}
	v := &validator{seen: map[string]bool{}}
	applied := map[*profileDef]bool{}
	meta, _ := res["meta"].(map[string]any)
	for i, pu := range asList(meta["profile"]) {
		u, _ := pu.(string)
		p := s.profiles[stripVersion(u)]
		loc := typ + ".meta.profile"
		if _, isList := meta["profile"].([]any); isList {
			loc = fmt.Sprintf("%s[%d]", loc, i)
		}
		switch {
		case p == nil:
			v.add("warning", "not-supported", loc, fmt.Sprintf("profile %s is not known to this server; not checked", u))
		case p.typ != typ:
			v.add("error", "invalid", loc, fmt.Sprintf("profile %s constrains %s, not %s", u, p.typ, typ))
		case !applied[p]:
			applied[p] = true
			v.profile(p, res)
		}
	}
	if strict {
		for _, d := range defaults {
			if d.typ != typ || (d.applies != nil && !d.applies(res)) {
				continue
			}
			if p := s.profiles[d.url]; p != nil && !applied[p] {
				applied[p] = true
				v.profile(p, res)
			}
		}
	}
	return v.issues
}

type validator struct {
	issues []outcome.Issue
	seen   map[string]bool
	pname  string
}

func (v *validator) add(sev, code, expr, msg string) {
	key := sev + "\x00" + code + "\x00" + expr + "\x00" + msg
	if v.seen[key] {
		return
	}
	v.seen[key] = true
	is := outcome.Issue{Severity: sev, Code: code, Diagnostics: msg}
	if expr != "" {
		is.Expression = []string{expr}
	}
	v.issues = append(v.issues, is)
}

func (v *validator) errorf(code, expr string, e *elem, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.add("error", code, expr, fmt.Sprintf("%s (%s, profile %s)", msg, e.id, v.pname))
}

func (v *validator) profile(p *profileDef, res map[string]any) {
	v.pname = p.name
	if v.pname == "" {
		v.pname = p.url
	}
	v.value(p.root, item{val: res, path: p.typ})
	v.children(p.root, res, p.typ)
}

// item is one value of an element, with its FHIRPath location and, for a
// choice element, its type suffix (Period for scheduledPeriod).
type item struct {
	val  any
	path string
	typ  string
}

func (v *validator) children(n *elem, obj map[string]any, path string) {
	for _, c := range n.children {
		v.element(c, obj, path)
	}
}

// element checks child element c in each of its values in obj.
func (v *validator) element(c *elem, obj map[string]any, parent string) {
	base := strings.TrimSuffix(c.name, "[x]")
	loc := parent + "." + base
	var items []item
	collect := func(key, typ string) {
		raw, ok := obj[key]
		if !ok || raw == nil {
			return
		}
		if list, isList := raw.([]any); isList {
			for i, x := range list {
				if x != nil {
					items = append(items, item{val: x, path: fmt.Sprintf("%s[%d]", loc, i), typ: typ})
				}
			}
			return
		}
		items = append(items, item{val: raw, path: loc, typ: typ})
	}
	if c.isChoice() {
		keys := make([]string, 0, 1)
		for k := range obj {
			if len(k) > len(base) && strings.HasPrefix(k, base) && unicode.IsUpper(rune(k[len(base)])) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			typ := k[len(base):]
			if len(c.types) > 0 && !typeAllowed(c.types, typ) {
				v.errorf("structure", loc, c, "type %s is not allowed here (allowed: %s)", typ, typeList(c.types))
			}
			collect(k, typ)
		}
	} else {
		collect(c.name, "")
	}
	v.cardinality(c, len(items), loc, "")
	for _, it := range items {
		v.value(c, it)
	}
	if len(c.slices) > 0 {
		v.slices(c, items, loc)
	}
	for _, it := range items {
		if m, ok := it.val.(map[string]any); ok {
			v.children(c, m, it.path)
		}
	}
}

func typeAllowed(types []typeRef, suffix string) bool {
	for _, t := range types {
		if strings.EqualFold(t.code, suffix) {
			return true
		}
	}
	return false
}

func typeList(types []typeRef) string {
	var s []string
	for _, t := range types {
		s = append(s, t.code)
	}
	return strings.Join(s, ", ")
}

func (v *validator) cardinality(e *elem, n int, loc, what string) {
	if what == "" {
		what = "element"
	}
	if e.hasMin && n < e.min {
		v.errorf("required", loc, e, "%s %s: %d present, at least %d required", what, e.label(), n, e.min)
	}
	if e.max != "" && e.maxN >= 0 && n > e.maxN {
		v.errorf("structure", loc, e, "%s %s: %d present, at most %d allowed", what, e.label(), n, e.maxN)
	}
}

func (e *elem) label() string {
	if e.sliceName != "" {
		return e.name + ":" + e.sliceName
	}
	return e.name
}

// value applies the constraints of e on one value: fixed, pattern, regex,
// required binding, invariants.
func (v *validator) value(e *elem, it item) {
	if e.fixed != nil && !equalJSON(e.fixed, it.val) {
		v.errorf("value", it.path, e, "value must be exactly %s (%s)", compact(e.fixed), e.fixedKey)
	}
	if e.pattern != nil && !matchPattern(e.pattern, it.val) {
		v.errorf("value", it.path, e, "value must match %s (%s)", compact(e.pattern), e.patternKey)
	}
	if e.regex != nil {
		if s, ok := it.val.(string); ok && !e.regex.MatchString(s) {
			v.errorf("value", it.path, e, "value does not match the regular expression %s", e.regexSrc)
		}
	}
	if e.binding != nil && e.binding.vs != nil {
		v.binding(e, it)
	}
	for _, inv := range e.invariants {
		if b, ok := truth(inv.expr.eval(it.val)); ok && !b {
			sev := inv.severity
			if sev == "" {
				sev = "error"
			}
			v.add(sev, "invariant", it.path, fmt.Sprintf("%s: %s [%s] (%s, profile %s)", inv.key, inv.human, inv.expression, e.id, v.pname))
		}
	}
}

func (v *validator) binding(e *elem, it item) {
	vs := e.binding.vs
	switch x := it.val.(type) {
	case string: // code
		if !vs.byCode[x] {
			v.errorf("code-invalid", it.path, e, "code %q is not in the required ValueSet %s", x, vs.url)
		}
	case map[string]any:
		if codings, ok := x["coding"]; ok || x["text"] != nil {
			var given []string
			for _, c := range asList(codings) {
				sys, code := codingOf(c)
				if vs.contains(sys, code) {
					return
				}
				given = append(given, sys+"|"+code)
			}
			v.errorf("code-invalid", it.path, e, "no coding (%s) is in the required ValueSet %s", strings.Join(given, ", "), vs.url)
			return
		}
		if _, ok := x["code"]; ok || x["system"] != nil {
			sys, code := codingOf(x)
			if !vs.contains(sys, code) {
				v.errorf("code-invalid", it.path, e, "%s|%s is not in the required ValueSet %s", sys, code, vs.url)
			}
		}
	}
}

func codingOf(c any) (system, code string) {
	m, _ := c.(map[string]any)
	system, _ = m["system"].(string)
	code, _ = m["code"].(string)
	return
}

// slices sorts the values of a sliced element into its slices, checks
// each slice's cardinality, closed slicing, and the slices' constraints.
func (v *validator) slices(c *elem, items []item, loc string) {
	counts := make([]int, len(c.slices))
	for _, it := range items {
		matched := false
		for i, sl := range c.slices {
			if !sliceMatches(c, sl, it) {
				continue
			}
			matched = true
			counts[i]++
			v.value(sl, it)
			if m, ok := it.val.(map[string]any); ok {
				v.children(sl, m, it.path)
			}
			break
		}
		if !matched && c.slicing != nil && c.slicing.rules == "closed" {
			v.errorf("structure", it.path, c, "value matches no slice and the slicing is closed")
		}
	}
	for i, sl := range c.slices {
		v.cardinality(sl, counts[i], loc, "slice")
	}
}

func sliceMatches(c, sl *elem, it item) bool {
	if c.isChoice() && (c.slicing == nil || len(c.slicing.discriminators) == 0) {
		// type slice of a choice: valueQuantity, scheduledPeriod
		return strings.TrimSuffix(c.name, "[x]")+it.typ == sl.sliceName
	}
	for _, d := range c.slicing.discriminators {
		if d.typ == "type" {
			if it.typ == "" || !strings.EqualFold(sl.types[0].code, it.typ) {
				return false
			}
			continue
		}
		want, isPattern, _ := sliceValue(sl, d.path)
		got := []any{it.val}
		if d.path != "$this" {
			got = navigate(it.val, d.path)
		}
		ok := false
		for _, g := range got {
			if (isPattern || d.typ == "pattern") && matchPattern(want, g) || !isPattern && equalJSON(want, g) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func navigate(v any, path string) []any {
	cur := []any{v}
	for _, seg := range strings.Split(path, ".") {
		var next []any
		for _, c := range cur {
			if m, ok := c.(map[string]any); ok {
				next = append(next, nonNull(asList(m[seg]))...)
			}
		}
		cur = next
	}
	return cur
}

// matchPattern: every element of the pattern is present in the value with
// the same value; for arrays, each pattern item matches some value item.
func matchPattern(p, v any) bool {
	switch pp := p.(type) {
	case map[string]any:
		vm, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for k, pv := range pp {
			vv, ok := vm[k]
			if !ok || !matchPattern(pv, vv) {
				return false
			}
		}
		return true
	case []any:
		vl := asList(v)
		for _, pi := range pp {
			found := false
			for _, vi := range vl {
				if matchPattern(pi, vi) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	default:
		return equalJSON(p, v)
	}
}

func equalJSON(a, b any) bool {
	if an, ok := a.(json.Number); ok {
		bn, ok := b.(json.Number)
		return ok && an == bn
	}
	return reflect.DeepEqual(a, b)
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
