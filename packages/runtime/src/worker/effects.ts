/**
 * `target` with every method waiting for `before()` first, so a run's effects (model and memory
 * calls) happen only once its start is recorded and it is known not to be cancelled. Properties
 * that are not functions (an LLM client's `model`) pass through.
 */
export function afterStart<T extends object>(target: T, before: () => Promise<void>): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value: unknown = Reflect.get(t, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await before();
        return value.apply(t, args);
      };
    },
  });
}
