/*
 * 0020-erp-mappings - the sample legacy ERP through the shipped mappings, end to end.
 *
 * A throwaway PostgreSQL 15 with a SQL_ASCII database "erp" (as old ERPs had: its text is
 * Windows-1252 bytes the server knows nothing about) holding the eight tables of
 * examples/legacy-erp/erp.sql; `siphon run` with the repository's mappings/ and schemas/ into a
 * mock Kafka cluster; then the deterministic generator (examples/legacy-erp/generate.sql) writes
 * three companies of customers, items, orders and lines, stock, shipments, invoices and returns,
 * a step of activity (status changes, soft deletes, a hard delete), and four rows no mapping can
 * convert.
 *
 * Checked:
 *  - every entity topic, replayed as a consumer would (create/update put the record, delete
 *    removes it), ends with exactly the rows the database holds after the filters and soft
 *    deletes, field by field, against values computed by PostgreSQL itself from the raw columns
 *    (dates from YYYYMMDD, CYYDDD, YYMMDD and day counts, local times to UTC, implied decimals,
 *    Windows-1252 to UTF-8, HMAC-SHA256 written in plpgsql): an oracle that shares no code with
 *    the mapping module;
 *  - the four bad rows are dead letters on erp._dlq (order_date 20260231, status 'Z', a
 *    line_amount of 15 digits, a blob with byte 0x81), each naming table, mapping, field,
 *    reason, position and the raw row; the same bad values in the training company are
 *    filtered out, not dead-lettered; the stream goes on after them;
 *  - a dead letter holds the position back: with every broker down, a transaction whose only
 *    row is a dead letter is not acknowledged to the slot; once the brokers are back, the dead
 *    letter arrives and the position moves past it;
 *  - SIGTERM: siphon drains and exits 0; its progress line counts the dead letters.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#include "mapping/mapping.h"

#define PII_KEY "it-0020-pii-secret"

typedef struct fx {
    th_pg_t *pg;
    PGconn *erp;                /* the test's connection to database erp */
    th_kafka_t *kafka;
    char *dir, *config, *log, *offsets;
    th_proc_t *siphon;
    th_decoder_t *dec;
    siphon_dlq_t *dlq;
} fx_t;

static fx_t *F;

static void dump(void)
{
    if (F && F->siphon)
        th_proc_dump_log(F->siphon, 80);
    if (F && F->pg)
        th_pg_dump_log(F->pg, 30);
}

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            dump();                                                                          \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

static PGresult *erp_query(const char *sql)
{
    PGresult *r = PQexec(F->erp, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        th_err("SQL failed: %s\n%.300s", PQresultErrorMessage(r), sql);
        PQclear(r);
        return NULL;
    }
    return r;
}

static void erp_exec(const char *sql)
{
    PGresult *r = erp_query(sql);
    CHECK(r != NULL, "SQL failed (see above)");
    PQclear(r);
}

static uint64_t current_lsn(void)
{
    uint64_t lsn = 0;
    CHECK(th_pg_current_lsn(F->pg, &lsn) == 0, "no current LSN");
    return lsn;
}

/* Wait until the slot has confirmed at least lsn. 1 when it did within ms. */
static int wait_confirmed(uint64_t lsn, int ms)
{
    int64_t until = th_now_ms() + ms;
    do {
        uint64_t c = 0;
        if (th_pg_slot_confirmed(F->pg, "siphon_erp", &c) == 0 && c >= lsn)
            return 1;
        th_sleep_ms(100);
    } while (th_now_ms() < until);
    return 0;
}

/* ---- the oracle: PostgreSQL computes what every entity field must be ---- */

