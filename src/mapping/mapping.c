/*
 * mapping.c - compiled mappings at work: binding a relation version (columns resolved, every
 * transform chain typed against the column types, a last conversion chosen per field) and
 * turning each change of a bound table into entity images and a key for the encoder, or into
 * a dead letter.
 *
 * Life of a relation version (one entry in the set's cache, keyed by siphon_relation_t.version):
 *     unseen --siphon_mapset_bind() or first siphon_mapset_apply()--> bound (nbind >= 0)
 * A relation no mapping reads is cached with nbind 0, so its rows cost one lookup. A new
 * version (ALTER TABLE) is bound afresh; older entries stay until the set is destroyed.
 *
 * What the encoder accepts (field base type <- value type) and so what the last step of every
 * field must produce, with the conversions applied per value:
 *     boolean <- BOOL              int, long <- INT, DECIMAL that is a whole number in range
 *     float, double <- FLOAT, INT
 *     string <- TEXT, JSON as they are; BOOL, INT, FLOAT, DECIMAL, DATE, TIME, TIMESTAMP, UUID
 *               as their text ("123.45", "2024-01-31", "2024-01-31T10:00:00.000000Z")
 *     bytes <- BYTES               decimal <- DECIMAL that fits precision and scale, INT
 *     date <- DATE   time-micros <- TIME   timestamp-micros <- TIMESTAMP   uuid <- UUID
 *     enum <- TEXT that is one of its symbols
 *     string, enum <- RAWTEXT (legacy text of unknown charset, e.g. a SQL_ASCII database) when
 *               its bytes are valid UTF-8, checked per value; source.charset or a charset
 *               transform converts the rest
 *     null only into nullable fields; SIPHON_V_UNCHANGED only into nullable fields (the encoder
 *     writes null and lists the field in unchanged_fields).
 *
 * One change, one mapping, in this order: the filter (rows it rejects give nothing; an update
 * whose new row leaves the filter while its old row was in gives a delete), the soft-delete
 * flag (a row flagged deleted gives nothing for c/r, a delete for u), then the images. A value
 * that cannot be converted stops the row for that mapping: a dead letter (the callback gets
 * out->error), a null with a warning (on_error: null, nullable fields), or an error returned
 * (on_error: fail).
 *
 * Images: `after` is built from the new row, taking a TOAST-unchanged column from the old row
 * when the source sent a real value there (REPLICA IDENTITY FULL). `before` is handed on only
 * when complete: every mapped column has a value in the old row and converts (REPLICA IDENTITY
 * FULL); with the default identity the old row holds only the key, which still gives a delete
 * its key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"

/* ---- types ---- */

map_target_t siphon_mapping__target(const siphon_avro_field_t *af)
{
    const siphon_avro_type_t *t = af->base;
    switch (t->kind) {
    case SIPHON_AVRO_BOOLEAN:
        return MAP_T_BOOL;
    case SIPHON_AVRO_INT:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return MAP_T_INT;
        return t->logical == SIPHON_AVRO_LT_DATE ? MAP_T_DATE : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_LONG:
        switch (t->logical) {
        case SIPHON_AVRO_LT_NONE: return MAP_T_INT;
        case SIPHON_AVRO_LT_TIME_MICROS: return MAP_T_TIME;
        case SIPHON_AVRO_LT_TIMESTAMP_MICROS: return MAP_T_TIMESTAMP;
        default: return MAP_T_UNSUPPORTED;
        }
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE:
        return MAP_T_FLOAT;
    case SIPHON_AVRO_STRING:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return MAP_T_STRING;
        return t->logical == SIPHON_AVRO_LT_UUID ? MAP_T_UUID : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_BYTES:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return MAP_T_BYTES;
        return t->logical == SIPHON_AVRO_LT_DECIMAL ? MAP_T_DECIMAL : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_FIXED:
        return t->logical == SIPHON_AVRO_LT_DECIMAL ? MAP_T_DECIMAL : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_ENUM:
        return MAP_T_ENUM;
    default:
        return MAP_T_UNSUPPORTED;
    }
}

void siphon_mapping__type_name(const siphon_avro_field_t *af, char *buf, size_t size)
{
    static const char *const kinds[] = {"null",   "boolean", "int",   "long", "float",
                                        "double", "bytes",   "string", "record", "enum",
                                        "array",  "map",     "union", "fixed"};
    const siphon_avro_type_t *t = af->base;
    switch (t->logical) {
    case SIPHON_AVRO_LT_DECIMAL: snprintf(buf, size, "decimal(%d,%d)", t->precision, t->scale); return;
    case SIPHON_AVRO_LT_DATE: snprintf(buf, size, "date"); return;
    case SIPHON_AVRO_LT_TIME_MILLIS: snprintf(buf, size, "time-millis"); return;
    case SIPHON_AVRO_LT_TIME_MICROS: snprintf(buf, size, "time-micros"); return;
    case SIPHON_AVRO_LT_TIMESTAMP_MILLIS: snprintf(buf, size, "timestamp-millis"); return;
    case SIPHON_AVRO_LT_TIMESTAMP_MICROS: snprintf(buf, size, "timestamp-micros"); return;
    case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS: snprintf(buf, size, "local-timestamp-micros"); return;
    case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS: snprintf(buf, size, "local-timestamp-millis"); return;
    case SIPHON_AVRO_LT_UUID: snprintf(buf, size, "uuid"); return;
    default: break;
    }
    if ((size_t)t->kind < sizeof(kinds) / sizeof(kinds[0]))
        snprintf(buf, size, "%s", kinds[t->kind]);
    else
        snprintf(buf, size, "?");
}

map_conv_t siphon_mapping__conv(map_target_t t, siphon_vtype_t vt)
{
    switch (t) {
    case MAP_T_BOOL: return vt == SIPHON_V_BOOL ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_INT:
        if (vt == SIPHON_V_INT)
            return MAP_C_COPY;
        return vt == SIPHON_V_DECIMAL ? MAP_C_DEC_INT : MAP_C_NONE;
    case MAP_T_FLOAT: return vt == SIPHON_V_FLOAT || vt == SIPHON_V_INT ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_STRING:
        switch (vt) {
        case SIPHON_V_TEXT:
        case SIPHON_V_JSON:
            return MAP_C_COPY;
        case SIPHON_V_RAWTEXT:
            return MAP_C_RAW_UTF8;
        case SIPHON_V_BOOL:
        case SIPHON_V_INT:
        case SIPHON_V_FLOAT:
        case SIPHON_V_DECIMAL:
        case SIPHON_V_DATE:
        case SIPHON_V_TIME:
        case SIPHON_V_TIMESTAMP:
        case SIPHON_V_UUID:
            return MAP_C_TEXT;
        default:
            return MAP_C_NONE;
        }
    case MAP_T_BYTES: return vt == SIPHON_V_BYTES ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_DECIMAL:
        if (vt == SIPHON_V_DECIMAL)
            return MAP_C_COPY;
        return vt == SIPHON_V_INT ? MAP_C_INT_DEC : MAP_C_NONE;
    case MAP_T_DATE: return vt == SIPHON_V_DATE ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_TIME: return vt == SIPHON_V_TIME ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_TIMESTAMP: return vt == SIPHON_V_TIMESTAMP ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_UUID: return vt == SIPHON_V_UUID ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_ENUM:
        if (vt == SIPHON_V_TEXT)
            return MAP_C_COPY;
        return vt == SIPHON_V_RAWTEXT ? MAP_C_RAW_UTF8 : MAP_C_NONE;
    default: return MAP_C_NONE;
    }
}

