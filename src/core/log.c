/*
 * log.c - the logger behind siphon_log(): one line per message on stderr, as text
 * ("2026-11-26T18:00:00.123Z INFO  pg: message") or as a JSON object per line. The level and
 * format are set once at startup; a mutex keeps lines from different threads (librdkafka's log
 * callback) whole.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_max_level = SIPHON_LOG_INFO;
static int log_json = 0;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void siphon_log_setup(int max_level, int json)
{
    log_max_level = max_level;
    log_json = json;
}

int siphon_log_level_parse(const char *name)
{
    static const struct { const char *name; int level; } levels[] = {
        {"error", SIPHON_LOG_ERR},   {"warning", SIPHON_LOG_WARNING}, {"notice", SIPHON_LOG_NOTICE},
        {"info", SIPHON_LOG_INFO},   {"debug", SIPHON_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (name && strcasecmp(name, levels[i].name) == 0)
            return levels[i].level;
    return -1;
}

int siphon_log_enabled(int level) { return level <= log_max_level; }

static const char *level_name(int level)
{
    switch (level) {
    case SIPHON_LOG_ERR: return "ERROR";
    case SIPHON_LOG_WARNING: return "WARN";
    case SIPHON_LOG_NOTICE: return "NOTICE";
    case SIPHON_LOG_INFO: return "INFO";
    default: return "DEBUG";
    }
}

/* JSON-escape s into out (always NUL-terminated). */
static void json_escape(char *out, size_t size, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void siphon_log(int level, const char *facility, const char *fmt, ...)
{
    if (level > log_max_level)
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    pthread_mutex_lock(&log_lock);
    if (log_json) {
        char esc[8192];
        json_escape(esc, sizeof(esc), msg);
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"facility\":\"%s\",\"msg\":\"%s\"}\n", when,
                level_name(level), facility ? facility : "", esc);
    } else {
        fprintf(stderr, "%s %-6s %s: %s\n", when, level_name(level), facility ? facility : "-", msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
