package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
)

var (
	typeName = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	fhirID   = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

// ndjsonEntry returns the batch entry for one NDJSON line: PUT Type/id when
// the resource has an id, POST Type otherwise.
func ndjsonEntry(line []byte) ([]byte, error) {
	var head struct {
		ResourceType string  `json:"resourceType"`
		ID           *string `json:"id"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if !typeName.MatchString(head.ResourceType) {
		return nil, fmt.Errorf("missing or invalid resourceType")
	}
	method, url := "POST", head.ResourceType
	if head.ID != nil {
		if !fhirID.MatchString(*head.ID) {
			return nil, fmt.Errorf("invalid id")
		}
		method, url = "PUT", head.ResourceType+"/"+*head.ID
	}
	// resourceType and id are plain ASCII (checked above): no escaping.
	e := make([]byte, 0, len(line)+80)
	e = append(e, `{"resource":`...)
	e = append(e, line...)
	e = append(e, `,"request":{"method":"`...)
	e = append(e, method...)
	e = append(e, `","url":"`...)
	e = append(e, url...)
	e = append(e, `"}}`...)
	return e, nil
}

// batchBundle wraps entries in a batch Bundle.
func batchBundle(entries [][]byte) []byte {
	n := 64
	for _, e := range entries {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"resourceType":"Bundle","type":"batch","entry":[`...)
	b = append(b, bytes.Join(entries, []byte{','})...)
	return append(b, "]}"...)
}

// produceNDJSON reads f and queues its batch Bundles of l.batch entries.
// Lines that are not a resource fail here, without being sent.
func (l *loader) produceNDJSON(ctx context.Context, jobs chan<- job, f *file) {
	r, err := open(f.path)
	if err != nil {
		l.fail(Failure{File: f.path, Entry: -1, Entries: f.entries, Diagnostics: err.Error()})
		l.prog.failed.Add(int64(f.entries))
		return
	}
	defer r.Close()
	var (
		entries [][]byte
		lines   []int
		seen    int // non-blank lines read
	)
	flush := func() {
		if len(entries) > 0 {
			l.send(ctx, jobs, job{f: f, body: batchBundle(entries), entries: len(entries), lines: lines})
			entries, lines = nil, nil
		}
	}
	br := bufio.NewReaderSize(r, 256<<10)
	for n := 1; ctx.Err() == nil; n++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			flush()
			lost := max(f.entries-seen, 0)
			l.fail(Failure{File: f.path, Entry: -1, Line: n, Entries: lost, Diagnostics: "read: " + rerr.Error()})
			l.prog.failed.Add(int64(lost))
			return
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			seen++
			if e, err := ndjsonEntry(line); err != nil {
				l.fail(Failure{File: f.path, Entry: -1, Line: n, Diagnostics: err.Error()})
				l.prog.failed.Add(1)
			} else {
				entries = append(entries, e)
				lines = append(lines, n)
				if len(entries) == l.batch {
					flush()
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	flush()
	if ctx.Err() != nil && f.entries > seen {
		l.notSent.Add(int64(f.entries - seen))
		f.incomplete.Store(true)
	}
}
