package search

import (
	"context"
	"errors"
	"math"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/store"
)

// Finder runs a sub-query (chains, _has, includes) for the compiler; the
// caller applies access rules in it, and may bound how many results it
// returns (an error it returns is passed on as is).
type Finder func(ctx context.Context, q store.Query) ([]*store.Version, error)

// Include is one _include or _revinclude: resources of SourceType whose
// reference parameter Param points (to a TargetType, when set).
type Include struct {
	SourceType, Param, TargetType string
	Iterate                       bool
}

// Plan is a compiled search.
type Plan struct {
	Type     string
	Filter   store.Filter
	Sort     []store.SortKey
	Count    int    // -1 when absent
	Total    string // "", "none", "estimate", "accurate"
	Summary  string // "", "true", "count", "data", "text", "false"
	Elements []string
	Include  []Include
	// RevInclude lists the _revinclude parameters.
	RevInclude []Include
	Ignored    []string // unknown/unsupported parameter names (lenient handling)
	Page       string   // value of the paging parameter _page (opaque; passed through)
}

// Limits on nesting.
const (
	maxChain        = 4   // reference levels of a chain, and nested _has
	maxIncludeRound = 8   // rounds of _include:iterate
	idBatch         = 200 // ids per sub-query of Includes
)

// unsupportedParams are the parameters of the search page this package
// does not implement: ignored (and reported) when lenient, 400 when strict.
var unsupportedParams = map[string]bool{
	"_type": true, "_content": true, "_text": true, "_query": true, "_list": true,
	"_filter": true, "_contained": true, "_containedType": true,
}

// now is the clock of the "ap" date prefix.
var now = time.Now

func invalid(param, format string, args ...any) *outcome.Error {
	return outcome.New(outcome.Invalid, "invalid", "parameter "+param+": "+format, args...).WithExpression(param)
}

func notSupported(param, format string, args ...any) *outcome.Error {
	return outcome.New(outcome.Invalid, "not-supported", "parameter "+param+": "+format, args...).WithExpression(param)
}

// nothing is a filter no resource matches.
func nothing() store.Filter { return store.Or() }

// Compile parses params (a query string's values) for resourceType into a
// plan, running chained and _has sub-queries through find. strict makes
// unknown (and unsupported) parameters an error; otherwise they are
// listed in Plan.Ignored. Malformed values and unsupported modifiers are
// always an error. Errors are *outcome.Error (Invalid) naming the
// parameter, or what find returned.
func (r *Registry) Compile(ctx context.Context, resourceType string, params url.Values, base string, strict bool, find Finder) (*Plan, error) {
	if !r.types[resourceType] {
		return nil, outcome.New(outcome.NotFound, "not-supported", "unknown resource type %s", resourceType)
	}
	plan := &Plan{Type: resourceType, Count: -1, Filter: store.All()}
	c := &compiler{r: r, ctx: ctx, base: strings.TrimRight(base, "/"), find: find}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	slices.Sort(names)
	var fs []store.Filter
	ignore := func(name string, unsupported bool) error {
		if strict {
			if unsupported {
				return notSupported(name, "not supported")
			}
			return outcome.New(outcome.Invalid, "not-supported", "unknown search parameter %s", name).WithExpression(name)
		}
		if !slices.Contains(plan.Ignored, name) {
			plan.Ignored = append(plan.Ignored, name)
		}
		return nil
	}
	for _, name := range names {
		vals := params[name]
		handled, err := c.result(plan, name, vals)
		if err != nil {
			return nil, err
		}
		if handled {
			continue
		}
		for _, raw := range vals {
			f, st, err := c.param(resourceType, name, raw, 0)
			if err != nil {
				return nil, err
			}
			if st != known {
				if err := ignore(name, st == unsupported); err != nil {
					return nil, err
				}
				break
			}
			fs = append(fs, f)
		}
	}
	plan.Filter = and(fs)
	return plan, nil
}

type compiler struct {
	r    *Registry
	ctx  context.Context
	base string
	find Finder
}

// status of a parameter name.
type status int

const (
	known status = iota
	unknown
	unsupported
)

