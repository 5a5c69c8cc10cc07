/*
 * my_catalog.c - the MySQL connector's regular connection: source.conninfo, connecting, the
 * server checks made before anything streams (each failure says which setting to change and
 * why), the start position, table definitions from information_schema (describe(), and column
 * names when the binlog does not carry them), and which binlog file a MySQL GTID set resumes
 * in.
 *
 * The catalog connection is shared by the pipeline thread (open, describe) and the reader
 * thread (definitions after a DDL statement): every use holds src->cat_mu.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"
#include "core/log.h"

/* ---- source.conninfo ---- */

void siphon_my__conninfo_free(my_conninfo_t *ci)
{
    if (!ci)
        return;
    free(ci->host);
    free(ci->user);
    if (ci->password)
        memset(ci->password, 0, strlen(ci->password));
    free(ci->password);
    free(ci->dbname);
    free(ci->socket);
    free(ci->ssl_mode);
    free(ci->ssl_ca);
    memset(ci, 0, sizeof(*ci));
}

int siphon_my__conninfo_parse(my_conninfo_t *ci, const char *text, char *errbuf,
                              size_t errsize)
{
    static const char expected[] =
        "expected keyword=value pairs: host, port, user, password, dbname, socket, "
        "connect_timeout, sslmode (disable, require, verify_ca, verify_full), sslca";
    const char *p = text ? text : "";
    int rc = 0;
    memset(ci, 0, sizeof(*ci));
    ci->connect_timeout_s = 10;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        size_t klen = (size_t)(p - k);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=' || klen == 0 || klen > 31) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not parse source.conninfo near \"%.*s\": %s", (int)(klen > 31 ? 31 : klen), k,
                            expected);
            goto fail;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        char val[1024];
        size_t vl = 0;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
                p++;
            }
            if (*p != '\'') {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse source.conninfo: the quoted value of \"%.*s\" "
                                "is not closed",
                                (int)klen, k);
                goto fail;
            }
            p++;
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
                if (*p == '\\' && p[1])
                    p++;
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
                p++;
            }
        }
        val[vl] = '\0';
        char key[32];
        memcpy(key, k, klen);
        key[klen] = '\0';
        char **dst = NULL;
        if (strcmp(key, "host") == 0 || strcmp(key, "hostaddr") == 0)
            dst = &ci->host;
        else if (strcmp(key, "user") == 0)
            dst = &ci->user;
        else if (strcmp(key, "password") == 0)
            dst = &ci->password;
        else if (strcmp(key, "dbname") == 0 || strcmp(key, "database") == 0)
            dst = &ci->dbname;
        else if (strcmp(key, "socket") == 0)
            dst = &ci->socket;
        else if (strcmp(key, "sslmode") == 0 || strcmp(key, "ssl_mode") == 0)
            dst = &ci->ssl_mode;
        else if (strcmp(key, "sslca") == 0 || strcmp(key, "ssl_ca") == 0)
            dst = &ci->ssl_ca;
        else if (strcmp(key, "port") == 0 || strcmp(key, "connect_timeout") == 0) {
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            int isport = key[0] == 'p';
            if (errno || end == val || *end || v < (isport ? 1 : 1) ||
                v > (isport ? 65535 : 3600)) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse source.conninfo: %s \"%s\" is not %s", key, val,
                                isport ? "a TCP port (1 to 65535)"
                                       : "a number of seconds (1 to 3600)");
                goto fail;
            }
            if (isport)
                ci->port = (unsigned)v;
            else
                ci->connect_timeout_s = (int)v;
            continue;
        } else {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not parse source.conninfo: unknown keyword \"%s\" (%s)", key,
                            expected);
            goto fail;
        }
        free(*dst);
        if (!(*dst = strdup(val))) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (ci->ssl_mode && strcmp(ci->ssl_mode, "disable") && strcmp(ci->ssl_mode, "require") &&
        strcmp(ci->ssl_mode, "verify_ca") && strcmp(ci->ssl_mode, "verify_full")) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not parse source.conninfo: sslmode \"%s\" (expected disable, "
                        "require, verify_ca or verify_full)",
                        ci->ssl_mode);
        goto fail;
    }
    return 0;
