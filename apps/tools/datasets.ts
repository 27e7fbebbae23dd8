/**
 * The sample `customers` dataset: generated, not hand-written, so that anyone can rebuild it byte for byte.
 *
 * A fixed-seed PRNG (mulberry32) drives every choice, and money is handled in integer cents, so the rows are the
 * same on every machine. The same rows are written twice: as CSV (header `id,name,segment,country,ltv,signup_year`,
 * "\n" line ends, ltv with 2 decimals) and as a SQLite database (table `customers` with typed columns) made by sql.js
 * and serialised with `db.export()`.
 */
import initSqlJs from "sql.js";

export const CUSTOMER_COUNT = 2000;
export const CUSTOMER_SEED = 0x5eed_c0de;

export interface Customer {
  id: number;
  name: string;
  segment: string;
  country: string;
  /** lifetime value in cents (an integer, so rounding can never differ between machines) */
  ltvCents: number;
  signupYear: number;
}

/** mulberry32: a tiny 32-bit PRNG, good enough for sample data and trivially portable. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const FIRST_NAMES = (
  "Ada Bruno Chiara Dmitri Elena Farid Greta Hiro Ines Jonas Kemal Lena Mateo Nadia Oskar Priya Quentin " +
  "Rosa Sami Tove Ugo Vera Wen Ximena Yusuf Zofia Amara Bastien Carmen Daan Eitan Freya Goran Hana Ivo Jana " +
  "Kofi Liv Malik Noor"
).split(" ");

const LAST_NAMES = (
  "Abebe Bergstrom Castillo Dubois Eriksen Ferreira Gallo Hoffmann Ivanova Janssen Kowalski Lindqvist " +
  "Moreau Nakamura Okafor Petrov Quispe Rossi Schmidt Tanaka Urquhart Varga Weber Xu Yilmaz Zimmermann " +
  "Almeida Brennan Costa Novak"
).split(" ");

/**
 * [name, weight, min ltv, max ltv] (ltv in cents): segments differ in frequency and in lifetime value, so SQL
 * examples have something to show.
 */
const SEGMENTS: readonly (readonly [string, number, number, number])[] = [
  ["enterprise", 8, 2_000_000, 25_000_000],
  ["smb", 32, 150_000, 4_000_000],
  ["consumer", 45, 1_500, 300_000],
  ["startup", 15, 40_000, 2_500_000],
];

/** [ISO 3166 code, weight] */
const COUNTRIES: readonly (readonly [string, number])[] = [
  ["US", 24],
  ["DE", 12],
  ["FR", 10],
  ["GB", 10],
  ["JP", 8],
  ["BR", 7],
  ["IN", 7],
  ["CA", 6],
  ["NL", 5],
  ["SE", 4],
  ["NG", 4],
  ["AU", 3],
];

const FIRST_YEAR = 2015;
const LAST_YEAR = 2024;

function pickWeighted<T extends readonly [string, number, ...unknown[]]>(items: readonly T[], roll: number): T {
  const total = items.reduce((sum, item) => sum + item[1], 0);
  let left = roll % total;
  for (const item of items) {
    if (left < item[1]) return item;
    left -= item[1];
  }
  return items[items.length - 1];
}

/** The dataset's rows, ids 1..count. Pure and deterministic. */
export function generateCustomers(count = CUSTOMER_COUNT, seed = CUSTOMER_SEED): Customer[] {
  const next = mulberry32(seed);
  const rows: Customer[] = [];
  for (let id = 1; id <= count; id++) {
    const name = `${FIRST_NAMES[next() % FIRST_NAMES.length]} ${LAST_NAMES[next() % LAST_NAMES.length]}`;
    const [segment, , minLtv, maxLtv] = pickWeighted(SEGMENTS, next());
    const [country] = pickWeighted(COUNTRIES, next());
    // skewed towards the low end: the product of two uniform draws in [0, 1)
    const skew = (next() / 2 ** 32) * (next() / 2 ** 32);
    const ltvCents = minLtv + Math.floor(skew * (maxLtv - minLtv));
    const signupYear = FIRST_YEAR + (next() % (LAST_YEAR - FIRST_YEAR + 1));
    rows.push({ id, name, segment, country, ltvCents, signupYear });
  }
  return rows;
}

/** "1234.50" for 123450 cents. */
export function formatCents(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
}

/** RFC 4180 field: quoted only when it must be. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export const CUSTOMER_COLUMNS = ["id", "name", "segment", "country", "ltv", "signup_year"] as const;

/** The CSV text: header line, one line per row, "\n" after every line. */
export function customersCsv(rows: readonly Customer[]): string {
  const lines = [CUSTOMER_COLUMNS.join(",")];
  for (const r of rows) {
    lines.push(
      [String(r.id), r.name, r.segment, r.country, formatCents(r.ltvCents), String(r.signupYear)]
        .map(csvField)
        .join(","),
    );
  }
  return lines.join("\n") + "\n";
}

const CREATE_TABLE = `CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  segment TEXT NOT NULL,
  country TEXT NOT NULL,
  ltv REAL NOT NULL,
  signup_year INTEGER NOT NULL
)`;

/** The SQLite database file, as `db.export()` serialises it. */
export async function customersSqlite(rows: readonly Customer[]): Promise<Uint8Array<ArrayBuffer>> {
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  try {
    db.run(CREATE_TABLE);
    db.run("BEGIN");
    const insert = db.prepare(
      "INSERT INTO customers (id, name, segment, country, ltv, signup_year) VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const r of rows) insert.run([r.id, r.name, r.segment, r.country, r.ltvCents / 100, r.signupYear]);
    insert.free();
    db.run("COMMIT");
    return new Uint8Array(db.export());
  } finally {
    db.close();
  }
}
