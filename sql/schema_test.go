package sql_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

// TestMigrationsMatchAcrossDialects migrates a fresh SQLite and a fresh
// MariaDB database and compares what the migrations built: tables, columns
// (type class, nullability, case sensitivity), primary keys and indexes.
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	// The differences that are meant, by the fact they concern (see
	// schemaFacts), with the reason. Any other difference fails the test,
	// and so does an entry here that no longer differs.
	lock := "controllers sharing a MySQL database (maybe through Galera nodes) take turns migrating " +
		"through this table (Migrate); an SQLite file has one controller"
	deliberate := map[string]string{
		"index group_members(group_id)": "InnoDB indexes every foreign key, making an index when none starts with " +
			"the column (the key to user_groups here); SQLite checks foreign keys without one",
		"table schema_migration_lock":           lock,
		"primary key schema_migration_lock":     lock,
		"column schema_migration_lock.id":       lock,
		"column schema_migration_lock.holder":   lock,
		"column schema_migration_lock.taken_at": lock,
	}
	lite, err := sql.Migrations(sql.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	my, err := sql.Migrations(sql.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(lite, my, func(a, b sql.Migration) bool { return a.Name == b.Name }) {
		t.Fatalf("migration files differ: sqlite %v, mysql %v", migrationNames(lite), migrationNames(my))
	}
	ctx := context.Background()
	liteCols, liteIdxs, err := sqliteSchema(ctx, services.OpenSQLite(t))
	if err != nil {
		t.Fatalf("read sqlite schema: %v", err)
	}
	myCols, myIdxs, err := mysqlSchema(ctx, services.OpenMariaDB(t))
	if err != nil {
		t.Fatalf("read mariadb schema: %v", err)
	}
	// MariaDB does not tell which index names a migration gave: those are
	// the ones SQLite has too, as it makes up names of its own for the rest.
	named := map[string]bool{}
	for _, ix := range liteIdxs {
		named[ix.table+"."+ix.name] = ix.named
	}
	for i, ix := range myIdxs {
		myIdxs[i].named = named[ix.table+"."+ix.name]
	}
	liteFacts, err := schemaFacts(liteCols, liteIdxs)
	if err != nil {
		t.Fatalf("sqlite schema: %v", err)
	}
	myFacts, err := schemaFacts(myCols, myIdxs)
	if err != nil {
		t.Fatalf("mariadb schema: %v", err)
	}
	if len(liteFacts) < 100 {
		t.Fatalf("only %d facts read from the sqlite schema: the reading is broken", len(liteFacts))
	}
	all := maps.Clone(liteFacts)
	maps.Copy(all, myFacts)
	for _, k := range slices.Sorted(maps.Keys(all)) {
		a, inLite := liteFacts[k]
		b, inMy := myFacts[k]
		if inLite && inMy && a == b {
			if _, ok := deliberate[k]; ok {
				t.Errorf("%s is listed as a deliberate difference but matches (%s): drop the entry", k, a)
			}
			continue
		}
		if _, ok := deliberate[k]; ok {
			continue
		}
		t.Errorf("%s: sqlite %s, mariadb %s", k, orAbsent(a, inLite), orAbsent(b, inMy))
	}
	for k := range deliberate {
		_, inLite := liteFacts[k]
		_, inMy := myFacts[k]
		if !inLite && !inMy {
			t.Errorf("%s is listed as a deliberate difference but is in neither schema: drop the entry", k)
		}
	}
}

func migrationNames(ms []sql.Migration) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

func orAbsent(v string, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return v
}

// column is one column as both dialects can describe it.
type column struct {
	table, name   string
	declared      string // the declared type, as the database reports it
	nullable      bool
	caseSensitive bool // text compares and unique-checks case-sensitively
	pkPos         int  // 1-based place in the primary key, 0 outside it
}

// index is one secondary index; named tells whether its name was given in a
// migration, rather than made up by the database for a UNIQUE constraint.
type index struct {
	table, name string
	named       bool
	unique      bool
	columns     []string
}

// schemaFacts describes a database as "what" → "how" pairs that mean the
// same on both dialects:
//
//	table T                → present
//	column T.C             → <type class> null|not null, case-sensitive|case-insensitive (text only)
//	primary key T          → C1,C2
//	index T.NAME           → unique|non-unique (C1,C2)    for indexes the migrations name
//	index T(C1,C2)         → unique|non-unique            for UNIQUE constraints and the database's own
func schemaFacts(cols []column, idxs []index) (map[string]string, error) {
	facts := map[string]string{}
	pk := map[string][]string{}
	for _, c := range cols {
		facts["table "+c.table] = "present"
		class, err := typeClass(c.declared)
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: %w", c.table, c.name, err)
		}
		v := class
		if c.nullable {
			v += " null"
		} else {
			v += " not null"
		}
		if class == "text" {
			if c.caseSensitive {
				v += ", case-sensitive"
			} else {
				v += ", case-insensitive"
			}
		}
		facts["column "+c.table+"."+c.name] = v
		if c.pkPos > 0 {
			key := pk[c.table]
			for len(key) < c.pkPos {
				key = append(key, "")
			}
			key[c.pkPos-1] = c.name
			pk[c.table] = key
		}
	}
	for table, key := range pk {
		facts["primary key "+table] = strings.Join(key, ",")
	}
	for _, ix := range idxs {
		kind := "non-unique"
		if ix.unique {
			kind = "unique"
		}
		cols := strings.Join(ix.columns, ",")
		if ix.named {
			facts["index "+ix.table+"."+ix.name] = kind + " (" + cols + ")"
		} else {
			facts["index "+ix.table+"("+cols+")"] = kind
		}
	}
	return facts, nil
}

