/** The `keccak` package's native binding alone (its main entry falls back to JavaScript): the same API as the package. */
declare module "keccak/bindings" {
  import createKeccakHash = require("keccak");
  export = createKeccakHash;
}
