-- generate.sql - a deterministic data generator for the sample legacy ERP (erp.sql).
--
--   SELECT erp_generate(1);        -- scale 1: 3 companies, ~750 rows over the eight tables
--   SELECT erp_activity(1);        -- a day of business: status changes, shipments, payments,
--   SELECT erp_activity(2);        --   soft deletes, a hard delete; step by step
--   SELECT erp_bad_rows();         -- four rows no mapping can convert (dead letters)
--
-- Every value is computed from the row's number (and the scale or step): no random(), no
-- clock, so two runs write the same rows, byte for byte, in any PostgreSQL 10+ database. Text
-- is written as the ERP wrote it: in a SQL_ASCII database as Windows-1252 bytes (what the
-- mappings' source.charset converts), in a UTF8 database as the same characters in UTF-8; the
-- bytea column ICITEM.ICLDSC holds Windows-1252 bytes in both.
--
-- Companies: '01' and '02' are real, '99' is the training company (the mappings filter it out).
-- Rows per company at scale s: 12s customers, 10s products, 30s order documents (every 10th a
-- quote, filtered out by the sales_order mapping) with 1-4 lines each, a balance per product and
-- warehouse, a shipment and an invoice per shipped order, a return for every 9th order.
-- Plain SQL, no psql meta-commands; it expects the tables of erp.sql.

-- Text as the ERP stores it: Windows-1252 bytes in a SQL_ASCII database, UTF-8 otherwise.
CREATE OR REPLACE FUNCTION erp_text(s text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN current_setting('server_encoding') = 'SQL_ASCII'
                THEN convert_from(convert(convert_to(s, 'SQL_ASCII'), 'UTF8', 'WIN1252'),
                                  'SQL_ASCII')
                ELSE s END
$$;

-- Windows-1252 bytes of a text (for the bytea blob), in any database.
CREATE OR REPLACE FUNCTION erp_bytes(s text) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN current_setting('server_encoding') = 'SQL_ASCII'
                THEN convert(convert_to(s, 'SQL_ASCII'), 'UTF8', 'WIN1252')
                ELSE convert_to(s, 'WIN1252') END
$$;

-- JD Edwards Julian date: CYYDDD (C = centuries since 1900).
CREATE OR REPLACE FUNCTION erp_cyyddd(d date) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ((extract(year FROM d)::int - 1900) * 1000 + extract(doy FROM d)::int)
$$;

CREATE OR REPLACE FUNCTION erp_yyyymmdd(d date) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT to_char(d, 'YYYYMMDD')::int $$;

-- A time of day as HHMMSS, from a number of seconds.
CREATE OR REPLACE FUNCTION erp_hhmmss(secs integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT (secs / 3600 % 24) * 10000 + (secs / 60 % 60) * 100 + secs % 60
$$;

CREATE OR REPLACE FUNCTION erp_generate(scale integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    comps text[] := ARRAY['01', '02', '99'];
    names text[] := ARRAY['Müller Großhandel GmbH', 'Café Olé Supply', 'Smith & Sons Hardware',
                          'Señor Ñandú Imports', 'Béla’s Bakery Equipment', 'Acme “Quality” Tools',
                          'Øresund Trading ApS', 'Zürich Bürobedarf AG', 'Dupont – Frères SARL',
                          'Widget™ World Inc.', 'Eurotec €-Parts Ltd', 'O’Brien Plumbing'];
    cities text[] := ARRAY['Chicago', 'Dallas', 'Milwaukee', 'Peoria', 'St. Louis', 'Gary'];
    states text[] := ARRAY['IL', 'TX', 'WI', 'IL', 'MO', 'IN'];
    terms text[] := ARRAY['N30', 'N60', 'COD', 'PPD', 'N30', 'N15'];
    descs text[] := ARRAY['Hex bolt M8 × 40', 'Cable tie 200 mm', 'Drill bit Ø 6 mm',
                          'Safety gloves size L', 'Büroklammern 1000 Stk.', 'Pipe wrench 14"',
                          'Résistance 10 kOhm', 'Masking tape 48 mm', 'Grease gun – heavy duty',
                          'Hinge 90° steel'];
    uoms text[] := ARRAY['EA', 'BX', 'CS', 'KG'];
    cats text[] := ARRAY['HW', 'EL', '', 'TL'];
    istat text[] := ARRAY['A', 'A', 'I', 'D'];
    ostat text[] := ARRAY['O', 'O', 'H', 'S', 'C', 'X'];
    carriers text[] := ARRAY['UPSG', 'UPSR', 'FDXG', 'LTL1', 'WILL', 'XPDX'];
    notes text[] := ARRAY['Bitte „schnell“ liefern – danke', 'Deliver to dock #3', 'Call before delivery',
                          'Façade project – rush'];
    whs text[];
    ci integer; c text; n integer; l integer; k integer;
    ncust integer := 12 * scale; nprod integer := 10 * scale; nord integer := 30 * scale;
    odate date; qty bigint; price bigint; disc integer; amt bigint; total bigint; nl integer;
    st text; item text;
BEGIN
    FOR ci IN 1 .. 3 LOOP
        c := comps[ci];
        whs := CASE c WHEN '01' THEN ARRAY['DAL', 'CHI'] WHEN '02' THEN ARRAY['ATL'] ELSE ARRAY['TRN'] END;

        FOR n IN 1 .. ncust LOOP
            INSERT INTO ARCUST VALUES (
                c, lpad((1000 + n * 7)::text, 8, '0'),
                erp_text(names[(n - 1) % 12 + 1]),
                (100 + n * 3) || ' Main St', cities[(n - 1) % 6 + 1], states[(n - 1) % 6 + 1],
                lpad((60600 + n * 11)::text, 5, '0'), CASE WHEN n % 6 = 0 THEN 'DEU' ELSE 'USA' END,
                '(312) 555-' || lpad((n * 37 % 10000)::text, 4, '0'),
                CASE WHEN n % 8 = 0 THEN ' ' ELSE ' Buyer' || n || '@Example.COM' END,
                lpad((n * 7919 % 1000)::text, 3, '0') || '-' || lpad((n * 104729 % 1000000)::text, 6, '0'),
                n * 250000, terms[(n - 1) % 6 + 1], CASE WHEN n % 7 = 0 THEN 'N' ELSE 'Y' END,
                CASE WHEN n % 5 = 0 THEN 0 ELSE erp_yyyymmdd(DATE '2010-01-01' + n * 97) END,
                ' ', erp_cyyddd(DATE '2024-01-01' + n * 3), erp_hhmmss(28800 + n * 1234));
        END LOOP;

        FOR n IN 1 .. nprod LOOP
            INSERT INTO ICITEM VALUES (
                c, 'WID-' || lpad(n::text, 5, '0'), erp_text(descs[(n - 1) % 10 + 1]),
                CASE n % 4 WHEN 0 THEN NULL WHEN 1 THEN ''::bytea
                     ELSE erp_bytes('Long description of ' || descs[(n - 1) % 10 + 1] || ' – Größe ' || n) END,
                uoms[(n - 1) % 4 + 1], coalesce(nullif(cats[(n - 1) % 4 + 1], ''), ' '),
                n * 12345 + 9900, (n * 12345 + 9900) * 6 / 10,
                CASE WHEN n % 3 = 0 THEN ' ' ELSE lpad(to_char(n * 1.25, 'FM9990.000'), 10) END,
                istat[(n - 1) % 4 + 1], CASE WHEN n % 5 = 0 THEN 'F' ELSE 'T' END,
                CASE WHEN n % 6 = 0 THEN '00000000' ELSE to_char(DATE '2015-03-01' + n * 41, 'YYYYMMDD') END,
                'N');
            FOR k IN 1 .. array_length(whs, 1) LOOP
                INSERT INTO ICBAL VALUES (
                    c, whs[k], 'WID-' || lpad(n::text, 5, '0'),
                    ((n * 37 + k * 11) % 500) * 1000 + (n % 4) * 250,
                    ((n * 37 + k * 11) % 500) / 5 * 1000, (n % 3) * 24000, 50 + n,
                    CASE WHEN n % 5 = 0 THEN ' ' ELSE 'A-' || lpad((n * 3 + k)::text, 3, '0') END,
                    CASE WHEN n % 4 = 0 THEN 0 ELSE (DATE '2024-01-15' + n) - DATE '1967-12-31' END,
                    CASE WHEN n % 3 = 0 THEN DATE '1900-01-01' ELSE DATE '2024-02-01' + n END,
                    lpad(erp_hhmmss(25200 + n * 517)::text, 6, '0'));
            END LOOP;
        END LOOP;

        FOR n IN 1 .. nord LOOP
            odate := DATE '2024-01-02' + n;
            st := ostat[(n - 1) % 6 + 1];
            nl := 1 + n % 4;
            total := 0;
            FOR l IN 1 .. nl LOOP
                k := (n + l) % nprod + 1;
                item := 'WID-' || lpad(k::text, 5, '0');
                qty := (l * 3 + n % 7 + 1) * 1000 + CASE WHEN k % 4 = 0 THEN 250 ELSE 0 END;
                price := k * 12345 + 9900;
                disc := (n % 3) * 500;
                amt := round(qty::numeric / 1000 * price / 10000 * (10000 - disc) / 10000, 2) * 100;
                total := total + amt;
                INSERT INTO OELINE VALUES (
                    c, lpad((104700 + n)::text, 10, '0'), l, item, erp_text(descs[(k - 1) % 10 + 1]),
                    qty, CASE WHEN st IN ('S', 'C') THEN qty ELSE 0 END, uoms[(k - 1) % 4 + 1],
                    price, disc, amt, whs[(n + l) % array_length(whs, 1) + 1],
                    to_char(odate + 10, 'YYMMDD')::int,
                    CASE WHEN n % 5 = 0 THEN 0 ELSE erp_cyyddd(odate + 14) END,
                    CASE st WHEN 'S' THEN 'S' WHEN 'C' THEN 'C' WHEN 'X' THEN 'X'
                            ELSE CASE WHEN l = 2 THEN 'B' ELSE 'O' END END,
                    CASE WHEN k % 5 = 0 THEN '0' ELSE '1' END, ' ',
                    erp_yyyymmdd(odate), erp_hhmmss(30000 + n * 61 + l));
            END LOOP;
            INSERT INTO OEHDR VALUES (
                c, lpad((104700 + n)::text, 10, '0'), CASE WHEN n % 10 = 0 THEN 'QT' ELSE 'SO' END,
                lpad((1000 + ((n - 1) % ncust + 1) * 7)::text, 8, '0'),
                erp_yyyymmdd(odate), CASE WHEN n % 4 = 0 THEN 0 ELSE erp_yyyymmdd(odate + 7) END,
                total, round(total * 0.0825), 'USD', st,
                CASE WHEN n % 3 = 0 THEN ' ' ELSE 'PO-' || (4400 + n) END,
                (ARRAY['JDK', 'MRM', 'ALB'])[(n - 1) % 3 + 1],
                CASE WHEN n % 5 = 0 THEN erp_text(notes[(n / 5 - 1) % 4 + 1]) WHEN n % 5 = 1 THEN '' END,
                erp_yyyymmdd(odate), erp_hhmmss(28800 + n * 1111),
                CASE WHEN n % 2 = 0 THEN 0 ELSE erp_yyyymmdd(odate + 1) END,
                CASE WHEN n % 2 = 0 THEN 0 ELSE erp_hhmmss(36000 + n * 777) END);

            IF st IN ('S', 'C') THEN
                INSERT INTO SHHDR VALUES (
                    c, lpad((500000 + n)::text, 10, '0'), lpad((104700 + n)::text, 10, '0'),
                    lpad((1000 + ((n - 1) % ncust + 1) * 7)::text, 8, '0'), whs[n % array_length(whs, 1) + 1],
                    to_char(odate + 3, 'YYYYMMDD'), carriers[(n - 1) % 6 + 1],
                    CASE WHEN carriers[(n - 1) % 6 + 1] = 'WILL' THEN ' ' ELSE '1Z' || lpad((n * 7777)::text, 10, '0') END,
                    lpad(to_char(n * 2.5, 'FM0000.00'), 9), n * 995,
                    CASE WHEN st = 'C' THEN 'D' ELSE 'S' END,
                    CASE WHEN st = 'C' THEN to_char(odate + 5, 'MM/DD/YY') ELSE ' ' END);
                INSERT INTO ARINV VALUES (
                    c, lpad((700000 + n)::text, 10, '0'), 'IN', lpad((104700 + n)::text, 10, '0'),
                    lpad((1000 + ((n - 1) % ncust + 1) * 7)::text, 8, '0'),
                    erp_cyyddd(odate + 3), erp_yyyymmdd(odate + 33), total, round(total * 0.0825), 'USD',
                    CASE WHEN st = 'C' THEN 'Y' ELSE 'N' END,
                    CASE WHEN st = 'C' THEN odate + 30 ELSE DATE '1900-01-01' END);
            END IF;

            IF n % 9 = 0 THEN
                INSERT INTO RMHDR VALUES (
                    c, lpad((900000 + n)::text, 10, '0'), lpad((104700 + n)::text, 10, '0'),
                    lpad((1000 + ((n - 1) % ncust + 1) * 7)::text, 8, '0'),
                    'WID-' || lpad(((n + 1) % nprod + 1)::text, 5, '0'), 1000 + (n % 2) * 500,
                    lpad(((n / 9 - 1) % 4 + 1)::text, 2, '0'),
                    CASE WHEN n % 2 = 0 THEN 0 ELSE erp_yyyymmdd(odate + 20) END,
                    CASE WHEN n % 2 = 0 THEN 0 ELSE (n * 1234) END,
                    CASE WHEN n % 2 = 0 THEN 'O' ELSE 'C' END,
                    erp_text(CASE WHEN n % 4 = 1 THEN 'Karton beschädigt – Ware zurück' ELSE 'Customer return' END));
                IF n % 2 = 1 THEN
                    INSERT INTO ARINV VALUES (
                        c, lpad((800000 + n)::text, 10, '0'), 'CM', ' ',
                        lpad((1000 + ((n - 1) % ncust + 1) * 7)::text, 8, '0'),
                        erp_cyyddd(odate + 21), 0, -(n * 1234), 0, 'USD', 'N', DATE '1900-01-01');
                END IF;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- One step of business activity on the generated data (steps 1, 2, ... each touch other rows):
-- orders move on (open -> shipped, held -> open), lines ship, a line is soft-deleted, a line is
-- hard-deleted, a customer is soft-deleted and another undeleted, a product is discontinued and
-- one soft-deleted, stock moves, an invoice is paid, a return is received.
CREATE OR REPLACE FUNCTION erp_activity(step integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d date := DATE '2024-03-01' + step;
    t integer := erp_hhmmss(32400 + step * 301);
BEGIN
    UPDATE OEHDR SET HDSTAT = 'S', HDCHGD = erp_yyyymmdd(d), HDCHGT = t
     WHERE HDSTAT = 'O' AND HDORDN = lpad((104700 + step * 6 + 1)::text, 10, '0');
    UPDATE OEHDR SET HDSTAT = 'O', HDCHGD = erp_yyyymmdd(d), HDCHGT = t
     WHERE HDSTAT = 'H' AND HDORDN = lpad((104700 + step * 6 + 3)::text, 10, '0');
    UPDATE OELINE SET OLSTAT = 'S', OLQTYS = OLQTYO, OLCHGD = erp_yyyymmdd(d), OLCHGT = t
     WHERE OLORDN = lpad((104700 + step * 6 + 1)::text, 10, '0');
    UPDATE OELINE SET OLDLTF = 'D', OLCHGD = erp_yyyymmdd(d), OLCHGT = t
     WHERE OLORDN = lpad((104700 + step * 4 + 2)::text, 10, '0') AND OLLINE = 1;
    DELETE FROM OELINE WHERE OLCOMP = '02' AND OLORDN = lpad((104700 + step * 4 + 3)::text, 10, '0')
                         AND OLLINE = 2;
    UPDATE ARCUST SET CUDLTF = 'D', CUCHGD = erp_cyyddd(d), CUCHGT = t
     WHERE CUCOMP = '01' AND CUCUST = lpad((1000 + (step * 2) * 7)::text, 8, '0');
    UPDATE ARCUST SET CUCRLM = CUCRLM + 100000, CUCHGD = erp_cyyddd(d), CUCHGT = t
     WHERE CUCOMP = '02' AND CUCUST = lpad((1000 + (step * 2 + 1) * 7)::text, 8, '0');
    UPDATE ICITEM SET ICSTAT = 'D' WHERE ICITEM = 'WID-' || lpad((step + 1)::text, 5, '0');
    UPDATE ICITEM SET ICDLTF = 'Y' WHERE ICCOMP = '02' AND ICITEM = 'WID-' || lpad((step + 2)::text, 5, '0');
    UPDATE ICBAL SET IBQOH = IBQOH - 1000, IBQAL = IBQAL + 1000, IBCHGD = d,
                     IBCHGT = lpad(t::text, 6, '0')
     WHERE IBITEM = 'WID-' || lpad((step + 3)::text, 5, '0');
    UPDATE ARINV SET AIPDFL = 'Y', AIPDDT = d WHERE AIPDFL = 'N' AND AIDOCT = 'IN'
       AND AIINVN = lpad((700000 + step * 6 + 4)::text, 10, '0');
    UPDATE RMHDR SET RMSTAT = 'R', RMRCDT = erp_yyyymmdd(d)
     WHERE RMSTAT = 'O' AND RMRMAN = lpad((900000 + step * 18)::text, 10, '0');
END
$$;

-- Rows that a mapping cannot convert: each becomes a dead letter on <topic_prefix>._dlq and the
-- stream goes on. (The same bad values in company '99' are filtered out before mapping.)
CREATE OR REPLACE FUNCTION erp_bad_rows() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- February 31st: order_date
    INSERT INTO OEHDR (HDCOMP, HDORDN, HDCUST, HDODAT, HDAMT, HDSTAT, HDCRDT, HDCRTM)
    VALUES ('01', '0000199001', '00001007', 20260231, 1000, 'O', 20260228, 120000);
    -- an unknown status code: status
    INSERT INTO OEHDR (HDCOMP, HDORDN, HDCUST, HDODAT, HDAMT, HDSTAT, HDCRDT, HDCRTM)
    VALUES ('01', '0000199002', '00001007', 20260301, 1000, 'Z', 20260301, 120000);
    -- an amount of 15 digits before the point: line_amount, decimal(13,2)
    INSERT INTO OELINE (OLCOMP, OLORDN, OLLINE, OLITEM, OLQTYO, OLPRCE, OLAMT, OLWHSE)
    VALUES ('01', '0000104701', 9, 'WID-00001', 1000, 10000, 99999999999999999, 'DAL');
    -- byte 0x81 is not a character of Windows-1252: long_description
    INSERT INTO ICITEM (ICCOMP, ICITEM, ICDESC, ICLDSC) VALUES ('01', 'BAD-00001', 'Bad blob',
        decode('4f6b2081', 'hex'));
    -- the training company: filtered out, no dead letter
    INSERT INTO OEHDR (HDCOMP, HDORDN, HDCUST, HDODAT, HDAMT, HDSTAT, HDCRDT, HDCRTM)
    VALUES ('99', '0000199003', '00001007', 20260231, 1000, 'Z', 20260231, 120000);
END
$$;
