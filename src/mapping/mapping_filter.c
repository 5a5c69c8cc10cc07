/*
 * mapping_filter.c - row filters: `filter: "hdcomp = '01' and hddoct in ('SO', 'BO')"`.
 *
 * A filter is a small SQL-like boolean expression over the source row, evaluated before any
 * field is mapped: rows it rejects give no event (and no dead letter). Grammar:
 *
 *     expr  := term ('or' term)*
 *     term  := factor ('and' factor)*
 *     factor:= 'not' factor | '(' expr ')' | cmp
 *     cmp   := column op literal | literal op column
 *            | column ['not'] 'in' '(' literal (',' literal)* ')'
 *            | column 'is' ['not'] 'null'
 *     op    := = | <> | != | < | <= | > | >=
 *     literal := 'text' ('' for a quote) | number | true | false
 *
 * Keywords are case-insensitive; column names are matched like mapped columns. Comparisons
 * follow SQL: text compares as CHAR does (trailing spaces do not count), numbers by value
 * (exact decimals), dates written 'YYYY-MM-DD'; a null makes a comparison unknown, and a row
 * passes only when the whole expression is true. The literals are parsed into the column's
 * type at bind, so evaluation compares values without parsing anything.
 *
 * A column the source did not send (a non-key column in the old row of a delete under the
 * default replica identity) makes the result "cannot tell" (-1): the caller lets such a change
 * through rather than lose a delete.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "mapping/mapping_int.h"

typedef enum fkind { F_OR, F_AND, F_NOT, F_CMP, F_IN, F_ISNULL } fkind_t;
typedef enum fop { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } fop_t;

typedef struct fnode {
    fkind_t kind;
    int neg;               /* not in / is not null */
    fop_t op;
    struct fnode *l, *r;
    int slot;              /* filter column */
    map_const_t *vals;
    int nvals;
    int line, col;         /* of the column name */
} fnode_t;

struct map_filter {
    fnode_t *root;
    char **cols;
    int *lines, *colpos;
    int ncols;
    siphon_vtype_t *vts;   /* bound types, per column */
};

typedef struct fparser {
    const char *text, *p;
    const char *path;
    int line, col;         /* of text[0] */
    siphon_arena_t *arena;
    map_filter_t *f;
    char *errbuf;
    size_t errsize;
    int depth;
} fparser_t;

