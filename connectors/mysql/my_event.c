/*
 * my_event.c - the binlog event parser: one event at a time (the 19-byte common header, the
 * body, and the CRC32 when the server checksums events) into the records of the current batch,
 * with the table-map cache and the relations. No server is needed: the unit tests feed it
 * events built by hand, in MariaDB's and MySQL's formats.
 *
 * Design. A binlog is a sequence of event groups (transactions). The parser's states:
 *
 *     IDLE --[GTID event (MariaDB 162, MySQL 33/34) | "BEGIN" query]--> IN GROUP
 *     IN GROUP --[TABLE_MAP]--> (cache: table_id -> relation version, or "not mapped")
 *     IN GROUP --[ROWS of a mapped table]--> BEGIN record (first time) + one CHANGE per row
 *     IN GROUP --[XID | "COMMIT" | "ROLLBACK" | XA_PREPARE | the one statement of a
 *                 standalone group (DDL)]--> IDLE, emitting COMMIT (a BEGIN was emitted) or
 *                 POSITION (nothing mapped: the position still moves, so an ERP whose
 *                 traffic is all filtered out still advances)
 *     a DDL statement --> catalog definitions and cached table maps are stale (ddl_gen + 1)
 *     IN GROUP --[connection lost, after its BEGIN record]--> IDLE, cut group noted
 *     IDLE --[the noted group starts again]--> IN GROUP, no second BEGIN, its first changes
 *                 passed over (decoded aside, not kept), then the rest and its COMMIT
 *     IDLE --[another group starts while one is noted]--> RESET record, IN GROUP
 *
 * A lost connection does not make a group's changes come twice: the next connection starts at
 * the end of the last complete group (MariaDB: its GTID state; MySQL: file:offset), so the first
 * group it sends is the one that was cut, with the same events; the stream remembers the
 * group's BEGIN position and how many of its changes it had added to batches (records of a
 * batch next() has not taken yet are delivered all the same), matches the group by that
 * position when it starts again and passes over that many changes. A different group first
 * (the cut one was incomplete in the binlog, e.g. after a server crash) abandons it with a
 * RESET record, as a new GTID inside a group does.
 *
 * Positions only move at a group's end (see my_int.h for their text forms). The BEGIN
 * record is emitted lazily, at the group's first mapped row, so that a group whose rows are all
 * filtered out costs one POSITION record (and consecutive ones in a batch collapse into one).
 *
 * Relations: a TABLE_MAP names the table, its column types and metadata; with
 * binlog_row_metadata=FULL also the column names, signedness, charsets, ENUM/SET values and
 * primary key. Without FULL, what is missing comes from the catalog (the tabledef callback),
 * read again after every DDL statement seen in the binlog, and checked against the map's
 * types (a mismatch means the table changed after this part of the binlog was written: a
 * fatal error that says to set binlog_row_metadata=FULL). An identical shape keeps its version
 * (mappings bind once per version); versions are freed only with the stream.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mysql.h>

#include "connectors/mysql/my_int.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

/* Process-wide so a (relation, version) pair names one shape; far above the Postgres
 * connector's numbers in case both ever run in one process. */
static atomic_uint_fast64_t my_version_seq = (uint64_t)1 << 48;

#define MY_TMAPS_MAX 4096

/* ---- batches ---- */

void siphon_my__batch_init(my_batch_t *b)
{
    memset(b, 0, sizeof(*b));
    siphon_arena_init(&b->arena, 0);
}

void siphon_my__batch_reset(my_batch_t *b)
{
    siphon_arena_reset(&b->arena);
    b->n = 0;
    b->bytes = 0;
    b->gen++;
}

void siphon_my__batch_destroy(my_batch_t *b)
{
    siphon_arena_destroy(&b->arena);
    free(b->recs);
    memset(b, 0, sizeof(*b));
}

siphon_change_t *siphon_my__batch_add(my_batch_t *b)
{
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 256;
        siphon_change_t *r = realloc(b->recs, (size_t)cap * sizeof(*r));
        if (!r)
            return NULL;
        b->recs = r;
        b->cap = cap;
    }
    siphon_change_t *c = &b->recs[b->n++];
    memset(c, 0, sizeof(*c));
    return c;
}

/* DECIMAL(p,s) as a column's typmod in PostgreSQL's numeric form, ((p << 16) | s) + 4, which
 * is how the mapping module tells whole-number decimals (scale 0) from others; -1 for other
 * types. */
static int32_t decimal_typmod(const my_col_t *c)
{
    return c->type == MYT_NEWDECIMAL ? (int32_t)((((uint32_t)c->prec << 16) | c->scale) + 4) : -1;
}

/* ---- a bounded reader over an event body ---- */

typedef struct rd {
    const uint8_t *p, *end;
    int bad;
} rd_t;

static uint64_t rd_le(rd_t *r, int n)
{
    if (r->bad || r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | r->p[i];
    r->p += n;
    return v;
}

static const uint8_t *rd_bytes(rd_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *s = r->p;
    r->p += n;
    return s;
}

/* MySQL's length-encoded integer. */
static uint64_t rd_lenenc(rd_t *r)
{
    uint64_t b = rd_le(r, 1);
    if (b < 0xFB)
        return b;
    if (b == 0xFC)
        return rd_le(r, 2);
    if (b == 0xFD)
        return rd_le(r, 3);
    if (b == 0xFE)
        return rd_le(r, 8);
    r->bad = 1;
    return 0;
}

static size_t rd_left(const rd_t *r)
{
    return r->bad ? 0 : (size_t)(r->end - r->p);
}

/* ---- stream lifecycle ---- */

typedef struct my_defcache {
    char *db, *table;
    int gen;
    int found;
    my_tabledef_t td;
    struct my_defcache *next;
} my_defcache_t;

/* The catalog cache hangs off the stream through this pointer (kept out of my_int.h: only
 * this file reads it). */
static my_defcache_t **defcache_of(my_stream_t *st)
{
    return (my_defcache_t **)&st->tabledef_opaque_cache;
}

void siphon_my__stream_init(my_stream_t *st)
{
    st->last_event_ms = siphon_clock_now_ms();
    siphon_my__batch_init(&st->pass_over);
}

static void rel_free(my_rel_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->rel.ncols; i++) {
        free(r->rel.cols[i].name);
        free(r->rel.cols[i].type_name);
        if (r->cols)
            siphon_my__col_free(&r->cols[i]);
    }
    free(r->rel.cols);
    free(r->cols);
    free(r->rel.schema);
    free(r->rel.name);
    free(r);
}

static void tmaps_clear(my_stream_t *st)
{
    for (int i = 0; i < st->captmaps; i++)
        free(st->tmaps[i].body);
    free(st->tmaps);
    st->tmaps = NULL;
    st->ntmaps = st->captmaps = 0;
}

void siphon_my__tabledef_free(my_tabledef_t *td)
{
    if (!td)
        return;
    for (int i = 0; i < td->ncols; i++) {
        free(td->names ? td->names[i] : NULL);
        free(td->type_names ? td->type_names[i] : NULL);
        free(td->data_types ? td->data_types[i] : NULL);
        free(td->csnames ? td->csnames[i] : NULL);
        if (td->syms && td->syms[i]) {
            for (int k = 0; k < td->nsyms[i]; k++)
                free(td->syms[i][k]);
            free(td->syms[i]);
        }
        free(td->symlens ? td->symlens[i] : NULL);
    }
    free(td->names);
    free(td->type_names);
    free(td->data_types);
    free(td->is_unsigned);
    free(td->is_pkey);
    free(td->nullable);
    free(td->csnames);
    free(td->json);
    free(td->nsyms);
    free(td->syms);
    free(td->symlens);
    free(td->octets);
    free(td->prec);
    free(td->scale);
    memset(td, 0, sizeof(*td));
}

void siphon_my__stream_destroy(my_stream_t *st)
{
    for (my_rel_t *r = st->rels, *n; r; r = n) {
        n = r->next;
        rel_free(r);
    }
    st->rels = NULL;
    tmaps_clear(st);
    for (int i = 0; i < st->nrelnames; i++)
        free(st->relnames[i]);
    free(st->relnames);
    st->relnames = NULL;
    st->nrelnames = st->caprelnames = 0;
    for (my_iconv_t *e = st->iconvs, *n; e; e = n) {
        n = e->next;
        iconv_close(e->cd);
        free(e);
    }
    st->iconvs = NULL;
    for (my_defcache_t *d = *defcache_of(st), *n; d; d = n) {
        n = d->next;
        free(d->db);
        free(d->table);
        siphon_my__tabledef_free(&d->td);
        free(d);
    }
    st->tabledef_opaque_cache = NULL;
    siphon_my__gtid_free(&st->state);
    siphon_my__gtid_free(&st->skip);
    siphon_my__batch_destroy(&st->pass_over);
}

/* ---- positions ---- */

static uint64_t pos_num(const my_stream_t *st)
{
    return (st->file_seq << 32) | (st->offset & 0xFFFFFFFFu);
}

void siphon_my__stream_position(const my_stream_t *st, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    if (st->mode == MY_MODE_FILE) {
        if (st->file[0])
            snprintf(buf, size, "%s:%" PRIu64, st->file, st->offset);
        return;
    }
    siphon_my__gtid_format(&st->state, buf, size);
}

/* ---- relations ---- */

static int mapped(const my_stream_t *st, const char *db, size_t dblen, const char *tb,
                  size_t tblen)
{
    for (int i = 0; i < st->ntables; i++)
        if (strlen(st->tables[i].db) == dblen && memcmp(st->tables[i].db, db, dblen) == 0 &&
            strlen(st->tables[i].table) == tblen && memcmp(st->tables[i].table, tb, tblen) == 0)
            return 1;
    return 0;
}

