// BullMQ 5 with a no-op processor, measured as jobs_bench is (bench/jobs.sh):
// `node bench.mjs run <redis-port> <workers> <jobs> <concurrency>`: drain (addBulk in chunks
// of 1000, then <workers> worker processes; jobs/s between the first and the last completion)
// and latency (workers running, jobs added as fast as addBulk goes; job.timestamp to
// job.finishedOn, p50/p99).
import { fork } from "node:child_process";
import { Queue, Worker } from "bullmq";

const [mode, port, a, b, c] = process.argv.slice(2);
const connection = { host: "127.0.0.1", port: Number(port) };

if (mode === "worker") {
  const name = a;
  const concurrency = Number(b);
  new Worker(name, async () => {}, {
    connection,
    concurrency,
    removeOnComplete: { count: 1_000_000 },
  });
} else {
  const workers = Number(a);
  const jobs = Number(b);
  const concurrency = Number(c);
  const self = new URL(import.meta.url).pathname;
  const data = { to: "bench@example.com", name: "Bench", template: "passwordChanged" };
  const add = async (queue) => {
    const started = performance.now();
    for (let i = 0; i < jobs; i += 1000) {
      const n = Math.min(1000, jobs - i);
      await queue.addBulk(Array.from({ length: n }, () => ({ name: "email", data, opts: { removeOnComplete: { count: 1_000_000 } } })));
    }
    return jobs / ((performance.now() - started) / 1000);
  };
  const spawn = (name) =>
    Array.from({ length: workers }, () => fork(self, ["worker", port, name, String(concurrency)]));
  const finish = async (queue, children) => {
    while ((await queue.getCompletedCount()) < jobs) await new Promise((r) => setTimeout(r, 5));
    for (const child of children) child.kill("SIGKILL");
    const latencies = [];
    let first = Infinity;
    let last = -Infinity;
    for (let start = 0; start < jobs; start += 1000) {
      for (const job of await queue.getCompleted(start, start + 999)) {
        first = Math.min(first, job.finishedOn);
        last = Math.max(last, job.finishedOn);
        latencies.push(job.finishedOn - job.timestamp);
      }
    }
    latencies.sort((x, y) => x - y);
    await queue.obliterate({ force: true });
    await queue.close();
    return { rate: jobs / (Math.max(1, last - first) / 1000), latencies };
  };
  // Drain: the queue filled first, then the workers start.
  const drainQueue = new Queue(`bench-${process.pid}-drain`, { connection });
  const enqueueRate = await add(drainQueue);
  const { rate } = await finish(drainQueue, spawn(drainQueue.name));
  // Latency: the workers running, the jobs added as fast as addBulk goes.
  const latencyQueue = new Queue(`bench-${process.pid}-latency`, { connection });
  const children = spawn(latencyQueue.name);
  await new Promise((r) => setTimeout(r, 1000));
  await add(latencyQueue);
  const { latencies } = await finish(latencyQueue, children);
  const pick = (p) => latencies[Math.min(latencies.length - 1, Math.round((latencies.length - 1) * p))];
  console.log(
    `bullmq workers=${workers} conc=${String(concurrency).padEnd(3)} jobs=${jobs} enqueue=${String(Math.round(enqueueRate)).padStart(6)}/s drain=${String(Math.round(rate)).padStart(6)}/s  enqueue-to-done (producer flat out) p50=${pick(0.5)} ms p99=${pick(0.99)} ms`,
  );
  process.exit(0);
}