fail:
    siphon_my__conninfo_free(ci);
    return rc;
}

/* ---- connections ---- */

/* Errors the server would answer again on every attempt: stop and say why. */
int siphon_my__err_fatal(unsigned err)
{
    switch (err) {
    case ER_ACCESS_DENIED_ERROR:          /* 1045 */
    case ER_DBACCESS_DENIED_ERROR:        /* 1044 */
    case ER_BAD_DB_ERROR:                 /* 1049 */
    case ER_SPECIFIC_ACCESS_DENIED_ERROR: /* 1227 */
    case ER_TABLEACCESS_DENIED_ERROR:     /* 1142 */
    case ER_COLUMNACCESS_DENIED_ERROR:    /* 1143 */
    case ER_NOT_SUPPORTED_AUTH_MODE:      /* 1251 */
    case ER_MASTER_FATAL_ERROR_READING_BINLOG: /* 1236: purged binlog, unknown GTID */
    case ER_UNKNOWN_SYSTEM_VARIABLE:      /* 1193 */
    case CR_AUTH_PLUGIN_CANNOT_LOAD:      /* 2059 */
        return 1;
    default:
        return 0;
    }
}

/* What to do about an error the server gave, appended to messages. */
const char *siphon_my__err_hint(unsigned err)
{
    switch (err) {
    case ER_ACCESS_DENIED_ERROR:
        return " (check user and password in source.conninfo)";
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:
        return " (the user needs REPLICATION SLAVE, REPLICATION CLIENT (BINLOG MONITOR on "
               "MariaDB 10.5+) and SELECT on the mapped tables: see docs/mysql.md)";
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR:
        return " (GRANT SELECT on the mapped tables to Siphon's user)";
    case ER_MASTER_FATAL_ERROR_READING_BINLOG:
        return " (the binlog Siphon needs to resume from is gone, purged by "
               "expire_logs_days/binlog_expire_logs_seconds or PURGE BINARY LOGS, or the "
               "stored position belongs to another server: changes made meanwhile are lost; "
               "move the offsets file away and take a new snapshot)";
    case ER_BAD_DB_ERROR:
        return " (check dbname in source.conninfo)";
    default:
        return "";
    }
}

int siphon_my__connect(MYSQL **out, const siphon_source_t *src, int read_timeout_s,
                       char *errbuf, size_t errsize)
{
    const my_conninfo_t *ci = &src->ci;
    MYSQL *m = mysql_init(NULL);
    *out = NULL;
    if (!m)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    unsigned ct = (unsigned)ci->connect_timeout_s, rt = (unsigned)read_timeout_s, wt = 60;
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &wt);
    if (rt)
        mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &rt);
    if (ci->ssl_mode && strcmp(ci->ssl_mode, "disable") != 0) {
        my_bool on = 1;
        mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
        if (strcmp(ci->ssl_mode, "require") != 0)
            mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
        if (ci->ssl_ca)
            mysql_optionsv(m, MYSQL_OPT_SSL_CA, ci->ssl_ca);
    }
    char pa[64];
    snprintf(pa, sizeof(pa), "siphon-%.50s", src->name ? src->name : "mysql");
    mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", pa);
    if (!mysql_real_connect(m, ci->host, ci->user, ci->password, ci->dbname, ci->port,
                            ci->socket, CLIENT_REMEMBER_OPTIONS)) {
        unsigned e = mysql_errno(m);
        int rc = siphon_err(errbuf, errsize, siphon_my__err_fatal(e) ? SIPHON_EINVAL : SIPHON_ECONN,
                            "could not connect to the MySQL server (%s): %s (error %u)%s",
                            src->redacted, mysql_error(m), e, siphon_my__err_hint(e));
        mysql_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* One query whose error is fatal when the server would repeat it, else a lost connection. */
static int cat_query(siphon_source_t *src, const char *sql, MYSQL_RES **res, char *errbuf,
                     size_t errsize)
{
    if (res)
        *res = NULL;
    for (int attempt = 0;; attempt++) {
        if (!src->cat) {
            int rc = siphon_my__connect(&src->cat, src, 60, errbuf, errsize);
            if (rc < 0)
                return rc;
        }
        if (mysql_query(src->cat, sql) == 0) {
            if (!res)
                return 0;
            if ((*res = mysql_store_result(src->cat)) || mysql_field_count(src->cat) == 0)
                return 0;
        }
        unsigned e = mysql_errno(src->cat);
        if ((e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST) && attempt == 0) {
            mysql_close(src->cat); /* idle too long (wait_timeout), or a server restart */
            src->cat = NULL;
            continue;
        }
        int code = siphon_my__err_fatal(e) || (e >= 1000 && e < 2000) ? SIPHON_EINVAL : SIPHON_ECONN;
        return siphon_err(errbuf, errsize, code, "could not run \"%.80s\" on the MySQL server "
                          "(%s): %s (error %u)%s",
                          sql, src->redacted, mysql_error(src->cat), e, siphon_my__err_hint(e));
    }
}

/* The first row's first column of a query, or NULL (no row, NULL value, or an error when
 * quiet: unknown variables on servers that lack them). Caller frees. */
static int cat_value(siphon_source_t *src, const char *sql, char **out, int quiet, char *errbuf,
                     size_t errsize)
{
    MYSQL_RES *res = NULL;
    *out = NULL;
    int rc = cat_query(src, sql, &res, errbuf, errsize);
    if (rc < 0)
        return quiet && rc == SIPHON_EINVAL ? 0 : rc;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0] && !(*out = strdup(row[0])))
        rc = SIPHON_ENOMEM;
    mysql_free_result(res);
    return rc;
}

