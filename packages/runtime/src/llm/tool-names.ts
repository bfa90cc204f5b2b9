/**
 * Vendors only accept tool names matching ^[a-zA-Z0-9_-]{1,64}$, while flotilla names tools
 * like `memory.search`. Encode on the way out, decode on the way back; unknown names pass through.
 */
export interface ToolNameCodec {
  encode(name: string): string;
  decode(wire: string): string;
}

export function toolNameCodec(names: Iterable<string>): ToolNameCodec {
  const toWire = new Map<string, string>();
  const fromWire = new Map<string, string>();
  const add = (name: string): string => {
    const known = toWire.get(name);
    if (known) return known;
    const base = name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 60) || 'tool';
    let wire = base;
    for (let i = 2; fromWire.has(wire); i++) wire = `${base}_${i}`;
    toWire.set(name, wire);
    fromWire.set(wire, name);
    return wire;
  };
  for (const n of names) add(n);
  return { encode: add, decode: (wire) => fromWire.get(wire) ?? wire };
}
