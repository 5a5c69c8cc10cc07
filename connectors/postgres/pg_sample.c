/*
 * pg_sample.c - the PostgreSQL connector without replication: a catalog connection only, for
 * `siphon validate` (describe the live tables) and `siphon preview` (read a few rows with a
 * plain SELECT and decode them exactly as the stream would).
 *
 * Opening creates nothing on the server (no slot, no publication) and needs only CONNECT and
 * SELECT: a DBA can preview mappings against production without touching replication. The
 * rows of a sample are read in text format with the same session settings the replication
 * session forces (PG_SESSION_OPTIONS), so siphon_pg__decode() sees the same text it sees from
 * pgoutput; in a SQL_ASCII database text stays raw bytes (RAWTEXT), as in the stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "connectors/postgres/pg_int.h"
#include "connectors/postgres/postgres.h"
#include "core/error.h"
#include "core/log.h"

/* A conninfo with a connect_timeout of 10 s unless it has one: validate must not hang on an
 * unreachable host. Caller frees. */
static char *with_timeout(const char *conninfo)
{
    if (strstr(conninfo, "connect_timeout"))
        return strdup(conninfo);
    size_t n = strlen(conninfo) + 32;
    char *s = malloc(n);
    if (!s)
        return NULL;
    if (!strncmp(conninfo, "postgres://", 11) || !strncmp(conninfo, "postgresql://", 13))
        snprintf(s, n, "%s%sconnect_timeout=10", conninfo, strchr(conninfo, '?') ? "&" : "?");
    else
        snprintf(s, n, "%s%sconnect_timeout=10", conninfo, conninfo[0] ? " " : "");
    return s;
}

