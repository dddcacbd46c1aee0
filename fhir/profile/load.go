package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Canonical URLs this package knows by name.
const (
	// Base is the canonical base of our conformance resources.
	Base = "https://dossier-fhir.github.io/fhir"
	// FollowsURL is the extension of a StructureDefinition naming the
	// official profile it follows (valueCanonical).
	FollowsURL = Base + "/StructureDefinition/follows"
	// RegexURL is the core extension on ElementDefinition.type holding a
	// regular expression the value must match.
	RegexURL = "http://hl7.org/fhir/StructureDefinition/regex"
)

// Set is a loaded collection of profiles and terminologies. It is
// read-only after Load and safe for concurrent use.
type Set struct {
	profiles    map[string]*profileDef // by our URL and by every followed URL
	list        []*profileDef          // in file order
	codeSystems map[string]*codeSystem
	valueSets   map[string]*valueSet
}

type profileDef struct {
	url     string
	name    string
	typ     string
	follows []string
	root    *elem
}

// elem is one node of a profile's differential, as a tree: children by
// element name, slices of the element by slice name.
type elem struct {
	name      string // last path segment: "identifier", "scheduled[x]"
	id        string
	sliceName string

	min        int
	hasMin     bool
	max        string // "" when not constrained, "*", or a number
	maxN       int    // -1 for "*"
	fixed      any
	fixedKey   string // e.g. "fixedUri", for messages
	pattern    any
	patternKey string
	binding    *binding
	types      []typeRef
	regex      *regexp.Regexp
	regexSrc   string
	invariants []*invariant

	slicing  *slicing
	slices   []*elem
	children []*elem
}

type typeRef struct {
	code     string
	profiles []string
}

type binding struct {
	strength string
	valueSet string
	vs       *valueSet
}

type slicing struct {
	discriminators []discriminator
	rules          string // open | closed | openAtEnd
}

type discriminator struct {
	typ  string // value | pattern | type
	path string
}

type invariant struct {
	key, severity, human, expression string
	expr                             *fpExpr
}

type codeSystem struct {
	url   string
	codes map[string]bool
}

type valueSet struct {
	url      string
	bySystem map[string]map[string]bool
	byCode   map[string]bool // any system, for bindings on code
}

func (vs *valueSet) contains(system, code string) bool {
	return vs.bySystem[system][code]
}

// Profiles lists the canonical URLs of the loaded StructureDefinitions.
func (s *Set) Profiles() []string {
	out := make([]string, 0, len(s.list))
	for _, p := range s.list {
		out = append(out, p.url)
	}
	return out
}

// Has reports whether url (with or without |version) names a loaded
// profile, ours or one that one of ours follows.
func (s *Set) Has(url string) bool {
	_, ok := s.profiles[stripVersion(url)]
	return ok
}

// ValueSetContains reports whether the ValueSet at url contains
// system|code; false when the ValueSet is unknown.
func (s *Set) ValueSetContains(url, system, code string) bool {
	vs := s.valueSets[stripVersion(url)]
	return vs != nil && vs.contains(system, code)
}