/* The connector's id for a table name, stable for the stream's life. 0 on ENOMEM. */
static uint32_t rel_id(my_stream_t *st, const char *db, const char *table)
{
    char key[512];
    snprintf(key, sizeof(key), "%s.%s", db, table);
    for (int i = 0; i < st->nrelnames; i++)
        if (strcmp(st->relnames[i], key) == 0)
            return (uint32_t)i + 1;
    if (st->nrelnames == st->caprelnames) {
        int cap = st->caprelnames ? st->caprelnames * 2 : 16;
        char **n = realloc(st->relnames, (size_t)cap * sizeof(*n));
        if (!n)
            return 0;
        st->relnames = n;
        st->caprelnames = cap;
    }
    if (!(st->relnames[st->nrelnames] = strdup(key)))
        return 0;
    return (uint32_t)++st->nrelnames;
}

static int col_same(const my_col_t *a, const my_col_t *b)
{
    if (a->type != b->type || a->is_unsigned != b->is_unsigned || a->fsp != b->fsp ||
        a->prec != b->prec || a->scale != b->scale || a->len != b->len || a->bits != b->bits ||
        a->cs != b->cs || a->json != b->json || a->nsyms != b->nsyms || a->vtype != b->vtype)
        return 0;
    if ((a->iconv_name == NULL) != (b->iconv_name == NULL) ||
        (a->iconv_name && strcmp(a->iconv_name, b->iconv_name) != 0))
        return 0;
    for (int i = 0; i < a->nsyms; i++)
        if (a->symlens[i] != b->symlens[i] || memcmp(a->syms[i], b->syms[i], a->symlens[i]))
            return 0;
    return 1;
}

static my_rel_t *find_shape(const my_stream_t *st, const my_rel_t *like)
{
    for (my_rel_t *r = st->rels; r; r = r->next) {
        if (r->rel.ncols != like->rel.ncols || strcmp(r->rel.schema, like->rel.schema) ||
            strcmp(r->rel.name, like->rel.name))
            continue;
        int same = 1;
        for (int i = 0; i < r->rel.ncols && same; i++)
            same = strcmp(r->rel.cols[i].name, like->rel.cols[i].name) == 0 &&
                   r->rel.cols[i].is_pkey == like->rel.cols[i].is_pkey &&
                   strcmp(r->rel.cols[i].type_name, like->rel.cols[i].type_name) == 0 &&
                   col_same(&r->cols[i], &like->cols[i]);
        if (same)
            return r;
    }
    return NULL;
}

/* Adopt r (new shape) or free it in favour of an identical existing one. Returns the one to
 * use. */
static my_rel_t *rel_intern(my_stream_t *st, my_rel_t *r)
{
    my_rel_t *old = find_shape(st, r);
    if (old) {
        rel_free(r);
        return old;
    }
    r->rel.version = (uint64_t)atomic_fetch_add(&my_version_seq, 1) + 1;
    r->next = st->rels;
    st->rels = r;
    st->rel_versions++;
    siphon_log(SIPHON_LOG_DEBUG, "mysql", "table %s.%s: shape version %" PRIu64 ", %d columns",
               r->rel.schema, r->rel.name, r->rel.version, r->rel.ncols);
    return r;
}

/* A new relation with ncols empty columns. NULL on ENOMEM. */
static my_rel_t *rel_alloc(my_stream_t *st, const char *db, size_t dblen, const char *tb,
                           size_t tblen, int ncols)
{
    my_rel_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->rel.schema = strndup(db, dblen);
    r->rel.name = strndup(tb, tblen);
    r->rel.ncols = ncols;
    r->rel.cols = calloc((size_t)(ncols ? ncols : 1), sizeof(siphon_column_t));
    r->cols = calloc((size_t)(ncols ? ncols : 1), sizeof(my_col_t));
    if (!r->rel.schema || !r->rel.name || !r->rel.cols || !r->cols) {
        rel_free(r);
        return NULL;
    }
    if (!(r->rel.id = rel_id(st, r->rel.schema, r->rel.name))) {
        rel_free(r);
        return NULL;
    }
    return r;
}

/* The character set of a collation id, as a charset kind (libmariadb knows the ids of both
 * servers). Returns 0 when the id is unknown. */
static int collation_cs(int collation, my_col_t *c)
{
    const MARIADB_CHARSET_INFO *ci = collation > 0 ? mariadb_get_charset_by_nr((unsigned)collation)
                                                   : NULL;
    if (!ci || !ci->csname)
        return 0;
    c->cs = siphon_my__cs_kind(ci->csname, &c->iconv_name);
    return 1;
}

static int is_numeric(uint8_t t)
{
    return t == MYT_TINY || t == MYT_SHORT || t == MYT_INT24 || t == MYT_LONG ||
           t == MYT_LONGLONG || t == MYT_NEWDECIMAL || t == MYT_FLOAT || t == MYT_DOUBLE ||
           t == MYT_DECIMAL;
}

/* Columns the DEFAULT_CHARSET / COLUMN_CHARSET metadata counts: strings and blobs, binary ones
 * included, but not ENUM/SET (they have their own) nor GEOMETRY/JSON. */
static int is_character(const my_col_t *c)
{
    return c->type == MYT_STRING || c->type == MYT_VARCHAR || c->type == MYT_BLOB ||
           c->type == MYT_TINY_BLOB || c->type == MYT_MEDIUM_BLOB || c->type == MYT_LONG_BLOB;
}

static int is_enumset(const my_col_t *c)
{
    return c->type == MYT_ENUM || c->type == MYT_SET;
}

/* Parse a type name of the catalog ("varchar", "int") into the binlog types it may log as.
 * Returns 1 when the binlog type is compatible with it. */
static int catalog_type_fits(const char *dt, uint8_t t)
{
    if (!dt)
        return 1;
#define IS(s) (strcasecmp(dt, s) == 0)
    if (IS("tinyint")) return t == MYT_TINY;
    if (IS("smallint")) return t == MYT_SHORT;
    if (IS("mediumint")) return t == MYT_INT24;
    if (IS("int") || IS("integer")) return t == MYT_LONG;
    if (IS("bigint")) return t == MYT_LONGLONG;
    if (IS("float")) return t == MYT_FLOAT;
    if (IS("double") || IS("real") || IS("double precision")) return t == MYT_DOUBLE;
    if (IS("decimal") || IS("numeric")) return t == MYT_NEWDECIMAL || t == MYT_DECIMAL;
    if (IS("date")) return t == MYT_DATE || t == MYT_NEWDATE;
    if (IS("time")) return t == MYT_TIME || t == MYT_TIME2;
    if (IS("datetime")) return t == MYT_DATETIME || t == MYT_DATETIME2;
    if (IS("timestamp")) return t == MYT_TIMESTAMP || t == MYT_TIMESTAMP2;
    if (IS("year")) return t == MYT_YEAR;
    if (IS("char") || IS("binary")) return t == MYT_STRING;
    if (IS("varchar") || IS("varbinary")) return t == MYT_VARCHAR;
    if (IS("enum")) return t == MYT_ENUM;
    if (IS("set")) return t == MYT_SET;
    if (IS("bit")) return t == MYT_BIT;
    if (IS("json")) return t == MYT_JSON || t == MYT_BLOB;
    if (strcasestr(dt, "text") || strcasestr(dt, "blob"))
        return t == MYT_BLOB || t == MYT_TINY_BLOB || t == MYT_MEDIUM_BLOB || t == MYT_LONG_BLOB;
    if (IS("geometry") || IS("point") || IS("linestring") || IS("polygon") ||
        IS("multipoint") || IS("multilinestring") || IS("multipolygon") ||
        IS("geometrycollection") || IS("geomcollection"))
        return t == MYT_GEOMETRY;
#undef IS
    return 1; /* a type we do not know by name (MariaDB's uuid, inet6): trust the binlog */
}

/* The catalog definition of db.table, cached per DDL generation. *td NULL when the table is
 * gone. */
static int catalog_def(my_stream_t *st, const char *db, const char *table,
                       const my_tabledef_t **td, char *errbuf, size_t errsize)
{
    my_defcache_t **head = defcache_of(st), *d;
    *td = NULL;
    for (d = *head; d; d = d->next)
        if (strcmp(d->db, db) == 0 && strcmp(d->table, table) == 0)
            break;
    if (d && d->gen == st->ddl_gen) {
        *td = d->found ? &d->td : NULL;
        return 0;
    }
    if (!d) {
        if (!(d = calloc(1, sizeof(*d))) || !(d->db = strdup(db)) ||
            !(d->table = strdup(table))) {
            if (d) {
                free(d->db);
                free(d);
            }
            return SIPHON_ENOMEM;
        }
        d->next = *head;
        *head = d;
    }
    siphon_my__tabledef_free(&d->td);
    d->found = 0;
    int rc = st->tabledef(st->tabledef_opaque, db, table, &d->td, errbuf, errsize);
    if (rc == SIPHON_ENOTFOUND)
        rc = 0;
    else if (rc == 0)
        d->found = 1;
    else
        return rc;
    d->gen = st->ddl_gen;
    *td = d->found ? &d->td : NULL;
    return 0;
}

/* The optional metadata of a TABLE_MAP (MySQL 8.0.1+, MariaDB 10.5+). */
typedef struct optmeta {
    const uint8_t *signedness;
    size_t signedness_len;
    int default_cs;            /* -1 when absent */
    int *col_cs;               /* per character column (count nchar), or NULL */
    int nchar_cs;
    int enumset_default_cs;
    int *enumset_cs;
    int nenumset_cs;
    const uint8_t **names;
    size_t *namelens;
    int nnames;
    int *pk;                   /* column indexes */
    int npk;
    /* ENUM and SET values, per ENUM (resp. SET) column in order */
    int nenum, nset;
    int *enum_n, *set_n;
    const char ***enum_v, ***set_v;
    size_t **enum_l, **set_l;
    /* DEFAULT_CHARSET / ENUM_AND_SET_DEFAULT_CHARSET exceptions: (index, collation) pairs */
    int *cs_exc, ncs_exc;
    int *es_exc, nes_exc;
} optmeta_t;

