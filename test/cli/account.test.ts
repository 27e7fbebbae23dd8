/**
 * `concord account deposit | withdraw | balance` against a real local chain, and the error contract every command
 * shares: one `concord: …` line on stderr, a non-zero exit, never a stack, never the key.
 */
import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet, parseEther } from "ethers";
import { Chain, TOKENS_PER_ACCOUNT, callCli, expectOneLineError, freePort, jsonOf, runCli, startChain } from "./harness";

describe("concord account", function () {
  this.timeout(120_000);
  let chain: Chain;
  let me: Record<string, string>;
  let address: string;

  before(async function () {
    chain = await startChain(3);
    me = { ...chain.env, CONCORD_KEY: chain.accounts[1].privateKey };
    address = chain.accounts[1].address;
  });

  after(async function () {
    await chain?.stop();
  });

  it("deposits token units (approve + deposit) and shows the new balance", async function () {
    const result = await runCli(["account", "deposit", "10"], me);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.equal("");
    expect(result.stdout).to.match(new RegExp(`^deposited 10 CCT into ${address}'s escrow account\n  balance 10 CCT \\(frozen 0 CCT\\)`));
    expect(result.stdout).to.match(/approve tx 0x[0-9a-f]{64}/);
    expect(await chain.hub.balanceOf(address)).to.equal(parseEther("10"));
    expect(await chain.token.balanceOf(address)).to.equal(TOKENS_PER_ACCOUNT - parseEther("10"));
  });

  it("deposits base units with --wei and reports JSON amounts as decimal strings", async function () {
    const json = jsonOf(await callCli(["--json", "account", "deposit", "500", "--wei"], me));
    expect(json).to.include({ address, amount: "500", balance: (parseEther("10") + 500n).toString(), frozen: "0", symbol: "CCT", decimals: 18 });
    expect(await chain.hub.balanceOf(address)).to.equal(parseEther("10") + 500n);
  });

  it("withdraws, and shows balances of the key's account or of any address", async function () {
    const json = jsonOf(await runCli(["--json", "account", "withdraw", "2.5"], me));
    expect(json).to.include({ amount: parseEther("2.5").toString(), balance: (parseEther("7.5") + 500n).toString() });
    expect(await chain.hub.balanceOf(address)).to.equal(parseEther("7.5") + 500n);

    const human = await callCli(["account", "balance"], me);
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stdout).to.equal(
      [`account ${address}`, "  balance     7.5000000000000005 CCT", "  frozen      0 CCT", "  wallet      992.4999999999999995 CCT", "  order nonce 0", ""].join("\n"),
    );
    // No key needed to look at an address.
    const other = jsonOf(await callCli(["--json", "account", "balance", chain.accounts[2].address.toLowerCase()], chain.env));
    expect(other).to.include({ address: chain.accounts[2].address, balance: "0", frozen: "0", wallet: TOKENS_PER_ACCOUNT.toString() });
  });

  it("refuses what the balances cannot cover, in token units, before sending", async function () {
    expectOneLineError(
      await callCli(["account", "deposit", "5000"], me),
      new RegExp(`insufficient token balance: ${address} holds 992.4999999999999995 CCT, the deposit needs 5000 CCT`),
    );
    expectOneLineError(
      await runCli(["account", "withdraw", "1000"], me),
      /insufficient escrow balance: 0x[0-9a-fA-F]{40} has 7.5000000000000005 CCT free \(0 CCT frozen\), the withdrawal needs 1000 CCT/,
    );
    expectOneLineError(await callCli(["account", "withdraw", "0"], me), /amount must be more than zero/);
    expectOneLineError(await callCli(["account", "deposit", "1.2.3"], me), /amount: expected an amount of CCT such as 10 or 2\.5, got "1\.2\.3"/);
    expectOneLineError(await callCli(["account", "deposit", "0.0000000000000000001"], me), /CCT has only 18 decimals/);
    expectOneLineError(await callCli(["account", "deposit", "1.5", "--wei"], me), /expected an integer number of base units/);
  });

  describe("errors common to every command", function () {
    it("bad flags: commander's message on one line, exit code 2", async function () {
      const unknown = await callCli(["account", "balance", "--colour"], me);
      expectOneLineError(unknown, /unknown option '--colour'/);
      expect(unknown.code).to.equal(2);
      expectOneLineError(await callCli(["acount", "balance"], me), /unknown command 'acount'/);
      expectOneLineError(await callCli(["account", "deposit"], me), /missing required argument 'amount'/);
      expectOneLineError(await callCli(["order", "sign", "bid"], me), /'bid' is invalid.*app, dataset, workerpool, request/);
    });

    it("a missing or malformed key, never echoing the key", async function () {
      expectOneLineError(await callCli(["account", "deposit", "1"], chain.env), /this command signs: give --key <hex> or set CONCORD_KEY/);
      expectOneLineError(await callCli(["account", "balance"], chain.env), /give an address, or --key <hex>/);
      const almost = `0x${"ab".repeat(31)}zz`;
      const bad = await callCli(["account", "deposit", "1", "--key", almost], chain.env);
      expectOneLineError(bad, /invalid key \(--key or CONCORD_KEY\): expected a private key of 64 hex digits/);
      expect(bad.stderr).to.not.include("abab");
      // The key pasted where an address goes: the message masks it.
      const key = chain.accounts[1].privateKey;
      const pasted = await callCli(["account", "balance", key], me);
      expectOneLineError(pasted, /address: not an address .*\[redacted\]/);
      expect(pasted.stderr.toLowerCase()).to.not.include(key.slice(2, 20).toLowerCase());
      const asRequester = await callCli(
        ["order", "sign", "request", "--app", "1", "--app-max-price", "1", "--workerpool-max-price", "1", "--category", "0", "--requester", key],
        me,
      );
      expect(asRequester.code).to.not.equal(0);
      expect(asRequester.stderr.toLowerCase()).to.not.include(key.slice(2, 20).toLowerCase());
    });

    it("a bad address", async function () {
      expectOneLineError(await callCli(["account", "balance", "0x12345"], chain.env), /address: not an address \(0x \+ 40 hex digits\): "0x12345"/);
      const mixed = "0x70997970C51812dc3A010C7d01b50e0d17dc79c8"; // last letter's case flipped
      expectOneLineError(await callCli(["account", "balance", mixed], chain.env), /bad EIP-55 checksum/);
    });

    it("an unreachable RPC: a short line, no stack, no retries", async function () {
      const url = `http://127.0.0.1:${await freePort()}`;
      const child = await runCli(["account", "balance", address], { CONCORD_RPC_URL: url });
      expectOneLineError(child, new RegExp(`cannot reach the RPC at ${url}: connection refused`));
      expect(child.code).to.equal(1);
      expectOneLineError(await callCli(["--rpc", "ftp://x", "account", "balance", address], chain.env), /unsupported RPC URL/);
    });

    it("a missing, stale or foreign deployments file", async function () {
      const empty = mkdtempSync(join(tmpdir(), "concord-cli-nodeploy-"));
      expectOneLineError(
        await callCli(["account", "balance", address], { ...chain.env, CONCORD_DEPLOYMENTS_DIR: empty }),
        /no deployments file for chain 31337 at .*31337\.json \(deploy first/,
      );
      const stale = join(empty, "stale.json");
      writeFileSync(stale, JSON.stringify({ ...chain.deployment, hub: Wallet.createRandom().address }));
      expectOneLineError(await callCli(["--deployments", stale, "account", "balance", address], chain.env), /no contract at the Hub 0x[0-9a-fA-F]{40} on chain 31337: .* is stale/);
      const foreign = join(empty, "foreign.json");
      writeFileSync(foreign, JSON.stringify({ ...chain.deployment, chainId: 1 }));
      expectOneLineError(await callCli(["--deployments", foreign, "account", "balance", address], chain.env), /is for chain 1, but the RPC serves chain 31337/);
      const garbage = join(empty, "garbage.json");
      writeFileSync(garbage, "nope");
      expectOneLineError(await callCli(["--deployments", garbage, "account", "balance", address], chain.env), /is not valid JSON/);
    });

    it("--help and --version succeed on stdout", async function () {
      const help = await callCli(["--help"], {});
      expect(help.code).to.equal(0);
      expect(help.stdout).to.include("Usage: concord");
      const version = await callCli(["--version"], {});
      expect(version.code).to.equal(0);
      expect(version.stdout).to.match(/^\d+\.\d+\.\d+\n$/);
    });
  });
});