// Load reads every StructureDefinition-*.json, CodeSystem-*.json and
// ValueSet-*.json at the top of fsys (other files are ignored). It fails
// on anything it cannot interpret faithfully (an unsupported
// discriminator, ValueSet filter or invariant expression, an unknown
// ValueSet in a binding), so a profile is never half-applied.
func Load(fsys fs.FS) (*Set, error) {
	s := &Set{
		profiles:    map[string]*profileDef{},
		codeSystems: map[string]*codeSystem{},
		valueSets:   map[string]*valueSet{},
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var sds, vss []map[string]any
	var sdFiles, vsFiles []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".json" {
			continue
		}
		kind, _, ok := strings.Cut(name, "-")
		if !ok || (kind != "StructureDefinition" && kind != "CodeSystem" && kind != "ValueSet") {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		m, err := decode(data)
		if err != nil {
			return nil, fmt.Errorf("profile: %s: %w", name, err)
		}
		if rt, _ := m["resourceType"].(string); rt != kind {
			return nil, fmt.Errorf("profile: %s: resourceType %q, want %s", name, rt, kind)
		}
		switch kind {
		case "CodeSystem":
			cs := loadCodeSystem(m)
			if cs.url == "" {
				return nil, fmt.Errorf("profile: %s: no url", name)
			}
			s.codeSystems[cs.url] = cs
		case "ValueSet":
			vss = append(vss, m)
			vsFiles = append(vsFiles, name)
		default:
			sds = append(sds, m)
			sdFiles = append(sdFiles, name)
		}
	}
	// ValueSets may include other ValueSets: resolve on demand.
	raw := map[string]map[string]any{}
	for i, m := range vss {
		u, _ := m["url"].(string)
		if u == "" {
			return nil, fmt.Errorf("profile: %s: no url", vsFiles[i])
		}
		raw[u] = m
	}
	for u := range raw {
		if _, err := s.expand(u, raw, map[string]bool{}); err != nil {
			return nil, err
		}
	}
	for i, m := range sds {
		p, err := s.loadProfile(m)
		if err != nil {
			return nil, fmt.Errorf("profile: %s: %w", sdFiles[i], err)
		}
		s.list = append(s.list, p)
		for _, u := range append([]string{p.url}, p.follows...) {
			if q, dup := s.profiles[u]; dup {
				return nil, fmt.Errorf("profile: %s: %s already claimed by %s", sdFiles[i], u, q.url)
			}
			s.profiles[u] = p
		}
	}
	return s, nil
}

func decode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func stripVersion(u string) string {
	if i := strings.IndexByte(u, '|'); i >= 0 {
		return u[:i]
	}
	return u
}

func loadCodeSystem(m map[string]any) *codeSystem {
	cs := &codeSystem{codes: map[string]bool{}}
	cs.url, _ = m["url"].(string)
	var walk func(v any)
	walk = func(v any) {
		for _, c := range asList(v) {
			cm, _ := c.(map[string]any)
			if code, ok := cm["code"].(string); ok {
				cs.codes[code] = true
			}
			walk(cm["concept"])
		}
	}
	walk(m["concept"])
	return cs
}

func (s *Set) expand(url string, raw map[string]map[string]any, busy map[string]bool) (*valueSet, error) {
	if vs := s.valueSets[url]; vs != nil {
		return vs, nil
	}
	m := raw[url]
	if m == nil {
		return nil, fmt.Errorf("profile: unknown ValueSet %s", url)
	}
	if busy[url] {
		return nil, fmt.Errorf("profile: ValueSet %s includes itself", url)
	}
	busy[url] = true
	vs := &valueSet{url: url, bySystem: map[string]map[string]bool{}, byCode: map[string]bool{}}
	add := func(system, code string) {
		if vs.bySystem[system] == nil {
			vs.bySystem[system] = map[string]bool{}
		}
		vs.bySystem[system][code] = true
	}
	compose, _ := m["compose"].(map[string]any)
	for _, inc := range asList(compose["include"]) {
		im, _ := inc.(map[string]any)
		if im["filter"] != nil {
			return nil, fmt.Errorf("profile: ValueSet %s: include.filter is not supported", url)
		}
		system, _ := im["system"].(string)
		var codes map[string]bool
		if system != "" {
			codes = map[string]bool{}
			if concepts := asList(im["concept"]); len(concepts) > 0 {
				for _, c := range concepts {
					cm, _ := c.(map[string]any)
					if code, ok := cm["code"].(string); ok {
						codes[code] = true
					}
				}
			} else if cs := s.codeSystems[system]; cs != nil {
				for code := range cs.codes {
					codes[code] = true
				}
			} // a whole unknown code system contributes nothing
		}
		// include.valueSet: intersect with the listed value sets.
		for _, ref := range asList(im["valueSet"]) {
			r, _ := ref.(string)
			sub, err := s.expand(stripVersion(r), raw, busy)
			if err != nil {
				return nil, err
			}
			if system == "" {
				for sys, cc := range sub.bySystem {
					for code := range cc {
						add(sys, code)
					}
				}
				continue
			}
			for code := range codes {
				if !sub.contains(system, code) {
					delete(codes, code)
				}
			}
		}
		for code := range codes {
			add(system, code)
		}
	}
	for _, exc := range asList(compose["exclude"]) {
		em, _ := exc.(map[string]any)
		system, _ := em["system"].(string)
		concepts := asList(em["concept"])
		if em["filter"] != nil || em["valueSet"] != nil || len(concepts) == 0 {
			return nil, fmt.Errorf("profile: ValueSet %s: only exclude of listed concepts is supported", url)
		}
		for _, c := range concepts {
			cm, _ := c.(map[string]any)
			code, _ := cm["code"].(string)
			delete(vs.bySystem[system], code)
		}
	}
	for _, cc := range vs.bySystem {
		for code := range cc {
			vs.byCode[code] = true
		}
	}
	s.valueSets[url] = vs
	return vs, nil
}

func (s *Set) loadProfile(m map[string]any) (*profileDef, error) {
	p := &profileDef{}
	p.url, _ = m["url"].(string)
	p.name, _ = m["name"].(string)
	p.typ, _ = m["type"].(string)
	if p.url == "" || p.typ == "" {
		return nil, fmt.Errorf("url and type are required")
	}
	for _, x := range asList(m["extension"]) {
		xm, _ := x.(map[string]any)
		if xm["url"] == FollowsURL {
			if v, ok := xm["valueCanonical"].(string); ok {
				p.follows = append(p.follows, stripVersion(v))
			}
		}
	}
	p.root = &elem{name: p.typ, id: p.typ, maxN: -1}
	diff, _ := m["differential"].(map[string]any)
	for _, e := range asList(diff["element"]) {
		em, _ := e.(map[string]any)
		if err := s.addElement(p, em); err != nil {
			return nil, err
		}
	}
	if err := checkSlices(p.root); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Set) addElement(p *profileDef, em map[string]any) error {
	id, _ := em["id"].(string)
	if id == "" {
		id, _ = em["path"].(string)
	}
	segs := strings.Split(id, ".")
	if segs[0] != p.typ {
		return fmt.Errorf("element %q is not in %s", id, p.typ)
	}
	n := p.root
	for _, seg := range segs[1:] {
		name, slice, _ := strings.Cut(seg, ":")
		if strings.Contains(slice, "/") {
			return fmt.Errorf("element %q: re-slicing is not supported", id)
		}
		c := n.child(name)
		if c == nil {
			c = &elem{name: name, id: n.id + "." + name, maxN: -1}
			n.children = append(n.children, c)
		}
		n = c
		if slice != "" {
			sl := n.slice(slice)
			if sl == nil {
				sl = &elem{name: name, id: n.id + ":" + slice, sliceName: slice, maxN: -1}
				n.slices = append(n.slices, sl)
			}
			n = sl
		}
	}
	n.id = id
	if v, ok := em["min"].(json.Number); ok {
		i, err := v.Int64()
		if err != nil {
			return fmt.Errorf("%s: min: %w", id, err)
		}
		n.min, n.hasMin = int(i), true
	}
	if v, ok := em["max"].(string); ok {
		n.max = v
		if v != "*" {
			if _, err := fmt.Sscanf(v, "%d", &n.maxN); err != nil {
				return fmt.Errorf("%s: max %q", id, v)
			}
		}
	}
	keys := make([]string, 0, len(em))
	for k := range em {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "fixed"):
			n.fixed, n.fixedKey = em[k], k
		case strings.HasPrefix(k, "pattern"):
			n.pattern, n.patternKey = em[k], k
		}
	}
	for _, t := range asList(em["type"]) {
		tm, _ := t.(map[string]any)
		tr := typeRef{}
		tr.code, _ = tm["code"].(string)
		for _, pr := range asList(tm["profile"]) {
			if u, ok := pr.(string); ok {
				tr.profiles = append(tr.profiles, stripVersion(u))
			}
		}
		for _, x := range asList(tm["extension"]) {
			xm, _ := x.(map[string]any)
			if xm["url"] == RegexURL {
				src, _ := xm["valueString"].(string)
				re, err := regexp.Compile(`^(?:` + src + `)$`)
				if err != nil {
					return fmt.Errorf("%s: regex: %w", id, err)
				}
				n.regex, n.regexSrc = re, src
			}
		}
		n.types = append(n.types, tr)
	}
	if b, ok := em["binding"].(map[string]any); ok {
		bd := &binding{}
		bd.strength, _ = b["strength"].(string)
		bd.valueSet, _ = b["valueSet"].(string)
		bd.valueSet = stripVersion(bd.valueSet)
		if bd.strength == "required" {
			bd.vs = s.valueSets[bd.valueSet]
			if bd.vs == nil {
				return fmt.Errorf("%s: required binding to unknown ValueSet %s", id, bd.valueSet)
			}
		}
		n.binding = bd
	}
	for _, c := range asList(em["constraint"]) {
		cm, _ := c.(map[string]any)
		inv := &invariant{}
		inv.key, _ = cm["key"].(string)
		inv.severity, _ = cm["severity"].(string)
		inv.human, _ = cm["human"].(string)
		inv.expression, _ = cm["expression"].(string)
		x, err := compileFHIRPath(inv.expression)
		if err != nil {
			return fmt.Errorf("%s: constraint %s: %w", id, inv.key, err)
		}
		inv.expr = x
		n.invariants = append(n.invariants, inv)
	}
	if sl, ok := em["slicing"].(map[string]any); ok {
		sc := &slicing{}
		sc.rules, _ = sl["rules"].(string)
		for _, d := range asList(sl["discriminator"]) {
			dm, _ := d.(map[string]any)
			t, _ := dm["type"].(string)
			pth, _ := dm["path"].(string)
			switch t {
			case "value", "pattern":
			case "type":
				if pth != "$this" {
					return fmt.Errorf("%s: type discriminator on %q is not supported", id, pth)
				}
			default:
				return fmt.Errorf("%s: %s discriminator is not supported", id, t)
			}
			sc.discriminators = append(sc.discriminators, discriminator{typ: t, path: pth})
		}
		n.slicing = sc
	}
	return nil
}

