/**
 * The quick start's lines for a worker's job statuses (`Worker.onStatus`). The worker emits a status
 * on every change of any field (a schedule patched, a control command), so the same "success" comes
 * again, e.g. when `jobs stop` drops the next schedule before the job is paused: a line is written
 * only when the job's status changes or a run ended (its `lastEnded` moved).
 */
interface StatusSeen {
  name: string
  status: string
  lastEnded: number | null
  size: string
  errorMsg: string
  details?: Record<string, unknown>
}

export function jobLines(): (s: StatusSeen, now?: Date) => string[] {
  const last = new Map<string, { status: string; lastEnded: number | null }>()
  return (s, now = new Date()) => {
    const prev = last.get(s.name)
    last.set(s.name, { status: s.status, lastEnded: s.lastEnded })
    const ended = s.lastEnded !== null && s.lastEnded !== prev?.lastEnded
    if (prev?.status === s.status && !ended) return []
    const at = `[${now.toLocaleTimeString()}] ${s.name}:`
    switch (s.status) {
      case 'success': {
        if (!ended) return []
        const index = s.details?.index as { files?: number; bytes?: number; rootCid?: string } | undefined
        const lines = [`${at} success, size ${s.size}`]
        if (index)
          lines.push(
            `           indexed ${index.files} files, ${index.bytes} bytes, root CID ${index.rootCid}`,
          )
        return lines
      }
      case 'failed':
        return ended ? [`${at} failed: ${s.errorMsg}`] : []
      case 'syncing':
        return [`${at} syncing`]
      case 'paused':
        return [`${at} paused (jobs start runs it again)`]
      case 'disabled':
        return [`${at} disabled`]
      default:
        return []
    }
  }
}
