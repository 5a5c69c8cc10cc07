-- mariadb/generate.sql - the deterministic data generator of ../generate.sql for MariaDB
-- (10.5+): the same procedures, writing the same rows, value for value, into the tables of
-- mariadb/erp.sql.
--
--   CALL erp_generate(1);        -- scale 1: 3 companies, ~750 rows over the eight tables
--   CALL erp_activity(1);        -- a day of business: status changes, shipments, payments,
--   CALL erp_activity(2);        --   soft deletes, a hard delete; step by step
--   CALL erp_bad_rows();         -- four rows no mapping can convert (dead letters)
--
-- Every value is computed from the row's number (and the scale or step): no RAND(), no clock.
-- This file is a line-by-line port of ../generate.sql; where the dialects differ the port
-- keeps the PostgreSQL result: integer division is DIV (PostgreSQL's / on integers), arrays
-- are ELT(), to_char() formats are DATE_FORMAT() or a cast to DECIMAL, and the line amount
-- is computed in integers with the rounding of PostgreSQL's round(numeric) (half away from
-- zero) so that no intermediate decimal precision can differ. Text is written as literals in
-- the client's character set (utf8mb4) and stored in latin1 (Windows-1252) columns by the
-- server; the BLOB gets the Windows-1252 bytes. Run it with the `mariadb` client (it uses
-- DELIMITER), after mariadb/erp.sql.

DELIMITER //

-- JD Edwards Julian date: CYYDDD (C = centuries since 1900).
CREATE OR REPLACE FUNCTION erp_cyyddd(d DATE) RETURNS INT DETERMINISTIC
    RETURN (YEAR(d) - 1900) * 1000 + DAYOFYEAR(d) //

CREATE OR REPLACE FUNCTION erp_yyyymmdd(d DATE) RETURNS INT DETERMINISTIC
    RETURN YEAR(d) * 10000 + MONTH(d) * 100 + DAYOFMONTH(d) //

-- A time of day as HHMMSS, from a number of seconds.
CREATE OR REPLACE FUNCTION erp_hhmmss(secs INT) RETURNS INT DETERMINISTIC
    RETURN (secs DIV 3600 % 24) * 10000 + (secs DIV 60 % 60) * 100 + secs % 60 //

-- The warehouses of a company: '01' has DAL and CHI, '02' ATL, '99' TRN.
CREATE OR REPLACE FUNCTION erp_whs_count(c CHAR(2)) RETURNS INT DETERMINISTIC
    RETURN IF(c = '01', 2, 1) //

CREATE OR REPLACE FUNCTION erp_wh(c CHAR(2), k INT) RETURNS CHAR(3) DETERMINISTIC
    RETURN CASE c WHEN '01' THEN ELT(k, 'DAL', 'CHI') WHEN '02' THEN 'ATL' ELSE 'TRN' END //

CREATE OR REPLACE FUNCTION erp_desc(k INT) RETURNS VARCHAR(40) CHARACTER SET utf8mb4 DETERMINISTIC
    RETURN ELT(k, 'Hex bolt M8 × 40', 'Cable tie 200 mm', 'Drill bit Ø 6 mm',
               'Safety gloves size L', 'Büroklammern 1000 Stk.', 'Pipe wrench 14"',
               'Résistance 10 kOhm', 'Masking tape 48 mm', 'Grease gun – heavy duty',
               'Hinge 90° steel') //

CREATE OR REPLACE FUNCTION erp_carrier(k INT) RETURNS CHAR(4) DETERMINISTIC
    RETURN ELT(k, 'UPSG', 'UPSR', 'FDXG', 'LTL1', 'WILL', 'XPDX') //

