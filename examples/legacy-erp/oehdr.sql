-- The sample legacy ERP table: order headers, in the terse style of 1990s ERPs (fixed-width
-- char codes, a 2-letter prefix on every column). Mapped to the entity sales_order v1 by
-- mappings/sales_order.yaml. Used by docker-compose.yml (initdb), the demo and the
-- integration tests; plain SQL, no psql meta-commands.
CREATE TABLE IF NOT EXISTS public.oehdr (
    hdcomp char(2)       NOT NULL,             -- company code
    hdordn char(10)      NOT NULL,             -- order number
    hdcust char(8)       NOT NULL,             -- customer number
    hdodat date,                               -- order date
    hdamt  numeric(12,2) NOT NULL DEFAULT 0,   -- order total
    hdstat char(1)       NOT NULL DEFAULT 'O', -- status: O open, C closed, X cancelled
    hdnote text,                               -- free-text note (may be TOASTed when long)
    hdupdt timestamptz   DEFAULT now(),        -- last change
    CONSTRAINT oehdr_pkey PRIMARY KEY (hdcomp, hdordn)
);

COMMENT ON TABLE public.oehdr IS 'Order headers (legacy ERP); streamed by Siphon as sales_order v1';

-- With the default replica identity (the primary key) updates carry no old row and deletes
-- only the key, so sales_order events have no "before". For before images, run:
--   ALTER TABLE public.oehdr REPLICA IDENTITY FULL;
