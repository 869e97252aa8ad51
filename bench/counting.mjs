// The counting shared by bench/count.mjs (our built worker) and
// bench/count-floor.mjs (the platform floor): bindings that count every
// call on the way through — D1 rows read and written (from each result's
// `meta`, as D1 bills them), Durable Object requests and alarms, the
// objects' SQLite rows (each cursor's `rowsRead`/`rowsWritten`) and
// `setAlarm` calls, KV reads and writes, R2 operations by class, queue
// messages sent, delivered and acknowledged, and outbound fetches.
// Everything the wrapped worker does is counted, including what runs after
// the response (`waitUntil`), FAL's webhooks and the queue consumer.
//
// Benchmark-only; never measure speed with it. `GET /__counts` answers the
// totals since the last `GET /__counts?reset`; that request itself is not
// counted.


const ZERO = {
  worker_requests: 0,
  queue_batches: 0,
  do_requests: 0,
  do_alarms: 0,
  do_rows_read: 0,
  do_rows_written: 0,
  do_set_alarms: 0,
  do_wall_ms: 0,
  d1_queries: 0,
  d1_rows_read: 0,
  d1_rows_written: 0,
  kv_reads: 0,
  kv_writes: 0,
  kv_deletes: 0,
  kv_lists: 0,
  r2_class_a: 0,
  r2_class_b: 0,
  r2_free: 0,
  queue_sent: 0,
  queue_delivered: 0,
  queue_acked: 0,
  queue_retried: 0,
  // Outbound subrequests (FAL, its files): not billed, but each is work.
  fetches: 0,
};
let counts = { ...ZERO };
// SQLite cursors count their rows as they are stepped: summed when read.
let cursors = [];

function snapshot() {
  for (const c of cursors) {
    counts.do_rows_read += c.rowsRead ?? 0;
    counts.do_rows_written += c.rowsWritten ?? 0;
  }
  cursors = [];
  return { ...counts };
}

// A binding whose methods are replaced by `overrides`; everything else is
// the binding's own, bound to it (native bindings refuse another `this`).
// `constructor` is left alone: workers-rs checks bindings by its name.
function wrap(target, overrides) {
  return new Proxy(target, {
    get(t, p) {
      if (Object.hasOwn(overrides, p)) return overrides[p];
      const v = Reflect.get(t, p);
      return typeof v === "function" && p !== "constructor" ? v.bind(t) : v;
    },
  });
}

function d1Counted(result) {
  counts.d1_queries++;
  counts.d1_rows_read += result?.meta?.rows_read ?? 0;
  counts.d1_rows_written += result?.meta?.rows_written ?? 0;
  return result;
}

// Statements stay the runtime's own objects (`batch` needs them); their
// methods are replaced on the instance. `first` runs as `all`, which is
// what D1 does for it, to see the result's meta.
function d1Statement(statement) {
  const { bind, all, run } = statement;
  statement.bind = (...args) => d1Statement(bind.apply(statement, args));
  statement.all = async () => d1Counted(await all.call(statement));
  statement.run = async () => d1Counted(await run.call(statement));
  statement.first = async (column) => {
    const row = d1Counted(await all.call(statement)).results?.[0] ?? null;
    return column === undefined || row === null ? row : row[column];
  };
  return statement;
}

const d1 = (db) =>
  wrap(db, {
    prepare: (sql) => d1Statement(db.prepare(sql)),
    batch: async (statements) => (await db.batch(statements)).map(d1Counted),
  });

const kv = (ns) =>
  wrap(ns, {
    get: (...a) => (counts.kv_reads++, ns.get(...a)),
    getWithMetadata: (...a) => (counts.kv_reads++, ns.getWithMetadata(...a)),
    put: (...a) => (counts.kv_writes++, ns.put(...a)),
    delete: (...a) => (counts.kv_deletes++, ns.delete(...a)),
    list: (...a) => (counts.kv_lists++, ns.list(...a)),
  });

