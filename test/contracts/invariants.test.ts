import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { deployFixture } from "../helpers/fixture";

describe("scratch", function () {
  it("error shape", async function () {
    const f = await loadFixture(deployFixture);
    const latest = await time.latest();
    await time.setNextBlockTimestamp(latest + 5);
    const bn = await ethers.provider.getBlockNumber();
    try {
      await f.hub.connect(f.workers[0]).withdraw(10n ** 30n, { gasLimit: 1_000_000 });
    } catch (e: any) {
      console.log(Object.keys(e), e.code, e.revert, e.data, e.shortMessage);
    }
    const bn2 = await ethers.provider.getBlockNumber();
    console.log(bn, bn2, (await ethers.provider.getBlock("latest"))!.timestamp, latest);
    try {
      await f.hub.connect(f.workers[0]).withdraw(10n ** 30n);
    } catch (e: any) {
      console.log(Object.keys(e), e.code, e.revert, e.data, e.shortMessage);
    }
    console.log(await ethers.provider.getBlockNumber());
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) await f.hub.accountOf(f.workers[0].address);
    console.log("100 calls ms", Date.now() - t0);
    const t1 = Date.now();
    await Promise.all(Array.from({length: 100}, () => f.hub.accountOf(f.workers[0].address)));
    console.log("100 parallel calls ms", Date.now() - t1);
    const t2 = Date.now();
    for (let i = 0; i < 20; i++) await f.hub.connect(f.workers[0]).deposit(1n, { gasLimit: 1_000_000 });
    console.log("20 tx ms", Date.now() - t2);
    const t3 = Date.now();
    for (let i = 0; i < 20; i++) await loadFixture(deployFixture);
    console.log("20 loadFixture ms", Date.now() - t3);
  });
});