const char *siphon_mapping__target_expects(map_target_t t)
{
    switch (t) {
    case MAP_T_BOOL: return "a boolean column, or the bool transform";
    case MAP_T_INT: return "an integer column (or a whole number from number/implied_decimals)";
    case MAP_T_FLOAT: return "an integer or floating-point column";
    case MAP_T_STRING: return "a text, json, numeric, date, time, timestamp, uuid or boolean column";
    case MAP_T_BYTES: return "a binary column";
    case MAP_T_DECIMAL: return "a numeric or integer column, or the implied_decimals or number transform";
    case MAP_T_DATE: return "a date column, or a date_* transform";
    case MAP_T_TIME: return "a time column, or the time_hhmmss transform";
    case MAP_T_TIMESTAMP: return "a timestamp column, or the timestamp transform";
    case MAP_T_UUID: return "a uuid column";
    case MAP_T_ENUM: return "text holding one of the enum's symbols (a lookup transform)";
    default: return "a field of another type";
    }
}

/* ---- messages ---- */

static int map_fail(char *errbuf, size_t errsize, int code, const siphon_mapping_t *map,
                    int line, int col, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int map_fail(char *errbuf, size_t errsize, int code, const siphon_mapping_t *map,
                    int line, int col, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return siphon_err(errbuf, errsize, code, "%s:%d:%d: %s", map->path, line, col, msg);
}

static const char *col_type(const siphon_column_t *c)
{
    return c->type_name && c->type_name[0] ? c->type_name : siphon_vtype_name(c->vtype);
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static int rel_is_table(const siphon_relation_t *rel, const siphon_mapping_t *map)
{
    return strcmp(str_or_empty(rel->schema), map->src_schema) == 0 &&
           strcmp(str_or_empty(rel->name), map->src_table) == 0;
}

/* ---- binding ---- */

/* The column named `name`: exact match, else the only case-insensitive match. -1 when none,
 * -2 when several columns match ignoring case (their indexes in *a, *b). */
static int find_column(const siphon_relation_t *rel, const char *name, int *a, int *b)
{
    int found = -1;
    for (int i = 0; i < rel->ncols; i++)
        if (rel->cols[i].name && strcmp(rel->cols[i].name, name) == 0)
            return i;
    for (int i = 0; i < rel->ncols; i++) {
        if (!rel->cols[i].name || strcasecmp(rel->cols[i].name, name) != 0)
            continue;
        if (found >= 0) {
            *a = found;
            *b = i;
            return -2;
        }
        found = i;
    }
    return found;
}

static void column_list(const siphon_relation_t *rel, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < rel->ncols; i++) {
        const char *nm = str_or_empty(rel->cols[i].name);
        const char *sep = i ? ", " : "";
        if (o + strlen(sep) + strlen(nm) + 6 > size) {
            snprintf(buf + o, size - o, "%s...", sep);
            return;
        }
        o += (size_t)snprintf(buf + o, size - o, "%s%s", sep, nm);
    }
}

static void binding_free(map_binding_t *b)
{
    free(b->plan);
    free(b->inoff);
    free(b->in);
    free(b->conv);
    free(b->outvt);
    free(b->optype);
    free(b->fcol);
    memset(b, 0, sizeof(*b));
}

/* Where bind_one sends its problems: the first one returned (rep NULL), or every one through
 * the callback (siphon_mapset_check). */
typedef struct bind_report {
    siphon_map_problem_cb cb;
    void *opaque;
    int count;
} bind_report_t;

/* Report a problem. Returns the code to stop with, or 0 to go on (report mode). */
static int problem(bind_report_t *rep, int rc, char *errbuf)
{
    if (!rep || rc == SIPHON_ENOMEM)
        return rc;
    rep->count++;
    if (rep->cb)
        rep->cb(errbuf, rep->opaque);
    return 0;
}

/* Resolve a column for a message-bearing purpose. Returns the index, or <0 with errbuf set. */
static int resolve(const siphon_mapping_t *map, const siphon_relation_t *rel, const char *name,
                   const char *what, int line, int col, char *errbuf, size_t errsize)
{
    int a = -1, c2 = -1;
    int c = find_column(rel, name, &a, &c2);
    if (c == -2)
        return map_fail(errbuf, errsize, SIPHON_EINVAL, map, line, col,
                        "column '%s' of %s is not in table %s.%s, and ignoring case it matches "
                        "several columns ('%s', '%s') (expected the column's exact name)",
                        name, what, str_or_empty(rel->schema), str_or_empty(rel->name),
                        rel->cols[a].name, rel->cols[c2].name);
    if (c < 0) {
        char list[400];
        column_list(rel, list, sizeof(list));
        return map_fail(errbuf, errsize, SIPHON_EINVAL, map, line, col,
                        "column '%s' of %s is not in table %s.%s (expected one of: %s)", name,
                        what, str_or_empty(rel->schema), str_or_empty(rel->name), list);
    }
    if (strcmp(rel->cols[c].name, name) != 0)
        siphon_log(SIPHON_LOG_NOTICE, "map",
                   "%s:%d:%d: column '%s' of %s taken as '%s' of %s.%s (the only match "
                   "ignoring case)",
                   map->path, line, col, name, what, rel->cols[c].name, str_or_empty(rel->schema),
                   str_or_empty(rel->name));
    return c;
}

static int bind_field(siphon_mapping_t *map, const siphon_relation_t *rel, map_binding_t *b,
                      int i, int secrets, char *errbuf, size_t errsize)
{
    map_field_t *mf = &map->fields[i];
    map_bind_in_t *bin = &b->in[b->inoff[i]];
    siphon_vtype_t in_vt[MAP_MAX_INPUTS], out;
    char what[160];
    int rc;

    b->conv[i] = MAP_C_COPY;
    if (!mf->mapped || mf->is_const)
        return 0;
    for (int j = 0; j < mf->nin && secrets; j++)
        for (int k = 0; k < mf->in[j].nops; k++)
            if ((rc = siphon_mapping__op_ready(map, &mf->in[j].ops[k], errbuf, errsize)) < 0)
                return rc;
    for (int k = 0; k < mf->nops && secrets; k++)
        if ((rc = siphon_mapping__op_ready(map, &mf->ops[k], errbuf, errsize)) < 0)
            return rc;
    snprintf(what, sizeof(what), "field '%s'", mf->af->name);
    for (int j = 0; j < mf->nin; j++) {
        map_input_t *in = &mf->in[j];
        bin[j].col = -1;
        bin[j].implicit = 0;
        if (!in->column) {
            in_vt[j] = SIPHON_V_TEXT;
            continue;
        }
        int c = resolve(map, rel, in->column, what, in->line, in->col, errbuf, errsize);
        if (c < 0)
            return c;
        bin[j].col = c;
        in_vt[j] = rel->cols[c].vtype;
        if (in_vt[j] == SIPHON_V_RAWTEXT && map->charset &&
            !(in->nops > 0 && in->ops[0].kind == MAP_X_CHARSET)) {
            bin[j].implicit = 1;
            in_vt[j] = SIPHON_V_TEXT;
        }
    }
    if ((rc = siphon_mapping__field_type(map, mf, in_vt, b->optype, &out, errbuf, errsize)) < 0) {
        /* name the column types: "(from hdodat (date))" reads better than the load message */
        if (rc != SIPHON_ENOMEM && mf->nin == 1 && bin[0].col >= 0) {
            char tmp[1024];
            snprintf(tmp, sizeof(tmp), "%s [column %s is %s]", errbuf, mf->in[0].column,
                     col_type(&rel->cols[bin[0].col]));
            snprintf(errbuf, errsize, "%s", tmp);
        }
        return rc;
    }
    /* implied decimals last into a decimal field: the value goes to the encoder as it is, so
     * an integer can become the int64 form of a decimal (nothing to format per row) */
    if (mf->target == MAP_T_DECIMAL && mf->nops > 0 &&
        mf->ops[mf->nops - 1].kind == MAP_X_IMPLIED_DEC)
        mf->ops[mf->nops - 1].a.implied.i64 = 1;
    map_conv_t conv = siphon_mapping__conv(mf->target, out);
    int plain = mf->nops == 0 && mf->nin == 1 && mf->in[0].nops == 0 && bin[0].col >= 0;
    if (conv == MAP_C_DEC_INT && plain) {
        /* a numeric column into an integer field as it is: only numeric(p,0) (whole numbers);
         * a scale means fractions, which an integer field would lose */
        const siphon_column_t *col = &rel->cols[bin[0].col];
        if (col->typmod < 4 || ((col->typmod - 4) & 0xffff) != 0)
            conv = MAP_C_NONE;
    }
    if (conv == MAP_C_NONE) {
        char tn[64];
        siphon_mapping__type_name(mf->af, tn, sizeof(tn));
        if (plain) {
            const siphon_column_t *col = &rel->cols[bin[0].col];
            return map_fail(errbuf, errsize, SIPHON_EINVAL, map, mf->in[0].line, mf->in[0].col,
                            "column '%s' (%s) cannot become field '%s' (%s) (expected %s, or "
                            "another type for the field in %s)",
                            col->name, col_type(col), mf->af->name, tn,
                            siphon_mapping__target_expects(mf->target),
                            map->sch->path ? map->sch->path : "its schema");
        }
        return map_fail(errbuf, errsize, SIPHON_EINVAL, map, mf->line, mf->col,
                        "field '%s' (%s) cannot take the %s value its transforms end with, from "
                        "%s (expected %s)",
                        mf->af->name, tn, siphon_vtype_name(out), str_or_empty(mf->columns),
                        siphon_mapping__target_expects(mf->target));
    }
    b->conv[i] = (uint8_t)conv;
    b->outvt[i] = (uint8_t)out;
    return 0;
}

/* The evaluation plan of field i (after bind_field). */
static void plan_field(const siphon_mapping_t *map, map_binding_t *b, int i)
{
    const map_field_t *mf = &map->fields[i];
    const map_bind_in_t *bin = &b->in[b->inoff[i]];
    map_plan_t *p = &b->plan[i];
    if (!mf->mapped || mf->is_const) {
        p->kind = MAP_P_VALUE;
        p->value = mf->mapped ? &mf->constval : &mf->defval;
        return;
    }
    p->kind = mf->nin == 1 && bin[0].col >= 0 && mf->in[0].nops == 0 ? MAP_P_COLUMN
                                                                      : MAP_P_INPUTS;
    p->col = bin[0].col;
    p->implicit = bin[0].implicit;
    p->ops = mf->ops;
    p->nops = mf->nops;
    p->conv = b->conv[i];
    p->outvt = b->outvt[i];
    p->check = mf->target == MAP_T_ENUM && !mf->enum_ok ? MAP_K_ENUM
               : mf->target == MAP_T_DECIMAL            ? MAP_K_DECIMAL
               : mf->target == MAP_T_INT && mf->af->base->kind == SIPHON_AVRO_INT ? MAP_K_INT32
                                                                                 : MAP_K_NONE;
}

static int bind_one(siphon_mapping_t *map, const siphon_relation_t *rel, map_binding_t *b,
                    bind_report_t *rep, char *errbuf, size_t errsize)
{
    size_t nf = (size_t)(map->nfields ? map->nfields : 1);
    int any_key = 0, total = 0, rc;
    b->map = map;
    b->soft_col = -1;
    for (int i = 0; i < map->nfields; i++)
        total += map->fields[i].nin;
    int nfc = siphon_mapping__filter_ncolumns(map->filter);
    if (!(b->inoff = calloc(nf + 1, sizeof(int))) ||
        !(b->in = calloc((size_t)(total ? total : 1), sizeof(map_bind_in_t))) ||
        !(b->conv = calloc(nf, 1)) || !(b->outvt = calloc(nf, 1)) ||
        !(b->plan = calloc(nf, sizeof(map_plan_t))) ||
        !(b->optype = calloc((size_t)(map->nops ? map->nops : 1), 1)) ||
        !(b->fcol = calloc((size_t)(nfc ? nfc : 1), sizeof(int))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory binding %s.%s",
                          str_or_empty(rel->schema), str_or_empty(rel->name));
    for (int i = 0, o = 0; i < map->nfields; i++) {
        b->inoff[i] = o;
        o += map->fields[i].nin;
        b->inoff[i + 1] = o;
    }
    for (int i = 0; i < rel->ncols; i++)
        any_key |= rel->cols[i].is_key;
    for (int i = 0; i < map->nfields; i++) {
        if ((rc = bind_field(map, rel, b, i, !rep, errbuf, errsize)) < 0 &&
            (rc = problem(rep, rc, errbuf)) < 0)
            return rc;
        plan_field(map, b, i);
    }

    /* the filter's columns and literals */
    if (map->filter) {
        siphon_vtype_t vts[64];
        int ok = nfc <= 64;
        for (int i = 0; i < nfc && ok; i++) {
            int line, col;
            const char *name = siphon_mapping__filter_column(map->filter, i, &line, &col);
            int c = resolve(map, rel, name, "the filter", line, col, errbuf, errsize);
            if (c < 0) {
                ok = 0;
                if ((rc = problem(rep, c, errbuf)) < 0)
                    return rc;
                break;
            }
            b->fcol[i] = c;
            vts[i] = rel->cols[c].vtype;
        }
        if (ok && (rc = siphon_mapping__filter_bind(map->filter, vts, map->path, &map->mem,
                                                    errbuf, errsize)) < 0 &&
            (rc = problem(rep, rc, errbuf)) < 0)
            return rc;
    }

    /* the soft-delete flag */
    if (map->soft_column) {
        int c = resolve(map, rel, map->soft_column, "soft_delete", map->soft_line, map->soft_col,
                        errbuf, errsize);
        if (c < 0) {
            if ((rc = problem(rep, c, errbuf)) < 0)
                return rc;
        } else {
            siphon_vtype_t vt = rel->cols[c].vtype;
            int any = 0;
            const char *why = "";
            for (int i = 0; i < map->nsoft; i++) {
                if ((rc = siphon_mapping__const_as(&map->soft_vals[i], vt, &map->mem, &why)) ==
                    SIPHON_ENOMEM)
                    return rc;
                any |= rc == 0;
            }
            if (!any || (vt != SIPHON_V_TEXT && vt != SIPHON_V_RAWTEXT && vt != SIPHON_V_INT &&
                         vt != SIPHON_V_BOOL)) {
                map_fail(errbuf, errsize, SIPHON_EINVAL, map, map->soft_line, map->soft_col,
                         "soft_delete column '%s' is %s: its value%s cannot be compared with it "
                         "(expected a text, integer or boolean flag column and values of its "
                         "type)",
                         rel->cols[c].name, col_type(&rel->cols[c]), map->nsoft > 1 ? "s" : "");
                if ((rc = problem(rep, SIPHON_EINVAL, errbuf)) < 0)
                    return rc;
            } else {
                b->soft_col = c;
            }
        }
    }

    /* A key field outside the replica identity has no value in a delete's old row. */
    for (int k = 0; k < map->nkey && any_key && !rep; k++) {
        int fi = map->key_idx[k];
        const map_field_t *mf = &map->fields[fi];
        const map_bind_in_t *bin = &b->in[b->inoff[fi]];
        for (int j = 0; j < mf->nin; j++)
            if (bin[j].col >= 0 && !rel->cols[bin[j].col].is_key)
                siphon_log(SIPHON_LOG_WARNING, "map",
                           "%s:%d:%d: key field '%s' comes from column '%s', which is not in the "
                           "replica identity of %s.%s: its deletes cannot be keyed (use primary "
                           "key columns, or ALTER TABLE %s.%s REPLICA IDENTITY FULL)",
                           map->path, mf->in[j].line, mf->in[j].col, mf->af->name,
                           mf->in[j].column, str_or_empty(rel->schema), str_or_empty(rel->name),
                           str_or_empty(rel->schema), str_or_empty(rel->name));
    }
    return rep && rep->count ? SIPHON_EINVAL : 0;
}

static uint64_t rel_hash(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v;
}

static map_relentry_t *rel_find(const siphon_mapset_t *ms, uint64_t version)
{
    if (!ms->relcap)
        return NULL;
    size_t mask = ms->relcap - 1;
    for (size_t i = rel_hash(version) & mask;; i = (i + 1) & mask) {
        if (!ms->rels[i].used)
            return NULL;
        if (ms->rels[i].version == version)
            return &ms->rels[i];
    }
}

/* The slot for `version` (new and zeroed, or the existing one). NULL when out of memory. */
static map_relentry_t *rel_slot(siphon_mapset_t *ms, uint64_t version)
{
    map_relentry_t *e = rel_find(ms, version);
    if (e)
        return e;
    if ((ms->nrels + 1) * 2 > ms->relcap) {
        size_t ncap = ms->relcap ? ms->relcap * 2 : 16;
        map_relentry_t *nr = calloc(ncap, sizeof(*nr));
        if (!nr)
            return NULL;
        for (size_t i = 0; i < ms->relcap; i++) {
            if (!ms->rels[i].used)
                continue;
            size_t j = rel_hash(ms->rels[i].version) & (ncap - 1);
            while (nr[j].used)
                j = (j + 1) & (ncap - 1);
            nr[j] = ms->rels[i];
        }
        free(ms->rels);
        ms->rels = nr;
        ms->relcap = ncap;
    }
    size_t mask = ms->relcap - 1, i = rel_hash(version) & mask;
    while (ms->rels[i].used)
        i = (i + 1) & mask;
    ms->rels[i].used = 1;
    ms->rels[i].version = version;
    ms->nrels++;
    return &ms->rels[i];
}

static int rel_bind(siphon_mapset_t *ms, const siphon_relation_t *rel, map_relentry_t **out,
                    char *errbuf, size_t errsize)
{
    int n = 0, k = 0, rc = 0;
    map_binding_t *binds = NULL;
    for (int i = 0; i < ms->n; i++)
        n += rel_is_table(rel, ms->maps[i]);
    if (n && !(binds = calloc((size_t)n, sizeof(*binds))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory binding %s.%s",
                          str_or_empty(rel->schema), str_or_empty(rel->name));
    for (int i = 0; i < ms->n && rc == 0; i++)
        if (rel_is_table(rel, ms->maps[i]))
            rc = bind_one(ms->maps[i], rel, &binds[k++], NULL, errbuf, errsize);
    map_relentry_t *e = rc ? NULL : rel_slot(ms, rel->version);
    if (!rc && !e)
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory binding %s.%s",
                        str_or_empty(rel->schema), str_or_empty(rel->name));
    if (rc) {
        for (int i = 0; i < k; i++)
            binding_free(&binds[i]);
        free(binds);
        return rc;
    }
    for (int i = 0; i < e->nbind; i++)
        binding_free(&e->binds[i]);
    free(e->binds);
    e->binds = binds;
    e->nbind = n;
    *out = e;
    return 0;
}

int siphon_mapset_bind(siphon_mapset_t *ms, const siphon_relation_t *rel, char *errbuf,
                       size_t errsize)
{
    map_relentry_t *e;
    if (!ms || !rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not bind: no relation given");
    return rel_bind(ms, rel, &e, errbuf, errsize);
}

int siphon_mapset_check(siphon_mapset_t *ms, const siphon_relation_t *rel,
                        siphon_map_problem_cb cb, void *opaque)
{
    bind_report_t rep = {cb, opaque, 0};
    char errbuf[2048];
    if (!ms || !rel)
        return SIPHON_EINVAL;
    for (int i = 0; i < ms->n; i++) {
        if (!rel_is_table(rel, ms->maps[i]))
            continue;
        map_binding_t b;
        memset(&b, 0, sizeof(b));
        int rc = bind_one(ms->maps[i], rel, &b, &rep, errbuf, sizeof(errbuf));
        binding_free(&b);
        if (rc == SIPHON_ENOMEM)
            return rc;
    }
    return rep.count;
}

int siphon_mapset_check_secrets(const siphon_mapset_t *ms, siphon_map_problem_cb cb,
                                void *opaque)
{
    char errbuf[1024];
    int n = 0;
    for (int i = 0; ms && i < ms->n; i++) {
        const siphon_mapping_t *map = ms->maps[i];
        for (int f = 0; f < map->nfields; f++) {
            const map_field_t *mf = &map->fields[f];
            for (int j = 0; j <= mf->nin; j++) {
                const map_op_t *ops = j < mf->nin ? mf->in[j].ops : mf->ops;
                int nops = j < mf->nin ? mf->in[j].nops : mf->nops;
                for (int k = 0; k < nops; k++)
                    if (siphon_mapping__op_ready(map, &ops[k], errbuf, sizeof(errbuf)) < 0) {
                        n++;
                        if (cb)
                            cb(errbuf, opaque);
                    }
            }
        }
    }
    return n;
}

int siphon_mapset_has_table(const siphon_mapset_t *ms, const char *schema, const char *table)
{
    if (!ms || !table)
        return 0;
    for (int i = 0; i < ms->n; i++)
        if (strcmp(ms->maps[i]->src_schema, schema ? schema : "public") == 0 &&
            strcmp(ms->maps[i]->src_table, table) == 0)
            return 1;
    return 0;
}

/* ---- evaluation ---- */

/* Text of a value in the row arena; floats in their shortest round-trip form. */
static int to_text(siphon_arena_t *row, const siphon_value_t *v, siphon_value_t *dst)
{
    char *buf;
    size_t n;
    if (v->type == SIPHON_V_FLOAT) {
        if (!(buf = siphon_arena_alloc(row, 32)))
            return SIPHON_ENOMEM;
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, 32, "%.*g", prec, v->u.f);
            if (strtod(buf, NULL) == v->u.f)
                break;
        }
        n = strlen(buf);
    } else {
        if (!(buf = siphon_arena_alloc(row, 64)))
            return SIPHON_ENOMEM;
        n = siphon_value_format(v, buf, 64);
        if (n >= 64) {
            if (!(buf = siphon_arena_alloc(row, n + 1)))
                return SIPHON_ENOMEM;
            siphon_value_format(v, buf, n + 1);
        }
    }
    dst->type = SIPHON_V_TEXT;
    dst->u.s.ptr = buf;
    dst->u.s.len = n;
    return 0;
}

static int enum_has(const siphon_avro_type_t *t, const char *s, size_t n)
{
    for (int i = 0; i < t->nsymbols; i++)
        if (strlen(t->symbols[i]) == n && memcmp(t->symbols[i], s, n) == 0)
            return 1;
    return 0;
}

/* Does a decimal fit decimal(p, s)? 0, or -1 with why set. */
static int dec_fits(const siphon_value_t *v, const siphon_avro_type_t *t, char *why,
                    size_t whysize)
{
    static const uint64_t pow10[19] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL};
    int32_t scale = v->u.dec.scale;
    if (siphon_value_dec_is_i64(v) && scale >= 0 && scale <= t->scale) {
        /* the int64 form, no places to drop: it fits when it has at most p - s + scale digits
         * (an int64 has at most 19, so 19 or more always fit) */
        int64_t u = siphon_value_dec_i64(v);
        uint64_t mag = u < 0 ? (uint64_t)0 - (uint64_t)u : (uint64_t)u;
        int64_t k = (int64_t)t->precision - t->scale + scale;
        if (k >= 19 || (k >= 0 && mag < pow10[k]))
            return 0;
    }
    char ibuf[SIPHON_DEC_I64_CHARS];
    const char *d;
    size_t n = siphon_value_dec_digits(v, ibuf, &d);
    if (n && d[0] == '-') {
        d++;
        n--;
    }
    /* trailing digits beyond the field's scale must be zeros (never rounded) */
    if (scale > t->scale) {
        for (int32_t k = 0; k < scale - t->scale && (size_t)k < n; k++)
            if (d[n - 1 - (size_t)k] != '0') {
                char sn[80];
                siphon_mapping__value_snippet(v, sn, sizeof(sn));
                snprintf(why, whysize,
                         "value %s has %d decimal places, more than decimal(%d,%d) keeps (it is "
                         "never rounded)",
                         sn, scale, t->precision, t->scale);
                return -1;
            }
    }
    while (n > 1 && d[0] == '0') {
        d++;
        n--;
    }
    long intdigits = (long)n - scale;
    if (n == 1 && d[0] == '0')
        intdigits = 0;
    if (intdigits > (long)t->precision - t->scale) {
        char sn[80];
        siphon_mapping__value_snippet(v, sn, sizeof(sn));
        snprintf(why, whysize,
                 "value %s does not fit decimal(%d,%d): %ld digits before the point, at most %d",
                 sn, t->precision, t->scale, intdigits, t->precision - t->scale);
        return -1;
    }
    return 0;
}

