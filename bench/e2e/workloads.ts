/**
 * What the benchmark asks for: small apps whose own run time is a few milliseconds, so that the figures show the
 * protocol's cost (transactions, dispatch, consensus) rather than the app's. Each workload is run at each trust level,
 * through the system and through the floor, with exactly the same app, dataset and params.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Examples } from "../../deploy/cluster";

const ROOT = join(__dirname, "..", "..");

export const CUSTOMERS_QUERY = "SELECT segment, avg(ltv) FROM customers GROUP BY segment";

export type WorkloadName = "sieve" | "sql" | "echo";

export interface Workload {
  name: WorkloadName;
  /** one line for the tables */
  label: string;
  app: keyof Examples["apps"];
  runtime: "wasi" | "sql";
  /** the request's params (sdk/params.ts) */
  params: { args?: string[]; query?: string };
  /** the registered `customers` dataset */
  usesDataset: boolean;
}

export const WORKLOADS: Record<WorkloadName, Workload> = {
  sieve: { name: "sieve", label: "sieve --n 10000", app: "sieve", runtime: "wasi", params: { args: ["--n", "10000"] }, usesDataset: false },
  sql: { name: "sql", label: "customers SQL", app: "sql", runtime: "sql", params: { query: CUSTOMERS_QUERY }, usesDataset: true },
  echo: { name: "echo", label: "echo hello from the bench", app: "echo", runtime: "wasi", params: { args: ["hello", "from", "the", "bench"] }, usesDataset: false },
};

/** The dataset the cluster registers as `customers` (deploy/cluster.ts registerExamples). */
export const CUSTOMERS_DATASET = { path: join(ROOT, "apps", "datasets", "customers.sqlite"), name: "customers" };

/** The module bytes of a wasi workload (the file the cluster registered), undefined for the sql runtime. */
export async function appBytes(w: Workload): Promise<Uint8Array | undefined> {
  if (w.runtime !== "wasi") return undefined;
  return new Uint8Array(await readFile(join(ROOT, "apps", "build", `${w.app}.wasm`)));
}

/** One measured configuration: a workload at a trust level. */
export interface Variant {
  workload: Workload;
  trust: number;
  /** e.g. "sieve t1" */
  name: string;
}

export function variantsOf(workloads: Workload[], trusts: number[]): Variant[] {
  return workloads.flatMap((workload) => trusts.map((trust) => ({ workload, trust, name: `${workload.name} t${trust}` })));
}