static void optmeta_free(optmeta_t *m)
{
    free(m->col_cs);
    free(m->enumset_cs);
    free(m->names);
    free(m->namelens);
    free(m->pk);
    for (int i = 0; i < m->nenum; i++) {
        free(m->enum_v[i]);
        free(m->enum_l[i]);
    }
    for (int i = 0; i < m->nset; i++) {
        free(m->set_v[i]);
        free(m->set_l[i]);
    }
    free(m->enum_n);
    free(m->set_n);
    free(m->enum_v);
    free(m->set_v);
    free(m->enum_l);
    free(m->set_l);
    free(m->cs_exc);
    free(m->es_exc);
}

/* Parse a list of string-value lists (SET_STR_VALUE / ENUM_STR_VALUE). */
static int parse_strlists(rd_t *r, int *nlists, int **counts, const char ****vals,
                          size_t ***lens)
{
    int cap = 0;
    *nlists = 0;
    while (rd_left(r) > 0 && !r->bad) {
        uint64_t n = rd_lenenc(r);
        if (r->bad || n > 65535)
            return -1;
        if (*nlists == cap) {
            cap = cap ? cap * 2 : 4;
            int *c = realloc(*counts, (size_t)cap * sizeof(int));
            const char ***v = c ? realloc(*vals, (size_t)cap * sizeof(char **)) : NULL;
            size_t **l = v ? realloc(*lens, (size_t)cap * sizeof(size_t *)) : NULL;
            if (c)
                *counts = c;
            if (v)
                *vals = v;
            if (l)
                *lens = l;
            if (!c || !v || !l)
                return SIPHON_ENOMEM;
        }
        const char **vv = calloc(n ? n : 1, sizeof(char *));
        size_t *ll = calloc(n ? n : 1, sizeof(size_t));
        if (!vv || !ll) {
            free(vv);
            free(ll);
            return SIPHON_ENOMEM;
        }
        (*counts)[*nlists] = (int)n;
        (*vals)[*nlists] = vv;
        (*lens)[*nlists] = ll;
        (*nlists)++;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t len = rd_lenenc(r);
            const uint8_t *s = rd_bytes(r, (size_t)len);
            if (!s)
                return -1;
            vv[k] = (const char *)s;
            ll[k] = (size_t)len;
        }
    }
    return r->bad ? -1 : 0;
}

static int parse_intlist(rd_t *r, int **out, int *n, int pairs)
{
    int cap = 0;
    *n = 0;
    while (rd_left(r) > 0) {
        uint64_t v = rd_lenenc(r);
        if (r->bad || v > INT32_MAX)
            return -1;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            int *x = realloc(*out, (size_t)cap * sizeof(int));
            if (!x)
                return SIPHON_ENOMEM;
            *out = x;
        }
        (*out)[(*n)++] = (int)v;
    }
    (void)pairs;
    return 0;
}

static int parse_optmeta(rd_t *r, optmeta_t *m, int ncols)
{
    int rc = 0;
    m->default_cs = -1;
    m->enumset_default_cs = -1;
    while (rd_left(r) > 0) {
        uint8_t type = (uint8_t)rd_le(r, 1);
        uint64_t len = rd_lenenc(r);
        const uint8_t *v = rd_bytes(r, (size_t)len);
        if (!v)
            return -1;
        rd_t s = {v, v + len, 0};
        switch (type) {
        case 1: /* SIGNEDNESS: a bit per numeric column, most significant first */
            m->signedness = v;
            m->signedness_len = (size_t)len;
            break;
        case 2: /* DEFAULT_CHARSET: default collation, then (index, collation) exceptions */
        case 10: { /* ENUM_AND_SET_DEFAULT_CHARSET */
            int d = (int)rd_lenenc(&s);
            int *exc = NULL, nexc = 0;
            if ((rc = parse_intlist(&s, &exc, &nexc, 1)) != 0 || s.bad || nexc % 2) {
                free(exc);
                return rc ? rc : -1;
            }
            if (type == 2) {
                m->default_cs = d;
                free(m->cs_exc);
                m->cs_exc = exc;
                m->ncs_exc = nexc;
            } else {
                m->enumset_default_cs = d;
                free(m->es_exc);
                m->es_exc = exc;
                m->nes_exc = nexc;
            }
            break;
        }
        case 3: /* COLUMN_CHARSET: one collation per character column */
            if ((rc = parse_intlist(&s, &m->col_cs, &m->nchar_cs, 0)) != 0)
                return rc;
            break;
        case 11: /* ENUM_AND_SET_COLUMN_CHARSET */
            if ((rc = parse_intlist(&s, &m->enumset_cs, &m->nenumset_cs, 0)) != 0)
                return rc;
            break;
        case 4: { /* COLUMN_NAME */
            m->names = calloc((size_t)(ncols ? ncols : 1), sizeof(*m->names));
            m->namelens = calloc((size_t)(ncols ? ncols : 1), sizeof(*m->namelens));
            if (!m->names || !m->namelens)
                return SIPHON_ENOMEM;
            while (rd_left(&s) > 0 && m->nnames < ncols) {
                uint64_t l = rd_lenenc(&s);
                const uint8_t *nm = rd_bytes(&s, (size_t)l);
                if (!nm)
                    return -1;
                m->names[m->nnames] = nm;
                m->namelens[m->nnames++] = (size_t)l;
            }
            break;
        }
        case 5: /* SET_STR_VALUE */
            if ((rc = parse_strlists(&s, &m->nset, &m->set_n, &m->set_v, &m->set_l)) != 0)
                return rc;
            break;
        case 6: /* ENUM_STR_VALUE */
            if ((rc = parse_strlists(&s, &m->nenum, &m->enum_n, &m->enum_v, &m->enum_l)) != 0)
                return rc;
            break;
        case 8: /* SIMPLE_PRIMARY_KEY: column indexes */
            if ((rc = parse_intlist(&s, &m->pk, &m->npk, 0)) != 0)
                return rc;
            break;
        case 9: { /* PRIMARY_KEY_WITH_PREFIX: (index, prefix length) pairs */
            int *pairs = NULL, n = 0;
            if ((rc = parse_intlist(&s, &pairs, &n, 1)) != 0 || n % 2) {
                free(pairs);
                return rc ? rc : -1;
            }
            free(m->pk);
            m->pk = NULL;
            m->npk = 0;
            if (n && !(m->pk = malloc((size_t)(n / 2) * sizeof(int)))) {
                free(pairs);
                return SIPHON_ENOMEM;
            }
            for (int i = 0; i < n; i += 2)
                m->pk[m->npk++] = pairs[i];
            free(pairs);
            break;
        }
        default: /* GEOMETRY_TYPE, COLUMN_VISIBILITY, and later kinds: not needed */
            break;
        }
        if (s.bad)
            return -1;
    }
    return r->bad ? -1 : 0;
}

/* Apply the optional metadata to the column plans. Returns whether names were present. */
static int apply_optmeta(my_rel_t *r, const optmeta_t *m, int ncols)
{
    int inum = 0, ichar = 0, ienum = 0, iset = 0, ies = 0;
    for (int i = 0; i < ncols; i++) {
        my_col_t *c = &r->cols[i];
        if (is_numeric(c->type)) {
            if (m->signedness && (size_t)(inum / 8) < m->signedness_len)
                c->is_unsigned = (m->signedness[inum / 8] >> (7 - inum % 8)) & 1;
            inum++;
        }
        if (is_character(c)) {
            int coll = -1;
            if (m->col_cs && ichar < m->nchar_cs) {
                coll = m->col_cs[ichar];
            } else if (m->default_cs >= 0) {
                coll = m->default_cs;
                for (int k = 0; k + 1 < m->ncs_exc; k += 2)
                    if (m->cs_exc[k] == ichar)
                        coll = m->cs_exc[k + 1];
            }
            if (coll >= 0) {
                c->collation = coll;
                if (!collation_cs(coll, c))
                    c->cs = MY_CS_UNKNOWN;
            }
            ichar++;
        }
        if (is_enumset(c)) {
            int coll = -1;
            if (m->enumset_cs && ies < m->nenumset_cs) {
                coll = m->enumset_cs[ies];
            } else if (m->enumset_default_cs >= 0) {
                coll = m->enumset_default_cs;
                for (int k = 0; k + 1 < m->nes_exc; k += 2)
                    if (m->es_exc[k] == ies)
                        coll = m->es_exc[k + 1];
            }
            if (coll >= 0) {
                c->collation = coll;
                if (!collation_cs(coll, c))
                    c->cs = MY_CS_UNKNOWN;
            }
            ies++;
            if (c->type == MYT_ENUM && ienum < m->nenum) {
                siphon_my__col_set_syms(c, m->enum_n[ienum], m->enum_v[ienum], m->enum_l[ienum]);
                ienum++;
            } else if (c->type == MYT_SET && iset < m->nset) {
                siphon_my__col_set_syms(c, m->set_n[iset], m->set_v[iset], m->set_l[iset]);
                iset++;
            }
        }
    }
    for (int k = 0; k < m->npk; k++)
        if (m->pk[k] >= 0 && m->pk[k] < ncols)
            r->rel.cols[m->pk[k]].is_pkey = 1;
    return m->nnames == ncols && ncols > 0;
}

/* Fill what the binlog did not say from the catalog definition. With names_from_binlog the
 * catalog only enriches (type names, JSON, charsets and values still unknown) and only when it
 * describes the same columns; otherwise it is the source of names and must fit the map. */
