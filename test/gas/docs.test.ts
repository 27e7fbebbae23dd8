/** The gas figures quoted in README.md and docs/protocol.md are the ones in the committed snapshot. */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(__dirname, "..", "..");
const snapshot = JSON.parse(readFileSync(join(root, "gas-snapshot.json"), "utf8")) as Record<string, number>;
const fmt = (key: string) => {
  if (!(key in snapshot)) throw new Error(`no "${key}" in gas-snapshot.json`);
  return snapshot[key].toLocaleString("en-US");
};

describe("gas figures in the docs", function () {
  it("README.md quotes the snapshot's steady totals and matchOrders", function () {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    for (const key of [
      "total: single-worker task, with dataset, steady",
      "total: 3-worker task, one transaction per worker, with dataset, steady",
      "total: 3-worker task, batched relay, with dataset, steady",
      "matchOrders",
    ]) {
      expect(readme, `README.md must quote ${key} = ${fmt(key)}`).to.include(fmt(key));
    }
  });

  it("docs/protocol.md quotes every whole-task total and the claim figures", function () {
    const doc = readFileSync(join(root, "docs", "protocol.md"), "utf8");
    const keys = Object.keys(snapshot).filter((k) => k.startsWith("total:"));
    keys.push("matchOrders", "claim (never initialized)", "claim (never initialized, empty kitty)", "claim (3 contributions)");
    for (const key of keys) expect(doc, `docs/protocol.md must quote ${key} = ${fmt(key)}`).to.include(fmt(key));
  });
});
