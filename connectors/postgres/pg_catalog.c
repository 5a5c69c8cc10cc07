/*
 * pg_catalog.c - the PostgreSQL connector's catalog work, on its regular (non-replication)
 * connection: checking the server (version, wal_level, encoding), making sure the publication
 * covers the mapped tables and the slot exists (creating them when the config allows, otherwise
 * saying exactly what the DBA must run), describing tables, and filling in what a Relation
 * message does not carry (type names with modifiers, domain base types, primary key columns).
 *
 * Every identifier that goes into SQL text is quoted with PQescapeIdentifier and every value is
 * a query parameter; the conninfo itself is never printed (src->redacted is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/postgres/pg_int.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"

/* The catalog connection is used rarely (open, describe, a new table shape); when it was lost
 * meanwhile (server restart), reconnect it once. */
static int cat_alive(siphon_source_t *src, char *errbuf, size_t errsize)
{
    char msg[512];
    if (src->cat && PQstatus(src->cat) == CONNECTION_OK)
        return 0;
    if (!src->cat)
        return siphon_pg__cat_connect(src, errbuf, errsize);
    PQreset(src->cat);
    if (PQstatus(src->cat) == CONNECTION_OK)
        return 0;
    return siphon_err(errbuf, errsize, SIPHON_ECONN,
                      "could not reconnect to PostgreSQL (%s): %s", src->redacted,
                      siphon_pg__trim(PQerrorMessage(src->cat), msg, sizeof(msg)));
}

/* Run one parameterized statement; returns the result (caller PQclear()s) or NULL with errbuf
 * saying what failed (what: "read the slot ..."). */
static PGresult *query(siphon_source_t *src, const char *what, const char *sql, int nparams,
                       const char *const *params, int *rc, char *errbuf, size_t errsize)
{
    char msg[512];
    PGresult *res = PQexecParams(src->cat, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        *rc = 0;
        return res;
    }
    siphon_pg__trim(res ? PQresultErrorMessage(res) : PQerrorMessage(src->cat), msg, sizeof(msg));
    if (!msg[0])
        siphon_pg__trim(PQerrorMessage(src->cat), msg, sizeof(msg));
    *rc = PQstatus(src->cat) != CONNECTION_OK ? SIPHON_ECONN : SIPHON_EINVAL;
    siphon_err(errbuf, errsize, *rc, "could not %s: %s", what, msg);
    PQclear(res);
    return NULL;
}

static char *quote_ident(siphon_source_t *src, const char *s)
{
    return PQescapeIdentifier(src->cat, s, strlen(s));
}

int siphon_pg__cat_connect(siphon_source_t *src, char *errbuf, size_t errsize)
{
    const char *keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
    const char *vals[] = {src->conninfo, src->app_name, "UTF8", NULL};
    char msg[512];
    int rc;

    if (src->cat)
        PQfinish(src->cat);
    src->cat = PQconnectdbParams(keys, vals, 1);
    if (!src->cat)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not connect: out of memory");
    if (PQstatus(src->cat) != CONNECTION_OK)
        return siphon_err(errbuf, errsize, SIPHON_ECONN, "could not connect to PostgreSQL (%s): %s",
                          src->redacted, siphon_pg__trim(PQerrorMessage(src->cat), msg, sizeof(msg)));
    PGresult *res = query(src, "read the current database", "SELECT current_database()", 0, NULL,
                          &rc, errbuf, errsize);
    if (!res)
        return rc;
    free(src->dbname);
    src->dbname = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!src->dbname)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not connect: out of memory");
    src->server_version = PQserverVersion(src->cat);
    return 0;
}