static int apply_catalog(my_stream_t *st, my_rel_t *r, const my_tabledef_t *td,
                         int names_from_binlog, char *errbuf, size_t errsize)
{
    int ncols = r->rel.ncols;
    if (names_from_binlog) {
        if (!td || td->ncols != ncols)
            return 0;
        for (int i = 0; i < ncols; i++)
            if (strcmp(td->names[i], r->rel.cols[i].name) != 0 ||
                !catalog_type_fits(td->data_types[i], r->cols[i].type))
                return 0;
    } else {
        if (!td)
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not name the columns of %s.%s at binlog %s:%" PRIu64
                              ": the table no longer exists and the binlog does not carry "
                              "column names (set binlog_row_metadata=FULL on the server, then "
                              "restart Siphon)",
                              r->rel.schema, r->rel.name, st->file, st->offset);
        int fits = td->ncols == ncols;
        for (int i = 0; fits && i < ncols; i++)
            fits = catalog_type_fits(td->data_types[i], r->cols[i].type);
        if (!fits)
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not name the columns of %s.%s at binlog %s:%" PRIu64
                              ": the binlog has %d columns but the table now has %d (or their "
                              "types differ): it was altered after this part of the binlog was "
                              "written, and without binlog_row_metadata=FULL the binlog does "
                              "not name its columns (set binlog_row_metadata=FULL on the "
                              "server; to skip what is left of the old definition, move the "
                              "offsets file away and take a new snapshot)",
                              r->rel.schema, r->rel.name, st->file, st->offset, ncols,
                              td->ncols);
        for (int i = 0; i < ncols; i++) {
            free(r->rel.cols[i].name);
            if (!(r->rel.cols[i].name = strdup(td->names[i])))
                return SIPHON_ENOMEM;
            r->rel.cols[i].is_pkey = td->is_pkey[i];
            my_col_t *c = &r->cols[i];
            if (is_numeric(c->type))
                c->is_unsigned = (uint8_t)td->is_unsigned[i];
        }
    }
    for (int i = 0; i < ncols; i++) {
        my_col_t *c = &r->cols[i];
        if ((is_character(c) || is_enumset(c)) && (!c->collation || c->cs == MY_CS_UNKNOWN) &&
            td->csnames[i]) {
            c->cs = siphon_my__cs_kind(td->csnames[i], &c->iconv_name);
        } else if (is_character(c) && !c->collation && !td->csnames[i]) {
            c->cs = MY_CS_BINARY; /* binary strings have no charset in the catalog */
        }
        if (is_enumset(c) && c->nsyms == 0 && td->nsyms[i] > 0) {
            /* the catalog's values are UTF-8 already (the connection's charset) */
            my_cs_kind_t keep = c->cs;
            c->cs = MY_CS_UTF8;
            int rc = siphon_my__col_set_syms(c, td->nsyms[i], (const char *const *)td->syms[i],
                                             td->symlens[i]);
            c->cs = keep;
            if (rc < 0)
                return rc;
        }
        if (td->json[i] && c->type != MYT_JSON)
            c->json = 1;
        if (td->type_names[i]) {
            free(r->rel.cols[i].type_name);
            if (!(r->rel.cols[i].type_name = strdup(td->type_names[i])))
                return SIPHON_ENOMEM;
        }
    }
    return 0;
}

/* Build the relation of a TABLE_MAP for a mapped table. */
static int rel_from_map(my_stream_t *st, const char *db, size_t dblen, const char *tb,
                        size_t tblen, int ncols, const uint8_t *types, const uint8_t *meta,
                        size_t metalen, rd_t *opt, my_rel_t **out, char *errbuf,
                        size_t errsize)
{
    optmeta_t m;
    my_rel_t *r = rel_alloc(st, db, dblen, tb, tblen, ncols);
    int rc = 0;
    char tn[64];
    memset(&m, 0, sizeof(m));
    if (!r)
        return SIPHON_ENOMEM;
    size_t mo = 0;
    for (int i = 0; i < ncols; i++) {
        size_t ml = siphon_my__meta_len(types[i]);
        uint8_t mb[2] = {0, 0};
        if (mo + ml > metalen) {
            rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                            "TABLE_MAP of %s.%s at binlog %s:%" PRIu64 " has less metadata "
                            "than its column types need",
                            r->rel.schema, r->rel.name, st->file, st->offset);
            goto fail;
        }
        memcpy(mb, meta + mo, ml);
        mo += ml;
        if ((rc = siphon_my__col_from_meta(&r->cols[i], types[i], mb, tn, sizeof(tn))) < 0) {
            rc = siphon_err(errbuf, errsize, rc, "could not decode column %d of %s.%s at "
                            "binlog %s:%" PRIu64 ": %s", i + 1, r->rel.schema, r->rel.name,
                            st->file, st->offset, tn);
            goto fail;
        }
        r->cols[i].cs = MY_CS_UNKNOWN;
        r->rel.cols[i].is_key = 1; /* binlog_row_image=FULL: the before image is whole */
        r->rel.cols[i].typmod = decimal_typmod(&r->cols[i]);
    }
    if ((rc = parse_optmeta(opt, &m, ncols)) != 0) {
        if (rc != SIPHON_ENOMEM)
            rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                            "TABLE_MAP of %s.%s at binlog %s:%" PRIu64 " has malformed "
                            "optional metadata",
                            r->rel.schema, r->rel.name, st->file, st->offset);
        goto fail;
    }
    r->names_from_binlog = apply_optmeta(r, &m, ncols);
    for (int i = 0; i < ncols; i++) {
        if (r->names_from_binlog)
            r->rel.cols[i].name = strndup((const char *)m.names[i], m.namelens[i]);
        else {
            char nm[24];
            snprintf(nm, sizeof(nm), "@%d", i + 1);
            r->rel.cols[i].name = strdup(nm);
        }
        if (!r->rel.cols[i].name) {
            rc = SIPHON_ENOMEM;
            goto fail;
        }
    }
    if (!r->names_from_binlog && !(st->names_from_catalog && st->tabledef)) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not name the columns of %s.%s at binlog %s:%" PRIu64 ": the "
                        "server does not log column names (set binlog_row_metadata=FULL, or "
                        "set source.names_from_catalog: true to read them from the table "
                        "definition)",
                        r->rel.schema, r->rel.name, st->file, st->offset);
        goto fail;
    }
    if (st->tabledef) {
        const my_tabledef_t *td = NULL;
        if ((rc = catalog_def(st, r->rel.schema, r->rel.name, &td, errbuf, errsize)) < 0 ||
            (rc = apply_catalog(st, r, td, r->names_from_binlog, errbuf, errsize)) < 0)
            goto fail;
    }
    for (int i = 0; i < ncols; i++) {
        siphon_my__col_finish(&r->cols[i]);
        r->rel.cols[i].vtype = r->cols[i].vtype;
        r->rel.cols[i].type_oid = r->cols[i].type;
        if (!r->rel.cols[i].type_name &&
            !(r->rel.cols[i].type_name =
                  strdup(siphon_my__col_type_name(&r->cols[i], tn, sizeof(tn))))) {
            rc = SIPHON_ENOMEM;
            goto fail;
        }
    }
    optmeta_free(&m);
    *out = rel_intern(st, r);
    return 0;
fail:
    optmeta_free(&m);
    rel_free(r);
    return rc;
}

/* The binlog type a catalog column logs as, with the metadata that goes with it. */
static uint8_t def_binlog_type(const my_tabledef_t *td, int i, my_flavor_t flavor)
{
    const char *dt = td->data_types[i];
    if (!dt)
        return MYT_NULL;
#define IS(s) (strcasecmp(dt, s) == 0)
    if (IS("tinyint")) return MYT_TINY;
    if (IS("smallint")) return MYT_SHORT;
    if (IS("mediumint")) return MYT_INT24;
    if (IS("int") || IS("integer")) return MYT_LONG;
    if (IS("bigint")) return MYT_LONGLONG;
    if (IS("float")) return MYT_FLOAT;
    if (IS("double") || IS("real")) return MYT_DOUBLE;
    if (IS("decimal") || IS("numeric")) return MYT_NEWDECIMAL;
    if (IS("date")) return MYT_DATE;
    if (IS("time")) return MYT_TIME2;
    if (IS("datetime")) return MYT_DATETIME2;
    if (IS("timestamp")) return MYT_TIMESTAMP2;
    if (IS("year")) return MYT_YEAR;
    if (IS("char") || IS("binary")) return MYT_STRING;
    if (IS("varchar") || IS("varbinary")) return MYT_VARCHAR;
    if (IS("enum")) return MYT_ENUM;
    if (IS("set")) return MYT_SET;
    if (IS("bit")) return MYT_BIT;
    if (IS("json")) return flavor == MY_FLAVOR_MYSQL ? MYT_JSON : MYT_BLOB;
    if (strcasestr(dt, "text") || strcasestr(dt, "blob")) return MYT_BLOB;
#undef IS
    return MYT_GEOMETRY;
}

