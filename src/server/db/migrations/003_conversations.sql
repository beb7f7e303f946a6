-- Conversations: one per organization and caller phone number, with its messages and a summary.

CREATE TABLE conversations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  phone text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
  -- The service caps summaries at 8,000 characters (SUMMARY_MAX_LENGTH); checked here too.
  summary text CHECK (summary IS NULL OR length(summary) BETWEEN 1 AND 8000),
  summary_updated_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Appends find-or-create their conversation with ON CONFLICT on this pair.
  CONSTRAINT conversations_organization_phone UNIQUE (organization_id, phone)
);

CREATE TABLE conversation_messages (
  -- An identity, not a timestamp, orders messages: two appends in one millisecond keep their order.
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  -- The service caps content at 4,000 characters (CONTENT_MAX_LENGTH) and never truncates.
  content text NOT NULL CHECK (length(content) BETWEEN 1 AND 4000),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The context query: a conversation's latest messages, newest first.
CREATE INDEX conversation_messages_conversation ON conversation_messages (conversation_id, id DESC);