/* SHOW GLOBAL VARIABLES value, or NULL when the server has no such variable. */
static int cat_var(siphon_source_t *src, const char *name, char **out, char *errbuf,
                   size_t errsize)
{
    char sql[160];
    MYSQL_RES *res = NULL;
    *out = NULL;
    snprintf(sql, sizeof(sql), "SHOW GLOBAL VARIABLES LIKE '%s'", name);
    int rc = cat_query(src, sql, &res, errbuf, errsize);
    if (rc < 0)
        return rc;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[1] && !(*out = strdup(row[1])))
        rc = SIPHON_ENOMEM;
    mysql_free_result(res);
    return rc;
}

/* ---- server checks ---- */

int siphon_my__cat_check_server(siphon_source_t *src, char *errbuf, size_t errsize)
{
    char *v = NULL;
    int rc = 0;
    const char *ver = mysql_get_server_info(src->cat);
    snprintf(src->server_version, sizeof(src->server_version), "%s", ver ? ver : "?");
    src->flavor = strcasestr(src->server_version, "mariadb") ? MY_FLAVOR_MARIADB : MY_FLAVOR_MYSQL;
    const char *who = src->flavor == MY_FLAVOR_MARIADB ? "MariaDB" : "MySQL";

#define FAIL(...)                                                                             \
    do {                                                                                      \
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, __VA_ARGS__);                        \
        goto out;                                                                             \
    } while (0)
