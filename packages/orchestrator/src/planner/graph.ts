import type { PlannedSubtask } from '@flotilla/contracts';

/**
 * A dependency cycle among a plan's subtasks, as the ids along it with the first repeated at the
 * end (`['s2', 's3', 's2']`), or undefined when the plan is acyclic. References to ids outside
 * the plan are ignored here: the validator reports those on their own.
 */
export function findCycle(plan: readonly Pick<PlannedSubtask, 'subtaskId' | 'dependsOn'>[]): string[] | undefined {
  const deps = new Map(plan.map((s) => [s.subtaskId, s.dependsOn ?? []]));
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();

  const visit = (id: string): string[] | undefined => {
    if (onPath.has(id)) return [...path.slice(path.indexOf(id)), id];
    if (done.has(id) || !deps.has(id)) return undefined;
    path.push(id);
    onPath.add(id);
    for (const dep of deps.get(id) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(id);
    done.add(id);
    return undefined;
  };

  for (const { subtaskId } of plan) {
    const cycle = visit(subtaskId);
    if (cycle) return cycle;
  }
  return undefined;
}

/** How far a subtask has got, as far as dispatching its dependents is concerned. */
export type Progress = 'ok' | 'failed' | 'pending';

/**
 * What to do next with a plan, given how each subtask has ended so far: `ready` are the subtasks
 * not yet run whose dependencies all ended ok (dispatch them now, with those outputs), `blocked`
 * those that can never run because a dependency, directly or through others, did not end ok.
 */
export function nextSubtasks(
  plan: readonly PlannedSubtask[],
  progress: (subtaskId: string) => Progress,
): { ready: PlannedSubtask[]; blocked: Map<string, string> } {
  const byId = new Map(plan.map((s) => [s.subtaskId, s]));
  /** Blocked subtasks, each with the failed dependency that blocks it (the first in plan order). */
  const blocked = new Map<string, string>();
  const blockerOf = (s: PlannedSubtask, seen: Set<string>): string | undefined => {
    if (blocked.has(s.subtaskId)) return blocked.get(s.subtaskId);
    for (const dep of s.dependsOn ?? []) {
      const d = byId.get(dep);
      if (!d || seen.has(dep)) continue;
      const state = progress(dep);
      if (state === 'failed') return dep;
      if (state === 'pending') {
        const upstream = blockerOf(d, new Set([...seen, dep]));
        if (upstream !== undefined) return upstream;
      }
    }
    return undefined;
  };
  for (const s of plan) {
    if (progress(s.subtaskId) !== 'pending') continue;
    const blocker = blockerOf(s, new Set([s.subtaskId]));
    if (blocker !== undefined) blocked.set(s.subtaskId, blocker);
  }
  const ready = plan.filter(
    (s) =>
      progress(s.subtaskId) === 'pending' &&
      !blocked.has(s.subtaskId) &&
      (s.dependsOn ?? []).every((dep) => !byId.has(dep) || progress(dep) === 'ok'),
  );
  return { ready, blocked };
}