int siphon_pg__cat_check_server(siphon_source_t *src, char *errbuf, size_t errsize)
{
    int rc;
    PGresult *res;

    if (src->server_version < 100000)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not use PostgreSQL %d.%d (%s): logical replication with pgoutput "
                          "needs PostgreSQL 10 or later",
                          src->server_version / 10000, src->server_version % 10000, src->redacted);

    if (!(res = query(src, "read wal_level", "SELECT current_setting('wal_level')", 0, NULL, &rc,
                      errbuf, errsize)))
        return rc;
    if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not use logical replication on database \"%s\": wal_level is \"%s\"; "
                        "set wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET "
                        "wal_level = logical) and restart PostgreSQL",
                        src->dbname, PQgetvalue(res, 0, 0));
        PQclear(res);
        return rc;
    }
    PQclear(res);

    /* Checked here because a walsender refusing the role only says so on a failed connection,
     * which looks like any other connection failure (and would be retried forever). */
    if (!(res = query(src, "read the role's attributes",
                      "SELECT rolreplication OR rolsuper, current_user FROM pg_catalog.pg_roles "
                      "WHERE rolname = current_user",
                      0, NULL, &rc, errbuf, errsize)))
        return rc;
    if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] != 't') {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not use logical replication as role \"%s\": it lacks the "
                        "REPLICATION attribute; a DBA runs: ALTER ROLE \"%s\" REPLICATION;",
                        PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 1));
        PQclear(res);
        return rc;
    }
    PQclear(res);

    if (!(res = query(src, "read the database encoding", "SELECT current_setting('server_encoding')",
                      0, NULL, &rc, errbuf, errsize)))
        return rc;
    src->st.sql_ascii = strcmp(PQgetvalue(res, 0, 0), "SQL_ASCII") == 0;
    PQclear(res);
    if (src->st.sql_ascii)
        siphon_log(SIPHON_LOG_NOTICE, "pg",
                   "database \"%s\" uses SQL_ASCII: text values are passed on as raw bytes "
                   "(mappings must say which charset to convert them from)",
                   src->dbname);
    return 0;
}

/* ---- publication ---- */

typedef struct tinfo {
    const siphon_table_ref_t *ref;
    char *quoted;     /* "schema"."table" (PQfreemem'd pieces joined with malloc) */
    int published;
    int identity_ok;  /* UPDATE/DELETE keep working once the table is published */
} tinfo_t;

static char *quote_table(siphon_source_t *src, const char *schema, const char *table)
{
    char *qs = quote_ident(src, schema), *qt = quote_ident(src, table), *out = NULL;
    if (qs && qt) {
        size_t len = strlen(qs) + strlen(qt) + 2;
        if ((out = malloc(len)))
            snprintf(out, len, "%s.%s", qs, qt);
    }
    PQfreemem(qs);
    PQfreemem(qt);
    return out;
}

static const char *schema_of(const siphon_table_ref_t *t)
{
    return t->schema && t->schema[0] ? t->schema : "public";
}