#define VAR(name)                                                                             \
    do {                                                                                      \
        free(v);                                                                              \
        v = NULL;                                                                             \
        if ((rc = cat_var(src, name, &v, errbuf, errsize)) < 0)                               \
            goto out;                                                                         \
    } while (0)

    VAR("log_bin");
    if (!v || strcasecmp(v, "ON") != 0)
        FAIL("could not stream from %s server %s (%s): binary logging is off (log_bin=%s); "
             "start the server with log_bin (e.g. log_bin=binlog in my.cnf; needs a restart): "
             "Siphon reads the changes from the binary log",
             who, src->server_version, src->redacted, v ? v : "unknown");
    VAR("binlog_format");
    if (!v || strcasecmp(v, "ROW") != 0)
        FAIL("could not stream from %s server %s (%s): binlog_format is %s; set "
             "binlog_format=ROW (SET GLOBAL binlog_format='ROW' and in my.cnf): in STATEMENT or "
             "MIXED format the binlog holds SQL text instead of the changed rows, and Siphon "
             "cannot know which rows a statement changed",
             who, src->server_version, src->redacted, v ? v : "unknown");
    VAR("binlog_row_image");
    if (v && strcasecmp(v, "FULL") != 0)
        FAIL("could not stream from %s server %s (%s): binlog_row_image is %s; set "
             "binlog_row_image=FULL (SET GLOBAL binlog_row_image='FULL' and in my.cnf): with "
             "%s images updates and deletes lack the old row and columns they did not change, "
             "so events would be incomplete",
             who, src->server_version, src->redacted, v, v);
    VAR("binlog_row_metadata");
    src->full_metadata = v && strcasecmp(v, "FULL") == 0;
    if (!src->full_metadata && !src->names_from_catalog) {
        if (v)
            FAIL("could not stream from %s server %s (%s): binlog_row_metadata is %s; set "
                 "binlog_row_metadata=FULL (SET GLOBAL binlog_row_metadata='FULL' and in "
                 "my.cnf): without it the binlog does not name the columns of a row, so rows "
                 "written before an ALTER TABLE would be decoded with the table's new "
                 "definition. To accept that risk and read names from the table definition, "
                 "set source.names_from_catalog: true",
                 who, src->server_version, src->redacted, v);
        FAIL("could not stream from %s server %s (%s): this server cannot log column names "
             "(binlog_row_metadata needs MySQL 8.0.1 or MariaDB 10.5); set "
             "source.names_from_catalog: true to read them from the table definition (rows "
             "written before an ALTER TABLE are then decoded with the new definition)",
             who, src->server_version, src->redacted);
    }
    if (!src->full_metadata)
        siphon_log(SIPHON_LOG_WARNING, "mysql",
                   "binlog_row_metadata is %s on %s: column names come from the table "
                   "definition, read at start and after each DDL statement in the binlog; set "
                   "binlog_row_metadata=FULL to make every row self-describing",
                   v ? v : "not supported", src->redacted);
    VAR("binlog_checksum");
    src->checksum = v && strcasecmp(v, "CRC32") == 0;
    VAR("server_id");
    src->server_server_id = v ? (uint32_t)strtoul(v, NULL, 10) : 0;
    if (src->server_server_id == src->server_id)
        FAIL("could not stream from %s server %s (%s): source.server_id %" PRIu32 " is the "
             "server's own server_id; choose a number no server or replica of this "
             "replication topology uses",
             who, src->server_version, src->redacted, src->server_id);
    if (src->flavor == MY_FLAVOR_MARIADB) {
        VAR("log_bin_compress");
        if (v && strcasecmp(v, "ON") == 0)
            FAIL("could not stream from MariaDB server %s (%s): log_bin_compress is ON; set "
                 "log_bin_compress=OFF: Siphon does not read compressed binlog events",
                 src->server_version, src->redacted);
        src->gtid = 1;
    } else {
        VAR("binlog_transaction_compression");
        if (v && strcasecmp(v, "ON") == 0)
            FAIL("could not stream from MySQL server %s (%s): binlog_transaction_compression "
                 "is ON; set binlog_transaction_compression=OFF: Siphon does not read "
                 "compressed transactions",
                 src->server_version, src->redacted);
        VAR("binlog_row_value_options");
        if (v && *v)
            FAIL("could not stream from MySQL server %s (%s): binlog_row_value_options is "
                 "'%s'; set binlog_row_value_options='' so JSON updates are logged whole",
                 src->server_version, src->redacted, v);
        VAR("gtid_mode");
        src->gtid = v && strcasecmp(v, "ON") == 0;
    }
    /* REPLICATION CLIENT (BINLOG MONITOR): needed to find the current position */
    {
        MYSQL_RES *res = NULL;
        rc = cat_query(src, "SHOW MASTER STATUS", &res, errbuf, errsize);
        if (rc < 0 && src->flavor == MY_FLAVOR_MYSQL)
            rc = cat_query(src, "SHOW BINARY LOG STATUS", &res, errbuf, errsize);
        mysql_free_result(res);
        if (rc < 0)
            goto out;
    }
#undef VAR
#undef FAIL
out:
    free(v);
    return rc;
}