CREATE OR REPLACE PROCEDURE erp_generate(scale INT)
BEGIN
    DECLARE ci, n, l, k, nl, disc, nwh, ncust, nprod, nord INT;
    DECLARE c CHAR(2);
    DECLARE odate DATE;
    DECLARE qty, price, amt, total BIGINT;
    DECLARE st CHAR(1);
    DECLARE item VARCHAR(15);
    DECLARE cust CHAR(8);
    SET ncust = 12 * scale, nprod = 10 * scale, nord = 30 * scale;
    SET ci = 1;
    WHILE ci <= 3 DO
        SET c = ELT(ci, '01', '02', '99');
        SET nwh = erp_whs_count(c);

        SET n = 1;
        WHILE n <= ncust DO
            INSERT INTO arcust VALUES (
                c, LPAD(1000 + n * 7, 8, '0'),
                ELT((n - 1) % 12 + 1, 'Müller Großhandel GmbH', 'Café Olé Supply',
                    'Smith & Sons Hardware', 'Señor Ñandú Imports', 'Béla’s Bakery Equipment',
                    'Acme “Quality” Tools', 'Øresund Trading ApS', 'Zürich Bürobedarf AG',
                    'Dupont – Frères SARL', 'Widget™ World Inc.', 'Eurotec €-Parts Ltd',
                    'O’Brien Plumbing'),
                CONCAT(100 + n * 3, ' Main St'),
                ELT((n - 1) % 6 + 1, 'Chicago', 'Dallas', 'Milwaukee', 'Peoria', 'St. Louis', 'Gary'),
                ELT((n - 1) % 6 + 1, 'IL', 'TX', 'WI', 'IL', 'MO', 'IN'),
                LPAD(60600 + n * 11, 5, '0'), IF(n % 6 = 0, 'DEU', 'USA'),
                CONCAT('(312) 555-', LPAD(n * 37 % 10000, 4, '0')),
                IF(n % 8 = 0, ' ', CONCAT(' Buyer', n, '@Example.COM')),
                CONCAT(LPAD(n * 7919 % 1000, 3, '0'), '-', LPAD(n * 104729 % 1000000, 6, '0')),
                n * 250000, ELT((n - 1) % 6 + 1, 'N30', 'N60', 'COD', 'PPD', 'N30', 'N15'),
                IF(n % 7 = 0, 'N', 'Y'),
                IF(n % 5 = 0, 0, erp_yyyymmdd(DATE '2010-01-01' + INTERVAL n * 97 DAY)),
                ' ', erp_cyyddd(DATE '2024-01-01' + INTERVAL n * 3 DAY), erp_hhmmss(28800 + n * 1234));
            SET n = n + 1;
        END WHILE;

        SET n = 1;
        WHILE n <= nprod DO
            INSERT INTO icitem VALUES (
                c, CONCAT('WID-', LPAD(n, 5, '0')), erp_desc((n - 1) % 10 + 1),
                CASE n % 4 WHEN 0 THEN NULL WHEN 1 THEN ''
                     ELSE CAST(CONVERT(CONCAT('Long description of ', erp_desc((n - 1) % 10 + 1),
                                              ' – Größe ', n) USING latin1) AS BINARY) END,
                ELT((n - 1) % 4 + 1, 'EA', 'BX', 'CS', 'KG'),
                ELT((n - 1) % 4 + 1, 'HW', 'EL', ' ', 'TL'),
                n * 12345 + 9900, (n * 12345 + 9900) * 6 DIV 10,
                IF(n % 3 = 0, ' ', LPAD(CAST(n * 1.25 AS DECIMAL(10, 3)), 10, ' ')),
                ELT((n - 1) % 4 + 1, 'A', 'A', 'I', 'D'), IF(n % 5 = 0, 'F', 'T'),
                IF(n % 6 = 0, '00000000', DATE_FORMAT(DATE '2015-03-01' + INTERVAL n * 41 DAY, '%Y%m%d')),
                'N');
            SET k = 1;
            WHILE k <= nwh DO
                INSERT INTO icbal VALUES (
                    c, erp_wh(c, k), CONCAT('WID-', LPAD(n, 5, '0')),
                    ((n * 37 + k * 11) % 500) * 1000 + (n % 4) * 250,
                    ((n * 37 + k * 11) % 500) DIV 5 * 1000, (n % 3) * 24000, 50 + n,
                    IF(n % 5 = 0, ' ', CONCAT('A-', LPAD(n * 3 + k, 3, '0'))),
                    IF(n % 4 = 0, 0, DATEDIFF(DATE '2024-01-15' + INTERVAL n DAY, DATE '1967-12-31')),
                    IF(n % 3 = 0, DATE '1900-01-01', DATE '2024-02-01' + INTERVAL n DAY),
                    LPAD(erp_hhmmss(25200 + n * 517), 6, '0'));
                SET k = k + 1;
            END WHILE;
            SET n = n + 1;
        END WHILE;

        SET n = 1;
        WHILE n <= nord DO
            SET odate = DATE '2024-01-02' + INTERVAL n DAY;
            SET st = ELT((n - 1) % 6 + 1, 'O', 'O', 'H', 'S', 'C', 'X');
            SET nl = 1 + n % 4;
            SET total = 0;
            SET cust = LPAD(1000 + ((n - 1) % ncust + 1) * 7, 8, '0');
            SET l = 1;
            WHILE l <= nl DO
                SET k = (n + l) % nprod + 1;
                SET item = CONCAT('WID-', LPAD(k, 5, '0'));
                SET qty = (l * 3 + n % 7 + 1) * 1000 + IF(k % 4 = 0, 250, 0);
                SET price = k * 12345 + 9900;
                SET disc = (n % 3) * 500;
                -- round(qty / 1000 * price / 10000 * (10000 - disc) / 10000, 2) * 100, in cents
                SET amt = (qty * price * (10000 - disc) + 500000000) DIV 1000000000;
                SET total = total + amt;
                INSERT INTO oeline VALUES (
                    c, LPAD(104700 + n, 10, '0'), l, item, erp_desc((k - 1) % 10 + 1),
                    qty, IF(st IN ('S', 'C'), qty, 0), ELT((k - 1) % 4 + 1, 'EA', 'BX', 'CS', 'KG'),
                    price, disc, amt, erp_wh(c, (n + l) % nwh + 1),
                    CAST(DATE_FORMAT(odate + INTERVAL 10 DAY, '%y%m%d') AS UNSIGNED),
                    IF(n % 5 = 0, 0, erp_cyyddd(odate + INTERVAL 14 DAY)),
                    CASE st WHEN 'S' THEN 'S' WHEN 'C' THEN 'C' WHEN 'X' THEN 'X'
                            ELSE IF(l = 2, 'B', 'O') END,
                    IF(k % 5 = 0, '0', '1'), ' ',
                    erp_yyyymmdd(odate), erp_hhmmss(30000 + n * 61 + l));
                SET l = l + 1;
            END WHILE;
            INSERT INTO oehdr VALUES (
                c, LPAD(104700 + n, 10, '0'), IF(n % 10 = 0, 'QT', 'SO'), cust,
                erp_yyyymmdd(odate), IF(n % 4 = 0, 0, erp_yyyymmdd(odate + INTERVAL 7 DAY)),
                total, ROUND(total * 0.0825), 'USD', st,
                IF(n % 3 = 0, ' ', CONCAT('PO-', 4400 + n)),
                ELT((n - 1) % 3 + 1, 'JDK', 'MRM', 'ALB'),
                CASE WHEN n % 5 = 0 THEN ELT((n DIV 5 - 1) % 4 + 1, 'Bitte „schnell“ liefern – danke',
                                             'Deliver to dock #3', 'Call before delivery',
                                             'Façade project – rush')
                     WHEN n % 5 = 1 THEN '' END,
                erp_yyyymmdd(odate), erp_hhmmss(28800 + n * 1111),
                IF(n % 2 = 0, 0, erp_yyyymmdd(odate + INTERVAL 1 DAY)),
                IF(n % 2 = 0, 0, erp_hhmmss(36000 + n * 777)));

            IF st IN ('S', 'C') THEN
                INSERT INTO shhdr VALUES (
                    c, LPAD(500000 + n, 10, '0'), LPAD(104700 + n, 10, '0'), cust,
                    erp_wh(c, n % nwh + 1),
                    DATE_FORMAT(odate + INTERVAL 3 DAY, '%Y%m%d'), erp_carrier((n - 1) % 6 + 1),
                    IF(erp_carrier((n - 1) % 6 + 1) = 'WILL', ' ', CONCAT('1Z', LPAD(n * 7777, 10, '0'))),
                    LPAD(LPAD(CAST(n * 2.5 AS DECIMAL(10, 2)), 7, '0'), 9, ' '), n * 995,
                    IF(st = 'C', 'D', 'S'),
                    IF(st = 'C', DATE_FORMAT(odate + INTERVAL 5 DAY, '%m/%d/%y'), ' '));
                INSERT INTO arinv VALUES (
                    c, LPAD(700000 + n, 10, '0'), 'IN', LPAD(104700 + n, 10, '0'), cust,
                    erp_cyyddd(odate + INTERVAL 3 DAY), erp_yyyymmdd(odate + INTERVAL 33 DAY),
                    total, ROUND(total * 0.0825), 'USD',
                    IF(st = 'C', 'Y', 'N'),
                    IF(st = 'C', odate + INTERVAL 30 DAY, DATE '1900-01-01'));
            END IF;

            IF n % 9 = 0 THEN
                INSERT INTO rmhdr VALUES (
                    c, LPAD(900000 + n, 10, '0'), LPAD(104700 + n, 10, '0'), cust,
                    CONCAT('WID-', LPAD((n + 1) % nprod + 1, 5, '0')), 1000 + (n % 2) * 500,
                    LPAD((n DIV 9 - 1) % 4 + 1, 2, '0'),
                    IF(n % 2 = 0, 0, erp_yyyymmdd(odate + INTERVAL 20 DAY)),
                    IF(n % 2 = 0, 0, n * 1234),
                    IF(n % 2 = 0, 'O', 'C'),
                    IF(n % 4 = 1, 'Karton beschädigt – Ware zurück', 'Customer return'));
                IF n % 2 = 1 THEN
                    INSERT INTO arinv VALUES (
                        c, LPAD(800000 + n, 10, '0'), 'CM', ' ', cust,
                        erp_cyyddd(odate + INTERVAL 21 DAY), 0, -(n * 1234), 0, 'USD', 'N',
                        DATE '1900-01-01');
                END IF;
            END IF;
            SET n = n + 1;
        END WHILE;
        SET ci = ci + 1;
    END WHILE;
