// solidity-coverage (`npm run coverage`): the Hub compiles only through the IR pipeline (viaIR), so the instrumented
// build keeps the Yul optimizer on; unlimited contract size is granted on the coverage network only.
module.exports = {
  skipFiles: ["mocks/", "token/"],
  configureYulOptimizer: true,
  irMinimum: false,
  mocha: { timeout: 300000 },
};
