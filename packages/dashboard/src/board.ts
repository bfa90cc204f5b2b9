import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { HealthApp, Logger } from '@flotilla/runtime';
import type { ApiKeyRing } from '@flotilla/runtime/auth';
import { Queue } from 'bullmq';
import Fastify, { LogController } from 'fastify';
import type { Redis } from 'ioredis';

import type { ApprovalsClient } from './approvals-client.js';
import { registerApprovalsPage } from './approvals-page.js';
import { adminKeyAuth } from './auth.js';
import { flotillaQueueNames } from './queues.js';

const PROBE_PATHS = /^\/(livez|readyz|startupz|metrics)(\?|$)/;

export interface DashboardOptions {
  /** Connection the board's Queue objects share. The caller owns it: `close()` leaves it open. */
  connection: Redis;
  /** BullMQ key prefix (QUEUE_PREFIX) of the queues to show. */
  prefix: string;
  /** The keys file's keys: every board route (UI, assets, API) requires an admin one; the probe routes do not. */
  keys: ApiKeyRing;
  /** Path the board is served under. Default `/`. */
  basePath?: string;
  /** Hide retry/clean/delete/pause and refuse those API calls. Default `true`. */
  readOnly?: boolean;
  log: Logger;
  /**
   * The orchestrator's approvals API, for the approvals panel (`<basePath>/approvals`). Without it the
   * panel says how to connect it (ORCHESTRATOR_URL, DASHBOARD_API_KEY_FILE).
   */
  approvals?: ApprovalsClient;
  /** Adds the probe routes (/livez, /readyz, /metrics) to the app, outside the token check. */
  registerHealth?: (app: HealthApp) => void;
}

export interface Dashboard {
  /** The fastify app, routes registered, not listening: `app.inject()` works without a port. */
  app: HealthApp;
  /** Adds the queues of roles registered since the last call; resolves with every queue shown. */
  refresh(): Promise<string[]>;
  /** Closes the board's Queue objects (not the shared connection). Idempotent. */
  close(): Promise<void>;
}

/**
 * bull-board over every flotilla queue (each `role.*`, orchestrator.plan, orchestrator.aggregate, orchestrator.sweep),
 * behind an admin API key. Built, not listening (fastify's testing guide); call `refresh()` once before
 * serving and again whenever new roles may have registered.
 */
export async function buildDashboard(options: DashboardOptions): Promise<Dashboard> {
  const basePath = (options.basePath ?? '/').replace(/\/+$/, '') || '/';
  const readOnly = options.readOnly ?? true;
  const serverAdapter = new FastifyAdapter().setBasePath(basePath);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: `flotilla (${options.prefix})`,
        miscLinks: [{ text: 'Approvals', url: `${basePath === '/' ? '' : basePath}/approvals` }],
      },
    },
  });

  const queues = new Map<string, Queue>();
  let refreshing: Promise<string[]> = Promise.resolve([]);
  const refresh = () => {
    // Serialized, so two overlapping refreshes cannot add the same queue twice.
    refreshing = refreshing
      .catch(() => [])
      .then(async () => {
        for (const name of await flotillaQueueNames(options.connection, options.prefix)) {
          if (queues.has(name)) continue;
          // skipMetasUpdate: a viewer writes nothing, and Compose's dashboard ACL user may not (compose/README.md).
          const queue = new Queue(name, {
            connection: options.connection,
            prefix: options.prefix,
            skipMetasUpdate: true,
          });
          queues.set(name, queue);
          board.addQueue(new BullMQAdapter(queue, { readOnlyMode: readOnly }));
          options.log.info({ queue: name }, 'dashboard shows queue');
        }
        return [...queues.keys()];
      });
    return refreshing;
  };

  // Board requests are logged (who looked at the queues, and when); probes are not: they arrive every
  // few seconds and would drown the service's own lines.
  const app: HealthApp = Fastify({
    loggerInstance: options.log,
    logController: new LogController({ disableRequestLogging: (req) => PROBE_PATHS.test(req.url) }),
  });
  options.registerHealth?.(app);
  const auth = adminKeyAuth(options.keys);
  await app.register(async (scope) => {
    // Every route in this scope, bull-board's static assets included, sits behind an admin key.
    scope.addHook('onRequest', auth);
    await scope.register(serverAdapter.registerPlugin(), { prefix: basePath === '/' ? '' : basePath });
    registerApprovalsPage(scope, {
      client: options.approvals,
      prefix: basePath === '/' ? '' : basePath,
      log: options.log,
    });
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= Promise.allSettled([...queues.values()].map((q) => q.close())).then(() => undefined);
    return closing;
  };
  return { app, refresh, close };
}
