package jsonpatch

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

type applyCase struct {
	name  string
	doc   string
	patch string
	want  string // expected compact result; ignored if err is set
	err   *Error // expected error (Op, Path, Reason)
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply([]byte(tc.doc), []byte(tc.patch))
			if tc.err != nil {
				if err == nil {
					t.Fatalf("Apply() = %s, want error %v", got, tc.err)
				}
				if got != nil {
					t.Errorf("Apply() returned document %s along with error", got)
				}
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("error %v (%T) is not *Error", err, err)
				}
				if *pe != *tc.err {
					t.Errorf("error = %+v, want %+v", *pe, *tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply() error: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Apply() =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func opErr(op int, path, reason string) *Error { return &Error{Op: op, Path: path, Reason: reason} }
func patchErr(reason string) *Error            { return &Error{Op: -1, Reason: reason} }

// TestRFC6902AppendixA covers the examples of RFC 6902 appendix A. Expected
// outputs follow this package's ordering rule (added members go last).
func TestRFC6902AppendixA(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:  "A.1 adding an object member",
			doc:   `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/baz","value":"qux"}]`,
			want:  `{"foo":"bar","baz":"qux"}`,
		},
		{
			name:  "A.2 adding an array element",
			doc:   `{"foo":["bar","baz"]}`,
			patch: `[{"op":"add","path":"/foo/1","value":"qux"}]`,
			want:  `{"foo":["bar","qux","baz"]}`,
		},
		{
			name:  "A.3 removing an object member",
			doc:   `{"baz":"qux","foo":"bar"}`,
			patch: `[{"op":"remove","path":"/baz"}]`,
			want:  `{"foo":"bar"}`,
		},
		{
			name:  "A.4 removing an array element",
			doc:   `{"foo":["bar","qux","baz"]}`,
			patch: `[{"op":"remove","path":"/foo/1"}]`,
			want:  `{"foo":["bar","baz"]}`,
		},
		{
			name:  "A.5 replacing a value",
			doc:   `{"baz":"qux","foo":"bar"}`,
			patch: `[{"op":"replace","path":"/baz","value":"boo"}]`,
			want:  `{"baz":"boo","foo":"bar"}`,
		},
		{
			name:  "A.6 moving a value",
			doc:   `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`,
			patch: `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
			want:  `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`,
		},
		{
			name:  "A.7 moving an array element",
			doc:   `{"foo":["all","grass","cows","eat"]}`,
			patch: `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`,
			want:  `{"foo":["all","cows","eat","grass"]}`,
		},
		{
			name: "A.8 testing a value: success",
			doc:  `{"baz":"qux","foo":["a",2,"c"]}`,
			patch: `[{"op":"test","path":"/baz","value":"qux"},
			         {"op":"test","path":"/foo/1","value":2}]`,
			want: `{"baz":"qux","foo":["a",2,"c"]}`,
		},
		{
			name:  "A.9 testing a value: error",
			doc:   `{"baz":"qux"}`,
			patch: `[{"op":"test","path":"/baz","value":"bar"}]`,
			err:   opErr(0, "/baz", ReasonTestFailed),
		},
		{
			name:  "A.10 adding a nested member object",
			doc:   `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`,
			want:  `{"foo":"bar","child":{"grandchild":{}}}`,
		},
		{
			name:  "A.11 ignoring unrecognized elements",
			doc:   `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`,
			want:  `{"foo":"bar","baz":"qux"}`,
		},
		{
			name:  "A.12 adding to a nonexistent target",
			doc:   `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/baz/bat","value":"qux"}]`,
			err:   opErr(0, "/baz/bat", ReasonParentNotFound),
		},
		{
			// Deliberate deviation from RFC 6902 A.13: duplicate member
			// names are accepted and the last one wins, so this is a
			// "remove" of /baz.
			name:  "A.13 duplicate op member: last wins",
			doc:   `{"foo":"bar","baz":"qux"}`,
			patch: `[{"op":"add","path":"/baz","value":"qux","op":"remove"}]`,
			want:  `{"foo":"bar"}`,
		},
		{
			name:  "A.14 ~ escape ordering",
			doc:   `{"/":9,"~1":10}`,
			patch: `[{"op":"test","path":"/~01","value":10}]`,
			want:  `{"/":9,"~1":10}`,
		},
		{
			name:  "A.15 comparing strings and numbers",
			doc:   `{"/":9,"~1":10}`,
			patch: `[{"op":"test","path":"/~01","value":"10"}]`,
			err:   opErr(0, "/~01", ReasonTestFailed),
		},
		{
			name:  "A.16 adding an array value",
			doc:   `{"foo":["bar"]}`,
			patch: `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`,
			want:  `{"foo":["bar",["abc","def"]]}`,
		},
	})
}

