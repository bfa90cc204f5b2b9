import { describe, expect, it } from 'vitest';
import { openApiDocument, routeDrift } from './openapi.js';

describe('routeDrift', () => {
  const doc = openApiDocument('test', { probes: false });
  const served = [
    { method: 'POST', url: '/v1/tasks', scope: 'tasks' },
    { method: 'GET', url: '/v1/tasks', scope: 'tasks' },
    { method: 'GET', url: '/v1/tasks/:id', scope: 'tasks' },
    { method: 'POST', url: '/v1/tasks/:id/cancel', scope: 'tasks' },
    { method: 'GET', url: '/v1/tasks/:id/events', scope: 'tasks' },
    { method: 'GET', url: '/v1/roles', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/kill-switch', scope: 'admin' },
    { method: 'PATCH', url: '/v1/admin/kill-switch', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/replicas', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/queues', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/queues/:role/failed', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/queues/:role/versions', scope: 'admin' },
    { method: 'POST', url: '/v1/admin/queues/:role/jobs/:jobId/retry', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/tasks', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/tasks/:id', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/approvals', scope: 'admin' },
    { method: 'GET', url: '/v1/admin/approvals/:id', scope: 'admin' },
    { method: 'POST', url: '/v1/admin/approvals/:id/decision', scope: 'admin' },
    { method: 'GET', url: '/openapi.json' },
  ];

  it('finds nothing when the document lists exactly the served routes', () => {
    expect(routeDrift(doc, served)).toEqual([]);
  });

  it('names a served route the document lacks, and a documented one nobody serves', () => {
    const drift = routeDrift(doc, [
      ...served.filter((r) => r.url !== '/v1/roles'),
      { method: 'DELETE', url: '/v1/tasks/:id' },
    ]);
    expect(drift).toEqual(['+ DELETE /v1/tasks/:id', '- GET /v1/roles']);
  });

  it('names a route whose scope differs from the one its operation documents', () => {
    const drift = routeDrift(
      doc,
      served.map((r) => (r.url === '/v1/roles' ? { ...r, scope: 'tasks' } : r)),
    );
    expect(drift).toEqual(['~ GET /v1/roles (scope tasks served, admin documented)']);
  });

  it('describes the probes only when the server has them', () => {
    expect(Object.keys(openApiDocument('test').paths as object)).toEqual(expect.arrayContaining(['/livez', '/readyz']));
    expect(Object.keys(doc.paths as object)).not.toContain('/livez');
  });
});
