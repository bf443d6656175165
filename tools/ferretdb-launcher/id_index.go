package main

// An `_id` index FerretDB's SQLite backend can use.
//
// FerretDB v1.24.2 creates each collection's unique `_id_` index on the expression
// `_ferretdb_sjson->"_id"`, but looks documents up (find by `_id`, UPDATE, DELETE) with
// `_ferretdb_sjson->'$._id'` (metadata.IDColumn). SQLite uses an expression index only
// for the same expression, so every lookup by `_id` scanned the whole table: 165 ms for
// one miss in a 240 MB history table, 26 µs with an index on the lookup's own expression
// (EXPLAIN QUERY PLAN: SCAN → SEARCH ... USING INDEX).
//
// The launcher adds that index (`<table>__echostats_id_lookup`, not unique: FerretDB's own
// index keeps enforcing uniqueness) to every collection table: once over the data
// directory before FerretDB starts, then every interval for the tables created since.
// FerretDB never sees it (its index list lives in `_ferretdb_collections.settings`), and
// DROP TABLE of a dropped collection drops it too. Production runs MongoDB, where `_id`
// lookups are indexed anyway.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver FerretDB itself uses
)

const lookupIndexSuffix = "__echostats_id_lookup"

// fileStamp tells whether a database file (or its write-ahead log) changed since a pass.
type fileStamp struct {
	size, walSize   int64
	mtime, walMtime time.Time
}

func stampOf(path string) (fileStamp, bool) {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	stamp := fileStamp{size: info.Size(), mtime: info.ModTime()}
	if wal, err := os.Stat(path + "-wal"); err == nil {
		stamp.walSize, stamp.walMtime = wal.Size(), wal.ModTime()
	}
	return stamp, true
}

// idIndexer adds the lookup index to the collection tables of every database file in dir.
type idIndexer struct {
	dir    string
	logger *slog.Logger
	// The stamp of each file when it last had every table indexed: unchanged files are
	// not opened again.
	done map[string]fileStamp
}

func newIDIndexer(dir string, logger *slog.Logger) *idIndexer {
	return &idIndexer{dir: dir, logger: logger, done: map[string]fileStamp{}}
}

// pass indexes what is missing in every database file; returns how many indexes it made.
func (x *idIndexer) pass(ctx context.Context) int {
	files, _ := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	made := 0
	for _, path := range files {
		stamp, ok := stampOf(path)
		if !ok {
			continue
		}
		if previous, seen := x.done[path]; seen && previous == stamp {
			continue
		}
		count, err := indexFile(ctx, path)
		made += count
		if err != nil {
			// A file FerretDB is creating or dropping right now: the next pass retries.
			x.logger.Debug("id index pass skipped a file", "file", path, "error", err)
			delete(x.done, path)
			continue
		}
		if stamp, ok := stampOf(path); ok {
			x.done[path] = stamp
		}
	}
	for path := range x.done {
		if _, err := os.Stat(path); err != nil {
			delete(x.done, path)
		}
	}
	return made
}

// run repeats pass every interval until ctx ends.
func (x *idIndexer) run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			x.pass(ctx)
		}
	}
}

// indexFile adds the lookup index to each collection table of one database file that
// lacks it. The connection is short-lived and never creates a file (mode=rw).
func indexFile(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	rows, err := db.QueryContext(ctx,
		`SELECT name FROM sqlite_master WHERE type = 'table'
		 AND name IN (SELECT table_name FROM _ferretdb_collections)
		 AND name || ? NOT IN (SELECT name FROM sqlite_master WHERE type = 'index')`,
		lookupIndexSuffix)
	if err != nil {
		return 0, err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return 0, err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}

	made := 0
	for _, table := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (_ferretdb_sjson->'$._id')`,
			quoteIdent(table+lookupIndexSuffix), quoteIdent(table))
		if _, err := db.ExecContext(ctx, q); err != nil {
			// The table was dropped meanwhile: nothing to index.
			if strings.Contains(err.Error(), "no such table") {
				continue
			}
			return made, err
		}
		made++
	}
	return made, nil
}

func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
