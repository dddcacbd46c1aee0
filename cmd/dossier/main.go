// Command dossier is the Dossier FHIR R4 server and its tools.
//
//	dossier serve  [flags]   run the server (embedded engine by default)
//	dossier token  [flags]   mint a bearer token from the server's secret
//	dossier load   [flags] PATH...   send Bundles and NDJSON files to a server
//
// Every flag has an environment twin (DOSSIER_ADDR for --addr, …); a flag
// given on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dossier-fhir/dossier/cmd/dossier/load"
	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/profile"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/rest"
	"github.com/dossier-fhir/dossier/fhir/search"
	"github.com/dossier-fhir/dossier/fhir/trail"
	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dossier:", err)
		os.Exit(1)
	}
}

const usage = `usage: dossier <command> [flags]

commands:
  serve   run the FHIR server (embedded engine unless --mongo-uri is set)
  token   mint a bearer token signed with the server's HS256 secret
  reindex recompute the search index of every stored resource (after
          search parameters were added or changed; run with the server stopped
          on the embedded engine)
  load    send FHIR Bundles (.json, .json.bz2) and NDJSON files to a server

run "dossier <command> -h" for the flags of a command`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "reindex":
		return reindex(ctx, args[1:], stdout, stderr)
	case "load":
		return load.Main(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// common flags of serve and token.
type keyFlags struct {
	data, secret, jwks string
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.data, "data", env("DOSSIER_DATA", "./data"), "folder of the embedded engine's files and the generated secret (DOSSIER_DATA)")
	fs.StringVar(&k.secret, "jwt-secret", env("DOSSIER_JWT_SECRET", ""), "HS256 secret for bearer tokens, at least 32 bytes (DOSSIER_JWT_SECRET)")
	fs.StringVar(&k.jwks, "jwks", env("DOSSIER_JWKS", ""), "JWKS file path or URL for RS256/ES256 tokens (DOSSIER_JWKS)")
}

func (k *keyFlags) secretPath() string { return filepath.Join(k.data, "jwt-secret") }