/* ---- the start position ---- */

/* SHOW MASTER STATUS: file, offset and (MySQL) the executed GTID set. */
static int master_status(siphon_source_t *src, char *file, size_t fsize, uint64_t *off,
                         char **gtids, char *errbuf, size_t errsize)
{
    MYSQL_RES *res = NULL;
    int rc = cat_query(src, "SHOW MASTER STATUS", &res, errbuf, errsize);
    if (rc < 0 && src->flavor == MY_FLAVOR_MYSQL)
        rc = cat_query(src, "SHOW BINARY LOG STATUS", &res, errbuf, errsize);
    if (rc < 0)
        return rc;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    unsigned nf = res ? mysql_num_fields(res) : 0;
    if (!row || !row[0] || !row[1]) {
        mysql_free_result(res);
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not read the binlog position of %s: SHOW MASTER STATUS "
                          "returned nothing (is log_bin on?)",
                          src->redacted);
    }
    snprintf(file, fsize, "%s", row[0]);
    *off = strtoull(row[1], NULL, 10);
    if (gtids) {
        *gtids = NULL;
        if (nf >= 5 && row[4] && !(*gtids = strdup(row[4])))
            rc = SIPHON_ENOMEM;
    }
    mysql_free_result(res);
    return rc;
}

/* MySQL: where a stored GTID set resumes. Reads each binlog's Previous_gtids (SHOW BINLOG
 * EVENTS) and takes the newest file that needs nothing the set lacks. */
static int mysql_gtid_start(siphon_source_t *src, const my_gtidset_t *have, char *errbuf,
                            size_t errsize)
{
    MYSQL_RES *res = NULL;
    char **files = NULL;
    my_gtidset_t *prev = NULL;
    int n = 0, rc = cat_query(src, "SHOW BINARY LOGS", &res, errbuf, errsize);
    if (rc < 0)
        return rc;
    int total = res ? (int)mysql_num_rows(res) : 0;
    if (total == 0) {
        mysql_free_result(res);
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not resume on %s: the server lists no binary logs",
                          src->redacted);
    }
    files = calloc((size_t)total, sizeof(char *));
    prev = calloc((size_t)total, sizeof(my_gtidset_t));
    if (!files || !prev) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    for (MYSQL_ROW row; (row = mysql_fetch_row(res)) && n < total; n++)
        if (!(files[n] = strdup(row[0] ? row[0] : ""))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
    mysql_free_result(res);
    res = NULL;
    for (int i = 0; i < n; i++) {
        char sql[512], esc[300];
        mysql_real_escape_string(src->cat, esc, files[i], (unsigned long)strlen(files[i]));
        snprintf(sql, sizeof(sql), "SHOW BINLOG EVENTS IN '%s' LIMIT 3", esc);
        if ((rc = cat_query(src, sql, &res, errbuf, errsize)) < 0)
            goto out;
        prev[i].kind = MY_GTID_MYSQL;
        for (MYSQL_ROW row; res && (row = mysql_fetch_row(res));)
            if (row[2] && strcasecmp(row[2], "Previous_gtids") == 0 && row[5] &&
                (rc = siphon_my__gtid_parse(&prev[i], row[5], MY_GTID_MYSQL, errbuf, errsize)) < 0)
                goto out;
        mysql_free_result(res);
        res = NULL;
    }
    int k = siphon_my__choose_start_file(prev, n, have);
    if (k < 0) {
        src->last_errno = ER_MASTER_FATAL_ERROR_READING_BINLOG; /* as the server would say */
        char need[512];
        siphon_my__gtid_format(&prev[0], need, sizeof(need));
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not resume on %s: the oldest binary log %s starts after "
                        "transactions (%s) that the stored position does not include: they "
                        "were purged before Siphon read them; changes made meanwhile are lost "
                        "(move the offsets file away and take a new snapshot)",
                        src->redacted, files[0], need);
        goto out;
    }
    snprintf(src->start_file, sizeof(src->start_file), "%s", files[k]);
    src->start_offset = 4;
