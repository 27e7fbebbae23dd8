/**
 * `concord order sign | publish | cancel | hash` against a real local chain and a stand-in order book: signed orders
 * parse with the SDK and verify for the deployed Clerk, publishing sends `{kind, order}` and reports the book's
 * refusals, cancelling shows on chain.
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ZeroAddress, parseEther } from "ethers";
import { domain, hashOrder } from "../../sdk/eip712";
import type { TypedDataDomain } from "ethers";
import { parseSignedOrder, parseSignedOrderJson, verifyOrderSignature } from "../../sdk/orders";
import { BookServer, Chain, callCli, expectOneLineError, jsonOf, runCli, startBook, startChain } from "./harness";

describe("concord order", function () {
  this.timeout(120_000);
  let chain: Chain;
  let book: BookServer;
  let dir: string;
  let d: TypedDataDomain;
  let appOwner: Record<string, string>;
  let requester: Record<string, string>;
  let stranger: Record<string, string>;

  before(async function () {
    chain = await startChain(5);
    book = await startBook();
    dir = mkdtempSync(join(tmpdir(), "concord-cli-orders-"));
    d = domain(chain.deployment.chainId, chain.deployment.hub);
    appOwner = { ...chain.env, CONCORD_KEY: chain.accounts[1].privateKey };
    requester = { ...chain.env, CONCORD_KEY: chain.accounts[2].privateKey };
    stranger = { ...chain.env, CONCORD_KEY: chain.accounts[3].privateKey };
    const apps = chain.apps.connect(chain.accounts[1]);
    await (await apps.register(chain.accounts[1].address, "echo", "wasi", "file:///echo.wasm", `0x${"11".repeat(32)}`)).wait();
    const pools = chain.workerpools.connect(chain.accounts[1]);
    await (await pools.register(chain.accounts[1].address, "pool", chain.accounts[1].address, 30, 10)).wait();
  });

  after(async function () {
    await book?.close();
    await chain?.stop();
  });

  beforeEach(function () {
    book.received.length = 0;
    book.reply = { status: 201, body: { accepted: true } };
  });

  it("signs an app order to stdout: SDK-parsable JSON, verified for the deployed Clerk, prices in token units", async function () {
    const result = await runCli(["order", "sign", "app", "--app", "1", "--price", "1.5", "--volume", "10", "--expiry", "+1d"], appOwner);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.equal("");
    const order = parseSignedOrderJson("AppOrder", result.stdout);
    expect(order.app).to.equal(1n);
    expect(order.appprice).to.equal(parseEther("1.5"));
    expect(order.volume).to.equal(10n);
    expect(order.nonce).to.equal(0n);
    expect(order.expiry > BigInt(Math.floor(Date.now() / 1000))).to.equal(true);
    expect(verifyOrderSignature(d, "AppOrder", order, chain.accounts[1].address)).to.equal(true);
    expect(await chain.hub.hashAppOrder(order)).to.equal(hashOrder(d, "AppOrder", order));
  });

  it("signs a request order with --json: kind, hash, signer and the order; params built from --arg", async function () {
    const json = jsonOf(
      await runCli(
        ["--json", "order", "sign", "request", "--app", "1", "--app-max-price", "2", "--workerpool-max-price", "5",
          "--category", "0", "--trust", "3", "--arg", "--n", "--arg", "10"],
        requester,
      ),
    );
    expect(json.kind).to.equal("RequestOrder");
    expect(json.signer).to.equal(chain.accounts[2].address);
    const order = parseSignedOrder("RequestOrder", json.order);
    expect(order.requester).to.equal(chain.accounts[2].address);
    expect(order.beneficiary).to.equal(chain.accounts[2].address);
    expect(order.params).to.equal('{"args":["--n","10"]}');
    expect(order.trust).to.equal(3n);
    expect(order.workerpoolmaxprice).to.equal(parseEther("5"));
    expect(json.hash).to.equal(hashOrder(d, "RequestOrder", order));
    expect(verifyOrderSignature(d, "RequestOrder", order, chain.accounts[2].address)).to.equal(true);
  });

  it("signs from a --file template with flags overriding it, and writes --out", async function () {
    const template = join(dir, "pool-template.json");
    writeFileSync(template, JSON.stringify({ workerpool: "1", workerpoolprice: "1000", category: "0", trust: "1", volume: "5" }));
    const out = join(dir, "pool-signed.json");
    const result = await callCli(["order", "sign", "workerpool", "--file", template, "--volume", "7", "--wei", "--price", "2000", "--out", out], appOwner);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^signed WorkerpoolOrder 0x[0-9a-f]{64} by 0x[0-9a-fA-F]{40} -> .*pool-signed\.json\n$/);
    const order = parseSignedOrderJson("WorkerpoolOrder", readFileSync(out, "utf8"));
    expect(order.volume).to.equal(7n);
    expect(order.trust).to.equal(1n);
    expect(order.workerpoolprice).to.equal(2000n);
    expect(verifyOrderSignature(d, "WorkerpoolOrder", order, chain.accounts[1].address)).to.equal(true);
  });

  it("refuses to sign for an asset the key does not own, an unregistered asset, or another requester", async function () {
    expectOneLineError(
      await callCli(["order", "sign", "app", "--app", "1", "--price", "1"], stranger),
      new RegExp(`the app 1's owner is ${chain.accounts[1].address}, not the key's address ${chain.accounts[3].address}`),
    );
    expectOneLineError(await callCli(["order", "sign", "app", "--app", "9", "--price", "1"], appOwner), /app 9 is not registered/);
    expectOneLineError(
      await callCli(
        ["order", "sign", "request", "--app", "1", "--app-max-price", "1", "--workerpool-max-price", "1", "--category", "0",
          "--requester", chain.accounts[1].address],
        requester,
      ),
      /the requester is 0x[0-9a-fA-F]{40}, not the key's address/,
    );
  });

  it("refuses malformed order input with one line naming the flag or field", async function () {
    expectOneLineError(await callCli(["order", "sign", "app", "--app", "1", "--price", "1", "--volume", "-3"], appOwner), /--volume: expected an unsigned integer, got negative "-3"/);
    expectOneLineError(await callCli(["order", "sign", "app", "--app", "1"], appOwner), /missing AppOrder\.appprice: give --price/);
    expectOneLineError(await callCli(["order", "sign", "app", "--app", "1", "--price", "1", "--trust", "2"], appOwner), /--trust does not apply to app orders/);
    expectOneLineError(await callCli(["order", "sign", "app", "--app", "1", "--price", "abc"], appOwner), /--price: expected an amount of CCT such as 10 or 2\.5, got "abc"/);
    expectOneLineError(
      await callCli(["order", "sign", "request", "--app", "1", "--app-max-price", "1", "--workerpool-max-price", "1", "--category", "0", "--params", "{\"x\":1}"], requester),
      /invalid params: unknown member\(s\) x/,
    );
    expectOneLineError(await callCli(["order", "sign", "app", "--app", "1", "--price", "1", "--expiry", "tomorrow"], appOwner), /--expiry: expected unix seconds/);
    const badTemplate = join(dir, "bad-template.json");
    writeFileSync(badTemplate, JSON.stringify({ app: "1", appprice: "1", colour: "red" }));
    expectOneLineError(await callCli(["order", "sign", "app", "--file", badTemplate], appOwner), /invalid order: AppOrder\.colour: unknown field/);
    const malformed = join(dir, "malformed.json");
    writeFileSync(malformed, JSON.stringify({ app: "1", appprice: "1.5", volume: "1", tag: "0x00", datasetrestrict: "0",
      workerpoolrestrict: "0", requesterrestrict: ZeroAddress, expiry: "0", nonce: "0", salt: `0x${"00".repeat(32)}`, sign: "0x" }));
    expectOneLineError(await callCli(["order", "hash", malformed], appOwner), /invalid order: AppOrder\.appprice: expected an unsigned integer as a decimal string, got "1\.5"/);
    writeFileSync(malformed, "{ not json");
    expectOneLineError(await callCli(["order", "publish", malformed, "--book", book.url], appOwner), /malformed\.json: invalid JSON/);
  });

  it("publishes a signed order: checks it, POSTs {kind, order} to <book>/orders and shows the book's answer", async function () {
    const file = join(dir, "app.json");
    expect((await callCli(["order", "sign", "app", "--app", "1", "--price", "1", "--out", file], appOwner)).code).to.equal(0);
    const order = parseSignedOrderJson("AppOrder", readFileSync(file, "utf8"));
    const hash = hashOrder(d, "AppOrder", order);

    const human = await runCli(["order", "publish", file, "--book", book.url], stranger); // anyone may publish a signed order
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stdout).to.equal(`published AppOrder ${hash} to ${book.url}/orders (HTTP 201)\n`);
    expect(book.received).to.have.length(1);
    expect(book.received[0].path).to.equal("POST /orders");
    expect(book.received[0].contentType).to.equal("application/json");
    expect(book.received[0].body).to.deep.equal({ kind: "AppOrder", order: JSON.parse(readFileSync(file, "utf8")) });

    book.reply = { status: 200, body: { id: 42 } };
    const json = jsonOf(await callCli(["--json", "order", "publish", file, "--book", `${book.url}/`], appOwner));
    expect(json).to.deep.include({ kind: "AppOrder", hash, status: 200, response: { id: 42 }, book: `${book.url}/orders` });
  });

  it("reports the book's refusal, an unreachable book and a tampered signature in one line", async function () {
    const file = join(dir, "app-refused.json");
    expect((await callCli(["order", "sign", "app", "--app", "1", "--price", "1", "--out", file], appOwner)).code).to.equal(0);
    book.reply = { status: 422, body: { error: { code: "PRICE_TOO_LOW", message: "price below the pool's floor" } } };
    expectOneLineError(
      await runCli(["order", "publish", file, "--book", book.url], appOwner),
      /the order book refused the order \(HTTP 422\): price below the pool's floor/,
    );
    expectOneLineError(
      await callCli(["order", "publish", file, "--book", "http://127.0.0.1:9"], appOwner),
      /cannot reach the order book at http:\/\/127\.0\.0\.1:9\/orders: connection refused/,
    );
    const tampered = JSON.parse(readFileSync(file, "utf8"));
    tampered.appprice = "1";
    writeFileSync(file, JSON.stringify(tampered));
    book.received.length = 0;
    expectOneLineError(
      await callCli(["order", "publish", file, "--book", book.url], appOwner),
      new RegExp(`invalid signature: signed by 0x[0-9a-fA-F]{40} for this Clerk, but the app 1's owner is ${chain.accounts[1].address}`),
    );
    expect(book.received).to.have.length(0);
  });

  it("prints an order's hash, the one the Clerk computes", async function () {
    const file = join(dir, "request.json");
    const args = ["order", "sign", "request", "--app", "1", "--app-max-price", "1", "--workerpool-max-price", "1", "--category", "0", "--out", file];
    expect((await callCli(args, requester)).code).to.equal(0);
    const order = parseSignedOrderJson("RequestOrder", readFileSync(file, "utf8"));
    const result = await callCli(["order", "hash", file], requester);
    expect(result.stdout).to.equal(`${await chain.hub.hashRequestOrder(order)}\n`);
    expect(jsonOf(await callCli(["--json", "order", "hash", file], requester))).to.deep.equal({ kind: "RequestOrder", hash: hashOrder(d, "RequestOrder", order) });
  });

  it("cancels an order on chain as its signer; refuses a stranger with the Clerk's decoded error; then refuses to publish it", async function () {
    const file = join(dir, "to-cancel.json");
    expect((await callCli(["order", "sign", "app", "--app", "1", "--price", "1", "--out", file], appOwner)).code).to.equal(0);
    const order = parseSignedOrderJson("AppOrder", readFileSync(file, "utf8"));
    const hash = hashOrder(d, "AppOrder", order);

    expectOneLineError(
      await runCli(["order", "cancel", file], stranger),
      new RegExp(
        `transaction reverted: ClerkNotOrderSigner\\(orderHash=${hash}, signer=${chain.accounts[1].address}, caller=${chain.accounts[3].address}\\)`,
      ),
    );
    const result = await runCli(["--json", "order", "cancel", file], appOwner);
    expect(jsonOf(result)).to.include({ kind: "AppOrder", hash, cancelled: true });
    const [, , cancelled] = await chain.hub.orderState(hash);
    expect(cancelled).to.equal(true);

    expectOneLineError(await callCli(["order", "publish", file, "--book", book.url], appOwner), new RegExp(`order ${hash} is cancelled`));
  });

  it("cancels every order with --all by bumping the nonce; later orders carry the new nonce", async function () {
    const old = join(dir, "old-request.json");
    const args = ["order", "sign", "request", "--app", "1", "--app-max-price", "1", "--workerpool-max-price", "1", "--category", "0"];
    expect((await callCli([...args, "--out", old], requester)).code).to.equal(0);

    const human = await runCli(["order", "cancel", "--all"], requester);
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stdout).to.match(/order nonce is now 1\n/);
    expect(await chain.hub.orderNonce(chain.accounts[2].address)).to.equal(1n);

    expectOneLineError(
      await callCli(["order", "publish", old, "--book", book.url], requester),
      /carries nonce 0 but 0x[0-9a-fA-F]{40}'s order nonce is 1 \(revoked\)/,
    );
    const fresh = parseSignedOrder("RequestOrder", jsonOf(await callCli(["--json", ...args], requester)).order);
    expect(fresh.nonce).to.equal(1n);

    expectOneLineError(await callCli(["order", "cancel"], requester), /give the order file to cancel, or --all/);
    expectOneLineError(await callCli(["order", "cancel", old, "--all"], requester), /not both/);
  });
});
