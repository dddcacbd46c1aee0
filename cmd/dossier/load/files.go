package load

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// kind of an input file, from its name.
type kind int

const (
	kindOther  kind = iota
	kindBundle      // .json, .json.bz2: one Bundle, POSTed as-is
	kindNDJSON      // .ndjson, .ndjson.bz2: one resource a line
)

func kindOf(path string) kind {
	name := strings.ToLower(filepath.Base(path))
	name = strings.TrimSuffix(name, ".bz2")
	switch {
	case strings.HasSuffix(name, ".ndjson"):
		return kindNDJSON
	case strings.HasSuffix(name, ".json"):
		return kindBundle
	}
	return kindOther
}

// file is an input file after the up-front scan.
type file struct {
	path       string
	kind       kind
	bundleType string // "batch" or "transaction"; ndjson files make batch Bundles
	entries    int    // resources counted up front

	// remaining counts the requests of the file not finished yet, plus one
	// while its jobs are still being produced; the file is done at zero.
	remaining  int64
	incomplete atomic.Bool // some entries were not sent
}

// collect walks paths (files or folders, recursively) and returns the
// regular files found, sorted and without duplicates.
func collect(paths []string) ([]string, error) {
	var out []string
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, filepath.Clean(root))
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.Type().IsRegular():
				out = append(out, p)
			case d.Type()&fs.ModeSymlink != 0:
				// Symbolic links to regular files are followed; links to
				// folders are not (they could loop).
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					out = append(out, p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// open returns the content of path, decompressed when its name ends in .bz2.
func open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(strings.ToLower(path), ".bz2") {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{bzip2.NewReader(bufio.NewReaderSize(f, 64<<10)), f}, nil
}

func readAll(path string) ([]byte, error) {
	r, err := open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// bundleHead is what the scan needs of a Bundle.
type bundleHead struct {
	ResourceType string     `json:"resourceType"`
	Type         string     `json:"type"`
	Entry        []struct{} `json:"entry"`
}

// scanBundle returns the type ("batch" or "transaction") and entry count of
// a Bundle.
func scanBundle(data []byte) (string, int, error) {
	var b bundleHead
	if err := json.Unmarshal(data, &b); err != nil {
		return "", 0, fmt.Errorf("invalid JSON: %w", err)
	}
	if b.ResourceType != "Bundle" {
		return "", 0, errors.New("not a Bundle")
	}
	if b.Type != "batch" && b.Type != "transaction" {
		return "", 0, fmt.Errorf("a Bundle of type %q: only batch and transaction Bundles are loaded", b.Type)
	}
	return b.Type, len(b.Entry), nil
}

// countLines returns the number of non-blank lines of r.
func countLines(r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	n := 0
	blank := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(bytes.TrimSpace(chunk)) > 0 {
			blank = false
		}
		switch err {
		case bufio.ErrBufferFull:
			// long line: keep reading it
		case nil:
			if !blank {
				n++
			}
			blank = true
		case io.EOF:
			if !blank {
				n++
			}
			return n, nil
		default:
			return n, err
		}
	}
}

// scanFile reads path to find its kind, Bundle type and number of entries.
func scanFile(path string) (*file, error) {
	f := &file{path: path, kind: kindOf(path)}
	switch f.kind {
	case kindBundle:
		data, err := readAll(path)
		if err != nil {
			return nil, err
		}
		f.bundleType, f.entries, err = scanBundle(data)
		if err != nil {
			return nil, err
		}
	case kindNDJSON:
		r, err := open(path)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		f.bundleType = "batch"
		if f.entries, err = countLines(r); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	default:
		return nil, errors.New("unknown file kind")
	}
	return f, nil
}

// scanAll scans paths in parallel (decompression is CPU bound). Results are
// in the order of paths; errs[i] is set when paths[i] cannot be loaded (or
// was not scanned because ctx is done).
func scanAll(ctx context.Context, paths []string, onDone func()) (files []*file, errs []error) {
	files = make([]*file, len(paths))
	errs = make([]error, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(paths), 1)) {
		wg.Go(func() {
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] == nil {
					files[i], errs[i] = scanFile(paths[i])
				}
				onDone()
			}
		})
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return files, errs
}