out:
    mysql_free_result(res);
    for (int i = 0; i < n; i++)
        free(files[i]);
    for (int i = 0; prev && i < total; i++)
        siphon_my__gtid_free(&prev[i]);
    free(files);
    free(prev);
    return rc;
}

int siphon_my__cat_start_position(siphon_source_t *src, const char *resume, char *errbuf,
                                  size_t errsize)
{
    my_pos_t pos;
    char *v = NULL;
    int rc = 0;
    memset(&pos, 0, sizeof(pos));
    src->start_file[0] = '\0';
    src->start_offset = 4;
    siphon_my__gtid_free(&src->start_state);
    siphon_my__gtid_free(&src->skip);

    if (resume && *resume) {
        if ((rc = siphon_my__pos_parse(&pos, resume, errbuf, errsize)) < 0)
            return rc;
        if (pos.kind == MY_POS_GTID && pos.gtid.kind == MY_GTID_MARIADB &&
            src->flavor != MY_FLAVOR_MARIADB) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not resume at \"%s\": it is a MariaDB GTID position but %s "
                            "is MySQL %s (the offsets file belongs to another server)",
                            resume, src->redacted, src->server_version);
            goto out;
        }
        if (pos.kind == MY_POS_GTID && pos.gtid.kind == MY_GTID_MYSQL &&
            src->flavor != MY_FLAVOR_MYSQL) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not resume at \"%s\": it is a MySQL GTID set but %s is "
                            "MariaDB %s (the offsets file belongs to another server)",
                            resume, src->redacted, src->server_version);
            goto out;
        }
    }

    if (src->flavor == MY_FLAVOR_MARIADB) {
        src->mode = MY_MODE_GTID;
        if (pos.kind == MY_POS_GTID) {
            rc = siphon_my__gtid_copy(&src->start_state, &pos.gtid);
        } else if (pos.kind == MY_POS_FILE) {
            char sql[700], esc[600];
            mysql_real_escape_string(src->cat, esc, pos.file, (unsigned long)strlen(pos.file));
            snprintf(sql, sizeof(sql), "SELECT BINLOG_GTID_POS('%s', %" PRIu64 ")", esc,
                     pos.offset);
            if ((rc = cat_value(src, sql, &v, 0, errbuf, errsize)) < 0)
                goto out;
            if (!v) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not resume at \"%s\": the server has no such binlog "
                                "position (BINLOG_GTID_POS returned NULL: the file was purged or "
                                "the offset is not at an event boundary)",
                                resume);
                goto out;
            }
            rc = siphon_my__gtid_parse(&src->start_state, v, MY_GTID_MARIADB, errbuf, errsize);
            /* before any GTID (a fresh server) the state is empty: start at the offset */
            snprintf(src->start_file, sizeof(src->start_file), "%s", pos.file);
            src->start_offset = pos.offset;
        } else {
            if ((rc = cat_value(src, "SELECT @@GLOBAL.gtid_binlog_pos", &v, 0, errbuf,
                                errsize)) < 0)
                goto out;
            rc = siphon_my__gtid_parse(&src->start_state, v ? v : "", MY_GTID_MARIADB, errbuf,
                                       errsize);
            if (rc == 0 && src->start_state.nm == 0) {
                /* no transaction ever logged: start at the end of the current binlog */
                char file[256];
                uint64_t off;
                if ((rc = master_status(src, file, sizeof(file), &off, NULL, errbuf, errsize)) < 0)
                    goto out;
                snprintf(src->start_file, sizeof(src->start_file), "%s", file);
                src->start_offset = off;
            }
        }
        if (rc == 0)
            src->start_state.kind = MY_GTID_MARIADB;
    } else if (pos.kind == MY_POS_GTID) {
        src->mode = MY_MODE_GTID;
        if ((rc = siphon_my__gtid_copy(&src->start_state, &pos.gtid)) < 0 ||
            (rc = siphon_my__gtid_copy(&src->skip, &pos.gtid)) < 0)
            goto out;
        rc = mysql_gtid_start(src, &pos.gtid, errbuf, errsize);
    } else if (pos.kind == MY_POS_FILE) {
        src->mode = MY_MODE_FILE;
        snprintf(src->start_file, sizeof(src->start_file), "%s", pos.file);
        src->start_offset = pos.offset;
    } else {
        char file[256];
        uint64_t off;
        if ((rc = master_status(src, file, sizeof(file), &off, &v, errbuf, errsize)) < 0)
            goto out;
        snprintf(src->start_file, sizeof(src->start_file), "%s", file);
        src->start_offset = off;
        if (src->gtid) {
            src->mode = MY_MODE_GTID;
            rc = siphon_my__gtid_parse(&src->start_state, v ? v : "", MY_GTID_MYSQL, errbuf,
                                       errsize);
            if (rc == 0)
                rc = siphon_my__gtid_copy(&src->skip, &src->start_state);
        } else {
            src->mode = MY_MODE_FILE;
        }
    }
