-- KPIs per organization, recomputed from its leads (src/server/kpis): one row per KPI, replaced on
-- every recomputation. The cache holds the same values; this table is their durable copy.

CREATE TABLE kpis (
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,64}$'),
  value numeric NOT NULL,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, name)
);
