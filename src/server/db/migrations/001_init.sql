-- Organizations, the phone numbers they are reached on, and their leads.

CREATE TABLE organizations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 64),
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- At most one default organization: the one a lookup falls back to.
CREATE UNIQUE INDEX organizations_single_default ON organizations (is_default) WHERE is_default;

-- A number belongs to one organization at most, so a call to it names the organization.
CREATE TABLE organization_phone_numbers (
  phone text PRIMARY KEY CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE
);

CREATE INDEX organization_phone_numbers_organization ON organization_phone_numbers (organization_id);

CREATE TABLE leads (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  phone text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
  name text CHECK (name IS NULL OR length(btrim(name)) BETWEEN 1 AND 200),
  status text NOT NULL DEFAULT 'new'
    CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost')),
  classification text CHECK (classification IN ('hot', 'warm', 'cold')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Find-or-create relies on this: concurrent creations of one lead insert one row.
  CONSTRAINT leads_organization_phone UNIQUE (organization_id, phone)
);