int siphon_pg__open_catalog(siphon_source_t **out, const siphon_config_t *cfg, char *errbuf,
                            size_t errsize)
{
    siphon_source_t *src = NULL;
    PGresult *res = NULL;
    char msg[512];
    int rc;

    if (!out || !cfg)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not open the postgres catalog: bad arguments");
    *out = NULL;
    if (!(src = calloc(1, sizeof(*src))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    siphon_pg__stream_init(&src->st);
    siphon_arena_init(&src->sample_mem, 0);
    src->st.enrich = siphon_pg__cat_enrich;
    src->st.enrich_opaque = src;
    src->conninfo = with_timeout(cfg->source.conninfo ? cfg->source.conninfo : "");
    src->name = strdup(cfg->name ? cfg->name : "siphon");
    src->slot = strdup(cfg->source.slot ? cfg->source.slot : "");
    src->publication = strdup(cfg->source.publication ? cfg->source.publication : "");
    if (src->name)
        src->app_name = malloc(strlen(src->name) + sizeof("siphon--catalog"));
    if (!src->conninfo || !src->name || !src->slot || !src->publication || !src->app_name) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    sprintf(src->app_name, "siphon-%s-catalog", src->name);
    siphon_config_redact(src->conninfo, src->redacted, sizeof(src->redacted));
    if ((rc = siphon_pg__cat_connect(src, errbuf, errsize)) < 0)
        goto fail;
    res = PQexec(src->cat, "SELECT current_setting('server_encoding')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                        "could not read the encoding of database \"%s\" (%s): %s", src->dbname,
                        src->redacted, siphon_pg__trim(PQerrorMessage(src->cat), msg, sizeof(msg)));
        goto fail;
    }
    src->st.sql_ascii = strcmp(PQgetvalue(res, 0, 0), "SQL_ASCII") == 0;
    src->st.database = src->dbname;
    PQclear(res);
    *out = src;
    return 0;
fail:
    PQclear(res);
    siphon_postgres_source.close(src);
    return rc;
}

int siphon_pg__sample(siphon_source_t *src, const char *schema, const char *table, int limit,
                      const siphon_relation_t **rel, const siphon_row_t **rows, int *nrows,
                      char *errbuf, size_t errsize)
{
    const siphon_relation_t *r = NULL;
    siphon_buf_t sql = {0};
    PGresult *res = NULL;
    char msg[512];
    int rc;

    if (!src || !table || !rel || !rows || !nrows || limit < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not sample a table: bad arguments");
    *rows = NULL;
    *nrows = 0;
    if (!schema || !schema[0])
        schema = "public";
    if ((rc = siphon_pg__cat_describe(src, schema, table, &r, errbuf, errsize)) < 0)
        return rc;
    const pg_rel_t *pr = (const pg_rel_t *)r; /* describe returns &pg_rel_t.rel, its first member */

    if (!src->sample_session) {
        /* In a SQL_ASCII database the server would check that text is valid in the client's
         * encoding (UTF8) before sending it: ask for the bytes as they are, as pgoutput sends
         * them. */
        res = PQexec(src->cat, src->st.sql_ascii
                                   ? "SET datestyle = ISO, YMD; SET intervalstyle = postgres; "
                                     "SET extra_float_digits = 3; SET TimeZone = 'UTC'; "
                                     "SET bytea_output = hex; SET client_encoding = 'SQL_ASCII'"
                                   : "SET datestyle = ISO, YMD; SET intervalstyle = postgres; "
                                     "SET extra_float_digits = 3; SET TimeZone = 'UTC'; "
                                     "SET bytea_output = hex");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                            "could not set up the session to read %s.%s: %s", schema, table,
                            siphon_pg__trim(PQerrorMessage(src->cat), msg, sizeof(msg)));
            goto out;
        }
        PQclear(res);
        res = NULL;
        src->sample_session = 1;
    }
    siphon_buf_printf(&sql, "SELECT ");
    for (int i = 0; i < r->ncols; i++) {
        char *q = PQescapeIdentifier(src->cat, r->cols[i].name, strlen(r->cols[i].name));
        if (!q) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        siphon_buf_printf(&sql, "%s%s", i ? ", " : "", q);
        PQfreemem(q);
    }
    if (r->ncols == 0)
        siphon_buf_printf(&sql, "1");
    {
        char *qs = PQescapeIdentifier(src->cat, schema, strlen(schema));
        char *qt = PQescapeIdentifier(src->cat, table, strlen(table));
        if (!qs || !qt) {
            PQfreemem(qs);
            PQfreemem(qt);
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        siphon_buf_printf(&sql, " FROM %s.%s LIMIT %d", qs, qt, limit);
        PQfreemem(qs);
        PQfreemem(qt);
    }
    if (siphon_buf_appendc(&sql, 0) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    res = PQexec(src->cat, (const char *)sql.data);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = siphon_err(errbuf, errsize,
                        PQstatus(src->cat) == CONNECTION_OK ? SIPHON_EINVAL : SIPHON_ECONN,
                        "could not read rows of %s.%s: %s", schema, table,
                        siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg)));
        goto out;
    }
    siphon_arena_reset(&src->sample_mem);
    int n = PQntuples(res);
    siphon_row_t *out = siphon_arena_alloc(&src->sample_mem, sizeof(siphon_row_t) * (size_t)(n ? n : 1));
    if (!out) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        out[i].ncols = r->ncols;
        out[i].vals = siphon_arena_alloc(&src->sample_mem,
                                         sizeof(siphon_value_t) * (size_t)(r->ncols ? r->ncols : 1));
        if (!out[i].vals) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        for (int c = 0; c < r->ncols; c++) {
            siphon_value_t *v = &out[i].vals[c];
            memset(v, 0, sizeof(*v));
            if (PQgetisnull(res, i, c)) {
                v->type = SIPHON_V_NULL;
                continue;
            }
            size_t len = (size_t)PQgetlength(res, i, c);
            char *p = siphon_arena_strndup(&src->sample_mem, PQgetvalue(res, i, c), len);
            char why[256];
            if (!p) {
                rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
                goto out;
            }
            if (siphon_pg__decode(v, pr->kinds[c], p, len, why, sizeof(why)) < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                                "could not decode column \"%s\" of %s.%s: %s", r->cols[c].name,
                                schema, table, why);
                goto out;
            }
        }
    }
    src->sample_rows = out;
    *rel = r;
    *rows = out;
    *nrows = n;
    rc = 0;
out:
    PQclear(res);
    siphon_buf_free(&sql);
    return rc;
}
