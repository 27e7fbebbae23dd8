import { expect } from "chai";
import { RuntimeError } from "../../worker/runtime/errors";

/** The RuntimeError `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function runtimeFailure(p: Promise<unknown>): Promise<RuntimeError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(RuntimeError);
    return e as RuntimeError;
  }
  throw new Error("expected the run to fail");
}