int siphon_my__stream_rel_from_def(my_stream_t *st, const char *db, const char *table,
                                   const my_tabledef_t *td, const uint8_t *types,
                                   my_rel_t **out, char *errbuf, size_t errsize)
{
    my_rel_t *r = rel_alloc(st, db, strlen(db), table, strlen(table), td->ncols);
    char tn[64];
    int rc = 0;
    if (!r)
        return SIPHON_ENOMEM;
    for (int i = 0; i < td->ncols; i++) {
        my_col_t *c = &r->cols[i];
        c->type = types ? types[i] : def_binlog_type(td, i, st->flavor);
        c->is_unsigned = (uint8_t)td->is_unsigned[i];
        const char *dt = td->data_types[i] ? td->data_types[i] : "";
        switch (c->type) {
        case MYT_NEWDECIMAL:
            c->prec = (uint8_t)td->prec[i];
            c->scale = (uint8_t)td->scale[i];
            break;
        case MYT_TIME2:
        case MYT_DATETIME2:
        case MYT_TIMESTAMP2:
            c->fsp = (uint8_t)td->scale[i];
            break;
        case MYT_FLOAT:
            c->len = 4;
            break;
        case MYT_DOUBLE:
            c->len = 8;
            break;
        case MYT_BIT:
            c->bits = (uint32_t)td->prec[i];
            c->len = (c->bits + 7) / 8;
            break;
        case MYT_STRING:
        case MYT_VARCHAR:
            c->len = (uint32_t)td->octets[i];
            break;
        case MYT_ENUM:
            c->len = td->nsyms[i] > 255 ? 2 : 1;
            break;
        case MYT_SET: {
            int n = (td->nsyms[i] + 7) / 8;
            c->len = (uint32_t)(n > 4 ? 8 : n ? n : 1);
            break;
        }
        case MYT_BLOB:
        case MYT_JSON:
            c->len = strncasecmp(dt, "tiny", 4) == 0     ? 1
                     : strncasecmp(dt, "medium", 6) == 0 ? 3
                     : strncasecmp(dt, "long", 4) == 0 || c->type == MYT_JSON ? 4
                                                                               : 2;
            break;
        case MYT_GEOMETRY:
            c->len = 4;
            break;
        default:
            break;
        }
        r->rel.cols[i].is_key = 1;
        r->rel.cols[i].typmod = decimal_typmod(c);
        if (!(r->rel.cols[i].name = strdup(td->names[i]))) {
            rc = SIPHON_ENOMEM;
            goto fail;
        }
    }
    r->names_from_binlog = 0;
    if ((rc = apply_catalog(st, r, td, 0, errbuf, errsize)) < 0)
        goto fail;
    for (int i = 0; i < td->ncols; i++) {
        siphon_my__col_finish(&r->cols[i]);
        r->rel.cols[i].vtype = r->cols[i].vtype;
        r->rel.cols[i].type_oid = r->cols[i].type;
        if (!r->rel.cols[i].type_name &&
            !(r->rel.cols[i].type_name =
                  strdup(siphon_my__col_type_name(&r->cols[i], tn, sizeof(tn))))) {
            rc = SIPHON_ENOMEM;
            goto fail;
        }
    }
    *out = rel_intern(st, r);
    return 0;
fail:
    rel_free(r);
    return rc;
}

/* ---- the table-map cache ---- */

static my_tmap_t *tmap_find(my_stream_t *st, uint64_t id)
{
    if (!st->captmaps)
        return NULL;
    size_t mask = (size_t)st->captmaps - 1;
    for (size_t i = (size_t)(id * 0x9E3779B97F4A7C15ULL >> 20) & mask;; i = (i + 1) & mask) {
        if (!st->tmaps[i].body)
            return NULL;
        if (st->tmaps[i].table_id == id)
            return &st->tmaps[i];
    }
}

static my_tmap_t *tmap_put(my_stream_t *st, uint64_t id)
{
    my_tmap_t *t = tmap_find(st, id);
    if (t)
        return t;
    if ((st->ntmaps + 1) * 2 > st->captmaps) {
        int cap = st->captmaps ? st->captmaps * 2 : 64;
        my_tmap_t *n = calloc((size_t)cap, sizeof(*n));
        if (!n)
            return NULL;
        for (int i = 0; i < st->captmaps; i++) {
            if (!st->tmaps[i].body)
                continue;
            size_t j = (size_t)(st->tmaps[i].table_id * 0x9E3779B97F4A7C15ULL >> 20) &
                       (size_t)(cap - 1);
            while (n[j].body)
                j = (j + 1) & (size_t)(cap - 1);
            n[j] = st->tmaps[i];
        }
        free(st->tmaps);
        st->tmaps = n;
        st->captmaps = cap;
    }
    size_t mask = (size_t)st->captmaps - 1;
    size_t i = (size_t)(id * 0x9E3779B97F4A7C15ULL >> 20) & mask;
    while (st->tmaps[i].body)
        i = (i + 1) & mask;
    st->tmaps[i].table_id = id;
    st->ntmaps++;
    return &st->tmaps[i];
}

/* ---- records ---- */

/* The BEGIN position text of the current group, in this batch's arena (once per batch). */
static const char *group_pos_text(my_stream_t *st)
{
    my_batch_t *b = st->batch;
    if (st->group_pos_batch == b && st->group_pos_gen == b->gen && st->group_pos_copy)
        return st->group_pos_copy;
    char *s = siphon_arena_strndup(&b->arena, st->group_pos, strlen(st->group_pos));
    if (s) {
        st->group_pos_batch = b;
        st->group_pos_gen = b->gen;
        st->group_pos_copy = s;
    }
    return s;
}

static int emit_begin(my_stream_t *st)
{
    if (st->group_began)
        return 0;
    const char *pos = group_pos_text(st);
    siphon_change_t *c = pos ? siphon_my__batch_add(st->batch) : NULL;
    if (!c)
        return SIPHON_ENOMEM;
    c->kind = SIPHON_REC_BEGIN;
    c->txid = st->group_txid;
    c->commit_ts_us = st->group_commit_us;
    c->pos.num = pos_num(st);
    c->pos.text = (char *)pos;
    c->database = st->database;
    st->group_began = 1;
    return 0;
}

/* The group ends here: the position moves to include it. */
static int end_group(my_stream_t *st)
{
    int rc = 0;
    snprintf(st->resume_file, sizeof(st->resume_file), "%s", st->file);
    st->resume_offset = st->offset;
    if (st->resume_left > 0) {
        siphon_log(SIPHON_LOG_WARNING, "mysql",
                   "transaction %s ended at binlog %s:%" PRIu64 " with %" PRIu32 " change(s) "
                   "fewer than were read of it before the connection was lost",
                   st->group_pos, st->file, st->offset, st->resume_left);
        st->resume_left = 0;
    }
    if (st->skipping) {
        st->skipping = 0;
        st->in_group = 0;
        st->group_began = 0;
        return 0;
    }
    if (st->mode == MY_MODE_GTID) {
        if (st->group_gtid_kind == 1)
            rc = siphon_my__gtid_set_mariadb(&st->state, st->group_mgtid);
        else if (st->group_gtid_kind == 2)
            rc = siphon_my__gtid_add_mysql(&st->state, st->group_uuid, st->group_gno);
        else if (!st->warned_anon) {
            st->warned_anon = 1;
            siphon_log(SIPHON_LOG_WARNING, "mysql",
                       "a transaction without a GTID at binlog %s:%" PRIu64 " (gtid_mode is "
                       "not ON everywhere?): it is streamed, but positions only move at "
                       "transactions with GTIDs",
                       st->file, st->offset);
        }
        if (rc < 0)
            return rc;
    }
    char text[sizeof(st->last_commit_pos)];
    siphon_my__stream_position(st, text, sizeof(text));
    st->in_group = 0;
    if (!st->group_began && !text[0])
        return 0; /* nothing to say yet (an empty GTID state) */
    my_batch_t *b = st->batch;
    siphon_change_t *c;
    if (!st->group_began && b->n > 0 && b->recs[b->n - 1].kind == SIPHON_REC_POSITION)
        c = &b->recs[b->n - 1]; /* consecutive filtered-out groups: keep only the last */
    else if (!(c = siphon_my__batch_add(b)))
        return SIPHON_ENOMEM;
    char *s = siphon_arena_strndup(&b->arena, text, strlen(text));
    if (!s) {
        if (c == &b->recs[b->n - 1] && c->kind == 0)
            b->n--;
        return SIPHON_ENOMEM;
    }
    memset(c, 0, sizeof(*c));
    c->kind = st->group_began ? SIPHON_REC_COMMIT : SIPHON_REC_POSITION;
    c->txid = st->group_txid;
    c->commit_ts_us = st->group_commit_us;
    c->pos.num = pos_num(st);
    c->pos.text = s;
    c->database = st->database;
    if (st->group_began)
        st->commits++;
    st->group_began = 0;
    snprintf(st->last_commit_pos, sizeof(st->last_commit_pos), "%s", text);
    st->have_commit_pos = 1;
    st->last_commit_num = c->pos.num;
    return 0;
}

/* A group starts: the cut group (st->cut_pos) sent again, or another one (see the top). */
static int settle_cut(my_stream_t *st)
{
    if (!st->cut_pos[0])
        return 0;
    if (strcmp(st->cut_pos, st->group_pos) == 0) {
        /* its BEGIN and first changes are in batches already */
        st->group_began = 1;
        st->resume_left = st->cut_changes;
        st->resumed++;
        siphon_log(SIPHON_LOG_INFO, "mysql",
                   "resuming transaction %s at binlog %s:%" PRIu64 " where the lost connection "
                   "cut it: %" PRIu32 " change(s) already sent are not sent again",
                   st->group_pos, st->file, st->offset, st->cut_changes);
    } else {
        siphon_change_t *c = siphon_my__batch_add(st->batch);
        if (!c)
            return SIPHON_ENOMEM;
        c->kind = SIPHON_REC_RESET;
        siphon_log(SIPHON_LOG_WARNING, "mysql",
                   "transaction %s, cut by the lost connection, did not come again (transaction "
                   "%s at binlog %s:%" PRIu64 " came first; it is incomplete in the binlog?): "
                   "dropping what was read of it",
                   st->cut_pos, st->group_pos, st->file, st->offset);
    }
    st->cut_pos[0] = '\0';
    st->cut_changes = 0;
    return 0;
}

/* A group starts at an event of `len` bytes whose header says it ends at log_pos. Its BEGIN
 * position is pos (its GTID), or NULL: the offset of that event. 0 or ENOMEM. */
