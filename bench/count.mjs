// Counts the billable operations our built worker causes, measured at the
// bindings (see bench/counting.mjs): it wraps the worker (build/index.js)
// and its Durable Object classes.
//
// Benchmark-only (`bench costs` runs it with SCRIPT=bench/count.mjs); never
// measure speed with it.
import Worker, { RateLimiter as Limiter, LoginThrottle as Throttle } from "../build/index.js";
import { counted, countedWorker } from "./counting.mjs";

export const RateLimiter = counted(Limiter);
export const LoginThrottle = counted(Throttle);

// workers-rs's entry point is a class whose handlers read `this.env` and `this.ctx`.
const handlers = Worker.prototype;
export default countedWorker((name, argument, env, ctx) => handlers[name].call({ env, ctx }, argument));
