/*
 * mapping_tz.c - calendar arithmetic and time zones for the date and timestamp transforms.
 *
 * Legacy ERPs keep local wall-clock dates and times (a YYYYMMDD column and an HHMMSS column),
 * so a canonical timestamp needs the zone they were written in. Zones are read once, at load,
 * from the system's compiled IANA database (TZif files, RFC 8536, under /usr/share/zoneinfo or
 * $TZDIR): the 64-bit transition table and, for instants after its last transition, the POSIX
 * TZ rule in the file's footer ("CST6CDT,M3.2.0,M11.1.0"). Nothing here touches the process's
 * TZ environment or libc's global time zone state, so conversions are thread-safe and cost a
 * binary search.
 *
 * Local -> UTC is not a function everywhere: a wall-clock time inside a spring-forward gap does
 * not exist, and one inside a fall-back overlap exists twice. The rule here (documented in
 * docs/mappings.md): a time in a gap is read with the offset in effect before the gap (02:30 on
 * a night that jumps from 02:00 to 03:00 is 03:30 of the new offset), a time in an overlap is
 * its first occurrence.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "mapping/mapping_int.h"

#define TZ_MAX_FILE (1 << 20)

/* ---- calendar ---- */

int64_t siphon_mapping__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void siphon_mapping__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int siphon_mapping__civil_valid(int64_t y, int m, int d)
{
    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- zones ---- */

typedef enum rule_kind { RULE_M = 0, RULE_J, RULE_N } rule_kind_t;

typedef struct tz_rule {
    rule_kind_t kind;
    int month, week, wday; /* M */
    int day;               /* J (1..365) or N (0..365) */
    int32_t time;          /* seconds after local midnight (may be negative or > 24 h) */
} tz_rule_t;

typedef struct tz_posix {
    int valid;
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    tz_rule_t start, end;
} tz_posix_t;

struct map_tz {
    char *name;
    int n;             /* transitions */
    int64_t *at;       /* UTC instants of the transitions, ascending */
    int32_t *off;      /* offset after each transition */
    int32_t first_off; /* before the first transition */
    tz_posix_t footer; /* after the last transition (when valid) */
    /* Local times in [hit_lo, hit_hi) are all hit_off east of UTC, unambiguously (a span
     * between two transitions, less three days at each end): the last lookup, kept because
     * consecutive rows are nearly always in the same span. Written by tz_to_utc on the thread
     * that maps rows (a mapping set is used by one thread at a time). */
    int64_t hit_lo, hit_hi;
    int32_t hit_off;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* [+-]hh[:mm[:ss]] -> seconds; NULL on error, else the end. */
static const char *parse_hms(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s))
        return NULL;
    long h = 0, m = 0, sec = 0;
    while (isdigit((unsigned char)*s))
        h = h * 10 + (*s++ - '0');
    if (*s == ':') {
        s++;
        if (!isdigit((unsigned char)*s))
            return NULL;
        while (isdigit((unsigned char)*s))
            m = m * 10 + (*s++ - '0');
        if (*s == ':') {
            s++;
            if (!isdigit((unsigned char)*s))
                return NULL;
            while (isdigit((unsigned char)*s))
                sec = sec * 10 + (*s++ - '0');
        }
    }
    if (h > 167 || m > 59 || sec > 59)
        return NULL;
    *out = (int32_t)(sign * (h * 3600 + m * 60 + sec));
    return s;
}

static const char *parse_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    const char *b = s;
    while (isalpha((unsigned char)*s))
        s++;
    return s - b >= 3 ? s : NULL;
}

static const char *parse_rule(const char *s, tz_rule_t *r)
{
    r->time = 7200;
    if (*s == 'M') {
        r->kind = RULE_M;
        if (sscanf(s + 1, "%d.%d.%d", &r->month, &r->week, &r->wday) != 3 || r->month < 1 ||
            r->month > 12 || r->week < 1 || r->week > 5 || r->wday < 0 || r->wday > 6)
            return NULL;
        s++;
        while (isdigit((unsigned char)*s) || *s == '.')
            s++;
    } else {
        r->kind = RULE_N;
        if (*s == 'J') {
            r->kind = RULE_J;
            s++;
        }
        if (!isdigit((unsigned char)*s))
            return NULL;
        r->day = 0;
        while (isdigit((unsigned char)*s))
            r->day = r->day * 10 + (*s++ - '0');
        if (r->day > 365 || (r->kind == RULE_J && r->day < 1))
            return NULL;
    }
    if (*s == '/' && !(s = parse_hms(s + 1, &r->time)))
        return NULL;
    return s;
}

/* A POSIX TZ string as found in TZif footers: "EST5EDT,M3.2.0,M11.1.0", "<+03>-3", "UTC0". */
static int parse_posix(const char *s, tz_posix_t *p)
{
    int32_t off;
    memset(p, 0, sizeof(*p));
    if (!(s = parse_name(s)) || !(s = parse_hms(s, &off)))
        return -1;
    p->std_off = -off;
    p->dst_off = p->std_off;
    if (*s == '\0') {
        p->valid = 1;
        return 0;
    }
    if (!(s = parse_name(s)))
        return -1;
    p->has_dst = 1;
    p->dst_off = p->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = parse_hms(s, &off)))
            return -1;
        p->dst_off = -off;
    }
    if (*s != ',' || !(s = parse_rule(s + 1, &p->start)) || *s != ',' ||
        !(s = parse_rule(s + 1, &p->end)) || *s != '\0')
        return -1;
    p->valid = 1;
    return 0;
}