static int start_group(my_stream_t *st, uint32_t ts, uint32_t log_pos, uint32_t len,
                       const char *pos)
{
    st->in_group = 1;
    st->group_began = 0;
    st->group_standalone = 0;
    st->group_has_begin_query = 0;
    st->group_gtid_kind = 0;
    st->group_txid = 0;
    st->group_commit_us = (int64_t)ts * 1000000;
    st->change_seq = 0;
    st->resume_left = 0;
    st->skipping = 0;
    st->group_pos_copy = NULL;
    uint64_t start = log_pos >= len ? log_pos - len : st->offset;
    if (pos)
        snprintf(st->group_pos, sizeof(st->group_pos), "%s", pos);
    else
        snprintf(st->group_pos, sizeof(st->group_pos), "%s:%" PRIu64, st->file, start);
    return settle_cut(st);
}

/* An event that should end a group arrived outside one, or a group start arrived inside one:
 * drop what was open (it is incomplete in the binlog, e.g. after a server crash). */
static int abandon_group(my_stream_t *st, const char *why)
{
    if (st->in_group && st->group_began) {
        siphon_change_t *c = siphon_my__batch_add(st->batch);
        if (!c)
            return SIPHON_ENOMEM;
        c->kind = SIPHON_REC_RESET;
        siphon_log(SIPHON_LOG_WARNING, "mysql",
                   "transaction %s at binlog %s:%" PRIu64 " has no end (%s): dropping what was "
                   "read of it",
                   st->group_pos, st->file, st->offset, why);
    }
    st->in_group = 0;
    st->group_began = 0;
    st->skipping = 0;
    st->resume_left = 0;
    return 0;
}

int siphon_my__stream_disconnected(my_stream_t *st)
{
    if (st->in_group && st->group_began) {
        /* a second loss before the changes sent earlier were all passed over again keeps
         * their count */
        snprintf(st->cut_pos, sizeof(st->cut_pos), "%s", st->group_pos);
        st->cut_changes = st->change_seq + st->resume_left;
        siphon_log(SIPHON_LOG_INFO, "mysql",
                   "the connection was lost inside transaction %s after %" PRIu32 " of its "
                   "changes: it is read again from its start and continued after them",
                   st->cut_pos, st->cut_changes);
    }
    st->in_group = 0;
    st->group_began = 0;
    st->skipping = 0;
    st->resume_left = 0;
    return 0;
}

/* ---- events ---- */

static int ev_table_map(my_stream_t *st, const uint8_t *body, size_t n, char *errbuf,
                        size_t errsize)
{
    rd_t r = {body, body + n, 0};
    uint64_t id = rd_le(&r, 6);
    rd_le(&r, 2); /* flags */
    size_t dblen = (size_t)rd_le(&r, 1);
    const char *db = (const char *)rd_bytes(&r, dblen + 1);
    size_t tblen = (size_t)rd_le(&r, 1);
    const char *tb = (const char *)rd_bytes(&r, tblen + 1);
    uint64_t ncols = rd_lenenc(&r);
    const uint8_t *types = rd_bytes(&r, (size_t)ncols);
    uint64_t metalen = rd_lenenc(&r);
    const uint8_t *meta = rd_bytes(&r, (size_t)metalen);
    rd_bytes(&r, (size_t)(ncols + 7) / 8); /* nullability: not needed */
    if (r.bad || ncols == 0 || ncols > 4096)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse TABLE_MAP event at binlog %s:%" PRIu64
                          " (%zu bytes): it is cut short",
                          st->file, st->offset, n);

    my_tmap_t *t = tmap_find(st, id);
    if (t && t->bodylen == n && t->version == st->ddl_gen && memcmp(t->body, body, n) == 0)
        return 0; /* the same map again (every transaction repeats it) */
    if (st->ntmaps >= MY_TMAPS_MAX && !t) {
        tmaps_clear(st);
        t = NULL;
    }
    my_rel_t *rel = NULL;
    if (mapped(st, db, dblen, tb, tblen)) {
        int rc = rel_from_map(st, db, dblen, tb, tblen, (int)ncols, types, meta,
                              (size_t)metalen, &r, &rel, errbuf, errsize);
        if (rc < 0)
            return rc;
    }
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy || !(t = tmap_put(st, id))) {
        free(copy);
        return SIPHON_ENOMEM;
    }
    free(t->body);
    memcpy(copy, body, n);
    t->body = copy;
    t->bodylen = n;
    t->rel = rel;
    t->version = st->ddl_gen;
    return 0;
}

static int bitcount(const uint8_t *bits, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += (bits[i / 8] >> (i % 8)) & 1;
    return c;
}

/* Decode one row image (null bitmap + values of the present columns). */
static int decode_image(my_stream_t *st, const my_rel_t *rel, const uint8_t *present, rd_t *r,
                        siphon_row_t **out, char *errbuf, size_t errsize)
{
    int ncols = rel->rel.ncols;
    int npresent = bitcount(present, ncols);
    my_batch_t *b = st->batch;
    siphon_row_t *row = siphon_arena_alloc(&b->arena, sizeof(*row));
    siphon_value_t *vals = siphon_arena_alloc(&b->arena, sizeof(*vals) * (size_t)ncols);
    if (!row || !vals)
        return SIPHON_ENOMEM;
    const uint8_t *nulls = rd_bytes(r, (size_t)(npresent + 7) / 8);
    if (!nulls)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "a row of %s.%s at binlog %s:%" PRIu64 " is cut short (null bitmap)",
                          rel->rel.schema, rel->rel.name, st->file, st->offset);
    my_vctx_t vx = {&b->arena, &st->iconvs, 0};
    int k = 0;
    for (int i = 0; i < ncols; i++) {
        if (!((present[i / 8] >> (i % 8)) & 1)) {
            vals[i].type = SIPHON_V_UNCHANGED; /* binlog_row_image other than FULL */
            continue;
        }
        int isnull = (nulls[k / 8] >> (k % 8)) & 1;
        k++;
        if (isnull) {
            vals[i].type = SIPHON_V_NULL;
            continue;
        }
        size_t used = 0;
        char why[384];
        int rc = siphon_my__decode(&vx, &rel->cols[i], r->p, rd_left(r), &used, &vals[i], why,
                                   sizeof(why));
        if (rc == SIPHON_ENOMEM)
            return rc;
        if (rc < 0)
            return siphon_err(errbuf, errsize, rc,
                              "could not decode column \"%s\" (%s) of %s.%s at binlog %s:%" PRIu64
                              ": %s",
                              rel->rel.cols[i].name, rel->rel.cols[i].type_name,
                              rel->rel.schema, rel->rel.name, st->file, st->offset, why);
        r->p += used;
    }
    row->ncols = ncols;
    row->vals = vals;
    *out = row;
    return 0;
}

/* The rows of a rows event (body: n bytes after the table id and flags, in memory that lives
 * as long as st->batch) into CHANGE records of st->batch, passing over the first `drop` rows
 * (decoded, no record). *nrows receives the rows the event holds. A failed event adds no
 * record (a BEGIN it emitted stays: it is valid). */
static int rows_records(my_stream_t *st, my_rel_t *rel, int kind, int v2, const uint8_t *body,
                        size_t n, uint32_t drop, uint32_t *nrows, char *errbuf, size_t errsize)
{
    rd_t r = {body, body + n, 0};
    *nrows = 0;
    if (v2) {
        uint64_t extra = rd_le(&r, 2);
        if (extra < 2 || !rd_bytes(&r, (size_t)extra - 2))
            goto short_;
    }
    uint64_t ncols = rd_lenenc(&r);
    if (r.bad)
        goto short_;
    if ((int)ncols != rel->rel.ncols)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "a rows event of %s.%s at binlog %s:%" PRIu64 " has %" PRIu64
                          " columns but its TABLE_MAP has %d",
                          rel->rel.schema, rel->rel.name, st->file, st->offset, ncols,
                          rel->rel.ncols);
    size_t bmlen = (size_t)(ncols + 7) / 8;
    const uint8_t *present1 = rd_bytes(&r, bmlen), *present2 = present1;
    if (kind == 1)
        present2 = rd_bytes(&r, bmlen);
    if (r.bad)
        goto short_;

    int rc = 0, first = st->batch->n;
    uint32_t seq0 = st->change_seq;
    const char *pos = NULL;
    while (rd_left(&r) > 0) {
        siphon_row_t *before = NULL, *after = NULL;
        if (kind != 0 && (rc = decode_image(st, rel, present1, &r, &before, errbuf, errsize)) < 0)
            goto fail;
        if (kind != 2 && (rc = decode_image(st, rel, present2, &r, &after, errbuf, errsize)) < 0)
            goto fail;
        st->change_seq++;
        if ((*nrows)++ < drop) /* sent before the connection was lost */
            continue;
        if (!pos && ((rc = emit_begin(st)) < 0 || !(pos = group_pos_text(st)))) {
            rc = SIPHON_ENOMEM;
            goto fail;
        }
        siphon_change_t *c = siphon_my__batch_add(st->batch);
        if (!c) {
            rc = SIPHON_ENOMEM;
            goto fail;
        }
        c->kind = SIPHON_REC_CHANGE;
        c->op = kind == 0 ? SIPHON_OP_CREATE : kind == 1 ? SIPHON_OP_UPDATE : SIPHON_OP_DELETE;
        c->rel = &rel->rel;
        c->before = before;
        c->after = after;
        c->txid = st->group_txid;
        c->commit_ts_us = st->group_commit_us;
        c->pos.num = pos_num(st);
        c->pos.text = (char *)pos;
        c->database = rel->rel.schema; /* MySQL's database is the table's schema */
    }
    return 0;
fail:
    if (st->batch->n > first && st->batch->recs[first].kind == SIPHON_REC_BEGIN)
        first++;
    st->batch->n = first;
    st->change_seq = seq0;
    return rc;
short_:
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not parse a rows event at binlog %s:%" PRIu64 ": it is cut short",
                      st->file, st->offset);
}