static int perr(fparser_t *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(fparser_t *ps, const char *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return siphon_err(ps->errbuf, ps->errsize, SIPHON_EINVAL, "%s:%d:%d: %s (in filter \"%s\")",
                      ps->path, ps->line, ps->col + (int)(at - ps->text), msg, ps->text);
}

static void skip_ws(fparser_t *ps)
{
    while (*ps->p && isspace((unsigned char)*ps->p))
        ps->p++;
}

static int is_text_kind(siphon_vtype_t t) { return t == SIPHON_V_TEXT || t == SIPHON_V_RAWTEXT; }

static int is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_ident(char c) { return isalnum((unsigned char)c) || c == '_' || c == '$' || c == '#'; }

/* The keyword kw (case-insensitive, whole word) is next: consume it. */
static int keyword(fparser_t *ps, const char *kw)
{
    skip_ws(ps);
    size_t n = strlen(kw);
    if (strncasecmp(ps->p, kw, n) == 0 && !is_ident(ps->p[n])) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static fnode_t *node(fparser_t *ps, fkind_t k)
{
    fnode_t *n = siphon_arena_alloc(ps->arena, sizeof(*n));
    if (n) {
        memset(n, 0, sizeof(*n));
        n->kind = k;
    }
    return n;
}

static int column_slot(fparser_t *ps, const char *name, size_t len, int col)
{
    map_filter_t *f = ps->f;
    for (int i = 0; i < f->ncols; i++)
        if (strlen(f->cols[i]) == len && strncmp(f->cols[i], name, len) == 0)
            return i;
    char **c = realloc(f->cols, (size_t)(f->ncols + 1) * sizeof(*c));
    if (c)
        f->cols = c;
    int *l = realloc(f->lines, (size_t)(f->ncols + 1) * sizeof(int));
    if (l)
        f->lines = l;
    int *cp = realloc(f->colpos, (size_t)(f->ncols + 1) * sizeof(int));
    if (cp)
        f->colpos = cp;
    if (!c || !l || !cp || !(f->cols[f->ncols] = strndup(name, len)))
        return SIPHON_ENOMEM;
    f->lines[f->ncols] = ps->line;
    f->colpos[f->ncols] = col;
    return f->ncols++;
}

/* A literal at ps->p into *c (arena). 1 parsed, 0 not a literal here, <0 error. */
static int literal(fparser_t *ps, map_const_t *c)
{
    skip_ws(ps);
    const char *s = ps->p;
    memset(c, 0, sizeof(*c));
    if (*s == '\'') {
        size_t cap = strlen(s), o = 0;
        char *t = siphon_arena_alloc(ps->arena, cap + 1);
        if (!t)
            return SIPHON_ENOMEM;
        for (s++;; s++) {
            if (!*s)
                return perr(ps, ps->p, "unterminated text literal (expected a closing ')");
            if (*s == '\'') {
                if (s[1] != '\'')
                    break;
                s++;
            }
            t[o++] = *s;
        }
        t[o] = '\0';
        c->text = t;
        c->len = o;
        ps->p = s + 1;
        return 1;
    }
    if (isdigit((unsigned char)*s) || ((*s == '-' || *s == '+' || *s == '.') &&
                                       (isdigit((unsigned char)s[1]) || s[1] == '.'))) {
        const char *b = s++;
        while (isdigit((unsigned char)*s) || *s == '.')
            s++;
        c->text = siphon_arena_strndup(ps->arena, b, (size_t)(s - b));
        if (!c->text)
            return SIPHON_ENOMEM;
        c->len = (size_t)(s - b);
        c->plain = 1;
        ps->p = s;
        return 1;
    }
    if ((strncasecmp(s, "true", 4) == 0 && !is_ident(s[4])) ||
        (strncasecmp(s, "false", 5) == 0 && !is_ident(s[5]))) {
        size_t n = tolower((unsigned char)s[0]) == 't' ? 4 : 5;
        c->text = n == 4 ? "true" : "false";
        c->len = n;
        c->plain = 1;
        ps->p = s + n;
        return 1;
    }
    return 0;
}

static int expr(fparser_t *ps, fnode_t **out);

static int comparison(fparser_t *ps, fnode_t **out)
{
    skip_ws(ps);
    const char *start = ps->p;
    map_const_t lit;
    int rc, flipped = 0;
    const char *colname = NULL;
    size_t collen = 0;
    int colcol = 0;

    if ((rc = literal(ps, &lit)) < 0)
        return rc;
    if (rc == 1) {
        flipped = 1;
    } else if (is_ident_start(*ps->p)) {
        colname = ps->p;
        while (is_ident(*ps->p))
            ps->p++;
        collen = (size_t)(ps->p - colname);
        colcol = ps->col + (int)(colname - ps->text);
        static const char *const reserved[] = {"and", "or", "not", "in", "is", "null"};
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
            if (strlen(reserved[i]) == collen && strncasecmp(colname, reserved[i], collen) == 0)
                return perr(ps, colname, "expected a column name, found '%.*s'", (int)collen,
                            colname);
    } else {
        return perr(ps, ps->p, *ps->p ? "expected a column name or a value, found '%.12s'"
                                      : "expected a column name or a value%.0s at the end",
                    ps->p);
    }

    fnode_t *n = node(ps, F_CMP);
    if (!n)
        return SIPHON_ENOMEM;
    skip_ws(ps);
    const char *opat = ps->p;
    if (!flipped) {
        n->line = ps->line;
        n->col = colcol;
        if ((n->slot = column_slot(ps, colname, collen, colcol)) < 0)
            return n->slot;
        if (keyword(ps, "is")) {
            n->kind = F_ISNULL;
            n->neg = keyword(ps, "not");
            if (!keyword(ps, "null"))
                return perr(ps, ps->p, "expected null after 'is'");
            *out = n;
            return 0;
        }
        const char *save = ps->p;
        int neg = keyword(ps, "not");
        if (keyword(ps, "in")) {
            n->kind = F_IN;
            n->neg = neg;
            skip_ws(ps);
            if (*ps->p != '(')
                return perr(ps, ps->p, "expected '(' and a list of values after 'in'");
            ps->p++;
            int cap = 8;
            n->vals = siphon_arena_alloc(ps->arena, sizeof(map_const_t) * (size_t)cap);
            if (!n->vals)
                return SIPHON_ENOMEM;
            for (;;) {
                if (n->nvals == cap) {
                    map_const_t *nv = siphon_arena_alloc(ps->arena, sizeof(map_const_t) * (size_t)cap * 2);
                    if (!nv)
                        return SIPHON_ENOMEM;
                    memcpy(nv, n->vals, sizeof(map_const_t) * (size_t)cap);
                    n->vals = nv;
                    cap *= 2;
                }
                if ((rc = literal(ps, &n->vals[n->nvals])) < 0)
                    return rc;
                if (rc == 0)
                    return perr(ps, ps->p, "expected a value in the list after 'in'");
                n->nvals++;
                skip_ws(ps);
                if (*ps->p == ',') {
                    ps->p++;
                    continue;
                }
                if (*ps->p == ')') {
                    ps->p++;
                    break;
                }
                return perr(ps, ps->p, "expected ',' or ')' in the list after 'in'");
            }
            *out = n;
            return 0;
        }
        if (neg) {
            ps->p = save;
            return perr(ps, ps->p, "expected 'in' after 'not' here");
        }
        opat = ps->p;
    }
    /* a comparison operator */
    static const struct {
        const char *s;
        fop_t op;
    } ops[] = {{"<>", OP_NE}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
               {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT}};
    int found = -1;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && found < 0; i++)
        if (strncmp(ps->p, ops[i].s, strlen(ops[i].s)) == 0) {
            found = (int)i;
            ps->p += strlen(ops[i].s);
        }
    if (found < 0)
        return perr(ps, opat,
                    flipped ? "expected a comparison (=, <>, <, <=, >, >=) after the value"
                            : "expected =, <>, <, <=, >, >=, in, not in or is [not] null after "
                              "the column");
    n->op = ops[found].op;
    n->vals = siphon_arena_alloc(ps->arena, sizeof(map_const_t));
    if (!n->vals)
        return SIPHON_ENOMEM;
    n->nvals = 1;
    if (flipped) {
        n->vals[0] = lit;
        skip_ws(ps);
        if (!is_ident_start(*ps->p))
            return perr(ps, ps->p, "expected a column name after the comparison");
        colname = ps->p;
        while (is_ident(*ps->p))
            ps->p++;
        collen = (size_t)(ps->p - colname);
        n->line = ps->line;
        n->col = ps->col + (int)(colname - ps->text);
        if ((n->slot = column_slot(ps, colname, collen, n->col)) < 0)
            return n->slot;
        /* 5 < x is x > 5 */
        static const fop_t flip[] = {OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE};
        n->op = flip[n->op];
    } else {
        if ((rc = literal(ps, &n->vals[0])) < 0)
            return rc;
        if (rc == 0)
            return perr(ps, ps->p,
                        "expected a value after the comparison ('text', a number, true or "
                        "false; comparing two columns is not supported)");
    }
    (void)start;
    *out = n;
    return 0;
}

static int factor(fparser_t *ps, fnode_t **out)
{
    int rc;
    if (++ps->depth > 64)
        return perr(ps, ps->p, "the filter is nested too deeply");
    if (keyword(ps, "not")) {
        fnode_t *n = node(ps, F_NOT);
        if (!n)
            return SIPHON_ENOMEM;
        if ((rc = factor(ps, &n->l)) < 0)
            return rc;
        *out = n;
    } else {
        skip_ws(ps);
        if (*ps->p == '(') {
            ps->p++;
            if ((rc = expr(ps, out)) < 0)
                return rc;
            skip_ws(ps);
            if (*ps->p != ')')
                return perr(ps, ps->p, "expected ')'");
            ps->p++;
        } else if ((rc = comparison(ps, out)) < 0) {
            return rc;
        }
    }
    ps->depth--;
    return 0;
}

static int binary(fparser_t *ps, fnode_t **out, fkind_t k, const char *kw)
{
    int rc = k == F_OR ? binary(ps, out, F_AND, "and") : factor(ps, out);
    if (rc < 0)
        return rc;
    while (keyword(ps, kw)) {
        fnode_t *n = node(ps, k);
        if (!n)
            return SIPHON_ENOMEM;
        n->l = *out;
        if ((rc = k == F_OR ? binary(ps, &n->r, F_AND, "and") : factor(ps, &n->r)) < 0)
            return rc;
        *out = n;
    }
    return 0;
}

static int expr(fparser_t *ps, fnode_t **out) { return binary(ps, out, F_OR, "or"); }

int siphon_mapping__filter_parse(map_filter_t **out, const char *text, const char *path,
                                 int line, int col, siphon_arena_t *arena, char *errbuf,
                                 size_t errsize)
{
    map_filter_t *f = calloc(1, sizeof(*f));
    if (!f)
        return SIPHON_ENOMEM;
    fparser_t ps = {text, text, path, line, col, arena, f, errbuf, errsize, 0};
    int rc = expr(&ps, &f->root);
    if (rc == 0) {
        skip_ws(&ps);
        if (*ps.p)
            rc = perr(&ps, ps.p, "unexpected '%.16s' (expected and, or, or the end)", ps.p);
    }
    if (rc < 0) {
        if (rc == SIPHON_ENOMEM)
            siphon_err(errbuf, errsize, rc, "out of memory parsing a filter");
        siphon_mapping__filter_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void siphon_mapping__filter_free(map_filter_t *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->ncols; i++)
        free(f->cols[i]);
    free(f->cols);
    free(f->lines);
    free(f->colpos);
    free(f->vts);
    free(f);
}

int siphon_mapping__filter_ncolumns(const map_filter_t *f) { return f ? f->ncols : 0; }

const char *siphon_mapping__filter_column(const map_filter_t *f, int i, int *line, int *col)
{
    *line = f->lines[i];
    *col = f->colpos[i];
    return f->cols[i];
}

/* ---- bind ---- */

static int bind_node(map_filter_t *f, fnode_t *n, const char *path, siphon_arena_t *arena,
                     char *errbuf, size_t errsize)
{
    int rc;
    switch (n->kind) {
    case F_OR:
    case F_AND:
        if ((rc = bind_node(f, n->r, path, arena, errbuf, errsize)) < 0)
            return rc;
        /* fall through */
    case F_NOT:
        return bind_node(f, n->l, path, arena, errbuf, errsize);
    case F_ISNULL:
        return 0;
    default:
        break;
    }
    siphon_vtype_t vt = f->vts[n->slot];
    switch (vt) {
    case SIPHON_V_TEXT:
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_INT:
    case SIPHON_V_DECIMAL:
    case SIPHON_V_DATE:
    case SIPHON_V_BOOL:
    case SIPHON_V_TIMESTAMP:
        break;
    default:
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "%s:%d:%d: column '%s' is %s, which a filter cannot compare (expected "
                          "a text, integer, numeric, date, boolean or timestamp column)",
                          path, n->line, n->col, f->cols[n->slot], siphon_vtype_name(vt));
    }
    for (int i = 0; i < n->nvals; i++) {
        map_const_t *c = &n->vals[i];
        const char *why;
        siphon_vtype_t want = vt;
        if (vt == SIPHON_V_INT && c->plain && memchr(c->text, '.', c->len))
            want = SIPHON_V_DECIMAL;
        if (vt == SIPHON_V_INT && !c->plain)
            goto mismatch;
        if (is_text_kind(vt) && c->plain)
            goto mismatch;
        if ((rc = siphon_mapping__const_as(c, want, arena, &why)) == SIPHON_ENOMEM)
            return rc;
        if (rc == 0)
            continue;
    mismatch:
        siphon_mapping__const_as(c, vt, arena, &why);
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "%s:%d:%d: column '%s' holds %s: compare it with %s, not %s%s%s",
                          path, n->line, n->col, f->cols[n->slot],
                          is_text_kind(vt) ? "text" : siphon_vtype_name(vt),
                          is_text_kind(vt) ? "quoted text such as '01'" : why,
                          c->plain ? "" : "'", c->text, c->plain ? "" : "'");
    }
    return 0;
}

