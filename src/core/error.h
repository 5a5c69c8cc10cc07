/*
 * error.h - Siphon's error codes and the rules for reporting them.
 *
 * A function that can fail returns 0 or a negative SIPHON_E* code. Constructors and parsers also
 * take `char *errbuf, size_t errsize` last and write a PostgreSQL-style message there
 * ("could not <verb> <object>: <reason>"). An error that crosses a thread or a module boundary
 * says whether it is retriable (reconnect with backoff, lose nothing) or fatal (stop without
 * acknowledging anything further): see siphon_err_is_retriable().
 */
#ifndef SIPHON_CORE_ERROR_H
#define SIPHON_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define SIPHON_OK 0
#define SIPHON_EINVAL -1     /* bad argument, config or mapping: fatal, fix the input */
#define SIPHON_ENOMEM -2     /* out of memory: fatal */
#define SIPHON_EIO -3        /* file or local I/O failure: fatal */
#define SIPHON_ECONN -4      /* a server went away or refused us: retriable */
#define SIPHON_EPROTO -5     /* a server sent something we cannot parse: fatal */
#define SIPHON_ETIMEDOUT -6  /* nothing arrived in time: retriable */
#define SIPHON_EDELIVERY -7  /* the sink gave up delivering an event: fatal for the position */
#define SIPHON_ECONVERT -8   /* a value cannot become the schema's type: dead-letter or fatal */
#define SIPHON_ESTOP -9      /* a stop was requested (SIGINT/SIGTERM): drain and exit 0 */
#define SIPHON_ENOTFOUND -10 /* a table, column, file or key does not exist */
#define SIPHON_EAGAIN -11    /* try again later (queue full, in-flight limit): retriable */

/* 1 when an error of this code may go away by retrying (with backoff), 0 when it is fatal. */
int siphon_err_is_retriable(int code);

/* A short name for the code ("EINVAL"), never NULL. */
const char *siphon_err_name(int code);

/* snprintf into errbuf (when errbuf is not NULL and errsize > 0) and return `code`. Lets a
 * failing function write `return siphon_err(errbuf, errsize, SIPHON_EINVAL, "...", ...);`. */
int siphon_err(char *errbuf, size_t errsize, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