// TestRFC6901Pointers checks the pointer examples of RFC 6901 section 5 via
// "test" operations.
func TestRFC6901Pointers(t *testing.T) {
	doc := `{"foo":["bar","baz"],"":0,"a/b":1,"c%d":2,"e^f":3,"g|h":4,"i\\j":5,"k\"l":6," ":7,"m~n":8}`
	tests := []struct{ path, value string }{
		{``, doc},
		{`/foo`, `["bar","baz"]`},
		{`/foo/0`, `"bar"`},
		{`/`, `0`},
		{`/a~1b`, `1`},
		{`/c%d`, `2`},
		{`/e^f`, `3`},
		{`/g|h`, `4`},
		{`/i\\j`, `5`},
		{`/k\"l`, `6`},
		{`/ `, `7`},
		{`/m~0n`, `8`},
	}
	var cases []applyCase
	for _, tt := range tests {
		cases = append(cases, applyCase{
			name:  "test " + tt.path,
			doc:   doc,
			patch: `[{"op":"test","path":"` + tt.path + `","value":` + tt.value + `}]`,
			want:  doc,
		})
	}
	runApplyCases(t, cases)
}

func TestOperations(t *testing.T) {
	runApplyCases(t, []applyCase{
		// add
		{
			name:  "add replaces existing member in place",
			doc:   `{"a":1,"b":2,"c":3}`,
			patch: `[{"op":"add","path":"/b","value":"x"}]`,
			want:  `{"a":1,"b":"x","c":3}`,
		},
		{
			name:  "add null value",
			doc:   `{"a":1}`,
			patch: `[{"op":"add","path":"/b","value":null}]`,
			want:  `{"a":1,"b":null}`,
		},
		{
			name:  "add at array start",
			doc:   `[1,2]`,
			patch: `[{"op":"add","path":"/0","value":0}]`,
			want:  `[0,1,2]`,
		},
		{
			name:  "add at index == len appends",
			doc:   `[1,2]`,
			patch: `[{"op":"add","path":"/2","value":3}]`,
			want:  `[1,2,3]`,
		},
		{
			name:  "add dash appends to empty array",
			doc:   `{"a":[]}`,
			patch: `[{"op":"add","path":"/a/-","value":{"k":"v"}}]`,
			want:  `{"a":[{"k":"v"}]}`,
		},
		{
			name:  "add whole document",
			doc:   `{"a":1}`,
			patch: `[{"op":"add","path":"","value":[1,2]}]`,
			want:  `[1,2]`,
		},
		{
			name:  "add empty key",
			doc:   `{"a":1}`,
			patch: `[{"op":"add","path":"/","value":2}]`,
			want:  `{"a":1,"":2}`,
		},
		{
			name:  "add into nested empty key",
			doc:   `{"":{"":1}}`,
			patch: `[{"op":"add","path":"//","value":2}]`,
			want:  `{"":{"":2}}`,
		},
		{
			name:  "add numeric key into object",
			doc:   `{"a":{}}`,
			patch: `[{"op":"add","path":"/a/01","value":true}]`,
			want:  `{"a":{"01":true}}`,
		},
		{
			name:  "add dash key into object",
			doc:   `{}`,
			patch: `[{"op":"add","path":"/-","value":false}]`,
			want:  `{"-":false}`,
		},
		// remove
		{
			name:  "remove last array element",
			doc:   `[1,2,3]`,
			patch: `[{"op":"remove","path":"/2"}]`,
			want:  `[1,2]`,
		},
		{
			name:  "remove nested",
			doc:   `{"a":{"b":{"c":1,"d":2}}}`,
			patch: `[{"op":"remove","path":"/a/b/c"}]`,
			want:  `{"a":{"b":{"d":2}}}`,
		},
		// replace
		{
			name:  "replace whole document",
			doc:   `{"a":1}`,
			patch: `[{"op":"replace","path":"","value":"scalar"}]`,
			want:  `"scalar"`,
		},
		{
			name:  "replace with null",
			doc:   `{"a":1,"b":2}`,
			patch: `[{"op":"replace","path":"/a","value":null}]`,
			want:  `{"a":null,"b":2}`,
		},
		{
			name:  "replace array element",
			doc:   `[1,2,3]`,
			patch: `[{"op":"replace","path":"/1","value":[]}]`,
			want:  `[1,[],3]`,
		},
		// move
		{
			name:  "move to same location is a no-op",
			doc:   `{"a":1,"b":2}`,
			patch: `[{"op":"move","from":"/a","path":"/a"}]`,
			want:  `{"a":1,"b":2}`,
		},
		{
			name:  "move member goes last",
			doc:   `{"a":1,"b":2,"c":3}`,
			patch: `[{"op":"move","from":"/a","path":"/z"}]`,
			want:  `{"b":2,"c":3,"z":1}`,
		},
		{
			name:  "move over existing member keeps its position",
			doc:   `{"a":1,"b":2,"c":3}`,
			patch: `[{"op":"move","from":"/c","path":"/a"}]`,
			want:  `{"a":3,"b":2}`,
		},
		{
			name:  "move child to root",
			doc:   `{"a":{"b":1}}`,
			patch: `[{"op":"move","from":"/a","path":""}]`,
			want:  `{"b":1}`,
		},
		{
			name:  "move to sibling with common prefix",
			doc:   `{"a":{"x":1},"ab":{}}`,
			patch: `[{"op":"move","from":"/a","path":"/ab/a"}]`,
			want:  `{"ab":{"a":{"x":1}}}`,
		},
		{
			name:  "move array element backwards",
			doc:   `[0,1,2,3]`,
			patch: `[{"op":"move","from":"/3","path":"/0"}]`,
			want:  `[3,0,1,2]`,
		},
		{
			name:  "move array element to end with dash",
			doc:   `[0,1,2,3]`,
			patch: `[{"op":"move","from":"/0","path":"/-"}]`,
			want:  `[1,2,3,0]`,
		},
		// copy
		{
			name:  "copy member",
			doc:   `{"a":{"b":[1]}}`,
			patch: `[{"op":"copy","from":"/a","path":"/c"}]`,
			want:  `{"a":{"b":[1]},"c":{"b":[1]}}`,
		},
		{
			name: "copy is deep",
			doc:  `{"a":{"b":[1]}}`,
			patch: `[{"op":"copy","from":"/a","path":"/c"},
			         {"op":"add","path":"/c/b/-","value":2},
			         {"op":"replace","path":"/a/b/0","value":0}]`,
			want: `{"a":{"b":[0]},"c":{"b":[1,2]}}`,
		},
		{
			name:  "copy into own child",
			doc:   `{"a":{"b":1}}`,
			patch: `[{"op":"copy","from":"/a","path":"/a/c"}]`,
			want:  `{"a":{"b":1,"c":{"b":1}}}`,
		},
		{
			name:  "copy array element",
			doc:   `[1,[2]]`,
			patch: `[{"op":"copy","from":"/1","path":"/0"}]`,
			want:  `[[2],1,[2]]`,
		},
		{
			name:  "copy root into child",
			doc:   `{"a":1}`,
			patch: `[{"op":"copy","from":"","path":"/b"}]`,
			want:  `{"a":1,"b":{"a":1}}`,
		},
		// test
		{
			name:  "test whole document, keys in another order",
			doc:   `{"a":1,"b":{"c":[1,{"d":null}],"e":true}}`,
			patch: `[{"op":"test","path":"","value":{"b":{"e":true,"c":[1,{"d":null}]},"a":1}}]`,
			want:  `{"a":1,"b":{"c":[1,{"d":null}],"e":true}}`,
		},
		{
			name:  "test null",
			doc:   `{"a":null}`,
			patch: `[{"op":"test","path":"/a","value":null}]`,
			want:  `{"a":null}`,
		},
		{
			name: "test numbers by value",
			doc:  `{"a":1,"b":1.50,"c":100,"d":-0,"e":0.000123,"f":12345678901234567890123}`,
			patch: `[{"op":"test","path":"/a","value":1.0},
			         {"op":"test","path":"/a","value":1e0},
			         {"op":"test","path":"/a","value":0.1E1},
			         {"op":"test","path":"/b","value":1.5},
			         {"op":"test","path":"/b","value":15e-1},
			         {"op":"test","path":"/c","value":1E+2},
			         {"op":"test","path":"/c","value":1000e-1},
			         {"op":"test","path":"/d","value":0},
			         {"op":"test","path":"/d","value":0.0e10},
			         {"op":"test","path":"/e","value":1.23e-4},
			         {"op":"test","path":"/f","value":1.2345678901234567890123e22}]`,
			want: `{"a":1,"b":1.50,"c":100,"d":-0,"e":0.000123,"f":12345678901234567890123}`,
		},
		{
			name:  "test distinguishes close numbers",
			doc:   `{"a":1.00000000000000000001}`,
			patch: `[{"op":"test","path":"/a","value":1}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test distinguishes big exponents",
			doc:   `{"a":1e999999999999999999999}`,
			patch: `[{"op":"test","path":"/a","value":1e999999999999999999998}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test huge exponent equal",
			doc:   `{"a":1e999999999999999999999}`,
			patch: `[{"op":"test","path":"/a","value":10e999999999999999999998}]`,
			want:  `{"a":1e999999999999999999999}`,
		},
		{
			name:  "test sign matters",
			doc:   `{"a":-1}`,
			patch: `[{"op":"test","path":"/a","value":1}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test object with extra member fails",
			doc:   `{"a":{"x":1,"y":2}}`,
			patch: `[{"op":"test","path":"/a","value":{"x":1}}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test object with different key fails",
			doc:   `{"a":{"x":1,"y":2}}`,
			patch: `[{"op":"test","path":"/a","value":{"x":1,"z":2}}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test array order matters",
			doc:   `{"a":[1,2]}`,
			patch: `[{"op":"test","path":"/a","value":[2,1]}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test null vs absent",
			doc:   `{"a":null}`,
			patch: `[{"op":"test","path":"/b","value":null}]`,
			err:   opErr(0, "/b", ReasonNotFound),
		},
		{
			name:  "test bool vs number",
			doc:   `{"a":true}`,
			patch: `[{"op":"test","path":"/a","value":1}]`,
			err:   opErr(0, "/a", ReasonTestFailed),
		},
		{
			name:  "test string escapes compare decoded",
			doc:   `{"a":"\u0041\n"}`,
			patch: `[{"op":"test","path":"/a","value":"A\u000a"}]`,
			want:  `{"a":"A\n"}`,
		},
		// misc
		{
			name:  "empty patch re-encodes compactly",
			doc:   " {\n  \"a\" : [ 1 , 2 ] ,\t\"b\":{ } }\n",
			patch: ` [ ] `,
			want:  `{"a":[1,2],"b":{}}`,
		},
		{
			name: "operations apply in sequence",
			doc:  `{"a":[]}`,
			patch: `[{"op":"add","path":"/a/-","value":1},
			         {"op":"add","path":"/a/-","value":2},
			         {"op":"test","path":"/a","value":[1,2]},
			         {"op":"remove","path":"/a/0"},
			         {"op":"test","path":"/a/0","value":2}]`,
			want: `{"a":[2]}`,
		},
		{
			name:  "string escaping in output",
			doc:   `{"a":"<&>\u2028\"\\\/\b\f\n\r\t\u0001é😀"}`,
			patch: `[]`,
			want:  `{"a":"<&>` + "\u2028" + `\"\\/\b\f\n\r\t\u0001é😀"}`,
		},
		{
			name:  "escaped key in output",
			doc:   `{}`,
			patch: `[{"op":"add","path":"/a\"b","value":1}]`,
			want:  `{"a\"b":1}`,
		},
		{
			name:  "scalar document",
			doc:   `42`,
			patch: `[{"op":"test","path":"","value":42.0}]`,
			want:  `42`,
		},
		{
			name:  "large object uses index",
			doc:   largeObject(40),
			patch: `[{"op":"remove","path":"/k3"},{"op":"add","path":"/k39","value":0},{"op":"test","path":"/k38","value":38},{"op":"add","path":"/new","value":1},{"op":"test","path":"/new","value":1}]`,
			want:  strings.Replace(strings.Replace(largeObject(40), `"k3":3,`, "", 1), `"k39":39}`, `"k39":0,"new":1}`, 1),
		},
	})
}

func largeObject(n int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		b, _ := json.Marshal(i)
		sb.WriteString(`"k` + string(b) + `":` + string(b))
	}
	sb.WriteByte('}')
	return sb.String()
}

func TestNumberPreservation(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:  "untouched numbers keep their text",
			doc:   `{"a":1.50000000000000000001,"b":0.10,"c":1E+400,"d":-0.0,"e":123456789012345678901234567890,"f":1e-400,"g":2.50}`,
			patch: `[{"op":"add","path":"/z","value":true}]`,
			want:  `{"a":1.50000000000000000001,"b":0.10,"c":1E+400,"d":-0.0,"e":123456789012345678901234567890,"f":1e-400,"g":2.50,"z":true}`,
		},
		{
			name:  "patch values keep their text",
			doc:   `{"a":1}`,
			patch: `[{"op":"replace","path":"/a","value":1.50000000000000000001},{"op":"add","path":"/b","value":[0.10,1.0,1e2,-0]},{"op":"add","path":"/c","value":{"n":9007199254740993}}]`,
			want:  `{"a":1.50000000000000000001,"b":[0.10,1.0,1e2,-0],"c":{"n":9007199254740993}}`,
		},
		{
			name:  "moved and copied numbers keep their text",
			doc:   `{"a":0.10,"b":[1.000]}`,
			patch: `[{"op":"move","from":"/a","path":"/c"},{"op":"copy","from":"/b/0","path":"/b/-"}]`,
			want:  `{"b":[1.000,1.000],"c":0.10}`,
		},
	})
}