int siphon_mapping__filter_bind(map_filter_t *f, const siphon_vtype_t *vts, const char *path,
                                siphon_arena_t *arena, char *errbuf, size_t errsize)
{
    if (!f->vts && !(f->vts = calloc((size_t)(f->ncols ? f->ncols : 1), sizeof(siphon_vtype_t))))
        return SIPHON_ENOMEM;
    memcpy(f->vts, vts, sizeof(siphon_vtype_t) * (size_t)f->ncols);
    return bind_node(f, f->root, path, arena, errbuf, errsize);
}

/* ---- evaluation ---- */

static size_t rtrim_n(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == ' ')
        n--;
    return n;
}

/* Compare two decimals by value: <0, 0, >0. */
static int dec_cmp(const siphon_value_t *a, const siphon_value_t *b)
{
    int na = a->u.dec.digits[0] == '-', nb = b->u.dec.digits[0] == '-';
    const char *da = a->u.dec.digits + na, *db = b->u.dec.digits + nb;
    size_t la = a->u.dec.len - (size_t)na, lb = b->u.dec.len - (size_t)nb;
    while (la > 1 && *da == '0') {
        da++;
        la--;
    }
    while (lb > 1 && *db == '0') {
        db++;
        lb--;
    }
    int za = la == 1 && *da == '0', zb = lb == 1 && *db == '0';
    if (za)
        na = 0;
    if (zb)
        nb = 0;
    if (na != nb)
        return na ? -1 : 1;
    /* integer part lengths (digits before the point) */
    long ia = (long)la - a->u.dec.scale, ib = (long)lb - b->u.dec.scale;
    int mag;
    if (za && zb)
        return 0;
    if (ia != ib && !(za || zb)) {
        mag = ia < ib ? -1 : 1;
    } else {
        /* walk digit positions from the highest */
        long hi = ia > ib ? ia : ib;
        long lo = -(long)(a->u.dec.scale > b->u.dec.scale ? a->u.dec.scale : b->u.dec.scale);
        mag = 0;
        for (long pos = hi - 1; pos >= lo && !mag; pos--) {
            long xa = ia - 1 - pos, xb = ib - 1 - pos; /* index into the digit strings */
            char ca = xa >= 0 && xa < (long)la ? da[xa] : '0';
            char cb = xb >= 0 && xb < (long)lb ? db[xb] : '0';
            mag = (ca > cb) - (ca < cb);
        }
    }
    return na ? -mag : mag;
}