// hsSecret returns the configured secret, or the one in the data folder
// (created when absent).
func (k *keyFlags) hsSecret(log *slog.Logger) ([]byte, error) {
	if k.secret != "" {
		if len(k.secret) < access.MinSecretLen {
			return nil, fmt.Errorf("--jwt-secret must be at least %d bytes", access.MinSecretLen)
		}
		return []byte(k.secret), nil
	}
	sec, created, err := access.LoadOrCreateSecret(k.secretPath())
	if err != nil {
		return nil, err
	}
	if created && log != nil {
		log.Info("no key configured: created a random HS256 secret", "path", k.secretPath())
	} else if log != nil {
		log.Info("using the HS256 secret of the data folder", "path", k.secretPath())
	}
	return sec, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var k keyFlags
	k.register(fs)
	addr := fs.String("addr", env("DOSSIER_ADDR", ":8080"), "listen address (DOSSIER_ADDR)")
	mongoURI := fs.String("mongo-uri", env("DOSSIER_MONGO_URI", ""), "MongoDB connection string; empty = embedded engine (DOSSIER_MONGO_URI)")
	db := fs.String("db", env("DOSSIER_DB", "dossier"), "database name (DOSSIER_DB)")
	baseURL := fs.String("base-url", env("DOSSIER_BASE_URL", ""), "public FHIR base URL, e.g. https://host/fhir (DOSSIER_BASE_URL)")
	maxBody := fs.Int64("max-body", envInt("DOSSIER_MAX_BODY", 16<<20), "maximum request body in bytes (DOSSIER_MAX_BODY)")
	maxBinary := fs.Int64("max-binary", envInt("DOSSIER_MAX_BINARY", rest.DefaultMaxBinary), "maximum raw Binary content in bytes, streamed to the store (DOSSIER_MAX_BINARY)")
	strict := fs.Bool("strict-profiles", envBool("DOSSIER_STRICT_PROFILES", false), "validate Patient, Encounter, DocumentReference and preventive CarePlans against the record's profiles even when they claim none (DOSSIER_STRICT_PROFILES)")
	logLevel := fs.String("log-level", env("DOSSIER_LOG_LEVEL", "info"), "debug, info, warn or error (DOSSIER_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Storage.
	var engine *embedded.Engine
	uri := *mongoURI
	opts := smongo.Options{Indexes: true}
	if uri == "" {
		var err error
		engine, err = embedded.Start(ctx, k.data, log)
		if err != nil {
			return err
		}
		defer func() {
			if err := engine.Close(); err != nil {
				log.Error("embedded engine shutdown", "err", err)
			}
		}()
		uri = engine.URI()
		opts = engine.Options(*db)
		embedded.SpareProc() // its fsyncs hold a P each (embedded.SpareProc)
		log.Info("embedded engine started", "data", engine.Dir(), "gomaxprocs", runtime.GOMAXPROCS(0))
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ms, err := smongo.Open(octx, uri, *db, opts)
	cancel()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st := store.NewMetered(ms, reg)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.Close(cctx); err != nil {
			log.Error("store close", "err", err)
		}
	}()

	// Authentication.
	var verifier *access.Verifier
	switch {
	case k.jwks != "":
		verifier, err = access.NewJWKSVerifier(ctx, k.jwks, nil)
	default:
		var sec []byte
		if sec, err = k.hsSecret(log); err == nil {
			verifier, err = access.NewHS256Verifier(sec)
		}
	}
	if err != nil {
		return err
	}

	parser, err := resource.NewParser()
	if err != nil {
		return err
	}
	sreg, err := search.LoadRegistry(profiles.FS, profiles.SearchParameterFiles...)
	if err != nil {
		return err
	}
	matrix, err := access.LoadMatrix(profiles.FS, "access-matrix.json")
	if err != nil {
		return err
	}
	policy := access.NewDMP(st, matrix, func(t string) bool { return t != "Patient" && len(sreg.OwnerParam(t)) > 0 })
	r := repo.New(st, parser, sreg, policy)
	pset, err := profile.Load(profiles.FS)
	if err != nil {
		return err
	}
	r.UseProfiles(pset, *strict)
	cfg := rest.DefaultConfig()
	cfg.BaseURL = *baseURL
	cfg.MaxBodyBytes = *maxBody
	cfg.MaxBinary = *maxBinary
	cfg.Version = version
	tr := trail.New(st, trail.Options{Index: r.Index, Notify: r.NotifyEmergency, Source: "dossier", Registerer: reg})
	defer tr.Close() // after the HTTP server's shutdown (deferred later, runs first), before the store's
	cfg.Tracer = tr
	e := rest.New(cfg, r, st, verifier, rest.NewMetrics(reg, reg), log)

	srv := &http.Server{
		Addr:              *addr,
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("dossier listening", "addr", *addr, "fhir", "/fhir")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("http shutdown", "err", err)
	}
	return nil
}

func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

func envInt(name string, def int64) int64 {
	var n int64
	if v, ok := os.LookupEnv(name); ok {
		if _, err := fmt.Sscan(v, &n); err == nil {
			return n
		}
	}
	return def
}

func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var k keyFlags
	k.register(fs)
	var c access.Claims
	fs.StringVar(&c.Subject, "sub", "", "subject (default: derived from the role)")
	fs.StringVar(&c.Role, "role", "integration", "professional | patient | representative | campaign | integration | admin")
	fs.StringVar(&c.RPPS, "rpps", "", "RPPS number (professional)")
	fs.StringVar(&c.Profession, "profession", "", "TRE_G15 profession code, e.g. 10 (professional)")
	fs.StringVar(&c.Specialty, "specialty", "", "specialty (professional, optional)")
	fs.StringVar(&c.Mode, "mode", "", "normal | bris_de_glace | centre_15 (professional)")
	fs.StringVar(&c.Patient, "patient", "", "Patient id (patient, representative)")
	fs.StringVar(&c.Org, "org", "", "Organization id (integration)")
	fs.StringVar(&c.Scope, "scope", "", "SMART v2 scopes, space separated (optional)")
	fs.DurationVar(&c.TTL, "ttl", time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if k.jwks != "" {
		return errors.New("tokens for a JWKS deployment are minted by its identity provider, not by dossier")
	}
	if c.Subject == "" {
		c.Subject = strings.Join([]string{c.Role, c.RPPS, c.Patient, c.Org}, ":")
		c.Subject = strings.TrimRight(strings.ReplaceAll(c.Subject, "::", ":"), ":")
	}
	sec, err := k.hsSecret(nil)
	if err != nil {
		return err
	}
	tok, err := access.MintHS256(sec, c, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// reindex recomputes the search fields of every current resource.
func reindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reindex", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", env("DOSSIER_DATA", "./data"), "folder of the embedded engine's files (DOSSIER_DATA)")
	mongoURI := fs.String("mongo-uri", env("DOSSIER_MONGO_URI", ""), "MongoDB connection string; empty = embedded engine (DOSSIER_MONGO_URI)")
	db := fs.String("db", env("DOSSIER_DB", "dossier"), "database name (DOSSIER_DB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	uri, opts := *mongoURI, smongo.Options{Indexes: true}
	if uri == "" {
		engine, err := embedded.Start(ctx, *data, nil)
		if err != nil {
			return err
		}
		defer engine.Close()
		uri, opts = engine.URI(), engine.Options(*db)
	}
	ms, err := smongo.Open(ctx, uri, *db, opts)
	if err != nil {
		return err
	}
	defer ms.Close(context.Background())
	parser, err := resource.NewParser()
	if err != nil {
		return err
	}
	reg, err := search.LoadRegistry(profiles.FS, profiles.SearchParameterFiles...)
	if err != nil {
		return err
	}
	types, err := ms.Types(ctx)
	if err != nil {
		return err
	}
	r := repo.New(ms, parser, reg, access.Interim{})
	start := time.Now()
	n, err := r.Reindex(ctx, types, func(typ string, n int) { fmt.Fprintf(stdout, "%-28s %8d\n", typ, n) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindexed %d resources in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