// result handles the result parameters (and those ignored silently).
func (c *compiler) result(plan *Plan, name string, vals []string) (bool, error) {
	single := func() (string, error) {
		if len(vals) > 1 && slices.ContainsFunc(vals[1:], func(v string) bool { return v != vals[0] }) {
			return "", invalid(name, "given more than once")
		}
		return strings.TrimSpace(vals[0]), nil
	}
	switch name {
	case "_format", "_pretty":
		return true, nil
	case "_page":
		v, err := single()
		plan.Page = v
		return true, err
	case "_count":
		v, err := single()
		if err != nil {
			return true, err
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			return true, invalid(name, "not a non-negative integer")
		}
		plan.Count = n
		return true, nil
	case "_total":
		v, err := single()
		if err != nil {
			return true, err
		}
		if v != "none" && v != "estimate" && v != "accurate" {
			return true, invalid(name, "must be none, estimate or accurate")
		}
		plan.Total = v
		return true, nil
	case "_summary":
		v, err := single()
		if err != nil {
			return true, err
		}
		switch v {
		case "true", "false", "text", "data", "count":
		default:
			return true, invalid(name, "must be true, false, text, data or count")
		}
		plan.Summary = v
		return true, nil
	case "_elements":
		for _, v := range vals {
			for _, e := range strings.Split(v, ",") {
				e = strings.TrimSpace(e)
				if e == "" {
					continue
				}
				if !elementRE.MatchString(e) {
					return true, invalid(name, "not a list of element names")
				}
				if !slices.Contains(plan.Elements, e) {
					plan.Elements = append(plan.Elements, e)
				}
			}
		}
		if len(plan.Elements) == 0 {
			return true, invalid(name, "empty")
		}
		return true, nil
	case "_sort":
		for _, v := range vals {
			for _, s := range strings.Split(v, ",") {
				s = strings.TrimSpace(s)
				if s == "" {
					continue
				}
				k := store.SortKey{Param: s}
				if rest, ok := strings.CutPrefix(s, "-"); ok {
					k = store.SortKey{Param: rest, Desc: true}
				}
				if !c.sortable(plan.Type, k.Param) {
					return true, invalid(name, "cannot sort by %s", truncate(k.Param))
				}
				plan.Sort = append(plan.Sort, k)
			}
		}
		if len(plan.Sort) == 0 {
			return true, invalid(name, "empty")
		}
		return true, nil
	}
	base, mod, _ := strings.Cut(name, ":")
	if base != "_include" && base != "_revinclude" {
		return false, nil
	}
	iterate := false
	switch mod {
	case "":
	case "iterate", "recurse":
		iterate = true
	default:
		return true, invalid(name, "unknown modifier")
	}
	for _, v := range vals {
		inc, err := c.include(name, v)
		if err != nil {
			return true, err
		}
		inc.Iterate = iterate
		if base == "_include" {
			plan.Include = append(plan.Include, inc)
		} else {
			plan.RevInclude = append(plan.RevInclude, inc)
		}
	}
	return true, nil
}

var elementRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\[\]]*$`)

// truncate shortens what a client sent before it goes into a message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (c *compiler) sortable(typ, code string) bool {
	if code == "_id" || code == "_lastUpdated" {
		return true
	}
	p, ok := c.r.Lookup(typ, code)
	if !ok || p.expr == nil {
		return false
	}
	switch p.Type {
	case "string", "token", "reference", "uri", "date", "number", "quantity":
		return true
	}
	return false
}

func (c *compiler) include(name, v string) (Include, error) {
	v = strings.TrimSpace(v)
	if v == "*" || strings.HasSuffix(v, ":*") {
		return Include{}, notSupported(name, "wildcard includes are not supported")
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, invalid(name, "must be SourceType:parameter[:TargetType]")
	}
	inc := Include{SourceType: parts[0], Param: parts[1]}
	if !c.r.types[inc.SourceType] {
		return Include{}, invalid(name, "unknown resource type %s", truncate(inc.SourceType))
	}
	p, ok := c.r.Lookup(inc.SourceType, inc.Param)
	if !ok || p.Type != "reference" {
		return Include{}, invalid(name, "%s has no reference parameter %s", inc.SourceType, truncate(inc.Param))
	}
	if len(parts) == 3 {
		inc.TargetType = parts[2]
		if !c.r.types[inc.TargetType] || (len(p.Target) > 0 && !slices.Contains(p.Target, inc.TargetType)) {
			return Include{}, invalid(name, "%s:%s cannot refer to %s", inc.SourceType, inc.Param, truncate(inc.TargetType))
		}
	}
	return inc, nil
}

// ---- parameters ----

// param compiles one occurrence of a search parameter (one AND term).
func (c *compiler) param(typ, name, raw string, depth int) (store.Filter, status, error) {
	if depth > maxChain {
		return store.Filter{}, known, invalid(name, "chained or nested too deeply")
	}
	if rest, ok := strings.CutPrefix(name, "_has:"); ok {
		return c.has(typ, name, rest, raw, depth)
	}
	head, chain, chained := strings.Cut(name, ".")
	code, mod, _ := strings.Cut(head, ":")
	if unsupportedParams[code] {
		return store.Filter{}, unsupported, nil
	}
	p, ok := c.r.Lookup(typ, code)
	if !ok {
		return store.Filter{}, unknown, nil
	}
	if p.Type == "special" || (p.expr == nil && code != "_id") {
		return store.Filter{}, unsupported, nil
	}
	if chained {
		return c.chain(typ, p, name, mod, chain, raw, depth)
	}
	if raw == "" {
		return store.Filter{}, known, invalid(name, "empty value")
	}
	if mod == "missing" {
		f, err := c.missing(p, name, raw)
		return f, known, err
	}
	if code == "_id" {
		f, err := c.id(name, mod, raw)
		return f, known, err
	}
	var f store.Filter
	var err error
	switch p.Type {
	case "string":
		f, err = c.str(p, name, mod, raw)
	case "token":
		f, err = c.token(p, name, mod, raw)
	case "reference":
		f, err = c.reference(typ, p, name, mod, raw)
	case "uri":
		f, err = c.uri(p, name, mod, raw)
	case "date", "number", "quantity":
		if mod != "" {
			return store.Filter{}, known, badModifier(name, mod)
		}
		f, err = c.ordered(p, name, raw)
	case "composite":
		if mod != "" {
			return store.Filter{}, known, badModifier(name, mod)
		}
		f, err = c.composite(p, name, raw)
	default:
		return store.Filter{}, unsupported, nil
	}
	return f, known, err
}

func badModifier(name, mod string) *outcome.Error {
	switch mod {
	case "exact", "contains", "text", "not", "above", "below", "in", "not-in", "of-type", "identifier", "missing", "type", "iterate":
		return notSupported(name, "modifier :%s is not supported for this parameter", mod)
	}
	return invalid(name, "unknown modifier")
}

// missing compiles :missing=true|false.
func (c *compiler) missing(p *Param, name, raw string) (store.Filter, error) {
	var keys []string
	switch p.Type {
	case "token":
		keys = []string{p.Code, p.Code + ":text"}
	case "reference":
		keys = []string{p.Code, p.Code + ":identifier"}
	case "composite":
		types := c.r.componentTypes(p)
		if len(types) != 2 || !slices.Contains([]string{"token", "reference", "uri", "string"}, types[1]) {
			return store.Filter{}, notSupported(name, "modifier :missing is not supported for this parameter")
		}
		keys = []string{p.Code}
	case "string", "uri", "date", "number", "quantity":
		keys = []string{p.Code}
	default:
		return store.Filter{}, notSupported(name, "modifier :missing is not supported for this parameter")
	}
	if p.Code == "_id" {
		return store.Filter{}, notSupported(name, "modifier :missing is not supported for this parameter")
	}
	var ex []store.Filter
	for _, k := range keys {
		ex = append(ex, store.Exists(k))
	}
	switch raw {
	case "true":
		return store.Not(or(ex)), nil
	case "false":
		return or(ex), nil
	}
	return store.Filter{}, invalid(name, "must be true or false")
}

func (c *compiler) id(name, mod, raw string) (store.Filter, error) {
	var ids []string
	for _, part := range splitEsc(raw, ',') {
		v := unescape(part)
		if v == "" {
			return store.Filter{}, invalid(name, "empty value")
		}
		ids = append(ids, v)
	}
	switch mod {
	case "":
		return store.Eq("_id", ids...), nil
	case "not":
		return store.Not(store.Eq("_id", ids...)), nil
	}
	return store.Filter{}, badModifier(name, mod)
}

func (c *compiler) str(p *Param, name, mod, raw string) (store.Filter, error) {
	var fs []store.Filter
	for _, part := range splitEsc(raw, ',') {
		v := unescape(part)
		n := normalize(v)
		if n == "" {
			return store.Filter{}, invalid(name, "empty value")
		}
		switch mod {
		case "":
			fs = append(fs, store.Prefix(p.Code, n))
		case "contains":
			fs = append(fs, store.Contains(p.Code, n))
		case "exact":
			fs = append(fs, store.Eq(p.Code+":exact", v))
		default:
			return store.Filter{}, badModifier(name, mod)
		}
	}
	return or(fs), nil
}

// tokenForm turns a token search value ("system|code", "code", "|code",
// "system|") into the stored form it must equal.
func tokenForm(part string) (string, bool) {
	pieces := splitEsc(part, '|')
	if len(pieces) == 1 {
		v := unescape(pieces[0])
		return v, v != ""
	}
	system, code := unescape(pieces[0]), unescape(strings.Join(pieces[1:], "|"))
	if system == "" && code == "" {
		return "", false
	}
	return system + "|" + code, true
}

func (c *compiler) token(p *Param, name, mod, raw string) (store.Filter, error) {
	var fs []store.Filter
	for _, part := range splitEsc(raw, ',') {
		switch mod {
		case "", "not":
			f, ok := tokenForm(part)
			if !ok {
				return store.Filter{}, invalid(name, "empty value")
			}
			fs = append(fs, store.Eq(p.Code, f))
		case "text":
			n := normalize(unescape(part))
			if n == "" {
				return store.Filter{}, invalid(name, "empty value")
			}
			fs = append(fs, store.Contains(p.Code+":text", n))
		case "of-type":
			pieces := splitEsc(part, '|')
			if len(pieces) != 3 || pieces[1] == "" || pieces[2] == "" {
				return store.Filter{}, invalid(name, "must be system|code|value")
			}
			for i := range pieces {
				pieces[i] = unescape(pieces[i])
			}
			fs = append(fs, store.Eq(p.Code+":of-type", strings.Join(pieces, "|")))
		default:
			return store.Filter{}, badModifier(name, mod)
		}
	}
	if mod == "not" {
		return store.Not(or(fs)), nil
	}
	return or(fs), nil
}

func (c *compiler) uri(p *Param, name, mod, raw string) (store.Filter, error) {
	var fs []store.Filter
	for _, part := range splitEsc(raw, ',') {
		v := unescape(part)
		if v == "" {
			return store.Filter{}, invalid(name, "empty value")
		}
		switch mod {
		case "":
			fs = append(fs, store.Eq(p.Code, v))
		case "below":
			fs = append(fs, store.Prefix(p.Code, v))
		case "above":
			fs = append(fs, store.Eq(p.Code, uriAbove(v)...))
		default:
			return store.Filter{}, badModifier(name, mod)
		}
	}
	return or(fs), nil
}

// uriAbove lists v and every prefix of it cut at a '/' after the
// authority: http://a/b/c → http://a/b/c, http://a/b, http://a.
func uriAbove(v string) []string {
	out := []string{v}
	start := 0
	if i := strings.Index(v, "://"); i >= 0 {
		start = i + 3
		if j := strings.IndexByte(v[start:], '/'); j >= 0 {
			start += j
		} else {
			return out
		}
	}
	for s := strings.TrimRight(v, "/"); ; {
		i := strings.LastIndexByte(s, '/')
		if i < start || i <= 0 {
			break
		}
		s = s[:i]
		out = append(out, s)
	}
	return out
}

// refValue turns a reference search value into the stored form it must
// equal, with the type it names ("" for a bare id).
func (c *compiler) refValue(v, typeMod string) (string, string) {
	if c.base != "" && strings.HasPrefix(v, c.base+"/") {
		v = v[len(c.base)+1:]
	}
	if isAbsoluteURL(v) {
		return v, referenceType(strings.SplitN(v, "|", 2)[0])
	}
	segs := strings.Split(v, "/")
	if len(segs) == 4 && segs[2] == "_history" {
		segs = segs[:2]
		v = segs[0] + "/" + segs[1]
	}
	if len(segs) == 1 && typeMod != "" {
		return typeMod + "/" + v, typeMod
	}
	if len(segs) == 2 && isResourceType(segs[0]) {
		return v, segs[0]
	}
	return v, ""
}

func (c *compiler) reference(typ string, p *Param, name, mod, raw string) (store.Filter, error) {
	typeMod := ""
	switch {
	case mod == "" || mod == "identifier":
	case c.r.types[mod]:
		if len(p.Target) > 0 && !slices.Contains(p.Target, mod) {
			return store.Filter{}, invalid(name, "cannot refer to a %s", mod)
		}
		typeMod = mod
	default:
		return store.Filter{}, badModifier(name, mod)
	}
	var fs []store.Filter
	var patients []string
	allPatients := true
	for _, part := range splitEsc(raw, ',') {
		v := unescape(part)
		if v == "" {
			return store.Filter{}, invalid(name, "empty value")
		}
		if mod == "identifier" {
			f, ok := tokenForm(part)
			if !ok {
				return store.Filter{}, invalid(name, "empty value")
			}
			fs = append(fs, store.Eq(p.Code+":identifier", f))
			allPatients = false
			continue
		}
		form, t := c.refValue(v, typeMod)
		if typeMod != "" && t != "" && t != typeMod {
			fs = append(fs, nothing()) // subject:Group=Patient/1
			allPatients = false
			continue
		}
		if tt := targetsOf(p); t == "" && len(tt) == 1 && !strings.Contains(form, "/") && !isAbsoluteURL(form) {
			t = tt[0]
			form = t + "/" + form
		}
		if id, ok := strings.CutPrefix(form, "Patient/"); ok && t == "Patient" {
			patients = append(patients, id)
		} else {
			allPatients = false
		}
		fs = append(fs, store.Eq(p.Code, form))
	}
	f := or(fs)
	if allPatients && len(patients) > 0 && c.r.PatientHint(typ, p.Code) {
		f = store.And(f, store.InPatient(patients...))
	}
	return f, nil
}

var narrowedRE = regexp.MustCompile(`\.where\(resolve\(\) is ([A-Za-z]+)\)$`)

// targetsOf gives the types a reference parameter can point to for one
// resource type: the definition's targets, unless every branch of the
// type's expression ends in .where(resolve() is X) (the shared
// clinical-patient parameter targets Patient and Group, but is
// Observation.subject.where(resolve() is Patient) for an Observation).
func targetsOf(p *Param) []string {
	if p.Expression != "" {
		only := ""
		for _, branch := range strings.Split(p.Expression, " | ") {
			m := narrowedRE.FindStringSubmatch(strings.TrimSpace(branch))
			if m == nil || (only != "" && m[1] != only) {
				only = ""
				break
			}
			only = m[1]
		}
		if only != "" && (len(p.Target) == 0 || slices.Contains(p.Target, only)) {
			return []string{only}
		}
	}
	return p.Target
}

// chain compiles code[:Type].rest=value: the rest on each target type,
// run through find, gives the ids the reference must point to.
func (c *compiler) chain(typ string, p *Param, name, mod, rest, raw string, depth int) (store.Filter, status, error) {
	if p.Type != "reference" {
		return store.Filter{}, known, invalid(name, "only reference parameters can be chained")
	}
	var targets []string
	switch {
	case mod == "":
		for _, t := range targetsOf(p) {
			if c.r.types[t] {
				targets = append(targets, t)
			}
		}
	case c.r.types[mod]:
		if len(p.Target) > 0 && !slices.Contains(p.Target, mod) {
			return store.Filter{}, known, invalid(name, "cannot refer to a %s", mod)
		}
		targets = []string{mod}
	default:
		return store.Filter{}, known, badModifier(name, mod)
	}
	if len(targets) == 0 {
		return store.Filter{}, known, invalid(name, "give the target type (%s:Type.…)", p.Code)
	}
	if c.find == nil {
		return store.Filter{}, known, errors.New("search: chained parameter without a Finder")
	}
	var refs, patients []string
	anyKnown, allPatients := false, true
	for _, t := range targets {
		sub, st, err := c.param(t, rest, raw, depth+1)
		if err != nil {
			return store.Filter{}, known, err
		}
		if st == unsupported {
			return store.Filter{}, unsupported, nil
		}
		if st != known {
			continue
		}
		anyKnown = true
		found, err := c.find(c.ctx, store.Query{Type: t, Filter: sub})
		if err != nil {
			return store.Filter{}, known, err
		}
		for _, v := range found {
			refs = append(refs, t+"/"+v.ID)
			if t == "Patient" {
				patients = append(patients, v.ID)
			} else {
				allPatients = false
			}
		}
	}
	if !anyKnown {
		return store.Filter{}, unknown, nil
	}
	if len(refs) == 0 {
		return nothing(), known, nil
	}
	f := store.Eq(p.Code, refs...)
	if allPatients && c.r.PatientHint(typ, p.Code) {
		f = store.And(f, store.InPatient(patients...))
	}
	return f, known, nil
}

// has compiles _has:Type:refParam:rest=value: the resources of Type
// matching rest whose refParam points to a resource of typ.
func (c *compiler) has(typ, name, spec, raw string, depth int) (store.Filter, status, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return store.Filter{}, known, invalid(name, "must be _has:Type:reference:parameter")
	}
	src, refCode, rest := parts[0], parts[1], parts[2]
	if !c.r.types[src] {
		return store.Filter{}, known, invalid(name, "unknown resource type %s", truncate(src))
	}
	rp, ok := c.r.Lookup(src, refCode)
	if !ok || rp.Type != "reference" {
		return store.Filter{}, known, invalid(name, "%s has no reference parameter %s", src, truncate(refCode))
	}
	sub, st, err := c.param(src, rest, raw, depth+1)
	if err != nil || st != known {
		return store.Filter{}, st, err
	}
	if c.find == nil {
		return store.Filter{}, known, errors.New("search: _has without a Finder")
	}
	found, err := c.find(c.ctx, store.Query{Type: src, Filter: sub})
	if err != nil {
		return store.Filter{}, known, err
	}
	var ids []string
	for _, v := range found {
		for _, ref := range v.Keys[refCode] {
			if id, ok := strings.CutPrefix(ref, typ+"/"); ok && id != "" && !strings.Contains(id, "/") && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nothing(), known, nil
	}
	return store.Eq("_id", ids...), known, nil
}

// ---- dates, numbers, quantities ----

var prefixes = map[string]bool{
	"eq": true, "ne": true, "gt": true, "lt": true, "ge": true, "le": true, "sa": true, "eb": true, "ap": true,
}

// cutPrefix splits a comparison prefix off a date, number or quantity.
func cutPrefix(v string) (string, string) {
	if len(v) > 2 && prefixes[v[:2]] {
		return v[:2], v[2:]
	}
	return "eq", v
}

func (c *compiler) ordered(p *Param, name, raw string) (store.Filter, error) {
	var fs []store.Filter
	for _, part := range splitEsc(raw, ',') {
		f, err := c.orderedValue(p.Type, p.Code, name, part)
		if err != nil {
			return store.Filter{}, err
		}
		fs = append(fs, f)
	}
	return or(fs), nil
}

// orderedValue compiles one date, number or quantity value (still
// escaped) against the ranges under key.
func (c *compiler) orderedValue(typ, key, name, part string) (store.Filter, error) {
	if part == "" {
		return store.Filter{}, invalid(name, "empty value")
	}
	switch typ {
	case "date":
		v := unescape(part)
		if strings.Contains(v, " ") { // a '+' of a zone, decoded as a space
			v = strings.ReplaceAll(v, " ", "+")
		}
		prefix, v := cutPrefix(v)
		lo, hi, ok := parseDate(v)
		if !ok {
			return store.Filter{}, invalid(name, "not a valid date")
		}
		d := 0.1 * math.Abs(float64(now().UnixMicro())-lo)
		return rangeFilter(key, prefix, lo, hi, lo, hi, lo-d, hi+d), nil
	case "number":
		prefix, v := cutPrefix(unescape(part))
		return numberFilter(key, name, prefix, v)
	case "quantity":
		pieces := splitEsc(part, '|')
		prefix, v := cutPrefix(unescape(pieces[0]))
		switch len(pieces) {
		case 1:
		case 3:
			system, code := unescape(pieces[1]), unescape(pieces[2])
			switch {
			case code == "" && system == "":
			case code == "":
				return store.Filter{}, invalid(name, "a unit system needs a unit code")
			case system == "":
				key += "||" + code
			default:
				key += "|" + system + "|" + code
			}
		default:
			return store.Filter{}, invalid(name, "must be [prefix]number[|system|code]")
		}
		return numberFilter(key, name, prefix, v)
	}
	return store.Filter{}, invalid(name, "cannot compare this parameter")
}

var decimalRE = regexp.MustCompile(`^[+-]?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$`)

// numberFilter compiles a number search: eq/ne/ap use the range the value's
// precision implies (half a unit of its last significant digit: 100 →
// [99.5, 100.5), 100.00 → [99.995, 100.005), 1e2 → [50, 150)); the other
// prefixes compare with the exact value.
func numberFilter(key, name, prefix, v string) (store.Filter, error) {
	m := decimalRE.FindStringSubmatch(v)
	if m == nil {
		return store.Filter{}, invalid(name, "not a valid number")
	}
	exp := 0
	if m[3] != "" {
		e, err := strconv.Atoi(m[3])
		if err != nil || e > 300 || e < -300 {
			return store.Filter{}, invalid(name, "not a valid number")
		}
		exp = e
	}
	exact, ok := new(big.Rat).SetString(v)
	if !ok {
		return store.Filter{}, invalid(name, "not a valid number")
	}
	// half = 0.5 × 10^(exp − digits after the point)
	scale := exp - len(m[2])
	half := big.NewRat(1, 2)
	ten := new(big.Rat).SetInt64(10)
	for i := 0; i < scale; i++ {
		half.Mul(half, ten)
	}
	for i := 0; i > scale; i-- {
		half.Quo(half, ten)
	}
	val, _ := exact.Float64()
	lo, _ := new(big.Rat).Sub(exact, half).Float64()
	hi, _ := new(big.Rat).Add(exact, half).Float64()
	d := new(big.Rat).Abs(exact)
	d.Mul(d, big.NewRat(1, 10))
	if d.Cmp(half) < 0 {
		d = half
	}
	apLo, _ := new(big.Rat).Sub(exact, d).Float64()
	apHi, _ := new(big.Rat).Add(exact, d).Float64()
	switch prefix {
	case "eq":
		return store.InRange(key, bound("lo", "ge", lo), bound("hi", "lt", hi)), nil
	case "ne":
		return store.Or(store.InRange(key, bound("lo", "lt", lo)), store.InRange(key, bound("hi", "ge", hi))), nil
	}
	return rangeFilter(key, prefix, val, val, lo, hi, apLo, apHi), nil
}

func bound(field, cmp string, v float64) store.Bound {
	return store.Bound{Field: field, Cmp: cmp, V: v}
}

// rangeFilter compiles a comparison of the stored intervals [lo, hi] with
// a search value: [qlo, qhi] is the value (a date's period, or a number
// itself), [elo, ehi] what eq/ne accept, [alo, ahi] what ap accepts.
func rangeFilter(key, prefix string, qlo, qhi, elo, ehi, alo, ahi float64) store.Filter {
	in := func(bs ...store.Bound) store.Filter { return store.InRange(key, bs...) }
	switch prefix {
	case "ne":
		return store.Or(in(bound("lo", "lt", elo)), in(bound("hi", "gt", ehi)))
	case "gt":
		return in(bound("hi", "gt", qhi))
	case "lt":
		return in(bound("lo", "lt", qlo))
	case "ge":
		return in(bound("hi", "ge", qlo))
	case "le":
		return in(bound("lo", "le", qhi))
	case "sa":
		return in(bound("lo", "gt", qhi))
	case "eb":
		return in(bound("hi", "lt", qlo))
	case "ap":
		return in(bound("lo", "le", ahi), bound("hi", "ge", alo))
	}
	return in(bound("lo", "ge", elo), bound("hi", "le", ehi))
}

// ---- composites ----

func (c *compiler) composite(p *Param, name, raw string) (store.Filter, error) {
	types := c.r.componentTypes(p)
	if len(types) != 2 || (types[0] != "token" && types[0] != "reference") {
		return store.Filter{}, notSupported(name, "this composite parameter is not supported")
	}
	var fs []store.Filter
	for _, part := range splitEsc(raw, ',') {
		pieces := splitEsc(part, '$')
		if len(pieces) != 2 {
			return store.Filter{}, invalid(name, "must have %d parts separated by $", len(types))
		}
		first, ok := c.componentForm(types[0], pieces[0])
		if !ok {
			return store.Filter{}, invalid(name, "empty value")
		}
		switch types[1] {
		case "token", "reference", "uri":
			second, ok := c.componentForm(types[1], pieces[1])
			if !ok {
				return store.Filter{}, invalid(name, "empty value")
			}
			fs = append(fs, store.Eq(p.Code, first+"$"+second))
		case "string":
			n := normalize(unescape(pieces[1]))
			if n == "" {
				return store.Filter{}, invalid(name, "empty value")
			}
			fs = append(fs, store.Prefix(p.Code, first+"$"+n))
		case "date", "number", "quantity":
			f, err := c.orderedValue(types[1], p.Code+"$"+first, name, pieces[1])
			if err != nil {
				return store.Filter{}, err
			}
			fs = append(fs, f)
		default:
			return store.Filter{}, notSupported(name, "this composite parameter is not supported")
		}
	}
	return or(fs), nil
}

func (c *compiler) componentForm(typ, part string) (string, bool) {
	switch typ {
	case "token":
		return tokenForm(part)
	case "reference":
		v := unescape(part)
		f, _ := c.refValue(v, "")
		return f, v != ""
	}
	v := unescape(part)
	return v, v != ""
}

// ---- filters and escapes ----

// and combines AND terms.
func and(fs []store.Filter) store.Filter {
	switch len(fs) {
	case 0:
		return store.All()
	case 1:
		return fs[0]
	}
	return store.And(fs...)
}

// or combines OR terms, merging equalities (prefixes, contains) on the
// same key into one condition.
func or(fs []store.Filter) store.Filter {
	if len(fs) == 1 {
		return fs[0]
	}
	var out []store.Filter
next:
	for _, f := range fs {
		if f.Op == store.OpEq || f.Op == store.OpPrefix || f.Op == store.OpContains {
			for i := range out {
				if out[i].Op == f.Op && out[i].Key == f.Key {
					for _, v := range f.Values {
						if !slices.Contains(out[i].Values, v) {
							out[i].Values = append(out[i].Values, v)
						}
					}
					continue next
				}
			}
			f.Values = slices.Clone(f.Values)
		}
		out = append(out, f)
	}
	if len(out) == 1 {
		return out[0]
	}
	return store.Or(out...)
}

// splitEsc splits s at each sep not escaped by a backslash, leaving the
// escapes in the parts.
func splitEsc(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescape removes the backslash of \, \$ \| and \\.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`,$|\`, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ---- includes ----

// Includes returns the resources the plan's _include and _revinclude add
// to matches: the non-iterating ones are applied to matches, the
// iterating ones also to what they add, until nothing new comes (at most
// 8 rounds). Matches themselves are never returned again; the order is
// that of discovery.
func (r *Registry) Includes(ctx context.Context, plan *Plan, matches []*store.Version, find Finder) ([]*store.Version, error) {
	if len(plan.Include) == 0 && len(plan.RevInclude) == 0 || len(matches) == 0 {
		return nil, nil
	}
	if find == nil {
		return nil, errors.New("search: includes without a Finder")
	}
	seen := map[string]bool{}
	for _, m := range matches {
		seen[m.Type+"/"+m.ID] = true
	}
	var out []*store.Version
	frontier := matches
	for round := 0; round < maxIncludeRound && len(frontier) > 0; round++ {
		var added []*store.Version
		keep := func(vs []*store.Version) {
			for _, v := range vs {
				if k := v.Type + "/" + v.ID; !seen[k] {
					seen[k] = true
					added = append(added, v)
				}
			}
		}
		iterating := false
		for _, inc := range plan.Include {
			if round > 0 && !inc.Iterate {
				continue
			}
			iterating = iterating || inc.Iterate
			vs, err := includeOf(ctx, inc, frontier, find)
			if err != nil {
				return nil, err
			}
			keep(vs)
		}
		for _, inc := range plan.RevInclude {
			if round > 0 && !inc.Iterate {
				continue
			}
			iterating = iterating || inc.Iterate
			vs, err := revIncludeOf(ctx, inc, frontier, find)
			if err != nil {
				return nil, err
			}
			keep(vs)
		}
		out = append(out, added...)
		if !iterating {
			break
		}
		frontier = added
	}
	return out, nil
}

// includeOf finds what the inc parameter of vs points to.
func includeOf(ctx context.Context, inc Include, vs []*store.Version, find Finder) ([]*store.Version, error) {
	byType := map[string][]string{}
	var types []string
	for _, v := range vs {
		if v.Type != inc.SourceType {
			continue
		}
		for _, ref := range v.Keys[inc.Param] {
			t, id, ok := strings.Cut(ref, "/")
			if !ok || id == "" || strings.Contains(id, "/") || !isResourceType(t) || (inc.TargetType != "" && t != inc.TargetType) {
				continue
			}
			if !slices.Contains(byType[t], id) {
				if byType[t] == nil {
					types = append(types, t)
				}
				byType[t] = append(byType[t], id)
			}
		}
	}
	var out []*store.Version
	for _, t := range types {
		ids := byType[t]
		for len(ids) > 0 {
			n := min(len(ids), idBatch)
			found, err := find(ctx, store.Query{Type: t, Filter: store.Eq("_id", ids[:n]...)})
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
			ids = ids[n:]
		}
	}
	return out, nil
}

// revIncludeOf finds the resources of inc.SourceType whose inc.Param
// points to one of vs.
func revIncludeOf(ctx context.Context, inc Include, vs []*store.Version, find Finder) ([]*store.Version, error) {
	var refs []string
	for _, v := range vs {
		if inc.TargetType == "" || v.Type == inc.TargetType {
			refs = append(refs, v.Type+"/"+v.ID)
		}
	}
	var out []*store.Version
	for len(refs) > 0 {
		n := min(len(refs), idBatch)
		found, err := find(ctx, store.Query{Type: inc.SourceType, Filter: store.Eq(inc.Param, refs[:n]...)})
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
		refs = refs[n:]
	}
	return out, nil
}
