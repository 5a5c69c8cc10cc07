/*
 * registry.c - the Confluent Schema Registry client of the Kafka sink (sink.format: confluent).
 *
 * Siphon uses exactly one endpoint of the registry's REST API:
 *   POST {url}/subjects/{subject}/versions
 *   Content-Type: application/vnd.schemaregistry.v1+json
 *   {"schema": "<the Avro schema as JSON text>"}
 *   -> 200 {"id": 42}
 * which registers the schema under the subject, or returns the id it already has there, so a
 * restart (or a retry after a lost answer) registers nothing twice. Errors come back as
 * {"error_code": 40901, "message": "..."} with an HTTP status that says whether retrying can
 * help: 5xx, 408 and 429 may pass (the registry or its Kafka store is down), other 4xx will
 * not (bad credentials, a schema incompatible with the subject's history under the registry's
 * own compatibility setting, an invalid schema).
 *
 * Basic auth and TLS come from sink.schema_registry (username/password, ca_location,
 * cert_location/key_location/key_password, ssl_verify). One curl easy handle is kept, so the
 * connection is reused between requests. Several URLs (comma-separated) are tried in turn: a
 * retriable failure moves the next request to the next one.
 */
#include "sink/kafka/kafka_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"

#define REGISTRY_MAX_URLS 8

struct siphon_registry {
    const struct siphon_config_registry *cfg;
    CURL *curl;
    char *urls[REGISTRY_MAX_URLS]; /* without a trailing '/' (malloc) */
    int nurls, cur;
    siphon_buf_t body;             /* the answer being read */
    char curl_err[CURL_ERROR_SIZE];
};

static size_t on_body(char *ptr, size_t size, size_t n, void *opaque)
{
    siphon_buf_t *b = opaque;
    if (b->len + size * n > 1024 * 1024) /* an answer is a few bytes: refuse garbage */
        return 0;
    return siphon_buf_append(b, ptr, size * n) < 0 ? 0 : size * n;
}

void siphon_registry_destroy(siphon_registry_t *reg)
{
    if (!reg)
        return;
    if (reg->curl)
        curl_easy_cleanup(reg->curl);
    for (int i = 0; i < reg->nurls; i++)
        free(reg->urls[i]);
    siphon_buf_free(&reg->body);
    free(reg);
}

int siphon_registry_new(siphon_registry_t **out, const struct siphon_config_registry *cfg,
                        char *errbuf, size_t errsize)
{
    siphon_registry_t *reg;
    int rc;
    *out = NULL;
    if (!cfg || !cfg->url)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not set up the Schema Registry client: no "
                          "sink.schema_registry.url");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                          "could not set up the Schema Registry client: libcurl did not "
                          "initialize");
    if (!(reg = calloc(1, sizeof(*reg))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    reg->cfg = cfg;
    for (const char *p = cfg->url; *p;) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '/'))
            e--;
        if (e > s) {
            if (reg->nurls == REGISTRY_MAX_URLS) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "sink.schema_registry.url lists more than %d URLs",
                                REGISTRY_MAX_URLS);
                goto err;
            }
            if (!(reg->urls[reg->nurls++] = strndup(s, (size_t)(e - s)))) {
                rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
                goto err;
            }
        }
        p += n + (p[n] == ',');
    }
    if (reg->nurls == 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "sink.schema_registry.url holds no URL (expected e.g. "
                        "https://registry:8081)");
        goto err;
    }
    if (!(reg->curl = curl_easy_init())) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                        "could not set up the Schema Registry client: libcurl failed");
        goto err;
    }
    *out = reg;
    return 0;
err:
    siphon_registry_destroy(reg);
    return rc;
}

const char *siphon_registry_url(const siphon_registry_t *reg)
{
    return reg ? reg->urls[reg->cur] : "";
}

/* Options of one request: the handle is reset each time so nothing of the last one leaks. */
static int set_options(siphon_registry_t *reg, const char *url, struct curl_slist *hdrs,
                       const char *body)
{
    const struct siphon_config_registry *c = reg->cfg;
    CURL *h = reg->curl;
    curl_easy_reset(h);
    siphon_buf_reset(&reg->body);
    reg->curl_err[0] = '\0';
    int bad = curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_WRITEDATA, &reg->body) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_ERRORBUFFER, reg->curl_err) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_USERAGENT, "siphon/" SIPHON_VERSION) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->ssl_verify ? 1L : 0L) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->ssl_verify ? 2L : 0L) != CURLE_OK;
    if (!bad && c->username)
        bad = curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_USERNAME, c->username) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "") != CURLE_OK;
    if (!bad && c->ca_location)
        bad = curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_location) != CURLE_OK;
    if (!bad && c->cert_location)
        bad = curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_location) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_location) != CURLE_OK ||
              (c->key_password &&
               curl_easy_setopt(h, CURLOPT_KEYPASSWD, c->key_password) != CURLE_OK);
    return bad ? -1 : 0;
}

