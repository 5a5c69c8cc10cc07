/*
 * th_registry.c - a stand-in for the Confluent Schema Registry, for the tests of
 * sink.format: confluent. No real registry can be installed on the test machines (it is a Java
 * service with its own Kafka store), so this small HTTP server (libmicrohttpd, on 127.0.0.1 and a
 * free port, its own thread) implements exactly the documented endpoints Siphon and the
 * consumers in our tests use, with the registry's documented answers:
 *
 *   POST /subjects/{subject}/versions   body {"schema": "<Avro schema JSON>"} with
 *        Content-Type application/vnd.schemaregistry.v1+json (or application/json):
 *        200 {"id": N}. A schema text registered before (under any subject) keeps its id; a
 *        subject gets a new version only for a schema it does not hold yet.
 *        422 {"error_code": 42201} when "schema" is missing or not JSON.
 *   GET  /schemas/ids/{id}              200 {"schema": "<text>"}; 404 {"error_code": 40403}.
 *   GET  /subjects/{subject}/versions/latest
 *                                       200 {"subject", "version", "id", "schema"}; 404 40401.
 *   anything else                       404 {"error_code": 404}.
 *
 * Test controls: basic-auth credentials it demands (401 {"error_code": 401} without them),
 * failing the next N requests with a status, answering 503 for a while (the registry's Kafka
 * store is unavailable: error_code 50003), and stopping / restarting the listener on the same
 * port (connection refused meanwhile; the registered schemas are kept). Every request is
 * recorded (method, URL, Authorization and Content-Type headers, body, status answered).
 * Ids are the registry's: 1, 2, 3... in order of first registration.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"

typedef struct reg_schema {
    char *text;
    uint32_t id;
} reg_schema_t;

typedef struct reg_version {
    char *subject;
    int version;
    uint32_t id;
} reg_version_t;

struct th_registry {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    pthread_mutex_t mu;
    reg_schema_t *schemas;
    int nschemas;
    reg_version_t *versions;
    int nversions;
    th_registry_req_t *reqs;
    int nreqs;
    char *user, *pass;
    int fail_status, fail_n;
    int64_t unavailable_until;
};

typedef struct conn_body {
    siphon_buf_t buf;
} conn_body_t;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static char *dupn(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The answer to one complete request, under the lock. Returns the status; *body is malloc'd. */
static int handle(th_registry_t *r, const char *method, const char *url, const char *auth,
                  const char *ctype, const char *reqbody, char **body)
{
    if (r->user) {
        char *want = NULL;
        int ok = 0;
        if (auth) { /* "user:pass", decoded from "Basic base64(user:pass)" by the caller */
            want = th_strf("%s:%s", r->user, r->pass);
            ok = strcmp(auth, want) == 0;
        }
        free(want);
        if (!ok) {
            *body = strdup("{\"error_code\":401,\"message\":\"Unauthorized\"}");
            return 401;
        }
    }
    if (r->fail_n > 0) {
        r->fail_n--;
        *body = th_strf("{\"error_code\":%d,\"message\":\"injected failure\"}",
                        r->fail_status * 100 + 1);
        return r->fail_status;
    }
    if (r->unavailable_until && th_now_ms() < r->unavailable_until) {
        *body = strdup("{\"error_code\":50003,\"message\":\"Error while forwarding the request "
                       "to the leader (stand-in: unavailable)\"}");
        return 503;
    }
    const char *p;
    if (strcmp(method, "POST") == 0 && strncmp(url, "/subjects/", 10) == 0 &&
        (p = strstr(url + 10, "/versions")) && strcmp(p, "/versions") == 0) {
        char *subject = strndup(url + 10, (size_t)(p - (url + 10)));
        json_t *j = reqbody ? json_loads(reqbody, 0, NULL) : NULL;
        const char *schema = j ? json_string_value(json_object_get(j, "schema")) : NULL;
        json_t *parsed = schema ? json_loads(schema, JSON_DECODE_ANY, NULL) : NULL;
        int status = 200;
        if (!ctype || (strncmp(ctype, "application/vnd.schemaregistry.v1+json", 38) != 0 &&
                       strncmp(ctype, "application/json", 16) != 0)) {
            *body = strdup("{\"error_code\":415,\"message\":\"Unsupported Media Type\"}");
            status = 415;
        } else if (!parsed) {
            *body = strdup("{\"error_code\":42201,\"message\":\"Invalid schema\"}");
            status = 422;
        } else {
            uint32_t id = 0;
            for (int i = 0; i < r->nschemas && !id; i++)
                if (strcmp(r->schemas[i].text, schema) == 0)
                    id = r->schemas[i].id;
            if (!id) {
                r->schemas = realloc(r->schemas, (size_t)(r->nschemas + 1) * sizeof(*r->schemas));
                id = (uint32_t)r->nschemas + 1;
                r->schemas[r->nschemas++] = (reg_schema_t){strdup(schema), id};
            }
            int have = 0, last = 0;
            for (int i = 0; i < r->nversions; i++)
                if (strcmp(r->versions[i].subject, subject) == 0) {
                    last = r->versions[i].version;
                    have |= r->versions[i].id == id;
                }
            if (!have) {
                r->versions =
                    realloc(r->versions, (size_t)(r->nversions + 1) * sizeof(*r->versions));
                r->versions[r->nversions++] = (reg_version_t){strdup(subject), last + 1, id};
            }
            *body = th_strf("{\"id\":%" PRIu32 "}", id);
        }
        json_decref(parsed);
        json_decref(j);
        free(subject);
        return status;
    }
    if (strcmp(method, "GET") == 0 && strncmp(url, "/schemas/ids/", 13) == 0) {
        long id = strtol(url + 13, NULL, 10);
        for (int i = 0; i < r->nschemas; i++)
            if (r->schemas[i].id == (uint32_t)id) {
                json_t *j = json_pack("{s:s}", "schema", r->schemas[i].text);
                *body = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                return 200;
            }
        *body = strdup("{\"error_code\":40403,\"message\":\"Schema not found\"}");
        return 404;
    }
    if (strcmp(method, "GET") == 0 && strncmp(url, "/subjects/", 10) == 0 &&
        (p = strstr(url + 10, "/versions/latest")) && strcmp(p, "/versions/latest") == 0) {
        size_t sl = (size_t)(p - (url + 10));
        for (int i = r->nversions - 1; i >= 0; i--) {
            reg_version_t *v = &r->versions[i];
            if (strlen(v->subject) == sl && strncmp(v->subject, url + 10, sl) == 0) {
                json_t *j = json_pack("{s:s, s:i, s:i, s:s}", "subject", v->subject, "version",
                                      v->version, "id", (int)v->id, "schema",
                                      r->schemas[v->id - 1].text);
                *body = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                return 200;
            }
        }
        *body = strdup("{\"error_code\":40401,\"message\":\"Subject not found\"}");
        return 404;
    }
    *body = strdup("{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    return 404;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    th_registry_t *r = cls;
    conn_body_t *cb = *con_cls;
    (void)version;
    if (!cb) {
        if (!(cb = calloc(1, sizeof(*cb))))
            return MHD_NO;
        *con_cls = cb;
        return MHD_YES;
    }
    if (*upload_size) {
        siphon_buf_append(&cb->buf, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    siphon_buf_appendc(&cb->buf, '\0');
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    char *auth = user ? th_strf("%s:%s", user, pass ? pass : "") : NULL;
    const char *ahdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    char *body = NULL;

    pthread_mutex_lock(&r->mu);
    int status = handle(r, method, url, auth, ctype, (const char *)cb->buf.data, &body);
    th_registry_req_t *nr = realloc(r->reqs, (size_t)(r->nreqs + 1) * sizeof(*nr));
    if (nr) {
        r->reqs = nr;
        th_registry_req_t *q = &nr[r->nreqs++];
        snprintf(q->method, sizeof(q->method), "%s", method);
        q->url = dupn(url);
        q->authorization = dupn(ahdr);
        q->content_type = dupn(ctype);
        q->body = dupn((const char *)cb->buf.data);
        q->status = status;
        q->at_ms = th_now_ms();
    }
    pthread_mutex_unlock(&r->mu);

    enum MHD_Result rc = answer(c, (unsigned)status, body ? body : "{}");
    free(body);
    free(auth);
    if (user)
        MHD_free(user);
    if (pass)
        MHD_free(pass);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    conn_body_t *cb = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (cb) {
        siphon_buf_free(&cb->buf);
        free(cb);
        *con_cls = NULL;
    }
}

static int listen_on(th_registry_t *r, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
                            on_request, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, r,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!r->d)
        return th_err("could not start the stand-in Schema Registry on port %d", port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info ? info->port : port;
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d", r->port);
    return 0;
}

th_registry_t *th_registry_start(void)
{
    th_registry_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    if (listen_on(r, 0) < 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    return r;
}

const char *th_registry_url(const th_registry_t *r)
{
    return r->url;
}

void th_registry_set_auth(th_registry_t *r, const char *user, const char *pass)
{
    pthread_mutex_lock(&r->mu);
    free(r->user);
    free(r->pass);
    r->user = dupn(user);
    r->pass = dupn(user ? (pass ? pass : "") : NULL);
    pthread_mutex_unlock(&r->mu);
}

void th_registry_fail(th_registry_t *r, int status, int n)
{
    pthread_mutex_lock(&r->mu);
    r->fail_status = status;
    r->fail_n = n;
    pthread_mutex_unlock(&r->mu);
}

void th_registry_unavailable_for(th_registry_t *r, int ms)
{
    pthread_mutex_lock(&r->mu);
    r->unavailable_until = ms > 0 ? th_now_ms() + ms : 0;
    pthread_mutex_unlock(&r->mu);
}

int th_registry_stop(th_registry_t *r)
{
    if (r->d) {
        MHD_stop_daemon(r->d);
        r->d = NULL;
    }
    return 0;
}

int th_registry_restart(th_registry_t *r)
{
    if (r->d)
        return 0;
    for (int i = 0; i < 50; i++) { /* the port may linger a moment */
        if (listen_on(r, r->port) == 0)
            return 0;
        th_sleep_ms(100);
    }
    return -1;
}

int th_registry_requests(th_registry_t *r, th_registry_req_t **out)
{
    pthread_mutex_lock(&r->mu);
    int n = r->nreqs;
    th_registry_req_t *v = calloc((size_t)(n ? n : 1), sizeof(*v));
    for (int i = 0; v && i < n; i++) {
        v[i] = r->reqs[i];
        v[i].url = dupn(r->reqs[i].url);
        v[i].authorization = dupn(r->reqs[i].authorization);
        v[i].content_type = dupn(r->reqs[i].content_type);
        v[i].body = dupn(r->reqs[i].body);
    }
    pthread_mutex_unlock(&r->mu);
    *out = v;
    return v ? n : -1;
}

void th_registry_requests_free(th_registry_req_t *v, int n)
{
    for (int i = 0; v && i < n; i++) {
        free(v[i].url);
        free(v[i].authorization);
        free(v[i].content_type);
        free(v[i].body);
    }
    free(v);
}

char *th_registry_schema(th_registry_t *r, uint32_t id)
{
    char *s = NULL;
    pthread_mutex_lock(&r->mu);
    if (id >= 1 && (int)id <= r->nschemas)
        s = strdup(r->schemas[id - 1].text);
    pthread_mutex_unlock(&r->mu);
    return s;
}

int th_registry_subject_id(th_registry_t *r, const char *subject, uint32_t *id, int *versions)
{
    int found = 0, n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nversions; i++)
        if (strcmp(r->versions[i].subject, subject) == 0) {
            *id = r->versions[i].id;
            found = 1;
            n++;
        }
    pthread_mutex_unlock(&r->mu);
    if (versions)
        *versions = n;
    return found ? 0 : -1;
}

/* One part of a message, Confluent-framed -> single-object-encoded (reallocated in place). */
static int part_to_soe(th_registry_t *r, void **data, size_t *len, uint32_t *id_out)
{
    uint32_t id = 0;
    if (!*data)
        return 0;
    if (!siphon_avro_confluent_id(*data, *len, &id))
        return th_err("could not re-frame message: it does not start with the Confluent magic "
                      "byte 0 (first byte 0x%02x)", *len ? ((uint8_t *)*data)[0] : 0);
    char *schema = th_registry_schema(r, id);
    if (!schema)
        return th_err("could not re-frame message: schema id %" PRIu32 " is not in the "
                      "registry", id);
    char *canon = NULL, err[512];
    int rc = siphon_avro_canonical_form(&canon, schema, strlen(schema), err, sizeof(err));
    free(schema);
    if (rc < 0)
        return th_err("could not re-frame message: schema id %" PRIu32 ": %s", id, err);
    siphon_buf_t out = {0};
    rc = siphon_avro_confluent_to_soe(&out, *data, *len,
                                      siphon_avro_fingerprint64(canon, strlen(canon)));
    free(canon);
    if (rc < 0 || siphon_buf_appendc(&out, '\0') < 0) {
        siphon_buf_free(&out);
        return th_err("could not re-frame message: out of memory");
    }
    free(*data);
    *data = out.data;
    *len = out.len - 1;
    if (id_out)
        *id_out = id;
    return 0;
}

int th_registry_to_soe(th_registry_t *r, th_msg_t *m, uint32_t *key_id, uint32_t *value_id)
{
    if (part_to_soe(r, &m->key, &m->klen, key_id) < 0 ||
        part_to_soe(r, &m->value, &m->vlen, value_id) < 0)
        return -1;
    return 0;
}

int th_conf_add_sink_keys(const char *config_path, const char *lines)
{
    char *text = th_read_file(config_path, NULL, 0);
    const char *anchor = "  tombstones: true\n";
    char *at = text ? strstr(text, anchor) : NULL;
    if (!at) {
        free(text);
        return th_err("could not find the sink section of %s", config_path);
    }
    at += strlen(anchor);
    char *out = th_strf("%.*s%s%s", (int)(at - text), text, lines, at);
    int rc = th_write_file(config_path, out);
    free(text);
    free(out);
    return rc;
}

void th_registry_destroy(th_registry_t *r)
{
    if (!r)
        return;
    th_registry_stop(r);
    for (int i = 0; i < r->nschemas; i++)
        free(r->schemas[i].text);
    free(r->schemas);
    for (int i = 0; i < r->nversions; i++)
        free(r->versions[i].subject);
    free(r->versions);
    th_registry_requests_free(r->reqs, r->nreqs);
    free(r->user);
    free(r->pass);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
