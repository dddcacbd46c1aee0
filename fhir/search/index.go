package search

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
)

// Index is what a store keeps of a resource to search it (the search
// fields of store.Version). The naming conventions are in the package
// documentation.
type Index struct {
	Keys    map[string][]string
	Ranges  map[string][]store.Range
	SortStr map[string]string
	SortNum map[string][2]float64
	Patient string // owning patient id ("" when none)
}

// Open ends of a Period, and of a Range without low or high.
const (
	minOpen = -1e18
	maxOpen = 1e18
)

// Index computes the search fields of resource (decoded JSON, preferably
// with UseNumber) of type resourceType; id is its logical id and base the
// server's FHIR base URL ("" when unknown), used to turn absolute
// references to this server into relative ones.
//
// Values that are malformed or of an unexpected shape are skipped, as are
// parameters whose expression fails on this resource: indexing never
// blocks a write. The error is only for a resource type the registry does
// not know or a resource of another type.
func (r *Registry) Index(resourceType, id string, resource map[string]any, base string) (Index, error) {
	if rt, ok := resource["resourceType"].(string); ok && rt != resourceType {
		return Index{}, fmt.Errorf("resource is a %s, not a %s", rt, resourceType)
	}
	if !r.types[resourceType] {
		return Index{}, fmt.Errorf("unknown resource type %q", resourceType)
	}
	b := &indexer{
		r: r, typ: resourceType, base: strings.TrimRight(base, "/"),
		keys: map[string][]string{}, ranges: map[string][]store.Range{},
		sortStr: map[string]string{}, sortNum: map[string][2]float64{},
	}
	root := item{v: resource, typ: resourceType}
	for _, p := range r.params[resourceType] {
		if p.expr == nil || p.Code == "_id" || p.Type == "special" {
			continue
		}
		items, err := p.expr.evalItems(root, nil)
		if err != nil || len(items) == 0 {
			continue
		}
		if p.Type == "composite" {
			comps, err := composites(p, root, items)
			if err != nil {
				continue
			}
			for _, c := range comps {
				b.composite(p, c.(Composite))
			}
			continue
		}
		for _, it := range items {
			if _, stub := it.v.(*resolved); stub {
				continue
			}
			b.value(p, it)
		}
	}
	ix := Index{Keys: b.keys, Ranges: b.ranges, SortStr: b.sortStr, SortNum: b.sortNum}
	for code, rs := range b.ranges {
		if strings.ContainsAny(code, "|$") {
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range rs {
			lo, hi = min(lo, x.Lo), max(hi, x.Hi)
		}
		ix.SortNum[code] = [2]float64{lo, hi}
	}
	if resourceType == "Patient" {
		ix.Patient = id
	} else {
		for _, code := range r.OwnerParam(resourceType) {
			if pid := patientIn(b.keys[code]); pid != "" {
				ix.Patient = pid
				break
			}
		}
	}
	return ix, nil
}

// patientIn returns the id of the first "Patient/<id>" value.
func patientIn(vals []string) string {
	for _, v := range vals {
		if id, ok := strings.CutPrefix(v, "Patient/"); ok && id != "" && !strings.Contains(id, "/") {
			return id
		}
	}
	return ""
}

type indexer struct {
	r       *Registry
	typ     string
	base    string
	keys    map[string][]string
	ranges  map[string][]store.Range
	sortStr map[string]string
	sortNum map[string][2]float64
}

func (b *indexer) key(k, v string) {
	if v == "" || slices.Contains(b.keys[k], v) {
		return
	}
	b.keys[k] = append(b.keys[k], v)
}

func (b *indexer) rng(k string, lo, hi float64) {
	if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi {
		return
	}
	x := store.Range{Lo: lo, Hi: hi}
	if slices.Contains(b.ranges[k], x) {
		return
	}
	b.ranges[k] = append(b.ranges[k], x)
}

func (b *indexer) sortString(code, s string) {
	if s == "" {
		return
	}
	if old, ok := b.sortStr[code]; !ok || s < old {
		b.sortStr[code] = s
	}
}

func (b *indexer) value(p *Param, it item) {
	switch p.Type {
	case "string":
		for _, s := range stringParts(it) {
			n := normalize(s)
			if n == "" {
				continue
			}
			b.key(p.Code, n)
			b.key(p.Code+":exact", s)
			if !isNameOrAddress(it.v) {
				b.sortString(p.Code, n)
			}
		}
		if m, ok := it.v.(map[string]any); ok && isNameOrAddress(m) {
			b.sortString(p.Code, normalize(strings.Join(sortParts(m), " ")))
		}
	case "token":
		t := tokenOf(it)
		for _, f := range t.forms {
			b.key(p.Code, f)
		}
		for _, s := range t.text {
			b.key(p.Code+":text", normalize(s))
		}
		for _, s := range t.ofType {
			b.key(p.Code+":of-type", s)
		}
		for _, c := range t.codes {
			b.sortString(p.Code, normalize(c))
		}
	case "reference":
		ref := b.referenceOf(it.v)
		for _, f := range ref.forms {
			b.key(p.Code, f)
		}
		if ref.typ != "" {
			b.key(p.Code+":type", ref.typ)
		}
		for _, f := range ref.identifier {
			b.key(p.Code+":identifier", f)
		}
		if len(ref.forms) > 0 {
			b.sortString(p.Code, ref.forms[0])
		}
	case "uri":
		if s, ok := it.v.(string); ok && s != "" {
			b.key(p.Code, s)
			b.sortString(p.Code, s)
		}
	case "date":
		for _, x := range b.dates(p, it) {
			b.rng(p.Code, x.Lo, x.Hi)
		}
	case "number":
		if lo, hi, ok := numberOf(it.v); ok {
			b.rng(p.Code, lo, hi)
		}
	case "quantity":
		b.quantity(p.Code, it.v)
	}
}

// ---- strings ----

var nameParts = []string{"family", "given", "prefix", "suffix", "text"}
var addressParts = []string{"line", "city", "district", "state", "postalCode", "country", "text"}

func isNameOrAddress(v any) bool {
	m, ok := v.(map[string]any)
	return ok && hasAny(m, "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country")
}

// stringParts returns the strings a string parameter searches in a value:
// the value itself, or the parts of a HumanName or an Address, or for
// another object its text (else its direct string members).
func stringParts(it item) []string {
	switch v := it.v.(type) {
	case string:
		return []string{v}
	case map[string]any:
		var keys []string
		switch {
		case hasAny(v, "family", "given", "prefix", "suffix"):
			keys = nameParts
		case hasAny(v, "line", "city", "district", "state", "postalCode", "country"):
			keys = addressParts
		case hasAny(v, "text"):
			keys = []string{"text"}
		default:
			var out []string
			for k, x := range v {
				if s, ok := x.(string); ok && k != "id" && k != "use" && k != "system" && k != "url" {
					out = append(out, s)
				}
			}
			slices.Sort(out)
			return out
		}
		var out []string
		for _, k := range keys {
			out = append(out, strs(v[k])...)
		}
		return out
	}
	return nil
}

// sortParts is what a HumanName or Address sorts by: family then given
// names, or lines, city, state, postal code and country.
func sortParts(m map[string]any) []string {
	var keys []string
	if hasAny(m, "family", "given", "prefix", "suffix") {
		keys = []string{"family", "given"}
	} else {
		keys = []string{"line", "city", "state", "postalCode", "country"}
	}
	var out []string
	for _, k := range keys {
		out = append(out, strs(m[k])...)
	}
	if len(out) == 0 {
		out = strs(m["text"])
	}
	return out
}

func hasAny(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// strs returns a string, or the strings of an array.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// normalize is the form string searches compare: lower case, without
// diacritics (NFD, then combining marks dropped), white space collapsed
// to single spaces and trimmed.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsSpace(r):
			space = true
		default:
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// ---- tokens ----

type tokenVals struct {
	forms  []string // Keys[code]
	text   []string // Keys[code:text], not yet normalised
	ofType []string // Keys[code:of-type]
	codes  []string // the bare codes/values, for sorting
}

// contactPointSystems are the codes of ContactPoint.system: an object
// with system and value whose system is one of them is a ContactPoint,
// not an Identifier (whose system is a URI).
var contactPointSystems = map[string]bool{
	"phone": true, "fax": true, "email": true, "pager": true, "url": true, "sms": true, "other": true,
}

func (t *tokenVals) coded(system, code string) {
	if code == "" {
		return
	}
	if system != "" {
		t.forms = append(t.forms, system+"|"+code, code, system+"|")
	} else {
		t.forms = append(t.forms, "|"+code, code)
	}
	t.codes = append(t.codes, code)
}

// tokenOf gives the token forms of a value of a token parameter.
func tokenOf(it item) tokenVals {
	var t tokenVals
	switch v := it.v.(type) {
	case string:
		t.forms = []string{v, "|" + v}
		t.codes = []string{v}
		if v == "" {
			return tokenVals{}
		}
	case bool:
		t.forms = []string{strconv.FormatBool(v)}
		t.codes = t.forms
	case json.Number:
		t.forms = []string{v.String(), "|" + v.String()}
		t.codes = []string{v.String()}
	case float64:
		s := strconv.FormatFloat(v, 'f', -1, 64)
		t.forms = []string{s, "|" + s}
		t.codes = []string{s}
	case map[string]any:
		switch tokenShape(it.typ, v) {
		case "CodeableConcept":
			for _, c := range objects(v["coding"]) {
				t.coded(str(c, "system"), str(c, "code"))
				if d := str(c, "display"); d != "" {
					t.text = append(t.text, d)
				}
			}
			if s := str(v, "text"); s != "" {
				t.text = append(t.text, s)
			}
		case "Coding":
			t.coded(str(v, "system"), str(v, "code"))
			if d := str(v, "display"); d != "" {
				t.text = append(t.text, d)
			}
		case "Identifier":
			value := str(v, "value")
			t.coded(str(v, "system"), value)
			if value != "" {
				if typ, ok := v["type"].(map[string]any); ok {
					for _, c := range objects(typ["coding"]) {
						if code := str(c, "code"); code != "" {
							t.ofType = append(t.ofType, str(c, "system")+"|"+code+"|"+value)
						}
					}
					if s := str(typ, "text"); s != "" {
						t.text = append(t.text, s)
					}
				}
			}
		case "ContactPoint":
			if value := str(v, "value"); value != "" {
				t.forms = []string{value, "|" + value}
				t.codes = []string{value}
			}
		}
	}
	return t
}

// tokenShape tells the FHIR type of an object selected by a token
// parameter, from its type when known, else from its members.
func tokenShape(typ string, m map[string]any) string {
	switch typ {
	case "CodeableConcept", "Coding", "Identifier", "ContactPoint":
		return typ
	case "Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity":
		return "Coding" // its unit as system|code
	}
	switch {
	case hasAny(m, "reference"):
		return ""
	case hasAny(m, "coding"):
		return "CodeableConcept"
	case hasAny(m, "code"):
		return "Coding"
	case hasAny(m, "value"):
		if hasAny(m, "type", "assigner") {
			return "Identifier"
		}
		if contactPointSystems[str(m, "system")] || hasAny(m, "rank") {
			return "ContactPoint"
		}
		return "Identifier"
	case hasAny(m, "text"):
		return "CodeableConcept"
	case hasAny(m, "display"):
		return "Coding"
	}
	return ""
}

// objects returns an object, or the objects of an array.
func objects(v any) []map[string]any {
	switch v := v.(type) {
	case map[string]any:
		return []map[string]any{v}
	case []any:
		var out []map[string]any
		for _, x := range v {
			if m, ok := x.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// ---- references ----

type reference struct {
	forms      []string // Keys[code]: "Type/id", "id", absolute URLs, canonical URLs
	typ        string   // Keys[code:type]
	identifier []string // Keys[code:identifier]
}

func (b *indexer) referenceOf(v any) reference {
	var out reference
	switch v := v.(type) {
	case string: // canonical or uri
		out.forms, out.typ = referenceForms(v, b.base, "")
	case map[string]any:
		typ := str(v, "type")
		typ = typ[strings.LastIndexByte(typ, '/')+1:]
		if !isResourceType(typ) {
			typ = ""
		}
		out.forms, out.typ = referenceForms(str(v, "reference"), b.base, typ)
		if id, ok := v["identifier"].(map[string]any); ok {
			out.identifier = tokenOf(item{v: id, typ: "Identifier"}).forms
		}
		if out.typ == "" {
			out.typ = typ
		}
	}
	return out
}

// referenceForms gives the stored forms of a reference: "Type/id" and
// "id" for a relative reference (or an absolute one to base), the URL as
// written for any other absolute one, and for a canonical with a version
// ("url|1.0") also the URL without it. Contained references ("#x") give
// nothing. typ is the resource type it names, if any.
func referenceForms(ref, base, refType string) (forms []string, typ string) {
	ref = strings.TrimSpace(ref)
	if ref == "" || strings.HasPrefix(ref, "#") {
		return nil, ""
	}
	if base != "" && strings.HasPrefix(ref, base+"/") {
		ref = ref[len(base)+1:]
	}
	if isAbsoluteURL(ref) {
		forms = []string{ref}
		if i := strings.LastIndexByte(ref, '|'); i > 0 {
			forms = append(forms, ref[:i])
		}
		typ = referenceType(strings.SplitN(ref, "|", 2)[0])
		if typ == "" {
			typ = refType
		}
		return forms, typ
	}
	segs := strings.Split(ref, "/")
	if len(segs) == 4 && segs[2] == "_history" {
		segs = segs[:2]
	}
	switch {
	case len(segs) == 2 && isResourceType(segs[0]) && segs[1] != "":
		return []string{segs[0] + "/" + segs[1], segs[1]}, segs[0]
	case len(segs) == 1 && refType != "":
		return []string{refType + "/" + ref, ref}, refType
	}
	return []string{ref}, refType
}

func isAbsoluteURL(s string) bool {
	if i := strings.Index(s, "://"); i > 0 {
		return true
	}
	return strings.HasPrefix(s, "urn:")
}

// ---- dates ----

// instantParams are the date parameters whose values are instants (exact
// points in time rather than the period their precision spans), by
// "Type.code" or by code for every type.
var instantParams = map[string]bool{
	"_lastUpdated": true, "Bundle.timestamp": true, "AuditEvent.date": true,
	"Provenance.recorded": true, "DiagnosticReport.issued": true,
}

func (b *indexer) dates(p *Param, it item) []store.Range {
	instant := it.typ == "instant" || instantParams[p.Code] || instantParams[b.typ+"."+p.Code]
	switch v := it.v.(type) {
	case string:
		lo, hi, ok := parseDate(v)
		if !ok {
			return nil
		}
		if instant {
			hi = lo
		}
		return []store.Range{{Lo: lo, Hi: hi}}
	case map[string]any:
		if hasAny(v, "start", "end") && !hasAny(v, "event", "repeat") {
			if x, ok := period(v); ok {
				return []store.Range{x}
			}
			return nil
		}
		var out []store.Range
		for _, e := range strs(v["event"]) {
			if lo, hi, ok := parseDate(e); ok {
				out = append(out, store.Range{Lo: lo, Hi: hi})
			}
		}
		if rep, ok := v["repeat"].(map[string]any); ok {
			if bp, ok := rep["boundsPeriod"].(map[string]any); ok {
				if x, ok := period(bp); ok {
					out = append(out, x)
				}
			}
		}
		return out
	}
	return nil
}

// period gives the interval of a Period: from the start of its start to
// the end of its end, open where one is missing.
func period(m map[string]any) (store.Range, bool) {
	x := store.Range{Lo: minOpen, Hi: maxOpen}
	s, e := str(m, "start"), str(m, "end")
	if s == "" && e == "" {
		return x, false
	}
	if s != "" {
		lo, _, ok := parseDate(s)
		if !ok {
			return x, false
		}
		x.Lo = lo
	}
	if e != "" {
		_, hi, ok := parseDate(e)
		if !ok {
			return x, false
		}
		x.Hi = hi
	}
	return x, x.Lo <= x.Hi
}

var dateRE = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// parseDate parses a FHIR date, dateTime or instant, or the forms search
// values add (a time to the minute), into the interval of microseconds
// since the epoch it covers: 2020 is all of 2020, 2020-03-01T10:00:00Z
// that second. A time without a zone is taken as UTC.
func parseDate(s string) (lo, hi float64, ok bool) {
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	num := func(s string, def int) int {
		if s == "" {
			return def
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	year, month, day := num(m[1], 0), num(m[2], 1), num(m[3], 1)
	hour, minute, sec := num(m[4], 0), num(m[5], 0), num(m[6], 0)
	if year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return 0, 0, false
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		h, mm := num(z[1:3], 0), num(z[4:6], 0)
		if h > 14 || mm > 59 {
			return 0, 0, false
		}
		off := (h*60 + mm) * 60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	frac := m[7]
	if len(frac) > 6 {
		frac = frac[:6]
	}
	usec := 0
	if frac != "" {
		usec = num(frac+strings.Repeat("0", 6-len(frac)), 0)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, usec*1000, loc)
	if t.Day() != day || t.Month() != time.Month(month) {
		return 0, 0, false // 2021-02-30
	}
	var end time.Time
	switch {
	case m[2] == "":
		end = t.AddDate(1, 0, 0)
	case m[3] == "":
		end = t.AddDate(0, 1, 0)
	case m[4] == "":
		end = t.AddDate(0, 0, 1)
	case m[6] == "":
		end = t.Add(time.Minute)
	case frac == "":
		end = t.Add(time.Second)
	default:
		step := 1
		for range 6 - len(frac) {
			step *= 10
		}
		end = t.Add(time.Duration(step) * time.Microsecond)
	}
	return float64(t.UnixMicro()), float64(end.UnixMicro() - 1), true
}

// ---- numbers and quantities ----

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(v.String(), 64)
		return f, err == nil && !math.IsInf(f, 0)
	case float64:
		return v, !math.IsInf(v, 0) && !math.IsNaN(v)
	}
	return 0, false
}

// numberOf gives the interval of a number parameter's value: a number, a
// Quantity's value, or a Range.
func numberOf(v any) (lo, hi float64, ok bool) {
	if f, ok := toFloat(v); ok {
		return f, f, true
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		return 0, 0, false
	}
	if f, ok := toFloat(m["value"]); ok {
		return f, f, true
	}
	return rangeOf(m)
}

func rangeOf(m map[string]any) (lo, hi float64, ok bool) {
	low, _ := m["low"].(map[string]any)
	high, _ := m["high"].(map[string]any)
	if low == nil && high == nil {
		return 0, 0, false
	}
	lo, hi = minOpen, maxOpen
	if f, ok := toFloat(low["value"]); ok {
		lo = f
	}
	if f, ok := toFloat(high["value"]); ok {
		hi = f
	}
	return lo, hi, lo <= hi && (lo != minOpen || hi != maxOpen)
}

// quantity indexes a Quantity (or Age, Duration, Money, Range, bare
// number) under key, key|system|code and key||code (and key||unit).
func (b *indexer) quantity(key string, v any) {
	lo, hi, ok := numberOf(v)
	if !ok {
		return
	}
	b.rng(key, lo, hi)
	m, _ := v.(map[string]any)
	if m == nil {
		return
	}
	units := m
	if !hasAny(m, "value") {
		units, _ = m["low"].(map[string]any)
		if units == nil {
			units, _ = m["high"].(map[string]any)
		}
	}
	system, code, unit := str(units, "system"), str(units, "code"), str(units, "unit")
	if cur := str(units, "currency"); cur != "" {
		system, code = "urn:iso:std:iso:4217", cur
	}
	if system != "" && code != "" {
		b.rng(key+"|"+system+"|"+code, lo, hi)
	}
	if code != "" {
		b.rng(key+"||"+code, lo, hi)
	}
	if unit != "" && unit != code {
		b.rng(key+"||"+unit, lo, hi)
	}
}

// ---- composites ----

// componentTypes gives the types of a composite's components (nil when
// one is unknown).
func (r *Registry) componentTypes(p *Param) []string {
	var out []string
	for _, c := range p.Components {
		d, ok := r.ByURL(c.Definition)
		if !ok {
			return nil
		}
		out = append(out, d.Type)
	}
	return out
}

// composite indexes one composite value with two components: the first a
// token or reference, the second anything but a composite.
func (b *indexer) composite(p *Param, c Composite) {
	types := b.r.componentTypes(p)
	if len(types) != 2 || len(c.Components) != 2 {
		return
	}
	first := b.compositeForms(types[0], c.Components[0])
	if len(first) == 0 {
		return
	}
	switch types[1] {
	case "token", "reference", "uri", "string":
		second := b.compositeForms(types[1], c.Components[1])
		for _, f1 := range first {
			for _, f2 := range second {
				b.key(p.Code, f1+"$"+f2)
			}
		}
	case "quantity", "number", "date":
		for _, f1 := range first {
			key := p.Code + "$" + f1
			for _, v := range c.Components[1] {
				switch types[1] {
				case "quantity":
					b.quantity(key, v)
				case "number":
					if lo, hi, ok := numberOf(v); ok {
						b.rng(key, lo, hi)
					}
				case "date":
					for _, x := range b.dates(p, item{v: v}) {
						b.rng(key, x.Lo, x.Hi)
					}
				}
			}
		}
	}
}

// compositeForms gives the forms of one component's values: token forms
// (without "system|"), reference forms, normalised strings, uris.
func (b *indexer) compositeForms(typ string, vals []any) []string {
	var out []string
	for _, v := range vals {
		switch typ {
		case "token":
			for _, f := range tokenOf(item{v: v}).forms {
				if !strings.HasSuffix(f, "|") {
					out = append(out, f)
				}
			}
		case "reference":
			out = append(out, b.referenceOf(v).forms...)
		case "string":
			for _, s := range stringParts(item{v: v}) {
				if n := normalize(s); n != "" {
					out = append(out, n)
				}
			}
		case "uri":
			if s, ok := v.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ---- patient compartment ----

var (
	compartmentOnce sync.Once
	compartment     map[string][]string // type → params, owner priority order
)

func loadCompartment() {
	compartment = map[string][]string{}
	data, err := profiles.FS.ReadFile("CompartmentDefinition-patient.json")
	if err != nil {
		return
	}
	var def struct {
		Resource []struct {
			Code  string   `json:"code"`
			Param []string `json:"param"`
		} `json:"resource"`
	}
	if json.Unmarshal(data, &def) != nil {
		return
	}
	for _, res := range def.Resource {
		var ps []string
		for _, first := range []string{"patient", "subject"} {
			if slices.Contains(res.Param, first) {
				ps = append(ps, first)
			}
		}
		for _, p := range res.Param {
			if p != "patient" && p != "subject" {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			compartment[res.Code] = ps
		}
	}
}

// OwnerParam lists the parameters of resourceType that put it in a
// Patient compartment (the Patient CompartmentDefinition), in the order
// Index tries them to find the owning patient: "patient" first, then
// "subject", then the others in the definition's order. Only parameters
// the registry has for the type are listed; nil for a type outside the
// compartment. For Patient it is the definition's "link", but the owner of
// a Patient is always itself.
func (r *Registry) OwnerParam(resourceType string) []string {
	compartmentOnce.Do(loadCompartment)
	var out []string
	for _, code := range compartment[resourceType] {
		if _, ok := r.Lookup(resourceType, code); ok {
			out = append(out, code)
		}
	}
	return out
}

// multiOwner are the types whose first owner parameter may reference
// several patients (Appointment.participant.actor, Group.member, ...):
// the resource is kept with the first one only, so a search on another
// one must not be restricted to that patient's records.
var multiOwner = map[string]bool{
	"Account": true, "Appointment": true, "AuditEvent": true, "Group": true,
	"Person": true, "Provenance": true, "Schedule": true, "Patient": true,
}

// PatientHint reports whether a search of resourceType on reference
// parameter code for Patient/<id> values may be restricted to those
// patients' compartments (store.OpPatient): true when code is the first
// owner parameter of the type (see OwnerParam), or the same element
// narrowed to Patients (Observation's "patient" is its "subject" that is a
// Patient) or the reverse, and the type's first owner element holds one
// patient at most. A resource found this way has Index.Patient equal to the
// patient searched.
func (r *Registry) PatientHint(resourceType, code string) bool {
	owners := r.OwnerParam(resourceType)
	if len(owners) == 0 || multiOwner[resourceType] {
		return false
	}
	if code == owners[0] {
		return true
	}
	p0, ok0 := r.Lookup(resourceType, owners[0])
	p, ok := r.Lookup(resourceType, code)
	if !ok0 || !ok || p.Type != "reference" || p0.Expression == "" || p.Expression == "" {
		return false
	}
	const narrowed = ".where(resolve() is Patient)"
	return p.Expression == p0.Expression+narrowed || p0.Expression == p.Expression+narrowed
}