/* The registry's own message from an error answer, else the start of the body. */
static void answer_message(const siphon_buf_t *body, char *buf, size_t size)
{
    json_t *j = body->len ? json_loadb((const char *)body->data, body->len, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    if (msg)
        snprintf(buf, size, "%s (error_code %lld)", msg,
                 (long long)json_integer_value(json_object_get(j, "error_code")));
    else
        snprintf(buf, size, "%.*s", (int)(body->len > 200 ? 200 : body->len),
                 body->len ? (const char *)body->data : "no body");
    json_decref(j);
}

int siphon_registry_register(siphon_registry_t *reg, const char *subject,
                             const char *schema_json, uint32_t *id, char *errbuf,
                             size_t errsize)
{
    struct curl_slist *hdrs = NULL, *h2;
    char *esc = NULL, *url = NULL, *body = NULL;
    json_t *req = NULL, *ans = NULL;
    const char *base = reg->urls[reg->cur];
    int rc;

    if (!(req = json_pack("{s:s}", "schema", schema_json)) ||
        !(body = json_dumps(req, JSON_COMPACT)) ||
        !(esc = curl_easy_escape(reg->curl, subject, 0)) ||
        !(hdrs = curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json")) ||
        !(h2 = curl_slist_append(hdrs, "Accept: application/vnd.schemaregistry.v1+json")) ||
        !(url = malloc(strlen(base) + strlen(esc) + 32))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    hdrs = h2;
    sprintf(url, "%s/subjects/%s/versions", base, esc);
    if (set_options(reg, url, hdrs, body) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not register subject %s at %s: libcurl refused an option "
                        "(check sink.schema_registry)", subject, base);
        goto out;
    }
    CURLcode cc = curl_easy_perform(reg->curl);
    long status = 0;
    curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        int tls = cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
                  cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CIPHER;
        rc = siphon_err(errbuf, errsize, tls ? SIPHON_EINVAL : SIPHON_ECONN,
                        "could not register subject %s at Schema Registry %s: %s%s", subject,
                        base, reg->curl_err[0] ? reg->curl_err : curl_easy_strerror(cc),
                        tls ? " (check sink.schema_registry.ca_location, cert_location and "
                              "the registry's certificate)" : "");
        goto out;
    }
    if (status != 200) {
        char msg[512];
        answer_message(&reg->body, msg, sizeof(msg));
        int retriable = status >= 500 || status == 408 || status == 429;
        const char *hint = status == 401 || status == 403
                               ? " (check sink.schema_registry.username and password)"
                           : status == 409
                               ? " (the registry holds an earlier version of the subject that "
                                 "this schema is not compatible with under the registry's "
                                 "compatibility setting; publish a new major version or "
                                 "change the subject's compatibility)"
                           : status == 422 ? " (the registry does not accept the schema)"
                           : retriable ? " (retrying with backoff)" : "";
        rc = siphon_err(errbuf, errsize, retriable ? SIPHON_ECONN : SIPHON_EINVAL,
                        "could not register subject %s at Schema Registry %s: HTTP %ld: %s%s",
                        subject, base, status, msg, hint);
        goto out;
    }
    ans = json_loadb((const char *)reg->body.data, reg->body.len, 0, NULL);
    json_t *jid = ans ? json_object_get(ans, "id") : NULL;
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > (json_int_t)UINT32_MAX) {
        char msg[512];
        answer_message(&reg->body, msg, sizeof(msg));
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not register subject %s at Schema Registry %s: the answer has "
                        "no schema id: %s (is the URL a Schema Registry?)", subject, base, msg);
        goto out;
    }
    *id = (uint32_t)json_integer_value(jid);
    rc = 0;
out:
    if (rc == SIPHON_ECONN)
        reg->cur = (reg->cur + 1) % reg->nurls;
    curl_slist_free_all(hdrs);
    curl_free(esc);
    free(url);
    free(body);
    json_decref(req);
    json_decref(ans);
    return rc;
}
