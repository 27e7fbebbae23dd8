/**
 * GET /tasks/:id as a long poll (`?after=N&waitMs=T`) over real HTTP, and the store's `onTaskEvent` it listens to:
 * the answer comes as soon as the timeline grows past N or the task ends, at the timeout otherwise; bad parameters
 * are 400s; a client that goes away leaves no listener behind.
 */
import { expect } from "chai";
import { EventEmitter } from "node:events";
import { keccak256 } from "ethers";
import { tasksRouter, type TaskView } from "../../../scheduler/api/tasks";
import { addTaskEvent, onTaskEvent } from "../../../scheduler/store/events";
import { recordDealMatched } from "../../../scheduler/store/tasks";
import { taskId as taskIdOf } from "../../../sdk/eip712";
import { deal, memoryDb, T0 } from "../store/fixtures";
import { get, serve, type Served } from "./helpers";

describe("scheduler API: GET /tasks/:id as a long poll", function () {
  const id = keccak256("0x07");
  const tasks = new Map<string, TaskView>();
  const events = new EventEmitter();
  let server: Served;
  let closing: AbortController;
  const view = (status: string, steps: number): TaskView => ({ task: { id, status }, replicas: [], timeline: Array.from({ length: steps }, (_, i) => ({ ms: i, event: `e${i}` })) });
  /** a step of the task: its view changes, then the store says so */
  const step = (status: string, steps: number) => {
    tasks.set(id, view(status, steps));
    events.emit("event", id);
  };
  const pending = <T>(p: Promise<T>) => {
    const state = { done: false };
    void p.then(() => (state.done = true));
    return state;
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

  beforeEach(async function () {
    tasks.clear();
    closing = new AbortController();
    server = await serve([
      tasksRouter({
        getTask: (taskId) => tasks.get(taskId) ?? null,
        longPoll: {
          statusOf: (taskId) => (tasks.get(taskId)?.task as { status: string } | undefined)?.status ?? null,
          onTaskEvent: (listener) => {
            events.on("event", listener);
            return () => events.off("event", listener);
          },
          closing: closing.signal,
        },
      }),
    ]);
  });
  afterEach(() => server.close());

  it("answers when the timeline grows past `after`, not before; at once when it already has", async function () {
    tasks.set(id, view("dispatched", 2));
    expect((await get(`${server.url}/tasks/${id}?after=1`)).json.timeline).to.have.length(2); // already news

    const waiting = get(`${server.url}/tasks/${id}?after=2&waitMs=20000`);
    const state = pending(waiting);
    await settle();
    events.emit("event", keccak256("0x08")); // another task's news
    await settle();
    expect(state.done).to.equal(false);
    step("revealing", 3);
    const r = await waiting;
    expect(r.status).to.equal(200);
    expect(r.json.task.status).to.equal("revealing");
    expect(r.json.timeline).to.have.length(3);
    expect(events.listenerCount("event")).to.equal(0);
  });

  it("waits for a task not known yet, answers at once for an ended one, and at the timeout with the task as it is", async function () {
    const waiting = get(`${server.url}/tasks/${id}?after=0`);
    await settle();
    step("pending", 1);
    expect((await waiting).json.timeline).to.have.length(1);

    tasks.set(id, view("completed", 9));
    expect((await get(`${server.url}/tasks/${id}?after=50&waitMs=60000`)).json.task.status).to.equal("completed");

    tasks.set(id, view("dispatched", 4));
    const late = await get(`${server.url}/tasks/${id}?after=4&waitMs=50`);
    expect(late.status).to.equal(200);
    expect(late.json.timeline).to.have.length(4);
    const unknown = await get(`${server.url}/tasks/${keccak256("0x09")}?after=0&waitMs=50`);
    expect(unknown.status).to.equal(404);
    expect(unknown.json.error.code).to.equal("TASK_NOT_FOUND");
  });

  it("until=ended answers only once the task has ended, whatever the steps before, or at the timeout", async function () {
    tasks.set(id, view("dispatched", 2));
    const waiting = get(`${server.url}/tasks/${id}?after=2&until=ended&waitMs=20000`);
    const state = pending(waiting);
    await settle();
    step("committing", 3);
    step("revealing", 4);
    await settle();
    expect(state.done).to.equal(false);
    step("completed", 5);
    const r = await waiting;
    expect(r.json.task.status).to.equal("completed");
    expect(r.json.timeline).to.have.length(5);
    expect(events.listenerCount("event")).to.equal(0);

    // an ended task answers at once, a running one at the timeout with the task as it is
    expect((await get(`${server.url}/tasks/${id}?after=99&until=ended`)).json.task.status).to.equal("completed");
    tasks.set(id, view("revealing", 6));
    const late = await get(`${server.url}/tasks/${id}?after=0&until=ended&waitMs=50`);
    expect(late.json.task.status).to.equal("revealing");
    // without `after`, it waits all the same
    const alone = get(`${server.url}/tasks/${id}?until=ended&waitMs=20000`);
    const waitingAlone = pending(alone);
    await settle();
    expect(waitingAlone.done).to.equal(false);
    step("completed", 7);
    expect((await alone).json.task.status).to.equal("completed");
    const bad = await get(`${server.url}/tasks/${id}?after=0&until=soon`);
    expect(bad.status).to.equal(400);
    expect(bad.json.error).to.include({ code: "INVALID_QUERY", message: 'until: expected "ended", got "soon"' });
  });

  it("refuses bad parameters with 400 INVALID_QUERY, and keeps serving", async function () {
    tasks.set(id, view("dispatched", 1));
    for (const query of ["after=-1", "after=abc", "after=1.5", "after=1&waitMs=60001", "after=1&waitMs=x", "waitMs=-5"]) {
      const r = await get(`${server.url}/tasks/${id}?${query}`);
      expect(r.status, query).to.equal(400);
      expect(r.json.error.code).to.equal("INVALID_QUERY");
      expect(r.json.error.message).to.match(/^(after|waitMs): expected an integer from 0 to \d+/);
    }
    expect((await get(`${server.url}/tasks/${id}`)).status).to.equal(200);
  });

  it("forgets a client that goes away while it waits", async function () {
    tasks.set(id, view("dispatched", 1));
    const abort = new AbortController();
    const waiting = fetch(`${server.url}/tasks/${id}?after=1&waitMs=60000`, { signal: abort.signal }).catch(() => "aborted");
    await settle();
    expect(events.listenerCount("event")).to.equal(1);
    abort.abort();
    expect(await waiting).to.equal("aborted");
    await settle();
    expect(events.listenerCount("event")).to.equal(0);
  });

  it("a server that shuts down answers its waiting long polls at once, with the task as it is", async function () {
    tasks.set(id, view("dispatched", 2));
    const waiting = get(`${server.url}/tasks/${id}?after=2&waitMs=60000`);
    await settle();
    closing.abort();
    const r = await waiting;
    expect(r.status).to.equal(200);
    expect(r.json.timeline).to.have.length(2);
    expect(events.listenerCount("event")).to.equal(0);
    // and once closed, a new long poll does not wait either
    expect((await get(`${server.url}/tasks/${id}?after=2&waitMs=60000`)).json.timeline).to.have.length(2);
  });

  it("the store calls onTaskEvent listeners for each event appended, not for a replayed one", function () {
    const db = memoryDb();
    try {
      const d = deal();
      recordDealMatched(db, d, T0);
      const task = taskIdOf(d.dealId, 0).toLowerCase();
      const heard: string[] = [];
      const stop = onTaskEvent(db, (t) => heard.push(t));
      expect(addTaskEvent(db, { taskId: task, kind: "chain.X", dedupeKey: "tx:1" })).to.equal(true);
      expect(addTaskEvent(db, { taskId: task, kind: "chain.X", dedupeKey: "tx:1" })).to.equal(false); // replayed
      expect(heard).to.deep.equal([task]);
      stop();
      addTaskEvent(db, { taskId: task, kind: "offer" });
      expect(heard).to.have.length(1);
    } finally {
      db.close();
    }
  });
});
