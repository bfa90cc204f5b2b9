import Fastify, {
  type FastifyInstance,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';

/** A fastify app whose logger is a flotilla (pino) logger. */
export type HealthApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger
>;

import { type HealthRoutesOptions, registerHealthRoutes } from './routes.js';

export interface HealthServerOptions extends HealthRoutesOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Interface to bind. Default '0.0.0.0' (probes come from outside the container). */
  host?: string;
  log: Logger;
}

export interface HealthServer {
  /** The fastify app, routes registered, not listening: `app.inject()` works without a port. */
  app: HealthApp;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

/** The health routes on a fastify app of their own, built but not listening (fastify's testing guide). */
export function buildHealthServer(options: Omit<HealthServerOptions, 'port' | 'host'>): HealthApp {
  // Probes arrive every few seconds; logging each request would drown the service's own lines.
  const app = Fastify({
    loggerInstance: options.log,
    logController: new LogController({ disableRequestLogging: true }),
  });
  registerHealthRoutes(app, options);
  return app;
}

/** A health server for services without an HTTP API of their own (workers). */
export function createHealthServer(options: HealthServerOptions): HealthServer {
  const app = buildHealthServer(options);
  return {
    app,
    listen: async () => {
      await app.listen({ port: options.port, host: options.host ?? '0.0.0.0' });
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : options.port;
    },
    close: () => app.close(),
  };
}