typedef struct map_image_ctx {
    siphon_mapset_t *ms;
    const map_binding_t *b;
    const siphon_change_t *chg;
    const char *which; /* "new" or "old", for messages */
    char *errbuf;
    size_t errsize;
    char why[512];
    int eline, ecol;   /* where the failure is in the mapping file */
} map_image_ctx_t;

/* Field i's general case (MAP_P_INPUTS): its inputs (columns and constants, each with its own
 * chain) combined by the field's chain, into *dst. Same contract as eval_field(). */
static __attribute__((noinline)) int eval_inputs(map_image_ctx_t *x, map_eval_t *evp, int i,
                                                 const siphon_row_t *row,
                                                 const siphon_row_t *fallback, siphon_value_t *dst)
{
    const map_binding_t *b = x->b;
    const siphon_mapping_t *map = b->map;
    const map_field_t *mf = &map->fields[i];
    const map_bind_in_t *bin = &b->in[b->inoff[i]];
    siphon_value_t v[MAP_MAX_INPUTS];
    int rc, n = mf->nin;

    for (int j = 0; j < mf->nin; j++) {
        const map_input_t *in = &mf->in[j];
        if (bin[j].col < 0) {
            v[j].type = SIPHON_V_TEXT;
            v[j].u.s.ptr = in->cst.text;
            v[j].u.s.len = in->cst.len;
        } else {
            const siphon_value_t *s = &row->vals[bin[j].col];
            if (s->type == SIPHON_V_UNCHANGED && fallback &&
                fallback->vals[bin[j].col].type != SIPHON_V_UNCHANGED)
                s = &fallback->vals[bin[j].col];
            if (s->type == SIPHON_V_UNCHANGED) {
                dst->type = SIPHON_V_UNCHANGED;
                return 0;
            }
            v[j] = *s;
            if (bin[j].implicit && v[j].type == SIPHON_V_RAWTEXT &&
                (rc = siphon_mapping__charset_convert(map->charset, &v[j], evp)) != 0) {
                x->eline = in->line;
                x->ecol = in->col;
                return rc;
            }
        }
        for (int k = 0; k < in->nops; k++) {
            const map_op_t *op = &in->ops[k];
            if ((rc = siphon_mapping__op_apply(op, (siphon_vtype_t)b->optype[op->idx], &v[j], 1,
                                               evp)) != 0) {
                x->eline = op->line;
                x->ecol = op->col;
                return rc;
            }
        }
    }
    for (int k = 0; k < mf->nops; k++) {
        const map_op_t *op = &mf->ops[k];
        int take = siphon_mapping__op_reduces(op->kind) ? n : 1;
        if ((rc = siphon_mapping__op_apply(op, (siphon_vtype_t)b->optype[op->idx], v, take,
                                           evp)) != 0) {
            x->eline = op->line;
            x->ecol = op->col;
            return rc;
        }
        if (take > 1)
            n = 1;
    }
    *dst = v[0];
    return 0;
}