/* Local seconds (as if UTC) at which a rule's transition happens in year y. */
static int64_t rule_local(const tz_rule_t *r, int64_t y)
{
    int64_t day;
    if (r->kind == RULE_M) {
        int64_t first = siphon_mapping__days_from_civil(y, (unsigned)r->month, 1);
        int dow1 = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        int d = 1 + (r->wday - dow1 + 7) % 7 + (r->week - 1) * 7;
        while (d > days_in_month(y, r->month))
            d -= 7;
        day = first + d - 1;
    } else if (r->kind == RULE_J) {
        day = siphon_mapping__days_from_civil(y, 1, 1) + r->day - 1 +
              (is_leap(y) && r->day >= 60 ? 1 : 0);
    } else {
        day = siphon_mapping__days_from_civil(y, 1, 1) + r->day;
    }
    return day * 86400 + r->time;
}

static int32_t posix_offset_at(const tz_posix_t *p, int64_t t)
{
    if (!p->has_dst)
        return p->std_off;
    int64_t y;
    unsigned m, d;
    siphon_mapping__civil_from_days(floor_div(t + p->std_off, 86400), &y, &m, &d);
    int64_t start = rule_local(&p->start, y) - p->std_off; /* written in standard time */
    int64_t end = rule_local(&p->end, y) - p->dst_off;     /* written in daylight time */
    int in_dst = start < end ? (t >= start && t < end) : (t >= start || t < end);
    return in_dst ? p->dst_off : p->std_off;
}

int32_t siphon_mapping__tz_offset_at(const map_tz_t *tz, int64_t t)
{
    if (tz->n == 0)
        return tz->footer.valid ? posix_offset_at(&tz->footer, t) : tz->first_off;
    if (t < tz->at[0])
        return tz->first_off;
    if (t >= tz->at[tz->n - 1] && tz->footer.valid)
        return posix_offset_at(&tz->footer, t);
    int lo = 0, hi = tz->n - 1; /* largest i with at[i] <= t */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return tz->off[lo];
}

/* Remember the span of explicit transitions around UTC instant utc, shrunk by three days at
 * each end (more than the +- 1.6 days of candidates below plus any offset), as local times that
 * all convert with offset off. */
static void tz_remember(map_tz_t *tz, int64_t utc, int32_t off)
{
    if (tz->n < 2 || utc < tz->at[0] || utc >= tz->at[tz->n - 1])
        return;
    int lo = 0, hi = tz->n - 1; /* largest i with at[i] <= utc */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tz->at[mid] <= utc)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (tz->off[lo] != off || lo + 1 >= tz->n)
        return;
    int64_t a = tz->at[lo] + 3 * 86400, b = tz->at[lo + 1] - 3 * 86400;
    if (a < b) {
        tz->hit_lo = a;
        tz->hit_hi = b;
        tz->hit_off = off;
    }
}

int64_t siphon_mapping__tz_to_utc(const map_tz_t *ctz, int64_t local)
{
    map_tz_t *tz = (map_tz_t *)ctz; /* the lookup cache only; see struct map_tz */
    if (local >= tz->hit_lo && local < tz->hit_hi)
        return local - tz->hit_off;
    /* Offsets change at most a few times a year: the ones around local +- a day are the
     * candidates. A candidate is right when the instant it gives has that offset. */
    int32_t before = siphon_mapping__tz_offset_at(tz, local - 86400 - 50400);
    int32_t after = siphon_mapping__tz_offset_at(tz, local + 86400 + 50400);
    int32_t cands[2] = {before > after ? before : after, before > after ? after : before};
    for (int i = 0; i < 2; i++) /* the larger offset first: the earlier instant */
        if (siphon_mapping__tz_offset_at(tz, local - cands[i]) == cands[i]) {
            if (before == after)
                tz_remember(tz, local - cands[i], cands[i]);
            return local - cands[i];
        }
    return local - before; /* a gap */
}

const char *siphon_mapping__tz_name(const map_tz_t *tz) { return tz->name; }

void siphon_mapping__tz_free(map_tz_t *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->at);
    free(tz->off);
    free(tz);
}

/* "+02:00", "-0500", "+5", "UTC", "Z". 1 with *off set, 0 when not such a name. */
static int fixed_offset(const char *name, int32_t *off)
{
    if (!strcmp(name, "UTC") || !strcmp(name, "Z") || !strcmp(name, "utc") ||
        !strcmp(name, "Etc/UTC") || !strcmp(name, "GMT")) {
        *off = 0;
        return 1;
    }
    if (name[0] != '+' && name[0] != '-')
        return 0;
    int sign = name[0] == '-' ? -1 : 1;
    const char *s = name + 1;
    int h = 0, m = 0, nd = 0;
    while (isdigit((unsigned char)*s) && nd < 2) {
        h = h * 10 + (*s++ - '0');
        nd++;
    }
    if (nd == 0)
        return 0;
    if (*s == ':')
        s++;
    if (*s) {
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2])
            return 0;
        m = (s[0] - '0') * 10 + (s[1] - '0');
    }
    if (h > 18 || m > 59)
        return 0;
    *off = sign * (h * 3600 + m * 60);
    return 1;
}