static const char *const oracle_functions =
    /* text as the ERP stored it (Windows-1252 bytes) -> the same text in UTF-8 */
    "CREATE FUNCTION o_u8(t text) RETURNS text LANGUAGE sql AS $$"
    "  SELECT convert_from(convert(convert_to(t, 'SQL_ASCII'), 'WIN1252', 'UTF8'), 'SQL_ASCII') $$;"
    "CREATE FUNCTION o_nz(t text) RETURNS text LANGUAGE sql AS $$"
    "  SELECT regexp_replace(t, '^0+(?=.)', '') $$;"
    "CREATE FUNCTION o_d(d date) RETURNS text LANGUAGE sql AS $$ SELECT to_char(d, 'YYYY-MM-DD') $$;"
    "CREATE FUNCTION o_ymd(v int) RETURNS date LANGUAGE sql AS $$"
    "  SELECT make_date(v / 10000, v / 100 % 100, v % 100) $$;"
    "CREATE FUNCTION o_jde(v int) RETURNS date LANGUAGE sql AS $$"
    "  SELECT make_date(1900 + v / 1000, 1, 1) + (v % 1000 - 1) $$;"
    /* a local date and HHMMSS time in America/Chicago -> ISO-8601 UTC, as the decoder prints */
    "CREATE FUNCTION o_utc(d date, t int) RETURNS text LANGUAGE sql AS $$"
    "  SELECT to_char(((d + make_interval(hours => t / 10000, mins => t / 100 % 100,"
    "                                     secs => t % 100))::timestamp"
    "                  AT TIME ZONE 'America/Chicago') AT TIME ZONE 'UTC',"
    "                 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') $$;"
    "CREATE FUNCTION o_dec(v numeric, places int) RETURNS text LANGUAGE sql AS $$"
    "  SELECT round(v / power(10::numeric, places), places)::text $$;"
    /* HMAC-SHA256 (RFC 2104) on PostgreSQL's sha256() */
    "CREATE FUNCTION o_hmac(msg text) RETURNS text LANGUAGE plpgsql AS $$"
    "DECLARE k bytea := convert_to('" PII_KEY "', 'SQL_ASCII'); i bytea; o bytea;"
    "BEGIN"
    "  IF msg IS NULL THEN RETURN NULL; END IF;"
    "  k := k || decode(repeat('00', 64 - length(k)), 'hex'); i := k; o := k;"
    "  FOR n IN 0 .. 63 LOOP"
    "    i := set_byte(i, n, get_byte(k, n) # 54); o := set_byte(o, n, get_byte(k, n) # 92);"
    "  END LOOP;"
    "  RETURN encode(sha256(o || sha256(i || convert_to(msg, 'SQL_ASCII'))), 'hex');"
    "END $$;";

typedef struct entity {
    const char *name;
    const char *keys; /* key fields, comma-separated, in key order */
    const char *sql;  /* first column _key, then one column per field, named as the field */
} entity_t;

