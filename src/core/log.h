/*
 * log.h - Siphon's logger: syslog-style levels, a facility per subsystem ("pg", "kafka", "map",
 * "pipeline"), one line per message, as text or as JSON lines, to stderr.
 *
 * Never log a password or a full row of customer data above SIPHON_LOG_DEBUG. librdkafka's own
 * log callback is routed here by the Kafka sink.
 */
#ifndef SIPHON_CORE_LOG_H
#define SIPHON_CORE_LOG_H

enum {
    SIPHON_LOG_ERR = 3,
    SIPHON_LOG_WARNING = 4,
    SIPHON_LOG_NOTICE = 5,
    SIPHON_LOG_INFO = 6,
    SIPHON_LOG_DEBUG = 7
};

/* Set the most verbose level printed (default SIPHON_LOG_INFO) and the format (json 0/1). */
void siphon_log_setup(int max_level, int json);

/* Parse "error", "warning", "notice", "info", "debug"; returns -1 for anything else. */
int siphon_log_level_parse(const char *name);

int siphon_log_enabled(int level);

void siphon_log(int level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