out:
    free(v);
    siphon_my__pos_free(&pos);
    return rc;
}

/* ---- table definitions ---- */

/* ENUM/SET values of a COLUMN_TYPE: enum('a','it''s') */
static int parse_values(const char *ct, int *n, char ***syms, size_t **lens)
{
    const char *p = strchr(ct, '(');
    int cap = 0;
    *n = 0;
    *syms = NULL;
    *lens = NULL;
    if (!p)
        return 0;
    p++;
    while (*p == '\'') {
        char buf[1024];
        size_t l = 0;
        p++;
        for (;;) {
            if (!*p)
                return 0;
            if (*p == '\'') {
                if (p[1] == '\'') {
                    p++;
                } else {
                    p++;
                    break;
                }
            }
            if (l + 1 < sizeof(buf))
                buf[l++] = *p;
            p++;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **s = realloc(*syms, (size_t)cap * sizeof(char *));
            size_t *ls = s ? realloc(*lens, (size_t)cap * sizeof(size_t)) : NULL;
            if (s)
                *syms = s;
            if (!ls)
                return SIPHON_ENOMEM;
            *lens = ls;
        }
        if (!((*syms)[*n] = strndup(buf, l)))
            return SIPHON_ENOMEM;
        (*lens)[(*n)++] = l;
        if (*p == ',')
            p++;
    }
    return 0;
}

int siphon_my__cat_tabledef(void *opaque, const char *db, const char *table, my_tabledef_t *td,
                            char *errbuf, size_t errsize)
{
    siphon_source_t *src = opaque;
    char edb[256 * 2 + 1], etb[256 * 2 + 1], sql[1536];
    MYSQL_RES *res = NULL;
    int rc = 0;
    memset(td, 0, sizeof(*td));
    pthread_mutex_lock(&src->cat_mu);
    if (!src->cat && (rc = siphon_my__connect(&src->cat, src, 60, errbuf, errsize)) < 0)
        goto out;
    mysql_real_escape_string(src->cat, edb, db, (unsigned long)strnlen(db, 255));
    mysql_real_escape_string(src->cat, etb, table, (unsigned long)strnlen(table, 255));
    snprintf(sql, sizeof(sql),
             "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLUMN_KEY, "
             "IS_NULLABLE, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, "
             "COALESCE(NUMERIC_SCALE, DATETIME_PRECISION) "
             "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' "
             "ORDER BY ORDINAL_POSITION",
             edb, etb);
    if ((rc = cat_query(src, sql, &res, errbuf, errsize)) < 0)
        goto out;
    int n = res ? (int)mysql_num_rows(res) : 0;
    if (n == 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOTFOUND,
                        "table %s.%s does not exist on %s (or Siphon's user may not see it: "
                        "GRANT SELECT ON %s.%s)",
                        db, table, src->redacted, db, table);
        goto out;
    }
#define ALLOC(f, t)                                                                           \
    if (!(td->f = calloc((size_t)n, sizeof(t)))) {                                            \
        rc = SIPHON_ENOMEM;                                                                   \
        goto out;                                                                             \
    }
    ALLOC(names, char *);
    ALLOC(type_names, char *);
    ALLOC(data_types, char *);
    ALLOC(is_unsigned, int);
    ALLOC(is_pkey, int);
    ALLOC(nullable, int);
    ALLOC(csnames, char *);
    ALLOC(json, int);
    ALLOC(nsyms, int);
    ALLOC(syms, char **);
    ALLOC(symlens, size_t *);
    ALLOC(octets, int);
    ALLOC(prec, int);
    ALLOC(scale, int);