/* The last step of field i for a value of another type than the one bind expected, or one
 * that needs a check per value: what the encoder takes. 0, or SIPHON_ECONVERT with x->why
 * (x->eline/ecol are the caller's). */
static __attribute__((noinline)) int convert_value(map_image_ctx_t *x, int i, map_conv_t conv,
                                                   siphon_value_t *dst)
{
    const map_field_t *mf = &x->b->map->fields[i];
    int rc;
    switch (conv) {
    case MAP_C_COPY:
        return 0;
    case MAP_C_RAW_UTF8: {
        size_t bad = siphon_mapping__utf8_invalid_at((const unsigned char *)dst->u.s.ptr,
                                                     dst->u.s.len);
        if (bad < dst->u.s.len) {
            snprintf(x->why, sizeof(x->why),
                     "the text is not UTF-8 (byte 0x%02x at offset %zu) and the database does "
                     "not say its charset (expected source.charset: windows-1252, or a charset "
                     "transform, to convert it)",
                     (unsigned char)dst->u.s.ptr[bad], bad);
            return SIPHON_ECONVERT;
        }
        dst->type = SIPHON_V_TEXT;
        return 0;
    }
    case MAP_C_INT_DEC:
        siphon_value_set_dec_i64(dst, dst->u.i, 0);
        return 0;
    case MAP_C_DEC_INT: {
        char ibuf[SIPHON_DEC_I64_CHARS];
        const char *d;
        size_t len = siphon_value_dec_digits(dst, ibuf, &d);
        int32_t sc = dst->u.dec.scale;
        int ok = 1;
        for (int32_t k = 0; k < sc && ok; k++)
            ok = (size_t)k < len && d[len - 1 - (size_t)k] == '0';
        int64_t iv = 0;
        if (ok) {
            /* the whole part: '-'? digits, at most 18 of them (no overflow) */
            size_t il = len > (size_t)sc ? len - (size_t)sc : 0, k = 0;
            int neg = il > 0 && d[0] == '-';
            k = (size_t)neg;
            ok = il > k && il - k <= 18;
            for (; ok && k < il; k++) {
                ok = d[k] >= '0' && d[k] <= '9';
                iv = iv * 10 + (d[k] - '0');
            }
            if (neg)
                iv = -iv;
        }
        if (!ok) {
            char sn[80];
            siphon_mapping__value_snippet(dst, sn, sizeof(sn));
            snprintf(x->why, sizeof(x->why), "value %s is not a whole number in range", sn);
            return SIPHON_ECONVERT;
        }
        dst->type = SIPHON_V_INT;
        dst->u.i = iv;
        return 0;
    }
    case MAP_C_TEXT:
        if ((rc = to_text(&x->ms->row, dst, dst)) < 0)
            return rc;
        return 0;
    default: {
        char sn[80], tn[64];
        siphon_mapping__type_name(mf->af, tn, sizeof(tn));
        siphon_mapping__value_snippet(dst, sn, sizeof(sn));
        snprintf(x->why, sizeof(x->why),
                 "the source sent a %s value %s, which cannot become %s (expected %s)",
                 siphon_vtype_name(dst->type), sn, tn,
                 siphon_mapping__target_expects(mf->target));
        return SIPHON_ECONVERT;
    }
    }
}

