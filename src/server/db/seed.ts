/**
 * Demo data: organizations with phone numbers and a default, and their leads, generated from a
 * seeded PRNG so that every run with the same options writes the same rows (ids included).
 *
 * As a script (`tsx src/server/db/seed.ts`, or `node dist/server/db/seed.js` after a build) it
 * opens the database the environment names (`DATABASE_URL`, else PGlite in `DATA_DIR`), migrates
 * it and seeds it with the default sizes.
 */
import { pathToFileURL } from 'node:url';
import { toE164 } from '../leads/phone.js';
import { slugify } from '../company-assistants/slug.js';
import { LEAD_CLASSIFICATIONS, type LeadClassification, type LeadStatus } from '../leads/lead.js';
import type { Database, Queryable } from './database.js';

/** Options of {@link seedDemoData}. */
export type SeedOptions = {
  /**
   * Organizations to create; the first is the default one.
   * @default 24
   */
  organizations?: number;
  /**
   * Leads per organization.
   * @default 200
   */
  leadsPerOrg?: number;
  /**
   * Seed of the PRNG: the same seed and sizes always give the same data.
   * @default 1
   */
  seed?: number;
};

/** Rows {@link seedDemoData} inserted; rows already present are skipped and not counted. */
export type SeedResult = { organizations: number; phoneNumbers: number; leads: number };

/** The demo data set's sizes. */
export const DEMO_DATA = { organizations: 24, leadsPerOrg: 200, seed: 1 } as const;

const MAX_ORGANIZATIONS = 1000;
const MAX_LEADS_PER_ORG = 100_000;
// Rows per INSERT: 500 leads × 8 columns stays far below Postgres' 65,535 parameters.
const CHUNK = 500;
// Every generated timestamp lies in the 180 days before this instant.
const BASE_TIME = Date.UTC(2025, 5, 1);
const DAY_MS = 86_400_000;

/**
 * Fills the database with demo data: `organizations` organizations (the first one the default,
 * unless one is already marked), each with one to three phone numbers and `leadsPerOrg` leads.
 * About one lead in twenty shares its number with a lead of another organization, as happens when
 * a caller contacts two businesses. Idempotent: ids are generated too, so seeding again with the
 * same options inserts nothing. Runs in one transaction.
 * @throws Error when a size is not an integer in range.
 * @example
 * await seedDemoData(db, { organizations: 24, leadsPerOrg: 200 });
 */
export async function seedDemoData(db: Database, options: SeedOptions = {}): Promise<SeedResult> {
  const organizations = integerOption(
    'organizations',
    options.organizations ?? DEMO_DATA.organizations,
    MAX_ORGANIZATIONS,
  );
  const leadsPerOrg = integerOption(
    'leadsPerOrg',
    options.leadsPerOrg ?? DEMO_DATA.leadsPerOrg,
    MAX_LEADS_PER_ORG,
  );
  const data = generateDemoData(organizations, leadsPerOrg, options.seed ?? DEMO_DATA.seed);
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ exists: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM organizations WHERE is_default) AS exists',
    );
    const hasDefault = rows[0]?.exists === true;
    const orgs = data.organizations.map((o) => ({ ...o, isDefault: o.isDefault && !hasDefault }));
    const insertedOrgs = await insertRows(
      tx,
      'organizations (id, name, slug, is_default, created_at)',
      orgs.map((o) => [o.id, o.name, o.slug, o.isDefault, o.createdAt]),
    );
    // Phone numbers and leads only for the demo organizations that exist now: one whose slug was
    // already taken by another organization was skipped, and its rows would break foreign keys.
    const present = new Set(
      (
        await tx.query<{ id: string }>('SELECT id FROM organizations WHERE id = ANY($1::uuid[])', [
          orgs.map((o) => o.id),
        ])
      ).rows.map((r) => r.id),
    );
    const phoneNumbers = await insertRows(
      tx,
      'organization_phone_numbers (phone, organization_id)',
      orgs.filter((o) => present.has(o.id)).flatMap((o) => o.phoneNumbers.map((p) => [p, o.id])),
    );
    const leads = await insertRows(
      tx,
      'leads (id, organization_id, phone, name, status, classification, created_at, updated_at)',
      data.leads
        .filter((l) => present.has(l.organizationId))
        .map((l) => [
          l.id,
          l.organizationId,
          l.phone,
          l.name,
          l.status,
          l.classification,
          l.createdAt,
          l.updatedAt,
        ]),
    );
    return { organizations: insertedOrgs, phoneNumbers, leads };
  });
}