// R2's classes: https://developers.cloudflare.com/r2/pricing/ (deletes are free).
const r2 = (bucket) =>
  wrap(bucket, {
    put: (...a) => (counts.r2_class_a++, bucket.put(...a)),
    list: (...a) => (counts.r2_class_a++, bucket.list(...a)),
    createMultipartUpload: (...a) => (counts.r2_class_a++, bucket.createMultipartUpload(...a)),
    get: (...a) => (counts.r2_class_b++, bucket.get(...a)),
    head: (...a) => (counts.r2_class_b++, bucket.head(...a)),
    delete: (...a) => (counts.r2_free++, bucket.delete(...a)),
  });

const queue = (producer) =>
  wrap(producer, {
    send: (...a) => (counts.queue_sent++, producer.send(...a)),
    sendBatch: (messages, ...rest) => ((counts.queue_sent += messages.length), producer.sendBatch(messages, ...rest)),
  });

const stub = (s) =>
  wrap(s, {
    fetch: async (...a) => {
      counts.do_requests++;
      const started = Date.now();
      try {
        return await s.fetch(...a);
      } finally {
        counts.do_wall_ms += Date.now() - started;
      }
    },
  });

const namespace = (ns) =>
  wrap(ns, {
    get: (...a) => stub(ns.get(...a)),
    getByName: (...a) => stub(ns.getByName(...a)),
  });

const envs = new WeakMap();
function countedEnv(env) {
  if (!envs.has(env)) {
    envs.set(env, {
      ...env,
      DB: d1(env.DB),
      JOBS: kv(env.JOBS),
      RESULTS: r2(env.RESULTS),
      EVENTS: queue(env.EVENTS),
      RATE_LIMITER: namespace(env.RATE_LIMITER),
      LOGIN_THROTTLE: namespace(env.LOGIN_THROTTLE),
    });
  }
  return envs.get(env);
}

function countedState(state) {
  const storage = state.storage;
  const sql = storage.sql;
  const countedSql = wrap(sql, {
    exec: (...a) => {
      const cursor = sql.exec(...a);
      cursors.push(cursor);
      return cursor;
    },
  });
  const countedStorage = wrap(storage, {
    sql: countedSql,
    setAlarm: (...a) => (counts.do_set_alarms++, storage.setAlarm(...a)),
  });
  return wrap(state, { storage: countedStorage });
}

export function counted(Class) {
  return class {
    constructor(state, env) {
      this.inner = new Class(countedState(state), countedEnv(env));
    }
    fetch(...a) {
      return this.inner.fetch(...a);
    }
    alarm(...a) {
      counts.do_alarms++;
      return this.inner.alarm(...a);
    }
  };
}


// Outbound fetches go through the global `fetch` (ours through wasm-bindgen's
// glue, which looks it up on each call); stubs' fetches are counted above.
const realFetch = globalThis.fetch;
globalThis.fetch = (...a) => (counts.fetches++, realFetch(...a));

function countedBatch(batch) {
  const messages = batch.messages.map((m) =>
    wrap(m, {
      ack: () => (counts.queue_acked++, m.ack()),
      retry: (...a) => (counts.queue_retried++, m.retry(...a)),
    }),
  );
  counts.queue_delivered += messages.length;
  return wrap(batch, { messages });
}

// A worker whose handlers are reached through `call(name, argument, env, ctx)`
// with counting bindings, answering `GET /__counts` itself.
export function countedWorker(call) {
  return {
    fetch(request, env, ctx) {
      const url = new URL(request.url);
      if (url.pathname === "/__counts") {
        const totals = snapshot();
        if (url.searchParams.has("reset")) counts = { ...ZERO };
        return Response.json(totals);
      }
      counts.worker_requests++;
      return call("fetch", request, countedEnv(env), ctx);
    },
    queue(batch, env, ctx) {
      counts.queue_batches++;
      return call("queue", countedBatch(batch), countedEnv(env), ctx);
    },
    scheduled(event, env, ctx) {
      return call("scheduled", event, countedEnv(env), ctx);
    },
  };
}