static int valid_zone_name(const char *s)
{
    if (!s[0] || s[0] == '/' || strstr(s, ".."))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("/_-+", *s)))
            return 0;
    return 1;
}

static int parse_tzif(map_tz_t *tz, const unsigned char *p, size_t len, char *why, size_t whysize)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        goto bad;
    int version = p[4];
    uint32_t cnt[6];
    for (int i = 0; i < 6; i++)
        cnt[i] = be32(p + 20 + 4 * i);
    /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
    size_t v1 = (size_t)cnt[3] * 5 + (size_t)cnt[4] * 6 + cnt[5] + (size_t)cnt[2] * 8 + cnt[1] +
                cnt[0];
    int tsize = 4;
    const unsigned char *h = p;
    if (version >= '2') {
        if (44 + v1 + 44 > len)
            goto bad;
        h = p + 44 + v1;
        if (memcmp(h, "TZif", 4) != 0)
            goto bad;
        for (int i = 0; i < 6; i++)
            cnt[i] = be32(h + 20 + 4 * i);
        tsize = 8;
    }
    uint32_t timecnt = cnt[3], typecnt = cnt[4];
    size_t need = (size_t)timecnt * ((size_t)tsize + 1) + (size_t)typecnt * 6 + cnt[5] +
                  (size_t)cnt[2] * ((size_t)tsize + 4) + cnt[1] + cnt[0];
    const unsigned char *d = h + 44;
    if (typecnt == 0 || (size_t)(d - p) + need > len)
        goto bad;
    const unsigned char *times = d, *idx = d + (size_t)timecnt * (size_t)tsize;
    const unsigned char *types = idx + timecnt;
    tz->n = (int)timecnt;
    tz->at = calloc(timecnt ? timecnt : 1, sizeof(int64_t));
    tz->off = calloc(timecnt ? timecnt : 1, sizeof(int32_t));
    if (!tz->at || !tz->off)
        return SIPHON_ENOMEM;
    for (uint32_t i = 0; i < timecnt; i++) {
        tz->at[i] = tsize == 8 ? be64(times + 8 * i) : (int64_t)(int32_t)be32(times + 4 * i);
        if (idx[i] >= typecnt)
            goto bad;
        tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
    }
    tz->first_off = (int32_t)be32(types);
    if (version >= '2') {
        const unsigned char *f = d + need;
        if (f < p + len && *f == '\n') {
            const unsigned char *e = memchr(f + 1, '\n', (size_t)(p + len - f - 1));
            if (e && e - f - 1 < 128) {
                char rule[128];
                memcpy(rule, f + 1, (size_t)(e - f - 1));
                rule[e - f - 1] = '\0';
                if (rule[0] && parse_posix(rule, &tz->footer) != 0)
                    tz->footer.valid = 0; /* an unusual rule: the table still covers to 2037 */
            }
        }
    }
    return 0;
bad:
    snprintf(why, whysize, "the time zone file of '%s' is not a TZif file", tz->name);
    return SIPHON_EINVAL;
}

int siphon_mapping__tz_load(map_tz_t **out, const char *name, char *why, size_t whysize)
{
    map_tz_t *tz = calloc(1, sizeof(*tz));
    unsigned char *buf = NULL;
    FILE *f = NULL;
    int rc = 0;
    int32_t off;

    *out = NULL;
    if (!tz || !(tz->name = strdup(name))) {
        free(tz);
        return SIPHON_ENOMEM;
    }
    if (fixed_offset(name, &off)) {
        tz->first_off = off;
        *out = tz;
        return 0;
    }
    if (!valid_zone_name(name)) {
        snprintf(why, whysize,
                 "'%.64s' is not a time zone name (expected an IANA name such as "
                 "America/Chicago or Europe/Berlin, UTC, or an offset such as +01:00)",
                 name);
        rc = SIPHON_EINVAL;
        goto out;
    }
    const char *dir = getenv("TZDIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", name);
    if (!(f = fopen(path, "rb"))) {
        snprintf(why, whysize,
                 "unknown time zone '%.64s' (%s: %s; expected an IANA name such as "
                 "America/Chicago, UTC, or an offset such as +01:00)",
                 name, path, strerror(errno));
        rc = SIPHON_ENOTFOUND;
        goto out;
    }
    if (!(buf = malloc(TZ_MAX_FILE))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    size_t len = fread(buf, 1, TZ_MAX_FILE, f);
    if ((rc = parse_tzif(tz, buf, len, why, whysize)) < 0)
        goto out;
    *out = tz;
    tz = NULL;
out:
    if (f)
        fclose(f);
    free(buf);
    siphon_mapping__tz_free(tz);
    return rc;
}
