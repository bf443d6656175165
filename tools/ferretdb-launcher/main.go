// Command ferretdb-launcher runs FerretDB v1.24.2 with its SQLite backend for local
// development and tests.
//
// It embeds the github.com/FerretDB/FerretDB/ferretdb package instead of building the
// upstream CLI: `go install .../cmd/ferretdb@v1.24.2` panics at start because the module
// zip lacks build/version/version.txt (FerretDB issue #2982). Embedding sidesteps that and
// keeps telemetry off and locked. It also gives every collection an `_id` index FerretDB's
// lookups can use (id_index.go): without it each find, update or delete by `_id` scans
// the whole table.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	dataDir := flag.String("data-dir", "", "directory holding one SQLite file per database (created if missing)")
	portFile := flag.String("port-file", "", "optional file the chosen MongoDB URI is written to once listening")
	logLevel := flag.String("log-level", "error", "debug, info, warn or error (FerretDB logs every connection at info)")
	indexEvery := flag.Duration("id-index-interval", time.Second, "how often new collection tables get the `_id` lookup index (id_index.go); 0 disables it")
	flag.Parse()

	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher: --data-dir is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(2)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(2)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher: bad --log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Logger:    logger,
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *indexEvery > 0 {
		// Existing tables first, before FerretDB takes writes: indexing a big table holds
		// the write lock for a while.
		indexer := newIDIndexer(abs, logger)
		if made := indexer.pass(ctx); made > 0 {
			logger.Info("added _id lookup indexes", "count", made)
		}
		go indexer.run(ctx, *indexEvery)
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	uri := f.MongoDBURI()
	fmt.Println(uri)
	if *portFile != "" {
		_ = os.WriteFile(*portFile, []byte(uri+"\n"), 0o644)
	}

	if err := <-done; err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(1)
	}
}