END //

-- One step of business activity on the generated data (see ../generate.sql).
CREATE OR REPLACE PROCEDURE erp_activity(step INT)
BEGIN
    DECLARE d DATE DEFAULT DATE '2024-03-01' + INTERVAL step DAY;
    DECLARE t INT DEFAULT erp_hhmmss(32400 + step * 301);
    UPDATE oehdr SET hdstat = 'S', hdchgd = erp_yyyymmdd(d), hdchgt = t
     WHERE hdstat = 'O' AND hdordn = LPAD(104700 + step * 6 + 1, 10, '0');
    UPDATE oehdr SET hdstat = 'O', hdchgd = erp_yyyymmdd(d), hdchgt = t
     WHERE hdstat = 'H' AND hdordn = LPAD(104700 + step * 6 + 3, 10, '0');
    UPDATE oeline SET olstat = 'S', olqtys = olqtyo, olchgd = erp_yyyymmdd(d), olchgt = t
     WHERE olordn = LPAD(104700 + step * 6 + 1, 10, '0');
    UPDATE oeline SET oldltf = 'D', olchgd = erp_yyyymmdd(d), olchgt = t
     WHERE olordn = LPAD(104700 + step * 4 + 2, 10, '0') AND olline = 1;
    DELETE FROM oeline WHERE olcomp = '02' AND olordn = LPAD(104700 + step * 4 + 3, 10, '0')
                         AND olline = 2;
    UPDATE arcust SET cudltf = 'D', cuchgd = erp_cyyddd(d), cuchgt = t
     WHERE cucomp = '01' AND cucust = LPAD(1000 + (step * 2) * 7, 8, '0');
    UPDATE arcust SET cucrlm = cucrlm + 100000, cuchgd = erp_cyyddd(d), cuchgt = t
     WHERE cucomp = '02' AND cucust = LPAD(1000 + (step * 2 + 1) * 7, 8, '0');
    UPDATE icitem SET icstat = 'D' WHERE icitem = CONCAT('WID-', LPAD(step + 1, 5, '0'));
    UPDATE icitem SET icdltf = 'Y' WHERE iccomp = '02' AND icitem = CONCAT('WID-', LPAD(step + 2, 5, '0'));
    UPDATE icbal SET ibqoh = ibqoh - 1000, ibqal = ibqal + 1000, ibchgd = d,
                     ibchgt = LPAD(t, 6, '0')
     WHERE ibitem = CONCAT('WID-', LPAD(step + 3, 5, '0'));
    UPDATE arinv SET aipdfl = 'Y', aipddt = d WHERE aipdfl = 'N' AND aidoct = 'IN'
       AND aiinvn = LPAD(700000 + step * 6 + 4, 10, '0');
    UPDATE rmhdr SET rmstat = 'R', rmrcdt = erp_yyyymmdd(d)
     WHERE rmstat = 'O' AND rmrman = LPAD(900000 + step * 18, 10, '0');