static const entity_t entities[] = {
    {"customer", "company,customer_number",
     "SELECT cucomp || '|' || o_nz(trim(cucust)), cucomp AS company,"
     " o_nz(trim(cucust)) AS customer_number, o_u8(rtrim(cuname)) AS name,"
     " o_u8(nullif(trim(cuadr1), '')) AS address_line1, o_u8(nullif(trim(cucity), '')) AS city,"
     " nullif(trim(custat), '') AS region, left(nullif(trim(cuzipc), ''), 3) AS postal_code_prefix,"
     " nullif(upper(trim(cuctry)), '') AS country_code,"
     " o_hmac(nullif(trim(cuphon), '')) AS phone_hash,"
     " o_hmac(nullif(lower(trim(cuemal)), '')) AS email_hash,"
     " CASE WHEN trim(cutaxi) = '' THEN NULL ELSE '***' END AS tax_id,"
     " o_dec(cucrlm, 2) AS credit_limit,"
     " CASE trim(cuterm) WHEN 'N30' THEN 'NET_30' WHEN 'N60' THEN 'NET_60'"
     "  WHEN 'COD' THEN 'CASH_ON_DELIVERY' WHEN 'PPD' THEN 'PREPAID' ELSE 'UNKNOWN' END"
     "  AS payment_terms,"
     " (cuactv = 'Y')::text AS active,"
     " CASE WHEN cuopdt = 0 THEN NULL ELSE o_d(o_ymd(cuopdt)) END AS customer_since,"
     " CASE WHEN cuchgd = 0 THEN NULL ELSE o_utc(o_jde(cuchgd), cuchgt) END AS updated_at"
     " FROM arcust WHERE cucomp <> '99' AND cudltf <> 'D'"},
    {"product", "company,item_number",
     "SELECT iccomp || '|' || rtrim(icitem), iccomp AS company, rtrim(icitem) AS item_number,"
     " o_u8(rtrim(icdesc)) AS description,"
     " nullif(trim(convert_from(convert(icldsc, 'WIN1252', 'UTF8'), 'SQL_ASCII')), '')"
     "  AS long_description,"
     " trim(icuom) AS unit_of_measure, nullif(trim(iccatg), '') AS category,"
     " o_dec(icprce, 4) AS list_price, o_dec(iccost, 4) AS standard_cost,"
     " round(nullif(trim(icwght), '')::numeric, 3)::text AS weight_kg,"
     " CASE icstat WHEN 'A' THEN 'ACTIVE' WHEN 'I' THEN 'INACTIVE' ELSE 'DISCONTINUED' END"
     "  AS status,"
     " (ictaxf = 'T')::text AS taxable,"
     " CASE WHEN iccrdt = '00000000' THEN NULL ELSE o_d(to_date(iccrdt, 'YYYYMMDD')) END"
     "  AS created_on"
     " FROM icitem WHERE iccomp <> '99' AND icdltf <> 'Y' AND icitem <> 'BAD-00001'"},
    {"sales_order", "company,order_number",
     "SELECT hdcomp || '|' || o_nz(trim(hdordn)), hdcomp AS company,"
     " o_nz(trim(hdordn)) AS order_number, o_nz(trim(hdcust)) AS customer_number,"
     " o_d(o_ymd(hdodat)) AS order_date,"
     " CASE WHEN hdrqdt = 0 THEN NULL ELSE o_d(o_ymd(hdrqdt)) END AS requested_date,"
     " o_dec(hdamt, 2) AS total_amount, o_dec(hdtaxa, 2) AS tax_amount,"
     " upper(trim(hdcurr)) AS currency,"
     " CASE hdstat WHEN 'O' THEN 'OPEN' WHEN 'H' THEN 'ON_HOLD' WHEN 'S' THEN 'SHIPPED'"
     "  WHEN 'C' THEN 'CLOSED' ELSE 'CANCELLED' END AS status,"
     " nullif(trim(hdpono), '') AS customer_po, nullif(trim(hdslsp), '') AS salesperson,"
     " o_u8(nullif(trim(hdnote), '')) AS note,"
     " o_utc(o_ymd(hdcrdt), hdcrtm) AS created_at,"
     " CASE WHEN hdchgd = 0 THEN NULL ELSE o_utc(o_ymd(hdchgd), hdchgt) END AS updated_at"
     " FROM oehdr WHERE hdcomp <> '99' AND hddoct = 'SO'"
     " AND hdordn NOT IN ('0000199001', '0000199002')"},
    {"quote", "company,quote_number",
     "SELECT hdcomp || '|' || o_nz(trim(hdordn)), hdcomp AS company,"
     " o_nz(trim(hdordn)) AS quote_number, o_nz(trim(hdcust)) AS customer_number,"
     " o_d(o_ymd(hdodat)) AS quote_date,"
     " CASE WHEN hdrqdt = 0 THEN NULL ELSE o_d(o_ymd(hdrqdt)) END AS valid_until,"
     " o_dec(hdamt, 2) AS total_amount, upper(trim(hdcurr)) AS currency,"
     " CASE hdstat WHEN 'O' THEN 'OPEN' WHEN 'H' THEN 'ON_HOLD' WHEN 'X' THEN 'DECLINED'"
     "  ELSE 'ACCEPTED' END AS status,"
     " nullif(trim(hdslsp), '') AS salesperson, o_u8(nullif(trim(hdnote), '')) AS note,"
     " o_utc(o_ymd(hdcrdt), hdcrtm) AS created_at,"
     " CASE WHEN hdchgd = 0 THEN NULL ELSE o_utc(o_ymd(hdchgd), hdchgt) END AS updated_at"
     " FROM oehdr WHERE hdcomp <> '99' AND hddoct = 'QT'"},
    {"sales_order_line", "company,order_number,line_number",
     "SELECT olcomp || '|' || o_nz(trim(olordn)) || '|' || olline, olcomp AS company,"
     " o_nz(trim(olordn)) AS order_number, olline::text AS line_number,"
     " olcomp || '-' || o_nz(trim(olordn)) || '-' || olline AS line_key,"
     " rtrim(olitem) AS item_number, o_u8(rtrim(oldesc)) AS description,"
     " o_dec(olqtyo, 3) AS quantity_ordered, o_dec(olqtys, 3) AS quantity_shipped,"
     " trim(oluom) AS unit_of_measure, o_dec(olprce, 4) AS unit_price,"
     " o_dec(oldisc, 2) AS discount_percent, o_dec(olamt, 2) AS line_amount,"
     " trim(olwhse) AS warehouse,"
     " CASE WHEN olrqdt = 0 THEN NULL ELSE o_d(make_date(CASE WHEN olrqdt / 10000 < 50"
     "  THEN 2000 ELSE 1900 END + olrqdt / 10000, olrqdt / 100 % 100, olrqdt % 100)) END"
     "  AS requested_date,"
     " CASE WHEN olprdt = 0 THEN NULL ELSE o_d(o_jde(olprdt)) END AS promised_date,"
     " CASE olstat WHEN 'O' THEN 'OPEN' WHEN 'B' THEN 'BACKORDERED' WHEN 'S' THEN 'SHIPPED'"
     "  WHEN 'C' THEN 'CLOSED' ELSE 'CANCELLED' END AS status,"
     " (oltaxf = '1')::text AS taxable, 'ERP-DIST' AS source_system,"
     " CASE WHEN olchgd = 0 THEN NULL ELSE o_utc(o_ymd(olchgd), olchgt) END AS updated_at"
     " FROM oeline WHERE olcomp <> '99' AND oldltf <> 'D'"
     " AND NOT (olcomp = '01' AND olordn = '0000104701' AND olline = 9)"},
    {"inventory_position", "company,warehouse,item_number",
     "SELECT ibcomp || '|' || trim(ibwhse) || '|' || rtrim(ibitem), ibcomp AS company,"
     " trim(ibwhse) AS warehouse, rtrim(ibitem) AS item_number,"
     " o_dec(ibqoh, 3) AS on_hand, o_dec(ibqal, 3) AS allocated, o_dec(ibqoo, 3) AS on_order,"
     " ibrorp::text AS reorder_point, nullif(trim(ibbin), '') AS bin_location,"
     " CASE WHEN iblcnt = 0 THEN NULL ELSE o_d(DATE '1967-12-31' + iblcnt) END"
     "  AS last_counted_on,"
     " CASE WHEN ibchgd = '1900-01-01' THEN NULL ELSE o_utc(ibchgd, ibchgt::int) END"
     "  AS updated_at"
     " FROM icbal WHERE ibcomp <> '99'"},
    {"shipment", "company,shipment_number",
     "SELECT shcomp || '|' || o_nz(trim(shshpn)), shcomp AS company,"
     " o_nz(trim(shshpn)) AS shipment_number, o_nz(trim(shordn)) AS order_number,"
     " o_nz(trim(shcust)) AS customer_number, trim(shwhse) AS warehouse,"
     " CASE WHEN shshdt = '00000000' THEN NULL ELSE o_d(to_date(shshdt, 'YYYYMMDD')) END"
     "  AS ship_date,"
     " CASE trim(shcarr) WHEN 'UPSG' THEN 'UPS Ground' WHEN 'UPSR' THEN 'UPS Next Day Air'"
     "  WHEN 'FDXG' THEN 'FedEx Ground' WHEN 'LTL1' THEN 'LTL freight' WHEN 'WILL'"
     "  THEN 'Will call' ELSE 'Other' END AS carrier,"
     " nullif(trim(shtrck), '') AS tracking_number,"
     " round(nullif(trim(shwght), '')::numeric, 2)::text AS weight_kg,"
     " o_dec(shfrgt, 2) AS freight_amount,"
     " CASE shstat WHEN 'P' THEN 'PICKED' WHEN 'S' THEN 'SHIPPED' WHEN 'D' THEN 'DELIVERED'"
     "  ELSE 'VOID' END AS status,"
     " CASE WHEN trim(shdldt) = '' THEN NULL ELSE o_d(to_date(trim(shdldt), 'MM/DD/YY')) END"
     "  AS delivered_on"
     " FROM shhdr WHERE shcomp <> '99'"},
    {"invoice", "company,invoice_number",
     "SELECT aicomp || '|' || o_nz(trim(aiinvn)), aicomp AS company,"
     " o_nz(trim(aiinvn)) AS invoice_number,"
     " CASE aidoct WHEN 'IN' THEN 'INVOICE' ELSE 'CREDIT_MEMO' END AS document_type,"
     " o_nz(nullif(trim(aiordn), '')) AS order_number, o_nz(trim(aicust)) AS customer_number,"
     " o_d(o_jde(aiindt)) AS invoice_date,"
     " CASE WHEN aidudt = 0 THEN NULL ELSE o_d(o_ymd(aidudt)) END AS due_date,"
     " o_dec(aiamt, 2) AS amount, o_dec(aitax, 2) AS tax_amount, trim(aicurr) AS currency,"
     " (aipdfl = 'Y')::text AS paid,"
     " CASE WHEN aipddt = '1900-01-01' THEN NULL ELSE o_d(aipddt) END AS paid_on"
     " FROM arinv WHERE aicomp <> '99'"},
    {"return", "company,rma_number",
     "SELECT rmcomp || '|' || o_nz(trim(rmrman)), rmcomp AS company,"
     " o_nz(trim(rmrman)) AS rma_number, o_nz(trim(rmordn)) AS order_number,"
     " o_nz(trim(rmcust)) AS customer_number, rtrim(rmitem) AS item_number,"
     " o_dec(rmqty, 3) AS quantity,"
     " CASE rmreas WHEN '01' THEN 'DAMAGED' WHEN '02' THEN 'WRONG_ITEM' WHEN '03'"
     "  THEN 'NOT_NEEDED' ELSE 'DEFECTIVE' END AS reason,"
     " CASE WHEN rmrcdt = 0 THEN NULL ELSE o_d(o_ymd(rmrcdt)) END AS received_on,"
     " o_dec(rmcred, 2) AS credit_amount,"
     " CASE rmstat WHEN 'O' THEN 'OPEN' WHEN 'R' THEN 'RECEIVED' WHEN 'C' THEN 'CREDITED'"
     "  ELSE 'CANCELLED' END AS status,"
     " o_u8(nullif(trim(rmnote), '')) AS note"
     " FROM rmhdr WHERE rmcomp <> '99'"},
};
#define NENT ((int)(sizeof(entities) / sizeof(entities[0])))