// typeClass maps a declared type of either dialect to integer, real, text,
// blob or time.
func typeClass(declared string) (string, error) {
	t := strings.ToLower(declared)
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = t[:i]
	}
	switch strings.TrimSpace(t) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return "integer", nil
	case "real", "double", "float", "decimal", "numeric":
		return "real", nil
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		return "text", nil
	case "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary":
		return "blob", nil
	case "date", "time", "datetime", "timestamp":
		return "time", nil
	}
	return "", fmt.Errorf("type %q has no class here: add it", declared)
}

func sqliteSchema(ctx context.Context, db *sql.DB) ([]column, []index, error) {
	tables, err := queryStrings(ctx, db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return nil, nil, err
	}
	// SQLite compares text with BINARY unless a column says otherwise; no
	// migration does, and one that starts to must teach this test.
	if n, err := queryStrings(ctx, db, "SELECT name FROM sqlite_schema WHERE sql LIKE '%COLLATE%'"); err != nil || len(n) > 0 {
		return nil, nil, fmt.Errorf("collations set on %v (%v): read them here", n, err)
	}
	var cols []column
	var idxs []index
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, table)
		if err != nil {
			return nil, nil, err
		}
		var tableCols []column
		for rows.Next() {
			c := column{table: table, caseSensitive: true}
			var notNull bool
			if err := rows.Scan(&c.name, &c.declared, &notNull, &c.pkPos); err != nil {
				rows.Close()
				return nil, nil, err
			}
			c.nullable = !notNull
			tableCols = append(tableCols, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		// A lone INTEGER PRIMARY KEY is the rowid, which is never NULL.
		if pks := slices.DeleteFunc(slices.Clone(tableCols), func(c column) bool { return c.pkPos == 0 }); len(pks) == 1 && strings.EqualFold(pks[0].declared, "integer") {
			for i := range tableCols {
				if tableCols[i].pkPos == 1 {
					tableCols[i].nullable = false
				}
			}
		}
		cols = append(cols, tableCols...)
		list, err := db.QueryContext(ctx, `SELECT name, "unique", origin FROM pragma_index_list(?)`, table)
		if err != nil {
			return nil, nil, err
		}
		var tableIdxs []index
		for list.Next() {
			ix := index{table: table}
			var origin string
			if err := list.Scan(&ix.name, &ix.unique, &origin); err != nil {
				list.Close()
				return nil, nil, err
			}
			if origin == "pk" { // the primary key, read from table_info
				continue
			}
			ix.named = origin == "c" // CREATE INDEX, not a UNIQUE constraint
			tableIdxs = append(tableIdxs, ix)
		}
		list.Close()
		if err := list.Err(); err != nil {
			return nil, nil, err
		}
		for i := range tableIdxs {
			if tableIdxs[i].columns, err = queryStrings(ctx, db, "SELECT name FROM pragma_index_info(?) ORDER BY seqno", tableIdxs[i].name); err != nil {
				return nil, nil, err
			}
		}
		idxs = append(idxs, tableIdxs...)
	}
	return cols, idxs, nil
}

func mysqlSchema(ctx context.Context, db *sql.DB) ([]column, []index, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE = 'YES',
		COALESCE(c.COLLATION_NAME, '') NOT LIKE '%\_ci', COALESCE(k.ORDINAL_POSITION, 0)
		FROM information_schema.COLUMNS c
		LEFT JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = c.TABLE_SCHEMA
			AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
		WHERE c.TABLE_SCHEMA = DATABASE() ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`)
	if err != nil {
		return nil, nil, err
	}
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.declared, &c.nullable, &c.caseSensitive, &c.pkPos); err != nil {
			rows.Close()
			return nil, nil, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = db.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE = 0, COLUMN_NAME
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME <> 'PRIMARY'
		ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var idxs []index
	for rows.Next() {
		var ix index
		var col string
		if err := rows.Scan(&ix.table, &ix.name, &ix.unique, &col); err != nil {
			return nil, nil, err
		}
		if n := len(idxs); n > 0 && idxs[n-1].table == ix.table && idxs[n-1].name == ix.name {
			idxs[n-1].columns = append(idxs[n-1].columns, col)
			continue
		}
		ix.columns = []string{col}
		idxs = append(idxs, ix)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return cols, idxs, nil
}

func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