static int ev_rows(my_stream_t *st, uint8_t type, const uint8_t *body0, size_t n, char *errbuf,
                   size_t errsize)
{
    if (st->skipping)
        return 0; /* a transaction delivered before the restart (its map was skipped too) */
    rd_t r = {body0, body0 + n, 0};
    int v2 = type >= MYE_WRITE_ROWS_V2 && type <= MYE_DELETE_ROWS_V2;
    int kind = v2 ? type - MYE_WRITE_ROWS_V2 : type - MYE_WRITE_ROWS_V1; /* 0 w, 1 u, 2 d */
    uint64_t id = rd_le(&r, 6);
    rd_le(&r, 2); /* flags */
    if (r.bad)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse a rows event at binlog %s:%" PRIu64 ": it is cut short",
                          st->file, st->offset);
    my_tmap_t *t = tmap_find(st, id);
    if (!t)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "a rows event at binlog %s:%" PRIu64 " refers to table id %" PRIu64
                          " without a TABLE_MAP before it",
                          st->file, st->offset, id);
    if (!t->rel)
        return 0; /* a table no mapping reads */
    size_t hdr = (size_t)(r.p - body0);
    uint32_t nrows = 0, drop = 0;
    int rc;

    if (st->resume_left > 0) {
        /* the group cut by a lost connection, read again: its first changes were sent. They
         * are decoded aside (to count them: a rows event holds several) and dropped, so
         * passing over a long transaction neither fills a batch nor keeps memory. */
        my_batch_t *keep = st->batch;
        uint32_t seq0 = st->change_seq;
        st->batch = &st->pass_over;
        rc = rows_records(st, t->rel, kind, v2, body0 + hdr, n - hdr, UINT32_MAX, &nrows,
                          errbuf, errsize);
        st->batch = keep;
        st->change_seq = seq0;
        siphon_my__batch_reset(&st->pass_over);
        if (rc < 0)
            return rc;
        if (nrows <= st->resume_left) {
            st->resume_left -= nrows;
            st->change_seq += nrows;
            return 0;
        }
        drop = st->resume_left; /* the cut fell inside this event (not expected) */
        st->resume_left = 0;
    }

    /* values point into the event: keep a copy in the batch's arena */
    uint8_t *body = siphon_arena_alloc(&st->batch->arena, n - hdr);
    if (!body)
        return SIPHON_ENOMEM;
    memcpy(body, body0 + hdr, n - hdr);
    st->batch->bytes += n;
    return rows_records(st, t->rel, kind, v2, body, n - hdr, drop, &nrows, errbuf, errsize);
}

/* Skip spaces and comments at the start of a statement. */
static const char *sql_skip(const char *s, const char *end)
{
    for (;;) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
            s++;
        if (end - s >= 2 && s[0] == '/' && s[1] == '*') {
            const char *c = s + 2;
            while (end - c >= 2 && !(c[0] == '*' && c[1] == '/'))
                c++;
            s = end - c >= 2 ? c + 2 : end;
            continue;
        }
        if (end - s >= 2 && s[0] == '-' && s[1] == '-') {
            while (s < end && *s != '\n')
                s++;
            continue;
        }
        return s;
    }
}

/* The keyword at s (case-insensitive, followed by a non-identifier byte)? */
static int sql_kw(const char **s, const char *end, const char *kw)
{
    size_t n = strlen(kw);
    if ((size_t)(end - *s) < n || strncasecmp(*s, kw, n) != 0)
        return 0;
    const char *after = *s + n;
    if (after < end && (((*after | 0x20) >= 'a' && (*after | 0x20) <= 'z') ||
                        (*after >= '0' && *after <= '9') || *after == '_'))
        return 0;
    *s = sql_skip(after, end);
    return 1;
}