/** Multi-row INSERT … ON CONFLICT DO NOTHING in chunks; the number of rows inserted. */
async function insertRows(tx: Queryable, into: string, rows: unknown[][]): Promise<number> {
  let inserted = 0;
  for (let start = 0; start < rows.length; start += CHUNK) {
    const chunk = rows.slice(start, start + CHUNK);
    const params: unknown[] = [];
    const values = chunk.map((row) => `(${row.map((value) => `$${params.push(value)}`).join(', ')})`);
    const result = await tx.query(
      `INSERT INTO ${into} VALUES ${values.join(', ')} ON CONFLICT DO NOTHING`,
      params,
    );
    inserted += result.rowCount;
  }
  return inserted;
}

function integerOption(name: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new Error(`Expected \`${name}\` to be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}

type DemoOrganization = {
  id: string;
  name: string;
  slug: string;
  isDefault: boolean;
  phoneNumbers: string[];
  createdAt: Date;
};

type DemoLead = {
  id: string;
  organizationId: string;
  phone: string;
  name: string | null;
  status: LeadStatus;
  classification: LeadClassification | null;
  createdAt: Date;
  updatedAt: Date;
};

/** The rows of the demo data set, without touching a database. Exported for tests. */
export function generateDemoData(
  organizations: number,
  leadsPerOrg: number,
  seed: number,
): { organizations: DemoOrganization[]; leads: DemoLead[] } {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const usedSlugs = new Set<string>();
  const usedOrgPhones = new Set<string>();
  const orgs: DemoOrganization[] = [];
  for (let i = 0; i < organizations; i++) {
    let name = i === 0 ? 'Larder Demo Front Desk' : `${pick(ORG_PREFIXES)} ${pick(ORG_KINDS)}`;
    // Names repeat once the combinations run low: draw again a few times, then number it.
    for (let tries = 0; usedSlugs.has(slugify(name)) && tries < 20; tries++) {
      name = `${pick(ORG_PREFIXES)} ${pick(ORG_KINDS)}`;
    }
    if (usedSlugs.has(slugify(name))) name = `${name} ${i + 1}`;
    const slug = slugify(name);
    usedSlugs.add(slug);
    const phoneNumbers: string[] = [];
    const count = 1 + Math.floor(random() * 3);
    while (phoneNumbers.length < count) {
      const phone = usNumber(random, pick);
      if (usedOrgPhones.has(phone)) continue;
      usedOrgPhones.add(phone);
      phoneNumbers.push(phone);
    }
    const createdAt = new Date(BASE_TIME - (400 + Math.floor(random() * 600)) * DAY_MS);
    orgs.push({
      id: uuid(random),
      name,
      slug,
      isDefault: i === 0,
      phoneNumbers: phoneNumbers.sort(),
      createdAt,
    });
  }

  const leads: DemoLead[] = [];
  const allPhones: string[] = [];
  for (const org of orgs) {
    const phones = new Set<string>();
    while (phones.size < leadsPerOrg) {
      // One in twenty callers also called another organization.
      const shared = allPhones.length > 0 && random() < 0.05 ? pick(allPhones) : undefined;
      const phone = shared ?? leadNumber(random, pick);
      if (phones.has(phone)) continue;
      phones.add(phone);
      allPhones.push(phone);
      const createdAt = new Date(BASE_TIME - Math.floor(random() * 180 * DAY_MS));
      const updatedAt = new Date(createdAt.getTime() + Math.floor(random() * 20 * DAY_MS));
      const status = weighted(random, STATUS_WEIGHTS);
      leads.push({
        id: uuid(random),
        organizationId: org.id,
        phone,
        name: random() < 0.12 ? null : `${pick(FIRST_NAMES)} ${pick(LAST_NAMES)}`,
        status,
        classification: status === 'new' && random() < 0.7 ? null : pick(LEAD_CLASSIFICATIONS),
        createdAt,
        updatedAt: updatedAt.getTime() > BASE_TIME ? new Date(BASE_TIME) : updatedAt,
      });
    }
  }
  return { organizations: orgs, leads };
}

/** A mobile or landline number: mostly US and Canada, some UK, Australia and Germany. */
function leadNumber(random: () => number, pick: <T>(items: readonly T[]) => T): string {
  const country = random();
  if (country < 0.8) return usNumber(random, pick);
  return validNumber(random, () => {
    if (country < 0.88) return `+1${pick(CA_AREA_CODES)}${digits(random, 7, 2)}`;
    if (country < 0.95) return `+447${pick(['4', '5', '7', '8', '9'])}${digits(random, 8)}`;
    if (country < 0.98) return `+614${digits(random, 8)}`;
    return `+4915${pick(['1', '2', '7', '9'])}${digits(random, 8)}`;
  });
}

function usNumber(random: () => number, pick: <T>(items: readonly T[]) => T): string {
  return validNumber(random, () => `+1${pick(US_AREA_CODES)}${digits(random, 7, 2)}`);
}

/** Draws candidates until libphonenumber-js accepts one (some ranges are unassigned). */
function validNumber(random: () => number, candidate: () => string): string {
  for (let i = 0; i < 100; i++) {
    const e164 = toE164(candidate());
    if (e164 !== undefined) return e164;
  }
  throw new Error('Could not draw a valid demo phone number in 100 tries');
}

/** `count` random digits; the first is at least `firstMin` (exchange codes start with 2–9). */
function digits(random: () => number, count: number, firstMin = 0): string {
  let out = String(firstMin + Math.floor(random() * (10 - firstMin)));
  while (out.length < count) out += String(Math.floor(random() * 10));
  return out;
}

function weighted<T extends string>(random: () => number, weights: ReadonlyArray<readonly [T, number]>): T {
  let r = random() * weights.reduce((sum, [, w]) => sum + w, 0);
  for (const [value, weight] of weights) {
    r -= weight;
    if (r < 0) return value;
  }
  return weights[weights.length - 1]?.[0] as T;
}

/** A version-4-shaped UUID from the PRNG. */
function uuid(random: () => number): string {
  const bytes = Array.from({ length: 16 }, () => Math.floor(random() * 256));
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** mulberry32: a small, fast, seedable PRNG; plenty for demo data. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUS_WEIGHTS: ReadonlyArray<readonly [LeadStatus, number]> = [
  ['new', 35],
  ['contacted', 25],
  ['qualified', 18],
  ['converted', 10],
  ['lost', 12],
];
const US_AREA_CODES = [
  '206',
  '212',
  '213',
  '303',
  '305',
  '312',
  '404',
  '415',
  '503',
  '512',
  '602',
  '617',
  '702',
  '713',
  '720',
  '786',
  '808',
  '858',
  '917',
  '949',
];
const CA_AREA_CODES = ['416', '514', '604', '647', '778'];
const ORG_PREFIXES = [
  'Sunrise',
  'Bluewater',
  'Summit',
  'Evergreen',
  'Harbor',
  'Redwood',
  'Northstar',
  'Cedar',
  'Granite',
  'Lakeside',
  'Maple',
  'Pioneer',
  'Silverline',
  'Coastal',
  'Prairie',
  'Ironwood',
];
const ORG_KINDS = [
  'Solar',
  'Cycles',
  'Motors',
  'Dental',
  'Realty',
  'Roofing',
  'Plumbing',
  'HVAC',
  'Fitness',
  'Insurance',
  'Landscaping',
  'Auto Glass',
];
const FIRST_NAMES = [
  'Ava',
  'Liam',
  'Noah',
  'Emma',
  'Olivia',
  'Mateo',
  'Sofia',
  'Lucas',
  'Mia',
  'Ethan',
  'Amara',
  'Chen',
  'Priya',
  'Yusuf',
  'Hana',
  'Diego',
  'Fatima',
  'Kwame',
  'Ingrid',
  'Tomás',
  'Aisha',
  'Jonas',
  'Léa',
  'Ravi',
];
const LAST_NAMES = [
  'Smith',
  'Johnson',
  'Garcia',
  'Nguyen',
  'Patel',
  'Kim',
  'Müller',
  'Okafor',
  'Rossi',
  'Silva',
  'Cohen',
  'Dubois',
  'Tanaka',
  'Kowalski',
  'Haddad',
  'Andersen',
  'Brown',
  'Martínez',
  'Singh',
  'Walker',
];

// The script entry point: runs only when this file is executed, not when it is imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { loadConfig } = await import('../config.js');
  const { openDatabase } = await import('./database.js');
  const { runMigrations } = await import('./migrate.js');
  const config = loadConfig(process.env);
  const db = await openDatabase(config.database);
  try {
    const migrated = await runMigrations(db);
    const inserted = await seedDemoData(db);
    console.log(
      `seed: ${db.engine} at ${db.location}, schema version ${migrated.version}; inserted ${inserted.organizations} organizations, ${inserted.phoneNumbers} phone numbers, ${inserted.leads} leads (rows already present are skipped)`,
    );
  } finally {
    await db.close();
  }
}
