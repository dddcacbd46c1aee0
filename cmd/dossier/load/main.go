package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
)

// Claims of the token minted when none is given.
const (
	tokenSubject = "dossier-load"
	tokenRole    = "integration"
	// tokenTTL covers long loads: the token is minted once and stays in
	// memory.
	tokenTTL = 12 * time.Hour
)

// Main runs `dossier load` with its command-line arguments (after "load").
// Every flag has an environment twin; a flag given on the command line wins.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: dossier load [flags] PATH...

Loads FHIR data into a Dossier (or any FHIR R4) server. PATHs are files or
folders, walked recursively: .json and .json.bz2 files hold a batch or
transaction Bundle, POSTed as-is; .ndjson and .ndjson.bz2 files hold one
resource a line, sent as batch Bundles (PUT Type/id, or POST Type without id).
All batch Bundles are sent before the first transaction Bundle.

flags:`)
		fs.PrintDefaults()
	}
	concurrency, err := envInt("DOSSIER_CONCURRENCY", DefaultConcurrency)
	if err != nil {
		return err
	}
	batchSize, err := envInt("DOSSIER_BATCH_SIZE", DefaultBatchSize)
	if err != nil {
		return err
	}
	var opts Options
	fs.StringVar(&opts.URL, "url", env("DOSSIER_URL", "http://localhost:8080/fhir"), "FHIR base URL of the server (DOSSIER_URL)")
	fs.StringVar(&opts.Token, "token", env("DOSSIER_TOKEN", ""), "bearer token; empty = mint an integration token from the secret of --data (DOSSIER_TOKEN)")
	data := fs.String("data", env("DOSSIER_DATA", "./data"), "data folder holding the server's jwt-secret, used when --token is empty (DOSSIER_DATA)")
	org := fs.String("org", env("DOSSIER_ORG", "dossier-load"), "Organization id of the minted integration token (DOSSIER_ORG)")
	fs.IntVar(&opts.Concurrency, "concurrency", concurrency, "requests in flight (DOSSIER_CONCURRENCY)")
	fs.IntVar(&opts.BatchSize, "batch-size", batchSize, "entries per batch Bundle made from NDJSON (DOSSIER_BATCH_SIZE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no PATH given")
	}
	if opts.Concurrency < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	if opts.BatchSize < 1 {
		return errors.New("--batch-size must be at least 1")
	}
	if opts.Token == "" {
		path := filepath.Join(*data, "jwt-secret")
		secret, created, err := access.LoadOrCreateSecret(path)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stderr, "load: created a new secret %s: the server accepts the minted token only if it uses this data folder\n", path)
		}
		opts.Token, err = access.MintHS256(secret, access.Claims{
			Subject: tokenSubject, Role: tokenRole, Org: *org, TTL: tokenTTL,
		}, time.Now())
		if err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, opts, fs.Args(), stdout, stderr)
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) (int, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: not an integer", name)
	}
	return n, nil
}