int siphon_pg__cat_ensure_publication(siphon_source_t *src, const siphon_table_ref_t *tables,
                                      int ntables, char *errbuf, size_t errsize)
{
    int rc = 0, exists = 0, alltables = 0, nmissing = 0, nbad = 0;
    PGresult *res = NULL;
    tinfo_t *ti = calloc((size_t)(ntables ? ntables : 1), sizeof(*ti));
    siphon_buf_t list = {0}, sql = {0};
    char *qpub = NULL;

    if (!ti || !(qpub = quote_ident(src, src->publication))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not check the publication: out of memory");
        goto out;
    }

    {
        const char *p[] = {src->publication};
        if (!(res = query(src, "read the publication",
                          "SELECT puballtables, pubupdate AND pubdelete FROM pg_catalog.pg_publication "
                          "WHERE pubname = $1",
                          1, p, &rc, errbuf, errsize)))
            goto out;
        if (PQntuples(res) == 1) {
            exists = 1;
            alltables = PQgetvalue(res, 0, 0)[0] == 't';
            if (PQgetvalue(res, 0, 1)[0] != 't')
                siphon_log(SIPHON_LOG_WARNING, "pg",
                           "publication \"%s\" does not publish both UPDATE and DELETE: those "
                           "changes will not reach Siphon",
                           src->publication);
        }
        PQclear(res);
        res = NULL;
    }

    for (int i = 0; i < ntables; i++) {
        const char *p[] = {schema_of(&tables[i]), tables[i].table, src->publication};
        ti[i].ref = &tables[i];
        if (!(ti[i].quoted = quote_table(src, p[0], p[1]))) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not check tables: out of memory");
            goto out;
        }
        if (!(res = query(src, "read a mapped table",
                          "SELECT c.relkind, c.relreplident,"
                          " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"
                          "   AND (CASE c.relreplident WHEN 'd' THEN i.indisprimary"
                          "        WHEN 'i' THEN i.indisreplident ELSE false END)),"
                          " EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables pt"
                          "   WHERE pt.pubname = $3 AND pt.schemaname = n.nspname"
                          "   AND pt.tablename = c.relname)"
                          " FROM pg_catalog.pg_class c"
                          " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE n.nspname = $1 AND c.relname = $2",
                          3, p, &rc, errbuf, errsize)))
            goto out;
        if (PQntuples(res) != 1) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not find table %s in database \"%s\" (%s), which the mappings "
                            "read: create it, or fix the mapping's source.table",
                            ti[i].quoted, src->dbname, src->redacted);
            goto out;
        }
        char kind = PQgetvalue(res, 0, 0)[0], ident = PQgetvalue(res, 0, 1)[0];
        if (kind != 'r' && kind != 'p') {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not publish %s in database \"%s\": it is not a table (relkind "
                            "'%c'); logical replication only streams tables",
                            ti[i].quoted, src->dbname, kind);
            goto out;
        }
        ti[i].identity_ok = ident == 'f' || PQgetvalue(res, 0, 2)[0] == 't';
        ti[i].published = alltables || PQgetvalue(res, 0, 3)[0] == 't';
        PQclear(res);
        res = NULL;
        if (!ti[i].published) {
            nmissing++;
            if (!ti[i].identity_ok)
                nbad++;
            siphon_buf_printf(&list, "%s%s", list.len ? ", " : "", ti[i].quoted);
        } else if (!ti[i].identity_ok) {
            siphon_log(SIPHON_LOG_WARNING, "pg",
                       "table %s has no usable replica identity: UPDATE and DELETE on it fail "
                       "while it is in publication \"%s\"; add a primary key or run ALTER TABLE "
                       "%s REPLICA IDENTITY FULL",
                       ti[i].quoted, src->publication, ti[i].quoted);
        }
    }

    /* Publishing a table without a replica identity would make the ERP's own UPDATE and
     * DELETE statements on it fail: never do that on our own. */
    if (nbad) {
        for (int i = 0; i < ntables; i++) {
            if (ti[i].published || ti[i].identity_ok)
                continue;
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not add table %s to publication \"%s\": it has no primary key "
                            "and no replica identity, so UPDATE and DELETE on it would fail once "
                            "published; add a primary key, or run ALTER TABLE %s REPLICA "
                            "IDENTITY FULL (every change then carries the whole old row)",
                            ti[i].quoted, src->publication, ti[i].quoted);
            goto out;
        }
    }

    if (exists && nmissing == 0)
        goto out;
    if (nmissing && !list.data) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not build SQL: out of memory");
        goto out;
    }

    if (!exists)
        siphon_buf_printf(&sql, "CREATE PUBLICATION %s%s%s", qpub, list.len ? " FOR TABLE " : "",
                          list.len ? (const char *)list.data : "");
    else
        siphon_buf_printf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", qpub, (const char *)list.data);
    if (!sql.data) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not build SQL: out of memory");
        goto out;
    }

    if (!src->create_publication) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "%s %s in database \"%s\" and create_publication is false; ask the DBA to "
                        "run: %s;",
                        exists ? "could not stream tables that are missing from publication"
                               : "could not find publication",
                        qpub, src->dbname, (const char *)sql.data);
        goto out;
    }
    if (!(res = query(src, exists ? "add tables to the publication" : "create the publication",
                      (const char *)sql.data, 0, NULL, &rc, errbuf, errsize))) {
        char why[512];
        snprintf(why, sizeof(why), "%s", errbuf);
        rc = siphon_err(errbuf, errsize, rc,
                        "%s; the role needs CREATE on database \"%s\" and ownership of the tables, "
                        "or a DBA runs: %s;",
                        why, src->dbname, (const char *)sql.data);
        goto out;
    }
    siphon_log(SIPHON_LOG_NOTICE, "pg", "%s: %s", exists ? "added tables to the publication"
                                                          : "created the publication",
               (const char *)sql.data);