/* ---- setup ---- */

static int setup(void **state)
{
    F = calloc(1, sizeof(*F));
    *state = F;
    char *conninfo = NULL;
    th_log("setup: PostgreSQL 15 with a SQL_ASCII database \"erp\", the sample ERP's tables, "
           "mock Kafka, siphon run with the shipped mappings");
    setenv("SIPHON_PII_KEY", PII_KEY, 1);
    if (!(F->dir = th_tempdir()) || !(F->pg = th_pg_start()))
        return -1;
    if (!(F->erp = th_erp_create(F->pg, &conninfo)))
        return -1;
    PGresult *r = erp_query(oracle_functions);
    if (!r)
        return -1;
    PQclear(r);
    if (!(F->kafka = th_kafka_start(3)))
        return -1;
    for (int i = 0; i < NENT; i++) {
        char *t = th_strf("erp.%s.v1", entities[i].name);
        int rc = th_kafka_create_topic(F->kafka, t, 4);
        free(t);
        if (rc)
            return -1;
    }
    if (th_kafka_create_topic(F->kafka, "erp._dlq", 4))
        return -1;
    F->config = th_path(F->dir, "siphon.yaml");
    F->offsets = th_path(F->dir, "offsets.json");
    F->log = th_path(F->dir, "siphon.log");
    th_siphon_conf_t conf = {.name = "erp", .conninfo = conninfo, .slot = "siphon_erp",
                             .publication = "siphon_erp",
                             .bootstraps = th_kafka_bootstraps(F->kafka), .topic_prefix = "erp",
                             .offsets_path = F->offsets, .status_interval_ms = 300,
                             .flush_interval_ms = 200};
    if (th_siphon_conf_write(F->config, &conf) != 0)
        return -1;
    free(conninfo);
    if (!(F->dec = th_decoder_new(NULL, NULL)))
        return -1;
    char err[512];
    if (siphon_dlq_new(&F->dlq, err, sizeof(err)) < 0)
        return th_err("%s", err);
    if (!(F->siphon = th_siphon_start(F->config, F->log)))
        return -1;
    /* streaming: the walsender of the slot reports state 'streaming' */
    for (int64_t until = th_now_ms() + 30000;; th_sleep_ms(100)) {
        char *v = th_pg_value(F->pg, NULL,
                              "SELECT count(*) FROM pg_replication_slots s JOIN "
                              "pg_stat_replication r ON r.pid = s.active_pid WHERE "
                              "s.slot_name = 'siphon_erp' AND r.state = 'streaming'");
        int ok = v && atoi(v) > 0;
        free(v);
        if (ok)
            break;
        if (!th_proc_running(F->siphon) || th_now_ms() > until) {
            dump();
            return th_err("siphon did not start streaming");
        }
    }
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    if (!fx)
        return 0;
    th_proc_destroy(fx->siphon);
    siphon_dlq_destroy(fx->dlq);
    th_decoder_destroy(fx->dec);
    if (fx->erp)
        PQfinish(fx->erp);
    th_kafka_destroy(fx->kafka);
    th_pg_destroy(fx->pg);
    if (fx->dir)
        th_tempdir_remove(fx->dir);
    free(fx->dir);
    free(fx->config);
    free(fx->offsets);
    free(fx->log);
    free(fx);
    F = NULL;
    return 0;
}

