package load

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Intervals between two progress lines.
var (
	progressInterval = 2 * time.Second        // not a terminal: plain lines
	ttyInterval      = 250 * time.Millisecond // terminal: the line is redrawn
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress counts what is done and reports it on w (stderr): on a terminal
// as one line redrawn in place, otherwise as a plain line every
// progressInterval and at the end.
type progress struct {
	w          io.Writer
	tty        bool
	start      time.Time
	filesTotal int64
	resTotal   int64

	filesDone, ok, failed, retries atomic.Int64

	mu   sync.Mutex // serialises writes to w
	stop chan struct{}
	done chan struct{}
}

func newProgress(w io.Writer, tty bool, filesTotal, resTotal int) *progress {
	return &progress{w: w, tty: tty, start: time.Now(), filesTotal: int64(filesTotal), resTotal: int64(resTotal)}
}

// line is the progress text, without line ending: compact on a terminal
// (it must fit on one line to be redrawn in place).
func (p *progress) line() string {
	done := p.ok.Load() + p.failed.Load()
	elapsed := time.Since(p.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "?"
	switch {
	case done >= p.resTotal:
		eta = "0s"
	case rate > 0:
		eta = (time.Duration(float64(p.resTotal-done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	failed, retries := p.failed.Load(), p.retries.Load()
	var s string
	if p.tty {
		s = fmt.Sprintf("files %d/%d  resources %d/%d  %.0f/s  ETA %s",
			p.filesDone.Load(), p.filesTotal, done, p.resTotal, rate, eta)
		if failed > 0 {
			s += fmt.Sprintf("  %d failed", failed)
		}
		if retries > 0 {
			s += fmt.Sprintf("  %d retries", retries)
		}
		return s
	}
	s = fmt.Sprintf("files %d/%d, resources %d/%d, %.0f resources/s, ETA %s",
		p.filesDone.Load(), p.filesTotal, done, p.resTotal, rate, eta)
	if failed > 0 {
		s += fmt.Sprintf(", %d failed", failed)
	}
	if retries > 0 {
		s += fmt.Sprintf(", %d retries", retries)
	}
	return s
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K"+p.line())
	} else {
		fmt.Fprintln(p.w, "load: "+p.line())
	}
}

// begin starts the periodic reports.
func (p *progress) begin() {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	interval := progressInterval
	if p.tty {
		interval = ttyInterval
		p.draw()
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

// end stops the periodic reports and prints the last line.
func (p *progress) end() {
	close(p.stop)
	<-p.done
	p.draw()
	if p.tty {
		p.mu.Lock()
		fmt.Fprintln(p.w)
		p.mu.Unlock()
	}
}
