package mongo

import (
	"strings"

	"github.com/dossier-fhir/dossier/store"
)

// sqlDoc is the column of a stored document in the embedded engine's
// tables (FerretDB's SQLite handler keeps each document as JSON text).
const sqlDoc = "_ferretdb_sjson"

// sqlWhere translates a filter into an SQLite boolean expression over the
// stored JSON document, for the embedded engine's direct reads. The
// translation is conservative: it selects a superset of the matching
// documents (a node it cannot express exactly becomes TRUE, and NOT is
// only translated on exact children), and Find evaluates the filter
// exactly in memory on what it returns. What it buys is that SQLite, in
// C, discards most rows before any Go decoding, and that an equality on
// the owning patient uses the index on it.
func sqlWhere(f store.Filter) (string, []any) {
	w, args, _ := sqlWhereExact(f)
	return w, args
}

// sqlWhereExact is sqlWhere that also tells whether the expression
// selects exactly the matching documents (then SQLite may count them).
func sqlWhereExact(f store.Filter) (string, []any, bool) {
	var args []any
	expr, exact := sqlNode(f, &args)
	if expr == "1" {
		expr = ""
	}
	return sqlDoc + "->>'$.del' = 0" + and(expr), args, exact
}

func and(expr string) string {
	if expr == "" || expr == "1" {
		return ""
	}
	return " AND (" + expr + ")"
}

// jsonPath is the SQLite JSON path of the stored member k of field m
// ("k" or "r"), passed as a bound parameter; ok is false for a name a
// path cannot quote.
func jsonPath(m, k string) (string, bool) {
	k = fieldEsc.Replace(k)
	if strings.ContainsAny(k, `"\`) {
		return "", false
	}
	return "$." + m + `."` + k + `"`, true
}

func placeholders(n int) string {
	return "?" + strings.Repeat(",?", n-1)
}

// sqlNode returns the expression of f and whether it is exact (selects
// exactly the matching documents, so that it may be negated).
func sqlNode(f store.Filter, args *[]any) (string, bool) {
	switch f.Op {
	case store.OpAll:
		return "1", true
	case store.OpAnd:
		var parts []string
		exact := true
		for _, c := range f.Children {
			e, x := sqlNode(c, args)
			exact = exact && x
			if e != "1" {
				parts = append(parts, "("+e+")")
			}
		}
		if len(parts) == 0 {
			return "1", exact
		}
		return strings.Join(parts, " AND "), exact
	case store.OpOr:
		if len(f.Children) == 0 {
			return "0", true
		}
		var parts []string
		exact := true
		for _, c := range f.Children {
			e, x := sqlNode(c, args)
			if e == "1" {
				return "1", false
			}
			exact = exact && x
			parts = append(parts, "("+e+")")
		}
		return strings.Join(parts, " OR "), exact
	case store.OpNot:
		mark := len(*args)
		e, exact := sqlNode(f.Children[0], args)
		if !exact {
			*args = (*args)[:mark]
			return "1", false
		}
		// coalesce: a NULL (absent member) child must not hide the row.
		return "NOT coalesce((" + e + "), 0)", true
	case store.OpEq:
		if len(f.Values) == 0 {
			return "0", true
		}
		if f.Key == "_id" {
			for _, v := range f.Values {
				*args = append(*args, v)
			}
			return sqlDoc + "->>'$._id' IN (" + placeholders(len(f.Values)) + ")", true
		}
		path, ok := jsonPath("k", f.Key)
		if !ok {
			return "1", false
		}
		if plainStrings(f.Values) {
			// The array's JSON text holds "value" exactly when an element
			// equals value (no character of value is escaped). ->> reuses
			// SQLite's parse of the document within the row, where every
			// json_each parses it again: several conditions on one row
			// cost about one parse.
			var conds []string
			for _, v := range f.Values {
				conds = append(conds, "instr("+sqlDoc+" ->> ?, ?) > 0")
				*args = append(*args, path, `"`+v+`"`)
			}
			return strings.Join(conds, " OR "), true
		}
		*args = append(*args, path)
		for _, v := range f.Values {
			*args = append(*args, v)
		}
		return "EXISTS (SELECT 1 FROM json_each(" + sqlDoc + ", ?) WHERE value IN (" +
			placeholders(len(f.Values)) + "))", true
	case store.OpPrefix, store.OpContains:
		if len(f.Values) == 0 || f.Key == "_id" {
			return "1", false
		}
		path, ok := jsonPath("k", f.Key)
		if !ok {
			return "1", false
		}
		*args = append(*args, path)
		var conds []string
		for _, v := range f.Values {
			if f.Op == store.OpPrefix {
				conds = append(conds, "substr(value, 1, ?) = ?")
				*args = append(*args, len([]rune(v)), v)
			} else {
				conds = append(conds, "instr(value, ?) > 0")
				*args = append(*args, v)
			}
		}
		return "EXISTS (SELECT 1 FROM json_each(" + sqlDoc + ", ?) WHERE " + strings.Join(conds, " OR ") + ")", true
	case store.OpRange:
		path, ok := jsonPath("r", f.Key)
		if !ok {
			return "1", false
		}
		*args = append(*args, path)
		var conds []string
		for _, b := range f.Bounds {
			op := map[string]string{"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[b.Cmp]
			field := "lo"
			if b.Field == "hi" {
				field = "hi"
			}
			if op == "" {
				op, b.V = ">=", -1e300 // unknown comparison: no constraint
			}
			conds = append(conds, "value->>'$."+field+"' "+op+" ?")
			*args = append(*args, b.V)
		}
		where := "1"
		if len(conds) > 0 {
			where = strings.Join(conds, " AND ")
		}
		return "EXISTS (SELECT 1 FROM json_each(" + sqlDoc + ", ?) WHERE " + where + ")", true
	case store.OpExists:
		pk, ok1 := jsonPath("k", f.Key)
		pr, ok2 := jsonPath("r", f.Key)
		if !ok1 || !ok2 {
			return "1", false
		}
		*args = append(*args, pk, pr)
		return "(coalesce(json_array_length(" + sqlDoc + ", ?), 0) > 0 OR coalesce(json_array_length(" + sqlDoc + ", ?), 0) > 0)", true
	case store.OpPatient:
		if len(f.Values) == 0 {
			return "0", true
		}
		for _, v := range f.Values {
			*args = append(*args, v)
		}
		// A document without owner gives NULL: false here, and NOT
		// handles NULL with coalesce. The expression is the indexed one.
		return sqlDoc + "->>'$.p' IN (" + placeholders(len(f.Values)) + ")", true
	}
	return "1", false
}

// plainStrings reports whether no value holds a character that JSON
// text may escape (quotes, backslash, controls, the HTML characters Go's
// encoder escapes, U+2028/2029), so a value's JSON form is "value".
func plainStrings(vs []string) bool {
	for _, v := range vs {
		for _, r := range v {
			switch {
			case r < 0x20, r == '"', r == '\\', r == '<', r == '>', r == '&', r == 0x2028, r == 0x2029, r == 0x7f, r == 0xfffd:
				return false
			}
		}
	}
	return true
}