/* ---- consuming ---- */

typedef struct replay {
    int n;            /* keys held */
    char **keys;
    json_t **recs;    /* "after" of the last put */
    long events, deletes, tombstones;
} replay_t;

static int find_key(replay_t *rp, const char *k)
{
    for (int i = 0; i < rp->n; i++)
        if (!strcmp(rp->keys[i], k))
            return i;
    return -1;
}

/* "f1|f2" from the key record, in key order. */
static char *key_text(json_t *key, const char *keys)
{
    char buf[512] = "", tmp[256];
    char *names = strdup(keys);
    for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ",")) {
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? "|" : "",
                 th_json_text(key, tok, tmp, sizeof(tmp)));
    }
    free(names);
    return strdup(buf);
}

static void replay_apply(replay_t *rp, const entity_t *e, th_msgs_t *msgs)
{
    for (int i = 0; i < msgs->n; i++) {
        th_event_t ev;
        CHECK(th_decode(F->dec, &msgs->v[i], &ev) == 0, "a message on erp.%s.v1 does not decode",
              e->name);
        CHECK(!strcmp(ev.entity, e->name), "an event of %s on the topic of %s", ev.entity,
              e->name);
        char *k = key_text(ev.key, e->keys);
        int at = find_key(rp, k);
        if (!ev.value) {
            rp->tombstones++;
        } else if (ev.op == 'd') {
            rp->deletes++;
            if (at >= 0) {
                free(rp->keys[at]);
                json_decref(rp->recs[at]);
                rp->keys[at] = rp->keys[rp->n - 1];
                rp->recs[at] = rp->recs[rp->n - 1];
                rp->n--;
            }
        } else {
            rp->events++;
            json_t *after = th_json_path(ev.value, "after");
            CHECK(json_is_object(after), "%s event for %s without after", e->name, k);
            if (at < 0) {
                rp->keys = realloc(rp->keys, sizeof(char *) * (size_t)(rp->n + 1));
                rp->recs = realloc(rp->recs, sizeof(json_t *) * (size_t)(rp->n + 1));
                rp->keys[rp->n] = strdup(k);
                rp->recs[rp->n] = json_incref(after);
                rp->n++;
            } else {
                json_decref(rp->recs[at]);
                rp->recs[at] = json_incref(after);
            }
        }
        free(k);
        th_event_clear(&ev);
    }
}

