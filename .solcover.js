// solidity-coverage (`npm run coverage`): the Hub compiles only through the IR pipeline (viaIR), so the instrumented
// build keeps the Yul optimizer on (solidity-coverage itself lifts the contract size limit on its network).
module.exports = {
  skipFiles: ["mocks/", "token/"],
  configureYulOptimizer: true,
  irMinimum: false,
  mocha: { timeout: 300000 },
};
