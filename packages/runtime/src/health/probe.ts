// Docker HEALTHCHECK without curl or a shell in the image:
//   HEALTHCHECK CMD ["node", "node_modules/@flotilla/runtime/dist/health/probe.js"]
// GETs http://127.0.0.1:$HEALTH_PORT/readyz (or the path given as the first argument) and
// exits 0 on a 2xx answer, 1 otherwise, within 2 s. The service must listen on loopback or
// on all interfaces (HEALTH_HOST 0.0.0.0, the default).
const TIMEOUT_MS = 2_000;

const port = process.env.HEALTH_PORT || '8080';
const path = process.argv[2] ?? '/readyz';
const url = `http://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`;

let code = 1;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  // Docker keeps the last output in `docker inspect` (State.Health.Log): make it the answer.
  const body = (await res.text()).slice(0, 500);
  process.stdout.write(`${res.status} ${body}\n`);
  code = res.ok ? 0 : 1;
} catch (err) {
  process.stdout.write(`${url}: ${err instanceof Error ? err.message : String(err)}\n`);
}
// Exit now rather than when fetch's keep-alive socket times out.
process.exit(code);
