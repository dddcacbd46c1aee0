package resource

import (
	"strings"
	"testing"
)

func TestSubset(t *testing.T) {
	obs := `{"resourceType":"Observation","id":"o","meta":{"versionId":"2"},"text":{"status":"generated","div":"<div>x</div>"},"status":"final","code":{"text":"c"},"valueQuantity":{"value":1.50},"_status":{"extension":[{"url":"u","valueString":"s"}]}}`
	cases := []struct {
		name, summary string
		elements      []string
		want          string
	}{
		{"nothing", "", nil, obs},
		{"count", "count", nil, obs},
		{"elements with choice and twin", "", []string{"value", "Observation.status"},
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"code":"SUBSETTED","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]},"status":"final","valueQuantity":{"value":1.50},"_status":{"extension":[{"url":"u","valueString":"s"}]}}`},
		{"data", "data", nil,
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"code":"SUBSETTED","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]},"status":"final","code":{"text":"c"},"valueQuantity":{"value":1.50},"_status":{"extension":[{"url":"u","valueString":"s"}]}}`},
	}
	for _, c := range cases {
		got, err := Subset([]byte(obs), c.summary, c.elements)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
	// The tag is not added twice.
	once, _ := Subset([]byte(obs), "data", nil)
	twice, _ := Subset(once, "", []string{"status"})
	if n := strings.Count(string(twice), "SUBSETTED"); n != 1 {
		t.Errorf("SUBSETTED %d times: %s", n, twice)
	}
	// _summary=true keeps the isSummary elements of R4: for Patient
	// name, gender, birthDate, identifier; not photo, contact, communication.
	pat := `{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"<div>x</div>"},"name":[{"family":"M"}],"photo":[{"url":"http://x"}],"gender":"male","contact":[{"name":{"text":"c"}}],"birthDate":"1970","communication":[{"language":{"text":"fr"}}],"identifier":[{"value":"1"}]}`
	got, err := Subset([]byte(pat), "true", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Patient","id":"p","meta":{"tag":[{"code":"SUBSETTED","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]},"name":[{"family":"M"}],"gender":"male","birthDate":"1970","identifier":[{"value":"1"}]}`
	if string(got) != want {
		t.Errorf("_summary=true:\n got %s\nwant %s", got, want)
	}
	// text keeps the mandatory elements (Observation: status, code)
	got, _ = Subset([]byte(obs), "text", nil)
	if !strings.Contains(string(got), `"status":"final"`) || !strings.Contains(string(got), `"code":{"text":"c"}`) || strings.Contains(string(got), "valueQuantity") {
		t.Errorf("_summary=text: %s", got)
	}
}