func TestKeyOrderPreservation(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:  "non-alphabetical order kept",
			doc:   `{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},"name":[{"given":["A"],"family":"B"}],"active":true}`,
			patch: `[{"op":"replace","path":"/name/0/family","value":"C"},{"op":"replace","path":"/active","value":false},{"op":"add","path":"/gender","value":"other"}]`,
			want:  `{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},"name":[{"given":["A"],"family":"C"}],"active":false,"gender":"other"}`,
		},
		{
			name:  "removed then re-added key goes last",
			doc:   `{"z":1,"y":2,"x":3}`,
			patch: `[{"op":"remove","path":"/z"},{"op":"add","path":"/z","value":1}]`,
			want:  `{"y":2,"x":3,"z":1}`,
		},
		{
			name:  "patch value key order kept",
			doc:   `{}`,
			patch: `[{"op":"add","path":"/v","value":{"z":1,"a":2,"m":3}}]`,
			want:  `{"v":{"z":1,"a":2,"m":3}}`,
		},
		{
			name:  "duplicate keys: last value wins at first position",
			doc:   `{"a":1,"b":2,"a":3}`,
			patch: `[]`,
			want:  `{"a":3,"b":2}`,
		},
		{
			name:  "duplicate keys in patch value",
			doc:   `{}`,
			patch: `[{"op":"add","path":"/v","value":{"x":1,"x":{"y":2}}}]`,
			want:  `{"v":{"x":{"y":2}}}`,
		},
		{
			name:  "duplicate path member: last wins",
			doc:   `{"a":1,"b":2}`,
			patch: `[{"op":"remove","path":"/a","path":"/b"}]`,
			want:  `{"a":1}`,
		},
	})
}

