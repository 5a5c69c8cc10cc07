-- mariadb/erp.sql - the sample legacy ERP of ../erp.sql for MariaDB (10.5+) and MySQL (8.0+):
-- the same eight tables, columns, keys and defaults, in MySQL's types (BYTEA -> BLOB, NUMERIC
-- -> DECIMAL), with the text in latin1 (MySQL's latin1 is Windows-1252, what the PostgreSQL
-- version keeps as raw bytes in a SQL_ASCII database). Names are lower case, as PostgreSQL
-- folds the unquoted names of ../erp.sql, so the shipped mappings (mappings/*.yaml, which name
-- `public.<table>` and lower-case columns) read both. Load it into a database named `public`:
--
--   mariadb -e "CREATE DATABASE public"
--   mariadb public < erp.sql
--   mariadb public < generate.sql
--   mariadb public -e "CALL erp_generate(1); CALL erp_activity(1); CALL erp_bad_rows()"
--
-- See ../erp.sql for what every column means and which legacy habit it shows.

CREATE TABLE IF NOT EXISTS arcust (          -- customer master
    cucomp CHAR(2)  NOT NULL,                -- company
    cucust CHAR(8)  NOT NULL,                -- customer number, zero-padded
    cuname CHAR(30) NOT NULL,                -- name (Windows-1252)
    cuadr1 CHAR(30) NOT NULL DEFAULT ' ',    -- street address
    cucity CHAR(20) NOT NULL DEFAULT ' ',
    custat CHAR(2)  NOT NULL DEFAULT ' ',    -- state / region
    cuzipc CHAR(10) NOT NULL DEFAULT ' ',    -- postal code
    cuctry CHAR(3)  NOT NULL DEFAULT 'USA',  -- ISO 3166 alpha-3
    cuphon CHAR(15) NOT NULL DEFAULT ' ',    -- phone (PII)
    cuemal CHAR(40) NOT NULL DEFAULT ' ',    -- e-mail (PII)
    cutaxi CHAR(11) NOT NULL DEFAULT ' ',    -- tax id (PII)
    cucrlm BIGINT   NOT NULL DEFAULT 0,      -- credit limit, 2 implied decimals
    cuterm CHAR(3)  NOT NULL DEFAULT 'N30',  -- payment terms: N30 N60 COD PPD
    cuactv CHAR(1)  NOT NULL DEFAULT 'Y',    -- active: Y / N
    cuopdt INT      NOT NULL DEFAULT 0,      -- account opened, YYYYMMDD, 0 = unknown
    cudltf CHAR(1)  NOT NULL DEFAULT ' ',    -- 'D' = deleted (soft delete)
    cuchgd INT      NOT NULL DEFAULT 0,      -- last change date, JDE Julian CYYDDD
    cuchgt INT      NOT NULL DEFAULT 0,      -- last change time, HHMMSS (local)
    CONSTRAINT arcust_pk PRIMARY KEY (cucomp, cucust)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS icitem (          -- item (product) master
    iccomp CHAR(2)  NOT NULL,
    icitem CHAR(15) NOT NULL,                -- item number, blank-padded
    icdesc CHAR(30) NOT NULL,                -- short description (Windows-1252)
    icldsc BLOB,                            -- long description: Windows-1252 bytes
    icuom  CHAR(3)  NOT NULL DEFAULT 'EA',   -- unit of measure
    iccatg CHAR(4)  NOT NULL DEFAULT ' ',    -- category code, blank = none
    icprce BIGINT   NOT NULL DEFAULT 0,      -- list price, 4 implied decimals
    iccost BIGINT   NOT NULL DEFAULT 0,      -- standard cost, 4 implied decimals
    icwght CHAR(10) NOT NULL DEFAULT ' ',    -- weight in kg as text ('    12.500'), blank = unknown
    icstat CHAR(1)  NOT NULL DEFAULT 'A',    -- A active, I inactive, D discontinued
    ictaxf CHAR(1)  NOT NULL DEFAULT 'T',    -- taxable: T / F
    iccrdt CHAR(8)  NOT NULL DEFAULT '00000000', -- created, YYYYMMDD text, zeros = unknown
    icdltf CHAR(1)  NOT NULL DEFAULT 'N',    -- 'Y' = deleted (soft delete)
    CONSTRAINT icitem_pk PRIMARY KEY (iccomp, icitem)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS oehdr (           -- sales document headers
    hdcomp CHAR(2)  NOT NULL,
    hdordn CHAR(10) NOT NULL,                -- order number, zero-padded
    hddoct CHAR(2)  NOT NULL DEFAULT 'SO',   -- document type: SO order, QT quote
    hdcust CHAR(8)  NOT NULL,                -- customer number
    hdodat INT      NOT NULL,                -- order date, YYYYMMDD
    hdrqdt INT      NOT NULL DEFAULT 0,      -- requested ship date, YYYYMMDD, 0 = none
    hdamt  BIGINT   NOT NULL DEFAULT 0,      -- order total, 2 implied decimals
    hdtaxa BIGINT   NOT NULL DEFAULT 0,      -- tax, 2 implied decimals
    hdcurr CHAR(3)  NOT NULL DEFAULT 'USD',
    hdstat CHAR(1)  NOT NULL DEFAULT 'O',    -- O open, H held, S shipped, C closed, X cancelled
    hdpono CHAR(20) NOT NULL DEFAULT ' ',    -- customer's PO number, blank = none
    hdslsp CHAR(3)  NOT NULL DEFAULT ' ',    -- salesperson
    hdnote VARCHAR(60),                      -- remark (Windows-1252)
    hdcrdt INT      NOT NULL,                -- entered, YYYYMMDD (local)
    hdcrtm INT      NOT NULL,                -- entered, HHMMSS (local)
    hdchgd INT      NOT NULL DEFAULT 0,      -- last change, YYYYMMDD (local), 0 = never
    hdchgt INT      NOT NULL DEFAULT 0,      -- last change, HHMMSS (local)
    CONSTRAINT oehdr_pk PRIMARY KEY (hdcomp, hdordn)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS oeline (          -- sales order lines
    olcomp CHAR(2)  NOT NULL,
    olordn CHAR(10) NOT NULL,                -- order number (the header's key)
    olline DECIMAL(3,0) NOT NULL,            -- line number
    olitem CHAR(15) NOT NULL,
    oldesc CHAR(30) NOT NULL DEFAULT ' ',    -- description (Windows-1252)
    olqtyo BIGINT   NOT NULL,                -- quantity ordered, 3 implied decimals
    olqtys BIGINT   NOT NULL DEFAULT 0,      -- quantity shipped, 3 implied decimals
    oluom  CHAR(3)  NOT NULL DEFAULT 'EA',
    olprce BIGINT   NOT NULL,                -- unit price, 4 implied decimals
    oldisc INT      NOT NULL DEFAULT 0,      -- discount percent, 2 implied decimals
    olamt  BIGINT   NOT NULL,                -- extended amount, 2 implied decimals
    olwhse CHAR(3)  NOT NULL,                -- shipping warehouse
    olrqdt INT      NOT NULL DEFAULT 0,      -- requested date, YYMMDD, 0 = none
    olprdt INT      NOT NULL DEFAULT 0,      -- promised date, JDE Julian CYYDDD, 0 = none
    olstat CHAR(1)  NOT NULL DEFAULT 'O',    -- O open, B backordered, S shipped, C closed, X cancelled
    oltaxf CHAR(1)  NOT NULL DEFAULT '1',    -- taxable: 1 / 0
    oldltf CHAR(1)  NOT NULL DEFAULT ' ',    -- 'D' = deleted (soft delete)
    olchgd INT      NOT NULL DEFAULT 0,      -- last change, YYYYMMDD (local)
    olchgt INT      NOT NULL DEFAULT 0,      -- last change, HHMMSS (local)
    CONSTRAINT oeline_pk PRIMARY KEY (olcomp, olordn, olline)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS icbal (           -- inventory balance by warehouse
    ibcomp CHAR(2)  NOT NULL,
    ibwhse CHAR(3)  NOT NULL,
    ibitem CHAR(15) NOT NULL,
    ibqoh  BIGINT   NOT NULL DEFAULT 0,      -- on hand, 3 implied decimals
    ibqal  BIGINT   NOT NULL DEFAULT 0,      -- allocated, 3 implied decimals
    ibqoo  BIGINT   NOT NULL DEFAULT 0,      -- on order, 3 implied decimals
    ibrorp INT      NOT NULL DEFAULT 0,      -- reorder point, whole units
    ibbin  CHAR(8)  NOT NULL DEFAULT ' ',    -- bin location, blank = none
    iblcnt INT      NOT NULL DEFAULT 0,      -- last counted, days since 1967-12-31, 0 = never
    ibchgd DATE     NOT NULL DEFAULT '1900-01-01', -- last change date, 1900-01-01 = never
    ibchgt CHAR(6)  NOT NULL DEFAULT '000000',     -- last change time, HHMMSS text (local)
    CONSTRAINT icbal_pk PRIMARY KEY (ibcomp, ibwhse, ibitem)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS shhdr (           -- shipments
    shcomp CHAR(2)  NOT NULL,
    shshpn CHAR(10) NOT NULL,                -- shipment number
    shordn CHAR(10) NOT NULL,                -- order shipped
    shcust CHAR(8)  NOT NULL,
    shwhse CHAR(3)  NOT NULL,
    shshdt CHAR(8)  NOT NULL DEFAULT '00000000', -- ship date, YYYYMMDD text, zeros = not yet
    shcarr CHAR(4)  NOT NULL DEFAULT ' ',    -- carrier code: UPSG UPSR FDXG LTL1 WILL
    shtrck CHAR(30) NOT NULL DEFAULT ' ',    -- tracking number, blank = none
    shwght CHAR(9)  NOT NULL DEFAULT ' ',    -- weight in kg as text ('  0012.50')
    shfrgt BIGINT   NOT NULL DEFAULT 0,      -- freight charged, 2 implied decimals
    shstat CHAR(1)  NOT NULL DEFAULT 'P',    -- P picked, S shipped, D delivered, V void
    shdldt CHAR(8)  NOT NULL DEFAULT ' ',    -- delivered, MM/DD/YY text, blank = not yet
    CONSTRAINT shhdr_pk PRIMARY KEY (shcomp, shshpn)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS arinv (           -- receivables: invoices and credit memos
    aicomp CHAR(2)  NOT NULL,
    aiinvn CHAR(10) NOT NULL,                -- invoice number
    aidoct CHAR(2)  NOT NULL DEFAULT 'IN',   -- IN invoice, CM credit memo
    aiordn CHAR(10) NOT NULL DEFAULT ' ',    -- order invoiced, blank = none
    aicust CHAR(8)  NOT NULL,
    aiindt INT      NOT NULL,                -- invoice date, JDE Julian CYYDDD
    aidudt INT      NOT NULL DEFAULT 0,      -- due date, YYYYMMDD, 0 = none
    aiamt  BIGINT   NOT NULL,                -- amount, 2 implied decimals (negative for CM)
    aitax  BIGINT   NOT NULL DEFAULT 0,      -- tax, 2 implied decimals
    aicurr CHAR(3)  NOT NULL DEFAULT 'USD',
    aipdfl CHAR(1)  NOT NULL DEFAULT 'N',    -- paid: Y / N
    aipddt DATE     NOT NULL DEFAULT '1900-01-01', -- paid on, 1900-01-01 = not paid
    CONSTRAINT arinv_pk PRIMARY KEY (aicomp, aiinvn)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS rmhdr (           -- returns (return material authorizations)
    rmcomp CHAR(2)  NOT NULL,
    rmrman CHAR(10) NOT NULL,                -- RMA number
    rmordn CHAR(10) NOT NULL,                -- original order
    rmcust CHAR(8)  NOT NULL,
    rmitem CHAR(15) NOT NULL,
    rmqty  BIGINT   NOT NULL,                -- quantity returned, 3 implied decimals
    rmreas CHAR(2)  NOT NULL,                -- reason: 01 damaged, 02 wrong item, 03 not needed, 04 defective
    rmrcdt INT      NOT NULL DEFAULT 0,      -- received, YYYYMMDD, 0 = not yet
    rmcred BIGINT   NOT NULL DEFAULT 0,      -- credit granted, 2 implied decimals
    rmstat CHAR(1)  NOT NULL DEFAULT 'O',    -- O open, R received, C credited, X cancelled
    rmnote CHAR(40) NOT NULL DEFAULT ' ',    -- remark (Windows-1252)
    CONSTRAINT rmhdr_pk PRIMARY KEY (rmcomp, rmrman)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
