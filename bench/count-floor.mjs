// bench/count.mjs for the platform floor (bench/floor.mjs): the same
// counting bindings around it, so `bench costs --floor` can show that the
// floor makes the same binding calls as our worker.
import Floor, { RateLimiter as Limiter } from "./floor.mjs";
import { counted, countedWorker } from "./counting.mjs";

export const RateLimiter = counted(Limiter);

export default countedWorker((name, argument, env, ctx) => Floor[name]?.(argument, env, ctx));