/* The checks of a converted value against field i's type (plan check). 0 or SIPHON_ECONVERT
 * with x->why. */
static int check_value(map_image_ctx_t *x, int i, map_check_t check, const siphon_value_t *dst)
{
    const map_field_t *mf = &x->b->map->fields[i];
    switch (check) {
    case MAP_K_ENUM:
        if (!enum_has(mf->af->base, dst->u.s.ptr, dst->u.s.len)) {
            char sn[80];
            siphon_mapping__value_snippet(dst, sn, sizeof(sn));
            snprintf(x->why, sizeof(x->why),
                     "value %s is not a symbol of enum %s (expected one of its symbols, e.g. "
                     "through a lookup transform)",
                     sn, mf->af->base->name);
            return SIPHON_ECONVERT;
        }
        return 0;
    case MAP_K_DECIMAL:
        return dec_fits(dst, mf->af->base, x->why, sizeof(x->why)) < 0 ? SIPHON_ECONVERT : 0;
    case MAP_K_INT32:
        if (dst->u.i < INT32_MIN || dst->u.i > INT32_MAX) {
            snprintf(x->why, sizeof(x->why),
                     "value %" PRId64 " does not fit an Avro int (32 bits)", dst->u.i);
            return SIPHON_ECONVERT;
        }
        return 0;
    default:
        return 0;
    }
}

