/**
 * A tiny WebAssembly assembler for runtime tests: one `_start` function whose body is given as bytes, optional
 * function imports of type (i32) -> (), and a memory. Enough to write an infinite loop, a memory bomb or an exit code
 * without a toolchain.
 */
const enc = (s: string): number[] => [...Buffer.from(s, "utf8")];
const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const str = (s: string): number[] => [...leb(Buffer.byteLength(s)), ...enc(s)];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];

export interface TinyModule {
  /** function imports, each of type (i32) -> () */
  imports?: { module: string; name: string }[];
  /** a memory import instead of a defined memory */
  importMemory?: boolean;
  memory?: { min: number; max?: number };
  exportMemory?: boolean;
  exportStart?: boolean;
  /** the body of `_start` (no locals), without the final `end` */
  body: number[];
}

export const OP = {
  unreachable: 0x00,
  loop: [0x03, 0x40],
  end: 0x0b,
  br: (d: number) => [0x0c, d],
  brIf: (d: number) => [0x0d, d],
  call: (f: number) => [0x10, f],
  drop: 0x1a,
  i32: (n: number) => [0x41, ...sleb(n)],
  memoryGrow: [0x40, 0x00],
  i32Ne: 0x47,
};

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export function tinyModule(m: TinyModule): Uint8Array {
  const imports = m.imports ?? [];
  const types = section(1, vec([[0x60, 0x00, 0x00], [0x60, 0x01, 0x7f, 0x00]]));
  const importEntries = imports.map((i) => [...str(i.module), ...str(i.name), 0x00, 0x01]);
  const limits = (l: { min: number; max?: number }) => (l.max === undefined ? [0x00, ...leb(l.min)] : [0x01, ...leb(l.min), ...leb(l.max)]);
  if (m.importMemory) importEntries.push([...str("env"), ...str("memory"), 0x02, ...limits(m.memory ?? { min: 1 })]);
  const parts = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types];
  if (importEntries.length) parts.push(...section(2, vec(importEntries)));
  parts.push(...section(3, vec([[0x00]])));
  if (m.memory && !m.importMemory) parts.push(...section(5, vec([limits(m.memory)])));
  const exported: number[][] = [];
  if (m.exportStart !== false) exported.push([...str("_start"), 0x00, ...leb(imports.length)]);
  if (m.exportMemory !== false && m.memory) exported.push([...str("memory"), 0x02, 0x00]);
  parts.push(...section(7, vec(exported)));
  const body = [0x00, ...m.body, OP.end];
  parts.push(...section(10, vec([[...leb(body.length), ...body]])));
  return Uint8Array.from(parts);
}
