-- oeline.sql - the benchmark's table: order lines of a legacy ERP (12 columns, CHAR-padded
-- codes, NUMERIC quantities and money, a date, a local timestamp), and the generator the
-- benchmark calls to write committed transactions of a chosen size.
--
-- Rows are derived from a bigint id n only (order n/10, line n%10+1), so a run is repeatable
-- and every phase writes its own id range. bench/run.sh never needs this file by hand:
-- bench_pg_to_kafka runs it in its throwaway cluster.

CREATE TABLE public.oeline (
    olcomp  char(2)       NOT NULL,  -- company code
    olordn  char(10)      NOT NULL,  -- order number, zero-padded
    olline  integer       NOT NULL,  -- line number within the order
    olitem  char(15)      NOT NULL,  -- item code, blank-padded
    oldesc  varchar(40),             -- free-text description (NULL on every 10th line)
    olqty   numeric(11,3) NOT NULL,  -- ordered quantity
    oluom   char(3)       NOT NULL,  -- unit of measure
    olprice numeric(13,4) NOT NULL,  -- unit price
    olamt   numeric(15,2) NOT NULL,  -- line amount
    olreqd  date,                    -- requested delivery date
    olstat  char(1)       NOT NULL,  -- O open, H held, C closed
    olupdt  timestamp     NOT NULL,  -- last change (local time, no zone: legacy)
    PRIMARY KEY (olcomp, olordn, olline)
);

-- ntx committed transactions of rows_per_tx rows each, ids from first on. CALL it outside a
-- transaction block (it commits). The row expressions are written out in both statements (no
-- helper function): plpgsql then keeps one cached plan per statement, and single-row
-- transactions run at ~50k/s instead of ~6k/s through a set-returning SQL function.
CREATE PROCEDURE bench_gen(first bigint, ntx integer, rows_per_tx integer)
LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
BEGIN
    FOR i IN 0 .. ntx - 1 LOOP
        g := first + i::bigint * rows_per_tx;
        IF rows_per_tx = 1 THEN
            INSERT INTO public.oeline VALUES (
                '01', lpad((g / 10)::text, 10, '0'), (g % 10 + 1)::integer,
                'ITM' || lpad((g % 5000)::text, 6, '0'),
                CASE WHEN g % 10 = 0 THEN NULL ELSE 'Widget, grade ' || (g % 7)::text END,
                (g % 100) + 1.25, 'EA', 12.3456 + (g % 1000) / 100.0,
                round(((g % 100) + 1.25) * (12.3456 + (g % 1000) / 100.0), 2),
                DATE '2026-01-01' + (g % 365)::integer, 'O', localtimestamp);
        ELSE
            INSERT INTO public.oeline
            SELECT '01', lpad((n / 10)::text, 10, '0'), (n % 10 + 1)::integer,
                   'ITM' || lpad((n % 5000)::text, 6, '0'),
                   CASE WHEN n % 10 = 0 THEN NULL ELSE 'Widget, grade ' || (n % 7)::text END,
                   (n % 100) + 1.25, 'EA', 12.3456 + (n % 1000) / 100.0,
                   round(((n % 100) + 1.25) * (12.3456 + (n % 1000) / 100.0), 2),
                   DATE '2026-01-01' + (n % 365)::integer, 'O', localtimestamp
              FROM generate_series(g, g + rows_per_tx - 1) AS n;
        END IF;
        COMMIT;
    END LOOP;
END
$$;