func TestErrors(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	runApplyCases(t, []applyCase{
		// document problems
		{name: "doc empty", doc: ``, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc whitespace only", doc: "  \n", patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc invalid", doc: `{"a":}`, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc trailing comma", doc: `[1,]`, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc unterminated", doc: `{"a":1`, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc single quotes", doc: `{'a':1}`, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc bad number", doc: `{"a":01}`, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc NaN", doc: `NaN`, patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc invalid utf8", doc: "{\"a\":\"\xff\"}", patch: `[]`, err: patchErr(ReasonDocInvalidJSON)},
		{name: "doc trailing value", doc: `{} {}`, patch: `[]`, err: patchErr(ReasonDocTrailingData)},
		{name: "doc trailing garbage", doc: `{}x`, patch: `[]`, err: patchErr(ReasonDocTrailingData)},
		{name: "doc trailing number", doc: `1 2`, patch: `[]`, err: patchErr(ReasonDocTrailingData)},
		{name: "doc depth 100 ok", doc: deep(100), patch: `[]`, want: deep(100)},
		{name: "doc depth 101", doc: deep(101), patch: `[]`, err: patchErr(ReasonDocTooDeep)},
		{name: "doc object depth 101", doc: deepObj(101), patch: `[]`, err: patchErr(ReasonDocTooDeep)},
		{name: "doc very deep", doc: deep(100000), patch: `[]`, err: patchErr(ReasonDocTooDeep)},

		// patch document problems
		{name: "patch empty", doc: `{}`, patch: ``, err: patchErr(ReasonPatchInvalidJSON)},
		{name: "patch invalid", doc: `{}`, patch: `[{"op":"add",}]`, err: patchErr(ReasonPatchInvalidJSON)},
		{name: "patch trailing data", doc: `{}`, patch: `[] []`, err: patchErr(ReasonPatchTrailing)},
		{name: "patch too deep", doc: `{}`, patch: `[{"op":"add","path":"/a","value":` + deep(99) + `}]`, err: patchErr(ReasonPatchTooDeep)},
		{name: "patch depth 100 ok", doc: `{}`, patch: `[{"op":"add","path":"/a","value":` + deep(98) + `}]`, want: `{"a":` + deep(98) + `}`},
		{name: "patch is object", doc: `{}`, patch: `{"op":"add","path":"/a","value":1}`, err: patchErr(ReasonPatchNotArray)},
		{name: "patch is null", doc: `{}`, patch: `null`, err: patchErr(ReasonPatchNotArray)},

		// malformed operations
		{name: "op not object", doc: `{}`, patch: `[{"op":"test","path":"","value":{}},"add"]`, err: opErr(1, "", ReasonOpNotObject)},
		{name: "op null", doc: `{}`, patch: `[null]`, err: opErr(0, "", ReasonOpNotObject)},
		{name: "missing op", doc: `{}`, patch: `[{"path":"/a","value":1}]`, err: opErr(0, "/a", ReasonOpMissing)},
		{name: "op not string", doc: `{}`, patch: `[{"op":1,"path":"/a","value":1}]`, err: opErr(0, "/a", ReasonOpMissing)},
		{name: "unknown op", doc: `{}`, patch: `[{"op":"merge","path":"/a","value":1}]`, err: opErr(0, "/a", ReasonOpUnknown)},
		{name: "op wrong case", doc: `{}`, patch: `[{"op":"Add","path":"/a","value":1}]`, err: opErr(0, "/a", ReasonOpUnknown)},
		{name: "missing path", doc: `{}`, patch: `[{"op":"add","value":1}]`, err: opErr(0, "", ReasonPathMissing)},
		{name: "path not string", doc: `{}`, patch: `[{"op":"add","path":null,"value":1}]`, err: opErr(0, "", ReasonPathMissing)},
		{name: "path without slash", doc: `{}`, patch: `[{"op":"add","path":"a","value":1}]`, err: opErr(0, "a", ReasonPathInvalid)},
		{name: "path bad escape", doc: `{}`, patch: `[{"op":"add","path":"/a~2","value":1}]`, err: opErr(0, "/a~2", ReasonPathInvalid)},
		{name: "path trailing tilde", doc: `{}`, patch: `[{"op":"add","path":"/a~","value":1}]`, err: opErr(0, "/a~", ReasonPathInvalid)},
		{name: "add missing value", doc: `{}`, patch: `[{"op":"add","path":"/a"}]`, err: opErr(0, "/a", ReasonValueMissing)},
		{name: "replace missing value", doc: `{"a":1}`, patch: `[{"op":"replace","path":"/a"}]`, err: opErr(0, "/a", ReasonValueMissing)},
		{name: "test missing value", doc: `{"a":1}`, patch: `[{"op":"test","path":"/a"}]`, err: opErr(0, "/a", ReasonValueMissing)},
		{name: "move missing from", doc: `{"a":1}`, patch: `[{"op":"move","path":"/b"}]`, err: opErr(0, "/b", ReasonFromMissing)},
		{name: "copy from not string", doc: `{"a":1}`, patch: `[{"op":"copy","path":"/b","from":1}]`, err: opErr(0, "/b", ReasonFromMissing)},
		{name: "copy from invalid", doc: `{"a":1}`, patch: `[{"op":"copy","path":"/b","from":"a"}]`, err: opErr(0, "/b", ReasonFromInvalid)},
		{name: "move into own child", doc: `{"a":{"b":1}}`, patch: `[{"op":"move","from":"/a","path":"/a/b/c"}]`, err: opErr(0, "/a/b/c", ReasonMoveIntoChild)},
		{name: "move root into child", doc: `{"a":{}}`, patch: `[{"op":"move","from":"","path":"/a"}]`, err: opErr(0, "/a", ReasonMoveIntoChild)},
		{name: "malformed op after failing op still reported", doc: `{}`, patch: `[{"op":"remove","path":"/x"},{"op":"bogus","path":"/y"}]`, err: opErr(1, "/y", ReasonOpUnknown)},

		// application errors
		{name: "add parent missing", doc: `{}`, patch: `[{"op":"add","path":"/a/b","value":1}]`, err: opErr(0, "/a/b", ReasonParentNotFound)},
		{name: "add into scalar", doc: `{"a":1}`, patch: `[{"op":"add","path":"/a/b","value":1}]`, err: opErr(0, "/a/b", ReasonNotContainer)},
		{name: "add through scalar", doc: `{"a":1}`, patch: `[{"op":"add","path":"/a/b/c","value":1}]`, err: opErr(0, "/a/b/c", ReasonParentNotFound)},
		{name: "add index past end", doc: `[1]`, patch: `[{"op":"add","path":"/2","value":1}]`, err: opErr(0, "/2", ReasonIndexRange)},
		{name: "add leading zero index", doc: `[1,2]`, patch: `[{"op":"add","path":"/01","value":1}]`, err: opErr(0, "/01", ReasonBadIndex)},
		{name: "add negative index", doc: `[1,2]`, patch: `[{"op":"add","path":"/-1","value":1}]`, err: opErr(0, "/-1", ReasonBadIndex)},
		{name: "add non-numeric index", doc: `[1,2]`, patch: `[{"op":"add","path":"/a","value":1}]`, err: opErr(0, "/a", ReasonBadIndex)},
		{name: "add empty index", doc: `[1,2]`, patch: `[{"op":"add","path":"/","value":1}]`, err: opErr(0, "/", ReasonBadIndex)},
		{name: "add plus index", doc: `[1,2]`, patch: `[{"op":"add","path":"/+1","value":1}]`, err: opErr(0, "/+1", ReasonBadIndex)},
		{name: "add huge index", doc: `[1,2]`, patch: `[{"op":"add","path":"/99999999999999999999999","value":1}]`, err: opErr(0, "/99999999999999999999999", ReasonIndexRange)},
		{name: "remove missing", doc: `{"a":1}`, patch: `[{"op":"remove","path":"/b"}]`, err: opErr(0, "/b", ReasonNotFound)},
		{name: "remove root", doc: `{"a":1}`, patch: `[{"op":"remove","path":""}]`, err: opErr(0, "", ReasonRemoveRoot)},
		{name: "remove index == len", doc: `[1,2]`, patch: `[{"op":"remove","path":"/2"}]`, err: opErr(0, "/2", ReasonIndexRange)},
		{name: "remove dash", doc: `[1,2]`, patch: `[{"op":"remove","path":"/-"}]`, err: opErr(0, "/-", ReasonIndexRange)},
		{name: "remove leading zero", doc: `[1,2]`, patch: `[{"op":"remove","path":"/00"}]`, err: opErr(0, "/00", ReasonBadIndex)},
		{name: "remove from scalar", doc: `{"a":"s"}`, patch: `[{"op":"remove","path":"/a/0"}]`, err: opErr(0, "/a/0", ReasonNotContainer)},
		{name: "replace missing", doc: `{"a":1}`, patch: `[{"op":"replace","path":"/b","value":1}]`, err: opErr(0, "/b", ReasonNotFound)},
		{name: "replace index == len", doc: `[1]`, patch: `[{"op":"replace","path":"/1","value":1}]`, err: opErr(0, "/1", ReasonIndexRange)},
		{name: "replace dash", doc: `[1]`, patch: `[{"op":"replace","path":"/-","value":1}]`, err: opErr(0, "/-", ReasonIndexRange)},
		{name: "move from missing", doc: `{"a":1}`, patch: `[{"op":"move","from":"/b","path":"/c"}]`, err: opErr(0, "/c", ReasonFromPrefix+ReasonNotFound)},
		{name: "move same missing", doc: `{"a":1}`, patch: `[{"op":"move","from":"/b","path":"/b"}]`, err: opErr(0, "/b", ReasonFromPrefix+ReasonNotFound)},
		{name: "move from root to root", doc: `{"a":1}`, patch: `[{"op":"move","from":"","path":""}]`, want: `{"a":1}`},
		{name: "move to bad target", doc: `{"a":1}`, patch: `[{"op":"move","from":"/a","path":"/x/y"}]`, err: opErr(0, "/x/y", ReasonParentNotFound)},
		{name: "copy from missing", doc: `{"a":[1]}`, patch: `[{"op":"copy","from":"/a/1","path":"/c"}]`, err: opErr(0, "/c", ReasonFromPrefix+ReasonIndexRange)},
		{name: "test missing", doc: `{"a":1}`, patch: `[{"op":"test","path":"/b","value":1}]`, err: opErr(0, "/b", ReasonNotFound)},
		{name: "test through scalar", doc: `{"a":1}`, patch: `[{"op":"test","path":"/a/b","value":1}]`, err: opErr(0, "/a/b", ReasonNotFound)},
		{name: "test dash", doc: `[1]`, patch: `[{"op":"test","path":"/-","value":1}]`, err: opErr(0, "/-", ReasonIndexRange)},
		{name: "error index is reported", doc: `{"a":1}`, patch: `[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/a"},{"op":"remove","path":"/a"}]`, err: opErr(2, "/a", ReasonNotFound)},
		{name: "result too deep", doc: `{"a":` + deep(99) + `}`, patch: `[{"op":"copy","from":"/a","path":"/a/-"}]`, err: patchErr(ReasonResultTooDeep)},
		{name: "copy amplification", doc: `{"a":[1,2,3,4,5,6,7,8]}`, patch: copyBomb(40), err: opErr(15, "/a/-", ReasonCopyTooLarge)}, // 2^16 copies exceed the 1 MiB floor
	})
}