/* An identifier, `quoted` or bare, into out. */
static int sql_ident(const char **s, const char *end, char *out, size_t size)
{
    const char *p = *s;
    size_t o = 0;
    if (p < end && *p == '`') {
        p++;
        while (p < end) {
            if (*p == '`') {
                if (p + 1 < end && p[1] == '`')
                    p++;
                else
                    break;
            }
            if (o + 1 < size)
                out[o++] = *p;
            p++;
        }
        if (p >= end)
            return 0;
        p++;
    } else {
        while (p < end && (((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
                           (*p >= '0' && *p <= '9') || *p == '_' || *p == '$' ||
                           (unsigned char)*p >= 0x80)) {
            if (o + 1 < size)
                out[o++] = *p;
            p++;
        }
        if (o == 0)
            return 0;
    }
    out[o] = '\0';
    *s = p;
    return 1;
}

/* "TRUNCATE [TABLE] [db.]name": the table, or 0. */
static int sql_truncate(const char *q, size_t n, const char *curdb, char *db, size_t dbsize,
                        char *tb, size_t tbsize)
{
    const char *s = sql_skip(q, q + n), *end = q + n;
    if (!sql_kw(&s, end, "TRUNCATE"))
        return 0;
    sql_kw(&s, end, "TABLE");
    char a[256], b[256];
    if (!sql_ident(&s, end, a, sizeof(a)))
        return 0;
    if (s < end && *s == '.') {
        s++;
        if (!sql_ident(&s, end, b, sizeof(b)))
            return 0;
        snprintf(db, dbsize, "%s", a);
        snprintf(tb, tbsize, "%s", b);
    } else {
        snprintf(db, dbsize, "%s", curdb);
        snprintf(tb, tbsize, "%s", a);
    }
    s = sql_skip(s, end);
    while (s < end && (*s == ';' || *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
        s++;
    return s == end;
}

/* TRUNCATE of a mapped table: a change with op 't' in its own group. */
static int emit_truncate(my_stream_t *st, const char *db, const char *tb)
{
    my_rel_t *rel = NULL;
    for (my_rel_t *r = st->rels; r && !rel; r = r->next)
        if (strcmp(r->rel.schema, db) == 0 && strcmp(r->rel.name, tb) == 0)
            rel = r;
    if (!rel) {
        /* never seen in the binlog yet: a relation with no columns names it */
        if (!(rel = rel_alloc(st, db, strlen(db), tb, strlen(tb), 0)))
            return SIPHON_ENOMEM;
        rel = rel_intern(st, rel);
    }
    int rc = emit_begin(st);
    if (rc < 0)
        return rc;
    const char *pos = group_pos_text(st);
    siphon_change_t *c = pos ? siphon_my__batch_add(st->batch) : NULL;
    if (!c)
        return SIPHON_ENOMEM;
    c->kind = SIPHON_REC_CHANGE;
    c->op = SIPHON_OP_TRUNCATE;
    c->rel = &rel->rel;
    c->txid = st->group_txid;
    c->commit_ts_us = st->group_commit_us;
    c->pos.num = pos_num(st);
    c->pos.text = (char *)pos;
    c->database = rel->rel.schema;
    st->change_seq++;
    return 0;
}

static int ev_query(my_stream_t *st, const uint8_t *hdr, const uint8_t *body, size_t n,
                    int compressed, char *errbuf, size_t errsize)
{
    if (compressed)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not read a compressed event at binlog %s:%" PRIu64
                          ": the server compresses its binlog (log_bin_compress=ON); set "
                          "log_bin_compress=OFF",
                          st->file, st->offset);
    rd_t r = {body, body + n, 0};
    rd_le(&r, 4); /* thread id */
    rd_le(&r, 4); /* exec time */
    size_t dblen = (size_t)rd_le(&r, 1);
    rd_le(&r, 2); /* error code */
    size_t svlen = (size_t)rd_le(&r, 2);
    rd_bytes(&r, svlen);
    const char *db = (const char *)rd_bytes(&r, dblen + 1);
    if (r.bad)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse QUERY event at binlog %s:%" PRIu64 ": it is cut short",
                          st->file, st->offset);
    const char *q = (const char *)r.p, *qend = (const char *)r.end;
    const char *s = sql_skip(q, qend);
    uint32_t ts = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                  (uint32_t)hdr[3] << 24;
    uint32_t evlen = (uint32_t)hdr[9] | (uint32_t)hdr[10] << 8 | (uint32_t)hdr[11] << 16 |
                     (uint32_t)hdr[12] << 24;
    uint32_t log_pos = (uint32_t)hdr[13] | (uint32_t)hdr[14] << 8 | (uint32_t)hdr[15] << 16 |
                       (uint32_t)hdr[16] << 24;
    const char *t = s;

    if (sql_kw(&t, qend, "BEGIN") && t == qend) {
        int rc = st->in_group ? 0 : start_group(st, ts, log_pos, evlen, NULL);
        st->group_has_begin_query = 1; /* (servers without GTID events start the group here) */
        return rc;
    }
    t = s;
    if ((sql_kw(&t, qend, "COMMIT") || sql_kw(&t, qend, "ROLLBACK")) &&
        (t == qend || *t == ';')) {
        if (!st->in_group)
            return 0;
        return end_group(st);
    }
    t = s;
    int xa = sql_kw(&t, qend, "XA");
    int transactional = st->in_group && !st->group_standalone &&
                        (st->flavor == MY_FLAVOR_MARIADB ? st->group_gtid_kind == 1
                                                         : st->group_has_begin_query);
    if (transactional || (xa && st->in_group && !st->group_standalone)) {
        /* SAVEPOINT, statements of mixed-format logging, XA START/END: inside the group */
        return 0;
    }
    /* a statement on its own: DDL and the like. Definitions may have changed. */
    int rc;
    if (!st->in_group && (rc = start_group(st, ts, log_pos, evlen, NULL)) < 0)
        return rc;
    if (!xa) {
        st->ddl_gen++;
        tmaps_clear(st);
        char tdb[256], ttb[256];
        if (!st->skipping &&
            sql_truncate(q, (size_t)(qend - q), db ? db : "", tdb, sizeof(tdb), ttb,
                         sizeof(ttb)) &&
            mapped(st, tdb, strlen(tdb), ttb, strlen(ttb))) {
            if ((rc = emit_truncate(st, tdb, ttb)) < 0)
                return rc;
        }
        siphon_log(SIPHON_LOG_DEBUG, "mysql", "statement at binlog %s:%" PRIu64 ": %.*s",
                   st->file, st->offset, (int)((qend - s) > 120 ? 120 : (qend - s)), s);
    }
    return end_group(st);
}

int siphon_my__stream_event(my_stream_t *st, const uint8_t *ev, size_t len, char *errbuf,
                            size_t errsize)
{
    if (len < MY_EVENT_HEADER_LEN)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse a binlog event after %s:%" PRIu64 ": %zu bytes is "
                          "shorter than an event header",
                          st->file, st->offset, len);
    uint32_t ts = (uint32_t)ev[0] | (uint32_t)ev[1] << 8 | (uint32_t)ev[2] << 16 |
                  (uint32_t)ev[3] << 24;
    uint8_t type = ev[4];
    uint32_t server = (uint32_t)ev[5] | (uint32_t)ev[6] << 8 | (uint32_t)ev[7] << 16 |
                      (uint32_t)ev[8] << 24;
    uint32_t evlen = (uint32_t)ev[9] | (uint32_t)ev[10] << 8 | (uint32_t)ev[11] << 16 |
                     (uint32_t)ev[12] << 24;
    uint32_t log_pos = (uint32_t)ev[13] | (uint32_t)ev[14] << 8 | (uint32_t)ev[15] << 16 |
                       (uint32_t)ev[16] << 24;
    uint16_t flags = (uint16_t)(ev[17] | ev[18] << 8);
    int artificial = (flags & 0x20) != 0;
    size_t n = len - MY_EVENT_HEADER_LEN;
    const uint8_t *body = ev + MY_EVENT_HEADER_LEN;
    int rc = 0;

    st->events++;
    st->last_event_ms = siphon_clock_now_ms();
    if (type == MYE_FORMAT_DESCRIPTION) {
        /* binlog version(2) server version(50) created(4) header length(1) post-header
         * lengths... checksum algorithm(1) checksum(4) */
        if (n < 57 + 5)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse FORMAT_DESCRIPTION event at binlog %s: too short",
                              st->file);
        if (body[56] != MY_EVENT_HEADER_LEN)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "binlog %s uses %u-byte event headers; Siphon reads the 19-byte "
                              "headers of MySQL 5.0+ and MariaDB",
                              st->file, (unsigned)body[56]);
        st->checksum = ev[len - 5] == 1;
        return 0;
    }
    if (st->checksum) {
        if (n < 4)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse event type %u at binlog %s:%" PRIu64
                              ": shorter than its checksum",
                              (unsigned)type, st->file, st->offset);
        n -= 4;
    }
    if (!artificial && log_pos)
        st->offset = log_pos;

    switch (type) {
    case MYE_ROTATE: {
        rd_t r = {body, body + n, 0};
        uint64_t pos = rd_le(&r, 8);
        size_t flen = rd_left(&r);
        if (r.bad || flen == 0 || flen >= sizeof(st->file))
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse ROTATE event after binlog %s:%" PRIu64,
                              st->file, st->offset);
        memcpy(st->file, r.p, flen);
        st->file[flen] = '\0';
        st->file_seq = siphon_my__file_seq(st->file);
        st->offset = pos;
        return 0;
    }
    case MYE_MARIADB_GTID: {
        rd_t r = {body, body + n, 0};
        uint64_t seq = rd_le(&r, 8);
        uint32_t domain = (uint32_t)rd_le(&r, 4);
        uint8_t f2 = (uint8_t)rd_le(&r, 1);
        if (r.bad)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse GTID event at binlog %s:%" PRIu64, st->file,
                              st->offset);
        if (st->in_group && (rc = abandon_group(st, "a new GTID event began")) < 0)
            return rc;
        char gpos[64];
        snprintf(gpos, sizeof(gpos), "%" PRIu32 "-%" PRIu32 "-%" PRIu64, domain, server, seq);
        if ((rc = start_group(st, ts, log_pos, evlen, gpos)) < 0)
            return rc;
        st->group_standalone = (f2 & 0x01) != 0;
        st->group_gtid_kind = 1;
        st->group_mgtid = (my_mgtid_t){domain, server, seq};
        st->group_txid = seq;
        return 0;
    }
    case MYE_MYSQL_GTID:
    case MYE_ANONYMOUS_GTID: {
        rd_t r = {body, body + n, 0};
        rd_le(&r, 1); /* commit flag */
        const uint8_t *sid = rd_bytes(&r, 16);
        uint64_t gno = rd_le(&r, 8);
        if (r.bad)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse GTID event at binlog %s:%" PRIu64, st->file,
                              st->offset);
        if (st->in_group && (rc = abandon_group(st, "a new GTID event began")) < 0)
            return rc;
        char gpos[64];
        if (type == MYE_MYSQL_GTID) {
            siphon_my__uuid_format(sid, gpos);
            snprintf(gpos + 36, sizeof(gpos) - 36, ":%" PRIu64, gno);
        }
        if ((rc = start_group(st, ts, log_pos, evlen, type == MYE_MYSQL_GTID ? gpos : NULL)) < 0)
            return rc;
        /* logical timestamps (type 2: last_committed, sequence_number), then the commit
         * time in microseconds (7 bytes; top bit: the original commit time follows) */
        if (rd_left(&r) >= 17 && r.p[0] == 2) {
            rd_le(&r, 17);
            if (rd_left(&r) >= 7) {
                uint64_t ict = rd_le(&r, 7) & ((UINT64_C(1) << 55) - 1);
                if (ict)
                    st->group_commit_us = (int64_t)ict;
            }
        }
        if (type == MYE_MYSQL_GTID) {
            st->group_gtid_kind = 2;
            memcpy(st->group_uuid, sid, 16);
            st->group_gno = gno;
            st->group_txid = gno;
            if (st->skip.kind == MY_GTID_MYSQL && siphon_my__gtid_contains_mysql(&st->skip, sid, gno))
                st->skipping = 1;
        }
        return 0;
    }
    case MYE_GTID_LIST: {
        if (st->mode != MY_MODE_GTID || st->flavor != MY_FLAVOR_MARIADB)
            return 0;
        rd_t r = {body, body + n, 0};
        uint32_t cnt = (uint32_t)rd_le(&r, 4) & 0x0FFFFFFF;
        for (uint32_t i = 0; i < cnt && !r.bad; i++) {
            my_mgtid_t g;
            g.domain = (uint32_t)rd_le(&r, 4);
            g.server = (uint32_t)rd_le(&r, 4);
            g.seq = rd_le(&r, 8);
            int known = 0;
            for (int k = 0; k < st->state.nm; k++)
                known |= st->state.m[k].domain == g.domain;
            if (!r.bad && !known && (rc = siphon_my__gtid_set_mariadb(&st->state, g)) < 0)
                return rc;
        }
        return 0;
    }
    case MYE_TABLE_MAP:
        if (st->skipping)
            return 0;
        return ev_table_map(st, body, n, errbuf, errsize);
    case MYE_WRITE_ROWS_V1:
    case MYE_UPDATE_ROWS_V1:
    case MYE_DELETE_ROWS_V1:
    case MYE_WRITE_ROWS_V2:
    case MYE_UPDATE_ROWS_V2:
    case MYE_DELETE_ROWS_V2:
        /* rows outside any group: make one (old servers) */
        if (!st->in_group && (rc = start_group(st, ts, log_pos, evlen, NULL)) < 0)
            return rc;
        return ev_rows(st, type, body, n, errbuf, errsize);
    case MYE_XID:
    case MYE_XA_PREPARE:
        if (type == MYE_XA_PREPARE && !st->warned_xa) {
            st->warned_xa = 1;
            siphon_log(SIPHON_LOG_WARNING, "mysql",
                       "an XA PREPARE at binlog %s:%" PRIu64 ": its changes are streamed now, "
                       "even if an XA ROLLBACK undoes them later",
                       st->file, st->offset);
        }
        if (!st->in_group)
            return 0;
        return end_group(st);
    case MYE_QUERY:
    case MYE_QUERY_COMPRESSED:
        return ev_query(st, ev, body, n, type == MYE_QUERY_COMPRESSED, errbuf, errsize);
    case MYE_HEARTBEAT:
    case MYE_HEARTBEAT_V2:
        st->heartbeats++;
        return 0;
    case MYE_PARTIAL_UPDATE_ROWS:
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not read a partial JSON update at binlog %s:%" PRIu64
                          ": the server logs JSON updates partially "
                          "(binlog_row_value_options=PARTIAL_JSON); set "
                          "binlog_row_value_options='' so rows are logged whole",
                          st->file, st->offset);
    case MYE_TRANSACTION_PAYLOAD:
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not read a compressed transaction at binlog %s:%" PRIu64
                          ": the server compresses transactions "
                          "(binlog_transaction_compression=ON); set "
                          "binlog_transaction_compression=OFF",
                          st->file, st->offset);
    default:
        if (type >= MYE_WRITE_ROWS_COMPRESSED_V1 && type <= MYE_DELETE_ROWS_COMPRESSED_V2)
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not read a compressed rows event at binlog %s:%" PRIu64
                              ": the server compresses its binlog (log_bin_compress=ON); set "
                              "log_bin_compress=OFF",
                              st->file, st->offset);
        /* ANNOTATE_ROWS, ROWS_QUERY, BINLOG_CHECKPOINT, PREVIOUS_GTIDS, STOP, INTVAR, RAND,
         * USER_VAR, START_ENCRYPTION, and kinds we do not need */
        return 0;
    }
}
