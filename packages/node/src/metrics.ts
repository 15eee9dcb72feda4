/** Prometheus text exposition for the node's counters and gauges. */
export class Metrics {
  private counters = new Map<string, number>();
  private gauges = new Map<string, number>();
  private help = new Map<string, [string, 'counter' | 'gauge']>();

  describe(name: string, type: 'counter' | 'gauge', help: string): void {
    this.help.set(name, [help, type]);
  }

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const k = key(name, labels);
    this.counters.set(k, (this.counters.get(k) ?? 0) + by);
  }

  set(name: string, value: number, labels: Record<string, string> = {}): void {
    this.gauges.set(key(name, labels), value);
  }

  render(): string {
    const lines: string[] = [];
    const names = new Set([...this.help.keys()]);
    for (const k of [...this.counters.keys(), ...this.gauges.keys()]) names.add(k.split('{')[0]!);
    for (const name of [...names].sort()) {
      const h = this.help.get(name);
      if (h) lines.push(`# HELP ${name} ${h[0]}`, `# TYPE ${name} ${h[1]}`);
      for (const [k, v] of [...this.counters, ...this.gauges])
        if (k.split('{')[0] === name) lines.push(`${k} ${v}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function key(name: string, labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return name;
  return `${name}{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