/* The value of field i from `row` (TOAST-unchanged columns from `fallback` when it has them).
 * 0 with *dst set (possibly null or unchanged, which the caller judges), or SIPHON_ECONVERT
 * with x->why and x->eline/ecol, or SIPHON_ENOMEM. */
static inline int eval_field(map_image_ctx_t *x, map_eval_t *evp, int i, const map_plan_t *p,
                             const uint8_t *optype, const siphon_row_t *row,
                             const siphon_row_t *fallback, siphon_value_t *dst)
{
    int rc;

    switch (p->kind) {
    case MAP_P_VALUE:
        *dst = *p->value;
        return 0;
    case MAP_P_COLUMN: {
        /* the common field: one column and the field's own chain, worked on in place */
        const siphon_value_t *s = &row->vals[p->col];
        if (s->type == SIPHON_V_UNCHANGED && fallback &&
            fallback->vals[p->col].type != SIPHON_V_UNCHANGED)
            s = &fallback->vals[p->col];
        *dst = *s;
        if (dst->type == SIPHON_V_UNCHANGED)
            return 0;
        if (p->implicit && dst->type == SIPHON_V_RAWTEXT) {
            const map_charset_t *cs = x->b->map->charset;
            if (cs->ascii_same &&
                siphon_mapping__ascii((const unsigned char *)dst->u.s.ptr, dst->u.s.len)) {
                dst->type = SIPHON_V_TEXT; /* ASCII: the bytes are UTF-8 already */
            } else if ((rc = siphon_mapping__charset_convert(cs, dst, evp)) != 0) {
                const map_input_t *in = &x->b->map->fields[i].in[0];
                x->eline = in->line;
                x->ecol = in->col;
                return rc;
            }
        }
        for (const map_op_t *op = p->ops, *end = op + p->nops; op < end; op++)
            if ((rc = siphon_mapping__op_apply(op, (siphon_vtype_t)optype[op->idx], dst, 1,
                                               evp)) != 0) {
                x->eline = op->line;
                x->ecol = op->col;
                return rc;
            }
        break;
    }
    default:
        if ((rc = eval_inputs(x, evp, i, row, fallback, dst)) != 0 ||
            dst->type == SIPHON_V_UNCHANGED)
            return rc;
        break;
    }

    /* the last step: what the encoder takes (decided at bind for the chain's static type) */
    if (dst->type == SIPHON_V_NULL)
        return 0;
    rc = 0;
    if (dst->type != (siphon_vtype_t)p->outvt || p->conv != MAP_C_COPY)
        rc = convert_value(x, i, dst->type == (siphon_vtype_t)p->outvt
                                     ? (map_conv_t)p->conv
                                     : siphon_mapping__conv(x->b->map->fields[i].target,
                                                            dst->type),
                           dst);
    if (rc == 0 && p->check != MAP_K_NONE)
        rc = check_value(x, i, (map_check_t)p->check, dst);
    if (rc == SIPHON_ECONVERT) {
        x->eline = x->b->map->fields[i].line;
        x->ecol = x->b->map->fields[i].col;
    }
    return rc;
}

/* Fill the mapping's error record for field i (NULL: the row) from x. Returns SIPHON_ECONVERT. */
static int set_error(map_image_ctx_t *x, int i)
{
    siphon_mapping_t *map = x->b->map;
    const siphon_relation_t *rel = x->chg->rel;
    siphon_map_error_t *e = &map->err;
    const map_field_t *mf = i >= 0 ? &map->fields[i] : NULL;
    snprintf(map->errreason, sizeof(map->errreason), "%s", x->why);
    if (mf)
        snprintf(map->errmsg, sizeof(map->errmsg),
                 "%s:%d:%d: could not map field '%s' of %s v%d from column%s %s of %s.%s (%s "
                 "row): %s",
                 map->path, x->eline, x->ecol, mf->af->name, map->entity, map->major,
                 mf->columns && strchr(mf->columns, ',') ? "s" : "",
                 mf->columns ? mf->columns : "(none)", str_or_empty(rel->schema),
                 str_or_empty(rel->name), x->which, x->why);
    else
        snprintf(map->errmsg, sizeof(map->errmsg), "%s:%d:%d: could not map a change of %s.%s: %s",
                 map->path, x->eline, x->ecol, str_or_empty(rel->schema), str_or_empty(rel->name),
                 x->why);
    e->code = SIPHON_ECONVERT;
    e->field = mf ? mf->af->name : NULL;
    e->columns = mf ? mf->columns : NULL;
    e->reason = map->errreason;
    e->message = map->errmsg;
    e->line = x->eline;
    e->col = x->ecol;
    return SIPHON_ECONVERT;
}

/* Fill dst (one value per schema field) from `row`, taking TOAST-unchanged columns from
 * `fallback` when it has them. strict (the new row): an unchanged or null value for a field
 * that is not nullable, or a value that does not convert, is an error (map->err set, or a
 * nulled field with a warning under on_error: null). Not strict (the old row): such a value
 * only makes the image incomplete (*complete = 0). */