END //

-- Rows that a mapping cannot convert (see ../generate.sql).
CREATE OR REPLACE PROCEDURE erp_bad_rows()
BEGIN
    -- February 31st: order_date
    INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdcrdt, hdcrtm)
    VALUES ('01', '0000199001', '00001007', 20260231, 1000, 'O', 20260228, 120000);
    -- an unknown status code: status
    INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdcrdt, hdcrtm)
    VALUES ('01', '0000199002', '00001007', 20260301, 1000, 'Z', 20260301, 120000);
    -- an amount of 15 digits before the point: line_amount, decimal(13,2)
    INSERT INTO oeline (olcomp, olordn, olline, olitem, olqtyo, olprce, olamt, olwhse)
    VALUES ('01', '0000104701', 9, 'WID-00001', 1000, 10000, 99999999999999999, 'DAL');
    -- byte 0x81 is not a character of Windows-1252: long_description
    INSERT INTO icitem (iccomp, icitem, icdesc, icldsc) VALUES ('01', 'BAD-00001', 'Bad blob',
        X'4f6b2081');
    -- the training company: filtered out, no dead letter
    INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdcrdt, hdcrtm)
    VALUES ('99', '0000199003', '00001007', 20260231, 1000, 'Z', 20260231, 120000);
END //

DELIMITER ;
