import { describe, expect, it } from 'vitest';
import { openApiDocument, routeDrift } from './openapi.js';

describe('routeDrift', () => {
  const doc = openApiDocument('test', { probes: false });
  const served = [
    { method: 'POST', url: '/v1/tasks' },
    { method: 'GET', url: '/v1/tasks' },
    { method: 'GET', url: '/v1/tasks/:id' },
    { method: 'POST', url: '/v1/tasks/:id/cancel' },
    { method: 'GET', url: '/v1/tasks/:id/events' },
    { method: 'GET', url: '/v1/roles' },
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

  it('describes the probes only when the server has them', () => {
    expect(Object.keys(openApiDocument('test').paths as object)).toEqual(expect.arrayContaining(['/livez', '/readyz']));
    expect(Object.keys(doc.paths as object)).not.toContain('/livez');
  });
});