static int map_image(map_image_ctx_t *x, const siphon_row_t *row, const siphon_row_t *fallback,
                     int strict, siphon_value_t *dst, int *complete)
{
    siphon_mapping_t *map = x->b->map;
    const siphon_relation_t *rel = x->chg->rel;
    char tn[64];
    int rc;

    *complete = 1;
    if (row->ncols != rel->ncols || (fallback && fallback->ncols != rel->ncols))
        return siphon_err(x->errbuf, x->errsize, SIPHON_EINVAL,
                          "could not map a change of %s.%s: its %s row has %d values for %d "
                          "columns (a connector bug: report it)",
                          str_or_empty(rel->schema), str_or_empty(rel->name), x->which,
                          fallback && fallback->ncols != rel->ncols ? fallback->ncols
                                                                     : row->ncols,
                          rel->ncols);
    map_eval_t ev = {&x->ms->row, x->why, sizeof(x->why)};
    const map_plan_t *plan = x->b->plan;
    const uint8_t *optype = x->b->optype;
    for (int i = 0, nf = map->nfields; i < nf; i++) {
        rc = eval_field(x, &ev, i, &plan[i], optype, row, fallback, &dst[i]);
        if (rc == 0 && dst[i].type != SIPHON_V_UNCHANGED && dst[i].type != SIPHON_V_NULL)
            continue; /* a value */
        const map_field_t *mf = &map->fields[i];
        if (rc == SIPHON_ENOMEM)
            return siphon_err(x->errbuf, x->errsize, rc, "out of memory mapping a change of %s.%s",
                              str_or_empty(rel->schema), str_or_empty(rel->name));
        if (rc == 0 && (dst[i].type == SIPHON_V_UNCHANGED || dst[i].type == SIPHON_V_NULL)) {
            if (mf->af->nullable && dst[i].type == SIPHON_V_NULL)
                continue;
            *complete = 0;
            if (!strict || mf->af->nullable)
                continue;
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            x->eline = mf->line;
            x->ecol = mf->col;
            if (dst[i].type == SIPHON_V_NULL)
                snprintf(x->why, sizeof(x->why),
                         "the value is null, but field '%s' (%s) is not nullable (expected a "
                         "value: a default transform, or a nullable field [\"null\", ...] in "
                         "the schema)",
                         mf->af->name, tn);
            else
                snprintf(x->why, sizeof(x->why),
                         "the column was not sent (an unchanged TOASTed value) and field '%s' "
                         "(%s) is not nullable (expected ALTER TABLE %s.%s REPLICA IDENTITY "
                         "FULL, or a nullable field)",
                         mf->af->name, tn, str_or_empty(rel->schema), str_or_empty(rel->name));
            rc = SIPHON_ECONVERT;
        }
        if (rc == 0)
            continue;
        /* a value that does not convert */
        if (!strict) {
            *complete = 0;
            dst[i].type = SIPHON_V_UNCHANGED;
            continue;
        }
        if (map->on_error == MAP_ON_ERROR_NULL && mf->af->nullable) {
            set_error(x, i);
            siphon_map_error_t *w = &map->warn[map->nwarn];
            *w = map->err;
            snprintf(map->warnmsg[map->nwarn], sizeof(map->warnmsg[0]), "%.383s", map->errmsg);
            w->message = map->warnmsg[map->nwarn];
            w->reason = map->warnmsg[map->nwarn]; /* the reason is the tail of the message */
            const char *tail = strstr(map->warnmsg[map->nwarn], "): ");
            if (tail)
                w->reason = tail + 3;
            map->nwarn++;
            dst[i].type = SIPHON_V_NULL;
            continue;
        }
        if (map->on_error == MAP_ON_ERROR_NULL) {
            char tmp[1024];
            snprintf(tmp, sizeof(tmp), "%.400s (on_error: null, but field '%.200s' is not "
                     "nullable)", x->why, mf->af->name);
            snprintf(x->why, sizeof(x->why), "%.500s", tmp);
        }
        return set_error(x, i);
    }
    return 0;
}

/* Is the row flagged deleted? 1, 0, or -1 (the flag was not sent). */
static int soft_deleted(const map_binding_t *b, const siphon_row_t *row)
{
    const siphon_mapping_t *map = b->map;
    if (b->soft_col < 0 || !row)
        return 0;
    const siphon_value_t *v = &row->vals[b->soft_col];
    if (v->type == SIPHON_V_UNCHANGED)
        return -1;
    if (v->type == SIPHON_V_NULL)
        return 0;
    for (int i = 0; i < map->nsoft; i++) {
        const map_const_t *c = &map->soft_vals[i];
        if (v->type == SIPHON_V_TEXT || v->type == SIPHON_V_RAWTEXT) {
            size_t a = v->u.s.len, n = c->len;
            while (a > 0 && v->u.s.ptr[a - 1] == ' ')
                a--;
            while (n > 0 && c->text[n - 1] == ' ')
                n--;
            if (a == n && memcmp(v->u.s.ptr, c->text, a) == 0)
                return 1;
        } else if ((c->ok & (1u << v->type)) && siphon_value_equal(&c->as[v->type], v)) {
            return 1;
        }
    }
    return 0;
}

/* The key of an image into map->key. 0 or SIPHON_ECONVERT (map->err set). */
static int make_key(map_image_ctx_t *x, const siphon_value_t *src, const char *which)
{
    siphon_mapping_t *map = x->b->map;
    const siphon_relation_t *rel = x->chg->rel;
    for (int k = 0; k < map->nkey; k++) {
        int fi = map->key_idx[k];
        const map_field_t *mf = &map->fields[fi];
        map->key[k] = src[fi];
        if (src[fi].type == SIPHON_V_UNCHANGED ||
            (src[fi].type == SIPHON_V_NULL && !mf->af->nullable)) {
            x->eline = mf->line;
            x->ecol = mf->col;
            snprintf(x->why, sizeof(x->why),
                     "key field '%s' has no value in the %s row of %s.%s: column(s) %s %s "
                     "(expected key fields from the primary key or the REPLICA IDENTITY "
                     "columns)",
                     mf->af->name, which, str_or_empty(rel->schema), str_or_empty(rel->name),
                     str_or_empty(mf->columns),
                     src[fi].type == SIPHON_V_NULL ? "gave null" : "not in the replica identity");
            return set_error(x, fi);
        }
    }
    return 0;
}

/* What one mapping makes of one change: 0 with *out filled, 1 when the mapping gives nothing
 * for it (filtered out, flagged deleted), SIPHON_ECONVERT with map->err (a dead letter), or
 * another negative code. */
static int map_change(siphon_mapset_t *ms, const map_binding_t *b, const siphon_change_t *chg,
                      char op, siphon_mapped_t *out, char *errbuf, size_t errsize)
{
    siphon_mapping_t *map = b->map;
    const siphon_relation_t *rel = chg->rel;
    map_image_ctx_t x; /* not zeroed whole: its 512-byte reason is written before it is read */
    int complete = 0, rc;

    x.ms = ms;
    x.b = b;
    x.chg = chg;
    x.which = "new";
    x.errbuf = errbuf;
    x.errsize = errsize;
    x.why[0] = '\0';
    x.eline = x.ecol = 0;

    memset(out, 0, sizeof(*out));
    out->map = map;
    out->op = op;
    out->row = op == 'd' ? chg->before : chg->after;
    map->nwarn = 0;
    x.eline = map->entity_line;
    x.ecol = map->entity_col;
    if (op != 'd' && !chg->after)
        return map_fail(errbuf, errsize, SIPHON_EINVAL, map, map->entity_line, map->entity_col,
                        "could not map a change (op '%c') of %s.%s: it has no new row (a "
                        "connector bug: report it)",
                        op, str_or_empty(rel->schema), str_or_empty(rel->name));
    if (op == 'd' && !chg->before) {
        snprintf(x.why, sizeof(x.why),
                 "the source sent no old row for a delete, so there is no key (expected a "
                 "replica identity on the table)");
        return set_error(&x, -1);
    }

    /* the filter */
    int leaving = 0;
    if (map->filter) {
        const siphon_row_t *r = op == 'd' ? chg->before : chg->after;
        int pass = siphon_mapping__filter_eval(map->filter, b->fcol, r);
        if (pass == -1 && op == 'u' && chg->before)
            pass = siphon_mapping__filter_eval(map->filter, b->fcol, chg->before);
        if (pass == 0) {
            if (op != 'u' || !chg->before ||
                siphon_mapping__filter_eval(map->filter, b->fcol, chg->before) != 1)
                return 1;
            leaving = 1; /* it was in, it is out now: consumers must forget it */
        }
    }

    /* the soft-delete flag */
    int soft_del = 0;
    if (b->soft_col >= 0 && op != 'd') {
        int now = soft_deleted(b, chg->after);
        if (now == -1 && chg->before)
            now = soft_deleted(b, chg->before);
        int was = op == 'u' && chg->before ? soft_deleted(b, chg->before) : 0;
        if (now == 1) {
            if (op != 'u' || was == 1)
                return 1;
            soft_del = 1;
        } else if (op == 'u' && was == 1) {
            op = out->op = 'c'; /* undeleted: it exists again */
        }
    }

    if (leaving) {
        /* map the old row (complete under REPLICA IDENTITY FULL) for the key of the delete */
        x.which = "old";
        if ((rc = map_image(&x, chg->before, NULL, 0, map->before, &complete)) < 0)
            return rc;
        out->op = 'd';
        out->row = chg->before;
        out->before = complete ? map->before : NULL;
        if ((rc = make_key(&x, map->before, "old")) < 0)
            return rc;
        out->key = map->key;
        return 0;
    }

    if (op != 'd') {
        if ((rc = map_image(&x, chg->after, op == 'u' ? chg->before : NULL, 1, map->after,
                            &complete)) < 0)
            return rc;
        out->after = map->after;
    }
    if (op == 'u' || op == 'd') {
        if (chg->before) {
            x.which = "old";
            if ((rc = map_image(&x, chg->before, NULL, 0, map->before, &complete)) < 0)
                return rc;
            if (complete)
                out->before = map->before;
        }
    }
    if (soft_del) {
        /* flagged deleted: a delete carrying the row as it was when flagged */
        out->op = 'd';
        out->before = out->after;
        out->after = NULL;
        x.which = "new";
        if ((rc = make_key(&x, map->after, "new")) < 0)
            return rc;
        out->key = map->key;
        return 0;
    }
    x.which = op == 'd' ? "old" : "new";
    if ((rc = make_key(&x, op == 'd' ? map->before : map->after, x.which)) < 0)
        return rc;
    out->key = map->key;
    if (map->nwarn) {
        out->warnings = map->warn;
        out->nwarnings = map->nwarn;
    }
    return 0;
}

