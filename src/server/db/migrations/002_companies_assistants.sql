-- Company ↔ assistant mappings, and the companies and assistants created as prototypes.

-- The mapping, both directions: a slug names one assistant, an assistant has one slug. Written by
-- POST /api/company-assistants and POST /api/prototypes; the cache entries of both directions are
-- rebuilt from it when they expire or are evicted.
CREATE TABLE company_assistants (
  company_slug text PRIMARY KEY CHECK (company_slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(company_slug) <= 64),
  assistant_id text NOT NULL UNIQUE CHECK (assistant_id ~ '^[A-Za-z0-9_-]{1,128}$'),
  company_name text NOT NULL CHECK (length(btrim(company_name)) BETWEEN 1 AND 200),
  -- Extra JSON fields posted with the mapping (never the four columns above).
  data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Companies created by POST /api/prototypes. A company's slug stays reserved for it (its demo URL
-- was handed out), so slug allocation skips slugs that are here too.
CREATE TABLE companies (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 64),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  location text NOT NULL CHECK (length(btrim(location)) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Assistants created by an assistant provider. The local provider records its assistant here
-- before the prototype is stored (company_id still null, like an assistant created at OpenAI that
-- no prototype refers to yet); storing the prototype links it to its company.
CREATE TABLE assistants (
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,128}$'),
  company_id uuid REFERENCES companies (id) ON DELETE SET NULL,
  provider text NOT NULL CHECK (provider IN ('local', 'openai')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
  instructions text NOT NULL,
  model text NOT NULL,
  demo_url text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX assistants_company ON assistants (company_id);