static void replay_free(replay_t *rp)
{
    for (int i = 0; i < rp->n; i++) {
        free(rp->keys[i]);
        json_decref(rp->recs[i]);
    }
    free(rp->keys);
    free(rp->recs);
}

/* Read a whole topic (until 2 s pass without a new message). */
static void read_topic(const char *topic, th_msgs_t *msgs)
{
    th_consumer_t *c = th_consumer_new(F->kafka, topic);
    CHECK(c != NULL, "no consumer for %s", topic);
    for (int last = -1; msgs->n != last;) {
        last = msgs->n;
        th_consumer_poll(c, msgs, 0, 2000);
    }
    th_consumer_destroy(c);
}

/* ---- tests ---- */

static void test_entities_match_the_database(void **state)
{
    (void)state;
    th_log("the generator writes 3 companies of ERP data, a day of activity, 4 bad rows and "
           "the same bad values in the training company");
    erp_exec("SELECT erp_generate(1)");
    erp_exec("SELECT erp_activity(1)");
    erp_exec("SELECT erp_bad_rows()");
    th_log("after the dead letters the stream goes on: one more good order");
    erp_exec("INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdcrdt, hdcrtm) "
             "VALUES ('02', '0000199999', '00001007', 20240305, 4200, 'O', 20240305, 80000)");
    uint64_t end = current_lsn();
    CHECK(wait_confirmed(end, 60000), "the slot did not confirm the end of the data (%" PRIx64
                                      ") within 60 s", end);

    for (int i = 0; i < NENT; i++) {
        const entity_t *e = &entities[i];
        char topic[96];
        snprintf(topic, sizeof(topic), "erp.%s.v1", e->name);
        th_msgs_t msgs = {0};
        read_topic(topic, &msgs);
        replay_t rp = {0};
        replay_apply(&rp, e, &msgs);
        PGresult *r = erp_query(e->sql);
        CHECK(r != NULL, "oracle query of %s failed", e->name);
        int rows = PQntuples(r), cols = PQnfields(r);
        th_log("  %-18s %4d messages (%ld puts, %ld deletes, %ld tombstones): %d records, "
               "%d rows in the database", e->name, msgs.n, rp.events, rp.deletes, rp.tombstones,
               rp.n, rows);
        CHECK(rows > 0, "no rows of %s in the database", e->name);
        CHECK(rp.n == rows, "%s: %d records on the topic, %d rows in the database", e->name,
              rp.n, rows);
        for (int row = 0; row < rows; row++) {
            const char *k = PQgetvalue(r, row, 0);
            int at = find_key(&rp, k);
            CHECK(at >= 0, "%s %s is in the database but not on the topic", e->name, k);
            for (int c = 1; c < cols; c++) {
                const char *field = PQfname(r, c);
                const char *want = PQgetisnull(r, row, c) ? "null" : PQgetvalue(r, row, c);
                char got[512];
                th_json_text(rp.recs[at], field, got, sizeof(got));
                CHECK(!strcmp(got, want), "%s %s: field %s is \"%s\", the database says \"%s\"",
                      e->name, k, field, got, want);
            }
            /* every schema field was compared */
            CHECK((int)json_object_size(rp.recs[at]) == cols - 1,
                  "%s has %zu fields, the oracle %d", e->name, json_object_size(rp.recs[at]),
                  cols - 1);
        }
        PQclear(r);
        replay_free(&rp);
        th_msgs_free(&msgs);
    }

    th_log("erp._dlq holds the four bad rows, and nothing of the training company");
    th_msgs_t dl = {0};
    read_topic("erp._dlq", &dl);
    CHECK(dl.n == 4, "%d dead letters, expected 4", dl.n);
    static const struct {
        const char *table, *field, *reason, *raw;
    } want[] = {
        {"oehdr", "order_date", "February 2026 has no day 31", "\"hdodat\":\"20260231\""},
        {"oehdr", "status", "unknown code 'Z'", "\"hdstat\":\"Z\""},
        {"oeline", "line_amount", "does not fit decimal(13,2)", "\"olamt\":\"99999999999999999\""},
        {"icitem", "long_description", "byte 0x81", "\"icldsc\":\"\\\\x4f6b2081\""},
    };
    int seen[4] = {0};
    for (int i = 0; i < dl.n; i++) {
        const th_msg_t *m = &dl.v[i];
        char *json = NULL, err[512];
        CHECK(m->value && siphon_dlq_decode_json(&json, F->dlq, m->value, m->vlen, err,
                                                 sizeof(err)) == 0,
              "dead letter p%d@%lld does not decode: %s", m->partition, (long long)m->offset,
              err);
        const th_header_t *h = th_msg_header(m, "siphon.schema_fingerprint");
        char fp[17];
        snprintf(fp, sizeof(fp), "%016" PRIx64, siphon_dlq_fingerprint(F->dlq));
        CHECK(h && h->len == 16 && !memcmp(h->value, fp, 16), "dead letter fingerprint header");
        CHECK(m->key && m->klen > 10, "a dead letter without a key");
        json_error_t je;
        json_t *j = json_loads(json, 0, &je);
        int k = -1;
        for (int w = 0; w < 4; w++) {
            char t[64], f[64];
            if (!strcmp(th_json_text(j, "table", t, sizeof(t)), want[w].table) &&
                !strcmp(th_json_text(j, "field", f, sizeof(f)), want[w].field))
                k = w;
        }
        CHECK(k >= 0, "an unexpected dead letter: %s", json);
        seen[k]++;
        CHECK(strstr(json, want[k].reason), "dead letter of %s.%s: reason lacks \"%s\": %s",
              want[k].table, want[k].field, want[k].reason, json);
        CHECK(strstr(json, want[k].raw), "dead letter of %s: raw row lacks %s: %s",
              want[k].table, want[k].raw, json);
        char pos[64], map[256], db[32], conn[32], comp[16];
        th_json_text(j, "pos", pos, sizeof(pos));
        th_json_text(j, "mapping", map, sizeof(map));
        uint64_t lsn;
        CHECK(th_lsn_parse(pos, &lsn) == 0 && lsn > 0, "dead letter pos \"%s\"", pos);
        CHECK(strstr(map, "mappings/") != NULL, "dead letter names mapping \"%s\"", map);
        CHECK(!strcmp(th_json_text(j, "db", db, sizeof(db)), "erp") &&
                  !strcmp(th_json_text(j, "connector", conn, sizeof(conn)), "erp"),
              "dead letter source: %s", json);
        CHECK(!strcmp(th_json_text(j, "row.hdcomp", comp, sizeof(comp)), "<missing>") ||
                  !strcmp(comp, "01"),
              "a dead letter of company %s (the training company is filtered out)", comp);
        CHECK(json_is_integer(th_json_path(j, "txid")) &&
                  json_integer_value(th_json_path(j, "txid")) > 0,
              "dead letter txid");
        json_decref(j);
        free(json);
    }
    for (int w = 0; w < 4; w++)
        CHECK(seen[w] == 1, "dead letters of %s.%s: %d, expected 1", want[w].table,
              want[w].field, seen[w]);
    th_msgs_free(&dl);
}