out:
    PQclear(res);
    if (ti)
        for (int i = 0; i < ntables; i++)
            free(ti[i].quoted);
    free(ti);
    PQfreemem(qpub);
    siphon_buf_free(&list);
    siphon_buf_free(&sql);
    return rc;
}

/* ---- slot ---- */

int siphon_pg__cat_ensure_slot(siphon_source_t *src, char *errbuf, size_t errsize)
{
    int rc;
    const char *p[] = {src->slot};
    PGresult *res = query(src, "read the replication slot",
                          src->server_version >= 130000
                              ? "SELECT plugin, slot_type, database, active_pid, wal_status "
                                "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1"
                              : "SELECT plugin, slot_type, database, active_pid, NULL "
                                "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                          1, p, &rc, errbuf, errsize);
    if (!res)
        return rc;
    if (PQntuples(res) == 1) {
        const char *plugin = PQgetvalue(res, 0, 0), *type = PQgetvalue(res, 0, 1);
        const char *db = PQgetvalue(res, 0, 2), *status = PQgetvalue(res, 0, 4);
        if (strcmp(type, "logical") != 0 || strcmp(plugin, "pgoutput") != 0)
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not use replication slot \"%s\": it is a %s slot with plugin "
                            "\"%s\", Siphon needs a logical slot with pgoutput; configure another "
                            "slot name, or drop it with SELECT pg_drop_replication_slot('%s')",
                            src->slot, type, plugin, src->slot);
        else if (strcmp(db, src->dbname) != 0)
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not use replication slot \"%s\": it belongs to database \"%s\", "
                            "not \"%s\"; configure another slot name",
                            src->slot, db, src->dbname);
        else if (strcmp(status, "lost") == 0)
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not use replication slot \"%s\": the server removed WAL it "
                            "still needed (wal_status lost), so changes are missing; drop it with "
                            "SELECT pg_drop_replication_slot('%s'), let Siphon create it again and "
                            "take a new snapshot",
                            src->slot, src->slot);
        else if (!PQgetisnull(res, 0, 3))
            siphon_log(SIPHON_LOG_WARNING, "pg",
                       "replication slot \"%s\" is in use by process %s: Siphon waits until it "
                       "is free (another Siphon running with the same slot?)",
                       src->slot, PQgetvalue(res, 0, 3));
        PQclear(res);
        return rc;
    }
    PQclear(res);

    if (!src->create_slot)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not find replication slot \"%s\" in database \"%s\" and "
                          "create_slot is false; ask the DBA to run: SELECT "
                          "pg_create_logical_replication_slot('%s', 'pgoutput');",
                          src->slot, src->dbname, src->slot);
    siphon_log(SIPHON_LOG_INFO, "pg",
               "creating replication slot \"%s\" (waits for transactions open right now to end)",
               src->slot);
    if (!(res = query(src, "create the replication slot",
                      "SELECT lsn FROM pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')",
                      1, p, &rc, errbuf, errsize))) {
        char why[512];
        snprintf(why, sizeof(why), "%s", errbuf);
        return siphon_err(errbuf, errsize, rc,
                          "%s; the role needs the REPLICATION attribute (ALTER ROLE ... "
                          "REPLICATION), or a DBA runs: SELECT "
                          "pg_create_logical_replication_slot('%s', 'pgoutput');",
                          why, src->slot);
    }
    siphon_log(SIPHON_LOG_NOTICE, "pg", "created replication slot \"%s\" at %s", src->slot,
               PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* ---- describe and enrich ---- */

int siphon_pg__cat_describe(siphon_source_t *src, const char *schema, const char *table,
                            const siphon_relation_t **out, char *errbuf, size_t errsize)
{
    int rc;
    PGresult *res = NULL;
    pg_rel_t *r = NULL;
    char oidtxt[16];
    const char **names = NULL, **tnames = NULL;
    uint32_t *oids = NULL, *bases = NULL;
    int32_t *typmods = NULL;
    int *keys = NULL, *pkeys = NULL;

    if ((rc = cat_alive(src, errbuf, errsize)) < 0)
        return rc;
    const char *p[] = {schema, table};
    if (!(res = query(src, "describe a table",
                      "SELECT c.oid, c.relreplident FROM pg_catalog.pg_class c"
                      " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                      2, p, &rc, errbuf, errsize)))
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return siphon_err(errbuf, errsize, SIPHON_ENOTFOUND,
                          "could not find table \"%s.%s\" in database \"%s\": create it, or fix "
                          "the mapping's source.table",
                          schema, table, src->dbname);
    }
    uint32_t oid = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    char replident = PQgetvalue(res, 0, 1)[0];
    snprintf(oidtxt, sizeof(oidtxt), "%u", (unsigned)oid);
    PQclear(res);

    /* Columns as pgoutput sends them: not dropped, not generated, in attnum order. */
    const char *p2[] = {oidtxt};
    if (!(res = query(src, "describe a table's columns",
                      src->server_version >= 120000
                          ? "SELECT a.attname, a.atttypid, a.atttypmod,"
                            " pg_catalog.format_type(a.atttypid, a.atttypmod),"
                            " COALESCE(NULLIF(t.typbasetype, 0), a.atttypid),"
                            " COALESCE(a.attnum = ANY (pk.indkey::int2[]), false),"
                            " COALESCE(a.attnum = ANY (ri.indkey::int2[]), false)"
                            " FROM pg_catalog.pg_attribute a"
                            " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
                            " LEFT JOIN pg_catalog.pg_index pk"
                            "   ON pk.indrelid = a.attrelid AND pk.indisprimary"
                            " LEFT JOIN pg_catalog.pg_index ri"
                            "   ON ri.indrelid = a.attrelid AND ri.indisreplident"
                            " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
                            " AND a.attgenerated = '' ORDER BY a.attnum"
                          : "SELECT a.attname, a.atttypid, a.atttypmod,"
                            " pg_catalog.format_type(a.atttypid, a.atttypmod),"
                            " COALESCE(NULLIF(t.typbasetype, 0), a.atttypid),"
                            " COALESCE(a.attnum = ANY (pk.indkey::int2[]), false),"
                            " COALESCE(a.attnum = ANY (ri.indkey::int2[]), false)"
                            " FROM pg_catalog.pg_attribute a"
                            " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
                            " LEFT JOIN pg_catalog.pg_index pk"
                            "   ON pk.indrelid = a.attrelid AND pk.indisprimary"
                            " LEFT JOIN pg_catalog.pg_index ri"
                            "   ON ri.indrelid = a.attrelid AND ri.indisreplident"
                            " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
                            " ORDER BY a.attnum",
                      1, p2, &rc, errbuf, errsize)))
        return rc;
    int n = PQntuples(res), m = n ? n : 1;
    names = calloc((size_t)m, sizeof(*names));
    tnames = calloc((size_t)m, sizeof(*tnames));
    oids = calloc((size_t)m, sizeof(*oids));
    bases = calloc((size_t)m, sizeof(*bases));
    typmods = calloc((size_t)m, sizeof(*typmods));
    keys = calloc((size_t)m, sizeof(*keys));
    pkeys = calloc((size_t)m, sizeof(*pkeys));
    if (!names || !tnames || !oids || !bases || !typmods || !keys || !pkeys) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not describe a table: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        names[i] = PQgetvalue(res, i, 0);
        oids[i] = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
        typmods[i] = (int32_t)strtol(PQgetvalue(res, i, 2), NULL, 10);
        tnames[i] = PQgetvalue(res, i, 3);
        bases[i] = (uint32_t)strtoul(PQgetvalue(res, i, 4), NULL, 10);
        pkeys[i] = PQgetvalue(res, i, 5)[0] == 't';
        /* The key flags pgoutput puts on the Relation message for this replica identity. */
        keys[i] = replident == 'f'   ? 1
                  : replident == 'd' ? pkeys[i]
                  : replident == 'i' ? PQgetvalue(res, i, 6)[0] == 't'
                                     : 0;
    }
    if (!(r = siphon_pg__rel_new(oid, schema, table, replident, n, names, oids, typmods, keys,
                                 pkeys, tnames, bases, src->st.sql_ascii))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not describe a table: out of memory");
        goto out;
    }
    pg_rel_t *same = siphon_pg__stream_find_shape(&src->st, r);
    if (same) {
        siphon_pg__rel_free(r);
        r = same;
    } else {
        siphon_pg__stream_adopt(&src->st, r);
    }
    *out = &r->rel;
    rc = 0;
out:
    PQclear(res);
    free(names);
    free(tnames);
    free(oids);
    free(bases);
    free(typmods);
    free(keys);
    free(pkeys);
    return rc;
}

int siphon_pg__cat_enrich(void *opaque, pg_rel_t *r, char *errbuf, size_t errsize)
{
    siphon_source_t *src = opaque;
    siphon_buf_t oids = {0}, mods = {0};
    PGresult *res = NULL;
    char oidtxt[16];
    int rc;

    if ((rc = cat_alive(src, errbuf, errsize)) < 0)
        return rc;
    siphon_buf_appendc(&oids, '{');
    siphon_buf_appendc(&mods, '{');
    for (int i = 0; i < r->rel.ncols; i++) {
        siphon_buf_printf(&oids, "%s%u", i ? "," : "", (unsigned)r->rel.cols[i].type_oid);
        siphon_buf_printf(&mods, "%s%d", i ? "," : "", (int)r->rel.cols[i].typmod);
    }
    siphon_buf_appendc(&oids, '}');
    siphon_buf_appendc(&mods, '}');
    if (siphon_buf_appendc(&oids, '\0') < 0 || siphon_buf_appendc(&mods, '\0') < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    {
        const char *p[] = {(const char *)oids.data, (const char *)mods.data};
        if (!(res = query(src, "read column types",
                          "SELECT pg_catalog.format_type(u.o, u.m), "
                          "COALESCE(NULLIF(t.typbasetype, 0), u.o)"
                          " FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, i)"
                          " LEFT JOIN pg_catalog.pg_type t ON t.oid = u.o ORDER BY u.i",
                          2, p, &rc, errbuf, errsize)))
            goto out;
        if (PQntuples(res) != r->rel.ncols) {
            rc = siphon_err(errbuf, errsize, SIPHON_EPROTO, "column types: %d rows for %d columns",
                            PQntuples(res), r->rel.ncols);
            goto out;
        }
        for (int i = 0; i < r->rel.ncols; i++) {
            if (!PQgetisnull(res, i, 0) &&
                (rc = siphon_pg__rel_set_type_name(r, i, PQgetvalue(res, i, 0))) < 0)
                goto out;
            r->base_oids[i] = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
        }
        PQclear(res);
        res = NULL;
    }
    snprintf(oidtxt, sizeof(oidtxt), "%u", (unsigned)r->rel.id);
    {
        const char *p[] = {oidtxt};
        if (!(res = query(src, "read the primary key",
                          "SELECT a.attname FROM pg_catalog.pg_index i"
                          " JOIN pg_catalog.pg_attribute a"
                          "   ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])"
                          " WHERE i.indrelid = $1 AND i.indisprimary",
                          1, p, &rc, errbuf, errsize)))
            goto out;
        for (int i = 0; i < r->rel.ncols; i++) {
            r->rel.cols[i].is_pkey = 0;
            for (int k = 0; k < PQntuples(res); k++)
                if (strcmp(PQgetvalue(res, k, 0), r->rel.cols[i].name) == 0)
                    r->rel.cols[i].is_pkey = 1;
        }
    }
    rc = 0;
out:
    PQclear(res);
    siphon_buf_free(&oids);
    siphon_buf_free(&mods);
    return rc;
}
