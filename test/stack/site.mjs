// The stack test's "web": a page server on the backend network that the researchers may fetch
// (RESEARCHER_HTTP_ALLOWLIST names it). It runs inside a flotilla image (distroless node, no shell),
// bind-mounted read-only, and logs one JSON line per event so the test reads what happened from
// `docker logs` instead of guessing from timings.
//
//   /barrier?group=G&n=N  held until N requests of group G from N DIFFERENT addresses are open at
//                         once, then all are answered. With one job per researcher at a time, a
//                         release proves N replicas worked on the task together. Answers anyway after
//                         `ms` (default 8000, under the researchers' 10 s HTTP timeout) so nothing hangs;
//                         the log then says "timeout" and the test fails on it.
//   /slow?ms=M            answered after M ms (the crash test kills a researcher in that window).
//
// Events: {"event":"listening"} | {"event":"connection",from} | {"event":"request",path,from} | {"event":"release",group,from[]}
//         {"event":"timeout",group,from} | {"event":"answered",path,from} | {"event":"aborted",path,from}
import { createServer } from 'node:http';

const PORT = Number(process.env.SITE_PORT ?? 8080);
const log = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));

/** group -> open requests waiting at the barrier */
const barriers = new Map();

function answer(res, path, from, text) {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
  log('answered', { path, from });
}

function barrier(url, res, path, from) {
  const group = url.searchParams.get('group') ?? 'default';
  const n = Number(url.searchParams.get('n') ?? 2);
  const waiting = barriers.get(group) ?? [];
  const entry = { res, from, path };
  waiting.push(entry);
  barriers.set(group, waiting);
  const drop = () => {
    const left = (barriers.get(group) ?? []).filter((e) => e !== entry);
    barriers.set(group, left);
  };
  const timer = setTimeout(
    () => {
      drop();
      log('timeout', { group, from });
      answer(res, path, from, `barrier ${group}: timed out waiting for ${n} replicas`);
    },
    Number(url.searchParams.get('ms') ?? 8000),
  );
  entry.timer = timer;
  // `res` closes early when the client goes away (a killed replica, an HTTP timeout). Only distinct
  // addresses count below, so a retry from the same replica cannot fake a second one.
  res.on('close', () => {
    if (!res.writableEnded) {
      clearTimeout(timer);
      drop();
      log('aborted', { path, from });
    }
  });
  const distinct = new Set(waiting.map((e) => e.from));
  if (distinct.size < n) return;
  barriers.delete(group);
  log('release', { group, from: [...distinct] });
  for (const e of waiting) {
    clearTimeout(e.timer);
    answer(e.res, e.path, e.from, `barrier ${group}: met by ${distinct.size} replicas`);
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://site');
  const path = url.pathname + url.search;
  const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  log('request', { path, from });
  if (url.pathname === '/barrier') return barrier(url, res, path, from);
  if (url.pathname === '/slow') {
    const timer = setTimeout(
      () => answer(res, path, from, `slow page ${path}`),
      Number(url.searchParams.get('ms') ?? 1000),
    );
    res.on('close', () => {
      if (!res.writableEnded) {
        clearTimeout(timer);
        log('aborted', { path, from });
      }
    });
    return;
  }
  answer(res, path, from, `page ${path}`);
});

// Every TCP connection, even one that never sends a request (a proxy's CONNECT tunnel): the egress
// tests count what arrived at all.
server.on('connection', (socket) => log('connection', { from: (socket.remoteAddress ?? '').replace(/^::ffff:/, '') }));

server.listen(PORT, '0.0.0.0', () => log('listening', { port: PORT }));
// The container's init forwards SIGTERM here: close promptly so `compose down` does not wait 10 s.
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