static void test_dead_letter_holds_the_position(void **state)
{
    (void)state;
    th_log("all brokers down; a transaction whose only row is a dead letter commits");
    uint64_t before = current_lsn();
    CHECK(wait_confirmed(before, 30000), "the slot did not catch up before the test");
    CHECK(th_kafka_broker_down(F->kafka, -1) == 0, "could not take the brokers down");
    erp_exec("INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdcrdt, hdcrtm) "
             "VALUES ('01', '0000199004', '00001007', 20250229, 1000, 'O', 20250228, 120000)");
    uint64_t after = current_lsn();
    th_sleep_ms(3000);
    uint64_t conf = 0;
    CHECK(th_pg_slot_confirmed(F->pg, "siphon_erp", &conf) == 0, "slot position");
    char a[32], c[32];
    th_lsn_format(after, a, sizeof(a));
    th_lsn_format(conf, c, sizeof(c));
    th_log("  slot confirmed %s; the transaction ends at %s", c, a);
    CHECK(conf < after, "the slot confirmed %s, past the undelivered dead letter's transaction "
                        "(ending %s)", c, a);
    CHECK(th_proc_running(F->siphon), "siphon stopped while the brokers were down");
    th_log("brokers back: the dead letter arrives and the position moves past it");
    CHECK(th_kafka_broker_up(F->kafka, -1) == 0, "could not bring the brokers back");
    CHECK(wait_confirmed(after, 60000), "the slot did not move past the dead letter's "
                                        "transaction within 60 s of the brokers' return");
    th_msgs_t dl = {0};
    read_topic("erp._dlq", &dl);
    int found = 0;
    for (int i = 0; i < dl.n; i++) {
        char *json = NULL, err[256];
        if (siphon_dlq_decode_json(&json, F->dlq, dl.v[i].value, dl.v[i].vlen, err,
                                   sizeof(err)) == 0 &&
            strstr(json, "\"hdordn\":\"0000199004\"") && strstr(json, "February 2025 has no day 29"))
            found++;
        free(json);
    }
    CHECK(found == 1, "the dead letter of order 0000199004 arrived %d times", found);
    th_msgs_free(&dl);

    th_log("SIGTERM: siphon drains and exits 0; its log counted the dead letters");
    th_proc_signal(F->siphon, SIGTERM);
    CHECK(th_proc_wait(F->siphon, 30000), "siphon did not stop within 30 s of SIGTERM");
    CHECK(th_proc_exit_code(F->siphon) == 0, "siphon exited with %d",
          th_proc_exit_code(F->siphon));
    CHECK(th_file_contains(F->log, " 5 dead letters"), "no progress line with 5 dead letters");
    CHECK(th_file_contains(F->log, "dead letter #1 to erp._dlq"), "no dead letter warning");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entities_match_the_database),
        cmocka_unit_test(test_dead_letter_holds_the_position),
    };
    return cmocka_run_group_tests_name("0020-erp-mappings", tests, setup, teardown);
}
