package resource

import (
	"strings"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

func TestTypes(t *testing.T) {
	if n := len(Types()); n < 140 {
		t.Fatalf("%d types, want every R4 type", n)
	}
	for _, ty := range []string{"Patient", "DocumentReference", "AuditEvent", "Binary", "Bundle"} {
		if !IsType(ty) {
			t.Errorf("%s missing", ty)
		}
	}
	if IsType("Foo") || IsType("patient") {
		t.Error("unknown type accepted")
	}
}

func TestParse(t *testing.T) {
	p, err := NewParser()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		wantErr    bool
		wantIssues int
	}{
		{"ok", `{"resourceType":"Patient","id":"a","gender":"male"}`, false, 0},
		{"not json", `{"resourceType":`, true, 1},
		{"array", `[]`, true, 1},
		{"no type", `{"id":"a"}`, true, 1},
		{"unknown type", `{"resourceType":"Foo"}`, true, 1},
		{"bad id", `{"resourceType":"Patient","id":"a b"}`, true, 1},
		{"bad code", `{"resourceType":"Patient","gender":"robot"}`, true, 1},
		{"unknown element", `{"resourceType":"Patient","foo":1}`, true, 1},
		{"duplicate key", `{"resourceType":"Patient","gender":"male","gender":"female"}`, true, 1},
		{"two problems", `{"resourceType":"Observation","status":"final"}`, true, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.Parse([]byte(c.body))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if outcome.KindOf(err) != outcome.Invalid {
					t.Fatalf("kind %v", outcome.KindOf(err))
				}
			}
		})
	}
}

func TestWithMetaKeepsOrderAndDecimals(t *testing.T) {
	in := `{"resourceType":"Observation","status":"final","valueQuantity":{"value":1.500000000000000000001},"meta":{"versionId":"9","tag":[{"code":"x"}]},"code":{"text":"t"}}`
	obj, err := ParseObject([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := WithMeta(obj, "Observation", "o1", 3, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Observation","id":"o1","meta":{"versionId":"3","lastUpdated":"2026-01-02T03:04:05.000006Z","tag":[{"code":"x"}]},"status":"final","valueQuantity":{"value":1.500000000000000000001},"code":{"text":"t"}}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	h1, _ := ContentHash([]byte(in))
	h2, _ := ContentHash(out)
	if h1 == h2 {
		t.Fatal("hash ignores id")
	}
	h3, _ := ContentHash([]byte(strings.Replace(string(out), `"versionId":"3"`, `"versionId":"4"`, 1)))
	if h3 != h2 {
		t.Fatal("hash depends on versionId")
	}
}

func TestSecurityLabels(t *testing.T) {
	obj, _ := ParseObject([]byte(`{"resourceType":"DocumentReference","subject":{"reference":"http://x/fhir/Patient/p1"},"meta":{"security":[{"system":"a","code":"b"}]},"securityLabel":[{"coding":[{"system":"c","code":"d"}]}]}`))
	if got := strings.Join(SecurityLabels(obj), ","); got != "a|b,c|d" {
		t.Errorf("security %s", got)
	}
}

func TestRewriteReferences(t *testing.T) {
	in := `{"resourceType":"Observation","valueQuantity":{"value":1.10},"subject":{"reference":"urn:uuid:1"},"performer":[{"reference":"Practitioner?identifier=a|b"},{"reference":"Practitioner/x"}],"contained":[{"resourceType":"Patient","link":[{"other":{"reference":"urn:uuid:1"}}]}]}`
	out, err := RewriteReferences([]byte(in), func(ref string) (string, error) {
		switch ref {
		case "urn:uuid:1":
			return "Patient/p1", nil
		case "Practitioner?identifier=a|b":
			return "Practitioner/pr", nil
		}
		return ref, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Observation","valueQuantity":{"value":1.10},"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/pr"},{"reference":"Practitioner/x"}],"contained":[{"resourceType":"Patient","link":[{"other":{"reference":"Patient/p1"}}]}]}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	same, _ := RewriteReferences([]byte(in), func(ref string) (string, error) { return ref, nil })
	if string(same) != in {
		t.Fatal("unchanged input was rewritten")
	}
}

func TestRewriteReferencesTricky(t *testing.T) {
	in := `{"a":"reference","text":{"div":"<div>\"reference\":\"urn:uuid:1\"</div>"},"b":{"reference" : "urn:uuid:1"},"c":{"reference":{"reference":"urn:uuid:1"}},"d":"x\\","e":{"reference":"keep"}}`
	out, err := RewriteReferences([]byte(in), func(ref string) (string, error) {
		if ref == "urn:uuid:1" {
			return "Patient/é", nil
		}
		return ref, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"reference","text":{"div":"<div>\"reference\":\"urn:uuid:1\"</div>"},"b":{"reference" : "Patient/é"},"c":{"reference":{"reference":"Patient/é"}},"d":"x\\","e":{"reference":"keep"}}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if _, err := RewriteReferences([]byte(`{"reference":"abc`), func(s string) (string, error) { return s, nil }); err == nil {
		t.Fatal("unterminated string: want an error")
	}
}