// copyBomb returns a patch of n operations that each double the size of /a.
func copyBomb(n int) string {
	ops := make([]string, n)
	for i := range ops {
		ops[i] = `{"op":"copy","from":"/a","path":"/a/-"}`
	}
	return "[" + strings.Join(ops, ",") + "]"
}

// TestAtomic checks that a failing patch leaves the input untouched and
// yields no document.
func TestAtomic(t *testing.T) {
	doc := []byte(`{"a":[1,2],"b":{"c":1}}`)
	orig := string(doc)
	patch := []byte(`[{"op":"remove","path":"/a/0"},{"op":"add","path":"/b/d","value":2},{"op":"test","path":"/b/c","value":2}]`)
	got, err := Apply(doc, patch)
	if err == nil || got != nil {
		t.Fatalf("Apply() = %q, %v; want nil, error", got, err)
	}
	if string(doc) != orig {
		t.Errorf("input document modified: %s", doc)
	}
}

// TestErrorsHideValues makes sure no document or patch value ends up in an
// error message.
func TestErrorsHideValues(t *testing.T) {
	const secret = "SECRET-PATIENT-NAME"
	doc := `{"name":"` + secret + `","n":[` + `"` + secret + `"]}`
	patches := []string{
		`[{"op":"test","path":"/name","value":"x"}]`,
		`[{"op":"test","path":"/n","value":["` + secret + `x"]}]`,
		`[{"op":"add","path":"/name/x","value":"` + secret + `"}]`,
		`[{"op":"replace","path":"/n/5","value":"` + secret + `"}]`,
		`[{"op":"bogus","path":"/n","value":"` + secret + `"}]`,
		`[{"op":"add","path":"/n","value":"` + secret + `"}] "` + secret + `"`,
		`[{"op":"add","path":"/n","value":"` + secret + `}]`,
		`[{"op":"move","from":"/name","path":"/name/x"}]`,
	}
	for _, p := range patches {
		_, err := Apply([]byte(doc), []byte(p))
		if err == nil {
			t.Errorf("patch %s: expected error", p)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks value: %v", err)
		}
	}
	for _, d := range []string{doc + `x`, `{"a":"` + secret + `"` + `,}`, `"` + secret + "\xff\"", `{"a":"` + secret + `"} "` + secret + `"`} {
		_, err := Apply([]byte(d), []byte(`[]`))
		if err == nil {
			t.Errorf("doc %q: expected error", d)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks value: %v", err)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: -1, Reason: ReasonPatchNotArray}, "jsonpatch: patch is not a JSON array"},
		{&Error{Op: 2, Path: "/a/b", Reason: ReasonNotFound}, `jsonpatch: operation 2 (path "/a/b"): target location does not exist`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestNumbersEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true},
		{"1.50", "1.5", true},
		{"0", "-0", true},
		{"0", "0e-5", true},
		{"-0.0", "0E+7", true},
		{"100", "1e2", true},
		{"100", "1E+2", true},
		{"0.001", "1e-3", true},
		{"12.34e1", "123.4", true},
		{"1", "2", false},
		{"1", "-1", false},
		{"1.5", "1.05", false},
		{"10", "1", false},
		{"1e5", "1e-5", false},
		{"0.1", "0.10000000000000000001", false},
		{"123456789012345678901234567890", "1.2345678901234567890123456789e29", true},
	}
	for _, tt := range tests {
		if got := numbersEqual(json.Number(tt.a), json.Number(tt.b)); got != tt.want {
			t.Errorf("numbersEqual(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := numbersEqual(json.Number(tt.b), json.Number(tt.a)); got != tt.want {
			t.Errorf("numbersEqual(%s, %s) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestParsePointer(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", []string{}, true},
		{"/", []string{""}, true},
		{"//", []string{"", ""}, true},
		{"/a/b", []string{"a", "b"}, true},
		{"/~01", []string{"~1"}, true},
		{"/~10", []string{"/0"}, true},
		{"/a~1b~0c", []string{"a/b~c"}, true},
		{"a", nil, false},
		{"/~", nil, false},
		{"/~2", nil, false},
		{"/a~x", nil, false},
	}
	for _, tt := range tests {
		got, ok := parsePointer(tt.in)
		if ok != tt.ok {
			t.Errorf("parsePointer(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if ok && !slices.Equal(got, tt.want) {
			t.Errorf("parsePointer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzApply checks that Apply never panics, that results are valid JSON, and
// that an empty patch preserves the document's meaning.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.50,{"b":null}],"c":"d"}`), []byte(`[{"op":"add","path":"/a/1","value":0.10}]`))
	f.Add([]byte(`{"foo":["bar","baz"]}`), []byte(`[{"op":"move","from":"/foo/0","path":"/foo/-"}]`))
	f.Add([]byte(`[1,{"x":"\u00e9"}]`), []byte(`[{"op":"copy","from":"/1","path":"/0"},{"op":"test","path":"/0/x","value":"é"}]`))
	f.Add([]byte(`"s"`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		got, err := Apply(doc, patch)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			return
		}
		if !json.Valid(got) {
			t.Fatalf("result is not valid JSON: %q", got)
		}
		if string(patch) == "[]" {
			var a, b any
			if json.Unmarshal(doc, &a) == nil && json.Unmarshal(got, &b) == nil {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if string(ja) != string(jb) {
					t.Fatalf("empty patch changed document: %s -> %s", doc, got)
				}
			}
		}
	})
}