static int cmp_values(siphon_vtype_t vt, const siphon_value_t *v, const map_const_t *c)
{
    if (is_text_kind(v->type)) {
        size_t a = rtrim_n(v->u.s.ptr, v->u.s.len), b = rtrim_n(c->text, c->len);
        int r = memcmp(v->u.s.ptr, c->text, a < b ? a : b);
        return r ? r : (a > b) - (a < b);
    }
    switch (v->type) {
    case SIPHON_V_INT:
        if (c->ok & (1u << SIPHON_V_INT)) {
            int64_t b = c->as[SIPHON_V_INT].u.i;
            return (v->u.i > b) - (v->u.i < b);
        } else {
            char d[24];
            siphon_value_t dv = {.type = SIPHON_V_DECIMAL};
            dv.u.dec.len = (size_t)snprintf(d, sizeof(d), "%lld", (long long)v->u.i);
            dv.u.dec.digits = d;
            return dec_cmp(&dv, &c->as[SIPHON_V_DECIMAL]);
        }
    case SIPHON_V_DECIMAL:
        return dec_cmp(v, &c->as[SIPHON_V_DECIMAL]);
    case SIPHON_V_DATE:
        return (v->u.date > c->as[SIPHON_V_DATE].u.date) - (v->u.date < c->as[SIPHON_V_DATE].u.date);
    case SIPHON_V_BOOL:
        return (!!v->u.b) - (!!c->as[SIPHON_V_BOOL].u.b);
    case SIPHON_V_TIMESTAMP:
        return (v->u.ts.us > c->as[SIPHON_V_TIMESTAMP].u.ts.us) -
               (v->u.ts.us < c->as[SIPHON_V_TIMESTAMP].u.ts.us);
    default:
        (void)vt;
        return 2; /* not comparable */
    }
}

