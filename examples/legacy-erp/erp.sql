-- erp.sql - the sample legacy ERP: a distributor's order-to-cash tables in the style of the
-- 1990s midrange systems they came from (an AS/400 or a JD Edwards / Prophet 21 era schema).
--
-- What makes it "legacy", on purpose, because it is what Siphon's mappings must undo:
--   * cryptic upper-case names with a two-letter table prefix (OEHDR.HDORDN);
--   * codes in fixed-width CHAR columns, blank-padded or zero-padded ('00004711');
--   * dates as YYYYMMDD integers (HDODAT), as CHAR(8) text (ICCRDT, SHSHDT), as JD Edwards
--     Julian CYYDDD integers (CUCHGD, AIINDT: 124031 is 2024-01-31), as two-digit-year YYMMDD
--     integers (OLRQDT), as days since 1967-12-31 (IBLCNT, the Pick/UniVerse epoch), as
--     MM/DD/YY text (SHDLDT), and as DATE columns where '1900-01-01' means "no date"
--     (IBCHGD, AIPDDT); 0, '00000000' and blanks also mean "no date";
--   * times as HHMMSS integers or CHAR(6), next to the date, in the company's local time
--     (America/Chicago);
--   * money and quantities as integers with implied decimals (HDAMT 125050 is 1250.50;
--     OLQTYO 2500 is 2.500; OLPRCE 123456 is 12.3456), and numbers kept as text ('  12.500');
--   * one-letter status codes, 'Y'/'N', 'T'/'F' and '1'/'0' flags, soft deletes by a flag
--     (CUDLTF = 'D', ICDLTF = 'Y', OLDLTF = 'D') instead of DELETE;
--   * several companies in one table (company '99' is the training company nobody streams);
--   * text in Windows-1252: in a SQL_ASCII database every CHAR column holds cp1252 bytes (the
--     generator writes them so when the database is SQL_ASCII), and ICITEM.ICLDSC is a bytea
--     blob of cp1252 bytes in any database.
--
-- Every table has a primary key (the replica identity). The canonical entities these feed are
-- schemas/*.v1.avsc, through mappings/*.yaml; examples/legacy-erp/README.md has the map.
-- Plain SQL, no psql meta-commands: docker-compose's initdb, the demo and the integration
-- tests run it as it is. generate.sql holds the deterministic data generator.

CREATE TABLE IF NOT EXISTS ARCUST (          -- customer master
    CUCOMP CHAR(2)  NOT NULL,                -- company
    CUCUST CHAR(8)  NOT NULL,                -- customer number, zero-padded
    CUNAME CHAR(30) NOT NULL,                -- name (Windows-1252)
    CUADR1 CHAR(30) NOT NULL DEFAULT ' ',    -- street address
    CUCITY CHAR(20) NOT NULL DEFAULT ' ',
    CUSTAT CHAR(2)  NOT NULL DEFAULT ' ',    -- state / region
    CUZIPC CHAR(10) NOT NULL DEFAULT ' ',    -- postal code
    CUCTRY CHAR(3)  NOT NULL DEFAULT 'USA',  -- ISO 3166 alpha-3
    CUPHON CHAR(15) NOT NULL DEFAULT ' ',    -- phone (PII)
    CUEMAL CHAR(40) NOT NULL DEFAULT ' ',    -- e-mail (PII)
    CUTAXI CHAR(11) NOT NULL DEFAULT ' ',    -- tax id (PII)
    CUCRLM BIGINT   NOT NULL DEFAULT 0,      -- credit limit, 2 implied decimals
    CUTERM CHAR(3)  NOT NULL DEFAULT 'N30',  -- payment terms: N30 N60 COD PPD
    CUACTV CHAR(1)  NOT NULL DEFAULT 'Y',    -- active: Y / N
    CUOPDT INTEGER  NOT NULL DEFAULT 0,      -- account opened, YYYYMMDD, 0 = unknown
    CUDLTF CHAR(1)  NOT NULL DEFAULT ' ',    -- 'D' = deleted (soft delete)
    CUCHGD INTEGER  NOT NULL DEFAULT 0,      -- last change date, JDE Julian CYYDDD
    CUCHGT INTEGER  NOT NULL DEFAULT 0,      -- last change time, HHMMSS (local)
    CONSTRAINT ARCUST_PK PRIMARY KEY (CUCOMP, CUCUST)
);

CREATE TABLE IF NOT EXISTS ICITEM (          -- item (product) master
    ICCOMP CHAR(2)  NOT NULL,
    ICITEM CHAR(15) NOT NULL,                -- item number, blank-padded
    ICDESC CHAR(30) NOT NULL,                -- short description (Windows-1252)
    ICLDSC BYTEA,                            -- long description: Windows-1252 bytes
    ICUOM  CHAR(3)  NOT NULL DEFAULT 'EA',   -- unit of measure
    ICCATG CHAR(4)  NOT NULL DEFAULT ' ',    -- category code, blank = none
    ICPRCE BIGINT   NOT NULL DEFAULT 0,      -- list price, 4 implied decimals
    ICCOST BIGINT   NOT NULL DEFAULT 0,      -- standard cost, 4 implied decimals
    ICWGHT CHAR(10) NOT NULL DEFAULT ' ',    -- weight in kg as text ('    12.500'), blank = unknown
    ICSTAT CHAR(1)  NOT NULL DEFAULT 'A',    -- A active, I inactive, D discontinued
    ICTAXF CHAR(1)  NOT NULL DEFAULT 'T',    -- taxable: T / F
    ICCRDT CHAR(8)  NOT NULL DEFAULT '00000000', -- created, YYYYMMDD text, zeros = unknown
    ICDLTF CHAR(1)  NOT NULL DEFAULT 'N',    -- 'Y' = deleted (soft delete)
    CONSTRAINT ICITEM_PK PRIMARY KEY (ICCOMP, ICITEM)
);

CREATE TABLE IF NOT EXISTS OEHDR (           -- sales document headers
    HDCOMP CHAR(2)  NOT NULL,
    HDORDN CHAR(10) NOT NULL,                -- order number, zero-padded
    HDDOCT CHAR(2)  NOT NULL DEFAULT 'SO',   -- document type: SO order, QT quote
    HDCUST CHAR(8)  NOT NULL,                -- customer number
    HDODAT INTEGER  NOT NULL,                -- order date, YYYYMMDD
    HDRQDT INTEGER  NOT NULL DEFAULT 0,      -- requested ship date, YYYYMMDD, 0 = none
    HDAMT  BIGINT   NOT NULL DEFAULT 0,      -- order total, 2 implied decimals
    HDTAXA BIGINT   NOT NULL DEFAULT 0,      -- tax, 2 implied decimals
    HDCURR CHAR(3)  NOT NULL DEFAULT 'USD',
    HDSTAT CHAR(1)  NOT NULL DEFAULT 'O',    -- O open, H held, S shipped, C closed, X cancelled
    HDPONO CHAR(20) NOT NULL DEFAULT ' ',    -- customer's PO number, blank = none
    HDSLSP CHAR(3)  NOT NULL DEFAULT ' ',    -- salesperson
    HDNOTE VARCHAR(60),                      -- remark (Windows-1252)
    HDCRDT INTEGER  NOT NULL,                -- entered, YYYYMMDD (local)
    HDCRTM INTEGER  NOT NULL,                -- entered, HHMMSS (local)
    HDCHGD INTEGER  NOT NULL DEFAULT 0,      -- last change, YYYYMMDD (local), 0 = never
    HDCHGT INTEGER  NOT NULL DEFAULT 0,      -- last change, HHMMSS (local)
    CONSTRAINT OEHDR_PK PRIMARY KEY (HDCOMP, HDORDN)
);

CREATE TABLE IF NOT EXISTS OELINE (          -- sales order lines
    OLCOMP CHAR(2)  NOT NULL,
    OLORDN CHAR(10) NOT NULL,                -- order number (the header's key)
    OLLINE NUMERIC(3,0) NOT NULL,            -- line number
    OLITEM CHAR(15) NOT NULL,
    OLDESC CHAR(30) NOT NULL DEFAULT ' ',    -- description (Windows-1252)
    OLQTYO BIGINT   NOT NULL,                -- quantity ordered, 3 implied decimals
    OLQTYS BIGINT   NOT NULL DEFAULT 0,      -- quantity shipped, 3 implied decimals
    OLUOM  CHAR(3)  NOT NULL DEFAULT 'EA',
    OLPRCE BIGINT   NOT NULL,                -- unit price, 4 implied decimals
    OLDISC INTEGER  NOT NULL DEFAULT 0,      -- discount percent, 2 implied decimals
    OLAMT  BIGINT   NOT NULL,                -- extended amount, 2 implied decimals
    OLWHSE CHAR(3)  NOT NULL,                -- shipping warehouse
    OLRQDT INTEGER  NOT NULL DEFAULT 0,      -- requested date, YYMMDD, 0 = none
    OLPRDT INTEGER  NOT NULL DEFAULT 0,      -- promised date, JDE Julian CYYDDD, 0 = none
    OLSTAT CHAR(1)  NOT NULL DEFAULT 'O',    -- O open, B backordered, S shipped, C closed, X cancelled
    OLTAXF CHAR(1)  NOT NULL DEFAULT '1',    -- taxable: 1 / 0
    OLDLTF CHAR(1)  NOT NULL DEFAULT ' ',    -- 'D' = deleted (soft delete)
    OLCHGD INTEGER  NOT NULL DEFAULT 0,      -- last change, YYYYMMDD (local)
    OLCHGT INTEGER  NOT NULL DEFAULT 0,      -- last change, HHMMSS (local)
    CONSTRAINT OELINE_PK PRIMARY KEY (OLCOMP, OLORDN, OLLINE)
);

CREATE TABLE IF NOT EXISTS ICBAL (           -- inventory balance by warehouse
    IBCOMP CHAR(2)  NOT NULL,
    IBWHSE CHAR(3)  NOT NULL,
    IBITEM CHAR(15) NOT NULL,
    IBQOH  BIGINT   NOT NULL DEFAULT 0,      -- on hand, 3 implied decimals
    IBQAL  BIGINT   NOT NULL DEFAULT 0,      -- allocated, 3 implied decimals
    IBQOO  BIGINT   NOT NULL DEFAULT 0,      -- on order, 3 implied decimals
    IBRORP INTEGER  NOT NULL DEFAULT 0,      -- reorder point, whole units
    IBBIN  CHAR(8)  NOT NULL DEFAULT ' ',    -- bin location, blank = none
    IBLCNT INTEGER  NOT NULL DEFAULT 0,      -- last counted, days since 1967-12-31, 0 = never
    IBCHGD DATE     NOT NULL DEFAULT '1900-01-01', -- last change date, 1900-01-01 = never
    IBCHGT CHAR(6)  NOT NULL DEFAULT '000000',     -- last change time, HHMMSS text (local)
    CONSTRAINT ICBAL_PK PRIMARY KEY (IBCOMP, IBWHSE, IBITEM)
);

CREATE TABLE IF NOT EXISTS SHHDR (           -- shipments
    SHCOMP CHAR(2)  NOT NULL,
    SHSHPN CHAR(10) NOT NULL,                -- shipment number
    SHORDN CHAR(10) NOT NULL,                -- order shipped
    SHCUST CHAR(8)  NOT NULL,
    SHWHSE CHAR(3)  NOT NULL,
    SHSHDT CHAR(8)  NOT NULL DEFAULT '00000000', -- ship date, YYYYMMDD text, zeros = not yet
    SHCARR CHAR(4)  NOT NULL DEFAULT ' ',    -- carrier code: UPSG UPSR FDXG LTL1 WILL
    SHTRCK CHAR(30) NOT NULL DEFAULT ' ',    -- tracking number, blank = none
    SHWGHT CHAR(9)  NOT NULL DEFAULT ' ',    -- weight in kg as text ('  0012.50')
    SHFRGT BIGINT   NOT NULL DEFAULT 0,      -- freight charged, 2 implied decimals
    SHSTAT CHAR(1)  NOT NULL DEFAULT 'P',    -- P picked, S shipped, D delivered, V void
    SHDLDT CHAR(8)  NOT NULL DEFAULT ' ',    -- delivered, MM/DD/YY text, blank = not yet
    CONSTRAINT SHHDR_PK PRIMARY KEY (SHCOMP, SHSHPN)
);

CREATE TABLE IF NOT EXISTS ARINV (           -- receivables: invoices and credit memos
    AICOMP CHAR(2)  NOT NULL,
    AIINVN CHAR(10) NOT NULL,                -- invoice number
    AIDOCT CHAR(2)  NOT NULL DEFAULT 'IN',   -- IN invoice, CM credit memo
    AIORDN CHAR(10) NOT NULL DEFAULT ' ',    -- order invoiced, blank = none
    AICUST CHAR(8)  NOT NULL,
    AIINDT INTEGER  NOT NULL,                -- invoice date, JDE Julian CYYDDD
    AIDUDT INTEGER  NOT NULL DEFAULT 0,      -- due date, YYYYMMDD, 0 = none
    AIAMT  BIGINT   NOT NULL,                -- amount, 2 implied decimals (negative for CM)
    AITAX  BIGINT   NOT NULL DEFAULT 0,      -- tax, 2 implied decimals
    AICURR CHAR(3)  NOT NULL DEFAULT 'USD',
    AIPDFL CHAR(1)  NOT NULL DEFAULT 'N',    -- paid: Y / N
    AIPDDT DATE     NOT NULL DEFAULT '1900-01-01', -- paid on, 1900-01-01 = not paid
    CONSTRAINT ARINV_PK PRIMARY KEY (AICOMP, AIINVN)
);

CREATE TABLE IF NOT EXISTS RMHDR (           -- returns (return material authorizations)
    RMCOMP CHAR(2)  NOT NULL,
    RMRMAN CHAR(10) NOT NULL,                -- RMA number
    RMORDN CHAR(10) NOT NULL,                -- original order
    RMCUST CHAR(8)  NOT NULL,
    RMITEM CHAR(15) NOT NULL,
    RMQTY  BIGINT   NOT NULL,                -- quantity returned, 3 implied decimals
    RMREAS CHAR(2)  NOT NULL,                -- reason: 01 damaged, 02 wrong item, 03 not needed, 04 defective
    RMRCDT INTEGER  NOT NULL DEFAULT 0,      -- received, YYYYMMDD, 0 = not yet
    RMCRED BIGINT   NOT NULL DEFAULT 0,      -- credit granted, 2 implied decimals
    RMSTAT CHAR(1)  NOT NULL DEFAULT 'O',    -- O open, R received, C credited, X cancelled
    RMNOTE CHAR(40) NOT NULL DEFAULT ' ',    -- remark (Windows-1252)
    CONSTRAINT RMHDR_PK PRIMARY KEY (RMCOMP, RMRMAN)
);