/* After map_change() of an update with an old row: when every key field has a value in the old
 * row and one of them differs from the new row, *out points at the old key (arena memory valid
 * until the next apply); else *out stays NULL. */
static int old_key_if_changed(siphon_mapset_t *ms, const siphon_mapping_t *map,
                              const siphon_value_t **out)
{
    int changed = 0;
    for (int k = 0; k < map->nkey; k++) {
        const siphon_value_t *ov = &map->before[map->key_idx[k]];
        if (ov->type == SIPHON_V_UNCHANGED)
            return 0; /* the old row does not carry this key field: nothing to compare */
        changed |= !siphon_value_equal(ov, &map->after[map->key_idx[k]]);
    }
    if (!changed)
        return 0;
    siphon_value_t *key = siphon_arena_alloc(&ms->row, sizeof(*key) * (size_t)map->nkey);
    if (!key)
        return SIPHON_ENOMEM;
    for (int k = 0; k < map->nkey; k++)
        key[k] = map->before[map->key_idx[k]];
    *out = key;
    return 0;
}

int siphon_mapset_apply(siphon_mapset_t *ms, const siphon_change_t *chg, char *errbuf,
                        size_t errsize, siphon_mapped_cb cb, void *opaque)
{
    map_relentry_t *e;
    siphon_mapped_t out;
    char op;
    int rc;

    if (!ms || !chg || !cb)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not map: no change given");
    if (chg->kind != SIPHON_REC_CHANGE || chg->op == SIPHON_OP_TRUNCATE)
        return 0;
    if (!chg->rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not map a change: it names no relation");
    switch (chg->op) {
    case SIPHON_OP_CREATE: op = chg->snapshot ? 'r' : 'c'; break;
    case SIPHON_OP_READ: op = 'r'; break;
    case SIPHON_OP_UPDATE: op = 'u'; break;
    case SIPHON_OP_DELETE: op = 'd'; break;
    default:
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not map a change of %s.%s: unknown operation %d",
                          str_or_empty(chg->rel->schema), str_or_empty(chg->rel->name),
                          (int)chg->op);
    }
    if (!(e = rel_find(ms, chg->rel->version)) &&
        (rc = rel_bind(ms, chg->rel, &e, errbuf, errsize)) < 0)
        return rc;
    if (e->nbind == 0)
        return 0;
    siphon_arena_reset(&ms->row);
    for (int i = 0; i < e->nbind; i++) {
        siphon_mapping_t *map = e->binds[i].map;
        rc = map_change(ms, &e->binds[i], chg, op, &out, errbuf, errsize);
        if (rc == 1)
            continue;
        if (rc == SIPHON_ECONVERT) {
            if (map->on_error == MAP_ON_ERROR_FAIL)
                return siphon_err(errbuf, errsize, rc,
                                  "%s (on_error: fail in %s: fix the row or the mapping, or "
                                  "set on_error: dead_letter)",
                                  map->errmsg, map->path);
            siphon_mapped_t dl = {map, out.op, NULL, NULL, NULL, &map->err, out.row, NULL, 0};
            if ((rc = cb(&dl, opaque)) != 0)
                return rc;
            continue;
        }
        if (rc < 0)
            return rc;
        const siphon_value_t *oldkey = NULL;
        if (out.op == 'u' && chg->before && (rc = old_key_if_changed(ms, out.map, &oldkey)) < 0)
            return rc;
        if (oldkey) {
            /* The key changed: a delete of the old key, then a create of the new one, so a
             * compacted topic does not keep the old key alive. */
            siphon_mapped_t del = {out.map, 'd', out.before, NULL, oldkey, NULL, chg->before,
                                   NULL, 0};
            siphon_mapped_t cre = {out.map, 'c', NULL, out.after, out.key, NULL, chg->after,
                                   out.warnings, out.nwarnings};
            if ((rc = cb(&del, opaque)) != 0 || (rc = cb(&cre, opaque)) != 0)
                return rc;
            continue;
        }
        if ((rc = cb(&out, opaque)) != 0)
            return rc;
    }
    return 0;
}

/* ---- the set and accessors ---- */

void siphon_mapset_destroy(siphon_mapset_t *ms)
{
    if (!ms)
        return;
    for (size_t i = 0; i < ms->relcap; i++) {
        if (!ms->rels[i].used)
            continue;
        for (int j = 0; j < ms->rels[i].nbind; j++)
            binding_free(&ms->rels[i].binds[j]);
        free(ms->rels[i].binds);
    }
    free(ms->rels);
    for (int i = 0; i < ms->n; i++)
        siphon_mapping__free(ms->maps[i]);
    free(ms->maps);
    siphon_arena_destroy(&ms->row);
    free(ms);
}

int siphon_mapset_count(const siphon_mapset_t *ms) { return ms ? ms->n : 0; }

const siphon_mapping_t *siphon_mapset_get(const siphon_mapset_t *ms, int i)
{
    return ms && i >= 0 && i < ms->n ? ms->maps[i] : NULL;
}

const char *siphon_mapping_entity(const siphon_mapping_t *map) { return map->entity; }
int siphon_mapping_major(const siphon_mapping_t *map) { return map->major; }
const char *siphon_mapping_source_schema(const siphon_mapping_t *map) { return map->src_schema; }
const char *siphon_mapping_source_table(const siphon_mapping_t *map) { return map->src_table; }
const char *siphon_mapping_path(const siphon_mapping_t *map) { return map->path; }
const siphon_schema_t *siphon_mapping_schema(const siphon_mapping_t *map) { return map->sch; }
siphon_avro_stream_t *siphon_mapping_stream(const siphon_mapping_t *map) { return map->st; }
int siphon_mapping_key_count(const siphon_mapping_t *map) { return map->nkey; }

void siphon_mapping_source_position(const siphon_mapping_t *map, int *line, int *col)
{
    *line = map->table_line;
    *col = map->table_col;
}

const char *siphon_mapping_key_field(const siphon_mapping_t *map, int i)
{
    return i >= 0 && i < map->nkey ? map->key_names[i] : NULL;
}

const char *siphon_mapping_field_column(const siphon_mapping_t *map, int i)
{
    return i >= 0 && i < map->nfields ? map->fields[i].column : NULL;
}

const char *siphon_mapping_field_columns(const siphon_mapping_t *map, int i)
{
    return i >= 0 && i < map->nfields ? map->fields[i].columns : NULL;
}

const char *siphon_mapping_on_error(const siphon_mapping_t *map)
{
    return map->on_error == MAP_ON_ERROR_FAIL   ? "fail"
           : map->on_error == MAP_ON_ERROR_NULL ? "null"
                                                : "dead_letter";
}