/* 1 true, 0 false, 2 unknown (null). *unsent set when a column was not sent. */
static int eval(const map_filter_t *f, const fnode_t *n, const int *colidx, const siphon_row_t *row,
                int *unsent)
{
    int a, b;
    switch (n->kind) {
    case F_OR:
        a = eval(f, n->l, colidx, row, unsent);
        if (a == 1)
            return 1;
        b = eval(f, n->r, colidx, row, unsent);
        return b == 1 ? 1 : (a == 2 || b == 2) ? 2 : 0;
    case F_AND:
        a = eval(f, n->l, colidx, row, unsent);
        if (a == 0)
            return 0;
        b = eval(f, n->r, colidx, row, unsent);
        return b == 0 ? 0 : (a == 2 || b == 2) ? 2 : 1;
    case F_NOT:
        a = eval(f, n->l, colidx, row, unsent);
        return a == 2 ? 2 : !a;
    default:
        break;
    }
    const siphon_value_t *v = &row->vals[colidx[n->slot]];
    if (v->type == SIPHON_V_UNCHANGED) {
        *unsent = 1;
        return 2;
    }
    if (n->kind == F_ISNULL)
        return (v->type == SIPHON_V_NULL) != n->neg;
    if (v->type == SIPHON_V_NULL)
        return 2;
    siphon_vtype_t vt = f->vts[n->slot];
    if (v->type != vt && !(is_text_kind(v->type) && is_text_kind(vt)))
        return 2; /* e.g. a numeric NaN arriving as text: unknown */
    if (n->kind == F_IN) {
        for (int i = 0; i < n->nvals; i++)
            if (cmp_values(vt, v, &n->vals[i]) == 0)
                return !n->neg;
        return n->neg;
    }
    int r = cmp_values(vt, v, &n->vals[0]);
    if (r == 2)
        return 2;
    switch (n->op) {
    case OP_EQ: return r == 0;
    case OP_NE: return r != 0;
    case OP_LT: return r < 0;
    case OP_LE: return r <= 0;
    case OP_GT: return r > 0;
    default: return r >= 0;
    }
}

int siphon_mapping__filter_eval(const map_filter_t *f, const int *colidx,
                                const siphon_row_t *row)
{
    int unsent = 0;
    int r = eval(f, f->root, colidx, row, &unsent);
    if (r != 2)
        return r;
    return unsent ? -1 : 0; /* unknown: because of a column not sent, or of a null */
}