#undef ALLOC
    td->ncols = n;
    MYSQL_ROW row;
    for (int i = 0; i < n && (row = mysql_fetch_row(res)); i++) {
        const char *ct = row[2] ? row[2] : "";
        if (!(td->names[i] = strdup(row[0] ? row[0] : "")) ||
            !(td->data_types[i] = strdup(row[1] ? row[1] : "")) ||
            !(td->type_names[i] = strdup(ct)) ||
            (row[3] && !(td->csnames[i] = strdup(row[3])))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        td->is_unsigned[i] = strcasestr(ct, "unsigned") != NULL;
        td->is_pkey[i] = row[4] && strcmp(row[4], "PRI") == 0;
        td->nullable[i] = row[5] && strcmp(row[5], "YES") == 0;
        td->octets[i] = row[6] ? (int)(strtoull(row[6], NULL, 10) > INT32_MAX
                                           ? INT32_MAX
                                           : strtoull(row[6], NULL, 10))
                               : 0;
        td->prec[i] = row[7] ? atoi(row[7]) : 0;
        td->scale[i] = row[8] ? atoi(row[8]) : 0;
        if ((strcasecmp(td->data_types[i], "enum") == 0 ||
             strcasecmp(td->data_types[i], "set") == 0) &&
            (rc = parse_values(ct, &td->nsyms[i], &td->syms[i], &td->symlens[i])) < 0)
            goto out;
        if (strcasecmp(td->data_types[i], "json") == 0)
            td->json[i] = 1;
    }
    mysql_free_result(res);
    res = NULL;
    if (src->flavor == MY_FLAVOR_MARIADB) {
        /* MariaDB's JSON is LONGTEXT with CHECK (json_valid(`col`)) */
        snprintf(sql, sizeof(sql),
                 "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE "
                 "CONSTRAINT_SCHEMA = '%s' AND TABLE_NAME = '%s' AND LEVEL = 'Column'",
                 edb, etb);
        if (cat_query(src, sql, &res, errbuf, errsize) == 0 && res) {
            while ((row = mysql_fetch_row(res))) {
                const char *cc = row[0];
                if (!cc || strncasecmp(cc, "json_valid(`", 12) != 0)
                    continue;
                const char *end = strchr(cc + 12, '`');
                if (!end || strcmp(end, "`)") != 0)
                    continue;
                for (int i = 0; i < n; i++)
                    if (strlen(td->names[i]) == (size_t)(end - cc - 12) &&
                        strncmp(td->names[i], cc + 12, (size_t)(end - cc - 12)) == 0)
                        td->json[i] = 1;
            }
        }
        if (errbuf)
            errbuf[0] = '\0';
    }
    rc = 0;
out:
    pthread_mutex_unlock(&src->cat_mu);
    mysql_free_result(res);
    if (rc < 0)
        siphon_my__tabledef_free(td);
    return rc;
}

int siphon_my__cat_describe(siphon_source_t *src, const char *db, const char *table,
                            const siphon_relation_t **rel, char *errbuf, size_t errsize)
{
    my_tabledef_t td;
    my_rel_t *r = NULL;
    int rc = siphon_my__cat_tabledef(src, db, table, &td, errbuf, errsize);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&src->mu);
    rc = siphon_my__stream_rel_from_def(&src->st, db, table, &td, NULL, &r, errbuf, errsize);
    pthread_mutex_unlock(&src->mu);
    siphon_my__tabledef_free(&td);
    if (rc == 0)
        *rel = &r->rel;
    return rc;
}

int siphon_my__cat_connect(siphon_source_t *src, char *errbuf, size_t errsize)
{
    pthread_mutex_lock(&src->cat_mu);
    int rc = src->cat ? 0 : siphon_my__connect(&src->cat, src, 60, errbuf, errsize);
    pthread_mutex_unlock(&src->cat_mu);
    return rc;
}
