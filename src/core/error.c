/*
 * error.c - error codes: names, retriability, and the errbuf-writing helper every module uses.
 */
#include "core/error.h"

#include <stdio.h>

int siphon_err_is_retriable(int code)
{
    switch (code) {
    case SIPHON_ECONN:
    case SIPHON_ETIMEDOUT:
    case SIPHON_EAGAIN:
        return 1;
    default:
        return 0;
    }
}

const char *siphon_err_name(int code)
{
    switch (code) {
    case SIPHON_OK: return "OK";
    case SIPHON_EINVAL: return "EINVAL";
    case SIPHON_ENOMEM: return "ENOMEM";
    case SIPHON_EIO: return "EIO";
    case SIPHON_ECONN: return "ECONN";
    case SIPHON_EPROTO: return "EPROTO";
    case SIPHON_ETIMEDOUT: return "ETIMEDOUT";
    case SIPHON_EDELIVERY: return "EDELIVERY";
    case SIPHON_ECONVERT: return "ECONVERT";
    case SIPHON_ESTOP: return "ESTOP";
    case SIPHON_ENOTFOUND: return "ENOTFOUND";
    case SIPHON_EAGAIN: return "EAGAIN";
    default: return "EUNKNOWN";
    }
}

int siphon_err(char *errbuf, size_t errsize, int code, const char *fmt, ...)
{
    if (errbuf && errsize > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errsize, fmt, ap);
        va_end(ap);
    }
    return code;
}