func (n *elem) child(name string) *elem {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *elem) slice(name string) *elem {
	for _, c := range n.slices {
		if c.sliceName == name {
			return c
		}
	}
	return nil
}

func (n *elem) isChoice() bool { return strings.HasSuffix(n.name, "[x]") }

// checkSlices verifies every sliced element can tell its slices apart.
func checkSlices(n *elem) error {
	if len(n.slices) > 0 {
		if n.slicing == nil && !n.isChoice() {
			return fmt.Errorf("%s has slices but no slicing", n.id)
		}
		if n.slicing != nil {
			for _, sl := range n.slices {
				for _, d := range n.slicing.discriminators {
					if d.typ == "type" {
						if len(sl.types) != 1 {
							return fmt.Errorf("%s: a type slice needs exactly one type", sl.id)
						}
						continue
					}
					if _, _, ok := sliceValue(sl, d.path); !ok {
						return fmt.Errorf("%s: no fixed or pattern value at discriminator path %q", sl.id, d.path)
					}
				}
			}
		}
	}
	for _, c := range n.children {
		if err := checkSlices(c); err != nil {
			return err
		}
	}
	for _, c := range n.slices {
		if err := checkSlices(c); err != nil {
			return err
		}
	}
	return nil
}

// sliceValue is what a slice fixes at a discriminator path: the fixed or
// pattern value of the element there, or for the url of an extension
// slice with no fixed url, the extension's profile.
func sliceValue(sl *elem, p string) (v any, isPattern, ok bool) {
	n := sl
	if p != "$this" {
		for _, seg := range strings.Split(p, ".") {
			c := n.child(seg)
			if c == nil {
				if p == "url" && len(sl.types) == 1 && len(sl.types[0].profiles) == 1 {
					return sl.types[0].profiles[0], false, true
				}
				return nil, false, false
			}
			n = c
		}
	}
	switch {
	case n.fixed != nil:
		return n.fixed, false, true
	case n.pattern != nil:
		return n.pattern, true, true
	}
	return nil, false, false
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}
