export interface Row {
  figure: string
  ours: string
  peer: string
  /** Peer's time over ours (or budget over ours): above 1 means cidmirror is ahead. */
  ratio: number
  goal: string
}

export function printTable(rows: Row[]): void {
  const head = ['figure', 'cidmirror', 'peer (same run)', 'ratio', 'goal']
  const body = rows.map((r) => [r.figure, r.ours, r.peer, `${r.ratio.toFixed(2)}x`, r.goal])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
  console.log(line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const b of body) console.log(line(b))
}
