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
		{"text", "text", nil,
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"code":"SUBSETTED","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]},"text":{"status":"generated","div":"<div>x</div>"}}`},
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
	if _, err := Subset([]byte(obs), "true", nil); err == nil {
		t.Error("_summary=true: want a refusal, not an approximation")
	}
}
